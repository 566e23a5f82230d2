//! Journal retention (issue 7): with `[audit] retention = "2s"` on every node, records older than
//! that are pruned from every node's journal identically, but only once every node's sinks have
//! them. Node 3 has a TCP socket sink whose collector is not listening: nothing is pruned, however
//! old, until the collector appears and node 3 catches up; then old records disappear on all
//! nodes at the same prune point (same sequence number and hash), every pruned record had reached
//! the collector first, and `sys/audit/verify` and `strongroom audit verify` still pass, from the
//! prune point. A restarted node comes back with the same prune point and a verifying chain.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::io::BufReader;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::Tuning;
use crate::fixture::free_port;
use crate::fixture::wait_for;

/// The retention every node is configured with.
const RETENTION_SECS: u64 = 2;

/// Sequence numbers the collector has received.
type Received = Arc<Mutex<BTreeSet<u64>>>;

/// A TCP collector on `port` keeping the `seq` of every line of every connection.
async fn collect(port: u16, received: Received) -> JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the collector port");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(seq) = serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|value| value["seq"].as_u64())
                    {
                        received.lock().unwrap().insert(seq);
                    }
                }
            });
        }
    })
}

async fn verify(cluster: &TestCluster, index: usize) -> Value {
    let (status, body) = cluster.root(index, "GET", "sys/audit/verify", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["valid"], true, "node {}: {body}", index + 1);
    body["data"].clone()
}

/// Records prune points seen on any node: one sequence number must always have one hash.
#[derive(Default)]
struct PrunePoints(BTreeMap<u64, String>);

impl PrunePoints {
    fn saw(&mut self, data: &Value) -> u64 {
        let seq = data["pruned_through_seq"]
            .as_u64()
            .expect("pruned_through_seq");
        let hash = data["prune_hash"].as_str().expect("prune_hash").to_string();
        let known = self.0.entry(seq).or_insert_with(|| hash.clone());
        assert_eq!(
            *known, hash,
            "two nodes disagree on the hash at prune point {seq}"
        );
        seq
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_records_are_pruned_identically_only_after_every_sink_has_them() {
    bounded(Duration::from_secs(240), async {
        let retention = format!("\n[audit]\nretention = \"{RETENTION_SECS}s\"\n");
        let mut cluster =
            TestCluster::start_custom(3, Tuning::default(), &retention, &[]).await;
        let port = free_port();
        cluster.stop(2).await;
        let config = cluster.config_path(2).to_path_buf();
        let mut text = fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[audit.sink]]\nname = \"siem\"\ntype = \"socket\"\nsocket_type = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
        fs::write(&config, text).unwrap();
        cluster.spawn(2);
        cluster.wait_http(2).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }

        for n in 0..12 {
            let (status, body) = cluster
                .root(
                    n % 3,
                    "POST",
                    &format!("secret/data/retention/k{n}"),
                    Some(json!({"data": {"v": n}})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let written_head = verify(&cluster, 0).await["head_seq"].as_u64().unwrap();
        wait_for(
            "node 3's sink reports failing",
            Duration::from_secs(30),
            || async {
                let (_, body) = cluster.root(2, "GET", "sys/audit", None).await;
                (body["data"]["siem/"]["failing"] == true).then_some(())
            },
        )
        .await;

        // A negative check needs time to pass: the records above are several retention periods
        // old, and prune passes (every second at this retention) have run, before we look.
        tokio::time::sleep(Duration::from_secs(3 * RETENTION_SECS + 2)).await;
        for index in 0..3 {
            let data = verify(&cluster, index).await;
            assert_eq!(
                data["pruned_through_seq"], 0,
                "node {}: pruned while node 3's sink has nothing: {data}",
                index + 1
            );
            let (status, body) = cluster
                .root(index, "GET", "sys/audit/log?from=1&limit=1", None)
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["records"][0]["seq"], 1, "{body}");
        }

        // The collector listens: node 3 catches up, and pruning follows on every node.
        let received: Received = Arc::default();
        let collector = collect(port, received.clone()).await;
        let points = Mutex::new(PrunePoints::default());
        let common = wait_for(
            "every node pruned past the written records, at the same prune point",
            Duration::from_secs(90),
            || async {
                let mut seen = Vec::new();
                for index in 0..3 {
                    let data = verify(&cluster, index).await;
                    let pruned = points.lock().unwrap().saw(&data);
                    let got = received.lock().unwrap().clone();
                    let missing: Vec<u64> =
                        (1..=pruned).filter(|seq| !got.contains(seq)).collect();
                    assert!(
                        missing.is_empty(),
                        "node {} pruned records node 3's sink never delivered: {missing:?}",
                        index + 1
                    );
                    seen.push(pruned);
                }
                (seen[0] >= written_head && seen.iter().all(|seq| *seq == seen[0]))
                    .then_some(seen[0])
            },
        )
        .await;

        // Pruned records are gone from every node's log; what is left starts after the prune
        // point and still verifies from it.
        for index in 0..3 {
            let (status, body) = cluster
                .root(index, "GET", "sys/audit/log?from=1&limit=5", None)
                .await;
            assert_eq!(status, 200, "{body}");
            let pruned = body["data"]["pruned_through"]["seq"].as_u64().unwrap();
            assert!(pruned >= common, "{body}");
            for record in body["data"]["records"].as_array().unwrap() {
                assert!(record["seq"].as_u64().unwrap() > pruned, "{body}");
            }
            let output = Command::new(env!("CARGO_BIN_EXE_strongroom"))
                .args(["audit", "verify", "--address", &cluster.nodes[index].url()])
                .env("STRONGROOM_TOKEN", &cluster.root_token)
                .env_remove("VAULT_TOKEN")
                .output()
                .expect("run strongroom audit verify");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert_eq!(output.status.code(), Some(0), "{stdout}");
            assert!(
                stdout.contains("hash chain intact") && stdout.contains("pruned by retention"),
                "{stdout}"
            );
        }

        // A restarted node keeps its prune point (and agrees with the others on its hash).
        cluster.stop(1).await;
        cluster.spawn(1);
        cluster.wait_http(1).await;
        cluster.unseal(1).await;
        let data = wait_for("node 2 serves again", Duration::from_secs(60), || async {
            let (status, body) = cluster.root(1, "GET", "sys/audit/verify", None).await;
            (status == 200).then_some(body["data"].clone())
        })
        .await;
        assert_eq!(data["valid"], true, "{data}");
        assert!(points.lock().unwrap().saw(&data) >= common, "{data}");
        collector.abort();
    })
    .await;
}
