//! strongroom-raft: a replicated, revisioned, transactional key-value store of opaque bytes with an
//! append-only, hash-chained journal, built on openraft, RocksDB and tonic.
//!
//! This crate knows nothing of vaults: keys are strings, values and journal records are opaque
//! bytes that arrive already encrypted. It never sees plaintext.
//!
//! - [`types`]: transactions ([`Txn`]: guards, ops, journal records), outcomes, records.
//! - [`RaftNode`]: start a node, [`RaftNode::propose`] a transaction from any node,
//!   [`RaftNode::read_point`] for linearizable reads from any node.
//! - [`StoreReader`]: local reads (records, prefix scans, the journal).
//! - Storage: [`log_store`] (Raft log) and [`state_machine`] share one RocksDB instance; snapshots
//!   are files streamed between nodes ([`snapshot`]).
//! - [`network`]: the gRPC transport (`proto/raft.proto`).
//! - [`tamper`]: corrupts a stopped node's journal on purpose, for tamper-detection tests.

pub mod codec;
mod db;
pub mod error;
pub mod log_store;
pub mod network;
pub mod node;
mod read_batch;
pub mod reader;
pub mod snapshot;
pub mod state_machine;
pub mod tamper;
pub mod types;

#[cfg(test)]
mod retention_tests;
#[cfg(test)]
mod storage_tests;

pub use error::StoreError;
pub use node::ClusterStatus;
pub use node::Committed;
pub use node::NodeConfig;
pub use node::RaftNode;
pub use reader::PrefixStat;
pub use reader::StoreReader;
pub use types::Guard;
pub use types::JournalEntry;
pub use types::JournalHead;
pub use types::JournalRetention;
pub use types::NodeId;
pub use types::NodeInfo;
pub use types::Op;
pub use types::Record;
pub use types::Txn;
pub use types::TxnOutcome;
