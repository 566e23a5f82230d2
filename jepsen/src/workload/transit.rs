//! The transit workload: encrypt unique canary plaintexts with one key, decrypt ciphertexts that
//! earlier encrypts returned (mostly recent ones, sometimes old ones), rotate the key, and raise
//! its `min_decryption_version` step by step. Only the first transit worker rotates and changes
//! the config, one request at a time, so the minimum only ever rises. After healing, every node
//! decrypts the acknowledged ciphertexts (`final`). The checker ([`crate::checker::transit`])
//! holds every decrypt to the plaintext its ciphertext was made from, or to the documented
//! "too old" refusal when a minimum above its version was set.

use std::sync::Arc;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Ctx;
use super::Pacer;
use super::canary;
use super::write_completion;
use crate::cluster::Cluster;
use crate::cluster::api::Request;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::rng::Rng;

/// The mount path of the transit engine.
pub const MOUNT: &str = "transit";
/// The key every operation uses.
pub const KEY: &str = "jepsen";
/// Final decrypts per node at most (an evenly spread sample beyond that).
const FINAL_PER_NODE: usize = 400;
/// Final decrypts in flight per node.
const FINAL_IN_FLIGHT: usize = 8;
/// Process ids of final decrypts start here (plus node * 100 + slot).
const FINAL_PROCESS: u64 = 3_000_000;
/// Decrypts pick among this many of the newest ciphertexts most of the time.
const RECENT: usize = 50;

/// What transit workers share.
#[derive(Default)]
pub struct Shared {
    /// Acknowledged encrypts: (ciphertext, key version).
    pub pool: Vec<(String, u64)>,
    /// The highest `latest_version` an acknowledged rotate reported.
    rotated: u64,
    /// The highest `min_decryption_version` sent.
    min_sent: u64,
}

/// Mounts the engine and creates the key (control requests, audited like any other).
pub async fn setup(cluster: &Cluster) -> anyhow::Result<()> {
    crate::cluster::wait_for(
        "the transit mount",
        std::time::Duration::from_secs(60),
        || async {
            let reply = cluster
                .control(
                    1,
                    "POST",
                    &format!("sys/mounts/{MOUNT}"),
                    Some(json!({"type": "transit"})),
                    "setup",
                )
                .await
                .ok()?;
            // 400 "path is already in use" after an indeterminate first attempt.
            (reply.status == 204 || reply.status == 200 || reply.status == 400).then_some(())
        },
    )
    .await?;
    crate::cluster::wait_for(
        "the transit key",
        std::time::Duration::from_secs(60),
        || async {
            let reply = cluster
                .control(
                    1,
                    "POST",
                    &format!("{MOUNT}/keys/{KEY}"),
                    Some(json!({"type": "aes256-gcm96"})),
                    "setup",
                )
                .await
                .ok()?;
            (reply.status == 204 || reply.status == 200).then_some(())
        },
    )
    .await
}

/// One transit worker.
pub struct Worker {
    /// The worker's number (its first process id).
    pub index: u64,
    /// Worker count (process ids advance by this).
    pub stride: u64,
    /// The node it talks to.
    pub node: u64,
    /// Its randomness.
    pub rng: Rng,
    /// Shared state.
    pub shared: Arc<Mutex<Shared>>,
    /// True for the one worker that rotates and changes the config.
    pub controls_key: bool,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
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
            let roll = self.rng.below(100);
            let done = if self.controls_key && roll < 5 {
                let done = rotate(&ctx, self.node, process).await;
                if let (OpType::Ok, Some(version)) = (done.kind, done.version) {
                    let mut shared = lock(&self.shared);
                    shared.rotated = shared.rotated.max(version);
                }
                done
            } else if self.controls_key
                && roll < 8
                && let Some(minimum) = self.raise_min()
            {
                lock(&self.shared).min_sent = minimum;
                key_config(&ctx, self.node, process, minimum).await
            } else if let Some((ciphertext, version)) = (roll >= 50).then(|| self.pick()).flatten()
            {
                decrypt(&ctx, self.node, process, &ciphertext, version, "main").await
            } else {
                let done = encrypt(&ctx, self.node, process, &canary(&mut self.rng)).await;
                if let (OpType::Ok, Some(ciphertext), Some(version)) =
                    (done.kind, done.ciphertext.clone(), done.version)
                {
                    lock(&self.shared).pool.push((ciphertext, version));
                }
                done
            };
            if done.kind == OpType::Info {
                process += self.stride;
            }
        }
    }

    /// The next `min_decryption_version` to set, if the key has versions enough to keep the
    /// two newest decryptable.
    fn raise_min(&self) -> Option<u64> {
        let shared = lock(&self.shared);
        let next = shared.min_sent.max(1) + 1;
        (next + 2 <= shared.rotated).then_some(next)
    }

    /// A ciphertext to decrypt: a recent one four times in five, else any.
    fn pick(&mut self) -> Option<(String, u64)> {
        let shared = lock(&self.shared);
        let pool = &shared.pool;
        if pool.is_empty() {
            return None;
        }
        let from = if self.rng.below(5) == 0 {
            0
        } else {
            pool.len().saturating_sub(RECENT)
        };
        let at = from + self.rng.below((pool.len() - from) as u64) as usize;
        pool.get(at).cloned()
    }
}

/// The version of a `vault:v<N>:...` ciphertext.
pub fn ciphertext_version(ciphertext: &str) -> Option<u64> {
    ciphertext
        .strip_prefix("vault:v")?
        .split(':')
        .next()?
        .parse()
        .ok()
}

/// Sends one recorded POST; returns the invoke, the completion and, when acknowledged, the
/// answer's `data`.
async fn call(
    ctx: &Ctx,
    node: u64,
    invoke: Op,
    body: serde_json::Value,
) -> (Op, Op, Option<serde_json::Value>) {
    let path = invoke.path.clone().unwrap_or_default();
    let invoke = ctx.recorder.invoke(invoke);
    let request = Request {
        method: "POST",
        path: &path,
        body: Some(body),
        token: Some(&ctx.token),
        stale: false,
        timeout: None,
    };
    let result = ctx.api.call(node, request).await;
    let done = write_completion(&result);
    let data = match result {
        Ok(reply) if done.kind == OpType::Ok => Some(reply.body["data"].clone()),
        _ => None,
    };
    (invoke, done, data)
}

fn new_op(f: F, process: u64, node: u64, path: String, phase: &str) -> Op {
    let mut invoke = Op::new(OpType::Invoke, f, process, node);
    invoke.key = Some(KEY.to_string());
    invoke.path = Some(path);
    invoke.phase = phase.to_string();
    invoke
}

/// Marks an acknowledged answer whose data could not be parsed as indeterminate.
fn unparseable(done: &mut Op, what: &str, data: Option<&serde_json::Value>) {
    done.kind = OpType::Info;
    done.error = Some(format!("unparseable {what} answer: {data:?}"));
}

/// Encrypts `plaintext` on `node` and records it; an acknowledged completion carries the
/// ciphertext and its key version.
pub async fn encrypt(ctx: &Ctx, node: u64, process: u64, plaintext: &str) -> Op {
    let mut invoke = new_op(
        F::Encrypt,
        process,
        node,
        format!("{MOUNT}/encrypt/{KEY}"),
        "main",
    );
    invoke.value = Some(plaintext.to_string());
    let body = json!({"plaintext": STANDARD.encode(plaintext)});
    let (invoke, mut done, data) = call(ctx, node, invoke, body).await;
    if let Some(data) = data {
        let ciphertext = data["ciphertext"].as_str().map(str::to_string);
        match ciphertext.as_deref().and_then(ciphertext_version) {
            Some(version) => {
                done.version = Some(version);
                done.ciphertext = ciphertext;
            }
            None => unparseable(&mut done, "encrypt", Some(&data)),
        }
    }
    ctx.recorder.complete(&invoke, done)
}

/// Decrypts `ciphertext` (of key `version`) on `node` and records it; an acknowledged
/// completion carries the plaintext.
pub async fn decrypt(
    ctx: &Ctx,
    node: u64,
    process: u64,
    ciphertext: &str,
    version: u64,
    phase: &str,
) -> Op {
    let mut invoke = new_op(
        F::Decrypt,
        process,
        node,
        format!("{MOUNT}/decrypt/{KEY}"),
        phase,
    );
    invoke.ciphertext = Some(ciphertext.to_string());
    invoke.version = Some(version);
    let body = json!({"ciphertext": ciphertext});
    let (invoke, mut done, data) = call(ctx, node, invoke, body).await;
    if let Some(data) = data {
        let plaintext = data["plaintext"]
            .as_str()
            .and_then(|p| STANDARD.decode(p).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match plaintext {
            Some(plaintext) => done.value = Some(plaintext),
            None => unparseable(&mut done, "decrypt", Some(&data)),
        }
    }
    ctx.recorder.complete(&invoke, done)
}

/// Rotates the key on `node`; an acknowledged completion carries the new latest version.
pub async fn rotate(ctx: &Ctx, node: u64, process: u64) -> Op {
    let invoke = new_op(
        F::Rotate,
        process,
        node,
        format!("{MOUNT}/keys/{KEY}/rotate"),
        "main",
    );
    let (invoke, mut done, data) = call(ctx, node, invoke, json!({})).await;
    if let Some(data) = data {
        match data["latest_version"].as_u64() {
            Some(version) => done.version = Some(version),
            None => unparseable(&mut done, "rotate", Some(&data)),
        }
    }
    ctx.recorder.complete(&invoke, done)
}

/// Sets the key's `min_decryption_version` to `minimum` on `node`.
pub async fn key_config(ctx: &Ctx, node: u64, process: u64, minimum: u64) -> Op {
    let mut invoke = new_op(
        F::KeyConfig,
        process,
        node,
        format!("{MOUNT}/keys/{KEY}/config"),
        "main",
    );
    invoke.version = Some(minimum);
    let body = json!({"min_decryption_version": minimum});
    let (invoke, done, _) = call(ctx, node, invoke, body).await;
    ctx.recorder.complete(&invoke, done)
}

/// After healing: every node decrypts the acknowledged ciphertexts (a spread sample of
/// [`FINAL_PER_NODE`] when there are more), a few at a time.
pub async fn final_decrypts(ctx: &Ctx, ids: &[u64], shared: &Mutex<Shared>) {
    let pool = lock(shared).pool.clone();
    let step = pool.len().div_ceil(FINAL_PER_NODE).max(1);
    let sample: Vec<(String, u64)> = pool.into_iter().step_by(step).collect();
    for &node in ids {
        let mut tasks = JoinSet::new();
        for (slot, chunk) in sample
            .chunks(sample.len().div_ceil(FINAL_IN_FLIGHT).max(1))
            .enumerate()
        {
            let ctx = ctx.clone();
            let chunk = chunk.to_vec();
            let process = FINAL_PROCESS + node * 100 + slot as u64;
            tasks.spawn(async move {
                for (ciphertext, version) in chunk {
                    decrypt(&ctx, node, process, &ciphertext, version, "final").await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_versions_parse() {
        assert_eq!(ciphertext_version("vault:v12:AAAA"), Some(12));
        assert_eq!(ciphertext_version("vault:v1:"), Some(1));
        assert_eq!(ciphertext_version("vault:12:AAAA"), None);
        assert_eq!(ciphertext_version("AAAA"), None);
    }
}
