//! The vocabulary of the replicated store: transactions (guards, ops, journal records), their
//! outcomes, stored records, and the openraft type configuration.
//!
//! Revisions are Raft log indexes: the transaction applied at log index `i` has revision `i`, so
//! revisions are identical on every node, strictly increasing, and a read point is a revision.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;

/// Identifies a node in the cluster.
pub type NodeId = u64;

/// How to reach a node: where its HTTP API listens and where its cluster (gRPC) port listens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's HTTP API address (`host:port`), for redirects and status pages.
    pub api_addr: String,
    /// The node's cluster address (`host:port`): Raft, Propose and ReadIndex go here.
    pub cluster_addr: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api={} cluster={}", self.api_addr, self.cluster_addr)
    }
}

/// A condition a transaction requires of the state at the moment it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Guard {
    /// The key exists and was last modified at exactly `revision`.
    ModRevision {
        /// The key to check.
        key: String,
        /// The mod_revision the key must still have.
        revision: u64,
    },
    /// The key does not exist.
    Absent {
        /// The key to check.
        key: String,
    },
    /// The set of keys under `prefix` is unchanged: it still holds `count` keys and none was
    /// modified after `max_mod_revision`. (Any put raises the newest revision; deletes alone lower
    /// the count, so together the two detect every change.)
    PrefixUnchanged {
        /// The prefix that was listed.
        prefix: String,
        /// How many keys were under the prefix when it was read.
        count: u64,
        /// The newest mod_revision under the prefix when it was read (0 if it was empty).
        max_mod_revision: u64,
    },
}

/// A change a transaction makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create or overwrite `key` with `value` (opaque bytes, already encrypted by the caller).
    Put {
        /// The key to write.
        key: String,
        /// The new value.
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
    /// Remove `key` if it exists.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Remove every key that starts with `prefix`.
    DeletePrefix {
        /// The prefix whose keys are removed.
        prefix: String,
    },
    /// Records that `node` has delivered the journal through `seq` to every audit sink it has
    /// (its applied journal head when it has none). Replaces the node's earlier acknowledgement;
    /// kept in the state machine's metadata, not in the KV. See [`Op::JournalPrune`].
    JournalAck {
        /// The acknowledging node.
        node: NodeId,
        /// The last journal sequence number it has delivered.
        seq: u64,
    },
    /// Deletes the journal records through `through_seq`, clamped at apply time to the lowest
    /// acknowledgement ([`Op::JournalAck`]) of the nodes in the current membership (a member that
    /// never acknowledged counts as 0) and to the journal head. The sequence number and chain hash
    /// of the last deleted record become the journal's prune point, so the chain stays verifiable
    /// from there. Every node deletes the same records: the clamp only reads replicated state.
    JournalPrune {
        /// The last sequence number the proposer wants deleted.
        through_seq: u64,
    },
}

/// One replicated transaction: if every guard holds, every op is applied and every journal record
/// appended, atomically; otherwise nothing is written.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    /// Conditions checked, in order, before anything is written.
    pub guards: Vec<Guard>,
    /// Changes applied in order when every guard holds.
    pub ops: Vec<Op>,
    /// Opaque records appended to the journal (each gets the next sequence number and hash).
    #[serde(with = "crate::codec::byte_vecs")]
    pub journal: Vec<Vec<u8>>,
}

impl Txn {
    /// A transaction that only appends `records` to the journal.
    pub fn journal_only(records: Vec<Vec<u8>>) -> Self {
        Txn {
            guards: Vec::new(),
            ops: Vec::new(),
            journal: records,
        }
    }
}

// Values are ciphertext and keys may be sensitive path names: never print them.
impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "txn(guards={}, ops={}, journal={})",
            self.guards.len(),
            self.ops.len(),
            self.journal.len()
        )
    }
}

/// What applying a transaction did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOutcome {
    /// Every guard held: the ops were applied at `revision` and the journal records got the
    /// sequence numbers starting at `first_journal_seq` (if there were any).
    Applied {
        /// The revision (log index) the transaction applied at.
        revision: u64,
        /// The sequence number of the first journal record appended, if any.
        first_journal_seq: Option<u64>,
    },
    /// The guard at this index (into `Txn::guards`) did not hold; nothing was written.
    GuardFailed {
        /// Index of the first failing guard.
        guard: u32,
    },
}

/// The state machine's answer for one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ApplyResponse {
    /// The entry carried no transaction (blank or membership entry).
    #[default]
    None,
    /// The entry's transaction outcome.
    Txn(TxnOutcome),
}

/// A stored key's value and revisions, in etcd's model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The value bytes (ciphertext, as written).
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
    /// The revision at which the key was created (since its last deletion).
    pub create_revision: u64,
    /// The revision of the last write to the key.
    pub mod_revision: u64,
    /// How many times the key was written since it was created (1 after creation).
    pub version: u64,
}

/// One journal record with its position in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The record's sequence number (1-based, gap-free).
    pub seq: u64,
    /// The revision (log index) of the transaction that appended it.
    pub revision: u64,
    /// `SHA-256(previous hash || record)`; the hash before the first record is all zeros.
    pub hash: [u8; 32],
    /// The opaque record bytes.
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

/// A position in the journal: a sequence number and the chain hash there. Used for the journal's
/// head (the last record) and for its prune point (the last record deleted by retention, whose
/// hash the next record chains from).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalHead {
    /// The last assigned sequence number (0 when the journal is empty).
    pub seq: u64,
    /// The chain hash at `seq` (all zeros when empty).
    pub hash: [u8; 32],
}

/// What journal retention keeps in the state machine: the prune point and every node's
/// acknowledgement ([`Op::JournalAck`]). Replicated like the rest of the state machine and carried
/// by snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRetention {
    /// The last record deleted by [`Op::JournalPrune`] and its chain hash (all zeros when nothing
    /// was pruned): the journal starts at `prune_point.seq + 1`, chained from `prune_point.hash`.
    pub prune_point: JournalHead,
    /// Node id -> the last journal sequence number that node has delivered to all its sinks.
    pub acks: std::collections::BTreeMap<NodeId, u64>,
}

openraft::declare_raft_types!(
    /// The openraft type configuration of the store.
    pub TypeConfig:
        D = Txn,
        R = ApplyResponse,
        NodeId = NodeId,
        Node = NodeInfo,
);

/// Short names for openraft types instantiated with [`TypeConfig`].
pub mod typ {
    use super::TypeConfig;

    /// A Raft log id (term/leader and index).
    pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
    /// A Raft vote.
    pub type Vote = openraft::alias::VoteOf<TypeConfig>;
    /// A Raft log entry.
    pub type Entry = openraft::alias::EntryOf<TypeConfig>;
    /// A membership config together with the log id it was stored at.
    pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
    /// Snapshot metadata.
    pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
    /// The Raft handle.
    pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
}
