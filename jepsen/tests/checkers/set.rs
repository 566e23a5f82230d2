//! The set checker: lost, unexpected, aborted, divergent finals, stale and future reads during
//! the run, recovered indeterminate adds, and `unknown` without a final read.

use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::set::check;

use crate::support::H;
use crate::support::Outcome::*;
use crate::support::assert_caught;
use crate::support::assert_valid;
use crate::support::kinds;

#[test]
fn complete_history_passes_and_counts_recovered() {
    let mut h = H::new();
    h.add(1, 0, 10, Ok(0));
    h.add(2, 5, 15, Info);
    h.add(3, 6, 16, Fail);
    h.add(4, 7, 17, Info);
    h.read_set(1, 12, 20, &[1], "main");
    h.read_set(1, 100, 110, &[1, 2], "final");
    h.read_set(2, 100, 110, &[1, 2], "final");
    let result = check(&h.build());
    assert_valid(&result);
    assert_eq!(result.stats["recovered"], 1);
    assert_eq!(result.stats["indeterminate"], 2);
}

#[test]
fn lost_add_is_caught() {
    let mut h = H::new();
    h.add(1, 0, 10, Ok(0));
    h.add(2, 0, 10, Ok(0));
    h.read_set(1, 100, 110, &[1], "final");
    assert_caught(&check(&h.build()), "lost");
}

#[test]
fn unexpected_element_is_caught() {
    let mut h = H::new();
    h.add(1, 0, 10, Ok(0));
    h.read_set(1, 100, 110, &[1, 99], "final");
    assert_caught(&check(&h.build()), "unexpected");
}

#[test]
fn aborted_add_is_caught() {
    let mut h = H::new();
    h.add(1, 0, 10, Fail);
    h.read_set(1, 100, 110, &[1], "final");
    assert_caught(&check(&h.build()), "aborted");
}

#[test]
fn divergent_final_reads_are_caught() {
    let mut h = H::new();
    h.add(1, 0, 10, Info);
    h.read_set(1, 100, 110, &[1], "final");
    h.read_set(2, 100, 110, &[], "final");
    assert_caught(&check(&h.build()), "divergent-final");
}

#[test]
fn stale_read_during_the_run_is_caught() {
    // An acknowledged add missing from a later read.
    let mut h = H::new();
    h.add(1, 0, 10, Ok(0));
    h.read_set(3, 20, 30, &[], "main");
    h.read_set(1, 100, 110, &[1], "final");
    assert_caught(&check(&h.build()), "stale-read");
    // An element a completed read saw, missing from a later read (indeterminate add).
    let mut h = H::new();
    h.add(1, 0, 10, Info);
    h.read_set(1, 20, 30, &[1], "main");
    h.read_set(3, 40, 50, &[], "main");
    h.read_set(1, 100, 110, &[1], "final");
    assert_caught(&check(&h.build()), "stale-read");
}

#[test]
fn concurrent_read_may_miss_an_add() {
    let mut h = H::new();
    h.add(1, 0, 30, Ok(0));
    h.read_set(3, 10, 20, &[], "main");
    h.read_set(1, 100, 110, &[1], "final");
    assert_valid(&check(&h.build()));
}

#[test]
fn future_read_is_caught() {
    let mut h = H::new();
    h.read_set(3, 0, 10, &[1], "main");
    h.add(1, 20, 30, Ok(0));
    h.read_set(1, 100, 110, &[1], "final");
    assert!(kinds(&check(&h.build())).contains(&"future-read".to_string()));
}

#[test]
fn no_final_read_is_unknown() {
    let mut h = H::new();
    h.add(1, 0, 10, Ok(0));
    assert_eq!(check(&h.build()).valid, Validity::Unknown);
}
