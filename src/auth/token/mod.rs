//! The token store: tokens are random (256 bits, Vault's `hvs.` prefix), stored only as a keyed
//! hash (computed by the core with a barrier key), and looked up by that hash. Entries form a
//! parent/child tree (revoking a parent revokes its descendants) and carry their expiry, use
//! count and CIDR bounds, which every node enforces on every request.
//!
//! Layout in the `core/token/` view:
//! - `id/<hash>` -> [`TokenEntry`]
//! - `accessor/<accessor>` -> the token's hash
//! - `parent/<parent hash>/<child hash>` -> (empty) the children index
//! - `expiry/<expire_at, 20 digits>/<hash>` -> (empty) the expiry index, in time order

mod entry;
mod tree;

pub use entry::TokenEntry;
pub use tree::lookup;
pub use tree::lookup_accessor;
pub use tree::replace;
pub use tree::revoke_orphan;
pub use tree::revoke_tree;
pub use tree::store;
pub use tree::sweep_expired;

use base64::Engine;
use zeroize::Zeroizing;

/// Prefix of service tokens, as Vault's.
pub const SERVICE_TOKEN_PREFIX: &str = "hvs.";
/// The storage view prefix of the token store.
pub const VIEW_PREFIX: &str = "core/token/";
/// Default and maximum token TTL when nothing else says (Vault's 768h).
pub const DEFAULT_TTL_SECS: u64 = 768 * 3600;

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
        creation_time: now,
        ..TokenEntry::default()
    }
}

#[cfg(test)]
mod tests;
