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
