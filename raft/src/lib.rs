//! strongroom-raft: a replicated, revisioned, transactional key-value store of opaque bytes with an
//! append-only, hash-chained journal, built on openraft, RocksDB and tonic.
//!
//! This crate knows nothing of vaults: keys are strings, values and journal records are opaque bytes
//! that arrive already encrypted. It never sees plaintext.

pub mod codec;
