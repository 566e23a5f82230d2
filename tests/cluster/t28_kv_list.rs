//! Recursive LIST (beyond Vault) through a follower: every secret below a folder, paged with
//! `after`/`limit`, and with a restricted token only the keys in folders it may `list`.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

const LISTER: &str = r#"
path "secret/metadata/team/*" { capabilities = ["list", "read"] }
path "secret/metadata/team/private/*" { capabilities = ["deny"] }
path "secret/metadata/team/readonly/*" { capabilities = ["read"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_list_is_paged_and_hides_what_the_token_cannot_list() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let leader = cluster.wait_leader().await;
        let follower = (leader + 1) % 3;
        for name in [
            "team/a",
            "team/d/x",
            "team/d/y/z",
            "team/private/s",
            "team/private/inner/t",
            "team/readonly/r",
            "other/o",
        ] {
            let (status, body) = cluster
                .root(
                    follower,
                    "POST",
                    &format!("secret/data/{name}"),
                    Some(json!({"data": {"k": name}})),
                )
                .await;
            assert_eq!(status, 200, "{name}: {body}");
        }
        let (status, body) = cluster
            .root(
                leader,
                "PUT",
                "sys/policies/acl/lister",
                Some(json!({"policy": LISTER})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "auth/token/create",
                Some(json!({"policies": ["lister"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let token = body["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string();

        let list = |path: &str, token: &str| {
            let (cluster, path, token) = (&cluster, path.to_string(), token.to_string());
            async move {
                let (status, body) = cluster
                    .call(follower, "LIST", &path, None, Some(&token))
                    .await;
                (status, body["data"]["keys"].clone(), body)
            }
        };
        let root = cluster.root_token.clone();

        let (status, keys, body) = list("secret/metadata/team?recursive=true", &root).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            keys,
            json!([
                "a",
                "d/x",
                "d/y/z",
                "private/inner/t",
                "private/s",
                "readonly/r"
            ])
        );
        let (status, keys, _) = list("secret/metadata/?recursive=true&limit=2", &root).await;
        assert_eq!((status, keys), (200, json!(["other/o", "team/a"])));

        // The restricted token sees only keys in folders it may list, before pages are cut.
        let (status, keys, body) = list("secret/metadata/team?recursive=true", &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(keys, json!(["a", "d/x", "d/y/z"]));
        let (status, keys, _) = list("secret/metadata/team/?recursive=true&limit=2", &token).await;
        assert_eq!((status, keys), (200, json!(["a", "d/x"])));
        let (status, keys, _) = list(
            "secret/metadata/team?recursive=true&after=d/x&limit=2",
            &token,
        )
        .await;
        assert_eq!((status, keys), (200, json!(["d/y/z"])));
        let (status, keys, _) =
            list("secret/metadata/team?recursive=true&after=d/y/z", &token).await;
        assert_eq!((status, keys), (404, Value::Null), "past the visible end");
        let (status, body) = cluster
            .call(
                follower,
                "GET",
                "secret/metadata/team/d?list=true&recursive=true",
                None,
                Some(&token),
            )
            .await;
        assert_eq!(
            (status, body["data"]["keys"].clone()),
            (200, json!(["x", "y/z"]))
        );

        // Plain LIST is Vault's: not filtered; folders it may not list are refused outright.
        let (status, keys, _) = list("secret/metadata/team", &token).await;
        assert_eq!(
            (status, keys),
            (200, json!(["a", "d/", "private/", "readonly/"]))
        );
        for refused in [
            "secret/metadata/team/private?recursive=true",
            "secret/metadata/team/readonly?recursive=true",
            "secret/metadata/other?recursive=true",
            "secret/metadata/?recursive=true",
        ] {
            let (status, _, body) = list(refused, &token).await;
            assert_eq!(status, 403, "{refused}: {body}");
        }
        let (status, _, body) = list("secret/metadata/team?recursive=perhaps", &token).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["errors"].is_array(), "{body}");
    })
    .await;
}
