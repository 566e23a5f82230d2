//! The two keys only `seal` creates: the unseal key (split into shares, never stored) and the root
//! key (stored wrapped by the unseal key; it wraps the barrier's keyring).
//!
//! Both live in wiped buffers, cannot be cloned or serialized, and print as `<redacted>`.

use std::fmt;

use zeroize::Zeroizing;

use crate::crypto::random_bytes;

/// Length in bytes of both keys.
pub const KEY_LEN: usize = 32;

/// The key recovered from a quorum of shares; it decrypts the root key.
pub struct UnsealKey(Zeroizing<[u8; KEY_LEN]>);

impl UnsealKey {
    pub(super) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    pub(super) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key's bytes for storage inside the barrier at `core/unseal-key` (encrypted there like
    /// any value, as Vault keeps its Shamir KEK), so any unsealed node can use the current key.
    pub fn to_barrier_value(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_vec())
    }

    /// The key from [`UnsealKey::to_barrier_value`]'s bytes; `None` if they are not a key.
    pub fn from_barrier_value(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(*bytes)))
    }

    /// Whether both keys are the same, compared in constant time (rekey verification checks
    /// that the new shares recombine to the key it issued).
    pub fn ct_eq(&self, other: &UnsealKey) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            self.0.as_slice(),
            other.0.as_slice(),
        ))
    }
}

impl fmt::Debug for UnsealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnsealKey(<redacted>)")
    }
}

/// The key that encrypts the barrier's keyring (`core/keyring`); it is stored wrapped by the
/// unseal key at `core/root-key`.
pub struct RootKey(Zeroizing<[u8; KEY_LEN]>);

impl RootKey {
    /// A fresh random root key from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(random_bytes())
    }

    pub(super) fn from_bytes(bytes: Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self(bytes)
    }

    /// The raw key, for the barrier to open and seal its keyring.
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let root = RootKey::generate();
        let unseal = UnsealKey::from_bytes(random_bytes());
        assert_eq!(format!("{root:?}"), "RootKey(<redacted>)");
        assert_eq!(format!("{unseal:?}"), "UnsealKey(<redacted>)");
        assert!(!format!("{root:?}").contains(&hex::encode(root.as_bytes())));
        assert!(!format!("{unseal:#?}").contains(&hex::encode(unseal.as_bytes())));
    }

    #[test]
    fn unseal_key_comparison() {
        let a = UnsealKey::from_bytes(random_bytes());
        let b = UnsealKey::from_bytes(random_bytes());
        let a_again = UnsealKey::from_bytes(Zeroizing::new(*a.as_bytes()));
        assert!(a.ct_eq(&a_again));
        assert!(!a.ct_eq(&b));
    }

    #[test]
    fn generated_root_keys_differ() {
        assert_ne!(
            RootKey::generate().as_bytes(),
            RootKey::generate().as_bytes()
        );
    }
}
