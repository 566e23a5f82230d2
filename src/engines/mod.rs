//! Secrets engines. Each engine sees only [`crate::logical`]: a request and a storage view scoped
//! to its mount. They never import the barrier, raft, RocksDB or the core.

pub mod kv;
pub mod transit;
