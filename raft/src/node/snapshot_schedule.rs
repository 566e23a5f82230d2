//! When a node builds a snapshot: after `snapshot_logs_since_last` log entries *and* after as
//! many log bytes as a fraction (`snapshot_log_bytes_ratio`) of its latest snapshot's size.
//!
//! A snapshot is a full copy of the state machine (every key and the whole journal), so with a
//! fixed entry count (openraft's `LogsSinceLast`) its cost per entry grows with the state: at a
//! million keys each snapshot rewrote ~1.5 GB every 10,000 entries, and snapshot writes filled
//! the disk of a three-node benchmark before it got there. Making the log since the last
//! snapshot at least a fixed fraction of the snapshot's size spaces snapshots geometrically while
//! the state grows, so every logged byte pays for at most `1 / ratio` bytes of snapshot, and the
//! log kept on disk stays within `ratio` times the snapshot. openraft runs with
//! `SnapshotPolicy::Never`; this task calls `trigger().snapshot()`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use crate::snapshot;
use crate::types::typ::Raft;

/// How long to wait for a triggered snapshot before triggering again (a build that failed is
/// retried after this).
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The policy's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotSchedule {
    /// At least this many log entries since the last snapshot.
    pub logs_since_last: u64,
    /// And at least this fraction of the latest snapshot's size in log bytes (0: entries only).
    pub log_bytes_ratio: f64,
}

impl SnapshotSchedule {
    /// Whether to build a snapshot now: `logs_since` entries and `log_bytes_since` bytes were
    /// logged since the latest snapshot, whose file has `snapshot_bytes` bytes (`None`: there is
    /// no snapshot yet, or how much was logged since it is not known, e.g. after a restart).
    pub fn due(&self, logs_since: u64, log_bytes_since: Option<u64>, snapshot_bytes: u64) -> bool {
        if logs_since < self.logs_since_last {
            return false;
        }
        let Some(log_bytes_since) = log_bytes_since else {
            return true;
        };
        // Precision is irrelevant at these sizes; a ratio of 0 turns the byte condition off.
        let needed = (snapshot_bytes as f64 * self.log_bytes_ratio) as u64;
        log_bytes_since >= needed
    }
}

/// Runs the schedule for `raft` until its metrics channel closes (the node shut down).
/// `appended_bytes` counts every byte the log store has appended since the node started;
/// `snapshots` is the directory of complete snapshot files.
pub(crate) async fn run(
    raft: Raft,
    schedule: SnapshotSchedule,
    appended_bytes: Arc<AtomicU64>,
    snapshots: PathBuf,
) {
    let mut metrics = raft.metrics();
    let mut known_snapshot = metrics.borrow_watched().snapshot.map(|log_id| log_id.index);
    // What the log store had appended when the latest snapshot was seen; `None` until a
    // snapshot is built in this process (what was logged before the restart is not counted).
    let mut appended_at_snapshot: Option<u64> = None;
    let mut snapshot_bytes = latest_snapshot_bytes(&snapshots);
    let mut triggered: Option<(u64, Instant)> = None;
    loop {
        let (applied, snapshot) = {
            let current = metrics.borrow_and_update();
            (
                current.last_applied.map_or(0, |log_id| log_id.index),
                current.snapshot.map(|log_id| log_id.index),
            )
        };
        if snapshot != known_snapshot {
            known_snapshot = snapshot;
            appended_at_snapshot = Some(appended_bytes.load(Ordering::Relaxed));
            snapshot_bytes = latest_snapshot_bytes(&snapshots);
            triggered = None;
        }
        let logs_since = applied.saturating_sub(snapshot.unwrap_or(0));
        let bytes_since = appended_at_snapshot
            .map(|mark| appended_bytes.load(Ordering::Relaxed).saturating_sub(mark));
        let waiting = triggered.is_some_and(|(_, at)| at.elapsed() < RETRY_AFTER);
        if !waiting && schedule.due(logs_since, bytes_since, snapshot_bytes) {
            tracing::debug!(
                applied,
                logs_since,
                bytes_since,
                snapshot_bytes,
                "building a snapshot"
            );
            if raft.trigger().snapshot().await.is_err() {
                return;
            }
            triggered = Some((applied, Instant::now()));
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// The size of the newest complete snapshot file (0 if there is none or it cannot be read).
fn latest_snapshot_bytes(dir: &std::path::Path) -> u64 {
    snapshot::latest_in(dir)
        .ok()
        .flatten()
        .and_then(|path| std::fs::metadata(path).ok())
        .map_or(0, |meta| meta.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE: SnapshotSchedule = SnapshotSchedule {
        logs_since_last: 100,
        log_bytes_ratio: 0.5,
    };

    #[test]
    fn too_few_entries_never_snapshot() {
        assert!(!SCHEDULE.due(99, Some(u64::MAX), 0));
        assert!(!SCHEDULE.due(99, None, 0));
    }

    #[test]
    fn the_log_must_reach_the_ratio_of_the_snapshot() {
        assert!(!SCHEDULE.due(1_000, Some(499), 1_000));
        assert!(SCHEDULE.due(1_000, Some(500), 1_000));
        // The first snapshot (nothing to compare with) waits only for the entry count.
        assert!(SCHEDULE.due(100, Some(0), 0));
    }

    #[test]
    fn unknown_log_bytes_fall_back_to_the_entry_count() {
        assert!(SCHEDULE.due(100, None, 1 << 40));
    }

    #[test]
    fn a_zero_ratio_is_the_plain_entry_policy() {
        let plain = SnapshotSchedule {
            logs_since_last: 100,
            log_bytes_ratio: 0.0,
        };
        assert!(plain.due(100, Some(0), 1 << 40));
        assert!(!plain.due(99, Some(0), 0));
    }

    #[test]
    fn snapshots_space_out_geometrically_as_the_state_grows() {
        // Each entry adds 1 KB of log and 1 KB of state; a snapshot is as big as the state.
        let schedule = SnapshotSchedule {
            logs_since_last: 10,
            log_bytes_ratio: 0.5,
        };
        let (mut state, mut since, mut snapshot, mut builds, mut written) = (0u64, 0u64, 0, 0, 0);
        for _ in 0..100_000 {
            state += 1_000;
            since += 1;
            if schedule.due(since, Some(since * 1_000), snapshot) {
                snapshot = state;
                written += state;
                builds += 1;
                since = 0;
            }
        }
        // A fixed 10-entry policy would have built 10,000 snapshots writing ~500 GB; this one
        // builds a few dozen and writes at most 1 / ratio + 1 times the state.
        assert!(builds < 40, "{builds} builds");
        assert!(
            written <= 3 * state,
            "{written} bytes for a {state}-byte state"
        );
    }
}
