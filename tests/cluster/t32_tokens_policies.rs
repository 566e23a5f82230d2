//! Tokens and ACL policies on a real 3-node cluster over HTTP: a read-only policy is enforced on
//! every node; revoking a token through one node makes every node refuse it and its children on
//! the next request; a token with a 2 s TTL is refused everywhere once it expires, without waiting
//! for the leader's sweep; bad policies get a 400 that says what is wrong and change nothing.

use std::time::Duration;
use std::time::SystemTime;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

const APP_READ: &str = r#"
path "secret/data/app/*" {
  capabilities = ["read"]
}
"#;

const TOKEN_MAKER: &str = r#"
path "auth/token/create" {
  capabilities = ["update"]
}
"#;

async fn unsealed_cluster() -> (TestCluster, usize) {
    let mut cluster = TestCluster::start(3).await;
    cluster.init(0).await;
    for index in 0..3 {
        cluster.unseal(index).await;
    }
    let leader = cluster.wait_leader().await;
    (cluster, leader)
}

async fn write_policy(cluster: &TestCluster, node: usize, name: &str, policy: &str) {
    let path = format!("sys/policies/acl/{name}");
    let (status, body) = cluster
        .root(node, "PUT", &path, Some(json!({ "policy": policy })))
        .await;
    assert_eq!(status, 204, "write policy {name}: {body}");
}

/// Creates a token through `node` with `token` as parent; returns (client_token, accessor).
async fn create_token(
    cluster: &TestCluster,
    node: usize,
    token: &str,
    body: Value,
) -> (String, String) {
    let (status, reply) = cluster
        .call(node, "POST", "auth/token/create", Some(body), Some(token))
        .await;
    assert_eq!(status, 200, "token create: {reply}");
    let auth = &reply["auth"];
    let client_token = auth["client_token"].as_str().expect("client_token");
    assert!(
        client_token.starts_with("hvs."),
        "service token prefix: {client_token}"
    );
    let accessor = auth["accessor"].as_str().expect("accessor");
    (client_token.to_string(), accessor.to_string())
}

fn status_only(reply: &(u16, Value)) -> u16 {
    reply.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_policy_revocation_and_children_on_every_node() {
    bounded(Duration::from_secs(180), async {
        let (cluster, leader) = unsealed_cluster().await;
        let follower = (leader + 1) % 3;
        write_policy(&cluster, follower, "app-read", APP_READ).await;
        write_policy(&cluster, follower, "token-maker", TOKEN_MAKER).await;
        let (status, body) = cluster
            .root(
                leader,
                "POST",
                "secret/data/app/db",
                Some(json!({"data": {"password": "hunter2"}})),
            )
            .await;
        assert_eq!(status, 200, "seed secret: {body}");
        let (status, body) = cluster
            .root(
                leader,
                "POST",
                "secret/data/other",
                Some(json!({"data": {"k": "v"}})),
            )
            .await;
        assert_eq!(status, 200, "seed other secret: {body}");

        let root = cluster.root_token.clone();
        let (reader, reader_accessor) = create_token(
            &cluster,
            follower,
            &root,
            json!({"policies": ["app-read", "token-maker"], "ttl": "1h"}),
        )
        .await;

        for node in 0..3 {
            let (status, body) = cluster
                .call(node, "GET", "secret/data/app/db", None, Some(&reader))
                .await;
            assert_eq!(status, 200, "read on node {node}: {body}");
            assert_eq!(body["data"]["data"]["password"], "hunter2");
            let write = cluster
                .call(
                    node,
                    "POST",
                    "secret/data/app/db",
                    Some(json!({"data": {"password": "x"}})),
                    Some(&reader),
                )
                .await;
            assert_eq!(
                status_only(&write),
                403,
                "write on node {node}: {:?}",
                write.1
            );
            assert_eq!(write.1, json!({"errors": ["permission denied"]}));
            let other = cluster
                .call(node, "GET", "secret/data/other", None, Some(&reader))
                .await;
            assert_eq!(status_only(&other), 403, "other path on node {node}");
            let sudo = cluster
                .call(node, "GET", "sys/audit/log", None, Some(&reader))
                .await;
            assert_eq!(status_only(&sudo), 403, "sudo path on node {node}");
            let (status, caps) = cluster
                .call(
                    node,
                    "POST",
                    "sys/capabilities-self",
                    Some(json!({"paths": ["secret/data/app/db", "secret/data/other"]})),
                    Some(&reader),
                )
                .await;
            assert_eq!(status, 200, "capabilities-self: {caps}");
            assert_eq!(caps["secret/data/app/db"], json!(["read"]));
            assert_eq!(caps["secret/data/other"], json!(["deny"]));
        }
        // The write refused above left the secret unchanged.
        let (_, body) = cluster
            .root(follower, "GET", "secret/data/app/db", None)
            .await;
        assert_eq!(body["data"]["metadata"]["version"], 1);

        // A child of the reader, created by the reader on another node.
        let other_follower = (leader + 2) % 3;
        let (child, _) = create_token(
            &cluster,
            other_follower,
            &reader,
            json!({"policies": ["app-read"]}),
        )
        .await;
        let (status, lookup) = cluster
            .call(leader, "GET", "auth/token/lookup-self", None, Some(&child))
            .await;
        assert_eq!(status, 200, "child lookup-self: {lookup}");
        assert_eq!(lookup["data"]["policies"], json!(["app-read", "default"]));
        // A child may not hold a policy its parent lacks.
        let (status, _) = cluster
            .call(
                leader,
                "POST",
                "auth/token/create",
                Some(json!({"policies": ["root"]})),
                Some(&reader),
            )
            .await;
        assert_eq!(status, 400, "escalation to root must be refused");

        // Revoke the parent through one follower: every node refuses it and the child next time.
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "auth/token/revoke-accessor",
                Some(json!({"accessor": reader_accessor})),
            )
            .await;
        assert_eq!(status, 204, "revoke-accessor: {body}");
        for node in 0..3 {
            for (name, token) in [("parent", &reader), ("child", &child)] {
                let (status, body) = cluster
                    .call(node, "GET", "secret/data/app/db", None, Some(token))
                    .await;
                assert_eq!(status, 403, "revoked {name} on node {node}: {body}");
                assert_eq!(body, json!({"errors": ["permission denied"]}));
            }
        }

        // An unknown token and no token at all get the same answer.
        for token in [Some("hvs.AAAAAAAAAAAAAAAAAAAAAAAA"), None] {
            let (status, body) = cluster
                .call(follower, "GET", "secret/data/app/db", None, token)
                .await;
            assert_eq!(status, 403, "token {token:?}: {body}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refused_on_every_node_without_a_sweep() {
    bounded(Duration::from_secs(120), async {
        let (cluster, leader) = unsealed_cluster().await;
        let follower = (leader + 1) % 3;
        write_policy(&cluster, leader, "app-read", APP_READ).await;
        let root = cluster.root_token.clone();
        let (short, accessor) = create_token(
            &cluster,
            follower,
            &root,
            json!({"policies": ["app-read"], "ttl": "2s"}),
        )
        .await;
        let (status, lookup) = cluster
            .call(
                follower,
                "GET",
                "auth/token/lookup-self",
                None,
                Some(&short),
            )
            .await;
        assert_eq!(status, 200, "lookup-self: {lookup}");
        assert!(lookup["data"]["ttl"].as_u64().expect("ttl") <= 2);
        let expire_time = lookup["data"]["expire_time"].as_str().expect("expire_time");
        let expire_at = humantime_rfc3339(expire_time);
        for node in 0..3 {
            let (status, body) = cluster
                .call(node, "GET", "auth/token/lookup-self", None, Some(&short))
                .await;
            assert_eq!(status, 200, "before expiry on node {node}: {body}");
        }
        // Wait for the clock to pass the token's expiry (the property under test is time).
        if let Ok(left) = expire_at.duration_since(SystemTime::now()) {
            tokio::time::sleep(left + Duration::from_millis(50)).await;
        }
        for node in 0..3 {
            let (status, body) = cluster
                .call(node, "GET", "auth/token/lookup-self", None, Some(&short))
                .await;
            assert_eq!(status, 403, "expired token on node {node}: {body}");
        }
        // The entry may still be stored until the sweeper runs; either way lookups by accessor
        // must not present it as a live token.
        let (status, body) = cluster
            .root(
                leader,
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({"accessor": accessor})),
            )
            .await;
        assert!(
            status == 400 || status == 404 || body["data"]["ttl"] == 0,
            "expired token by accessor: {status} {body}"
        );
    })
    .await;
}

/// Parses Vault's RFC 3339 `expire_time`.
fn humantime_rfc3339(text: &str) -> SystemTime {
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|err| panic!("expire_time {text}: {err}"));
    SystemTime::UNIX_EPOCH + Duration::from_nanos(parsed.unix_timestamp_nanos() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policies_are_refused_with_the_reason_and_change_nothing() {
    bounded(Duration::from_secs(120), async {
        let (cluster, leader) = unsealed_cluster().await;
        let follower = (leader + 1) % 3;
        let (_, before) = cluster
            .root(follower, "LIST", "sys/policies/acl", None)
            .await;
        let huge = format!(
            "path \"a/*\" {{ capabilities = [\"read\"] }}\n# {}\n",
            "x".repeat(200 * 1024)
        );
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "sys/policies/acl/bad-cap",
                json!({"policy": "path \"a/*\" { capabilities = [\"read\", \"fly\"] }"}),
                "fly",
            ),
            (
                "sys/policies/acl/bad-hcl",
                json!({"policy": "path \"a/*\" {\n  capabilities = [\"read\"\n"}),
                "line",
            ),
            ("sys/policies/acl/huge", json!({"policy": huge}), "large"),
            ("sys/policies/acl/a..b", json!({"policy": APP_READ}), "name"),
            ("sys/policies/acl/a/b", json!({"policy": APP_READ}), "name"),
            ("sys/policies/acl/no-body", json!({"policy": 7}), "policy"),
            ("sys/policy/legacy-bad", json!({"rules": "path {"}), "line"),
        ];
        for (path, body, expected) in cases {
            let (status, reply) = cluster.root(follower, "PUT", path, Some(body)).await;
            assert_eq!(status, 400, "{path}: {reply}");
            let message = reply["errors"][0]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            assert!(
                message.contains(expected),
                "{path}: error {message:?} should mention {expected:?}"
            );
        }
        let (_, after) = cluster.root(leader, "LIST", "sys/policies/acl", None).await;
        assert_eq!(before["data"]["keys"], after["data"]["keys"]);
        assert_eq!(after["data"]["keys"], json!(["default", "root"]));
        // The built-in policies cannot be changed or removed.
        let (status, _) = cluster
            .root(follower, "DELETE", "sys/policies/acl/default", None)
            .await;
        assert_eq!(status, 400);
        let (status, _) = cluster
            .root(
                follower,
                "PUT",
                "sys/policies/acl/root",
                Some(json!({"policy": APP_READ})),
            )
            .await;
        assert_eq!(status, 400);
    })
    .await;
}
