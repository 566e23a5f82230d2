//! Storing, finding and revoking tokens in the `core/token/` view, with the accessor, children
//! and expiry indexes kept in step.

use strongroom_raft::codec;
use subtle::ConstantTimeEq;

use super::entry::TokenEntry;
use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::StorageError;

/// Tokens revoked in one request at most (a deeper tree is an error, nothing is revoked).
const MAX_REVOKE: usize = 10_000;

fn id_key(hash: &str) -> String {
    format!("id/{hash}")
}

fn accessor_key(accessor: &str) -> String {
    format!("accessor/{accessor}")
}

fn child_key(parent: &str, child: &str) -> String {
    format!("parent/{parent}/{child}")
}

fn expiry_key(expire_at: u64, hash: &str) -> String {
    format!("expiry/{expire_at:020}/{hash}")
}

fn valid_hash(hash: &str) -> bool {
    !hash.is_empty() && hash.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Stages a new token with its indexes.
pub fn store(storage: &mut dyn Storage, entry: &TokenEntry) -> Result<(), StorageError> {
    storage.put(&id_key(&entry.id_hash), codec::encode(entry))?;
    storage.put(
        &accessor_key(&entry.accessor),
        codec::encode(&entry.id_hash),
    )?;
    if let Some(parent) = &entry.parent {
        storage.put(&child_key(parent, &entry.id_hash), Vec::new())?;
    }
    if entry.expire_at > 0 {
        storage.put(&expiry_key(entry.expire_at, &entry.id_hash), Vec::new())?;
    }
    Ok(())
}

/// Stages an updated entry (renewal, use count), moving its expiry index entry if it changed.
pub fn replace(
    storage: &mut dyn Storage,
    old: &TokenEntry,
    new: &TokenEntry,
) -> Result<(), StorageError> {
    if old.expire_at != new.expire_at {
        if old.expire_at > 0 {
            storage.delete(&expiry_key(old.expire_at, &old.id_hash))?;
        }
        if new.expire_at > 0 {
            storage.put(&expiry_key(new.expire_at, &new.id_hash), Vec::new())?;
        }
    }
    storage.put(&id_key(&new.id_hash), codec::encode(new))
}

fn read_entry(storage: &mut dyn Storage, hash: &str) -> Result<Option<TokenEntry>, LogicalError> {
    if !valid_hash(hash) {
        return Ok(None);
    }
    let key = id_key(hash);
    let Some(bytes) = storage.get(&key)? else {
        return Ok(None);
    };
    let entry: TokenEntry = codec::decode(&bytes).map_err(|_| StorageError::Corrupt(key))?;
    // Defence in depth: the stored hash must equal the presented one, compared in constant time.
    if !bool::from(entry.id_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    Ok(Some(entry))
}

/// The live token whose keyed hash is `hash`; `None` if unknown or expired at `now`.
pub fn lookup(
    storage: &mut dyn Storage,
    hash: &str,
    now: u64,
) -> Result<Option<TokenEntry>, LogicalError> {
    Ok(read_entry(storage, hash)?.filter(|entry| !entry.is_expired(now)))
}

/// The live token with `accessor`.
pub fn lookup_accessor(
    storage: &mut dyn Storage,
    accessor: &str,
    now: u64,
) -> Result<Option<TokenEntry>, LogicalError> {
    if accessor.is_empty() || accessor.contains('/') {
        return Ok(None);
    }
    let key = accessor_key(accessor);
    let Some(bytes) = storage.get(&key)? else {
        return Ok(None);
    };
    let hash: String = codec::decode(&bytes).map_err(|_| StorageError::Corrupt(key))?;
    lookup(storage, &hash, now)
}

/// Stages the removal of one token and its own index entries (not its children's).
fn remove(storage: &mut dyn Storage, entry: &TokenEntry) -> Result<(), StorageError> {
    storage.delete(&id_key(&entry.id_hash))?;
    storage.delete(&accessor_key(&entry.accessor))?;
    if let Some(parent) = &entry.parent {
        storage.delete(&child_key(parent, &entry.id_hash))?;
    }
    if entry.expire_at > 0 {
        storage.delete(&expiry_key(entry.expire_at, &entry.id_hash))?;
    }
    Ok(())
}

fn children(storage: &mut dyn Storage, hash: &str) -> Result<Vec<String>, StorageError> {
    let prefix = format!("parent/{hash}/");
    Ok(storage
        .keys_under(&prefix)?
        .iter()
        .filter_map(|key| key.strip_prefix(&prefix))
        .map(str::to_string)
        .collect())
}

/// Stages the revocation of the token `hash` and all its descendants; returns how many.
pub fn revoke_tree(storage: &mut dyn Storage, hash: &str) -> Result<usize, LogicalError> {
    let mut pending = vec![hash.to_string()];
    let mut revoked = 0;
    while let Some(current) = pending.pop() {
        pending.extend(children(storage, &current)?);
        if let Some(entry) = read_entry(storage, &current)? {
            remove(storage, &entry)?;
            revoked += 1;
        }
        storage.delete_prefix(&format!("parent/{current}/"))?;
        if revoked > MAX_REVOKE {
            return Err(LogicalError::invalid(format!(
                "token tree has more than {MAX_REVOKE} tokens"
            )));
        }
    }
    Ok(revoked)
}

/// Stages the revocation of the token `hash` alone: its children become orphans.
pub fn revoke_orphan(storage: &mut dyn Storage, hash: &str) -> Result<bool, LogicalError> {
    let Some(entry) = read_entry(storage, hash)? else {
        return Ok(false);
    };
    for child_hash in children(storage, hash)? {
        if let Some(child) = read_entry(storage, &child_hash)? {
            let orphan = TokenEntry {
                parent: None,
                ..child.clone()
            };
            storage.put(&id_key(&child_hash), codec::encode(&orphan))?;
        }
    }
    storage.delete_prefix(&format!("parent/{hash}/"))?;
    remove(storage, &entry)?;
    Ok(true)
}

/// Stages the revocation of up to `limit` tokens that expired by `now` (with their descendants).
pub fn sweep_expired(
    storage: &mut dyn Storage,
    now: u64,
    limit: usize,
) -> Result<usize, LogicalError> {
    let due: Vec<String> = storage
        .keys_under("expiry/")?
        .into_iter()
        .take_while(|key| {
            key.get(7..27)
                .and_then(|at| at.parse::<u64>().ok())
                .is_some_and(|at| at <= now)
        })
        .take(limit)
        .collect();
    let mut revoked = 0;
    for key in due {
        let Some(hash) = key.rsplit('/').next() else {
            continue;
        };
        revoked += revoke_tree(storage, hash)?;
        storage.delete(&key)?;
    }
    Ok(revoked)
}
