//! Three processes form a cluster; init on one; each node unsealed with a different 3 of 5
//! shares; a secret written through a follower reads back through every node; KV v2 basics.

use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_written_through_a_follower_reads_back_everywhere() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        cluster.unseal_with(0, &[0, 1, 2]).await;
        cluster.unseal_with(1, &[2, 3, 4]).await;
        let status = cluster.unseal_with(2, &[4, 0, 3]).await;
        assert_eq!(status["sealed"], false);

        let leader = cluster.wait_leader().await;
        let follower = (leader + 1) % 3;
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "secret/data/app/db",
                Some(json!({"data": {"password": "s3cr3t", "user": "app"}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["version"], 1);

        for index in 0..3 {
            let (status, body) = cluster.root(index, "GET", "secret/data/app/db", None).await;
            assert_eq!(status, 200, "node {}: {body}", index + 1);
            assert_eq!(
                body["data"]["data"],
                json!({"password": "s3cr3t", "user": "app"})
            );
            assert_eq!(body["data"]["metadata"]["version"], 1);
        }

        // CAS: create-only fails on an existing secret; the right version succeeds.
        let (status, body) = cluster
            .root(
                leader,
                "POST",
                "secret/data/app/db",
                Some(json!({"options": {"cas": 0}, "data": {"password": "x"}})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["errors"][0],
            "check-and-set parameter did not match the current version"
        );
        let (status, _) = cluster
            .root(
                follower,
                "PUT",
                "secret/data/app/db",
                Some(json!({"options": {"cas": 1}, "data": {"password": "v2"}})),
            )
            .await;
        assert_eq!(status, 200);

        // Versions, LIST (verb and ?list=true), soft delete answering 404 with metadata.
        let (_, body) = cluster
            .call(
                2,
                "GET",
                "secret/data/app/db?version=1",
                None,
                Some(&cluster.root_token),
            )
            .await;
        assert_eq!(body["data"]["data"]["password"], "s3cr3t");
        let (status, body) = cluster.root(1, "LIST", "secret/metadata/app", None).await;
        assert_eq!((status, body["data"]["keys"].clone()), (200, json!(["db"])));
        let (status, body) = cluster
            .root(0, "GET", "secret/metadata/?list=true", None)
            .await;
        assert_eq!(
            (status, body["data"]["keys"].clone()),
            (200, json!(["app/"]))
        );
        let (status, body) = cluster
            .root(0, "LIST", "secret/metadata/nothing", None)
            .await;
        assert_eq!((status, body), (404, json!({"errors": []})));
        let (status, _) = cluster
            .root(follower, "DELETE", "secret/data/app/db", None)
            .await;
        assert_eq!(status, 204);
        let (status, body) = cluster
            .root(leader, "GET", "secret/data/app/db", None)
            .await;
        assert_eq!(status, 404);
        assert_eq!(body["data"]["data"], serde_json::Value::Null);
        assert_ne!(body["data"]["metadata"]["deletion_time"], "");

        // Stale reads are served locally.
        let response = cluster
            .http
            .get(format!(
                "{}/v1/secret/data/app/db?version=1",
                cluster.nodes[follower].url()
            ))
            .header("X-Vault-Token", &cluster.root_token)
            .header("X-Strongroom-Consistency", "stale")
            .send()
            .await
            .expect("stale read");
        assert_eq!(response.status().as_u16(), 200);

        // Health: the leader is active (200), followers standby (429, or 200 with standbyok).
        let (status, _) = cluster.call(leader, "GET", "sys/health", None, None).await;
        assert_eq!(status, 200);
        let (status, _) = cluster
            .call(follower, "GET", "sys/health", None, None)
            .await;
        assert_eq!(status, 429);
        let (status, body) = cluster
            .call(follower, "GET", "sys/health?standbyok=true", None, None)
            .await;
        assert_eq!((status, body["standby"].clone()), (200, json!(true)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_one_audit_record_on_every_node() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let url = |index: usize, path: &str| format!("{}/v1/{path}", cluster.nodes[index].url());
        let canary = format!("audit-canary-{}", uuid::Uuid::new_v4());
        let mut request_ids = Vec::new();
        let sends = [
            (
                0,
                reqwest::Method::POST,
                "secret/data/audited",
                Some(json!({"data": {"v": canary}})),
                cluster.root_token.clone(),
            ),
            (
                1,
                reqwest::Method::GET,
                "secret/data/audited",
                None,
                cluster.root_token.clone(),
            ),
            (
                2,
                reqwest::Method::GET,
                "secret/data/audited",
                None,
                "hvs.bogus".to_string(),
            ),
            (
                2,
                reqwest::Method::GET,
                "secret/data/missing",
                None,
                cluster.root_token.clone(),
            ),
        ];
        for (index, method, path, body, token) in sends {
            let mut request = cluster
                .http
                .request(method, url(index, path))
                .header("X-Vault-Token", token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("request");
            let id = response
                .headers()
                .get("x-strongroom-request-id")
                .expect("request id header");
            request_ids.push((id.to_str().unwrap().to_string(), response.status().as_u16()));
        }

        // Every node holds the same journal, with exactly one record per request, secrets HMAC'd.
        // (Reading the journal is a request too: compare the prefix up to node 1's head.)
        let (_, first) = cluster
            .root(0, "GET", "sys/audit/log?from=1&limit=1000", None)
            .await;
        let head = first["data"]["head"]["seq"].as_u64().expect("head seq");
        let mut journals = Vec::new();
        for index in 0..3 {
            let path = format!("sys/audit/log?from=1&limit={head}");
            let (status, body) = cluster.root(index, "GET", &path, None).await;
            assert_eq!(status, 200, "{body}");
            journals.push(body["data"].clone());
        }
        let hashes = |journal: &serde_json::Value| -> Vec<serde_json::Value> {
            journal["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| json!([r["seq"], r["hash"]]))
                .collect()
        };
        assert_eq!(hashes(&journals[0]).len() as u64, head);
        assert_eq!(hashes(&journals[0]), hashes(&journals[1]));
        assert_eq!(hashes(&journals[0]), hashes(&journals[2]));
        let records = journals[0]["records"].as_array().unwrap();
        for (id, status) in &request_ids {
            let matching: Vec<_> = records
                .iter()
                .filter(|r| r["record"]["request"]["id"] == id.as_str())
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "request {id} must have exactly one record"
            );
            assert_eq!(matching[0]["record"]["response"]["status"], *status);
        }
        let text = serde_json::to_string(&journals[0]).unwrap();
        assert!(
            !text.contains(&canary),
            "secret values must be HMAC'd in audit records"
        );
        assert!(
            !text.contains(&cluster.root_token),
            "tokens must be HMAC'd in audit records"
        );
        for index in 0..3 {
            let (status, body) = cluster.root(index, "GET", "sys/audit/verify", None).await;
            assert_eq!(
                (status, body["data"]["valid"].clone()),
                (200, json!(true)),
                "{body}"
            );
        }
    })
    .await;
}
