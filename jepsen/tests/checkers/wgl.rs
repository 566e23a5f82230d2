//! The linearizability search: valid and invalid hand-made histories, generated histories
//! (linearizable by construction, with indeterminate operations), their stale-read mutations,
//! and the time budget turning into `unknown`.

use std::time::Duration;

use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::wgl::check;
use strongroom_jepsen::history::F;
use strongroom_jepsen::history::Op;
use strongroom_jepsen::history::OpType;
use strongroom_jepsen::rng::Rng;

use crate::support::H;
use crate::support::Outcome::*;
use crate::support::assert_caught;
use crate::support::assert_valid;

const BUDGET: Duration = Duration::from_secs(20);

#[test]
fn concurrent_valid_history_is_linearizable() {
    let mut h = H::new();
    h.write("k", 0, 100, "a", Ok(1));
    h.read("k", 10, 20, 0, None);
    h.read("k", 30, 40, 1, Some("a"));
    h.read("k", 50, 60, 1, Some("a"));
    h.cas("k", 110, 120, 1, "b", Ok(2));
    h.write("k", 130, 140, "c", Info);
    h.cas("k", 150, 160, 2, "d", Mismatch);
    h.read("k", 170, 180, 3, Some("c"));
    assert_valid(&check(&h.build(), BUDGET));
}

#[test]
fn stale_read_is_not_linearizable() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 20, 30, "b", Ok(2));
    h.read("k", 40, 50, 1, Some("a"));
    assert_caught(&check(&h.build(), BUDGET), "not-linearizable");
}

#[test]
fn read_flip_flop_is_not_linearizable() {
    // Two reads concurrent with one write may not see new then old.
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 20, 100, "b", Ok(2));
    h.read("k", 30, 40, 2, Some("b"));
    h.read("k", 50, 60, 1, Some("a"));
    assert_caught(&check(&h.build(), BUDGET), "not-linearizable");
}

#[test]
fn false_cas_failure_is_not_linearizable() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.cas("k", 20, 30, 1, "b", Mismatch);
    assert_caught(&check(&h.build(), BUDGET), "not-linearizable");
}

#[test]
fn exhausted_budget_is_unknown() {
    let (ops, _) = generate(7, 10, 3000, 0.05);
    let result = check(&ops, Duration::ZERO);
    assert_eq!(result.valid, Validity::Unknown, "{result:#?}");
}

#[test]
fn generated_histories_pass_and_their_mutations_fail() {
    for seed in 1..=30 {
        let (ops, mutated) = generate(seed, 3, 400, 0.05);
        assert_valid(&check(&ops, BUDGET));
        if let Some(mutated) = mutated {
            assert_caught(&check(&mutated, BUDGET), "not-linearizable");
        }
    }
}

/// A linearizable register history on one key: `clients` concurrent clients, `count` ops,
/// each taking effect at a random instant inside its interval (an indeterminate write, with
/// probability `info`, may take effect or not). Also returns a copy with one read made stale
/// (when some read can be), which no linearizable history allows.
pub fn generate(seed: u64, clients: u64, count: usize, info: f64) -> (Vec<Op>, Option<Vec<Op>>) {
    struct Planned {
        start: u64,
        end: u64,
        at: u64,
        f: F,
        expected: u64,
        value: String,
        indeterminate: bool,
        applies: bool,
    }
    let mut rng = Rng::new(seed);
    let mut clock = vec![0u64; clients as usize];
    let mut planned = Vec::new();
    for i in 0..count {
        let c = rng.below(clients) as usize;
        let start = clock[c] + rng.range(1, 20);
        let end = start + rng.range(1, 60);
        clock[c] = end;
        let roll = rng.below(10);
        let f = match roll {
            0..=4 => F::Read,
            5..=7 => F::Write,
            _ => F::Cas,
        };
        let indeterminate = f != F::Read && rng.chance(info);
        let applies = !indeterminate || rng.chance(0.5);
        let at = if indeterminate {
            start + rng.range(1, 200)
        } else {
            rng.range(start, end)
        };
        planned.push(Planned {
            start,
            end,
            at,
            f,
            expected: 0,
            value: format!("v{i}"),
            indeterminate,
            applies,
        });
    }
    // Apply in linearization order to learn each op's result.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].at);
    let mut version = 0u64;
    let mut value: Option<String> = None;
    let mut results: Vec<(u64, Option<String>, bool)> = vec![(0, None, true); planned.len()];
    for &i in &order {
        let p = &mut planned[i];
        match p.f {
            F::Read => results[i] = (version, value.clone(), true),
            F::Write => {
                if p.applies {
                    version += 1;
                    value = Some(p.value.clone());
                    results[i] = (version, None, true);
                }
            }
            _ => {
                // Expect the current version half the time, a stale one otherwise.
                p.expected = if rng.chance(0.5) {
                    version
                } else {
                    version.saturating_sub(1)
                };
                if p.applies && p.expected == version {
                    version += 1;
                    value = Some(p.value.clone());
                    results[i] = (version, None, true);
                } else {
                    results[i] = (version, None, false);
                }
            }
        }
    }
    let mut h = H::new();
    for (i, p) in planned.iter().enumerate() {
        let (v, read_value, succeeded) = results[i].clone();
        match p.f {
            F::Read => {
                h.read("k", p.start, p.end, v, read_value.as_deref());
            }
            F::Write => {
                let outcome = if p.indeterminate { Info } else { Ok(v) };
                h.write("k", p.start, p.end, &p.value, outcome);
            }
            _ => {
                let outcome = if p.indeterminate {
                    Info
                } else if succeeded {
                    Ok(v)
                } else {
                    Mismatch
                };
                h.cas("k", p.start, p.end, p.expected, &p.value, outcome);
            }
        }
    }
    let ops = h.build();
    let mutated = make_stale(&ops);
    (ops, mutated)
}

/// Replaces the result of one read with the value of a version older than one an operation
/// completed before the read began.
fn make_stale(ops: &[Op]) -> Option<Vec<Op>> {
    let completions: Vec<&Op> = ops.iter().filter(|o| o.kind == OpType::Ok).collect();
    let mut value_of: std::collections::HashMap<u64, Option<String>> = Default::default();
    value_of.insert(0, None);
    for op in ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke && o.f != F::Read)
    {
        let done = completions
            .iter()
            .find(|d| d.id == op.id && d.version.is_some());
        if let Some(done) = done {
            value_of.insert(done.version.unwrap_or(0), op.value.clone());
        }
    }
    let invokes: std::collections::HashMap<u64, &Op> = ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke)
        .map(|o| (o.id, o))
        .collect();
    for read in completions.iter().filter(|d| d.f == F::Read) {
        let start = invokes.get(&read.id)?.time_ns;
        let floor = completions
            .iter()
            .filter(|d| d.time_ns < start)
            .filter_map(|d| d.version)
            .max()
            .unwrap_or(0);
        if floor >= 2 && value_of.contains_key(&(floor - 1)) {
            let mut mutated = ops.to_vec();
            let target = mutated.iter_mut().find(|o| o.index == read.index)?;
            target.version = Some(floor - 1);
            target.value = value_of[&(floor - 1)].clone();
            return Some(mutated);
        }
    }
    None
}
