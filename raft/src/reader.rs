//! Local reads of the state machine: records, prefix scans and statistics, and the journal.
//!
//! Reads go straight to RocksDB and see whatever this node has applied. For a linearizable read,
//! first get a read point from [`crate::RaftNode::read_point`], which waits until this node has
//! applied at least that far. Each call sees a consistent point (one apply batch is atomic).

use std::path::Path;
use std::sync::Arc;

use rocksdb::DB;
use rocksdb::Direction;
use rocksdb::IteratorMode;
use tokio::sync::watch;

use crate::db;
use crate::db::CF_JOURNAL;
use crate::db::CF_KV;
use crate::error::StoreError;
use crate::state_machine;
use crate::types::JournalEntry;
use crate::types::JournalHead;
use crate::types::JournalRetention;
use crate::types::Record;

/// How many keys sit under a prefix and the newest revision among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixStat {
    /// Number of keys under the prefix.
    pub count: u64,
    /// The newest mod_revision under the prefix (0 if there is no key).
    pub max_mod_revision: u64,
}

/// A cheap, cloneable handle for reading this node's applied state.
#[derive(Clone)]
pub struct StoreReader {
    db: Arc<DB>,
    applied: watch::Receiver<u64>,
}

impl StoreReader {
    pub(crate) fn new(db: Arc<DB>, applied: watch::Receiver<u64>) -> Self {
        StoreReader { db, applied }
    }

    /// Opens the state machine of a node that is not running (its data dir, as in
    /// [`crate::NodeConfig`]) read-only, to inspect what it applied: key counts, records, the
    /// journal. Values stay as stored (encrypted by the layer above). Fails while the node runs.
    pub fn open_read_only(data_dir: &Path) -> Result<StoreReader, StoreError> {
        let db = db::open_read_only(&data_dir.join("raft"))?;
        let (last_applied, _) = state_machine::read_applied_state(&db)?;
        let (_, applied) = watch::channel(last_applied.map_or(0, |log_id| log_id.index));
        Ok(StoreReader { db, applied })
    }

    /// The log index this node has applied up to.
    pub fn applied_index(&self) -> u64 {
        *self.applied.borrow()
    }

    /// A receiver that changes whenever this node applies more of the log (for tasks that follow
    /// the journal, such as audit sinks).
    pub fn applied_watch(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// The record of `key`, if it exists.
    pub fn get(&self, key: &str) -> Result<Option<Record>, StoreError> {
        Ok(state_machine::read_record(&self.db, key)?)
    }

    /// Up to `limit` keys under `prefix` in key order, starting after `start_after` if given.
    pub fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        let start = match start_after {
            Some(after) if after.as_bytes() >= prefix.as_bytes() => {
                let mut start = after.as_bytes().to_vec();
                start.push(0);
                start
            }
            _ => prefix.as_bytes().to_vec(),
        };
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            db::cf(&self.db, CF_KV),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(db::io_err)?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let key = String::from_utf8(key.to_vec()).map_err(db::io_err)?;
            out.push((key, db::decode(&value)?));
        }
        Ok(out)
    }

    /// The number of keys under `prefix` and the newest revision among them.
    pub fn prefix_stat(&self, prefix: &str) -> Result<PrefixStat, StoreError> {
        let mut stat = PrefixStat::default();
        let iter = self.db.iterator_cf(
            db::cf(&self.db, CF_KV),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(db::io_err)?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let record: Record = db::decode(&value)?;
            stat.count += 1;
            stat.max_mod_revision = stat.max_mod_revision.max(record.mod_revision);
        }
        Ok(stat)
    }

    /// The last journal sequence number and its chain hash.
    pub fn journal_head(&self) -> Result<JournalHead, StoreError> {
        Ok(state_machine::read_journal_head(&self.db)?)
    }

    /// The journal's retention state: its prune point (records up to it were deleted; the chain
    /// continues from its hash) and every node's delivery acknowledgement.
    pub fn journal_retention(&self) -> Result<JournalRetention, StoreError> {
        Ok(state_machine::read_journal_retention(&self.db)?)
    }

    /// The furthest a journal prune could reach now: the lowest delivery acknowledgement among
    /// the current members (0 while one has not acknowledged), never past the head. Records after
    /// it are still needed by some node's sink.
    pub fn journal_prune_limit(&self) -> Result<u64, StoreError> {
        Ok(state_machine::read_prune_limit(&self.db)?)
    }

    /// Up to `limit` journal entries starting at sequence number `from_seq` (or at the first
    /// record kept, if `from_seq` was pruned).
    pub fn journal(&self, from_seq: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let start = db::index_key(from_seq);
        let iter = self.db.iterator_cf(
            db::cf(&self.db, CF_JOURNAL),
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (_, value) = item.map_err(db::io_err)?;
            out.push(db::decode(&value)?);
        }
        Ok(out)
    }

    /// Flushes RocksDB's memtables to SST files (for tests that inspect files on disk).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in [
            db::CF_KV,
            db::CF_JOURNAL,
            db::CF_LOGS,
            db::CF_SM_META,
            db::CF_LOG_META,
        ] {
            self.db
                .flush_cf(db::cf(&self.db, name))
                .map_err(db::io_err)?;
        }
        Ok(())
    }
}
