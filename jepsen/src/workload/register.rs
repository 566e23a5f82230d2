//! The KV register workload: reads, blind writes and CAS writes (`options.cas` = the version
//! this worker last saw) on a few keys at a time. Keys rotate after a number of operations, or
//! sooner once a key collected many indeterminate writes, so each key's history stays small
//! enough for the linearizability search. Every written value is a unique canary.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

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

/// The KV v2 path of register `key`.
pub fn path(key: &str) -> String {
    format!("secret/data/jepsen/{key}")
}

/// Key rotation limits.
#[derive(Debug, Clone, Copy)]
pub struct KeyLimits {
    /// Keys in use at once.
    pub active: usize,
    /// Operations on a key before it is retired.
    pub ops_per_key: u32,
    /// Indeterminate writes on a key before it is retired.
    pub infos_per_key: u32,
}

struct ActiveKey {
    name: String,
    ops: u32,
    infos: u32,
}

/// The keys in use, shared by all register workers.
pub struct Keys {
    limits: KeyLimits,
    active: Vec<ActiveKey>,
    next: u64,
    /// Every key ever used (final reads cover them all).
    pub used: Vec<String>,
}

impl Keys {
    /// A fresh key set.
    pub fn new(limits: KeyLimits) -> Keys {
        let mut keys = Keys {
            limits,
            active: Vec::new(),
            next: 0,
            used: Vec::new(),
        };
        for _ in 0..limits.active.max(1) {
            keys.add();
        }
        keys
    }

    fn add(&mut self) {
        self.next += 1;
        let name = format!("r{}", self.next);
        self.used.push(name.clone());
        self.active.push(ActiveKey {
            name,
            ops: 0,
            infos: 0,
        });
    }

    /// Picks a key for the next operation.
    pub fn pick(&mut self, rng: &mut Rng) -> String {
        let i = rng.below(self.active.len() as u64) as usize;
        let key = &mut self.active[i];
        key.ops += 1;
        let name = key.name.clone();
        if key.ops >= self.limits.ops_per_key {
            self.active.remove(i);
            self.add();
        }
        name
    }

    /// Notes an indeterminate write on `key`; retires the key at the limit.
    pub fn note_info(&mut self, key: &str) {
        if let Some(i) = self.active.iter().position(|k| k.name == key) {
            self.active[i].infos += 1;
            if self.active[i].infos >= self.limits.infos_per_key {
                self.active.remove(i);
                self.add();
            }
        }
    }
}

/// One register worker.
pub struct Worker {
    /// The worker's number (its first process id).
    pub index: u64,
    /// Worker count (process ids advance by this).
    pub stride: u64,
    /// The node it talks to.
    pub node: u64,
    /// Its randomness.
    pub rng: Rng,
    /// Shared keys.
    pub keys: Arc<Mutex<Keys>>,
}

impl Worker {
    /// Runs until `end`, at `per_second` operations per second.
    pub async fn run(mut self, ctx: Ctx, per_second: f64, end: Instant) {
        let mut pacer = Pacer::new(per_second);
        let mut process = self.index;
        let mut last_version: HashMap<String, u64> = HashMap::new();
        loop {
            pacer.wait(&mut self.rng).await;
            if Instant::now() >= end {
                return;
            }
            let key = self
                .keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pick(&mut self.rng);
            let roll = self.rng.below(100);
            let f = if roll < 50 {
                F::Read
            } else if roll < 75 {
                F::Write
            } else {
                F::Cas
            };
            let expected = last_version.get(&key).copied().unwrap_or(0);
            let value = (f != F::Read).then(|| canary(&mut self.rng));
            let done = execute(&ctx, self.node, process, &key, f, expected, value, "main").await;
            if let Some(version) = done.version {
                last_version.insert(key.clone(), version);
            }
            if done.kind == OpType::Info {
                process += self.stride;
                if f != F::Read {
                    self.keys
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .note_info(&key);
                }
            }
        }
    }
}

/// Executes one register operation against `node` and records it; returns the completion.
/// `value` is the value to write (ignored by reads).
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    ctx: &Ctx,
    node: u64,
    process: u64,
    key: &str,
    f: F,
    expected: u64,
    value: Option<String>,
    phase: &str,
) -> Op {
    let api_path = path(key);
    let mut invoke = Op::new(OpType::Invoke, f, process, node);
    invoke.key = Some(key.to_string());
    invoke.path = Some(api_path.clone());
    invoke.phase = phase.to_string();
    let body = match (f, value) {
        (F::Read, _) | (_, None) => None,
        (_, Some(value)) => {
            invoke.value = Some(value.clone());
            if f == F::Cas {
                invoke.expected = Some(expected);
                Some(json!({"data": {"v": value}, "options": {"cas": expected}}))
            } else {
                Some(json!({"data": {"v": value}}))
            }
        }
    };
    let invoke = ctx.recorder.invoke(invoke);
    let request = Request {
        method: if f == F::Read { "GET" } else { "POST" },
        path: &api_path,
        body,
        token: Some(&ctx.token),
        stale: false,
        timeout: None,
    };
    let result = ctx.api.call(node, request).await;
    let mut done = if f == F::Read {
        read_completion(&result)
    } else {
        write_completion(&result)
    };
    if let Ok(reply) = &result {
        let data = &reply.body["data"];
        match (f, reply.status) {
            (F::Read, 200) => {
                done.version = data["metadata"]["version"].as_u64();
                done.value = data["data"]["v"].as_str().map(str::to_string);
                if done.version.is_none() {
                    done.kind = OpType::Info;
                    done.error = Some(format!("unparseable read: {}", reply.body));
                }
            }
            (F::Read, 404) => done.version = Some(0),
            (_, 200) => {
                done.version = data["version"].as_u64();
                if done.version.is_none() {
                    done.kind = OpType::Info;
                    done.error = Some(format!("unparseable write answer: {}", reply.body));
                }
            }
            _ => {}
        }
    }
    ctx.recorder.complete(&invoke, done)
}
