//! The token store: tokens are random (256 bits, Vault's `hvs.` prefix), stored only as a keyed
//! hash, and looked up by that hash. Entries are replicated like any other data (encrypted by the
//! barrier through the view).
//!
//! Layout in the `core/token/` view: `id/<hash hex>` -> [`TokenEntry`], `accessor/<accessor>` ->
//! the hash hex of the token it belongs to.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde::Serialize;
use strongroom_raft::codec;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::StorageError;

/// Prefix of service tokens, as Vault's.
pub const SERVICE_TOKEN_PREFIX: &str = "hvs.";
/// The storage view prefix of the token store.
pub const VIEW_PREFIX: &str = "core/token/";

/// A token's stored record. It never holds the token itself.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// Hex of the keyed hash of the token (the lookup key).
    pub id_hash: String,
    /// A second, non-secret handle for the token (lookup and revocation by accessor).
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// Human-readable name (`root`, `token`, ...).
    pub display_name: String,
    /// The path that created it (`auth/token/root`).
    pub path: String,
    /// Free-form metadata.
    pub meta: BTreeMap<String, String>,
    /// Creation time, seconds since the epoch.
    pub creation_time: u64,
    /// Seconds until expiry from creation (0: never expires).
    pub ttl: u64,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl TokenEntry {
    /// Whether the token has expired at `now` (seconds since the epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.ttl > 0 && self.creation_time.saturating_add(self.ttl) <= now
    }

    /// Whether the token carries the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|policy| policy == "root")
    }
}

/// A fresh random token: `hvs.` followed by 256 random bits in URL-safe base64.
pub fn generate_token() -> Zeroizing<String> {
    let bytes = crate::crypto::random_bytes::<32>();
    Zeroizing::new(format!(
        "{SERVICE_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes)
    ))
}

/// A fresh random accessor (not secret, but unguessable).
pub fn generate_accessor() -> String {
    let bytes = crate::crypto::random_bytes::<18>();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes)
}

/// The entry of the initial root token.
pub fn root_entry(id_hash: String, accessor: String, now: u64) -> TokenEntry {
    TokenEntry {
        id_hash,
        accessor,
        policies: vec!["root".to_string()],
        display_name: "root".to_string(),
        path: "auth/token/root".to_string(),
        meta: BTreeMap::new(),
        creation_time: now,
        ttl: 0,
    }
}

fn id_key(id_hash: &str) -> String {
    format!("id/{id_hash}")
}

/// Stages `entry` and its accessor index in the token store view.
pub fn store(storage: &mut dyn Storage, entry: &TokenEntry) -> Result<(), StorageError> {
    storage.put(&id_key(&entry.id_hash), codec::encode(entry))?;
    storage.put(
        &format!("accessor/{}", entry.accessor),
        codec::encode(&entry.id_hash),
    )
}

/// Looks up the token whose keyed hash is `id_hash`; `None` if unknown or expired at `now`.
pub fn lookup(
    storage: &mut dyn Storage,
    id_hash: &str,
    now: u64,
) -> Result<Option<TokenEntry>, LogicalError> {
    if id_hash.is_empty() || !id_hash.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let key = id_key(id_hash);
    let Some(bytes) = storage.get(&key)? else {
        return Ok(None);
    };
    let entry: TokenEntry = codec::decode(&bytes).map_err(|_| StorageError::Corrupt(key))?;
    // Defence in depth: the stored hash must equal the presented one, compared in constant time.
    if !bool::from(entry.id_hash.as_bytes().ct_eq(id_hash.as_bytes())) || entry.is_expired(now) {
        return Ok(None);
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn tokens_are_prefixed_random_and_long() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.starts_with(SERVICE_TOKEN_PREFIX));
        assert_ne!(*a, *b);
        assert!(a.len() >= SERVICE_TOKEN_PREFIX.len() + 43);
    }

    #[test]
    fn stored_entries_are_found_by_hash_only_until_expiry() {
        let mut storage = MemoryStorage::default();
        let mut entry = root_entry("ab12".into(), "acc".into(), 100);
        store(&mut storage, &entry).unwrap();
        assert!(lookup(&mut storage, "ab12", 1_000).unwrap().is_some());
        assert!(lookup(&mut storage, "ab13", 1_000).unwrap().is_none());
        assert!(lookup(&mut storage, "../x", 1_000).unwrap().is_none());
        entry.ttl = 10;
        store(&mut storage, &entry).unwrap();
        assert!(lookup(&mut storage, "ab12", 109).unwrap().is_some());
        assert!(lookup(&mut storage, "ab12", 110).unwrap().is_none());
    }
}
