//! Applying transactions: guards are checked and ops staged against an overlay of the writes made
//! earlier in the same apply batch, so that all entries of one batch land in one `WriteBatch`.
//!
//! Journal retention is applied here too: [`Op::JournalAck`] records a node's delivery position
//! and [`Op::JournalPrune`] deletes the oldest records, clamped to the lowest acknowledgement of
//! the current members and to the head. The clamp reads only replicated state (acknowledgements,
//! membership, journal), so every node deletes exactly the same records and keeps the same prune
//! point (sequence number and chain hash of the last deleted record).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io;

use rocksdb::DB;
use rocksdb::Direction;
use rocksdb::IteratorMode;
use rocksdb::WriteBatch;
use sha2::Digest;
use sha2::Sha256;

use crate::codec;
use crate::db;
use crate::db::CF_JOURNAL;
use crate::db::CF_KV;
use crate::types::Guard;
use crate::types::JournalEntry;
use crate::types::JournalHead;
use crate::types::JournalRetention;
use crate::types::NodeId;
use crate::types::Op;
use crate::types::Record;
use crate::types::Txn;
use crate::types::TxnOutcome;

/// The writes of one apply batch, not yet in RocksDB.
pub(crate) struct PendingWrites<'a> {
    db: &'a DB,
    /// Key -> new record, or `None` for a deletion.
    overlay: BTreeMap<String, Option<Record>>,
    journal: Vec<JournalEntry>,
    journal_head: JournalHead,
    /// Retention state as staged so far.
    retention: JournalRetention,
    /// Whether `retention` changed in this batch.
    retention_changed: bool,
    /// The prune point's sequence number before this batch: stored records after it and through
    /// the staged prune point are deleted.
    pruned_before: u64,
    /// The node ids of the membership in effect (voters and learners).
    members: BTreeSet<NodeId>,
}

impl<'a> PendingWrites<'a> {
    pub(crate) fn new(
        db: &'a DB,
        journal_head: JournalHead,
        retention: JournalRetention,
        members: BTreeSet<NodeId>,
    ) -> Self {
        PendingWrites {
            db,
            overlay: BTreeMap::new(),
            journal: Vec::new(),
            journal_head,
            pruned_before: retention.prune_point.seq,
            retention,
            retention_changed: false,
            members,
        }
    }

    /// The membership changed (a membership entry in this batch): later prunes wait for these
    /// nodes' acknowledgements.
    pub(crate) fn set_members(&mut self, members: BTreeSet<NodeId>) {
        self.members = members;
    }

    /// The retention state, if this batch changed it.
    pub(crate) fn retention_update(&self) -> Option<&JournalRetention> {
        self.retention_changed.then_some(&self.retention)
    }

    /// The journal head after everything staged so far.
    pub(crate) fn journal_head(&self) -> JournalHead {
        self.journal_head
    }

    /// Applies `txn` at `revision`: checks its guards, then stages its ops and journal records.
    pub(crate) fn apply_txn(&mut self, revision: u64, txn: &Txn) -> Result<TxnOutcome, io::Error> {
        for (index, guard) in txn.guards.iter().enumerate() {
            if !self.holds(guard)? {
                let guard = u32::try_from(index).unwrap_or(u32::MAX);
                return Ok(TxnOutcome::GuardFailed { guard });
            }
        }
        for op in &txn.ops {
            match op {
                Op::Put { key, value } => {
                    let previous = self.get(key)?;
                    let record = Record {
                        value: value.clone(),
                        create_revision: previous.as_ref().map_or(revision, |r| r.create_revision),
                        mod_revision: revision,
                        version: previous.as_ref().map_or(1, |r| r.version + 1),
                    };
                    self.overlay.insert(key.clone(), Some(record));
                }
                Op::Delete { key } => {
                    self.overlay.insert(key.clone(), None);
                }
                Op::DeletePrefix { prefix } => {
                    for (key, _) in self.live_under(prefix)? {
                        self.overlay.insert(key, None);
                    }
                }
                Op::JournalAck { node, seq } => {
                    self.retention.acks.insert(*node, *seq);
                    self.retention_changed = true;
                }
                Op::JournalPrune { through_seq } => self.prune(*through_seq)?,
            }
        }
        let first_journal_seq = (!txn.journal.is_empty()).then_some(self.journal_head.seq + 1);
        for record in &txn.journal {
            let seq = self.journal_head.seq + 1;
            let hash = chain_hash(&self.journal_head.hash, record);
            self.journal.push(JournalEntry {
                seq,
                revision,
                hash,
                record: record.clone(),
            });
            self.journal_head = JournalHead { seq, hash };
        }
        Ok(TxnOutcome::Applied {
            revision,
            first_journal_seq,
        })
    }

    /// The sequence number a prune through `through_seq` would reach now: clamped to the lowest
    /// acknowledgement of the current members (0 for a member that never acknowledged, and
    /// nothing at all without a known membership) and to the journal head.
    fn prune_target(&self, through_seq: u64) -> u64 {
        through_seq.min(prune_limit(
            &self.retention,
            &self.members,
            self.journal_head.seq,
        ))
    }

    /// Deletes the journal through [`Self::prune_target`] and moves the prune point there (nothing
    /// happens if that is not past the current prune point).
    fn prune(&mut self, through_seq: u64) -> Result<(), io::Error> {
        let target = self.prune_target(through_seq);
        if target <= self.retention.prune_point.seq {
            return Ok(());
        }
        let hash = match self.journal.iter().find(|entry| entry.seq == target) {
            Some(entry) => entry.hash,
            None => {
                let bytes = self
                    .db
                    .get_cf(db::cf(self.db, CF_JOURNAL), db::index_key(target))
                    .map_err(db::io_err)?
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("journal record {target} is missing"),
                        )
                    })?;
                db::decode::<JournalEntry>(&bytes)?.hash
            }
        };
        self.journal.retain(|entry| entry.seq > target);
        self.retention.prune_point = JournalHead { seq: target, hash };
        self.retention_changed = true;
        Ok(())
    }

    /// Adds every staged write to `batch`.
    pub(crate) fn write_into(self, batch: &mut WriteBatch) {
        let kv = db::cf(self.db, CF_KV);
        for (key, record) in &self.overlay {
            match record {
                Some(record) => batch.put_cf(kv, key.as_bytes(), codec::encode(record)),
                None => batch.delete_cf(kv, key.as_bytes()),
            }
        }
        let journal = db::cf(self.db, CF_JOURNAL);
        let prune_point = self.retention.prune_point.seq;
        if prune_point > self.pruned_before {
            // Before the puts: records staged in this batch past the prune point survive.
            batch.delete_range_cf(
                journal,
                db::index_key(self.pruned_before + 1),
                db::index_key(prune_point.saturating_add(1)),
            );
        }
        for entry in &self.journal {
            batch.put_cf(journal, db::index_key(entry.seq), codec::encode(entry));
        }
    }

    fn holds(&self, guard: &Guard) -> Result<bool, io::Error> {
        Ok(match guard {
            Guard::ModRevision { key, revision } => self
                .get(key)?
                .is_some_and(|record| record.mod_revision == *revision),
            Guard::Absent { key } => self.get(key)?.is_none(),
            Guard::PrefixUnchanged {
                prefix,
                count,
                max_mod_revision,
            } => {
                let live = self.live_under(prefix)?;
                let newest = live
                    .iter()
                    .map(|(_, record)| record.mod_revision)
                    .max()
                    .unwrap_or(0);
                live.len() as u64 == *count && newest <= *max_mod_revision
            }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Record>, io::Error> {
        if let Some(staged) = self.overlay.get(key) {
            return Ok(staged.clone());
        }
        read_record(self.db, key)
    }

    /// Every live key under `prefix` with its record, the overlay taking precedence.
    fn live_under(&self, prefix: &str) -> Result<Vec<(String, Record)>, io::Error> {
        let mut merged: BTreeMap<String, Option<Record>> = BTreeMap::new();
        let iter = self.db.iterator_cf(
            db::cf(self.db, CF_KV),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(db::io_err)?;
            if !key.starts_with(prefix.as_bytes()) {
                break;
            }
            let key = String::from_utf8(key.to_vec()).map_err(db::io_err)?;
            merged.insert(key, Some(db::decode(&value)?));
        }
        for (key, staged) in self.overlay.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            merged.insert(key.clone(), staged.clone());
        }
        Ok(merged
            .into_iter()
            .filter_map(|(key, record)| record.map(|r| (key, r)))
            .collect())
    }
}

/// The furthest a prune may reach: the lowest acknowledgement among `members` (a member that never
/// acknowledged counts as 0; no members, no pruning), and never past the head.
pub(crate) fn prune_limit(
    retention: &JournalRetention,
    members: &BTreeSet<NodeId>,
    head_seq: u64,
) -> u64 {
    members
        .iter()
        .map(|node| retention.acks.get(node).copied().unwrap_or(0))
        .min()
        .unwrap_or(0)
        .min(head_seq)
}

/// Reads one record straight from RocksDB.
pub(crate) fn read_record(db: &DB, key: &str) -> Result<Option<Record>, io::Error> {
    let bytes = db
        .get_pinned_cf(db::cf(db, CF_KV), key.as_bytes())
        .map_err(db::io_err)?;
    bytes.map(|bytes| db::decode(&bytes)).transpose()
}

/// `SHA-256(previous || record)`: the journal's hash chain step.
pub fn chain_hash(previous: &[u8; 32], record: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(record);
    hasher.finalize().into()
}
