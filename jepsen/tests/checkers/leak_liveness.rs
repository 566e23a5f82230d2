//! The leak scan (canaries, the canary prefix, other secrets; clean data passes) and the
//! liveness checker; plus the report's totals line.

use std::path::Path;

use strongroom_jepsen::checker::CheckResult;
use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::leak;
use strongroom_jepsen::checker::leak::Needles;
use strongroom_jepsen::checker::liveness;
use strongroom_jepsen::checker::liveness::Liveness;
use strongroom_jepsen::report::totals_line;

use crate::support::assert_caught;
use crate::support::assert_valid;

fn needles() -> Needles {
    Needles {
        canaries: ["CANARY-0123456789abcdef".to_string()]
            .into_iter()
            .collect(),
        secrets: vec![("root-token".into(), "hvs.SECRETTOKEN".into())],
    }
}

#[test]
fn scan_finds_canaries_prefixes_and_secrets() {
    let mut hits = Vec::new();
    let data = b"xx CANARY-0123456789abcdef yy CANARY-ffffffffffffffff zz hvs.SECRETTOKEN";
    leak::scan_bytes(Path::new("f"), data, &needles(), &mut hits);
    let what: Vec<&str> = hits.iter().map(|h| h.what.as_str()).collect();
    assert_eq!(what, ["canary", "canary-prefix", "root-token"]);
    assert_eq!(hits[0].offset, 3);
}

#[test]
fn scan_of_files_reports_leaks_and_passes_clean_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    std::fs::write(dir.path().join("a/b/clean.sst"), [0u8, 1, 2, 3, 67, 65, 78]).unwrap();
    let scan = leak::scan(&[dir.path().to_path_buf()], &needles());
    assert_eq!(scan.files, 1);
    assert_valid(&leak::check(&scan));
    std::fs::write(
        dir.path().join("a/node.log"),
        "value=CANARY-0123456789abcdef\n",
    )
    .unwrap();
    let scan = leak::scan(&[dir.path().to_path_buf()], &needles());
    assert_caught(&leak::check(&scan), "leak");
}

#[test]
fn liveness_failures_are_caught() {
    let good = Liveness {
        converged: true,
        recovered_nodes: vec![1, 2, 3],
        ..Liveness::default()
    };
    assert_valid(&liveness::check(&good));
    let crash = Liveness {
        unexpected_exits: vec!["node 2 exited".into()],
        ..good.clone()
    };
    assert_caught(&liveness::check(&crash), "crash");
    let stuck = Liveness {
        converged: false,
        unrecovered_nodes: vec![3],
        ..good.clone()
    };
    let result = liveness::check(&stuck);
    assert_caught(&result, "no-convergence");
    assert_caught(&result, "unavailable-after-heal");
    let panic = Liveness {
        panics: vec!["node 1: panicked at".into()],
        ..good.clone()
    };
    assert_caught(&liveness::check(&panic), "panic");
    let forgotten = Liveness {
        lost_init: vec!["node 2 has reported the vault uninitialized for 20 s".into()],
        ..good
    };
    assert_caught(&liveness::check(&forgotten), "lost-init");
    // Stored before the field existed: still readable, nothing lost.
    let old: Liveness = serde_json::from_str(
        r#"{"converged":true,"converge_secs":1.0,"recovered_nodes":[1],"unrecovered_nodes":[],"unexpected_exits":[],"panics":[]}"#,
    )
    .unwrap();
    assert!(old.lost_init.is_empty());
}

#[test]
fn totals_line_counts_verdicts() {
    let result = |valid| CheckResult {
        name: "x".into(),
        valid,
        stats: serde_json::Value::Null,
        anomaly_count: 0,
        anomalies: vec![],
        note: None,
    };
    let results = [
        result(Validity::Valid),
        result(Validity::Invalid),
        result(Validity::Valid),
    ];
    assert_eq!(totals_line(&results), "checkers: 2 passed, 1 failed");
    let results = [result(Validity::Valid), result(Validity::Unknown)];
    assert_eq!(
        totals_line(&results),
        "checkers: 1 passed, 0 failed, 1 unknown"
    );
}
