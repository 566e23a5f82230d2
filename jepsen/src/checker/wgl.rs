//! The linearizability cross-check: a Porcupine-style Wing-Gong-Lowe search, one key at a time
//! (P-compositionality), against a KV v2 register model (state = version and value).
//! Indeterminate operations return at "never", so the search may linearize them anywhere after
//! their invocation, including after everything else (which is "did not happen"). The search
//! caches (linearized set, state) pairs and gives up with `unknown` when its time budget ends;
//! keys rotate in the workload so each key's history stays small enough.

use std::collections::HashMap;
use std::collections::HashSet;
use std::time::Duration;
use std::time::Instant;

use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;
use super::register::RegKind;
use super::register::RegOp;
use super::register::by_key;
use crate::history::Op;

/// The model's state: the current version and the id of its value (0 = absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    version: u64,
    value: u32,
}

/// One operation as the model sees it.
#[derive(Debug, Clone)]
enum Input {
    Read {
        version: u64,
        value: u32,
    },
    Write {
        value: u32,
        version: Option<u64>,
    },
    Cas {
        expected: u64,
        value: u32,
        version: Option<u64>,
    },
    CasFailed {
        expected: u64,
    },
}

fn step(state: State, input: &Input) -> Option<State> {
    match *input {
        Input::Read { version, value } => {
            (state.version == version && state.value == value).then_some(state)
        }
        Input::Write { value, version } => {
            let next = State {
                version: state.version + 1,
                value,
            };
            version.is_none_or(|v| v == next.version).then_some(next)
        }
        Input::Cas {
            expected,
            value,
            version,
        } => {
            if state.version == expected {
                let next = State {
                    version: expected + 1,
                    value,
                };
                version.is_none_or(|v| v == next.version).then_some(next)
            } else if version.is_none() {
                Some(state) // an indeterminate CAS that did not apply
            } else {
                None
            }
        }
        Input::CasFailed { expected } => (state.version != expected).then_some(state),
    }
}

struct Call {
    start: u64,
    end: u64,
    input: Input,
    index: u64,
}

/// The outcome for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A linearization exists.
    Linearizable,
    /// None exists.
    NotLinearizable {
        /// The operation that could not follow the longest linearizable prefix found.
        blocking: u64,
        /// The last few operations of that prefix, in linearization order.
        prefix_tail: Vec<u64>,
        /// How many operations the prefix holds.
        prefix_len: usize,
    },
    /// The budget ran out.
    Unknown,
}

fn calls(ops: &[RegOp<'_>]) -> Vec<Call> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut id_of = |value: &str| -> u32 {
        let next = ids.len() as u32 + 1;
        *ids.entry(value.to_string()).or_insert(next)
    };
    let mut out = Vec::new();
    for op in ops {
        let input = match &op.kind {
            RegKind::Read { version, value } => Input::Read {
                version: *version,
                value: value.as_deref().map_or(0, &mut id_of),
            },
            RegKind::Wrote {
                value,
                version,
                expected,
            } => match expected {
                Some(expected) => Input::Cas {
                    expected: *expected,
                    value: id_of(value),
                    version: Some(*version),
                },
                None => Input::Write {
                    value: id_of(value),
                    version: Some(*version),
                },
            },
            RegKind::MaybeWrote { value, expected } => match expected {
                Some(expected) => Input::Cas {
                    expected: *expected,
                    value: id_of(value),
                    version: None,
                },
                None => Input::Write {
                    value: id_of(value),
                    version: None,
                },
            },
            RegKind::CasFailed { expected, .. } => Input::CasFailed {
                expected: *expected,
            },
            RegKind::WriteFailed { .. } => continue,
        };
        out.push(Call {
            start: op.op.start(),
            end: op.op.end(),
            input,
            index: op.op.last_index(),
        });
    }
    out
}

const NIL: usize = usize::MAX;
/// Operations of the longest linearizable prefix shown with a violation.
const WITNESS_TAIL: usize = 4;

#[derive(Clone, Copy)]
struct Node {
    prev: usize,
    next: usize,
    call: usize,
    is_call: bool,
    partner: usize,
}

/// Checks one key's operations; `deadline` bounds the search.
pub fn check_key(ops: &[RegOp<'_>], deadline: Instant) -> KeyVerdict {
    let calls = calls(ops);
    if calls.is_empty() {
        return KeyVerdict::Linearizable;
    }
    // Entries sorted by time; on ties, calls first (the more permissive order).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(calls.len() * 2);
    for (i, call) in calls.iter().enumerate() {
        events.push((call.start, true, i));
        events.push((call.end, false, i));
    }
    events.sort_by_key(|&(time, is_call, i)| (time, !is_call, i));
    // Node 0 is the head sentinel.
    let mut nodes = vec![Node {
        prev: NIL,
        next: NIL,
        call: 0,
        is_call: false,
        partner: NIL,
    }];
    let mut call_node = vec![NIL; calls.len()];
    let mut return_node = vec![NIL; calls.len()];
    for &(_, is_call, i) in &events {
        let id = nodes.len();
        let prev = id - 1;
        nodes[prev].next = id;
        nodes.push(Node {
            prev,
            next: NIL,
            call: i,
            is_call,
            partner: NIL,
        });
        if is_call {
            call_node[i] = id;
        } else {
            return_node[i] = id;
        }
    }
    for i in 0..calls.len() {
        nodes[call_node[i]].partner = return_node[i];
        nodes[return_node[i]].partner = call_node[i];
    }
    let words = calls.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = State {
        version: 0,
        value: 0,
    };
    let mut entry = nodes[0].next;
    let mut steps: u64 = 0;
    // The longest prefix that could not be extended, and the operation that blocked it.
    let mut deepest: (Vec<usize>, usize) = (Vec::new(), 0);
    let mut deepest_len = 0usize;
    while nodes[0].next != NIL {
        steps += 1;
        if steps.is_multiple_of(4096) && Instant::now() > deadline {
            return KeyVerdict::Unknown;
        }
        let node = nodes[entry];
        if node.is_call {
            let call = node.call;
            if let Some(next) = step(state, &calls[call].input) {
                let mut candidate = linearized.clone();
                candidate[call / 64] |= 1 << (call % 64);
                if cache.insert((candidate.clone(), next)) {
                    stack.push((entry, state));
                    state = next;
                    linearized = candidate;
                    lift(&mut nodes, entry);
                    entry = nodes[0].next;
                    continue;
                }
            }
            entry = node.next;
        } else {
            // This return's call cannot be linearized after the current prefix.
            if stack.len() >= deepest_len {
                deepest_len = stack.len();
                deepest = (
                    stack.iter().map(|&(n, _)| nodes[n].call).collect(),
                    node.call,
                );
            }
            let Some((top, previous)) = stack.pop() else {
                let (prefix, blocking) = &deepest;
                let tail = prefix.len().saturating_sub(WITNESS_TAIL);
                return KeyVerdict::NotLinearizable {
                    blocking: calls[*blocking].index,
                    prefix_tail: prefix[tail..].iter().map(|&c| calls[c].index).collect(),
                    prefix_len: prefix.len(),
                };
            };
            let call = nodes[top].call;
            state = previous;
            linearized[call / 64] &= !(1 << (call % 64));
            unlift(&mut nodes, top);
            entry = nodes[top].next;
        }
    }
    KeyVerdict::Linearizable
}

fn lift(nodes: &mut [Node], call: usize) {
    for id in [call, nodes[call].partner] {
        let Node { prev, next, .. } = nodes[id];
        nodes[prev].next = next;
        if next != NIL {
            nodes[next].prev = prev;
        }
    }
}

fn unlift(nodes: &mut [Node], call: usize) {
    for id in [nodes[call].partner, call] {
        let Node { prev, next, .. } = nodes[id];
        nodes[prev].next = id;
        if next != NIL {
            nodes[next].prev = id;
        }
    }
}

/// Runs the search on every key within `budget` (shared by all keys).
pub fn check(ops: &[Op], budget: Duration) -> CheckResult {
    let deadline = Instant::now() + budget;
    let keys = by_key(ops);
    let mut anomalies = Vec::new();
    let mut unknown_keys = Vec::new();
    let mut checked = 0usize;
    for (key, reg_ops) in &keys {
        match check_key(reg_ops, deadline) {
            KeyVerdict::Linearizable => checked += 1,
            KeyVerdict::NotLinearizable {
                blocking,
                prefix_tail,
                prefix_len,
            } => {
                checked += 1;
                let mut ops = vec![blocking];
                ops.extend(&prefix_tail);
                anomalies.push(Anomaly::new(
                    "not-linearizable",
                    Some(key),
                    ops,
                    format!(
                        "no linearization of key {key} exists: the longest linearizable prefix found has {prefix_len} operations, and operation {blocking} (listed first, then the prefix's last ones) can follow no extension of it"
                    ),
                ));
            }
            KeyVerdict::Unknown => unknown_keys.push(key.clone()),
        }
    }
    let fallback = if unknown_keys.is_empty() && !keys.is_empty() {
        Validity::Valid
    } else {
        Validity::Unknown
    };
    let max_ops = keys.values().map(Vec::len).max().unwrap_or(0);
    let result = CheckResult::from_anomalies(
        "register-linearizable-wgl",
        anomalies,
        json!({
            "keys": keys.len(),
            "keys_checked": checked,
            "keys_unknown": unknown_keys.len(),
            "max_ops_per_key": max_ops,
            "budget_s": budget.as_secs_f64(),
        }),
        fallback,
    );
    if keys.is_empty() {
        result.with_note("no register operations")
    } else if !unknown_keys.is_empty() {
        result.with_note(format!("search budget exhausted on keys {unknown_keys:?}"))
    } else {
        result
    }
}
