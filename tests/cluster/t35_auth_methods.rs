//! Auth methods on a real 3-node cluster over HTTP: AppRole and userpass are enabled, configured
//! and logged into through a follower; the tokens they issue read a KV secret allowed by their
//! policy on every node and are refused writes; secret IDs run out of uses (also under concurrent
//! logins on different nodes) and expire, and the leader's maintenance removes expired ones;
//! wrong credentials get Vault's 400 messages.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

const READ_POLICY: &str = "path \"secret/data/*\" { capabilities = [\"read\"] }";

/// A cluster of 3 unsealed nodes with the `app-read` policy and a secret at `secret/data/app`;
/// returns it with the index of a follower.
async fn prepared_cluster() -> (TestCluster, usize) {
    let mut cluster = TestCluster::start(3).await;
    cluster.init(0).await;
    for index in 0..3 {
        cluster.unseal(index).await;
    }
    let leader = cluster.wait_leader().await;
    let follower = (leader + 1) % 3;
    let (status, body) = cluster
        .root(
            follower,
            "PUT",
            "sys/policies/acl/app-read",
            Some(json!({ "policy": READ_POLICY })),
        )
        .await;
    assert_eq!(status, 204, "write policy: {body}");
    let (status, body) = cluster
        .root(
            follower,
            "POST",
            "secret/data/app",
            Some(json!({"data": {"password": "s3cret"}})),
        )
        .await;
    assert_eq!(status, 200, "write secret: {body}");
    (cluster, follower)
}

/// The client token of a login response, checked to be a 200 with an `auth` block.
fn client_token(status: u16, body: &Value) -> String {
    assert_eq!(status, 200, "login: {body}");
    body["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no client_token in {body}"))
        .to_string()
}

/// Checks that `token` reads the secret on every node and is refused a write.
async fn token_reads_everywhere(cluster: &TestCluster, token: &str) {
    for index in 0..3 {
        let (status, body) = cluster
            .call(index, "GET", "secret/data/app", None, Some(token))
            .await;
        assert_eq!(status, 200, "read on node {}: {body}", index + 1);
        assert_eq!(body["data"]["data"]["password"], "s3cret");
        let (status, body) = cluster
            .call(
                index,
                "POST",
                "secret/data/app",
                Some(json!({"data": {"password": "x"}})),
                Some(token),
            )
            .await;
        assert_eq!(
            status,
            403,
            "write on node {} must be refused: {body}",
            index + 1
        );
    }
}

async fn login_approle(
    cluster: &TestCluster,
    index: usize,
    role_id: &str,
    secret_id: &str,
) -> (u16, Value) {
    cluster
        .call(
            index,
            "POST",
            "auth/approle/login",
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
            None,
        )
        .await
}

async fn new_secret_id(cluster: &TestCluster, index: usize, role: &str, body: Value) -> String {
    let (status, created) = cluster
        .root(
            index,
            "POST",
            &format!("auth/approle/role/{role}/secret-id"),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "secret-id: {created}");
    created["data"]["secret_id"]
        .as_str()
        .expect("secret_id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_logins_through_a_follower_work_on_every_node() {
    bounded(Duration::from_secs(240), async {
        let (cluster, follower) = prepared_cluster().await;
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "sys/auth/approle",
                Some(json!({"type": "approle"})),
            )
            .await;
        assert_eq!(status, 204, "enable approle: {body}");
        let (status, body) = cluster.root(0, "GET", "sys/auth", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["approle/"]["type"], "approle", "{body}");

        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "auth/approle/role/web",
                Some(
                    json!({"token_policies": "app-read", "secret_id_num_uses": 2,
                            "token_ttl": "1h"}),
                ),
            )
            .await;
        assert_eq!(status, 204, "create role: {body}");
        let (status, body) = cluster
            .root(follower, "GET", "auth/approle/role/web/role-id", None)
            .await;
        assert_eq!(status, 200, "{body}");
        let role_id = body["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string();
        let secret_id = new_secret_id(&cluster, follower, "web", json!({})).await;

        // Log in through the follower, without a token.
        let (status, body) = login_approle(&cluster, follower, &role_id, &secret_id).await;
        let token = client_token(status, &body);
        let policies = body["auth"]["policies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(policies.contains(&json!("app-read")), "{body}");
        assert_eq!(body["auth"]["metadata"]["role_name"], "web", "{body}");
        token_reads_everywhere(&cluster, &token).await;

        // Two uses: the second login works, the third is refused on any node.
        let (status, body) =
            login_approle(&cluster, (follower + 1) % 3, &role_id, &secret_id).await;
        client_token(status, &body);
        for index in 0..3 {
            let (status, body) = login_approle(&cluster, index, &role_id, &secret_id).await;
            assert_eq!(
                status,
                400,
                "exhausted secret-id on node {}: {body}",
                index + 1
            );
            assert_eq!(body["errors"], json!(["invalid role or secret ID"]));
        }
        let (status, body) = login_approle(&cluster, follower, &role_id, "not-a-secret").await;
        assert_eq!(
            (status, body["errors"].clone()),
            (400, json!(["invalid role or secret ID"]))
        );

        // A single-use secret ID raced by logins on all three nodes: exactly one wins.
        let once = new_secret_id(&cluster, follower, "web", json!({"num_uses": 1})).await;
        let (a, b, c) = tokio::join!(
            login_approle(&cluster, 0, &role_id, &once),
            login_approle(&cluster, 1, &role_id, &once),
            login_approle(&cluster, 2, &role_id, &once),
        );
        let statuses = [a.0, b.0, c.0];
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "exactly one concurrent login wins: {statuses:?} {a:?} {b:?} {c:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 400),
            "{statuses:?}"
        );

        // An expiring secret ID works at once, is refused after its TTL on every node, and the
        // leader's maintenance removes it.
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "auth/approle/role/short",
                Some(json!({"token_policies": "app-read", "secret_id_ttl": "3s"})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (_, body) = cluster
            .root(0, "GET", "auth/approle/role/short/role-id", None)
            .await;
        let short_role = body["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string();
        let short_secret = new_secret_id(&cluster, follower, "short", json!({})).await;
        let (status, body) = login_approle(&cluster, follower, &short_role, &short_secret).await;
        client_token(status, &body);
        let this = &cluster;
        wait_for("the secret-id to expire", Duration::from_secs(20), || {
            let (role, secret) = (short_role.clone(), short_secret.clone());
            async move {
                let (status, _) = login_approle(this, follower, &role, &secret).await;
                (status == 400).then_some(())
            }
        })
        .await;
        for index in 0..3 {
            let (status, body) = login_approle(&cluster, index, &short_role, &short_secret).await;
            assert_eq!(
                status,
                400,
                "expired secret-id on node {}: {body}",
                index + 1
            );
        }
        wait_for(
            "expired secret-ids to be cleaned up",
            Duration::from_secs(30),
            || async {
                let (status, _) = this
                    .root(0, "LIST", "auth/approle/role/short/secret-id", None)
                    .await;
                (status == 404).then_some(())
            },
        )
        .await;

        // CIDR bounds use the client's address (127.0.0.1 here).
        let (status, _) = cluster
            .root(
                follower,
                "POST",
                "auth/approle/role/fenced",
                Some(json!({"secret_id_bound_cidrs": "10.0.0.0/8"})),
            )
            .await;
        assert_eq!(status, 204);
        let (_, body) = cluster
            .root(0, "GET", "auth/approle/role/fenced/role-id", None)
            .await;
        let fenced_role = body["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_string();
        let fenced_secret = new_secret_id(&cluster, follower, "fenced", json!({})).await;
        let (status, body) = login_approle(&cluster, follower, &fenced_role, &fenced_secret).await;
        assert_eq!(status, 400, "{body}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userpass_logins_through_a_follower_work_on_every_node() {
    bounded(Duration::from_secs(180), async {
        let (cluster, follower) = prepared_cluster().await;
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "sys/auth/userpass",
                Some(json!({"type": "userpass"})),
            )
            .await;
        assert_eq!(status, 204, "enable userpass: {body}");
        let (status, body) = cluster
            .root(
                follower,
                "POST",
                "auth/userpass/users/alice",
                Some(json!({"password": "correct horse", "token_policies": "app-read"})),
            )
            .await;
        assert_eq!(status, 204, "create user: {body}");
        let (status, body) = cluster
            .root(2, "GET", "auth/userpass/users/alice", None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["data"].get("password").is_none(), "{body}");

        let (status, body) = cluster
            .call(
                follower,
                "POST",
                "auth/userpass/login/alice",
                Some(json!({"password": "correct horse"})),
                None,
            )
            .await;
        let token = client_token(status, &body);
        assert_eq!(body["auth"]["metadata"]["username"], "alice", "{body}");
        token_reads_everywhere(&cluster, &token).await;

        for (user, password) in [("alice", "wrong"), ("mallory", "correct horse")] {
            let (status, body) = cluster
                .call(
                    follower,
                    "POST",
                    &format!("auth/userpass/login/{user}"),
                    Some(json!({"password": password})),
                    None,
                )
                .await;
            assert_eq!(status, 400, "{user}: {body}");
            assert_eq!(body["errors"], json!(["invalid username or password"]));
        }

        // A password change takes effect on every node.
        let (status, _) = cluster
            .root(
                0,
                "POST",
                "auth/userpass/users/alice/password",
                Some(json!({"password": "battery staple"})),
            )
            .await;
        assert_eq!(status, 204);
        for index in 0..3 {
            let (status, _) = cluster
                .call(
                    index,
                    "POST",
                    "auth/userpass/login/alice",
                    Some(json!({"password": "correct horse"})),
                    None,
                )
                .await;
            assert_eq!(status, 400, "old password on node {}", index + 1);
        }
        let (status, body) = cluster
            .call(
                2,
                "POST",
                "auth/userpass/login/alice",
                Some(json!({"password": "battery staple"})),
                None,
            )
            .await;
        client_token(status, &body);
    })
    .await;
}
