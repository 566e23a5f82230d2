//! The replicated state machine on RocksDB: a revisioned KV (`kv`), the journal (`journal`) and
//! the applied position (`sm_meta`). Each `apply` call lands in one atomic `WriteBatch`: data,
//! journal records, last-applied log id, membership and journal head together, so a crash leaves
//! the state machine at a batch boundary and openraft re-applies the rest from the log.
//!
//! The apply batch is written to the WAL but not fsynced: the Raft log is the durable record, and
//! the state machine is a deterministic function of it. Why that is safe (one shared WAL, recovered
//! as a prefix; log entries precede their apply in it; purges are synced) is argued in [`crate::db`]
//! and `docs/performance.md`. Snapshot installs, which replace state the log no longer holds, stay
//! synced.
//!
//! Applying needs no keys: values and journal records are opaque. Sealed vault nodes keep applying.
//!
//! Journal retention (`journal_retention` in `sm_meta`: the prune point and each node's delivery
//! acknowledgement) is part of the applied state: written in the same batch as the journal and
//! carried by snapshots in their own frame, so a node installing a snapshot of a pruned journal
//! gets the prune point it needs to verify the chain (see `apply` for the prune rule).

mod apply;

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures::Stream;
use futures::TryStreamExt;
use openraft::EntryPayload;
use openraft::OptionalSend;
use openraft::RaftSnapshotBuilder;
use openraft::alias::SnapshotOf;
use openraft::storage::EntryResponder;
use openraft::storage::RaftStateMachine;
use rocksdb::DB;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use rocksdb::WriteOptions;
use tokio::sync::watch;

use self::apply::PendingWrites;
pub use self::apply::chain_hash;
pub(crate) use self::apply::read_record;
use crate::codec;
use crate::db;
use crate::db::CF_JOURNAL;
use crate::db::CF_KV;
use crate::db::CF_SM_META;
use crate::snapshot;
use crate::snapshot::Frame;
use crate::snapshot::SnapshotFile;
use crate::snapshot::SnapshotReader;
use crate::snapshot::SnapshotWriter;
use crate::types::ApplyResponse;
use crate::types::JournalHead;
use crate::types::JournalRetention;
use crate::types::NodeId;
use crate::types::TypeConfig;
use crate::types::typ::Entry;
use crate::types::typ::LogId;
use crate::types::typ::SnapshotMeta;
use crate::types::typ::StoredMembership;

const KEY_LAST_APPLIED: &[u8] = b"last_applied";
const KEY_MEMBERSHIP: &[u8] = b"membership";
const KEY_JOURNAL_HEAD: &[u8] = b"journal_head";
const KEY_JOURNAL_RETENTION: &[u8] = b"journal_retention";

/// Where snapshot files live.
#[derive(Debug, Clone)]
pub struct SnapshotDirs {
    /// Complete snapshots (only the newest is kept).
    pub complete: PathBuf,
    /// Snapshots being built or received.
    pub partial: PathBuf,
}

impl SnapshotDirs {
    /// The snapshot directories under a node's data directory, created if missing.
    pub fn under(data_dir: &std::path::Path) -> Result<Self, io::Error> {
        let dirs = SnapshotDirs {
            complete: data_dir.join("snapshots"),
            partial: data_dir.join("snapshots.partial"),
        };
        std::fs::create_dir_all(&dirs.complete)?;
        // Whatever is in the partial directory was abandoned by a crash: start it empty.
        if dirs.partial.exists() {
            std::fs::remove_dir_all(&dirs.partial)?;
        }
        std::fs::create_dir_all(&dirs.partial)?;
        Ok(dirs)
    }

    /// A fresh path for a partial file.
    pub fn new_partial_path(&self) -> PathBuf {
        let nonce: u64 = rand::random();
        self.partial.join(format!("{nonce:016x}.part"))
    }
}

/// The RocksDB-backed state machine.
pub struct StateMachine {
    db: Arc<DB>,
    dirs: SnapshotDirs,
    applied: watch::Sender<u64>,
}

impl StateMachine {
    /// Creates the state machine over an open database. `applied` is published after every batch.
    pub(crate) fn new(
        db: Arc<DB>,
        dirs: SnapshotDirs,
        applied: watch::Sender<u64>,
    ) -> Result<Self, io::Error> {
        let (last_applied, _) = read_applied_state(&db)?;
        applied.send_replace(last_applied.map_or(0, |log_id| log_id.index));
        Ok(StateMachine { db, dirs, applied })
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(db: &DB, key: &[u8]) -> Result<Option<T>, io::Error> {
    let bytes = db.get_cf(db::cf(db, CF_SM_META), key).map_err(db::io_err)?;
    bytes.map(|bytes| db::decode(&bytes)).transpose()
}

pub(crate) fn read_applied_state(db: &DB) -> Result<(Option<LogId>, StoredMembership), io::Error> {
    let last_applied = read_meta::<LogId>(db, KEY_LAST_APPLIED)?;
    let membership = read_meta::<StoredMembership>(db, KEY_MEMBERSHIP)?.unwrap_or_default();
    Ok((last_applied, membership))
}

/// Reads the journal head (all zeros when the journal is empty).
pub(crate) fn read_journal_head(db: &DB) -> Result<JournalHead, io::Error> {
    Ok(read_meta(db, KEY_JOURNAL_HEAD)?.unwrap_or_default())
}

/// Reads the journal's retention state (prune point and acknowledgements; empty when nothing was
/// ever acknowledged or pruned).
pub(crate) fn read_journal_retention(db: &DB) -> Result<JournalRetention, io::Error> {
    Ok(read_meta(db, KEY_JOURNAL_RETENTION)?.unwrap_or_default())
}

/// How far a prune could reach now: the lowest delivery acknowledgement of the current members,
/// clamped to the journal head (the same rule the apply of a prune uses).
pub(crate) fn read_prune_limit(db: &DB) -> Result<u64, io::Error> {
    let (_, membership) = read_applied_state(db)?;
    Ok(apply::prune_limit(
        &read_journal_retention(db)?,
        &member_ids(&membership),
        read_journal_head(db)?.seq,
    ))
}

/// The node ids (voters and learners) of a stored membership.
fn member_ids(membership: &StoredMembership) -> BTreeSet<NodeId> {
    membership.membership().nodes().map(|(id, _)| *id).collect()
}

fn write_options(fsync: bool) -> WriteOptions {
    let mut options = WriteOptions::default();
    options.set_sync(fsync);
    options
}

/// Applies a batch of entries in one atomic, unsynced write (see the module docs) and returns one
/// response per entry.
pub(crate) fn apply_batch(db: &DB, entries: &[Entry]) -> Result<Vec<ApplyResponse>, io::Error> {
    let (_, stored_membership) = read_applied_state(db)?;
    let mut pending = PendingWrites::new(
        db,
        read_journal_head(db)?,
        read_journal_retention(db)?,
        member_ids(&stored_membership),
    );
    let mut responses = Vec::with_capacity(entries.len());
    let mut last_applied = None;
    let mut membership = None;
    for entry in entries {
        last_applied = Some(entry.log_id);
        let response = match &entry.payload {
            EntryPayload::Blank => ApplyResponse::None,
            EntryPayload::Normal(txn) => {
                ApplyResponse::Txn(pending.apply_txn(entry.log_id.index, txn)?)
            }
            EntryPayload::Membership(config) => {
                let stored = StoredMembership::new(Some(entry.log_id), config.clone());
                pending.set_members(member_ids(&stored));
                membership = Some(stored);
                ApplyResponse::None
            }
        };
        responses.push(response);
    }
    let journal_head = pending.journal_head();
    let retention = pending.retention_update().map(codec::encode);
    let mut batch = WriteBatch::default();
    pending.write_into(&mut batch);
    let meta = db::cf(db, CF_SM_META);
    if let Some(retention) = retention {
        batch.put_cf(meta, KEY_JOURNAL_RETENTION, retention);
    }
    if let Some(last_applied) = &last_applied {
        batch.put_cf(meta, KEY_LAST_APPLIED, codec::encode(last_applied));
    }
    if let Some(membership) = &membership {
        batch.put_cf(meta, KEY_MEMBERSHIP, codec::encode(membership));
    }
    batch.put_cf(meta, KEY_JOURNAL_HEAD, codec::encode(&journal_head));
    db.write_opt(batch, &write_options(false))
        .map_err(db::io_err)?;
    Ok(responses)
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        read_applied_state(&self.db)
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        let mut responders = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            batch.push(entry);
            responders.push(responder);
        }
        let Some(last_index) = batch.last().map(|entry| entry.log_id.index) else {
            return Ok(());
        };
        let db = self.db.clone();
        let responses = tokio::task::spawn_blocking(move || apply_batch(&db, &batch))
            .await
            .map_err(db::io_err)??;
        // Only after the batch is written (readable; durable through the log): publish progress
        // and release the waiting clients.
        self.applied.send_replace(last_index);
        for (responder, response) in responders.into_iter().zip(responses) {
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            db: self.db.clone(),
            dirs: self.dirs.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotFile,
    ) -> Result<(), io::Error> {
        let db = self.db.clone();
        let dirs = self.dirs.clone();
        let expected = meta.last_log_id;
        let installed_index = expected.map_or(0, |log_id| log_id.index);
        tokio::task::spawn_blocking(move || install(&db, &dirs, expected, snapshot))
            .await
            .map_err(db::io_err)??;
        self.applied.send_replace(installed_index);
        tracing::info!(index = installed_index, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, SnapshotFile>>, io::Error> {
        let Some(path) = snapshot::latest_in(&self.dirs.complete)? else {
            return Ok(None);
        };
        let (last_applied, membership, _) = SnapshotReader::open(&path)?.read_meta()?;
        Ok(Some(SnapshotOf::<TypeConfig, SnapshotFile> {
            meta: snapshot::meta_of(last_applied, membership),
            snapshot: SnapshotFile::open(path)?,
        }))
    }
}

/// Replaces the whole state machine with the snapshot's contents in one synced write, then keeps
/// the snapshot file as the current snapshot.
fn install(
    db: &DB,
    dirs: &SnapshotDirs,
    expected: Option<LogId>,
    snapshot: SnapshotFile,
) -> Result<(), io::Error> {
    let mut reader = SnapshotReader::new(std::io::BufReader::new(snapshot.file))?;
    let (last_applied, membership, journal_head) = reader.read_meta()?;
    if last_applied != expected {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "snapshot file does not match its meta",
        ));
    }
    let kv = db::cf(db, CF_KV);
    let journal = db::cf(db, CF_JOURNAL);
    let mut batch = WriteBatch::default();
    // Clear the old state: every key up to and including the current last key.
    if let Some(item) = db.iterator_cf(kv, IteratorMode::End).next() {
        let (last_key, _) = item.map_err(db::io_err)?;
        let mut end = last_key.to_vec();
        end.push(0);
        batch.delete_range_cf(kv, Vec::new(), end);
    }
    batch.delete_range_cf(journal, db::index_key(0), db::index_key(u64::MAX));
    // A snapshot without a retention frame (written before retention existed) has none.
    let mut retention = JournalRetention::default();
    // Every frame is verified by the reader's digest before `None` ends the loop; a bad file
    // returns an error here and the batch is dropped unwritten.
    while let Some(frame) = reader.next_frame()? {
        match frame {
            Frame::Kv { key, record } => batch.put_cf(kv, key.as_bytes(), codec::encode(&record)),
            Frame::Journal(entry) => {
                batch.put_cf(journal, db::index_key(entry.seq), codec::encode(&entry))
            }
            Frame::Retention(state) => retention = state,
            Frame::Meta { .. } | Frame::End { .. } => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unexpected frame in snapshot",
                ));
            }
        }
    }
    let meta = db::cf(db, CF_SM_META);
    match &last_applied {
        Some(log_id) => batch.put_cf(meta, KEY_LAST_APPLIED, codec::encode(log_id)),
        None => batch.delete_cf(meta, KEY_LAST_APPLIED),
    }
    batch.put_cf(meta, KEY_MEMBERSHIP, codec::encode(&membership));
    batch.put_cf(meta, KEY_JOURNAL_HEAD, codec::encode(&journal_head));
    batch.put_cf(meta, KEY_JOURNAL_RETENTION, codec::encode(&retention));
    db.write_opt(batch, &write_options(true))
        .map_err(db::io_err)?;

    let keep = dirs
        .complete
        .join(snapshot::file_name(last_applied.as_ref()));
    if snapshot.path.parent() == Some(dirs.partial.as_path()) {
        std::fs::rename(&snapshot.path, &keep)?;
    } else if snapshot.path != keep {
        std::fs::copy(&snapshot.path, &keep)?;
    }
    snapshot::sync_dir(&dirs.complete)?;
    snapshot::remove_older(&dirs.complete, &keep)
}

/// Builds snapshots from a RocksDB point-in-time snapshot while applying continues.
pub struct SnapshotBuilder {
    db: Arc<DB>,
    dirs: SnapshotDirs,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, SnapshotFile>, io::Error> {
        let db = self.db.clone();
        let dirs = self.dirs.clone();
        let (meta, path) = tokio::task::spawn_blocking(move || build(&db, &dirs))
            .await
            .map_err(db::io_err)??;
        tracing::info!(
            index = meta.last_log_id.map_or(0, |log_id| log_id.index),
            "built snapshot"
        );
        Ok(SnapshotOf::<TypeConfig, SnapshotFile> {
            meta,
            snapshot: SnapshotFile::open(path)?,
        })
    }
}

fn build(db: &DB, dirs: &SnapshotDirs) -> Result<(SnapshotMeta, PathBuf), io::Error> {
    let view = db.snapshot();
    let read = |key: &[u8]| -> Result<Option<Vec<u8>>, io::Error> {
        view.get_cf(db::cf(db, CF_SM_META), key).map_err(db::io_err)
    };
    let last_applied: Option<LogId> = read(KEY_LAST_APPLIED)?
        .map(|b| db::decode(&b))
        .transpose()?;
    let membership: StoredMembership = read(KEY_MEMBERSHIP)?
        .map(|b| db::decode(&b))
        .transpose()?
        .unwrap_or_default();
    let journal_head: JournalHead = read(KEY_JOURNAL_HEAD)?
        .map(|b| db::decode(&b))
        .transpose()?
        .unwrap_or_default();

    let retention: JournalRetention = read(KEY_JOURNAL_RETENTION)?
        .map(|b| db::decode(&b))
        .transpose()?
        .unwrap_or_default();

    let partial = dirs.new_partial_path();
    let mut writer = SnapshotWriter::create(&partial)?;
    writer.write(&Frame::Meta {
        last_applied,
        membership: membership.clone(),
        journal_head,
    })?;
    writer.write(&Frame::Retention(retention))?;
    for item in view.iterator_cf(db::cf(db, CF_KV), IteratorMode::Start) {
        let (key, value) = item.map_err(db::io_err)?;
        let key = String::from_utf8(key.to_vec()).map_err(db::io_err)?;
        writer.write(&Frame::Kv {
            key,
            record: db::decode(&value)?,
        })?;
    }
    for item in view.iterator_cf(db::cf(db, CF_JOURNAL), IteratorMode::Start) {
        let (_, value) = item.map_err(db::io_err)?;
        writer.write(&Frame::Journal(db::decode(&value)?))?;
    }
    writer.finish()?;
    let path = dirs
        .complete
        .join(snapshot::file_name(last_applied.as_ref()));
    std::fs::rename(&partial, &path)?;
    snapshot::sync_dir(&dirs.complete)?;
    snapshot::remove_older(&dirs.complete, &path)?;
    Ok((snapshot::meta_of(last_applied, membership), path))
}
