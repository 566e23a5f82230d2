//! Audit end to end (issue 7, "done when" 1, 2 and 4). Every node streams its journal to a file
//! sink configured in its server file. 2,000 mixed requests (writes, reads, denied, malformed,
//! unseal attempts with a real share, token lookups) go through all three nodes, a follower is
//! SIGKILLed after the first 1,000 and restarted and unsealed after 1,500. Then:
//! - every answer below 500 carries a request id (no record, no response), and every request id
//!   answered has exactly one record; the restarted node's unseal attempts, made while it was
//!   sealed, are recorded too (share HMAC'd);
//! - every node's journal is identical (sequence numbers and chain hashes) and verifies;
//! - no secret value, token or unseal share (base64 or hex) appears in any record or sink file;
//! - a sink whose directory is replaced by a file keeps failing without blocking requests, and
//!   receives every record once it is restored.
//!
//! `sys/audit` lists the sinks, refuses enabling by API, and `sys/audit-hash` reproduces the
//! HMACs the records hold.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;
use std::time::Instant;

use base64::Engine;
use futures::StreamExt;
use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

const BAD_TOKEN: &str = "hvs.bad-token-canary-5a1f0c";
/// Requests in the burst, and how many are in flight at once.
const BURST: usize = 2000;
const IN_FLIGHT: usize = 8;

fn sink_dir(cluster: &TestCluster, index: usize) -> PathBuf {
    cluster.dir().join(format!("sink{}", index + 1))
}

/// Every sink file of a sink directory (current and rotated), concatenated.
fn sink_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("sink dir").flatten() {
        if entry.path().is_file() {
            out.extend(fs::read(entry.path()).expect("read sink file"));
        }
    }
    out
}

fn sink_seqs(dir: &Path) -> BTreeSet<u64> {
    String::from_utf8_lossy(&sink_bytes(dir))
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|value| value["seq"].as_u64())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Records 1..=upto of node `index`'s journal (seq, hash, record), read through `sys/audit/log`.
async fn journal(cluster: &TestCluster, index: usize, upto: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 1;
    while from <= upto {
        let (status, body) = cluster
            .root(
                index,
                "GET",
                &format!("sys/audit/log?from={from}&limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, 200, "node {} audit log: {body}", index + 1);
        let records = body["data"]["records"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !records.is_empty(),
            "node {} journal ends before {upto}",
            index + 1
        );
        for record in records {
            let seq = record["seq"].as_u64().unwrap();
            if seq <= upto {
                out.push(record);
            }
            from = seq + 1;
        }
    }
    out
}

async fn head(cluster: &TestCluster, index: usize) -> u64 {
    let (status, body) = cluster
        .root(
            index,
            "GET",
            "sys/audit/log?limit=1&from=18446744073709551615",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["head"]["seq"].as_u64().unwrap()
}

/// Waits until node `index`'s sink has delivered through `seq` (as `sys/audit` reports).
async fn wait_delivered(cluster: &TestCluster, index: usize, seq: u64) {
    wait_for(
        &format!("node {} sink delivers through {seq}", index + 1),
        Duration::from_secs(60),
        || async move {
            let (_, body) = cluster.root(index, "GET", "sys/audit", None).await;
            let delivered = body["data"]["file/"]["delivered_seq"].as_u64()?;
            (delivered >= seq).then_some(())
        },
    )
    .await;
}

/// The answer to one burst request.
struct Answer {
    n: usize,
    status: u16,
    request_id: Option<String>,
}

/// Burst request `n` on node `index`: its kind is `n % 6`.
async fn burst_request(cluster: &TestCluster, index: usize, n: usize) -> Answer {
    let base = cluster.nodes[index].url();
    let url = format!("{base}/v1/secret/data/burst/k{}", n % 200);
    let root = cluster.root_token.as_str();
    let request = match n % 6 {
        0 => cluster
            .http
            .post(&url)
            .header("X-Vault-Token", root)
            .json(&json!({"data": {"password": format!("canary-value-{n}-q9z")}})),
        1 => cluster.http.get(&url).header("X-Vault-Token", root),
        2 => cluster.http.get(&url).header("X-Vault-Token", BAD_TOKEN),
        3 => cluster
            .http
            .post(&url)
            .header("X-Vault-Token", root)
            .header("Content-Type", "application/json")
            .body("{not json"),
        // A real share (the fifth, never needed) sent to an unsealed node.
        4 => cluster
            .http
            .put(format!("{base}/v1/sys/unseal"))
            .json(&json!({"key": cluster.keys[4]})),
        // The answer holds the token itself.
        _ => cluster
            .http
            .get(format!("{base}/v1/auth/token/lookup-self"))
            .header("X-Vault-Token", root),
    };
    match request.timeout(Duration::from_secs(20)).send().await {
        Ok(response) => Answer {
            n,
            status: response.status().as_u16(),
            request_id: response
                .headers()
                .get("x-strongroom-request-id")
                .and_then(|id| id.to_str().ok())
                .map(str::to_string),
        },
        Err(_) => Answer {
            n,
            status: 0,
            request_id: None,
        },
    }
}

/// Sends burst requests `range` round-robin over `nodes`, `IN_FLIGHT` at a time.
async fn burst(
    cluster: &TestCluster,
    range: std::ops::Range<usize>,
    nodes: &[usize],
) -> Vec<Answer> {
    futures::stream::iter(range)
        .map(|n| burst_request(cluster, nodes[n % nodes.len()], n))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

async fn audit_hash(cluster: &TestCluster, input: &str) -> String {
    let (status, body) = cluster
        .root(
            1,
            "POST",
            "sys/audit-hash/file",
            Some(json!({ "input": input })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["hash"], body["data"]["hash"],
        "copied to the top level"
    );
    body["data"]["hash"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_journal_and_sinks_survive_kills_and_faults() {
    bounded(Duration::from_secs(600), async {
        let mut cluster = TestCluster::start(3).await;
        // Sinks come from the server file only: add one to every node's config and restart.
        for index in 0..3 {
            cluster.stop(index).await;
            let dir = sink_dir(&cluster, index);
            fs::create_dir_all(&dir).unwrap();
            let config = cluster.dir().join(format!("node{}.toml", index + 1));
            let mut text = fs::read_to_string(&config).unwrap();
            text.push_str(&format!(
                "\n[[audit.sink]]\ntype = \"file\"\npath = \"{}\"\nmax_bytes = 262144\n",
                dir.join("audit.log").display()
            ));
            fs::write(&config, text).unwrap();
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
        }
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let leader = cluster.wait_leader().await;
        let follower = (0..3).find(|i| *i != leader).unwrap();
        let others: Vec<usize> = (0..3).filter(|i| *i != follower).collect();

        // sys/audit lists the sink in Vault's shape; enabling by API is refused.
        let (status, body) = cluster.root(0, "GET", "sys/audit", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["file/"]["type"], "file");
        assert_eq!(body["data"]["file/"]["local"], false);
        assert_eq!(body["file/"]["type"], "file", "copied to the top level");
        let (status, body) = cluster
            .root(0, "PUT", "sys/audit/mine", Some(json!({"type": "file"})))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains("server config file"), "{body}");

        // The mixed burst; a follower is killed after the first half and brought back later.
        let started = Instant::now();
        let mut answers = burst(&cluster, 0..BURST / 2, &[0, 1, 2]).await;
        cluster.kill(follower);
        answers.extend(burst(&cluster, BURST / 2..BURST * 3 / 4, &others).await);
        cluster.spawn(follower);
        cluster.wait_http(follower).await;
        cluster.unseal(follower).await;
        answers.extend(burst(&cluster, BURST * 3 / 4..BURST, &[0, 1, 2]).await);
        eprintln!(
            "t95: {BURST} requests in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // No record, no response: every answer below 500 names its record.
        let unnamed: Vec<(usize, u16)> = answers
            .iter()
            .filter(|a| a.status != 0 && a.status < 500 && a.request_id.is_none())
            .map(|a| (a.n, a.status))
            .take(5)
            .collect();
        assert!(unnamed.is_empty(), "answered without a record: {unnamed:?}");
        let ids: Vec<&str> = answers
            .iter()
            .filter_map(|a| a.request_id.as_deref())
            .collect();
        assert!(
            ids.len() >= BURST * 95 / 100,
            "most requests were answered: {} of {BURST}",
            ids.len()
        );
        for kind in 0..6 {
            let ok = answers
                .iter()
                .filter(|a| a.n % 6 == kind && a.request_id.is_some())
                .count();
            assert!(ok > 0, "request kind {kind} was never answered");
        }
        assert!(
            answers
                .iter()
                .filter(|a| a.n % 6 == 3 && a.request_id.is_some())
                .all(|a| a.status == 400),
            "malformed bodies are refused with 400"
        );

        // A sink that cannot be written: the cluster keeps serving, the sink catches up later.
        // (Root ignores permissions, so the sink's directory is replaced by a plain file.)
        let faulty = sink_dir(&cluster, 0);
        let moved = cluster.dir().join("sink1.moved");
        fs::rename(&faulty, &moved).unwrap();
        fs::write(&faulty, b"not a directory").unwrap();
        for n in 0..40 {
            let (status, body) = cluster
                .root(
                    n % 3,
                    "POST",
                    &format!("secret/data/during-fault/k{n}"),
                    Some(json!({"data": {"password": format!("canary-value-fault-{n}-q9z")}})),
                )
                .await;
            assert_eq!(
                status, 200,
                "requests are not blocked by a failing sink: {body}"
            );
        }
        wait_for(
            "the faulty sink reports failing",
            Duration::from_secs(30),
            || async {
                let (_, body) = cluster.root(0, "GET", "sys/audit", None).await;
                (body["data"]["file/"]["failing"] == true).then_some(())
            },
        )
        .await;
        fs::remove_file(&faulty).unwrap();
        fs::rename(&moved, &faulty).unwrap();

        // Every node's journal is identical and verifies.
        let upto = head(&cluster, 0).await;
        let reference = journal(&cluster, 0, upto).await;
        assert_eq!(reference.len() as u64, upto);
        let chain = |records: &[Value]| -> Vec<(u64, String)> {
            records
                .iter()
                .map(|r| (r["seq"].as_u64().unwrap(), r["hash"].to_string()))
                .collect()
        };
        for index in 1..3 {
            let other = journal(&cluster, index, upto).await;
            assert!(
                chain(&other) == chain(&reference),
                "node {} journal differs",
                index + 1
            );
        }
        for index in 0..3 {
            let (status, body) = cluster.root(index, "GET", "sys/audit/verify", None).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["valid"], true, "node {}: {body}", index + 1);
        }

        // Every answered burst request has exactly one record.
        let mut seen = HashMap::<&str, usize>::new();
        for record in &reference {
            if let Some(id) = record["record"]["request"]["id"].as_str() {
                *seen.entry(id).or_default() += 1;
            }
        }
        for id in &ids {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "request {id} has exactly one record"
            );
        }

        // Unseal attempts are recorded with the share HMAC'd: the burst's (to unsealed nodes)
        // and the restarted follower's, made while it was sealed and recorded once it unsealed.
        let spare = audit_hash(&cluster, &cluster.keys[4]).await;
        let unseal_records = |key_hash: &str, node: Option<u64>| {
            reference
                .iter()
                .filter(|r| {
                    let request = &r["record"]["request"];
                    request["path"] == "sys/unseal"
                        && request["data"]["key"] == key_hash
                        && node.is_none_or(|id| request["node_id"] == id)
                })
                .count()
        };
        let spare_answered = answers
            .iter()
            .filter(|a| a.n % 6 == 4 && a.request_id.is_some())
            .count();
        assert_eq!(unseal_records(&spare, None), spare_answered);
        for key in &cluster.keys[..3] {
            let hash = audit_hash(&cluster, key).await;
            assert_eq!(
                unseal_records(&hash, Some(follower as u64 + 1)),
                2,
                "the follower's first and second unseal each recorded this share"
            );
        }

        // Filters: denied requests by status class and path prefix.
        let (status, body) = cluster
            .root(
                0,
                "GET",
                "sys/audit/log?path=secret/data/burst/&status=4xx&limit=1000",
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let filtered = body["data"]["records"].as_array().unwrap();
        assert!(!filtered.is_empty());
        assert!(
            filtered
                .iter()
                .all(|r| r["record"]["response"]["status"].as_u64().unwrap() >= 400)
        );

        // Every sink file (the restarted node's and the recovered one's included) has it all.
        for index in 0..3 {
            wait_delivered(&cluster, index, upto).await;
            let seqs = sink_seqs(&sink_dir(&cluster, index));
            let missing: Vec<u64> = (1..=upto)
                .filter(|seq| !seqs.contains(seq))
                .take(5)
                .collect();
            assert!(
                missing.is_empty(),
                "node {} sink misses {missing:?}",
                index + 1
            );
        }

        // No secret value, token or share in plaintext in any record or sink file.
        let value_hash = audit_hash(&cluster, "canary-value-0-q9z").await;
        let mut needles = vec![
            "canary-value-".to_string(),
            BAD_TOKEN.to_string(),
            cluster.root_token.clone(),
        ];
        for key in &cluster.keys {
            needles.push(key.clone());
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(key)
                .unwrap();
            needles.push(hex::encode(bytes));
        }
        let records = serde_json::to_vec(&reference).unwrap();
        let mut places = vec![("the journal".to_string(), records)];
        for index in 0..3 {
            places.push((
                format!("node {} sink", index + 1),
                sink_bytes(&sink_dir(&cluster, index)),
            ));
        }
        for (place, bytes) in &places {
            for needle in &needles {
                assert!(!contains(bytes, needle), "{place} leaks {:.12}...", needle);
            }
            assert!(contains(bytes, &value_hash), "{place} holds the HMAC");
            assert!(contains(bytes, &spare), "{place} holds the share's HMAC");
        }
    })
    .await;
}
