//! The history: every operation the harness sent, as Jepsen records it. Each operation is an
//! `invoke` event followed by exactly one completion (`ok`: it happened; `fail`: it certainly
//! did not; `info`: unknown). Events carry a monotonic timestamp (nanoseconds since the run
//! started, one clock for the whole harness) and the wall-clock time. The recorder appends
//! them to `history.jsonl` as they happen; [`load`] reads a stored history back.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufRead;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;
use std::time::SystemTime;

use serde::Deserialize;
use serde::Serialize;

/// An event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The operation was sent.
    Invoke,
    /// It definitely happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may or may not have happened (timeouts, 5xx on writes).
    Info,
}

/// What the operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum F {
    /// Register: read a key (linearizable unless the run says otherwise).
    Read,
    /// Register: write a new version without a version check.
    Write,
    /// Register: write with `options.cas = expected`.
    Cas,
    /// Set: add one element (a create-only write of its own key).
    Add,
    /// Set: list every element.
    ReadSet,
    /// Transit: encrypt a plaintext with the run's key.
    Encrypt,
    /// Transit: decrypt a ciphertext an earlier encrypt returned.
    Decrypt,
    /// Transit: rotate the key (a new latest version).
    Rotate,
    /// Transit: set the key's `min_decryption_version` (the invoke's `version`).
    KeyConfig,
    /// A request the harness made for itself (setup, audit export, seal nemesis); audited,
    /// so the audit checker must account for it, but no workload checker looks at it.
    Control,
}

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: u64,
    /// The operation this event belongs to (shared by the invoke and its completion).
    pub id: u64,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// What the operation does.
    pub f: F,
    /// The logical client (a worker takes a new process id after an `info`).
    pub process: u64,
    /// The node id the request was sent to.
    pub node: u64,
    /// Nanoseconds since the run started (monotonic).
    pub time_ns: u64,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub wall_ns: u64,
    /// Register key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The API path (after `/v1/`), for matching audit records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The value written or read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The version written or read (0 = the key does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// A CAS's expected version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<u64>,
    /// The set element added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<u64>,
    /// The set elements read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<u64>>,
    /// Transit: the ciphertext returned by an encrypt, or sent by a decrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// The HTTP status, if a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The server's request id (`X-Strongroom-Request-Id`), if a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req_id: Option<String>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True when the request certainly never reached the server (connection refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_sent: bool,
    /// The run phase: `main` (under faults) or `final` (after healing); control ops name
    /// their purpose here (`setup`, `audit-export`, `seal`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

impl Op {
    /// A new event with every optional field empty (`index`, times are set on recording).
    pub fn new(kind: OpType, f: F, process: u64, node: u64) -> Op {
        Op {
            index: 0,
            id: 0,
            kind,
            f,
            process,
            node,
            time_ns: 0,
            wall_ns: 0,
            key: None,
            path: None,
            value: None,
            version: None,
            expected: None,
            element: None,
            elements: None,
            ciphertext: None,
            status: None,
            req_id: None,
            error: None,
            not_sent: false,
            phase: String::new(),
        }
    }

    /// True for the completion types.
    pub fn is_completion(&self) -> bool {
        self.kind != OpType::Invoke
    }
}

struct Inner {
    ops: Vec<Op>,
    next_id: u64,
    out: Option<BufWriter<File>>,
}

/// The live recorder: assigns indexes and times, keeps every event, appends it to the file.
pub struct Recorder {
    start: Instant,
    start_wall: SystemTime,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder writing to `path` (or to memory only when `None`).
    pub fn create(path: Option<&Path>) -> std::io::Result<Recorder> {
        let out = match path {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        Ok(Recorder {
            start: Instant::now(),
            start_wall: SystemTime::now(),
            inner: Mutex::new(Inner {
                ops: Vec::new(),
                next_id: 0,
                out,
            }),
        })
    }

    /// Nanoseconds since the run started (the monotonic clock every event uses).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The wall-clock time matching `now_ns`, in nanoseconds since the epoch.
    pub fn wall_ns(&self, now_ns: u64) -> u64 {
        let base = self
            .start_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(0))
            .unwrap_or(0);
        base.saturating_add(now_ns)
    }

    /// Records an invocation; returns it with its new operation id and time.
    pub fn invoke(&self, mut op: Op) -> Op {
        op.kind = OpType::Invoke;
        let mut inner = self.lock();
        op.id = inner.next_id;
        inner.next_id += 1;
        self.push(&mut inner, op)
    }

    /// Records the completion of `invoke` (`done` carries the type and result fields).
    pub fn complete(&self, invoke: &Op, mut done: Op) -> Op {
        done.id = invoke.id;
        done.f = invoke.f;
        done.process = invoke.process;
        done.node = invoke.node;
        if done.key.is_none() {
            done.key = invoke.key.clone();
        }
        if done.path.is_none() {
            done.path = invoke.path.clone();
        }
        if done.phase.is_empty() {
            done.phase = invoke.phase.clone();
        }
        let mut inner = self.lock();
        self.push(&mut inner, done)
    }

    fn push(&self, inner: &mut Inner, mut op: Op) -> Op {
        op.index = inner.ops.len() as u64;
        op.time_ns = self.now_ns();
        op.wall_ns = self.wall_ns(op.time_ns);
        if let Some(out) = inner.out.as_mut()
            && let Ok(line) = serde_json::to_string(&op)
        {
            // A failed write loses the file copy only; the in-memory history stays complete.
            let _ = writeln!(out, "{line}");
        }
        inner.ops.push(op.clone());
        op
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Flushes the file and returns a copy of every event so far.
    pub fn snapshot(&self) -> Vec<Op> {
        let mut inner = self.lock();
        if let Some(out) = inner.out.as_mut() {
            let _ = out.flush();
        }
        inner.ops.clone()
    }
}

/// Reads a stored `history.jsonl`.
pub fn load(path: &Path) -> anyhow::Result<Vec<Op>> {
    let file = File::open(path)?;
    let mut ops = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line)
            .map_err(|err| anyhow::anyhow!("{}:{}: {err}", path.display(), number + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

/// An operation with its completion: the unit checkers reason about.
#[derive(Debug, Clone)]
pub struct Completed<'a> {
    /// The invocation.
    pub invoke: &'a Op,
    /// The completion; `None` if the history ended first (treated as `info`).
    pub done: Option<&'a Op>,
}

impl<'a> Completed<'a> {
    /// The completion type (`Info` when there is none).
    pub fn kind(&self) -> OpType {
        self.done.map_or(OpType::Info, |done| done.kind)
    }

    /// When it was invoked.
    pub fn start(&self) -> u64 {
        self.invoke.time_ns
    }

    /// When it completed; `u64::MAX` (never) for `info` operations, which may take effect at
    /// any later time.
    pub fn end(&self) -> u64 {
        match self.done {
            Some(done) if done.kind != OpType::Info => done.time_ns,
            _ => u64::MAX,
        }
    }

    /// The history index of the completion (or the invocation when there is none).
    pub fn last_index(&self) -> u64 {
        self.done.map_or(self.invoke.index, |done| done.index)
    }
}

/// Pairs every invocation with its completion, in invocation order.
pub fn pair(ops: &[Op]) -> Vec<Completed<'_>> {
    let mut done: HashMap<u64, &Op> = HashMap::new();
    for op in ops.iter().filter(|op| op.is_completion()) {
        done.insert(op.id, op);
    }
    ops.iter()
        .filter(|op| op.kind == OpType::Invoke)
        .map(|invoke| Completed {
            invoke,
            done: done.get(&invoke.id).copied(),
        })
        .collect()
}
