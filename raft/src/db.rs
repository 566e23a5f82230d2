//! The node's one RocksDB instance: its column families, how it is opened, and big-endian index
//! keys. The log store and the state machine share the instance (and so one WAL), each in its own
//! column families.
//!
//! Durability rests on that one WAL. Writes reach it in order, and after a crash RocksDB recovers
//! a prefix of them (point-in-time recovery, set explicitly below; RocksDB also syncs the WAL
//! before flushing one column family's memtable while others exist, so SST files never hold writes
//! the WAL lost). Hence: a synced write (log append flush, vote, truncate, purge) makes every
//! earlier write durable too; a state-machine apply, written after the log entries it applies,
//! can only survive a crash together with them; and a purge (synced, after the snapshot that
//! covers the purged entries was built from applied state) makes those applies durable first. So
//! the apply batch needs no fsync of its own: what a crash loses of it is re-applied from the log.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rocksdb::ColumnFamilyDescriptor;
use rocksdb::DB;
use rocksdb::Options;

/// Raft log entries keyed by big-endian index.
pub(crate) const CF_LOGS: &str = "logs";
/// Log-store metadata: vote, last purged log id, committed log id.
pub(crate) const CF_LOG_META: &str = "log_meta";
/// State-machine data: key -> [`crate::types::Record`].
pub(crate) const CF_KV: &str = "kv";
/// The journal: big-endian sequence number -> [`crate::types::JournalEntry`].
pub(crate) const CF_JOURNAL: &str = "journal";
/// State-machine metadata: last applied log id, membership, journal head.
pub(crate) const CF_SM_META: &str = "sm_meta";

const ALL_CFS: [&str; 5] = [CF_LOGS, CF_LOG_META, CF_KV, CF_JOURNAL, CF_SM_META];

/// WAL size past which RocksDB flushes the memtables holding the oldest WAL file.
const MAX_TOTAL_WAL_BYTES: u64 = 128 << 20;
/// Memory for all memtables together.
const MEMTABLES_BYTES: usize = 128 << 20;

/// Opens (creating if needed) the node's database at `path` with every column family.
pub(crate) fn open(path: &Path) -> Result<Arc<DB>, io::Error> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Keep RocksDB's own info log small: it holds no values, but there is no need for megabytes.
    options.set_keep_log_file_num(3);
    options.set_max_log_file_size(4 << 20);
    // The default, stated because the unsynced state-machine applies depend on it (module docs).
    options.set_wal_recovery_mode(rocksdb::DBRecoveryMode::PointInTime);
    // One WAL serves every column family, and a WAL file is kept until every family's memtable
    // holding part of it is flushed: the rarely written families (metadata) kept the WAL
    // growing to RocksDB's default bound, four times all write buffers (~2.5 GB here), which
    // took disk and was replayed at every restart. Past this size the oldest memtables are
    // flushed (safe for the unsynced applies: a flush syncs the WAL first, module docs).
    options.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
    // All memtables together, whatever the number of families: bounds their share of memory.
    options.set_db_write_buffer_size(MEMTABLES_BYTES);
    let cfs = ALL_CFS
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
    let db = DB::open_cf_descriptors(&options, path, cfs).map_err(io_err)?;
    Ok(Arc::new(db))
}

/// Opens the database of a node that is not running, read-only (its WAL is replayed in memory,
/// nothing is written), for tools and tests that inspect what a node applied.
pub(crate) fn open_read_only(path: &Path) -> Result<Arc<DB>, io::Error> {
    let db =
        DB::open_cf_for_read_only(&Options::default(), path, ALL_CFS, false).map_err(io_err)?;
    Ok(Arc::new(db))
}

/// Returns the handle of a column family that [`open`] always creates.
pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .expect("column family is created by db::open")
}

/// Encodes an index or sequence number so that RocksDB's byte order equals numeric order.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Decodes a key written by [`index_key`].
pub(crate) fn parse_index_key(key: &[u8]) -> Result<u64, io::Error> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "index key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Converts any error into an `io::Error` (openraft's storage error type).
pub(crate) fn io_err(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

/// Decodes a codec value, mapping failure to `io::ErrorKind::InvalidData`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, io::Error> {
    crate::codec::decode(bytes).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_numerically() {
        assert!(index_key(2) < index_key(10));
        assert!(index_key(255) < index_key(256));
        assert_eq!(parse_index_key(&index_key(42)).unwrap(), 42);
        assert!(parse_index_key(b"short").is_err());
    }
}
