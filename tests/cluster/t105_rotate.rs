//! Keyring rotation on a 3-node cluster: rotations during concurrent writes through every node
//! lose nothing and old values still read everywhere; re-encryption (`sys/rotate/rewrap`) leaves
//! no value under an old term, counted by scanning each node's state machine; an old term can
//! then be retired (the active one cannot); root-key rotation keeps the shares working across a
//! full restart. Bad rotation config changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

/// Writes `count` values through node `node`; returns what each path holds.
async fn writes(
    cluster: &TestCluster,
    node: usize,
    prefix: &str,
    count: usize,
) -> Vec<(String, String)> {
    let mut written = Vec::new();
    for n in 0..count {
        let path = format!("secret/data/{prefix}-{node}-{n}");
        let value = format!("{prefix}-{node}-{n}-{}", uuid::Uuid::new_v4());
        let (status, body) = cluster
            .root(node, "POST", &path, Some(json!({"data": {"v": value}})))
            .await;
        assert_eq!(status, 200, "write {path} via node {}: {body}", node + 1);
        written.push((path, value));
    }
    written
}

/// Every path reads back its value: on every node when `everywhere`, else each path on one
/// node (in turn).
async fn all_read(cluster: &TestCluster, expected: &BTreeMap<String, String>, everywhere: bool) {
    for node in 0..3 {
        for (index, (path, value)) in expected.iter().enumerate() {
            if !everywhere && index % 3 != node {
                continue;
            }
            let (status, body) = cluster.root(node, "GET", path, None).await;
            assert_eq!(status, 200, "read {path} on node {}: {body}", node + 1);
            assert_eq!(
                body["data"]["data"]["v"],
                json!(value),
                "{path} on node {}",
                node + 1
            );
        }
    }
}

async fn key_term(cluster: &TestCluster, node: usize) -> u64 {
    let (status, body) = cluster.root(node, "GET", "sys/key-status", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["data"]["install_time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        body["term"], body["data"]["term"],
        "copied to the top level"
    );
    body["data"]["term"].as_u64().expect("term")
}

/// Values under each term on node `node` (its own state machine scan).
async fn values_by_term(cluster: &TestCluster, node: usize) -> BTreeMap<String, u64> {
    let (status, body) = cluster.root(node, "GET", "sys/rotate/rewrap", None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["data"]["values_by_term"].clone()).expect("values_by_term")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewrap_retire_and_root_rotation() {
    bounded(Duration::from_secs(300), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for node in 0..3 {
            cluster.unseal(node).await;
        }
        let mut expected: BTreeMap<String, String> = BTreeMap::new();
        for node in 0..3 {
            expected.extend(writes(&cluster, node, "before", 10).await);
        }
        for node in 0..3 {
            assert_eq!(key_term(&cluster, node).await, 1);
        }

        // Two rotations through two followers-or-leader while every node writes.
        let rotations = async {
            for node in [1, 2] {
                let (status, body) = cluster.root(node, "PUT", "sys/rotate", None).await;
                assert_eq!(status, 204, "rotate via node {}: {body}", node + 1);
            }
        };
        let (a, b, c, ()) = tokio::join!(
            writes(&cluster, 0, "during", 15),
            writes(&cluster, 1, "during", 15),
            writes(&cluster, 2, "during", 15),
            rotations,
        );
        expected.extend(a.into_iter().chain(b).chain(c));
        for node in 0..3 {
            assert_eq!(key_term(&cluster, node).await, 3, "node {}", node + 1);
        }
        expected.extend(writes(&cluster, 1, "after", 5).await);
        all_read(&cluster, &expected, true).await;
        let counts = values_by_term(&cluster, 0).await;
        assert!(counts.get("1").copied().unwrap_or(0) > 0, "{counts:?}");

        // Re-encrypt while clients overwrite some of the old values.
        let (status, body) = cluster.root(2, "PUT", "sys/rotate/rewrap", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["target_term"], 3);
        for n in 0..5 {
            let path = format!("secret/data/before-0-{n}");
            let value = format!("overwritten-{n}");
            let (status, _) = cluster
                .root(n % 3, "POST", &path, Some(json!({"data": {"v": value}})))
                .await;
            assert_eq!(status, 200);
            expected.insert(path, value);
        }
        let done = wait_for("rewrap done", Duration::from_secs(120), || async {
            let (status, body) = cluster.root(0, "GET", "sys/rotate/rewrap", None).await;
            (status == 200 && body["data"]["status"] == "done").then_some(body)
        })
        .await;
        assert!(
            done["data"]["rewrapped"].as_u64().unwrap_or(0) > 0,
            "{done}"
        );
        for node in 0..3 {
            let applied = cluster.applied_index(0).await;
            wait_for("node caught up", Duration::from_secs(30), || async {
                (cluster.applied_index(node).await >= applied).then_some(())
            })
            .await;
            let counts = values_by_term(&cluster, node).await;
            assert_eq!(
                counts.keys().map(String::as_str).collect::<Vec<_>>(),
                ["3"],
                "node {}: values still under old terms: {counts:?}",
                node + 1
            );
        }
        all_read(&cluster, &expected, true).await;

        // Retire: the active term is refused, an unused old one goes, twice is refused.
        for (term, want) in [
            (json!(3), 400),
            (json!(9), 400),
            (json!("x"), 400),
            (json!(1), 204),
            (json!(1), 400),
        ] {
            let (status, body) = cluster
                .root(1, "PUT", "sys/rotate/retire", Some(json!({"term": term})))
                .await;
            assert_eq!(status, want, "retire {term}: {body}");
        }
        let (_, status) = cluster.root(0, "GET", "sys/rotate/rewrap", None).await;
        let retired: Vec<u64> = status["data"]["terms"]
            .as_array()
            .expect("terms")
            .iter()
            .filter(|t| t["retired"] == true)
            .filter_map(|t| t["term"].as_u64())
            .collect();
        assert_eq!(retired, [1]);
        all_read(&cluster, &expected, false).await;
        // Journal records written under term 1 still decrypt and the chain verifies.
        let (status, log) = cluster
            .root(2, "GET", "sys/audit/log?from=1&limit=3", None)
            .await;
        assert_eq!(status, 200, "{log}");
        let first = &log["data"]["records"][0]["record"];
        assert_eq!(
            (
                first["request"]["path"].as_str(),
                first["response"]["status"].as_u64()
            ),
            (Some("sys/init"), Some(200)),
            "{first}"
        );
        let (status, verify) = cluster.root(0, "GET", "sys/audit/verify", None).await;
        assert_eq!(
            (status, verify["data"]["valid"].clone()),
            (200, json!(true)),
            "{verify}"
        );

        // Bad rotation config is a 400 and changes nothing.
        let (status, _) = cluster
            .root(
                0,
                "PUT",
                "sys/rotate/config",
                Some(json!({"max_operations": 2_000_000_000u64, "interval": "48h"})),
            )
            .await;
        assert_eq!(status, 204);
        for bad in [
            json!({"max_operations": 10}),
            json!({"interval": "1h"}),
            json!({"enabled": "perhaps"}),
        ] {
            let (status, body) = cluster
                .root(1, "PUT", "sys/rotate/config", Some(bad.clone()))
                .await;
            assert_eq!(status, 400, "{bad}: {body}");
            assert!(body["errors"].as_array().is_some_and(|e| !e.is_empty()));
        }
        let (status, config) = cluster.root(2, "GET", "sys/rotate/config", None).await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                &config["data"]["max_operations"],
                &config["data"]["interval"],
                &config["data"]["enabled"]
            ),
            (&json!(2_000_000_000u64), &json!("48h0m0s"), &json!(true))
        );

        // Root-key rotation, then a full restart unsealed with the same shares.
        let (status, body) = cluster.root(1, "PUT", "sys/rotate/root", None).await;
        assert_eq!(status, 204, "{body}");
        expected.extend(writes(&cluster, 2, "after-root", 5).await);
        all_read(&cluster, &expected, false).await;
        for node in 0..3 {
            cluster.stop(node).await;
        }
        for node in 0..3 {
            cluster.spawn(node);
        }
        for node in 0..3 {
            cluster.wait_http(node).await;
            cluster.unseal(node).await;
        }
        cluster.wait_leader().await;
        all_read(&cluster, &expected, true).await;
        for node in 0..3 {
            assert_eq!(key_term(&cluster, node).await, 3);
        }
        let (status, body) = cluster.root(0, "PUT", "sys/rotate/root", None).await;
        assert_eq!(status, 204, "a second root rotation after restart: {body}");
        let (status, body) = cluster.root(2, "PUT", "sys/rotate", None).await;
        assert_eq!(status, 204, "{body}");
        let fresh = writes(&cluster, 0, "final", 3).await;
        expected.extend(fresh);
        all_read(&cluster, &expected, false).await;
    })
    .await;
}
