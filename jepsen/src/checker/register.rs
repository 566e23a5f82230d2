//! The version-order register checker (the main KV checker). KV v2 returns the version every
//! write creates and every read observes, so the order of versions is known and each property
//! is checked directly, per key, in O(n log n):
//!
//! - `duplicate-version`: two acknowledged writes created the same version (lost update, split
//!   brain);
//! - `phantom-value` / `aborted-read` / `wrong-version` / `future-read`: a read returned a value
//!   nobody wrote, a value of a write that certainly failed, a value under another version than
//!   its write created, or a value whose write was invoked after the read completed;
//! - `cas-version`: a successful `cas(e)` created a version other than `e + 1`;
//! - `stale-read` / `write-order`: real time was violated: an operation completed before
//!   another was invoked, yet the later one observed (or created) an older version;
//! - `phantom-version`: more versions exist than acknowledged and indeterminate writes explain;
//! - `cas-false-fail`: a `cas(e)` failed although the key provably held version `e` during its
//!   whole interval.

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;
use crate::history::Completed;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;

/// The server's CAS-mismatch error text (a definite failure decided in the state machine).
pub const CAS_MISMATCH: &str = "check-and-set parameter did not match the current version";

/// A register operation, reduced to what the checkers need.
#[derive(Debug, Clone)]
pub struct RegOp<'a> {
    /// The operation.
    pub op: Completed<'a>,
    /// Its class.
    pub kind: RegKind,
}

/// The classes of register operations checkers distinguish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegKind {
    /// An acknowledged read of `version` holding `value` (`None`/0 when the key is absent).
    Read {
        /// Version observed.
        version: u64,
        /// Value observed.
        value: Option<String>,
    },
    /// An acknowledged write (or CAS with `expected`) that created `version`.
    Wrote {
        /// Value written.
        value: String,
        /// Version created.
        version: u64,
        /// The CAS's expected version, if it was one.
        expected: Option<u64>,
    },
    /// A write or CAS whose outcome is unknown.
    MaybeWrote {
        /// Value written.
        value: String,
        /// The CAS's expected version, if it was one.
        expected: Option<u64>,
    },
    /// A CAS the server refused because the version did not match.
    CasFailed {
        /// Expected version.
        expected: u64,
        /// Value that was not written.
        value: String,
    },
    /// A write that certainly failed for another reason (its value must never be seen).
    WriteFailed {
        /// Value that was not written.
        value: String,
    },
}

/// The register operations of `ops`, grouped by key (sorted for stable output).
pub fn by_key(ops: &[Op]) -> BTreeMap<String, Vec<RegOp<'_>>> {
    let mut keys: BTreeMap<String, Vec<RegOp<'_>>> = BTreeMap::new();
    for op in pair(ops) {
        if !matches!(op.invoke.f, F::Read | F::Write | F::Cas) {
            continue;
        }
        let Some(key) = op.invoke.key.clone() else {
            continue;
        };
        if let Some(kind) = classify(&op) {
            keys.entry(key).or_default().push(RegOp { op, kind });
        }
    }
    keys
}

fn classify(op: &Completed<'_>) -> Option<RegKind> {
    let done = op.done;
    match (op.invoke.f, op.kind()) {
        (F::Read, OpType::Ok) => {
            let done = done?;
            Some(RegKind::Read {
                version: done.version.unwrap_or(0),
                value: done.value.clone(),
            })
        }
        (F::Read, _) => None,
        (_, OpType::Ok) => Some(RegKind::Wrote {
            value: op.invoke.value.clone()?,
            version: done?.version?,
            expected: op.invoke.expected,
        }),
        (_, OpType::Info | OpType::Invoke) => Some(RegKind::MaybeWrote {
            value: op.invoke.value.clone()?,
            expected: op.invoke.expected,
        }),
        (F::Cas, OpType::Fail) if done.and_then(|d| d.error.as_deref()) == Some(CAS_MISMATCH) => {
            Some(RegKind::CasFailed {
                expected: op.invoke.expected?,
                value: op.invoke.value.clone()?,
            })
        }
        (_, OpType::Fail) => Some(RegKind::WriteFailed {
            value: op.invoke.value.clone()?,
        }),
    }
}

/// Runs the version-order checker over every key.
pub fn check(ops: &[Op]) -> CheckResult {
    let keys = by_key(ops);
    let mut anomalies = Vec::new();
    let mut stats = Stats::default();
    for (key, reg_ops) in &keys {
        check_key(key, reg_ops, &mut anomalies, &mut stats);
    }
    let fallback = if stats.reads + stats.writes == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let result = CheckResult::from_anomalies(
        "register-version-order",
        anomalies,
        json!({
            "keys": keys.len(),
            "ok_reads": stats.reads,
            "ok_writes": stats.writes,
            "indeterminate_writes": stats.maybe,
            "failed_cas": stats.cas_failed,
            "max_version": stats.max_version,
        }),
        fallback,
    );
    if fallback == Validity::Unknown {
        result.with_note("no acknowledged register operation")
    } else {
        result
    }
}

#[derive(Default)]
struct Stats {
    reads: usize,
    writes: usize,
    maybe: usize,
    cas_failed: usize,
    max_version: u64,
}

/// Position of an acknowledged operation in the key's version order.
fn position(op: &RegOp<'_>) -> Option<u64> {
    match &op.kind {
        RegKind::Read { version, .. } | RegKind::Wrote { version, .. } => Some(*version),
        _ => None,
    }
}

fn check_key(key: &str, ops: &[RegOp<'_>], anomalies: &mut Vec<Anomaly>, stats: &mut Stats) {
    let k = Some(key);
    let mut max_version = 0u64;
    // Who wrote each value (values are unique per run), and which op created each version.
    let mut writer_of_value: HashMap<&str, &RegOp<'_>> = HashMap::new();
    let mut creator_of_version: HashMap<u64, &RegOp<'_>> = HashMap::new();
    for op in ops {
        match &op.kind {
            RegKind::Wrote {
                value,
                version,
                expected,
            } => {
                stats.writes += 1;
                max_version = max_version.max(*version);
                writer_of_value.insert(value, op);
                if let Some(other) = creator_of_version.insert(*version, op) {
                    anomalies.push(Anomaly::new(
                        "duplicate-version",
                        k,
                        vec![other.op.last_index(), op.op.last_index()],
                        format!("two acknowledged writes both created version {version}"),
                    ));
                }
                if let Some(expected) = expected
                    && *version != expected + 1
                {
                    anomalies.push(Anomaly::new(
                        "cas-version",
                        k,
                        vec![op.op.last_index()],
                        format!("cas({expected}) succeeded but created version {version}"),
                    ));
                }
            }
            RegKind::MaybeWrote { value, .. } => {
                stats.maybe += 1;
                writer_of_value.insert(value, op);
            }
            RegKind::CasFailed { value, .. } => {
                stats.cas_failed += 1;
                writer_of_value.insert(value, op);
            }
            RegKind::WriteFailed { value } => {
                writer_of_value.insert(value, op);
            }
            RegKind::Read { .. } => stats.reads += 1,
        }
    }
    // Reads: every observed (version, value) must come from a write that could have made it.
    let mut version_of_maybe: HashMap<u64, u64> = HashMap::new(); // info op id -> version
    let mut explained: HashMap<u64, ()> = creator_of_version.keys().map(|v| (*v, ())).collect();
    for op in ops {
        let RegKind::Read { version, value } = &op.kind else {
            continue;
        };
        max_version = max_version.max(*version);
        let read_index = op.op.last_index();
        let Some(value) = value else {
            if *version != 0 {
                anomalies.push(Anomaly::new(
                    "phantom-value",
                    k,
                    vec![read_index],
                    format!("read version {version} without a value"),
                ));
            }
            continue;
        };
        let Some(writer) = writer_of_value.get(value.as_str()) else {
            anomalies.push(Anomaly::new(
                "phantom-value",
                k,
                vec![read_index],
                format!("read {value:?} at version {version}, a value no operation wrote"),
            ));
            continue;
        };
        let writer_index = writer.op.last_index();
        if writer.op.start() > op.op.end() {
            anomalies.push(Anomaly::new(
                "future-read",
                k,
                vec![read_index, writer_index],
                format!("read {value:?} before its write was invoked"),
            ));
        }
        match &writer.kind {
            RegKind::CasFailed { .. } | RegKind::WriteFailed { .. } => {
                anomalies.push(Anomaly::new(
                    "aborted-read",
                    k,
                    vec![read_index, writer_index],
                    format!("read {value:?}, written by an operation that certainly failed"),
                ))
            }
            RegKind::Wrote {
                version: created, ..
            } if created != version => {
                anomalies.push(Anomaly::new(
                    "wrong-version",
                    k,
                    vec![read_index, writer_index],
                    format!("read {value:?} as version {version}, but its write created version {created}"),
                ));
            }
            RegKind::MaybeWrote { .. } => {
                let id = writer.op.invoke.id;
                match version_of_maybe.get(&id) {
                    Some(seen) if seen != version => anomalies.push(Anomaly::new(
                        "wrong-version",
                        k,
                        vec![read_index, writer_index],
                        format!("read {value:?} as version {version}, but another read saw it as version {seen}"),
                    )),
                    _ => {
                        version_of_maybe.insert(id, *version);
                        explained.insert(*version, ());
                    }
                }
            }
            _ => {}
        }
        if let Some(creator) = creator_of_version.get(version)
            && let RegKind::Wrote { value: written, .. } = &creator.kind
            && written != value
        {
            anomalies.push(Anomaly::new(
                "wrong-value",
                k,
                vec![read_index, creator.op.last_index()],
                format!("read {value:?} as version {version}, but that version holds {written:?}"),
            ));
        }
    }
    // Versions no write explains: at most one per indeterminate write never observed.
    let unattributed_maybe = ops
        .iter()
        .filter(|op| {
            matches!(op.kind, RegKind::MaybeWrote { .. })
                && !version_of_maybe.contains_key(&op.op.invoke.id)
        })
        .count() as u64;
    stats.max_version = stats.max_version.max(max_version);
    let unexplained: Vec<u64> = (1..=max_version)
        .filter(|v| !explained.contains_key(v))
        .collect();
    if unexplained.len() as u64 > unattributed_maybe {
        anomalies.push(Anomaly::new(
            "phantom-version",
            k,
            Vec::new(),
            format!(
                "versions {unexplained:?} exist but only {unattributed_maybe} indeterminate writes could have made them"
            ),
        ));
    }
    real_time(key, ops, anomalies);
    cas_false_fail(key, ops, &creator_of_version, &version_of_maybe, anomalies);
}

/// For every operation B, the largest position completed before B was invoked (and its op).
fn floors<'o, 'a>(ops: &'o [RegOp<'a>]) -> Vec<Option<(u64, &'o RegOp<'a>)>> {
    let mut by_end: Vec<&RegOp<'_>> = ops.iter().filter(|op| position(op).is_some()).collect();
    by_end.sort_by_key(|op| op.op.end());
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| ops[i].op.start());
    let mut result = vec![None; ops.len()];
    let mut best: Option<(u64, &RegOp<'_>)> = None;
    let mut next = 0;
    for i in order {
        let start = ops[i].op.start();
        while next < by_end.len() && by_end[next].op.end() < start {
            let candidate = by_end[next];
            let pos = position(candidate).unwrap_or(0);
            if best.is_none_or(|(p, _)| pos > p) {
                best = Some((pos, candidate));
            }
            next += 1;
        }
        result[i] = best;
    }
    result
}

fn real_time(key: &str, ops: &[RegOp<'_>], anomalies: &mut Vec<Anomaly>) {
    for (op, floor) in ops.iter().zip(floors(ops)) {
        let (Some(pos), Some((floor, witness))) = (position(op), floor) else {
            continue;
        };
        let is_write = matches!(op.kind, RegKind::Wrote { .. });
        let violated = if is_write { pos <= floor } else { pos < floor };
        if violated {
            let (kind, verb) = if is_write {
                ("write-order", "created")
            } else {
                ("stale-read", "read")
            };
            anomalies.push(Anomaly::new(
                kind,
                Some(key),
                vec![witness.op.last_index(), op.op.last_index()],
                format!(
                    "{verb} version {pos} after an operation that completed before it was invoked had already seen version {floor}"
                ),
            ));
        }
    }
}

fn cas_false_fail(
    key: &str,
    ops: &[RegOp<'_>],
    creator_of_version: &HashMap<u64, &RegOp<'_>>,
    version_of_maybe: &HashMap<u64, u64>,
    anomalies: &mut Vec<Anomaly>,
) {
    let maybe_creator: HashMap<u64, &RegOp<'_>> = ops
        .iter()
        .filter_map(|op| {
            version_of_maybe
                .get(&op.op.invoke.id)
                .map(|version| (*version, op))
        })
        .collect();
    for (op, floor) in ops.iter().zip(floors(ops)) {
        let RegKind::CasFailed { expected, .. } = op.kind else {
            continue;
        };
        let Some((floor, witness)) = floor else {
            continue;
        };
        if floor != expected {
            continue;
        }
        let end = op.op.end();
        let next_writer = creator_of_version
            .get(&(expected + 1))
            .or_else(|| maybe_creator.get(&(expected + 1)));
        let could_have_moved = match next_writer {
            Some(writer) => writer.op.start() <= end,
            // Version e+1 unseen: an unobserved indeterminate write invoked in time may have made it.
            None => ops.iter().any(|other| {
                matches!(other.kind, RegKind::MaybeWrote { .. })
                    && !version_of_maybe.contains_key(&other.op.invoke.id)
                    && other.op.start() <= end
            }),
        };
        if !could_have_moved {
            anomalies.push(Anomaly::new(
                "cas-false-fail",
                Some(key),
                vec![witness.op.last_index(), op.op.last_index()],
                format!(
                    "cas({expected}) failed although version {expected} was current during its whole interval"
                ),
            ));
        }
    }
}
