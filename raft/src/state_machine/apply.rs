//! Applying transactions: guards are checked and ops staged against an overlay of the writes made
//! earlier in the same apply batch, so that all entries of one batch land in one `WriteBatch`.

use std::collections::BTreeMap;
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
}

impl<'a> PendingWrites<'a> {
    pub(crate) fn new(db: &'a DB, journal_head: JournalHead) -> Self {
        PendingWrites {
            db,
            overlay: BTreeMap::new(),
            journal: Vec::new(),
            journal_head,
        }
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
