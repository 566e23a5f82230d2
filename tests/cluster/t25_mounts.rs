//! The mount table: enable (KV v1 and v2) at new paths, refuse colliding, nested and climbing
//! paths, list in Vault's shape, tune, remount (data moves with the mount), and disable (the data
//! is gone with it).

use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_enable_tune_move_and_disable() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let (status, body) = cluster
            .root(
                1,
                "POST",
                "sys/mounts/kv1",
                Some(json!({"type": "kv", "description": "flat"})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, _) = cluster
            .root(
                2,
                "POST",
                "sys/mounts/team/kv",
                Some(json!({"type": "kv", "options": {"version": "2"}})),
            )
            .await;
        assert_eq!(status, 204);

        for (path, why) in [
            ("secret", "taken"),
            ("secret/inner", "nested"),
            ("team", "around"),
            ("sys/x", "reserved"),
        ] {
            let (status, body) = cluster
                .root(
                    0,
                    "POST",
                    &format!("sys/mounts/{path}"),
                    Some(json!({"type": "kv"})),
                )
                .await;
            assert_eq!(status, 400, "{path} ({why}) must be refused: {body}");
        }
        let (status, _) = cluster
            .root(
                0,
                "POST",
                "sys/mounts/other",
                Some(json!({"type": "nosuch"})),
            )
            .await;
        assert_eq!(status, 400);

        let (status, body) = cluster.root(0, "GET", "sys/mounts", None).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["kv1/"]["type"], "kv");
        assert_eq!(body["data"]["kv1/"]["options"]["version"], "1");
        assert_eq!(body["kv1/"]["description"], "flat", "legacy top-level copy");
        assert_eq!(body["data"]["team/kv/"]["options"]["version"], "2");

        // KV v1 and v2 on the new mounts.
        let (status, _) = cluster
            .root(0, "POST", "kv1/app", Some(json!({"user": "u"})))
            .await;
        assert_eq!(status, 204);
        let (status, body) = cluster.root(2, "GET", "kv1/app", None).await;
        assert_eq!((status, body["data"]["user"].clone()), (200, json!("u")));
        let (status, _) = cluster
            .root(1, "POST", "team/kv/data/x", Some(json!({"data": {"v": 1}})))
            .await;
        assert_eq!(status, 200);

        // Tune: description and a mount-wide max_versions for KV v2.
        let (status, _) = cluster
            .root(
                0,
                "POST",
                "sys/mounts/team/kv/tune",
                Some(json!({"description": "team secrets", "options": {"max_versions": "2"}})),
            )
            .await;
        assert_eq!(status, 204);
        let (_, body) = cluster
            .root(1, "GET", "sys/mounts/team/kv/tune", None)
            .await;
        assert_eq!(body["data"]["description"], "team secrets");
        for n in 2..=4 {
            cluster
                .root(1, "POST", "team/kv/data/x", Some(json!({"data": {"v": n}})))
                .await;
        }
        let (_, body) = cluster.root(2, "GET", "team/kv/metadata/x", None).await;
        assert_eq!(
            body["data"]["versions"].as_object().map(|v| v.len()),
            Some(2)
        );

        // Paths in bodies cannot climb either (HTTP clients resolve `..` in URLs before sending).
        let (status, _) = cluster
            .root(
                0,
                "POST",
                "sys/remount",
                Some(json!({"from": "kv1", "to": "a/../b"})),
            )
            .await;
        assert_eq!(status, 400);

        // Remount: the data moves with the mount.
        let (status, body) = cluster
            .root(
                0,
                "POST",
                "sys/remount",
                Some(json!({"from": "kv1", "to": "flat"})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = cluster.root(1, "GET", "flat/app", None).await;
        assert_eq!((status, body["data"]["user"].clone()), (200, json!("u")));
        let (status, _) = cluster.root(1, "GET", "kv1/app", None).await;
        assert_eq!(status, 400, "the old path no longer routes");

        // Disable deletes the data: re-enabling the same path starts empty.
        let (status, _) = cluster.root(2, "DELETE", "sys/mounts/flat", None).await;
        assert_eq!(status, 204);
        cluster
            .root(2, "POST", "sys/mounts/flat", Some(json!({"type": "kv"})))
            .await;
        let (status, _) = cluster.root(0, "GET", "flat/app", None).await;
        assert_eq!(status, 404);
    })
    .await;
}
