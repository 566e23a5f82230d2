//! What transit stores in its view, and the per-node cache of decoded keys.
//!
//! Layout (values are encrypted by the barrier through the view):
//! - `policy/<name>` -> `[id: 16 bytes] || codec(KeyPolicy)`: one record per key with every
//!   version's material. The id is random per key and survives rotation; it keys the cache.
//! - `trash/<name>/<deletion id>` -> [`TrashedKey`]: a deleted key kept for its deletion window.
//! - `schedule` -> [`super::schedule::Schedule`]: when each key or trashed key next needs the
//!   background worker.
//! - `events` -> [`super::schedule::EventLog`]: recent rotation, expiry and purge events.
//!
//! The cache maps a key's id to the digest of its stored bytes and the decoded policy. A request
//! reads the record anyway (the view guards it), hashes it, and reuses the decoded policy when
//! the digest matches; a changed record (rotation, config) replaces the entry, dropping (and
//! wiping) the old material. The cache is bounded and per process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::Mutex;

use serde::Deserialize;
use serde::Serialize;
use sha2::Digest;
use sha2::Sha256;
use strongroom_raft::codec;
use zeroize::Zeroizing;

use super::policy::KeyPolicy;
use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::StorageError;

/// A key's random identity.
pub type KeyId = [u8; 16];

/// Prefix of the key records.
pub const POLICY_PREFIX: &str = "policy/";
/// Prefix of the deleted-key records.
pub const TRASH_PREFIX: &str = "trash/";

/// Storage key of a policy.
pub fn policy_key(name: &str) -> String {
    format!("{POLICY_PREFIX}{name}")
}

/// Storage key of a trashed key.
pub fn trash_key(name: &str, deletion_id: u64) -> String {
    format!("{TRASH_PREFIX}{name}/{deletion_id}")
}

/// A key as it is used by a request: its id and decoded policy, shared through the cache.
pub struct LoadedKey {
    /// The key's identity.
    pub id: KeyId,
    /// The policy with all versions.
    pub policy: KeyPolicy,
}

/// A deleted key waiting for its purge time.
#[derive(Clone, Serialize, Deserialize)]
pub struct TrashedKey {
    /// The stored policy record as it was (`id || codec(policy)`).
    pub stored: Vec<u8>,
    /// When it was deleted (ns since the epoch; also its deletion id).
    pub deleted_nanos: u64,
    /// When it is purged (seconds since the epoch).
    pub purge_secs: u64,
    /// Its type's name, for listings.
    pub key_type: String,
    /// Its latest version, for listings.
    pub latest_version: u32,
}

impl Drop for TrashedKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.stored);
    }
}

/// Maximum keys kept decoded per process.
const CACHE_CAPACITY: usize = 1024;

struct CacheEntry {
    digest: [u8; 32],
    key: Arc<LoadedKey>,
    last_used: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<KeyId, CacheEntry>,
    clock: u64,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(Cache::default()));

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn corrupt(key: &str) -> LogicalError {
    LogicalError::Storage(StorageError::Corrupt(key.to_string()))
}

/// Decodes a stored policy record (`id || codec(policy)`), through the cache.
pub fn decode_stored(storage_key: &str, bytes: &[u8]) -> Result<Arc<LoadedKey>, LogicalError> {
    if bytes.len() < 16 {
        return Err(corrupt(storage_key));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[..16]);
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    {
        let mut cache = cache();
        cache.clock += 1;
        let clock = cache.clock;
        if let Some(entry) = cache.entries.get_mut(&id)
            && entry.digest == digest
        {
            entry.last_used = clock;
            return Ok(entry.key.clone());
        }
    }
    let policy: KeyPolicy = codec::decode(&bytes[16..]).map_err(|_| corrupt(storage_key))?;
    let key = Arc::new(LoadedKey { id, policy });
    let mut cache = cache();
    let clock = cache.clock;
    if cache.entries.len() >= CACHE_CAPACITY && !cache.entries.contains_key(&id) {
        let oldest = cache
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.last_used)
            .map(|(id, _)| *id);
        if let Some(oldest) = oldest {
            cache.entries.remove(&oldest);
        }
    }
    cache.entries.insert(
        id,
        CacheEntry {
            digest,
            key: key.clone(),
            last_used: clock,
        },
    );
    Ok(key)
}

/// Drops a key from this node's cache (after deleting it).
pub fn forget(id: &KeyId) {
    cache().entries.remove(id);
}

/// The key named `name`, if it exists.
pub fn load(storage: &mut dyn Storage, name: &str) -> Result<Option<Arc<LoadedKey>>, LogicalError> {
    let storage_key = policy_key(name);
    let Some(bytes) = storage.get(&storage_key)? else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(bytes);
    decode_stored(&storage_key, &bytes).map(Some)
}

/// The encoded record for a policy.
pub fn encode(id: &KeyId, policy: &KeyPolicy) -> Vec<u8> {
    let encoded = Zeroizing::new(codec::encode(policy));
    let mut bytes = Vec::with_capacity(16 + encoded.len());
    bytes.extend_from_slice(id);
    bytes.extend_from_slice(&encoded);
    bytes
}

/// Stages a policy record (callers use [`super::schedule::save`], which also keeps the
/// schedule in step).
pub fn put(storage: &mut dyn Storage, id: &KeyId, policy: &KeyPolicy) -> Result<(), LogicalError> {
    Ok(storage.put(&policy_key(&policy.name), encode(id, policy))?)
}

/// A fresh random key id.
pub fn new_id() -> KeyId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&super::material::random(16));
    id
}

/// Reads and decodes a codec value.
pub fn load_value<T: serde::de::DeserializeOwned>(
    storage: &mut dyn Storage,
    key: &str,
) -> Result<Option<T>, LogicalError> {
    match storage.get(key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes).map(Some).map_err(|_| corrupt(key)),
    }
}

/// Encodes and stages a codec value.
pub fn store_value<T: Serialize>(
    storage: &mut dyn Storage,
    key: &str,
    value: &T,
) -> Result<(), LogicalError> {
    Ok(storage.put(key, codec::encode(value))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::transit::keytype::KeyType;
    use crate::engines::transit::test_util;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn cache_reuses_unchanged_records_and_replaces_changed_ones() {
        let mut storage = MemoryStorage::default();
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        let id = new_id();
        put(&mut storage, &id, &policy).unwrap();
        let first = load(&mut storage, &policy.name).unwrap().unwrap();
        let again = load(&mut storage, &policy.name).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        policy.rotate(1).unwrap();
        put(&mut storage, &id, &policy).unwrap();
        let rotated = load(&mut storage, &policy.name).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &rotated));
        assert_eq!(rotated.policy.latest_version, 2);
        forget(&id);
        assert!(load(&mut storage, "missing").unwrap().is_none());
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        let mut storage = MemoryStorage::default();
        storage.put(&policy_key("x"), vec![1, 2, 3]).unwrap();
        assert!(load(&mut storage, "x").is_err());
        storage.put(&policy_key("y"), vec![0; 40]).unwrap();
        assert!(load(&mut storage, "y").is_err());
    }
}
