//! The published `vaultrs` client, unchanged, against a real 3-node cluster, pointed at a
//! follower: init and unseal, every KV v2 operation it offers, CAS conflicts, and mounts.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use vaultrs::api::kv2::requests::SetSecretMetadataRequest;
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::client::VaultClient;
use vaultrs::client::VaultClientSettingsBuilder;
use vaultrs::error::ClientError;
use vaultrs::kv2;
use vaultrs::sys;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

fn client(cluster: &TestCluster, index: usize, token: &str) -> VaultClient {
    let settings = VaultClientSettingsBuilder::default()
        .address(cluster.nodes[index].url())
        .token(token)
        .timeout(Some(Duration::from_secs(30)))
        .build()
        .expect("vaultrs settings");
    VaultClient::new(settings).expect("vaultrs client")
}

/// The HTTP status of a vaultrs error, if the server answered.
fn status_of(error: &ClientError) -> Option<u16> {
    match error {
        ClientError::APIError { code, .. } => Some(*code),
        // A non-2xx answer vaultrs did not parse as Vault's error list (a 404 with a body, as
        // Vault sends for deleted versions) surfaces as rustify's ServerResponseError.
        ClientError::RestClientError { source } => {
            let text = format!("{source:?}");
            let code = text.split("code: ").nth(1)?;
            code.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaultrs_drives_a_cluster_through_a_follower() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        let leader = cluster.wait_leader().await;
        let follower = (leader + 1) % 3;
        let other = (leader + 2) % 3;

        // Init and unseal with vaultrs, through the follower.
        let anonymous = client(&cluster, follower, "");
        let init = wait_for("sys/init via vaultrs", Duration::from_secs(60), || async {
            sys::start_initialization(&anonymous, 5, 3, None).await.ok()
        })
        .await;
        assert_eq!(init.keys.len(), 5);
        assert_eq!(init.keys_base64.len(), 5);
        cluster.root_token = init.root_token.clone();
        cluster.keys = init.keys_base64.clone();
        for index in 0..3 {
            let unsealer = client(&cluster, index, "");
            let mut last = None;
            for key in &init.keys[..3] {
                last = Some(
                    sys::unseal(&unsealer, Some(key.clone()), None, None)
                        .await
                        .expect("unseal"),
                );
            }
            let last = last.expect("three shares");
            assert!(!last.sealed, "node {index} unsealed");
            assert_eq!((last.threshold, last.n_shares), (3, 5));
        }
        let root = client(&cluster, follower, &init.root_token);
        // A follower is a standby in Vault's terms (health answers 429); the leader is active.
        let status = sys::status(&root).await.expect("status of the follower");
        assert!(matches!(status, sys::ServerStatus::STANDBY), "{status:?}");
        let active = client(&cluster, leader, &init.root_token);
        let status = sys::status(&active).await.expect("status of the leader");
        assert!(matches!(status, sys::ServerStatus::OK), "{status:?}");

        // Mounts.
        sys::mount::enable(&root, "apps", "kv-v2", None)
            .await
            .expect("enable kv-v2 at apps/");
        let mounts = sys::mount::list(&root).await.expect("list mounts");
        let apps = mounts.get("apps/").expect("apps/ listed");
        assert_eq!(apps.mount_type, "kv");
        assert!(mounts.contains_key("secret/"));

        // KV v2, every operation vaultrs has.
        let mut data = HashMap::new();
        data.insert("password", "hunter2");
        let v1 = kv2::set(&root, "apps", "db/creds", &data)
            .await
            .expect("set v1");
        assert_eq!(v1.version, 1);
        data.insert("password", "correct horse");
        let v2 = kv2::set(&root, "apps", "db/creds", &data)
            .await
            .expect("set v2");
        assert_eq!(v2.version, 2);
        // Reads from the other follower see the write at once.
        let reader = client(&cluster, other, &init.root_token);
        let latest: HashMap<String, String> = kv2::read(&reader, "apps", "db/creds")
            .await
            .expect("read latest");
        assert_eq!(latest["password"], "correct horse");
        let first: HashMap<String, String> = kv2::read_version(&reader, "apps", "db/creds", 1)
            .await
            .expect("read v1");
        assert_eq!(first["password"], "hunter2");
        let keys = kv2::list(&reader, "apps", "db").await.expect("list");
        assert_eq!(keys, vec!["creds".to_string()]);

        // CAS: a stale cas is refused, the right one wins.
        let stale = kv2::set_with_options(
            &root,
            "apps",
            "db/creds",
            &data,
            SetSecretRequestOptions { cas: 1 },
        )
        .await;
        assert_eq!(
            stale.as_ref().err().and_then(status_of),
            Some(400),
            "{stale:?}"
        );
        let v3 = kv2::set_with_options(
            &reader,
            "apps",
            "db/creds",
            &data,
            SetSecretRequestOptions { cas: 2 },
        )
        .await
        .expect("cas=2 wins");
        assert_eq!(v3.version, 3);

        // Metadata.
        let mut custom = HashMap::new();
        custom.insert("owner".to_string(), "team-a".to_string());
        kv2::set_metadata(
            &root,
            "apps",
            "db/creds",
            Some(
                &mut SetSecretMetadataRequest::builder()
                    .max_versions(2u64)
                    .custom_metadata(custom)
                    .delete_version_after("1h"),
            ),
        )
        .await
        .expect("set metadata");
        let meta = kv2::read_metadata(&reader, "apps", "db/creds")
            .await
            .expect("read metadata");
        assert_eq!(meta.current_version, 3);
        assert_eq!(meta.max_versions, 2);
        assert_eq!(meta.delete_version_after, "1h0m0s");
        assert_eq!(
            meta.custom_metadata.as_ref().and_then(|m| m.get("owner")),
            Some(&"team-a".to_string())
        );
        let v4 = kv2::set(&root, "apps", "db/creds", &data)
            .await
            .expect("v4");
        assert_eq!(v4.version, 4);
        let meta = kv2::read_metadata(&reader, "apps", "db/creds")
            .await
            .expect("read metadata after prune");
        let mut versions: Vec<&String> = meta.versions.keys().collect();
        versions.sort();
        assert_eq!(versions, vec!["3", "4"], "pruned to max_versions");

        // Delete, undelete, destroy.
        kv2::delete_latest(&root, "apps", "db/creds")
            .await
            .expect("delete latest");
        let gone = kv2::read::<Value>(&reader, "apps", "db/creds").await;
        assert_eq!(
            gone.as_ref().err().and_then(status_of),
            Some(404),
            "{gone:?}"
        );
        kv2::undelete_versions(&root, "apps", "db/creds", vec![4])
            .await
            .expect("undelete");
        let back: HashMap<String, String> = kv2::read(&reader, "apps", "db/creds")
            .await
            .expect("read after undelete");
        assert_eq!(back["password"], "correct horse");
        kv2::delete_versions(&root, "apps", "db/creds", vec![3])
            .await
            .expect("delete v3");
        kv2::destroy_versions(&root, "apps", "db/creds", vec![3])
            .await
            .expect("destroy v3");
        let meta = kv2::read_metadata(&reader, "apps", "db/creds")
            .await
            .expect("metadata after destroy");
        assert!(meta.versions["3"].destroyed);
        kv2::delete_metadata(&root, "apps", "db/creds")
            .await
            .expect("delete metadata");
        let none = kv2::read_metadata(&reader, "apps", "db/creds").await;
        assert_eq!(
            none.as_ref().err().and_then(status_of),
            Some(404),
            "{none:?}"
        );

        // Config of the mount.
        kv2::config::set(
            &root,
            "apps",
            Some(
                &mut vaultrs::api::kv2::requests::SetConfigurationRequest::builder()
                    .max_versions(7u64)
                    .cas_required(false),
            ),
        )
        .await
        .expect("config set");
        let config = kv2::config::read(&reader, "apps")
            .await
            .expect("config read");
        assert_eq!(config.max_versions, 7);

        // Disabling the mount deletes its data.
        kv2::set(&root, "apps", "left/behind", &data)
            .await
            .expect("set");
        sys::mount::disable(&root, "apps").await.expect("disable");
        let mounts = sys::mount::list(&reader).await.expect("list mounts");
        assert!(!mounts.contains_key("apps/"));
        let (status, body) = cluster
            .root(other, "GET", "apps/data/left/behind", None)
            .await;
        assert!(status == 400 || status == 404, "{status} {body}");
    })
    .await;
}
