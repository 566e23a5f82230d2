//! The audit completeness checker, run on the journals exported from every node after healing
//! (`GET sys/audit/log` with stale consistency: each node's own applied journal).
//!
//! - `export-failed`, `chain-broken`, `gap`: a node could not export, `sys/audit/verify` found a
//!   broken hash chain, or sequence numbers are not 1..=n;
//! - `divergent`: two nodes disagree on the record hash at some sequence number (the chain
//!   makes equal hashes mean equal prefixes);
//! - `missing-tail`: a node lacks records up to the last one the run produced before export;
//! - `duplicate-record`: one request id has several records;
//! - `missing-record`: an acknowledged operation (or one definitely refused with a 4xx) has no
//!   record; sealed-503 answers and indeterminate operations may have none;
//! - `status-mismatch` / `path-mismatch`: a record disagrees with what the client saw;
//! - `unexplained-record`: a record for a request never sent: its id is unknown and there are
//!   more such records on its path than requests to that path whose response never arrived.
//!
//! The export requests themselves are audited too, after the export began; their records are
//! known by id but not required.

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;

/// The phase of the harness's own audit export requests.
pub const EXPORT_PHASE: &str = "audit-export";

/// One node's exported journal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    /// The node id.
    pub node: u64,
    /// Records in sequence order.
    pub records: Vec<Record>,
    /// `sys/audit/verify`'s `valid`, if it answered.
    pub verify_valid: Option<bool>,
    /// Why the export failed, if it did.
    pub error: Option<String>,
}

/// What the checker needs from one audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Journal sequence number.
    pub seq: u64,
    /// Chain hash (hex).
    pub hash: String,
    /// `request.id`.
    pub id: Option<String>,
    /// `request.path`.
    pub path: Option<String>,
    /// `response.status`.
    pub status: Option<u16>,
}

impl Record {
    /// Extracts a record from one element of `sys/audit/log`'s `records`.
    pub fn from_api(value: &Value) -> Record {
        let record = &value["record"];
        Record {
            seq: value["seq"].as_u64().unwrap_or(0),
            hash: value["hash"].as_str().unwrap_or("").to_string(),
            id: record["request"]["id"].as_str().map(str::to_string),
            path: record["request"]["path"].as_str().map(str::to_string),
            status: record["response"]["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok()),
        }
    }
}

fn norm(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// True for a response from a sealed node (such requests are not audited).
pub fn is_sealed_answer(op: &Op) -> bool {
    op.status == Some(503) && op.error.as_deref().is_some_and(|e| e.contains("sealed"))
}

/// Runs the audit checker.
pub fn check(ops: &[Op], journals: &[Journal]) -> CheckResult {
    let mut anomalies = Vec::new();
    if journals.is_empty() {
        return CheckResult::from_anomalies("audit", anomalies, json!({}), Validity::Unknown)
            .with_note("no audit export");
    }
    for journal in journals {
        let node = journal.node;
        if let Some(error) = &journal.error {
            anomalies.push(Anomaly::new(
                "export-failed",
                None,
                vec![],
                format!("node {node}: {error}"),
            ));
        }
        if journal.verify_valid == Some(false) {
            anomalies.push(Anomaly::new(
                "chain-broken",
                None,
                vec![],
                format!("node {node}: sys/audit/verify reports a broken hash chain"),
            ));
        }
        if let Some((i, r)) = journal
            .records
            .iter()
            .enumerate()
            .find(|(i, r)| r.seq != *i as u64 + 1)
        {
            anomalies.push(Anomaly::new(
                "gap",
                None,
                vec![],
                format!(
                    "node {node}: record {} has sequence number {}",
                    i + 1,
                    r.seq
                ),
            ));
        }
    }
    // Nodes whose export failed are reported above and left out of the comparison.
    let journals: Vec<&Journal> = journals.iter().filter(|j| j.error.is_none()).collect();
    let Some(longest) = journals.iter().copied().max_by_key(|j| j.records.len()) else {
        return CheckResult::from_anomalies("audit", anomalies, json!({}), Validity::Unknown)
            .with_note("no node exported its journal");
    };
    for journal in &journals {
        if let Some(r) = journal
            .records
            .iter()
            .zip(&longest.records)
            .find(|(a, b)| a.hash != b.hash)
            .map(|(a, _)| a)
        {
            anomalies.push(Anomaly::new(
                "divergent",
                None,
                vec![],
                format!(
                    "nodes {} and {} hold different records at sequence number {}",
                    journal.node, longest.node, r.seq
                ),
            ));
        }
    }
    let paired = pair(ops);
    let mut seqs_of: HashMap<&str, Vec<&Record>> = HashMap::new();
    for record in &longest.records {
        if let Some(id) = record.id.as_deref() {
            seqs_of.entry(id).or_default().push(record);
        }
    }
    // The last record produced by anything but the export itself: every node must hold it.
    let required_tail = paired
        .iter()
        .filter(|op| op.invoke.phase != EXPORT_PHASE)
        .filter_map(|op| op.done?.req_id.as_deref())
        .filter_map(|id| seqs_of.get(id))
        .flat_map(|records| records.iter().map(|r| r.seq))
        .max()
        .unwrap_or(0);
    for journal in &journals {
        if (journal.records.len() as u64) < required_tail {
            anomalies.push(Anomaly::new(
                "missing-tail",
                None,
                vec![],
                format!(
                    "node {} holds {} records, but the run's last record is number {required_tail}",
                    journal.node,
                    journal.records.len()
                ),
            ));
        }
    }
    for (id, records) in &seqs_of {
        if records.len() > 1 {
            let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
            anomalies.push(Anomaly::new(
                "duplicate-record",
                records[0].path.as_deref(),
                vec![],
                format!(
                    "request {id} has {} records (sequence numbers {seqs:?})",
                    records.len()
                ),
            ));
        }
    }
    let mut known_ids: HashMap<&str, ()> = HashMap::new();
    let mut unanswered: BTreeMap<String, usize> = BTreeMap::new();
    let (mut required, mut optional, mut sealed) = (0usize, 0usize, 0usize);
    for op in &paired {
        let Some(done) = op.done else {
            if let Some(path) = &op.invoke.path {
                *unanswered.entry(norm(path).to_string()).or_default() += 1;
            }
            continue;
        };
        let Some(id) = done.req_id.as_deref() else {
            if !done.not_sent
                && let Some(path) = &op.invoke.path
            {
                *unanswered.entry(norm(path).to_string()).or_default() += 1;
            }
            continue;
        };
        known_ids.insert(id, ());
        if op.invoke.phase == EXPORT_PHASE {
            continue;
        }
        let records = seqs_of.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let definite_4xx =
            done.kind == OpType::Fail && done.status.is_some_and(|s| (400..500).contains(&s));
        if is_sealed_answer(done) {
            sealed += 1;
        } else if done.kind == OpType::Ok || definite_4xx {
            required += 1;
            if records.is_empty() {
                anomalies.push(Anomaly::new(
                    "missing-record",
                    op.invoke.path.as_deref(),
                    vec![done.index],
                    format!(
                        "request {id} ({:?}, status {:?}) has no audit record",
                        done.kind, done.status
                    ),
                ));
            }
        } else {
            optional += 1;
        }
        if let Some(record) = records.first()
            && (done.kind == OpType::Ok || definite_4xx)
        {
            if record.status.is_some() && record.status != done.status {
                anomalies.push(Anomaly::new(
                    "status-mismatch",
                    op.invoke.path.as_deref(),
                    vec![done.index],
                    format!(
                        "request {id}: the client saw status {:?}, record {} says {:?}",
                        done.status, record.seq, record.status
                    ),
                ));
            }
            if let (Some(sent), Some(logged)) = (&op.invoke.path, &record.path)
                && norm(sent) != norm(logged)
            {
                anomalies.push(Anomaly::new(
                    "path-mismatch",
                    Some(sent),
                    vec![done.index],
                    format!(
                        "request {id} was sent to {sent}, record {} says {logged}",
                        record.seq
                    ),
                ));
            }
        }
    }
    let mut unknown_by_path: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for record in &longest.records {
        let known = record
            .id
            .as_deref()
            .is_some_and(|id| known_ids.contains_key(id));
        if !known {
            let path = norm(record.path.as_deref().unwrap_or("")).to_string();
            unknown_by_path.entry(path).or_default().push(record.seq);
        }
    }
    let mut unknown_records = 0;
    for (path, seqs) in &unknown_by_path {
        unknown_records += seqs.len();
        let allowed = unanswered.get(path).copied().unwrap_or(0);
        if seqs.len() > allowed {
            anomalies.push(Anomaly::new(
                "unexplained-record",
                Some(path),
                vec![],
                format!(
                    "{} records on {path:?} (sequence numbers {:?}) match no request the harness saw answered, but only {allowed} requests to that path went unanswered",
                    seqs.len(),
                    &seqs[..seqs.len().min(10)]
                ),
            ));
        }
    }
    let stats = json!({
        "nodes": journals.len(),
        "records": longest.records.len(),
        "required_records": required,
        "optional_records": optional,
        "sealed_unaudited": sealed,
        "records_of_unanswered_requests": unknown_records,
        "last_required_seq": required_tail,
    });
    CheckResult::from_anomalies("audit", anomalies, stats, Validity::Valid)
}
