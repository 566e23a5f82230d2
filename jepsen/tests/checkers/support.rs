//! Building histories by hand: each helper adds one operation (an invoke at `start`, its
//! completion at `end`) and `build` orders the events by time and numbers them.

use strongroom_jepsen::checker::CheckResult;
use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::register::CAS_MISMATCH;
use strongroom_jepsen::history::F;
use strongroom_jepsen::history::Op;
use strongroom_jepsen::history::OpType;

/// How an operation ended.
#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    /// Acknowledged, creating this version (writes) or ignored (reads, adds).
    Ok(u64),
    /// Definitely failed.
    Fail,
    /// CAS mismatch (definite).
    Mismatch,
    /// Unknown.
    Info,
}

#[derive(Default)]
pub struct H {
    events: Vec<Op>,
    next_id: u64,
}

impl H {
    pub fn new() -> H {
        H::default()
    }

    /// Adds an operation; returns its id.
    pub fn push(&mut self, start: u64, end: u64, invoke: Op, mut done: Op) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut invoke = invoke;
        invoke.id = id;
        invoke.kind = OpType::Invoke;
        invoke.time_ns = start;
        done.id = id;
        done.f = invoke.f;
        done.process = invoke.process;
        done.node = invoke.node;
        done.time_ns = end;
        if done.key.is_none() {
            done.key = invoke.key.clone();
        }
        if done.path.is_none() {
            done.path = invoke.path.clone();
        }
        if done.phase.is_empty() {
            done.phase = invoke.phase.clone();
        }
        self.events.push(invoke);
        self.events.push(done);
        id
    }

    fn done_of(outcome: Outcome, f: F) -> Op {
        let mut done = Op::new(OpType::Ok, f, 0, 0);
        match outcome {
            Outcome::Ok(version) => {
                done.version = Some(version);
                done.status = Some(200);
            }
            Outcome::Fail => {
                done.kind = OpType::Fail;
                done.status = Some(400);
                done.error = Some("refused".into());
            }
            Outcome::Mismatch => {
                done.kind = OpType::Fail;
                done.status = Some(400);
                done.error = Some(CAS_MISMATCH.into());
            }
            Outcome::Info => {
                done.kind = OpType::Info;
                done.error = Some("timeout".into());
            }
        }
        done
    }

    /// A read of `key` returning (`version`, `value`); `None` outcome = unanswered.
    pub fn read(
        &mut self,
        key: &str,
        start: u64,
        end: u64,
        version: u64,
        value: Option<&str>,
    ) -> u64 {
        let mut invoke = Op::new(OpType::Invoke, F::Read, 1, 1);
        invoke.key = Some(key.into());
        let mut done = Op::new(OpType::Ok, F::Read, 0, 0);
        done.version = Some(version);
        done.value = value.map(str::to_string);
        done.status = Some(if version == 0 { 404 } else { 200 });
        self.push(start, end, invoke, done)
    }

    /// A blind write of `value` to `key`.
    pub fn write(&mut self, key: &str, start: u64, end: u64, value: &str, outcome: Outcome) -> u64 {
        let mut invoke = Op::new(OpType::Invoke, F::Write, 2, 1);
        invoke.key = Some(key.into());
        invoke.value = Some(value.into());
        self.push(start, end, invoke, H::done_of(outcome, F::Write))
    }

    /// A CAS write expecting `expected`.
    pub fn cas(
        &mut self,
        key: &str,
        start: u64,
        end: u64,
        expected: u64,
        value: &str,
        outcome: Outcome,
    ) -> u64 {
        let mut invoke = Op::new(OpType::Invoke, F::Cas, 3, 1);
        invoke.key = Some(key.into());
        invoke.value = Some(value.into());
        invoke.expected = Some(expected);
        self.push(start, end, invoke, H::done_of(outcome, F::Cas))
    }

    /// A set add of `element`.
    pub fn add(&mut self, element: u64, start: u64, end: u64, outcome: Outcome) -> u64 {
        let mut invoke = Op::new(OpType::Invoke, F::Add, 4, 1);
        invoke.element = Some(element);
        invoke.phase = "main".into();
        let mut done = H::done_of(outcome, F::Add);
        done.version = None;
        self.push(start, end, invoke, done)
    }

    /// A set read on `node` returning `elements` in `phase` (`main` or `final`).
    pub fn read_set(
        &mut self,
        node: u64,
        start: u64,
        end: u64,
        elements: &[u64],
        phase: &str,
    ) -> u64 {
        let mut invoke = Op::new(OpType::Invoke, F::ReadSet, 5, node);
        invoke.phase = phase.into();
        let mut done = Op::new(OpType::Ok, F::ReadSet, 0, 0);
        done.elements = Some(elements.to_vec());
        self.push(start, end, invoke, done)
    }

    /// Orders events by time (invokes first on ties) and numbers them.
    pub fn build(mut self) -> Vec<Op> {
        self.events
            .sort_by_key(|op| (op.time_ns, op.kind != OpType::Invoke, op.id));
        for (i, op) in self.events.iter_mut().enumerate() {
            op.index = i as u64;
        }
        self.events
    }
}

/// The anomaly kinds of a result.
pub fn kinds(result: &CheckResult) -> Vec<String> {
    result.anomalies.iter().map(|a| a.kind.clone()).collect()
}

/// Asserts the result is invalid with an anomaly of `kind`.
pub fn assert_caught(result: &CheckResult, kind: &str) {
    assert_eq!(
        result.valid,
        Validity::Invalid,
        "{} should be invalid: {result:#?}",
        result.name
    );
    assert!(
        kinds(result).iter().any(|k| k == kind),
        "{} should report {kind}, got {:?}",
        result.name,
        kinds(result)
    );
}

/// Asserts the result is valid.
pub fn assert_valid(result: &CheckResult) {
    assert_eq!(
        result.valid,
        Validity::Valid,
        "{} should be valid: {result:#?}",
        result.name
    );
}
