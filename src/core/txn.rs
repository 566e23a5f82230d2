//! Building one request's transaction: storage views that read through the barrier (recording
//! every key read with its revision) and stage writes; at the end, the staged writes encrypted,
//! one guard per key read, and the request's journal records form one [`Txn`].
//!
//! Engines cannot forget a guard: the view adds them. Read-only requests carry no guards.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;

use strongroom_raft::Guard;
use strongroom_raft::Op;
use strongroom_raft::PrefixStat;
use strongroom_raft::StoreReader;
use strongroom_raft::Txn;
use zeroize::Zeroizing;

use crate::barrier::Barrier;
use crate::logical::Storage;
use crate::logical::StorageError;

/// How many keys a single scan may return through a view (a guard against runaway listings).
const MAX_SCAN_KEYS: usize = 1_000_000;

/// The reads and staged writes of one request, over full storage keys.
pub struct TxnBuilder {
    reader: StoreReader,
    barrier: Arc<Barrier>,
    /// Every key read and its mod_revision at the time (`None`: it was absent).
    reads: BTreeMap<String, Option<u64>>,
    /// Every prefix scanned and what it held at the time.
    scans: BTreeMap<String, PrefixStat>,
    /// Staged writes: plaintext for puts, `None` for deletes, in key order.
    writes: BTreeMap<String, Option<Zeroizing<Vec<u8>>>>,
    /// Staged prefix deletions.
    prefix_deletes: BTreeSet<String>,
    /// Staged puts of bytes stored as given (not barrier ciphertext: the keyring, the wrapped root
    /// key).
    raw_writes: BTreeMap<String, Vec<u8>>,
    /// A cluster membership change the request asks for: not a KV write, made by the pipeline
    /// after the request ran (see `core::raft_api`).
    membership: Option<strongroom_raft::node::membership::MembershipChange>,
}

impl TxnBuilder {
    /// Starts an empty transaction reading from `reader` through `barrier`.
    pub fn new(reader: StoreReader, barrier: Arc<Barrier>) -> Self {
        TxnBuilder {
            reader,
            barrier,
            reads: BTreeMap::new(),
            scans: BTreeMap::new(),
            writes: BTreeMap::new(),
            prefix_deletes: BTreeSet::new(),
            raw_writes: BTreeMap::new(),
            membership: None,
        }
    }

    /// Stages a membership change, made after the request ran and before its audit record.
    pub fn stage_membership(
        &mut self,
        change: strongroom_raft::node::membership::MembershipChange,
    ) {
        self.membership = Some(change);
    }

    /// The staged membership change, if any.
    pub fn take_membership(
        &mut self,
    ) -> Option<strongroom_raft::node::membership::MembershipChange> {
        self.membership.take()
    }

    /// A view of the keys under `prefix` (e.g. `logical/<mount-uuid>/`), as engines see storage.
    pub fn view(&mut self, prefix: impl Into<String>) -> View<'_> {
        View {
            txn: self,
            prefix: prefix.into(),
        }
    }

    /// True if anything was staged.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty() || !self.prefix_deletes.is_empty() || !self.raw_writes.is_empty()
    }

    /// Reads a full key: a staged write wins, then the store (decrypting, recording the revision).
    pub fn get(&mut self, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StorageError> {
        if let Some(staged) = self.writes.get(key) {
            return Ok(staged.clone());
        }
        if self
            .prefix_deletes
            .iter()
            .any(|prefix| key.starts_with(prefix.as_str()))
        {
            return Ok(None);
        }
        let record = self
            .reader
            .get(key)
            .map_err(|err| StorageError::Backend(err.to_string()))?;
        self.reads
            .entry(key.to_string())
            .or_insert(record.as_ref().map(|r| r.mod_revision));
        match record {
            None => Ok(None),
            Some(record) => {
                let plaintext = self
                    .barrier
                    .decrypt(key, &record.value)
                    .map_err(|_| StorageError::Corrupt(key.to_string()))?;
                Ok(Some(plaintext))
            }
        }
    }

    /// Reads a full key's stored bytes as they are (for values the barrier does not encrypt),
    /// recording its revision like [`TxnBuilder::get`].
    pub fn get_raw(&mut self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(staged) = self.raw_writes.get(key) {
            return Ok(Some(staged.clone()));
        }
        let record = self
            .reader
            .get(key)
            .map_err(|err| StorageError::Backend(err.to_string()))?;
        self.reads
            .entry(key.to_string())
            .or_insert(record.as_ref().map(|r| r.mod_revision));
        Ok(record.map(|record| record.value))
    }

    /// Stages a put of bytes stored as given (already encrypted by the caller's own key).
    pub fn put_raw(&mut self, key: &str, value: Vec<u8>) {
        self.writes.remove(key);
        self.raw_writes.insert(key.to_string(), value);
    }

    /// Every full key under `prefix`, with this request's staged writes applied.
    pub fn keys_under(&mut self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let mut stat = PrefixStat::default();
        let mut keys = BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .reader
                .scan(prefix, after.as_deref(), 1024)
                .map_err(|err| StorageError::Backend(err.to_string()))?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, record) in page {
                stat.count += 1;
                stat.max_mod_revision = stat.max_mod_revision.max(record.mod_revision);
                keys.insert(key);
            }
            if keys.len() > MAX_SCAN_KEYS {
                return Err(StorageError::Backend(
                    "listing exceeds the scan limit".into(),
                ));
            }
        }
        self.scans.entry(prefix.to_string()).or_insert(stat);
        keys.retain(|key| {
            !self
                .prefix_deletes
                .iter()
                .any(|deleted| key.starts_with(deleted.as_str()))
        });
        for (key, staged) in self.writes.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if staged.is_some() {
                keys.insert(key.clone());
            } else {
                keys.remove(key);
            }
        }
        Ok(keys.into_iter().collect())
    }

    /// Stages a put of plaintext `value` at a full key.
    pub fn put(&mut self, key: &str, value: Vec<u8>) {
        self.writes
            .insert(key.to_string(), Some(Zeroizing::new(value)));
    }

    /// Stages a delete of a full key.
    pub fn delete(&mut self, key: &str) {
        self.writes.insert(key.to_string(), None);
    }

    /// Stages the deletion of every key under `prefix`.
    pub fn delete_prefix(&mut self, prefix: &str) {
        self.writes.retain(|key, _| !key.starts_with(prefix));
        self.prefix_deletes.insert(prefix.to_string());
    }

    /// Encrypts the staged writes and returns the transaction: prefix deletes, then puts and
    /// deletes, guarded by every read (only if something is written), plus `journal` records.
    pub fn into_txn(self, journal: Vec<Vec<u8>>) -> Result<Txn, crate::barrier::BarrierError> {
        let mut txn = Txn {
            journal,
            ..Txn::default()
        };
        if !self.has_writes() {
            return Ok(txn);
        }
        for (key, revision) in self.reads {
            txn.guards.push(match revision {
                Some(revision) => Guard::ModRevision { key, revision },
                None => Guard::Absent { key },
            });
        }
        for (prefix, stat) in self.scans {
            txn.guards.push(Guard::PrefixUnchanged {
                prefix,
                count: stat.count,
                max_mod_revision: stat.max_mod_revision,
            });
        }
        for prefix in self.prefix_deletes {
            txn.ops.push(Op::DeletePrefix { prefix });
        }
        for (key, value) in self.raw_writes {
            txn.ops.push(Op::Put { key, value });
        }
        for (key, value) in self.writes {
            txn.ops.push(match value {
                Some(plaintext) => Op::Put {
                    value: self.barrier.encrypt(&key, &plaintext)?,
                    key,
                },
                None => Op::Delete { key },
            });
        }
        Ok(txn)
    }
}

/// A prefix-scoped window onto a [`TxnBuilder`]: what an engine gets as its storage.
pub struct View<'a> {
    txn: &'a mut TxnBuilder,
    prefix: String,
}

impl View<'_> {
    fn full_key(&self, key: &str) -> Result<String, StorageError> {
        if key.is_empty() || key.starts_with('/') || key.split('/').any(|segment| segment == "..") {
            return Err(StorageError::InvalidKey);
        }
        Ok(format!("{}{key}", self.prefix))
    }
}

impl Storage for View<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.full_key(key)?;
        Ok(self.txn.get(&key)?.map(|value| value.to_vec()))
    }

    fn keys_under(&mut self, prefix: &str) -> Result<Vec<String>, StorageError> {
        if prefix.split('/').any(|segment| segment == "..") {
            return Err(StorageError::InvalidKey);
        }
        let full = format!("{}{prefix}", self.prefix);
        let keys = self.txn.keys_under(&full)?;
        Ok(keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(self.prefix.as_str()).map(str::to_string))
            .collect())
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        let key = self.full_key(key)?;
        self.txn.put(&key, value);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StorageError> {
        let key = self.full_key(key)?;
        self.txn.delete(&key);
        Ok(())
    }

    fn delete_prefix(&mut self, prefix: &str) -> Result<(), StorageError> {
        if prefix.split('/').any(|segment| segment == "..") {
            return Err(StorageError::InvalidKey);
        }
        let full = format!("{}{prefix}", self.prefix);
        self.txn.delete_prefix(&full);
        Ok(())
    }
}
