//! Audit sinks: each node streams the records of its applied journal, decrypted, to the sinks
//! configured in its server file (`[[audit.sink]]`; never through the API): [`file::FileSink`]
//! (JSON lines, fsync'd, rotated), [`socket::SocketSink`] (JSON lines to a Unix or TCP
//! stream socket) and [`syslog::SyslogSink`] (one RFC 5424 message per record). One background task
//! per sink follows the journal from a durable [`cursor::Cursor`] (the last sequence number the
//! sink has fsync'd), so a sink that was down, full or read-only catches up without loss once it
//! recovers, and a failing sink never blocks requests: it only falls behind. Failures are retried
//! with exponential backoff (100 ms to 5 s).
//!
//! While the node is sealed it cannot decrypt, so delivery pauses and resumes after unseal.
//! Delivery is at least once: a crash between the sink's fsync and the cursor's may repeat a
//! record; on start the cursor is moved past the last record already in the sink file, and every
//! line carries its `seq`, so consumers can drop repeats.
//!
//! Each sink's delivered position is what this node acknowledges to journal retention
//! (`core::audit_retention`): records are pruned only once every node's sinks have them. A sink
//! whose cursor is behind the prune point (one added after records were pruned, or on a node that
//! joined later) starts after the prune point: those records no longer exist.

pub mod cursor;
pub mod file;
pub mod socket;
pub mod syslog;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use tokio::sync::watch;

use self::cursor::Cursor;
use self::file::FileSink;
use self::socket::SocketSink;
use self::syslog::SyslogSink;
use crate::config::SinkConfig;
use crate::config::SinkKind;
use crate::config::SocketType;

/// Records read from the journal per delivery batch.
const BATCH: usize = 256;
/// First retry delay after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often an idle or paused sink looks again even without an apply notification.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// One journal record ready for a sink: its sequence number and its JSON line (no newline).
#[derive(Debug, Clone)]
pub struct SinkRecord {
    /// The journal sequence number.
    pub seq: u64,
    /// The record as one JSON line, `seq` included.
    pub line: Vec<u8>,
}

impl SinkRecord {
    /// The line of a decrypted record: the record's JSON object with its `seq` added.
    pub fn from_record(seq: u64, mut record: Value) -> Self {
        if let Some(object) = record.as_object_mut() {
            object.insert("seq".into(), json!(seq));
        } else {
            record = json!({"seq": seq, "record": record});
        }
        SinkRecord {
            seq,
            line: serde_json::to_vec(&record).unwrap_or_default(),
        }
    }
}

/// Why the journal could not be read for a sink.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The node is sealed: records cannot be decrypted until it is unsealed.
    #[error("the node is sealed")]
    Sealed,
    /// Reading or decrypting failed.
    #[error("reading the journal failed: {0}")]
    Read(String),
}

/// Where records go: a sink writes a batch of consecutive records durably (as far as its kind
/// allows) or fails, leaving the cursor where it was.
pub trait Sink: Send + Sync + 'static {
    /// Writes `records` (consecutive, in order).
    fn append(&self, records: &[SinkRecord]) -> std::io::Result<()>;
    /// The sequence number of the last record the destination already holds, if it can tell.
    fn last_seq(&self) -> std::io::Result<Option<u64>>;
}

impl Sink for FileSink {
    fn append(&self, records: &[SinkRecord]) -> std::io::Result<()> {
        FileSink::append(self, records)
    }

    fn last_seq(&self) -> std::io::Result<Option<u64>> {
        FileSink::last_seq(self)
    }
}

/// Where sinks read records from: the node's applied journal, decrypted.
pub trait JournalSource: Send + Sync + 'static {
    /// Up to `limit` records from sequence number `from` on, in order.
    fn records(&self, from: u64, limit: usize) -> Result<Vec<SinkRecord>, SourceError>;
    /// A receiver that changes when the node applies more of the log.
    fn applied(&self) -> watch::Receiver<u64>;
    /// The journal's prune point: records up to it were deleted by retention.
    fn pruned_through(&self) -> Result<u64, SourceError>;
}

/// A sink's delivery state, shared with `sys/audit`.
#[derive(Debug, Default)]
pub struct SinkStatus {
    delivered: AtomicU64,
    failing: AtomicBool,
}

impl SinkStatus {
    /// The last sequence number the sink has durably received.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Whether the last attempt to deliver failed.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

/// A configured sink and its delivery state.
#[derive(Debug, Clone)]
pub struct SinkHandle {
    config: SinkConfig,
    status: Arc<SinkStatus>,
}

impl SinkHandle {
    /// The sink's name.
    pub fn name(&self) -> &str {
        self.config.name()
    }

    /// The last sequence number the sink has received (what this node acknowledges for it).
    pub fn delivered(&self) -> u64 {
        self.status.delivered()
    }

    /// Vault's `sys/audit` entry of this sink (`type`, `description`, `options`, `local`,
    /// `path`), plus this node's delivery state (`delivered_seq`, `failing`).
    pub fn describe(&self) -> Value {
        let mut options = serde_json::Map::new();
        match (self.config.kind, self.config.socket_type()) {
            (SinkKind::File, _) => {
                options.insert(
                    "file_path".into(),
                    json!(self.config.path.to_string_lossy()),
                );
            }
            (SinkKind::Socket, SocketType::Unix) => {
                options.insert("address".into(), json!(self.config.path.to_string_lossy()));
                options.insert("socket_type".into(), json!("unix"));
            }
            (SinkKind::Socket, SocketType::Tcp) => {
                options.insert("address".into(), json!(self.config.address));
                options.insert("socket_type".into(), json!("tcp"));
            }
            (SinkKind::Syslog, _) => {
                options.insert("facility".into(), json!(self.config.facility()));
                options.insert("tag".into(), json!(self.config.tag()));
            }
        }
        if let Some(max) = self.config.max_bytes {
            options.insert("max_bytes".into(), json!(max.to_string()));
        }
        json!({
            "type": self.config.kind.as_str(),
            "description": self.config.description,
            "options": options,
            "local": false,
            "path": format!("{}/", self.name()),
            "delivered_seq": self.status.delivered(),
            "failing": self.status.failing(),
        })
    }
}

/// Starts one delivery task per sink; they stop when `stop` turns true.
pub fn start(
    configs: &[SinkConfig],
    data_dir: &Path,
    source: Arc<dyn JournalSource>,
    stop: watch::Receiver<bool>,
) -> Vec<SinkHandle> {
    configs
        .iter()
        .map(|config| {
            let handle = SinkHandle {
                config: config.clone(),
                status: Arc::new(SinkStatus::default()),
            };
            let sink: Arc<dyn Sink> = match (config.kind, config.socket_type()) {
                (SinkKind::File, _) => {
                    Arc::new(FileSink::new(config.path.clone(), config.max_bytes))
                }
                (SinkKind::Socket, SocketType::Unix) => {
                    Arc::new(SocketSink::new(socket::Target::Unix(config.path.clone())))
                }
                (SinkKind::Socket, SocketType::Tcp) => {
                    Arc::new(SocketSink::new(socket::Target::Tcp(config.address.clone())))
                }
                (SinkKind::Syslog, _) => {
                    let target = if config.address.is_empty() {
                        syslog::Target::Unixgram(config.syslog_path().to_path_buf())
                    } else {
                        syslog::Target::Udp(config.address.clone())
                    };
                    Arc::new(SyslogSink::new(target, &config.facility(), config.tag()))
                }
            };
            let cursor = Cursor::new(data_dir, config.name(), &config.destination());
            tokio::spawn(deliver(
                config.name().to_string(),
                sink,
                cursor,
                source.clone(),
                handle.status.clone(),
                stop.clone(),
            ));
            handle
        })
        .collect()
}

/// Where delivery starts: after the cursor, or after the sink file's last record if the cursor is
/// behind it (a crash between the two fsyncs) or unreadable.
fn starting_point(name: &str, sink: &dyn Sink, cursor: &Cursor) -> u64 {
    let stored = cursor.load().unwrap_or_else(|err| {
        tracing::warn!(sink = name, error = %err, "audit sink cursor unreadable; resuming from the sink file");
        0
    });
    let in_file = sink.last_seq().ok().flatten().unwrap_or(0);
    stored.max(in_file)
}

async fn deliver(
    name: String,
    sink: Arc<dyn Sink>,
    cursor: Cursor,
    source: Arc<dyn JournalSource>,
    status: Arc<SinkStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let mut applied = source.applied();
    let start = {
        let (name, sink, cursor) = (name.clone(), sink.clone(), cursor.clone());
        tokio::task::spawn_blocking(move || starting_point(&name, &*sink, &cursor))
            .await
            .unwrap_or(0)
    };
    status.delivered.store(start, Ordering::Relaxed);
    let mut delivered = start;
    let mut backoff = BACKOFF_MIN;
    let mut cursor_behind = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let step = {
            let (source, sink, cursor) = (source.clone(), sink.clone(), cursor.clone());
            tokio::task::spawn_blocking(move || step(&*source, &*sink, &cursor, delivered))
                .await
                .unwrap_or_else(|err| Step::Failed(format!("delivery task failed: {err}")))
        };
        let wait = match step {
            Step::Delivered {
                last,
                cursor_stored,
            } => {
                delivered = last;
                status.delivered.store(last, Ordering::Relaxed);
                if status.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(sink = %name, seq = last, "audit sink recovered");
                }
                if !cursor_stored && !cursor_behind {
                    tracing::warn!(sink = %name, "audit sink cursor could not be stored; will retry");
                }
                cursor_behind = !cursor_stored;
                backoff = BACKOFF_MIN;
                continue;
            }
            Step::Idle => IDLE_POLL,
            Step::Sealed => IDLE_POLL,
            Step::Failed(reason) => {
                if !status.failing.swap(true, Ordering::Relaxed) || backoff == BACKOFF_MAX {
                    tracing::warn!(sink = %name, %reason, after = delivered, "audit sink delivery failed; retrying");
                }
                let wait = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        tokio::select! {
            _ = applied.changed() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The outcome of one delivery attempt.
enum Step {
    /// Records up to `last` are in the sink.
    Delivered { last: u64, cursor_stored: bool },
    /// Nothing new.
    Idle,
    /// The node is sealed.
    Sealed,
    /// Reading or writing failed (the reason names no secret).
    Failed(String),
}

fn step(source: &dyn JournalSource, sink: &dyn Sink, cursor: &Cursor, delivered: u64) -> Step {
    let pruned_through = match source.pruned_through() {
        Ok(seq) => seq,
        Err(SourceError::Sealed) => return Step::Sealed,
        Err(err) => return Step::Failed(err.to_string()),
    };
    if delivered < pruned_through {
        // Only possible for a sink (or node) that did not exist when these were pruned: retention
        // waits for every existing sink. They are gone; start after them.
        tracing::warn!(
            from = delivered + 1,
            through = pruned_through,
            "audit sink starts after the journal's prune point: earlier records were removed by retention before it existed"
        );
        return Step::Delivered {
            last: pruned_through,
            cursor_stored: cursor.store(pruned_through).is_ok(),
        };
    }
    let records = match source.records(delivered + 1, BATCH) {
        Ok(records) => records,
        Err(SourceError::Sealed) => return Step::Sealed,
        Err(err) => return Step::Failed(err.to_string()),
    };
    // Only a gapless run that continues the cursor is delivered.
    let run = records
        .iter()
        .zip(delivered + 1..)
        .take_while(|(record, expected)| record.seq == *expected)
        .count();
    let Some(last) = records[..run].last().map(|record| record.seq) else {
        return if records.is_empty() {
            Step::Idle
        } else {
            Step::Failed(format!(
                "journal does not continue at seq {}",
                delivered + 1
            ))
        };
    };
    if let Err(err) = sink.append(&records[..run]) {
        return Step::Failed(format!("writing the sink failed: {err}"));
    }
    Step::Delivered {
        last,
        cursor_stored: cursor.store(last).is_ok(),
    }
}
