//! The storage an engine sees: a key-value view scoped to its mount (a "chroot"). Reads see
//! committed data plus this request's own staged writes; writes are staged and committed together
//! with the request, or not at all. Values are plaintext here; the view encrypts them.

use std::collections::BTreeSet;

/// Why the storage view failed. Internal: clients see a generic message.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The stored value could not be decrypted or decoded.
    #[error("stored value at {0} is unreadable")]
    Corrupt(String),
    /// The underlying store failed.
    #[error("storage failure: {0}")]
    Backend(String),
    /// The engine used a key outside the rules (empty, absolute, or with `..`).
    #[error("invalid storage key")]
    InvalidKey,
}

/// A mount-scoped, transactional key-value view.
pub trait Storage {
    /// The value at `key`, if any.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Every key under `prefix` (full keys relative to the view), in order.
    fn keys_under(&mut self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Stages `value` at `key`.
    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StorageError>;
    /// Stages the deletion of `key`.
    fn delete(&mut self, key: &str) -> Result<(), StorageError>;
    /// Stages the deletion of every key under `prefix`.
    fn delete_prefix(&mut self, prefix: &str) -> Result<(), StorageError>;
}

/// Vault's LIST semantics over full keys: the immediate children of `prefix`, folders with a
/// trailing `/`, sorted and without duplicates.
pub fn list_children(prefix: &str, keys: &[String]) -> Vec<String> {
    let mut children = BTreeSet::new();
    for key in keys {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        match rest.find('/') {
            Some(slash) => children.insert(rest[..=slash].to_string()),
            None => children.insert(rest.to_string()),
        };
    }
    children.into_iter().collect()
}

/// Beyond Vault (recursive LIST): every key below `prefix`, relative to it, sorted. Folders are
/// not entries of their own: `a/b/c` stands for itself, not for `a/` and `a/b/` too.
pub fn list_descendants(prefix: &str, keys: &[String]) -> Vec<String> {
    let mut descendants: Vec<String> = keys
        .iter()
        .filter_map(|key| key.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
        .map(str::to_string)
        .collect();
    descendants.sort();
    descendants.dedup();
    descendants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_immediate_children_with_folders() {
        let keys: Vec<String> = ["a/x", "a/y/z", "a/y/w", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_children("a/", &keys), vec!["x", "y/"]);
        assert_eq!(list_children("", &keys), vec!["a/", "b"]);
        assert!(list_children("c/", &keys).is_empty());
    }

    #[test]
    fn lists_every_key_below_a_prefix() {
        let keys: Vec<String> = ["a/x", "a/y/z", "a/y/w", "b", "ab"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_descendants("a/", &keys), vec!["x", "y/w", "y/z"]);
        assert_eq!(
            list_descendants("", &keys),
            vec!["a/x", "a/y/w", "a/y/z", "ab", "b"]
        );
        assert!(list_descendants("c/", &keys).is_empty());
    }
}
