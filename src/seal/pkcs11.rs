//! HSM auto-unseal over PKCS#11 (tested against SoftHSM2).
//!
//! ```text
//! HSM AES key (never leaves the token) --CKM_AES_GCM--> wraps the unseal key
//!    stored at core/hsm-unseal-key through Raft; the unseal key still wraps the root key
//! ```
//!
//! On a cluster sealed this way the unseal key's Shamir shares are handed out as *recovery
//! shares*: they serve rekey and generate-root, and they can still unseal a node whose HSM is
//! gone (which Vault cannot, vault#15490). A node holding an [`Hsm`] unseals itself by asking the
//! token to decrypt the stored blob.
//!
//! Blob format: `0x01 || IV (12 B, random) || AES-GCM ciphertext || tag (16 B)`, with the
//! storage key as AAD. The PIN lives only in a [`Pkcs11Settings`] (wiped on drop) and is never
//! printed: `Debug` redacts it and no error message carries it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::CInitializeArgs;
use cryptoki::context::Pkcs11;
use cryptoki::error::Error as CkError;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::Attribute;
use cryptoki::object::AttributeType;
use cryptoki::object::KeyType;
use cryptoki::object::ObjectClass;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::keys::{KEY_LEN, UnsealKey};
use crate::crypto::random_bytes;

/// Storage key of the HSM-wrapped unseal key; its presence marks a cluster sealed by an HSM.
pub const HSM_UNSEAL_KEY_PATH: &str = "core/hsm-unseal-key";

/// Version byte of the blob format.
const BLOB_VERSION: u8 = 1;
/// GCM IV length.
const IV_LEN: usize = 12;
/// GCM tag length in bits.
const TAG_BITS: u64 = 128;

/// Why the HSM could not be used. Messages name the library, slot, token and key label, never
/// the PIN or any key material.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The PKCS#11 module could not be loaded or initialized.
    #[error("cannot load the PKCS#11 library {path}: {reason}")]
    Library {
        /// The configured path.
        path: String,
        /// The loader's message.
        reason: String,
    },
    /// No slot with the configured token (by label or slot id).
    #[error("PKCS#11 token not found: {0}")]
    TokenNotFound(String),
    /// The token refused the PIN.
    #[error("PKCS#11 login to token {0} failed: the PIN is incorrect")]
    PinIncorrect(String),
    /// The PIN is locked or expired, or login failed for another reason.
    #[error("PKCS#11 login to token {token} failed: {reason}")]
    Login {
        /// The token (label or slot).
        token: String,
        /// The module's return code.
        reason: String,
    },
    /// No AES secret key with the configured label on the token.
    #[error("PKCS#11 key {label:?} not found on token {token}")]
    KeyNotFound {
        /// The key label.
        label: String,
        /// The token (label or slot).
        token: String,
    },
    /// More than one key carries the label: which one wraps the unseal key would be ambiguous.
    #[error("PKCS#11 key label {0:?} is ambiguous: more than one AES key has it")]
    KeyAmbiguous(String),
    /// The key with the label is not a valid AES key (16, 24 or 32 bytes). SoftHSM2 2.6.1's
    /// `softhsm2-util --import --aes` makes such keys: it reads the key file with `fgets`, so a
    /// key with a newline or NUL byte is cut short there; the token then answers "invalid
    /// mechanism" to every encrypt. Generate keys inside the token instead.
    #[error(
        "PKCS#11 key {label:?} is {bytes} bytes long, not an AES key of 16, 24 or 32 bytes (was it imported from a file that got truncated?)"
    )]
    KeyLength {
        /// The key label.
        label: String,
        /// Its `CKA_VALUE_LEN`.
        bytes: u64,
    },
    /// An encrypt/decrypt or session call failed.
    #[error("PKCS#11 operation failed: {0}")]
    Operation(String),
    /// The stored blob is not one this module wrote, or the key does not authenticate it.
    #[error("the HSM-wrapped unseal key is malformed or was wrapped by another key")]
    BadBlob,
}

impl HsmError {
    /// Errors an operator must fix in the configuration (never worth retrying).
    pub fn is_configuration_error(&self) -> bool {
        matches!(
            self,
            HsmError::Library { .. } | HsmError::PinIncorrect(_) | HsmError::Login { .. }
        )
    }
}

/// Which token to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// A slot id.
    Slot(u64),
    /// A token label.
    Label(String),
}

impl fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSelector::Slot(id) => write!(f, "in slot {id}"),
            TokenSelector::Label(label) => write!(f, "{label:?}"),
        }
    }
}

/// Everything needed to open the HSM key, the PIN resolved (from its env var or file).
pub struct Pkcs11Settings {
    /// The PKCS#11 module.
    pub lib: PathBuf,
    /// The token.
    pub token: TokenSelector,
    /// The user PIN (wiped on drop).
    pub pin: Zeroizing<String>,
    /// The AES key's `CKA_LABEL`.
    pub key_label: String,
}

impl fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("lib", &self.lib)
            .field("token", &self.token)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

/// An open, logged-in session with the wrapping key found.
pub struct Hsm {
    /// One session, used by one caller at a time (a `Session` is not `Sync`).
    session: Mutex<Session>,
    /// The wrapping key's label. The key is looked up for every operation: an object handle
    /// kept from `open` is not stable (SoftHSM2 re-indexes its objects when the token file
    /// changes, which its own login does, and the old handle then names another object:
    /// "invalid mechanism" on a later encrypt, seen in t102).
    key_label: String,
    /// Keeps the module loaded for as long as the session lives.
    _context: Pkcs11,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hsm(<open>)")
    }
}

fn op_error(err: CkError) -> HsmError {
    HsmError::Operation(err.to_string())
}

/// Loads the module, finds the token, opens a read-write session and logs in as the user.
fn open_session(settings: &Pkcs11Settings) -> Result<(Pkcs11, Session), HsmError> {
    let library_error = |reason: String| HsmError::Library {
        path: settings.lib.display().to_string(),
        reason,
    };
    if !settings.lib.is_file() {
        return Err(library_error("no such file".into()));
    }
    let context = Pkcs11::new(&settings.lib).map_err(|err| library_error(err.to_string()))?;
    match context.initialize(CInitializeArgs::OsThreads) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(err) => return Err(library_error(err.to_string())),
    }
    let slot = find_slot(&context, &settings.token)?;
    let token = settings.token.to_string();
    let session = context.open_rw_session(slot).map_err(op_error)?;
    let pin = AuthPin::new(settings.pin.as_str().to_owned());
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
            return Err(HsmError::PinIncorrect(token));
        }
        Err(err) => {
            return Err(HsmError::Login {
                token,
                reason: err.to_string(),
            });
        }
    }
    Ok((context, session))
}

fn find_slot(context: &Pkcs11, token: &TokenSelector) -> Result<Slot, HsmError> {
    let slots = context.get_slots_with_token().map_err(op_error)?;
    for slot in slots {
        let matches = match token {
            TokenSelector::Slot(id) => slot.id() == *id,
            TokenSelector::Label(label) => context
                .get_token_info(slot)
                .is_ok_and(|info| info.label().trim_end() == label.as_str()),
        };
        if matches {
            return Ok(slot);
        }
    }
    Err(HsmError::TokenNotFound(token.to_string()))
}

/// Refuses a key whose `CKA_VALUE_LEN` is not an AES key size (see [`HsmError::KeyLength`]).
fn check_key_length(session: &Session, key: ObjectHandle, label: &str) -> Result<(), HsmError> {
    let attributes = session
        .get_attributes(key, &[AttributeType::ValueLen])
        .map_err(op_error)?;
    let bytes = attributes.iter().find_map(|attribute| match attribute {
        Attribute::ValueLen(len) => Some(u64::from(*len)),
        _ => None,
    });
    match bytes {
        Some(16 | 24 | 32) | None => Ok(()),
        Some(bytes) => Err(HsmError::KeyLength {
            label: label.to_string(),
            bytes,
        }),
    }
}

fn key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

impl Hsm {
    /// Opens the token and finds the wrapping key.
    ///
    /// # Errors
    ///
    /// [`HsmError::Library`], [`HsmError::TokenNotFound`], [`HsmError::PinIncorrect`] /
    /// [`HsmError::Login`], [`HsmError::KeyNotFound`] / [`HsmError::KeyAmbiguous`].
    pub fn open(settings: &Pkcs11Settings) -> Result<Self, HsmError> {
        let (context, session) = open_session(settings)?;
        let found = session
            .find_objects(&key_template(&settings.key_label))
            .map_err(op_error)?;
        match found.as_slice() {
            [key] => check_key_length(&session, *key, &settings.key_label)?,
            [] => {
                return Err(HsmError::KeyNotFound {
                    label: settings.key_label.clone(),
                    token: settings.token.to_string(),
                });
            }
            _ => return Err(HsmError::KeyAmbiguous(settings.key_label.clone())),
        }
        Ok(Hsm {
            session: Mutex::new(session),
            key_label: settings.key_label.clone(),
            _context: context,
        })
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The wrapping key's handle in `session`, found by its label now.
    fn key(&self, session: &Session) -> Result<ObjectHandle, HsmError> {
        let found = session
            .find_objects(&key_template(&self.key_label))
            .map_err(op_error)?;
        match found.as_slice() {
            [key] => Ok(*key),
            [] => Err(HsmError::Operation(format!(
                "the key labelled {:?} is no longer on the token",
                self.key_label
            ))),
            _ => Err(HsmError::KeyAmbiguous(self.key_label.clone())),
        }
    }

    /// Encrypts `plaintext` with the HSM key (AES-GCM, random IV, `aad` authenticated).
    ///
    /// # Errors
    ///
    /// [`HsmError::Operation`] if the token refuses.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HsmError> {
        let mut iv = *random_bytes::<IV_LEN>();
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(op_error)?;
        let session = self.session();
        let key = self.key(&session)?;
        let ciphertext = session
            .encrypt(&Mechanism::AesGcm(params), key, plaintext)
            .map_err(op_error)?;
        drop(session);
        let mut blob = Vec::with_capacity(1 + IV_LEN + ciphertext.len());
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Decrypts a blob made by [`Hsm::encrypt`] with the same `aad`.
    ///
    /// # Errors
    ///
    /// [`HsmError::BadBlob`] if the blob is malformed or does not authenticate (another key, other
    /// AAD, tampering); [`HsmError::Operation`] for other token failures.
    pub fn decrypt(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, HsmError> {
        let tag_len = usize::try_from(TAG_BITS / 8).unwrap_or(16);
        if blob.len() < 1 + IV_LEN + tag_len || blob[0] != BLOB_VERSION {
            return Err(HsmError::BadBlob);
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&blob[1..=IV_LEN]);
        let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(op_error)?;
        let session = self.session();
        let key = self.key(&session)?;
        match session.decrypt(&Mechanism::AesGcm(params), key, &blob[1 + IV_LEN..]) {
            Ok(plaintext) => Ok(Zeroizing::new(plaintext)),
            // A failed tag check is CKR_ENCRYPTED_DATA_INVALID by the standard; SoftHSM2 answers
            // CKR_GENERAL_ERROR (its OpenSSL DecryptFinal failed), which the token gives for
            // nothing else on a decrypt whose session and key are already open.
            Err(CkError::Pkcs11(
                RvError::EncryptedDataInvalid
                | RvError::GeneralError
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            )) => Err(HsmError::BadBlob),
            Err(err) => Err(op_error(err)),
        }
    }

    /// Wraps the unseal key for storage at [`HSM_UNSEAL_KEY_PATH`].
    ///
    /// # Errors
    ///
    /// [`HsmError::Operation`] if the token refuses.
    pub fn wrap_unseal_key(&self, key: &UnsealKey) -> Result<Vec<u8>, HsmError> {
        self.encrypt(HSM_UNSEAL_KEY_PATH.as_bytes(), key.as_bytes())
    }

    /// Recovers the unseal key stored by [`Hsm::wrap_unseal_key`].
    ///
    /// # Errors
    ///
    /// [`HsmError::BadBlob`] if it does not decrypt to a key; token failures as [`Hsm::decrypt`].
    pub fn unwrap_unseal_key(&self, blob: &[u8]) -> Result<UnsealKey, HsmError> {
        let plaintext = self.decrypt(HSM_UNSEAL_KEY_PATH.as_bytes(), blob)?;
        if plaintext.len() != KEY_LEN {
            return Err(HsmError::BadBlob);
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&plaintext);
        Ok(UnsealKey::from_bytes(key))
    }
}

/// Creates a persistent, non-extractable AES-256 key with `key_label` on the token (an operator
/// or test convenience: production keys are usually made with the HSM vendor's tools). Returns
/// `false` if a key with that label already exists.
///
/// # Errors
///
/// As [`Hsm::open`] for the token; [`HsmError::Operation`] if key generation fails.
pub fn generate_key(settings: &Pkcs11Settings) -> Result<bool, HsmError> {
    let (_context, session) = open_session(settings)?;
    let existing = session
        .find_objects(&key_template(&settings.key_label))
        .map_err(op_error)?;
    if !existing.is_empty() {
        return Ok(false);
    }
    let template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::ValueLen(32.into()),
        Attribute::Label(settings.key_label.as_bytes().to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(op_error)?;
    Ok(true)
}

/// Deletes every AES key labelled `key_label` (tests and drills: simulates a lost HSM key).
/// Returns how many were removed.
///
/// # Errors
///
/// As [`Hsm::open`] for the token; [`HsmError::Operation`] if deletion fails.
pub fn destroy_key(settings: &Pkcs11Settings) -> Result<usize, HsmError> {
    let (_context, session) = open_session(settings)?;
    let found = session
        .find_objects(&key_template(&settings.key_label))
        .map_err(op_error)?;
    for key in &found {
        session.destroy_object(*key).map_err(op_error)?;
    }
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    //! These tests need SoftHSM2 (`scripts/setup.sh` installs it). The PKCS#11 module reads its
    //! configuration (`SOFTHSM2_CONF`) from the environment once per process, and finalizes on
    //! drop, so the real work runs in a child process of this test binary with its own
    //! configuration and token directory (no `set_var` in a threaded test runner).

    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::seal::{RootKey, generate, unwrap_root_key, wrap_root_key};

    const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";
    const CHILD_MARKER: &str = "STRONGROOM_PKCS11_TEST_DIR";
    const PIN: &str = "4711-user-pin";

    fn softhsm_available() -> bool {
        Path::new(SOFTHSM_LIB).is_file()
            && Command::new("softhsm2-util")
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success())
    }

    /// Writes a SoftHSM2 config with its own token dir under `dir` and initializes a token.
    fn make_token(dir: &Path, label: &str) -> PathBuf {
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", "so-pin-0815"])
            .output()
            .unwrap();
        assert!(out.status.success(), "softhsm2-util: {out:?}");
        conf
    }

    fn settings(label: &str, pin: &str, key_label: &str) -> Pkcs11Settings {
        Pkcs11Settings {
            lib: PathBuf::from(SOFTHSM_LIB),
            token: TokenSelector::Label(label.into()),
            pin: Zeroizing::new(pin.into()),
            key_label: key_label.into(),
        }
    }

    #[test]
    fn softhsm2_wraps_and_unwraps_the_unseal_key() {
        assert!(
            softhsm_available(),
            "softhsm2 is not installed: run scripts/setup.sh"
        );
        let dir = tempfile::tempdir().unwrap();
        let conf = make_token(dir.path(), "strongroom-unit");
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args([
                "seal::pkcs11::tests::softhsm2_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .env(CHILD_MARKER, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{stderr}"
        );
        assert!(!stdout.contains(PIN) && !stderr.contains(PIN));
    }

    /// The body of [`softhsm2_wraps_and_unwraps_the_unseal_key`], run only as its child.
    #[test]
    #[ignore = "run by softhsm2_wraps_and_unwraps_the_unseal_key in a child process"]
    fn softhsm2_child() {
        let Some(dir) = std::env::var_os(CHILD_MARKER).map(PathBuf::from) else {
            println!(
                "skipped: runs only as the child of softhsm2_wraps_and_unwraps_the_unseal_key"
            );
            return;
        };
        let good = settings("strongroom-unit", PIN, "unseal-wrap");

        // No key yet: a clear error naming the label.
        let err = Hsm::open(&good).unwrap_err();
        assert!(matches!(err, HsmError::KeyNotFound { .. }), "{err}");
        assert!(err.to_string().contains("unseal-wrap"));
        assert!(generate_key(&good).unwrap());
        assert!(!generate_key(&good).unwrap(), "second call finds the key");

        let hsm = Hsm::open(&good).unwrap();
        let (unseal, _, _) = generate(5, 3).unwrap();
        let root = RootKey::generate();
        let root_blob = wrap_root_key(&unseal, &root);
        let blob = hsm.wrap_unseal_key(&unseal).unwrap();
        assert_eq!(blob.len(), 1 + IV_LEN + KEY_LEN + 16);
        assert!(!blob.windows(KEY_LEN).any(|w| w == unseal.as_bytes()));
        assert_ne!(blob, hsm.wrap_unseal_key(&unseal).unwrap(), "fresh IV");
        let back = hsm.unwrap_unseal_key(&blob).unwrap();
        assert!(back.ct_eq(&unseal));
        assert_eq!(
            unwrap_root_key(&back, &root_blob).unwrap().as_bytes(),
            root.as_bytes()
        );

        // Tampering, another AAD, truncation and a wrong version are refused.
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            hsm.unwrap_unseal_key(&flipped),
            Err(HsmError::BadBlob)
        ));
        let other_aad = hsm.encrypt(b"elsewhere", unseal.as_bytes()).unwrap();
        assert!(matches!(
            hsm.unwrap_unseal_key(&other_aad),
            Err(HsmError::BadBlob)
        ));
        assert!(matches!(
            hsm.unwrap_unseal_key(&blob[..20]),
            Err(HsmError::BadBlob)
        ));
        let mut version = blob.clone();
        version[0] = 9;
        assert!(matches!(
            hsm.unwrap_unseal_key(&version),
            Err(HsmError::BadBlob)
        ));
        drop(hsm);

        // A key of a length AES does not have (as softhsm2-util 2.6.1's import makes from a
        // key file with a newline in it) is refused at open, not by every later encrypt.
        let (_context, session) = open_session(&good).unwrap();
        session
            .create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Value(vec![7; 9]),
                Attribute::Label(b"short-key".to_vec()),
            ])
            .unwrap();
        drop(session);
        let err = Hsm::open(&settings("strongroom-unit", PIN, "short-key")).unwrap_err();
        assert!(matches!(err, HsmError::KeyLength { bytes: 9, .. }), "{err}");
        assert!(err.to_string().contains("short-key"), "{err}");

        // Wrong PIN, unknown token, missing library, and the slot selector.
        let err = Hsm::open(&settings("strongroom-unit", "0000-wrong", "unseal-wrap")).unwrap_err();
        assert!(matches!(err, HsmError::PinIncorrect(_)), "{err}");
        assert!(err.is_configuration_error());
        assert!(!err.to_string().contains("0000-wrong") && !err.to_string().contains(PIN));
        let err = Hsm::open(&settings("no-such-token", PIN, "unseal-wrap")).unwrap_err();
        assert!(matches!(err, HsmError::TokenNotFound(_)), "{err}");
        assert!(err.to_string().contains("no-such-token"));
        let mut missing = settings("strongroom-unit", PIN, "unseal-wrap");
        missing.lib = dir.join("nope.so");
        let err = Hsm::open(&missing).unwrap_err();
        assert!(matches!(err, HsmError::Library { .. }), "{err}");
        assert!(err.to_string().contains("nope.so"));
        let mut by_slot = settings("strongroom-unit", PIN, "unseal-wrap");
        by_slot.token = TokenSelector::Slot(u64::MAX);
        assert!(matches!(
            Hsm::open(&by_slot),
            Err(HsmError::TokenNotFound(_))
        ));
        let printed = format!("{good:?}");
        assert!(!printed.contains(PIN) && printed.contains("<redacted>"));

        // A lost key: the old blob can no longer be opened by a fresh key of the same label.
        assert_eq!(destroy_key(&good).unwrap(), 1);
        assert!(matches!(
            Hsm::open(&good),
            Err(HsmError::KeyNotFound { .. })
        ));
        assert!(generate_key(&good).unwrap());
        let replaced = Hsm::open(&good).unwrap();
        assert!(matches!(
            replaced.unwrap_unseal_key(&blob),
            Err(HsmError::BadBlob)
        ));
    }
}
