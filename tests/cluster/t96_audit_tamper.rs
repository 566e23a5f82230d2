//! Tamper evidence (issue 7, "done when" 3): one byte of one stored journal record is flipped in
//! a stopped node's database (`strongroom_raft::tamper`, as an attacker with the disk would).
//! After a restart `sys/audit/verify` and `strongroom audit verify` on that node report exactly
//! that record's sequence number (the CLI exits 2), while the other nodes still verify.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

/// The record that is flipped.
const VICTIM_SEQ: u64 = 7;

/// Runs `strongroom audit verify` against node `index`; returns (exit code, stdout).
fn cli_verify(cluster: &TestCluster, index: usize) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["audit", "verify", "--address", &cluster.nodes[index].url()])
        .env("STRONGROOM_TOKEN", &cluster.root_token)
        .env_remove("VAULT_TOKEN")
        .output()
        .expect("run strongroom audit verify");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_journal_byte_is_reported_with_its_sequence_number() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        for n in 0..20 {
            let (status, body) = cluster
                .root(
                    n % 3,
                    "POST",
                    &format!("secret/data/tamper/k{n}"),
                    Some(json!({"data": {"v": n}})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let victim = 2;
        // The victim has applied (and verifies) everything so far.
        let (status, body) = cluster.root(victim, "GET", "sys/audit/verify", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["valid"], true, "{body}");
        assert!(body["data"]["head_seq"].as_u64().unwrap() > VICTIM_SEQ);

        cluster.stop(victim).await;
        strongroom_raft::tamper::flip_journal_record_byte(
            &cluster.nodes[victim].data_dir,
            VICTIM_SEQ,
            40,
        )
        .expect("flip one byte of a stored record");
        cluster.spawn(victim);
        cluster.wait_http(victim).await;
        cluster.unseal(victim).await;

        let (status, body) = cluster.root(victim, "GET", "sys/audit/verify", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["valid"], false, "{body}");
        assert_eq!(body["data"]["first_broken_seq"], VICTIM_SEQ, "{body}");
        assert_eq!(body["data"]["checked"], VICTIM_SEQ - 1, "{body}");
        for index in (0..3).filter(|i| *i != victim) {
            let (status, body) = cluster.root(index, "GET", "sys/audit/verify", None).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["data"]["valid"], true, "node {}: {body}", index + 1);
        }

        let (code, out) = cli_verify(&cluster, victim);
        assert_eq!(code, Some(2), "{out}");
        assert!(
            out.contains(&format!("BROKEN at sequence number {VICTIM_SEQ} ")),
            "{out}"
        );
        let (code, out) = cli_verify(&cluster, 0);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("hash chain intact"), "{out}");
    })
    .await;
}
