//! The Raft log on RocksDB (column families `logs` and `log_meta`).
//!
//! Durability: a vote is synced before `save_vote` returns. Appended entries are written at once
//! (so they are readable when `append` returns) and made durable by a dedicated flusher thread that
//! calls `flush_wal(true)` once for every group of appends waiting on it (group commit), then
//! reports each append as flushed. openraft acknowledges entries to the leader only after that.

use std::fmt::Debug;
use std::io;
use std::ops::Bound;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;
use rocksdb::DB;
use rocksdb::Direction;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::WriteOptions;

use crate::codec;
use crate::db;
use crate::db::CF_LOG_META;
use crate::db::CF_LOGS;
use crate::types::TypeConfig;
use crate::types::typ::Entry;
use crate::types::typ::LogId;
use crate::types::typ::Vote;

const KEY_VOTE: &[u8] = b"vote";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

/// The RocksDB-backed Raft log.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    flusher: mpsc::Sender<IOFlushed<TypeConfig>>,
    /// Whether writes are fsynced (always, except in the harness's deliberately unsafe mode).
    fsync: bool,
    /// Bytes of entries appended since the store was opened (the snapshot schedule's measure
    /// of how much was logged since the last snapshot).
    appended_bytes: Arc<AtomicU64>,
}

impl LogStore {
    /// Creates the log store over an open database and starts its WAL flusher thread.
    pub(crate) fn new(db: Arc<DB>, fsync: bool) -> Result<Self, io::Error> {
        let (flusher, pending) = mpsc::channel::<IOFlushed<TypeConfig>>();
        // A weak handle: the thread must not keep the database open after the node is dropped.
        let flusher_db = Arc::downgrade(&db);
        std::thread::Builder::new()
            .name("raft-log-flush".into())
            .spawn(move || flush_loop(&flusher_db, &pending, fsync))?;
        Ok(LogStore {
            db,
            flusher,
            fsync,
            appended_bytes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The counter of bytes appended since the store was opened.
    pub(crate) fn appended_bytes(&self) -> Arc<AtomicU64> {
        self.appended_bytes.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, io::Error> {
        let bytes = self
            .db
            .get_cf(db::cf(&self.db, CF_LOG_META), key)
            .map_err(db::io_err)?;
        bytes.map(|bytes| db::decode(&bytes)).transpose()
    }

    fn put_meta_durable<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), io::Error> {
        let mut batch = WriteBatch::default();
        batch.put_cf(db::cf(&self.db, CF_LOG_META), key, codec::encode(value));
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(db::io_err)
    }

    /// Synced writes (unless the unsafe testing mode turned fsync off).
    fn write_options(&self) -> WriteOptions {
        let mut options = WriteOptions::default();
        options.set_sync(self.fsync);
        options
    }
}

/// Waits for appends, syncs the WAL once per group of waiting appends, and completes them.
fn flush_loop(db: &Weak<DB>, pending: &mpsc::Receiver<IOFlushed<TypeConfig>>, fsync: bool) {
    while let Ok(first) = pending.recv() {
        let mut group = vec![first];
        group.extend(pending.try_iter());
        let result = match db.upgrade() {
            Some(db) => db.flush_wal(fsync).map_err(db::io_err),
            None => Err(io::Error::other(
                "database closed before the log was flushed",
            )),
        };
        for callback in group {
            let result = match &result {
                Ok(()) => Ok(()),
                Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
            };
            callback.io_completed(result);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(index) => *index,
            Bound::Excluded(index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let start_key = db::index_key(start);
        let mut entries = Vec::new();
        let iter = self.db.iterator_cf(
            db::cf(&self.db, CF_LOGS),
            IteratorMode::From(&start_key, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(db::io_err)?;
            let index = db::parse_index_key(&key)?;
            if !range.contains(&index) {
                break;
            }
            let entry: Entry = db::decode(&value)?;
            if entry.index() != index {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "log entry stored under the wrong index",
                ));
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(KEY_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last = self
            .db
            .iterator_cf(db::cf(&self.db, CF_LOGS), IteratorMode::End)
            .next();
        let last_log_id = match last {
            None => None,
            Some(item) => {
                let (_, value) = item.map_err(db::io_err)?;
                let entry: Entry = db::decode(&value)?;
                Some(entry.log_id())
            }
        };
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = last_log_id.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.put_meta_durable(KEY_VOTE, vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not required for safety (the committed index is re-learned from the leader); kept so a
        // restarted node can re-apply what it knows is committed before hearing from anyone.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            db::cf(&self.db, CF_LOG_META),
            KEY_COMMITTED,
            codec::encode(&committed),
        );
        self.db.write(batch).map_err(db::io_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = db::cf(&self.db, CF_LOGS);
        let mut batch = WriteBatch::default();
        for entry in entries {
            batch.put_cf(cf, db::index_key(entry.index()), codec::encode(&entry));
        }
        self.appended_bytes
            .fetch_add(batch.size_in_bytes() as u64, Ordering::Relaxed);
        // Written now, so the entries are readable when this returns; durable once the flusher
        // has synced the WAL and completed the callback.
        self.db.write(batch).map_err(db::io_err)?;
        self.flusher
            .send(callback)
            .map_err(|_| io::Error::other("raft log flusher thread has stopped"))?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |log_id| log_id.index() + 1);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            db::cf(&self.db, CF_LOGS),
            db::index_key(from),
            db::index_key(u64::MAX),
        );
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(db::io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // The purge point and the deletion go in one batch: the log never claims entries it lost.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            db::cf(&self.db, CF_LOG_META),
            KEY_LAST_PURGED,
            codec::encode(&log_id),
        );
        batch.delete_range_cf(
            db::cf(&self.db, CF_LOGS),
            db::index_key(0),
            db::index_key(log_id.index() + 1),
        );
        self.db
            .write_opt(batch, &self.write_options())
            .map_err(db::io_err)
    }
}
