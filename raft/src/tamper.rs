//! Deliberate corruption of a stopped node's journal, for tests and tamper-detection drills only:
//! it shows that the hash chain catches an edited record. Nothing in a running node calls it.
//! It opens the node's database read-write, so the node must not be running.

use std::io;
use std::path::Path;

use crate::StoreError;
use crate::db;
use crate::db::CF_JOURNAL;
use crate::types::JournalEntry;

/// Flips every bit of byte `offset` (modulo the record's length) of journal record `seq` in the
/// stored database of a node that is not running (`data_dir` as in [`crate::NodeConfig`]). The
/// record's stored chain hash is left as it was, as an attacker editing the file would.
pub fn flip_journal_record_byte(
    data_dir: &Path,
    seq: u64,
    offset: usize,
) -> Result<(), StoreError> {
    let db = db::open(&data_dir.join("raft"))?;
    let journal = db::cf(&db, CF_JOURNAL);
    let key = db::index_key(seq);
    let bytes = db
        .get_cf(journal, key)
        .map_err(db::io_err)?
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no journal record {seq}"))
        })?;
    let mut entry: JournalEntry = db::decode(&bytes)?;
    if entry.record.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty journal record").into());
    }
    let at = offset % entry.record.len();
    entry.record[at] ^= 0xff;
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(true);
    db.put_cf_opt(journal, key, crate::codec::encode(&entry), &options)
        .map_err(db::io_err)?;
    Ok(())
}
