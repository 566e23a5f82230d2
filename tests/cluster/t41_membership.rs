//! Membership changes: a follower is removed with `sys/storage/raft/remove-peer` (sent to another
//! follower, so it is handed to the leader); the two left keep writing; the removed node serves
//! no linearizable request, before and after a restart, and does not come back by itself; it is
//! added back with `sys/storage/raft/add-peer` and reads every write it missed from itself. The
//! cluster snapshots every 30 entries and keeps 5, and the removed node misses over a hundred
//! (40 writes and their audit records), so it catches up from a snapshot. Bad requests are
//! 4xx with `{"errors": [...]}` and change nothing.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::Tuning;
use crate::fixture::wait_for;

/// The configuration as node `index` reports it: (index, [(node_id, voter, leader, address)]).
async fn configuration(
    cluster: &TestCluster,
    index: usize,
) -> (u64, Vec<(String, bool, bool, String)>) {
    let (status, body) = cluster
        .root(index, "GET", "sys/storage/raft/configuration", None)
        .await;
    assert_eq!(status, 200, "configuration from node {}: {body}", index + 1);
    let config = &body["data"]["config"];
    let servers = config["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| {
            assert_eq!(server["protocol_version"], "3", "{server}");
            (
                server["node_id"].as_str().expect("node_id").to_string(),
                server["voter"].as_bool().expect("voter"),
                server["leader"].as_bool().expect("leader"),
                server["address"].as_str().expect("address").to_string(),
            )
        })
        .collect();
    (config["index"].as_u64().expect("index"), servers)
}

fn voter_ids(servers: &[(String, bool, bool, String)]) -> Vec<String> {
    servers
        .iter()
        .filter(|(_, voter, _, _)| *voter)
        .map(|(id, _, _, _)| id.clone())
        .collect()
}

async fn write(cluster: &TestCluster, index: usize, key: &str, value: &str) {
    let (status, body) = cluster
        .root(
            index,
            "POST",
            &format!("secret/data/{key}"),
            Some(json!({"data": {"v": value}})),
        )
        .await;
    assert_eq!(status, 200, "write {key} via node {}: {body}", index + 1);
}

/// Asserts a 4xx with Vault's error shape.
fn assert_refused(status: u16, body: &Value, what: &str) {
    assert!((400..500).contains(&status), "{what}: {status} {body}");
    assert!(
        body["errors"]
            .as_array()
            .is_some_and(|errors| !errors.is_empty()),
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_stops_counting_and_catches_up_when_added_back() {
    bounded(Duration::from_secs(300), async {
        let tuning = Tuning {
            snapshot_logs_since_last: 30,
            max_in_snapshot_log_to_keep: 5,
            purge_batch_size: 1,
        };
        let mut cluster = TestCluster::start_with(3, tuning).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let leader = cluster.wait_leader().await;
        let target = (leader + 1) % 3;
        let other = (leader + 2) % 3;
        let target_id = cluster.nodes[target].id.to_string();
        write(&cluster, leader, "before", "0").await;

        let (index, servers) = configuration(&cluster, other).await;
        assert_eq!(voter_ids(&servers), ["1", "2", "3"]);
        let leaders: Vec<&String> = servers.iter().filter(|s| s.2).map(|s| &s.0).collect();
        assert_eq!(leaders, [&cluster.nodes[leader].id.to_string()]);
        let addresses: Vec<&String> = servers.iter().map(|s| &s.3).collect();
        let expected: Vec<&String> = cluster.nodes.iter().map(|n| &n.cluster_addr).collect();
        assert_eq!(addresses, expected);

        // Bad requests change nothing.
        let leader_id = cluster.nodes[leader].id.to_string();
        let bad = [
            ("remove-peer", json!({})),
            ("remove-peer", json!({"server_id": "node3"})),
            ("remove-peer", json!({"server_id": "0"})),
            ("remove-peer", json!({"server_id": "9"})),
            ("remove-peer", json!({"server_id": leader_id})),
            (
                "remove-peer",
                json!({"server_id": target_id, "force": true}),
            ),
            ("add-peer", json!({"server_id": "9"})),
            ("add-peer", json!({"server_id": "9", "address": "no-port"})),
            ("add-peer", json!({"server_id": target_id, "address": 5})),
            (
                "add-peer",
                json!({"server_id": target_id, "address": "127.0.0.1:1"}),
            ),
        ];
        for (path, body) in bad {
            let (status, reply) = cluster
                .root(
                    other,
                    "POST",
                    &format!("sys/storage/raft/{path}"),
                    Some(body.clone()),
                )
                .await;
            assert_refused(status, &reply, &format!("{path} {body}"));
        }
        let (status, reply) = cluster
            .call(
                other,
                "POST",
                "sys/storage/raft/remove-peer",
                Some(json!({"server_id": target_id})),
                Some("not-a-token"),
            )
            .await;
        assert_eq!(status, 403, "{reply}");
        let (status, reply) = cluster
            .root(
                other,
                "POST",
                "sys/storage/raft/configuration",
                Some(json!({})),
            )
            .await;
        assert_refused(status, &reply, "POST configuration");
        assert_eq!(
            configuration(&cluster, leader).await,
            (index, servers.clone())
        );

        // Remove the target through the other follower (handed to the leader).
        let (status, reply) = cluster
            .root(
                other,
                "POST",
                "sys/storage/raft/remove-peer",
                Some(json!({"server_id": target_id})),
            )
            .await;
        assert_eq!(status, 204, "{reply}");
        for asked in [leader, other] {
            let (after, servers) = configuration(&cluster, asked).await;
            assert!(after > index, "the membership entry is newer");
            assert_eq!(servers.len(), 2, "{servers:?}");
            assert!(
                servers.iter().all(|s| s.1 && s.0 != target_id),
                "{servers:?}"
            );
        }
        let (status, reply) = cluster
            .root(
                leader,
                "POST",
                "sys/storage/raft/remove-peer",
                Some(json!({"server_id": target_id})),
            )
            .await;
        assert_refused(status, &reply, "removing it twice");

        // The two left commit on their own, past a snapshot and log purge.
        for n in 0..40 {
            let via = if n % 2 == 0 { leader } else { other };
            write(&cluster, via, &format!("out/{n}"), &format!("v{n}")).await;
        }

        // The removed node commits nothing and serves no linearizable read.
        let (status, reply) = cluster
            .root(target, "GET", "secret/data/before", None)
            .await;
        assert_eq!(
            status, 503,
            "linearizable read on the removed node: {reply}"
        );
        let (status, reply) = cluster
            .root(
                target,
                "POST",
                "secret/data/from-removed",
                Some(json!({"data": {"v": 1}})),
            )
            .await;
        assert_eq!(status, 503, "write through the removed node: {reply}");
        let (status, _) = cluster
            .root(leader, "GET", "secret/data/from-removed", None)
            .await;
        assert_eq!(status, 404, "nothing the removed node ran was committed");

        // Restarted with its static peers config, it still does not count.
        cluster.kill(target);
        cluster.spawn(target);
        cluster.wait_http(target).await;
        cluster.unseal(target).await;
        write(&cluster, other, "after-restart", "r").await;
        let (status, _) = cluster
            .root(target, "GET", "secret/data/before", None)
            .await;
        assert_eq!(
            status, 503,
            "the restarted removed node serves no linearizable read"
        );
        let (_, servers) = configuration(&cluster, leader).await;
        assert_eq!(servers.len(), 2, "{servers:?}");
        let leader_now = cluster.wait_leader().await;
        assert_ne!(leader_now, target);

        // Add it back (addresses from the config's [[peers]]); adding again changes nothing.
        let (status, reply) = cluster
            .root(
                other,
                "POST",
                "sys/storage/raft/add-peer",
                Some(json!({"server_id": target_id})),
            )
            .await;
        assert_eq!(status, 204, "{reply}");
        let (readded, servers) = configuration(&cluster, leader_now).await;
        assert_eq!(voter_ids(&servers), ["1", "2", "3"]);
        let (status, reply) = cluster
            .root(
                leader_now,
                "POST",
                "sys/storage/raft/add-peer",
                Some(json!({
                    "server_id": target_id,
                    "address": cluster.nodes[target].cluster_addr,
                    "api_addr": cluster.nodes[target].api_addr,
                })),
            )
            .await;
        assert_eq!(status, 204, "{reply}");
        assert_eq!(configuration(&cluster, leader_now).await.0, readded);

        // It caught up: it reads everything it missed from itself.
        wait_for(
            "the re-added node to serve reads",
            Duration::from_secs(60),
            || async {
                let (status, _) = cluster
                    .root(target, "GET", "secret/data/after-restart", None)
                    .await;
                (status == 200).then_some(())
            },
        )
        .await;
        for n in 0..40 {
            let (status, body) = cluster
                .call(
                    target,
                    "GET",
                    &format!("secret/data/out/{n}"),
                    None,
                    Some(&cluster.root_token),
                )
                .await;
            assert_eq!(status, 200, "out/{n} on the re-added node: {body}");
            assert_eq!(body["data"]["data"]["v"], format!("v{n}"));
        }
        let (_, servers) = configuration(&cluster, target).await;
        assert_eq!(voter_ids(&servers), ["1", "2", "3"]);
        write(&cluster, target, "after-readd", "x").await;
        let (status, _) = cluster
            .root(leader_now, "GET", "secret/data/after-readd", None)
            .await;
        assert_eq!(status, 200);
    })
    .await;
}
