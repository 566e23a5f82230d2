//! Nothing secret at rest: a distinctive secret value and the root token are searched for as
//! bytes in every file under every node's data dir (RocksDB SST and WAL files, snapshots) and in
//! the node logs, after the nodes flushed and stopped.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_tokens_never_reach_disk_in_plaintext() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let canary = format!("canary-{}-value", uuid::Uuid::new_v4());
        let (status, _) = cluster
            .root(
                1,
                "POST",
                "secret/data/leak-test",
                Some(json!({"data": {"v": canary}})),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = cluster.root(2, "GET", "secret/data/leak-test", None).await;
        assert_eq!(status, 200);
        for index in 0..3 {
            cluster.stop(index).await; // graceful: memtables are flushed to SST files
        }

        let mut files = Vec::new();
        files_under(cluster.dir(), &mut files);
        let sst = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "sst"))
            .count();
        assert!(sst > 0, "expected flushed SST files, found {files:?}");
        let needles = [
            canary.as_bytes().to_vec(),
            cluster.root_token.as_bytes().to_vec(),
        ];
        for file in &files {
            let bytes = std::fs::read(file).expect("read file");
            for needle in &needles {
                assert!(
                    !contains(&bytes, needle),
                    "plaintext secret found in {}",
                    file.display()
                );
            }
        }
    })
    .await;
}
