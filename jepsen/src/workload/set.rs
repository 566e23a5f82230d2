//! The set workload: each add creates its own key `secret/data/jepsen-set/e<N>` with
//! `options.cas = 0` (create only) and a canary value; reads list `secret/metadata/jepsen-set/`.
//! Reads during the run (about one in ten operations) are checked against real time; the final
//! reads after healing, on every node, decide lost and recovered elements.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use serde_json::json;
use tokio::time::Instant;

use super::Ctx;
use super::Pacer;
use super::canary;
use super::read_completion;
use super::write_completion;
use crate::cluster::api::Request;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::rng::Rng;

/// The LIST path of the set.
pub const LIST_PATH: &str = "secret/metadata/jepsen-set/";

/// One set worker.
pub struct Worker {
    /// The worker's number (its first process id).
    pub index: u64,
    /// Worker count (process ids advance by this).
    pub stride: u64,
    /// The node it talks to.
    pub node: u64,
    /// Its randomness.
    pub rng: Rng,
    /// The next element, shared by all set workers.
    pub next: Arc<AtomicU64>,
}

impl Worker {
    /// Runs until `end`, at `per_second` operations per second.
    pub async fn run(mut self, ctx: Ctx, per_second: f64, end: Instant) {
        let mut pacer = Pacer::new(per_second);
        let mut process = self.index;
        loop {
            pacer.wait(&mut self.rng).await;
            if Instant::now() >= end {
                return;
            }
            let done = if self.rng.below(10) == 0 {
                read(&ctx, self.node, process, "main").await
            } else {
                let element = self.next.fetch_add(1, Ordering::Relaxed);
                add(&ctx, self.node, process, element, &mut self.rng).await
            };
            if done.kind == OpType::Info {
                process += self.stride;
            }
        }
    }
}

async fn add(ctx: &Ctx, node: u64, process: u64, element: u64, rng: &mut Rng) -> Op {
    let path = format!("secret/data/jepsen-set/e{element}");
    let value = canary(rng);
    let mut invoke = Op::new(OpType::Invoke, F::Add, process, node);
    invoke.element = Some(element);
    invoke.path = Some(path.clone());
    invoke.value = Some(value.clone());
    invoke.phase = "main".into();
    let invoke = ctx.recorder.invoke(invoke);
    let request = Request {
        method: "POST",
        path: &path,
        body: Some(json!({"data": {"v": value}, "options": {"cas": 0}})),
        token: Some(&ctx.token),
        stale: false,
        timeout: None,
    };
    let result = ctx.api.call(node, request).await;
    ctx.recorder.complete(&invoke, write_completion(&result))
}

/// Lists the set on `node` and records it (`phase` = `main` or `final`).
pub async fn read(ctx: &Ctx, node: u64, process: u64, phase: &str) -> Op {
    let mut invoke = Op::new(OpType::Invoke, F::ReadSet, process, node);
    invoke.path = Some(LIST_PATH.to_string());
    invoke.phase = phase.to_string();
    let invoke = ctx.recorder.invoke(invoke);
    let request = Request {
        method: "LIST",
        path: LIST_PATH,
        body: None,
        token: Some(&ctx.token),
        stale: false,
        timeout: None,
    };
    let result = ctx.api.call(node, request).await;
    let mut done = read_completion(&result);
    if let Ok(reply) = &result {
        match reply.status {
            200 => {
                let keys = reply.body["data"]["keys"].as_array();
                let elements: Option<Vec<u64>> = keys.map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str()?.strip_prefix('e')?.parse().ok())
                        .collect()
                });
                match elements {
                    Some(mut elements) => {
                        elements.sort_unstable();
                        done.elements = Some(elements);
                    }
                    None => {
                        done.kind = OpType::Info;
                        done.error = Some(format!("unparseable list: {}", reply.body));
                    }
                }
            }
            404 => done.elements = Some(Vec::new()),
            _ => {}
        }
    }
    ctx.recorder.complete(&invoke, done)
}
