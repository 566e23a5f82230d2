//! The version-order register checker: one test per anomaly class, plus valid histories.

use strongroom_jepsen::checker::register::check;

use crate::support::H;
use crate::support::Outcome::*;
use crate::support::assert_caught;
use crate::support::assert_valid;

#[test]
fn sequential_and_concurrent_histories_pass() {
    let mut h = H::new();
    h.read("k", 0, 5, 0, None);
    h.write("k", 10, 20, "a", Ok(1));
    h.read("k", 25, 30, 1, Some("a"));
    h.cas("k", 35, 40, 1, "b", Ok(2));
    h.cas("k", 45, 50, 1, "c", Mismatch);
    // Concurrent: a read overlapping a write may see either version.
    h.write("k", 60, 80, "d", Ok(3));
    h.read("k", 61, 62, 2, Some("b"));
    h.read("k", 70, 90, 3, Some("d"));
    // An indeterminate write that took effect, seen later, explains its version.
    h.write("k", 100, 110, "e", Info);
    h.read("k", 200, 210, 4, Some("e"));
    // One that never shows up is fine too.
    h.write("k", 220, 230, "f", Info);
    assert_valid(&check(&h.build()));
}

#[test]
fn stale_read_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 20, 30, "b", Ok(2));
    h.read("k", 40, 50, 1, Some("a"));
    assert_caught(&check(&h.build()), "stale-read");
}

#[test]
fn duplicate_version_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 5, 15, "b", Ok(1));
    assert_caught(&check(&h.build()), "duplicate-version");
}

#[test]
fn phantom_value_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.read("k", 20, 30, 1, Some("never-written"));
    assert_caught(&check(&h.build()), "phantom-value");
}

#[test]
fn aborted_read_is_caught() {
    let mut h = H::new();
    h.cas("k", 0, 10, 0, "a", Mismatch);
    h.read("k", 20, 30, 1, Some("a"));
    assert_caught(&check(&h.build()), "aborted-read");
}

#[test]
fn wrong_version_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 20, 30, "b", Ok(2));
    h.read("k", 40, 50, 2, Some("a"));
    let result = check(&h.build());
    assert_caught(&result, "wrong-version");
    assert_caught(&result, "wrong-value");
}

#[test]
fn future_read_is_caught() {
    let mut h = H::new();
    h.read("k", 0, 10, 1, Some("a"));
    h.write("k", 20, 30, "a", Ok(1));
    assert_caught(&check(&h.build()), "future-read");
}

#[test]
fn cas_creating_the_wrong_version_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 11, 12, "b", Ok(2));
    h.cas("k", 20, 30, 1, "c", Ok(3));
    assert_caught(&check(&h.build()), "cas-version");
}

#[test]
fn write_order_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(2));
    h.write("k", 20, 30, "b", Ok(1));
    assert_caught(&check(&h.build()), "write-order");
}

#[test]
fn phantom_version_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 20, 30, "b", Ok(3));
    assert_caught(&check(&h.build()), "phantom-version");
    // An indeterminate write could have made version 2.
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 11, 15, "x", Info);
    h.write("k", 20, 30, "b", Ok(3));
    assert_valid(&check(&h.build()));
}

#[test]
fn false_cas_failure_is_caught() {
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.cas("k", 20, 30, 1, "b", Mismatch);
    assert_caught(&check(&h.build()), "cas-false-fail");
    // With a concurrent indeterminate write the failure is explainable.
    let mut h = H::new();
    h.write("k", 0, 10, "a", Ok(1));
    h.write("k", 15, 16, "x", Info);
    h.cas("k", 20, 30, 1, "b", Mismatch);
    assert_valid(&check(&h.build()));
}

#[test]
fn keys_are_independent() {
    let mut h = H::new();
    h.write("a", 0, 10, "a1", Ok(1));
    h.write("b", 20, 30, "b1", Ok(1));
    h.read("a", 40, 50, 1, Some("a1"));
    h.read("b", 40, 50, 1, Some("b1"));
    assert_valid(&check(&h.build()));
}

#[test]
fn generated_histories_pass_and_their_mutations_fail() {
    for seed in 1..=30 {
        let (ops, mutated) = crate::wgl::generate(seed, 3, 400, 0.05);
        assert_valid(&check(&ops));
        if let Some(mutated) = mutated {
            let result = check(&mutated);
            assert_caught(&result, "stale-read");
        }
    }
}
