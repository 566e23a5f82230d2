//! The audit checker: exported journals against the history, one test per anomaly class.

use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::audit::EXPORT_PHASE;
use strongroom_jepsen::checker::audit::Journal;
use strongroom_jepsen::checker::audit::Record;
use strongroom_jepsen::checker::audit::check;
use strongroom_jepsen::history::F;
use strongroom_jepsen::history::Op;
use strongroom_jepsen::history::OpType;

use crate::support::H;
use crate::support::assert_caught;
use crate::support::assert_valid;

/// How a request ended, for audit purposes.
#[derive(Clone, Copy)]
enum Answer {
    /// Answered with this status and a request id.
    Status(u16),
    /// Answered 503 "Vault is sealed" (not audited).
    Sealed,
    /// No answer (timeout): no request id.
    Timeout,
    /// Connection refused: never sent.
    NotSent,
}

fn request(h: &mut H, t: u64, path: &str, id: &str, answer: Answer, phase: &str) {
    let mut invoke = Op::new(OpType::Invoke, F::Control, 9, 1);
    invoke.path = Some(path.into());
    invoke.phase = phase.into();
    let mut done = Op::new(OpType::Ok, F::Control, 0, 0);
    match answer {
        Answer::Status(status) => {
            done.status = Some(status);
            done.req_id = Some(id.into());
            done.kind = match status {
                200..=299 => OpType::Ok,
                400..=499 => OpType::Fail,
                _ => OpType::Info,
            };
        }
        Answer::Sealed => {
            done.kind = OpType::Fail;
            done.status = Some(503);
            done.req_id = Some(id.into());
            done.error = Some("Vault is sealed".into());
        }
        Answer::Timeout => done.kind = OpType::Info,
        Answer::NotSent => {
            done.kind = OpType::Fail;
            done.not_sent = true;
        }
    }
    h.push(t, t + 5, invoke, done);
}

fn record(seq: u64, id: &str, path: &str, status: u16) -> Record {
    Record {
        seq,
        hash: format!("h{seq}-{id}"),
        id: Some(id.into()),
        path: Some(path.into()),
        status: Some(status),
    }
}

fn journal(node: u64, records: &[Record]) -> Journal {
    Journal {
        node,
        records: records.to_vec(),
        verify_valid: Some(true),
        error: None,
    }
}

/// A history of: ok write r1, 400 CAS r2, sealed r3, timeout (no id) on a/x, not-sent on a/y,
/// an export request r9 after everything; and the journal they justify.
fn scenario() -> (Vec<Op>, Vec<Record>) {
    let mut h = H::new();
    request(
        &mut h,
        0,
        "secret/data/a",
        "r1",
        Answer::Status(200),
        "main",
    );
    request(
        &mut h,
        10,
        "secret/data/a",
        "r2",
        Answer::Status(400),
        "main",
    );
    request(&mut h, 20, "secret/data/a", "r3", Answer::Sealed, "main");
    request(&mut h, 30, "secret/data/x", "", Answer::Timeout, "main");
    request(&mut h, 40, "secret/data/y", "", Answer::NotSent, "main");
    request(
        &mut h,
        50,
        "sys/audit/log",
        "r9",
        Answer::Status(200),
        EXPORT_PHASE,
    );
    let records = vec![
        record(1, "r1", "secret/data/a", 200),
        record(2, "r2", "secret/data/a", 400),
        // The timed-out request did reach the server.
        record(3, "unseen", "secret/data/x", 200),
    ];
    (h.build(), records)
}

#[test]
fn matching_journals_pass() {
    let (ops, records) = scenario();
    let journals = [
        journal(1, &records),
        journal(2, &records),
        journal(3, &records),
    ];
    let result = check(&ops, &journals);
    assert_valid(&result);
    assert_eq!(result.stats["required_records"], 2);
    assert_eq!(result.stats["sealed_unaudited"], 1);
    // The export's own record may also be there, on some nodes only.
    let mut longer = records.clone();
    longer.push(record(4, "r9", "sys/audit/log", 200));
    assert_valid(&check(&ops, &[journal(1, &longer), journal(2, &records)]));
}

#[test]
fn missing_record_is_caught() {
    let (ops, records) = scenario();
    let without_r2 = vec![
        records[0].clone(),
        Record {
            seq: 2,
            ..records[2].clone()
        },
    ];
    assert_caught(&check(&ops, &[journal(1, &without_r2)]), "missing-record");
}

#[test]
fn duplicate_record_is_caught() {
    let (ops, mut records) = scenario();
    records.push(record(4, "r1", "secret/data/a", 200));
    assert_caught(&check(&ops, &[journal(1, &records)]), "duplicate-record");
}

#[test]
fn record_for_a_request_never_sent_is_caught() {
    let (ops, mut records) = scenario();
    // Nothing to secret/data/y was ever answered-or-lost in flight (it was never sent).
    records.push(record(4, "ghost", "secret/data/y", 200));
    assert_caught(&check(&ops, &[journal(1, &records)]), "unexplained-record");
    // Two records for the single timed-out request to x: one too many.
    let (ops, mut records) = scenario();
    records.push(record(4, "ghost2", "secret/data/x", 200));
    assert_caught(&check(&ops, &[journal(1, &records)]), "unexplained-record");
}

#[test]
fn divergent_journals_are_caught() {
    let (ops, records) = scenario();
    let mut other = records.clone();
    other[1].hash = "forked".into();
    assert_caught(
        &check(&ops, &[journal(1, &records), journal(2, &other)]),
        "divergent",
    );
}

#[test]
fn missing_tail_is_caught() {
    let (ops, records) = scenario();
    assert_caught(
        &check(&ops, &[journal(1, &records), journal(2, &records[..1])]),
        "missing-tail",
    );
}

#[test]
fn gaps_broken_chains_and_failed_exports_are_caught() {
    let (ops, records) = scenario();
    let mut gappy = records.clone();
    gappy[2].seq = 7;
    assert_caught(&check(&ops, &[journal(1, &gappy)]), "gap");
    let mut broken = journal(1, &records);
    broken.verify_valid = Some(false);
    assert_caught(&check(&ops, &[broken]), "chain-broken");
    let mut failed = journal(2, &[]);
    failed.error = Some("timeout".into());
    assert_caught(
        &check(&ops, &[journal(1, &records), failed]),
        "export-failed",
    );
}

#[test]
fn records_disagreeing_with_the_client_are_caught() {
    let (ops, mut records) = scenario();
    records[0].status = Some(500);
    assert_caught(&check(&ops, &[journal(1, &records)]), "status-mismatch");
    let (ops, mut records) = scenario();
    records[0].path = Some("secret/data/other".into());
    assert_caught(&check(&ops, &[journal(1, &records)]), "path-mismatch");
}

#[test]
fn no_export_is_unknown() {
    let (ops, _) = scenario();
    assert_eq!(check(&ops, &[]).valid, Validity::Unknown);
}
