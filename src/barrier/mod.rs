//! The barrier: the only code that holds data keys. Everything stored (values and journal
//! records) passes through it.
//!
//! Layout of an encrypted value: `[term: 4, big-endian][nonce: 12][ciphertext + tag: 16]`,
//! AES-256-GCM-SIV under the term's key with AAD = the storage key, so a ciphertext moved to
//! another key does not decrypt. The keyring (see `keyring`) is encrypted by the root key; the
//! barrier holds it only while unsealed, and dropping it wipes every key.
//!
//! Keyring rotation is two-phase because every node must be able to decrypt before anyone writes
//! under a new term: [`Barrier::rotated_keyring`] returns the next keyring's blob without using
//! it; once that blob is committed at [`KEYRING_PATH`], each node installs it with
//! [`Barrier::unseal`].

mod keyring;

use std::sync::{Arc, PoisonError, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::aead::{self, AeadError};
use crate::seal::RootKey;
use keyring::Keyring;

/// Storage key of the plaintext seal configuration.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Storage key of the root key, wrapped by the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Storage key of the keyring, encrypted by the root key.
pub const KEYRING_PATH: &str = "core/keyring";

/// Length of the big-endian term that prefixes every encrypted value.
const TERM_LEN: usize = 4;

/// Why a barrier operation failed. No variant carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The barrier holds no keys.
    #[error("Vault is sealed")]
    Sealed,
    /// Authentication failed (wrong key, wrong storage key, or altered bytes). No detail on purpose.
    #[error("decryption failed")]
    Decrypt,
    /// The value names a term this keyring does not have.
    #[error("no key for term {0}")]
    UnknownTerm(u32),
    /// Too short to be an encrypted value.
    #[error("malformed ciphertext")]
    Malformed,
    /// The keyring decrypted but does not decode or is inconsistent.
    #[error("keyring is malformed")]
    MalformedKeyring,
}

/// The active term and when its key was installed (`sys/key-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The term new writes are encrypted under.
    pub term: u32,
    /// When the term's key was installed, in Unix seconds.
    pub install_time: u64,
}

/// Encrypts and decrypts stored values with the keyring it holds while unsealed.
///
/// The lock guards only the swap of an `Arc`: it is never held during crypto or across an await.
pub struct Barrier {
    keyring: RwLock<Option<Arc<Keyring>>>,
}

impl Barrier {
    /// A barrier with no keys.
    pub fn new_sealed() -> Self {
        Self {
            keyring: RwLock::new(None),
        }
    }

    /// Makes a fresh keyring (term 1). Returns an unsealed barrier using it and the keyring
    /// encrypted under `root_key`, to store at [`KEYRING_PATH`].
    pub fn initialize(root_key: &RootKey) -> (Barrier, Vec<u8>) {
        let keyring = Keyring::new();
        let blob = keyring.seal(root_key);
        (
            Self {
                keyring: RwLock::new(Some(Arc::new(keyring))),
            },
            blob,
        )
    }

    /// Whether the barrier holds no keys.
    pub fn is_sealed(&self) -> bool {
        self.current().is_none()
    }

    /// Decrypts `keyring_blob` with `root_key` and starts using it (replacing any keyring held,
    /// which is how a rotated keyring is installed). On error the barrier is unchanged.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Decrypt`] for a wrong root key or altered blob,
    /// [`BarrierError::MalformedKeyring`] if it decrypts but does not decode.
    pub fn unseal(&self, root_key: &RootKey, keyring_blob: &[u8]) -> Result<(), BarrierError> {
        let keyring = Keyring::open(root_key, keyring_blob)?;
        *self.keyring.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(keyring));
        Ok(())
    }

    /// Drops the keyring; its keys are wiped once no in-flight operation still uses them.
    pub fn seal(&self) {
        self.keyring
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Encrypts `plaintext` for storage at `storage_key` under the active term.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn encrypt(&self, storage_key: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        let keyring = self.keyring()?;
        let (term, key) = keyring.active();
        let sealed = aead::seal(&key.key, storage_key.as_bytes(), plaintext);
        let mut out = Vec::with_capacity(TERM_LEN + sealed.len());
        out.extend_from_slice(&term.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value read from `storage_key`.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`], [`BarrierError::Malformed`] if too short,
    /// [`BarrierError::UnknownTerm`], or [`BarrierError::Decrypt`] if authentication fails.
    pub fn decrypt(
        &self,
        storage_key: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let keyring = self.keyring()?;
        let (term, sealed) = ciphertext
            .split_first_chunk::<TERM_LEN>()
            .ok_or(BarrierError::Malformed)?;
        let term = u32::from_be_bytes(*term);
        let key = keyring.term(term).ok_or(BarrierError::UnknownTerm(term))?;
        aead::open(&key.key, storage_key.as_bytes(), sealed).map_err(|err| match err {
            AeadError::Truncated => BarrierError::Malformed,
            AeadError::Authentication => BarrierError::Decrypt,
        })
    }

    /// `HMAC-SHA256(mac key, domain || 0x00 || data)`: a keyed hash for looking up tokens and
    /// hiding audited values. `domain` (e.g. `"token"`, `"audit"`) separates uses and must not
    /// contain NUL.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn mac(&self, domain: &str, data: &[u8]) -> Result<[u8; 32], BarrierError> {
        debug_assert!(!domain.contains('\0'), "MAC domains must not contain NUL");
        let keyring = self.keyring()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(keyring.mac_key())
            .expect("HMAC accepts keys of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The active term and its install time.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn key_status(&self) -> Result<KeyStatus, BarrierError> {
        let keyring = self.keyring()?;
        let (term, key) = keyring.active();
        Ok(KeyStatus {
            term,
            install_time: key.install_time,
        })
    }

    /// The held keyring plus a new active term, encrypted under `root_key` for storage at
    /// [`KEYRING_PATH`]. Does not change what this barrier uses: install the blob with
    /// [`Barrier::unseal`] once it is committed, on every node.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn rotated_keyring(&self, root_key: &RootKey) -> Result<Vec<u8>, BarrierError> {
        Ok(self.keyring()?.rotated()?.seal(root_key))
    }

    fn current(&self) -> Option<Arc<Keyring>> {
        self.keyring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn keyring(&self) -> Result<Arc<Keyring>, BarrierError> {
        self.current().ok_or(BarrierError::Sealed)
    }
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("sealed", &self.is_sealed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsealed() -> (Barrier, RootKey, Vec<u8>) {
        let root = RootKey::generate();
        let (barrier, blob) = Barrier::initialize(&root);
        (barrier, root, blob)
    }

    #[test]
    fn barrier_is_shareable_across_tasks() {
        fn check<T: Send + Sync>() {}
        check::<Barrier>();
    }

    #[test]
    fn layout_starts_with_term_one() {
        let (barrier, _, _) = unsealed();
        let ciphertext = barrier.encrypt("secret/a", b"hello").unwrap();
        assert_eq!(ciphertext[..TERM_LEN], 1u32.to_be_bytes());
        assert_eq!(ciphertext.len(), TERM_LEN + aead::OVERHEAD + 5);
        assert_eq!(
            barrier.decrypt("secret/a", &ciphertext).unwrap().as_slice(),
            b"hello"
        );
        assert_eq!(barrier.key_status().unwrap().term, 1);
    }

    #[test]
    fn storage_key_is_bound() {
        let (barrier, _, _) = unsealed();
        let ciphertext = barrier.encrypt("secret/a", b"hello").unwrap();
        assert!(matches!(
            barrier.decrypt("secret/b", &ciphertext),
            Err(BarrierError::Decrypt)
        ));
    }

    #[test]
    fn malformed_and_unknown_term() {
        let (barrier, _, _) = unsealed();
        let mut ciphertext = barrier.encrypt("k", b"v").unwrap();
        assert!(matches!(
            barrier.decrypt("k", &ciphertext[..3]),
            Err(BarrierError::Malformed)
        ));
        assert!(matches!(
            barrier.decrypt("k", &ciphertext[..TERM_LEN + 20]),
            Err(BarrierError::Malformed)
        ));
        ciphertext[..TERM_LEN].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            barrier.decrypt("k", &ciphertext),
            Err(BarrierError::UnknownTerm(9))
        ));
    }

    #[test]
    fn sealed_refuses_everything() {
        let (barrier, _, _) = unsealed();
        let ciphertext = barrier.encrypt("k", b"v").unwrap();
        barrier.seal();
        assert!(barrier.is_sealed());
        assert!(matches!(
            barrier.encrypt("k", b"v"),
            Err(BarrierError::Sealed)
        ));
        assert!(matches!(
            barrier.decrypt("k", &ciphertext),
            Err(BarrierError::Sealed)
        ));
        assert!(matches!(
            barrier.mac("token", b"x"),
            Err(BarrierError::Sealed)
        ));
        assert!(matches!(barrier.key_status(), Err(BarrierError::Sealed)));
        assert!(Barrier::new_sealed().is_sealed());
    }

    #[test]
    fn unseal_with_wrong_root_key_stays_sealed() {
        let (_, _, blob) = unsealed();
        let barrier = Barrier::new_sealed();
        assert!(matches!(
            barrier.unseal(&RootKey::generate(), &blob),
            Err(BarrierError::Decrypt)
        ));
        assert!(barrier.is_sealed());
    }

    #[test]
    fn unseal_with_right_root_key_reads_initial_writes() {
        let (first, root, blob) = unsealed();
        let ciphertext = first.encrypt("secret/a", b"hello").unwrap();
        let mac = first.mac("token", b"hvs.abc").unwrap();
        let other = Barrier::new_sealed();
        other.unseal(&root, &blob).unwrap();
        assert!(!other.is_sealed());
        assert_eq!(
            other.decrypt("secret/a", &ciphertext).unwrap().as_slice(),
            b"hello"
        );
        assert_eq!(other.mac("token", b"hvs.abc").unwrap(), mac);
        assert_eq!(other.key_status().unwrap(), first.key_status().unwrap());
    }

    #[test]
    fn rotation_keeps_old_terms_readable() {
        let (barrier, root, _) = unsealed();
        let old = barrier.encrypt("k", b"before").unwrap();
        let mac = barrier.mac("audit", b"x").unwrap();
        let rotated = barrier.rotated_keyring(&root).unwrap();
        assert_eq!(
            barrier.key_status().unwrap().term,
            1,
            "not used until installed"
        );
        barrier.unseal(&root, &rotated).unwrap();
        assert_eq!(barrier.key_status().unwrap().term, 2);
        let new = barrier.encrypt("k", b"after").unwrap();
        assert_eq!(new[..TERM_LEN], 2u32.to_be_bytes());
        assert_eq!(barrier.decrypt("k", &old).unwrap().as_slice(), b"before");
        assert_eq!(barrier.decrypt("k", &new).unwrap().as_slice(), b"after");
        assert_eq!(
            barrier.mac("audit", b"x").unwrap(),
            mac,
            "the MAC key does not rotate"
        );
    }

    #[test]
    fn mac_is_deterministic_and_domain_separated() {
        let (barrier, _, _) = unsealed();
        let (other, _, _) = unsealed();
        assert_eq!(
            barrier.mac("token", b"abc").unwrap(),
            barrier.mac("token", b"abc").unwrap()
        );
        assert_ne!(
            barrier.mac("token", b"abc").unwrap(),
            barrier.mac("audit", b"abc").unwrap()
        );
        assert_ne!(
            barrier.mac("token", b"abc").unwrap(),
            barrier.mac("token", b"abd").unwrap()
        );
        assert_ne!(
            barrier.mac("tok", b"en\0abc").unwrap(),
            barrier.mac("token", b"abc").unwrap()
        );
        assert_ne!(
            barrier.mac("token", b"abc").unwrap(),
            other.mac("token", b"abc").unwrap()
        );
    }

    #[test]
    fn ciphertext_hides_plaintext() {
        let (barrier, _, _) = unsealed();
        let plaintext = b"correct horse battery staple";
        let ciphertext = barrier.encrypt("k", plaintext).unwrap();
        assert!(
            !ciphertext
                .windows(4)
                .any(|w| plaintext.windows(4).any(|p| p == w))
        );
        assert_ne!(
            barrier.encrypt("k", plaintext).unwrap(),
            ciphertext,
            "random nonces"
        );
        assert!(!format!("{barrier:?}").contains("correct"));
    }
}
