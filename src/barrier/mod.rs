//! The barrier: the only code that holds data keys. Everything stored (values and journal
//! records) passes through it.
//!
//! Layout of an encrypted value: `[term: 4, big-endian][nonce: 12][ciphertext + tag: 16]`,
//! AES-256-GCM-SIV under the term's key with AAD = the storage key, so a ciphertext moved to
//! another key does not decrypt. Journal (audit) records, stored with AAD [`JOURNAL_AAD`], are
//! encrypted under the term's separate *journal key* and their term carries the high bit
//! (`0x8000_0000`): the journal is append-only and hash-chained, so its records can never be
//! re-encrypted, and keeping them under their own keys lets a term's data key be retired once
//! re-encryption moved every value off it (see `core::rotate`). Records written before journal
//! keys existed carry a plain term and need that term's data key.
//!
//! The keyring (see `keyring`) is encrypted by the root key; while unsealed the barrier holds both
//! (and the unseal key, so the root key can be rotated without shares, as OpenBao does), and
//! sealing wipes them. Rotation is done through storage (see `rotation`): a new keyring blob is
//! committed at [`KEYRING_PATH`] and every node installs it when it applies the write
//! ([`Barrier::refresh`]); a value under a term this node has not loaded yet makes it reload the
//! keyring and retry once.

mod keyring;
mod rotation;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::aead::{self, AeadError};
use crate::seal::{RootKey, UnsealKey};
use keyring::{JOURNAL_BIT, Keyring};
pub use rotation::{KeyringSource, RootRotation, TermInfo, upgrade_time};

/// Storage key of the plaintext seal configuration.
pub const SEAL_CONFIG_PATH: &str = "core/seal-config";
/// Storage key of the root key, wrapped by the unseal key.
pub const ROOT_KEY_PATH: &str = "core/root-key";
/// Storage key of the keyring, encrypted by the root key.
pub const KEYRING_PATH: &str = "core/keyring";
/// Storage key of the last root-key rotation's upgrade record (the new root key wrapped by the
/// previous one), which lets unsealed nodes follow a root rotation.
pub const ROOT_UPGRADE_PATH: &str = "core/root-key-upgrade";
/// Storage key of the unseal key itself, encrypted by the barrier like any value (Vault's
/// `core/shamir-kek`): root-key rotation reads the current key there, so it works on every node
/// after a rekey made on another one (whose held key is the old one).
pub const UNSEAL_KEY_PATH: &str = "core/unseal-key";
/// AAD of encrypted journal (audit) records; encrypting under it selects the journal key.
pub const JOURNAL_AAD: &str = "core/journal";
/// Keys whose values are not barrier ciphertext (plaintext or wrapped by seal keys).
pub const RAW_KEYS: [&str; 5] = [
    SEAL_CONFIG_PATH,
    ROOT_KEY_PATH,
    KEYRING_PATH,
    ROOT_UPGRADE_PATH,
    crate::seal::pkcs11::HSM_UNSEAL_KEY_PATH,
];

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
    /// The value names a term whose data key was retired.
    #[error("term {0} is retired")]
    RetiredTerm(u32),
    /// The active term cannot be retired.
    #[error("term {0} is the active term")]
    ActiveTerm(u32),
    /// Too short to be an encrypted value.
    #[error("malformed ciphertext")]
    Malformed,
    /// The keyring decrypted but does not decode or is inconsistent.
    #[error("keyring is malformed")]
    MalformedKeyring,
    /// The unseal key this node holds no longer opens the stored root key (a rekey happened since
    /// this node was unsealed), or it holds none.
    #[error(
        "this node's unseal key is out of date (rekeyed since it was unsealed); seal and unseal it with the current shares"
    )]
    UnsealKeyOutdated,
    /// The stored keyring could not be read or followed.
    #[error("keyring reload failed: {0}")]
    Reload(String),
}

/// The active term, when its key was installed and how often it encrypted on this node
/// (`sys/key-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The term new writes are encrypted under.
    pub term: u32,
    /// When the term's key was installed, in Unix seconds.
    pub install_time: u64,
    /// Encryptions under this term by this node since it loaded the term.
    pub encryptions: u64,
}

/// What the barrier holds while unsealed.
struct Held {
    keyring: Keyring,
    root: Zeroizing<[u8; 32]>,
    /// The mod_revision of the stored keyring this came from, when known.
    revision: Option<u64>,
}

/// Encrypts and decrypts stored values with the keyring it holds while unsealed.
///
/// The locks guard only swaps: none is held during crypto or across an await.
pub struct Barrier {
    held: RwLock<Option<Arc<Held>>>,
    unseal_key: Mutex<Option<UnsealKey>>,
    source: OnceLock<Box<dyn KeyringSource>>,
    /// Encryptions under the active term since this node installed it.
    encryptions: AtomicU64,
    /// Serializes keyring reloads.
    reload: Mutex<()>,
}

impl Barrier {
    /// A barrier with no keys.
    pub fn new_sealed() -> Self {
        Self {
            held: RwLock::new(None),
            unseal_key: Mutex::new(None),
            source: OnceLock::new(),
            encryptions: AtomicU64::new(0),
            reload: Mutex::new(()),
        }
    }

    /// Makes a fresh keyring (term 1). Returns an unsealed barrier using it and the keyring
    /// encrypted under `root_key`, to store at [`KEYRING_PATH`].
    pub fn initialize(root_key: &RootKey) -> (Barrier, Vec<u8>) {
        let keyring = Keyring::new();
        let blob = keyring.seal(root_key.as_bytes());
        let barrier = Self::new_sealed();
        barrier.install(keyring, Zeroizing::new(*root_key.as_bytes()), None);
        (barrier, blob)
    }

    /// Where [`Barrier::refresh`] reads the stored keyring (set once, by the core).
    pub fn set_source(&self, source: Box<dyn KeyringSource>) {
        let _ = self.source.set(source);
    }

    /// Whether the barrier holds no keys.
    pub fn is_sealed(&self) -> bool {
        self.current().is_none()
    }

    /// Decrypts `keyring_blob` with `root_key` and starts using it (replacing any keyring held).
    /// The root key is kept (wiped on seal) so later keyrings can be opened. On error the barrier
    /// is unchanged.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Decrypt`] for a wrong root key or altered blob,
    /// [`BarrierError::MalformedKeyring`] if it decrypts but does not decode.
    pub fn unseal(&self, root_key: &RootKey, keyring_blob: &[u8]) -> Result<(), BarrierError> {
        let keyring = Keyring::open(root_key.as_bytes(), keyring_blob)?;
        self.install(keyring, Zeroizing::new(*root_key.as_bytes()), None);
        Ok(())
    }

    /// Keeps the unseal key that unsealed this node, so `sys/rotate/root` can wrap a new root key
    /// without shares. Wiped on seal.
    pub fn hold_unseal_key(&self, unseal_key: UnsealKey) {
        *self
            .unseal_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(unseal_key);
    }

    /// Drops every key; they are wiped once no in-flight operation still uses them.
    pub fn seal(&self) {
        self.held
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.unseal_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Encrypts `plaintext` for storage at `storage_key` under the active term (its journal key
    /// when `storage_key` is [`JOURNAL_AAD`]).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn encrypt(&self, storage_key: &str, plaintext: &[u8]) -> Result<Vec<u8>, BarrierError> {
        let held = self.held()?;
        let (term, keys) = held.keyring.active();
        let (header, key) = match (&keys.journal_key, &keys.key) {
            (Some(journal), _) if storage_key == JOURNAL_AAD => (term | JOURNAL_BIT, journal),
            (_, Some(data)) => (term, data),
            (_, None) => return Err(BarrierError::MalformedKeyring),
        };
        let sealed = aead::seal(key, storage_key.as_bytes(), plaintext);
        self.encryptions.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::with_capacity(TERM_LEN + sealed.len());
        out.extend_from_slice(&header.to_be_bytes());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value read from `storage_key`. A term this node does not know yet makes it
    /// reload the stored keyring and try once more.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`], [`BarrierError::Malformed`] if too short,
    /// [`BarrierError::UnknownTerm`], [`BarrierError::RetiredTerm`], or
    /// [`BarrierError::Decrypt`] if authentication fails.
    pub fn decrypt(
        &self,
        storage_key: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        match self.decrypt_once(storage_key, ciphertext) {
            Err(BarrierError::UnknownTerm(term)) => match self.refresh() {
                Ok(true) => self.decrypt_once(storage_key, ciphertext),
                _ => Err(BarrierError::UnknownTerm(term)),
            },
            other => other,
        }
    }

    fn decrypt_once(
        &self,
        storage_key: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let held = self.held()?;
        let (header, sealed) = ciphertext
            .split_first_chunk::<TERM_LEN>()
            .ok_or(BarrierError::Malformed)?;
        let header = u32::from_be_bytes(*header);
        let term = header & !JOURNAL_BIT;
        let keys = held
            .keyring
            .term(term)
            .ok_or(BarrierError::UnknownTerm(term))?;
        let key = if header & JOURNAL_BIT != 0 {
            keys.journal_key
                .as_ref()
                .ok_or(BarrierError::UnknownTerm(term))?
        } else {
            keys.key.as_ref().ok_or(BarrierError::RetiredTerm(term))?
        };
        aead::open(key, storage_key.as_bytes(), sealed).map_err(|err| match err {
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
        let held = self.held()?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(held.keyring.mac_key())
            .expect("HMAC accepts keys of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        Ok(mac.finalize().into_bytes().into())
    }

    /// The active term, its install time and this node's encryptions under it.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`] if the barrier holds no keys.
    pub fn key_status(&self) -> Result<KeyStatus, BarrierError> {
        let held = self.held()?;
        let (term, key) = held.keyring.active();
        Ok(KeyStatus {
            term,
            install_time: key.install_time,
            encryptions: self.encryptions.load(Ordering::Relaxed),
        })
    }

    /// Installs a keyring; the encryption count restarts when the active term changes.
    fn install(&self, keyring: Keyring, root: Zeroizing<[u8; 32]>, revision: Option<u64>) {
        let mut held = self.held.write().unwrap_or_else(PoisonError::into_inner);
        let previous = held.as_ref().map(|held| held.keyring.active().0);
        if previous != Some(keyring.active().0) {
            self.encryptions.store(0, Ordering::Relaxed);
        }
        *held = Some(Arc::new(Held {
            keyring,
            root,
            revision,
        }));
    }

    fn current(&self) -> Option<Arc<Held>> {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn held(&self) -> Result<Arc<Held>, BarrierError> {
        self.current().ok_or(BarrierError::Sealed)
    }
}

/// The term a stored barrier value names, and whether it is a journal ciphertext. `None` if too
/// short to carry a term.
pub fn value_term(ciphertext: &[u8]) -> Option<(u32, bool)> {
    let header = u32::from_be_bytes(*ciphertext.first_chunk::<TERM_LEN>()?);
    Some((header & !JOURNAL_BIT, header & JOURNAL_BIT != 0))
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
        let (a, b) = (other.key_status().unwrap(), first.key_status().unwrap());
        assert_eq!((a.term, a.install_time), (b.term, b.install_time));
        assert_eq!((a.encryptions, b.encryptions), (0, 1), "counted per node");
    }

    #[test]
    fn rotation_keeps_old_terms_readable() {
        let (barrier, root, blob) = unsealed();
        let old = barrier.encrypt("k", b"before").unwrap();
        let mac = barrier.mac("audit", b"x").unwrap();
        let (rotated, term) = barrier.rotated_keyring(&blob).unwrap();
        assert_eq!(term, 2);
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
