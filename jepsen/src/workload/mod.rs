//! Workloads: concurrent workers, each bound to one node (so reads go to followers too), each
//! issuing operations from a seeded generator at its share of `--rate`, recording an invoke
//! before and exactly one completion after every request. A worker takes a new process id
//! after an indeterminate result, as in Jepsen. Writes are never retried.

pub mod register;
pub mod set;
pub mod transit;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::cluster::api::Api;
use crate::cluster::api::CallError;
use crate::cluster::api::Reply;
use crate::cluster::api::Request;
use crate::history::Op;
use crate::history::OpType;
use crate::history::Recorder;
use crate::rng::Rng;

/// A workload selectable with `--workload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// KV register with CAS on versions.
    Register,
    /// Unique adds, listed.
    Set,
    /// Transit encrypt, decrypt, rotate and min-version changes on one key.
    Transit,
    /// Audit completeness (checks the records of every other workload's operations).
    Audit,
}

impl Workload {
    /// Parses one name.
    pub fn parse(name: &str) -> Option<Workload> {
        match name {
            "register" | "kv-register" => Some(Workload::Register),
            "set" => Some(Workload::Set),
            "transit" => Some(Workload::Transit),
            "audit" => Some(Workload::Audit),
            _ => None,
        }
    }

    /// Every workload.
    pub const ALL: [Workload; 4] = [
        Workload::Register,
        Workload::Set,
        Workload::Transit,
        Workload::Audit,
    ];

    /// The workload's name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Transit => "transit",
            Workload::Audit => "audit",
        }
    }
}

/// What every worker shares.
#[derive(Clone)]
pub struct Ctx {
    /// The history.
    pub recorder: Arc<Recorder>,
    /// The API client.
    pub api: Api,
    /// The token for data requests.
    pub token: String,
}

/// How an answer maps to a completion, for operations that write.
pub fn write_completion(result: &Result<Reply, CallError>) -> Op {
    let mut done = Op::new(OpType::Info, crate::history::F::Write, 0, 0);
    match result {
        Ok(reply) => {
            done.status = Some(reply.status);
            done.req_id = reply.req_id.clone();
            done.error = reply.error_text();
            done.kind = match reply.status {
                200..=299 => OpType::Ok,
                // Sealed nodes refuse before doing anything; 4xx are decided, never applied.
                503 if is_sealed(reply) => OpType::Fail,
                400..=499 => OpType::Fail,
                _ => OpType::Info,
            };
        }
        Err(err) => {
            done.not_sent = matches!(err, CallError::NotSent(_));
            done.kind = if done.not_sent {
                OpType::Fail
            } else {
                OpType::Info
            };
            done.error = Some(err.to_string());
        }
    }
    done
}

/// How an answer maps to a completion, for reads: unanswered reads are `info` (they change no
/// state, so checkers ignore them; the audit checker allows a record).
pub fn read_completion(result: &Result<Reply, CallError>) -> Op {
    let mut done = write_completion(result);
    if done.kind == OpType::Ok || result.as_ref().is_ok_and(|r| r.status == 404) {
        done.kind = OpType::Ok;
    }
    done
}

fn is_sealed(reply: &Reply) -> bool {
    reply.error_text().is_some_and(|e| e.contains("sealed"))
}

/// Sends `request` to `node` for an already recorded `invoke`.
pub async fn send(ctx: &Ctx, node: u64, request: Request<'_>) -> Result<Reply, CallError> {
    ctx.api.call(node, request).await
}

/// Paces a worker at `per_second` operations per second, with seeded jitter.
pub struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    /// A pacer for `per_second` (at least one operation every 10 s).
    pub fn new(per_second: f64) -> Pacer {
        let per_second = per_second.max(0.1);
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Instant::now(),
        }
    }

    /// Waits until the next operation is due.
    pub async fn wait(&mut self, rng: &mut Rng) {
        let jitter = 0.5 + rng.below(1000) as f64 / 1000.0;
        self.next += self.interval.mul_f64(jitter);
        let now = Instant::now();
        if self.next < now {
            self.next = now;
        }
        tokio::time::sleep_until(self.next).await;
    }
}

/// A unique canary value (the leak scan looks for every one of them).
pub fn canary(rng: &mut Rng) -> String {
    format!(
        "{}{}",
        crate::checker::leak::CANARY_PREFIX,
        rng.hex(crate::checker::leak::CANARY_HEX_LEN / 2)
    )
}
