//! Sealed nodes: 503 on secrets, truthful seal status, bad shares refused with progress kept,
//! below-threshold stays sealed, reset clears progress.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_node_refuses_requests_and_keeps_unseal_progress() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        let (status, body) = cluster.call(0, "GET", "sys/seal-status", None, None).await;
        assert_eq!(status, 200);
        assert_eq!(body["initialized"], false);
        let (status, _) = cluster.call(0, "GET", "sys/health", None, None).await;
        assert_eq!(status, 501, "uninitialized health code");

        cluster.init(1).await;
        let (status, body) = cluster
            .call(
                0,
                "PUT",
                "sys/init",
                Some(json!({"secret_shares": 5, "secret_threshold": 3})),
                None,
            )
            .await;
        assert_eq!(
            (status, body["errors"][0].as_str()),
            (400, Some("Vault is already initialized"))
        );

        // Every node is sealed: secrets answer 503 with Vault's message.
        let token = cluster.root_token.clone();
        let (status, body) = cluster
            .call(2, "GET", "secret/data/x", None, Some(&token))
            .await;
        assert_eq!(
            (status, body),
            (503, json!({"errors": ["Vault is sealed"]}))
        );
        let (status, body) = cluster.call(2, "GET", "sys/seal-status", None, None).await;
        assert_eq!(status, 200);
        assert_eq!(
            (
                body["sealed"].clone(),
                body["t"].clone(),
                body["n"].clone(),
                body["progress"].clone()
            ),
            (json!(true), json!(3), json!(5), json!(0))
        );
        assert_eq!(body["type"], "shamir");
        let (status, _) = cluster.call(2, "GET", "sys/health", None, None).await;
        assert_eq!(status, 503, "sealed health code");

        // One good share, then a duplicate, a foreign share and garbage: 400s, progress kept.
        let status = cluster.unseal_with(2, &[4]).await;
        assert_eq!(status["progress"], 1);
        let nonce = status["nonce"].clone();
        let bad = [
            cluster.keys[4].clone(),                                     // duplicate
            base64::engine::general_purpose::STANDARD.encode([7u8; 33]), // well-formed, not ours
            "not-a-key".to_string(),                                     // garbage
            String::new(),
        ];
        for key in bad {
            let (status, body) = cluster
                .call(2, "PUT", "sys/unseal", Some(json!({"key": key})), None)
                .await;
            assert_eq!(status, 400, "share {key:?} must be refused: {body}");
            assert!(
                body["errors"][0].as_str().is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
        let (status, body) = cluster
            .call(2, "PUT", "sys/unseal", Some(json!({"reset": "yes"})), None)
            .await;
        assert_eq!(status, 400, "wrong type for reset: {body}");
        let (_, body) = cluster.call(2, "GET", "sys/seal-status", None, None).await;
        assert_eq!(
            (body["progress"].clone(), body["nonce"].clone()),
            (json!(1), nonce)
        );

        // Two of three: still sealed. Reset: progress 0. Three: unsealed.
        let status = cluster.unseal_with(2, &[3]).await;
        assert_eq!(
            (status["sealed"].clone(), status["progress"].clone()),
            (json!(true), json!(2))
        );
        let (status, body) = cluster
            .call(2, "PUT", "sys/unseal", Some(json!({"reset": true})), None)
            .await;
        assert_eq!((status, body["progress"].clone()), (200, json!(0)));
        let status = cluster.unseal_with(2, &[0, 2, 4]).await;
        assert_eq!(
            (status["sealed"].clone(), status["progress"].clone()),
            (json!(false), json!(0))
        );
        assert!(
            status["cluster_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );

        // Sealing needs a token and drops the node back to 503.
        let (status, _) = cluster
            .call(2, "PUT", "sys/seal", None, Some("hvs.not-a-token"))
            .await;
        assert_eq!(status, 403);
        let (status, _) = cluster.call(2, "PUT", "sys/seal", None, Some(&token)).await;
        assert_eq!(status, 204);
        let (_, body) = cluster.call(2, "GET", "sys/seal-status", None, None).await;
        assert_eq!(body["sealed"], true);
        let (status, _) = cluster
            .call(2, "GET", "secret/data/x", None, Some(&token))
            .await;
        assert_eq!(status, 503);
    })
    .await;
}
