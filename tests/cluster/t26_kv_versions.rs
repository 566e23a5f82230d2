//! KV v2 version pruning at scale: N versions written to one path with `max_versions = 5` leave
//! exactly 5 readable versions, and the storage of the others is gone. The key count is taken
//! from each node's state machine itself (opened read-only after the node stopped), so it also
//! proves that followers applied the deletions, not only that the API hides them.
//!
//! The full 10,000 writes are sequential (one path: each write must see the previous version) and
//! took 17 minutes in a debug build on a loaded 2-core machine, so that run is `#[ignore]`d and run
//! by name (`cargo test --workspace --test cluster -- --ignored t26_kv_versions`; too long for
//! CI's budget); the default suite runs the same check with 500 writes.

use std::time::Duration;
use std::time::Instant;

use serde_json::json;
use strongroom_raft::StoreReader;

use crate::bounded;
use crate::fixture::TestCluster;

const KEEP: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_versions_leave_five_and_no_storage_behind() {
    versions_leave_five_and_no_storage_behind(500, Duration::from_secs(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "10,000 sequential writes: 10 to 17 minutes in a debug build; run by name"]
async fn ten_thousand_versions_leave_five_and_no_storage_behind() {
    versions_leave_five_and_no_storage_behind(10_000, Duration::from_secs(2_400)).await;
}

/// Writes `writes` versions to one path (round robin over the nodes) with `max_versions = 5`,
/// then checks the API and every node's state machine.
async fn versions_leave_five_and_no_storage_behind(writes: u64, limit: Duration) {
    bounded(limit, async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let (status, body) = cluster
            .root(
                1,
                "POST",
                "secret/metadata/many",
                Some(json!({"max_versions": KEEP})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        let (status, mounts) = cluster.root(2, "GET", "sys/mounts", None).await;
        assert_eq!(status, 200, "{mounts}");
        let uuid = mounts["data"]["secret/"]["uuid"]
            .as_str()
            .expect("the secret/ mount has a uuid")
            .to_string();

        // Every node takes writes in turn; followers hand them to the leader.
        let started = Instant::now();
        for version in 1..=writes {
            let node = usize::try_from(version % 3).expect("small");
            let (status, body) = cluster
                .root(
                    node,
                    "POST",
                    "secret/data/many",
                    Some(json!({"data": {"n": version}})),
                )
                .await;
            assert_eq!(status, 200, "write {version} via node {}: {body}", node + 1);
            assert_eq!(body["data"]["version"], version, "{body}");
        }
        eprintln!("{writes} versions written in {:?}", started.elapsed());

        let first_kept = writes - KEEP + 1;
        let (status, meta) = cluster.root(0, "GET", "secret/metadata/many", None).await;
        assert_eq!(status, 200, "{meta}");
        assert_eq!(meta["data"]["current_version"], writes);
        assert_eq!(meta["data"]["oldest_version"], first_kept);
        let listed: Vec<u64> = meta["data"]["versions"]
            .as_object()
            .expect("versions object")
            .keys()
            .map(|key| key.parse().expect("numeric version"))
            .collect::<std::collections::BTreeSet<u64>>()
            .into_iter()
            .collect();
        assert_eq!(listed, (first_kept..=writes).collect::<Vec<_>>());
        for index in 0..3 {
            for version in first_kept..=writes {
                let (status, body) = cluster
                    .root(
                        index,
                        "GET",
                        &format!("secret/data/many?version={version}"),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "node {} version {version}: {body}", index + 1);
                assert_eq!(body["data"]["data"], json!({"n": version}));
            }
            for version in [1, 2, writes / 2, first_kept - 1] {
                let (status, body) = cluster
                    .root(
                        index,
                        "GET",
                        &format!("secret/data/many?version={version}"),
                        None,
                    )
                    .await;
                assert_eq!(status, 404, "pruned version {version} readable: {body}");
            }
        }

        // What is left in each node's state machine under the mount: the metadata and the five
        // kept versions, nothing else.
        for index in 0..3 {
            cluster.stop(index).await;
        }
        let mount_prefix = format!("logical/{uuid}/");
        for node in &cluster.nodes {
            let reader = StoreReader::open_read_only(&node.data_dir).expect("open stopped node");
            let keys: Vec<String> = reader
                .scan(&mount_prefix, None, 100)
                .expect("scan the mount")
                .into_iter()
                .map(|(key, _)| key[mount_prefix.len()..].to_string())
                .collect();
            let mut expected: Vec<String> = (first_kept..=writes)
                .map(|version| format!("version/many/{version}"))
                .collect();
            expected.push("meta/many".into());
            expected.sort();
            assert_eq!(keys, expected, "node {}: keys under the mount", node.id);
            assert_eq!(
                reader.prefix_stat(&mount_prefix).expect("count").count,
                KEEP + 1,
                "node {}",
                node.id
            );
        }
    })
    .await;
}
