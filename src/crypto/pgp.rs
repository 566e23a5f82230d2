//! OpenPGP encryption of unseal key shares and root tokens to their holders' public keys, as
//! Vault's `pgp_keys`, `root_token_pgp_key` and generate-root `pgp_key` do.
//!
//! A key is given as Vault takes it: the standard base64 of a binary OpenPGP public key
//! (an ASCII-armored key inside the base64 is accepted too). `keybase:<user>` is refused: this
//! server does not look keys up on the network. A key is accepted only if its self-signatures
//! verify, it has not expired and it has a usable encryption key: the newest subkey whose binding
//! signature allows encryption (not revoked, not expired), else the primary key if its flags
//! allow it. Parsing ends with a trial encryption, so a key that parsed can be encrypted to
//! afterwards (the share encryption after `sys/init` commits cannot fail on the key).
//!
//! Messages are what go-crypto's `openpgp.Encrypt` produces for Vault: a public-key encrypted
//! session key (v3) and a SEIPDv1 (AES-256, MDC) container with one binary literal packet, which
//! `gpg -d` and every OpenPGP implementation decrypt. The caller chooses the plaintext: Vault
//! encrypts the hex of each share, and the raw root token.
//!
//! Errors say what is wrong with the key, never anything about the plaintext. The `pgp` crate
//! copies the plaintext into its own buffers, which it does not wipe.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pgp::composed::Deserializable as _;
use pgp::composed::MessageBuilder;
use pgp::composed::SignedPublicKey;
use pgp::composed::SignedPublicSubKey;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::packet::SignatureType;
use pgp::types::KeyDetails as _;
use pgp::types::PublicKeyTrait;

/// Why a public key cannot be used. Messages describe the key only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgpError {
    /// A `keybase:<user>` reference.
    #[error(
        "keybase users are not supported; give the base64 of the binary OpenPGP public key instead"
    )]
    Keybase,
    /// Not standard base64.
    #[error("not valid base64 (the base64 of a binary OpenPGP public key is expected)")]
    NotBase64,
    /// The decoded bytes are not an OpenPGP public key (a secret key is refused too).
    #[error("not an OpenPGP public key")]
    NotAPublicKey,
    /// The key's self-signatures do not verify.
    #[error("the key's self-signatures do not verify")]
    BadSelfSignature,
    /// The primary key has expired.
    #[error("the key has expired")]
    Expired,
    /// Neither a subkey nor the primary key may encrypt.
    #[error("the key has no valid encryption-capable key or subkey")]
    NoEncryptionKey,
    /// The encryption itself failed (an algorithm or curve this server cannot encrypt to).
    #[error("cannot encrypt to this key: {0}")]
    Encrypt(String),
}

/// Which component of the certificate messages are encrypted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Primary,
    Subkey(usize),
}

/// A holder's public key, checked and ready to encrypt to.
#[derive(Clone)]
pub struct RecipientKey {
    key: SignedPublicKey,
    target: Target,
    fingerprint: String,
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RecipientKey {
    /// Parses and checks one key as Vault's API takes it (base64 of a binary public key).
    pub fn parse(encoded: &str) -> Result<RecipientKey, PgpError> {
        let encoded = encoded.trim();
        if encoded.starts_with("keybase:") {
            return Err(PgpError::Keybase);
        }
        let bytes = STANDARD.decode(encoded).map_err(|_| PgpError::NotBase64)?;
        RecipientKey::from_key_bytes(&bytes)
    }

    /// Parses and checks a binary or ASCII-armored public key.
    pub fn from_key_bytes(bytes: &[u8]) -> Result<RecipientKey, PgpError> {
        let (key, _) =
            SignedPublicKey::from_reader_single(bytes).map_err(|_| PgpError::NotAPublicKey)?;
        key.verify().map_err(|_| PgpError::BadSelfSignature)?;
        let now = crate::logical::time::now_nanos() / 1_000_000_000;
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if key.expires_at().is_some_and(|at| at.timestamp() <= now) {
            return Err(PgpError::Expired);
        }
        let target = select_target(&key, now)?;
        let fingerprint = format!("{:x}", key.fingerprint());
        let recipient = RecipientKey {
            key,
            target,
            fingerprint,
        };
        recipient.encrypt(b"probe")?;
        Ok(recipient)
    }

    /// The primary key's fingerprint in lowercase hex, as Vault reports `pgp_fingerprints`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The binary OpenPGP message encrypting `plaintext` to this key.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, PgpError> {
        let failed = |err: pgp::errors::Error| PgpError::Encrypt(err.to_string());
        let mut rng = rand08::rngs::OsRng;
        let mut builder = MessageBuilder::from_bytes("", plaintext.to_vec())
            .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
        match self.target {
            Target::Primary => builder.encrypt_to_key(&mut rng, &self.key.primary_key),
            Target::Subkey(index) => {
                let Some(subkey) = self.key.public_subkeys.get(index) else {
                    return Err(PgpError::NoEncryptionKey);
                };
                builder.encrypt_to_key(&mut rng, subkey)
            }
        }
        .map_err(failed)?;
        builder.to_vec(rng).map_err(failed)
    }

    /// The public key as binary OpenPGP, standard base64: Vault's API format (the CLI turns an
    /// armored key file into this).
    pub fn to_base64(&self) -> Result<String, PgpError> {
        use pgp::ser::Serialize as _;
        let bytes = self
            .key
            .to_bytes()
            .map_err(|err| PgpError::Encrypt(err.to_string()))?;
        Ok(STANDARD.encode(bytes))
    }
}

/// Reads a key file as Vault's CLI does: an armored or binary public key, or a file that
/// already holds the base64 of a binary key. Returns the key checked.
pub fn read_key_file(path: &std::path::Path) -> Result<RecipientKey, std::io::Error> {
    let bytes = std::fs::read(path)?;
    let parsed =
        RecipientKey::from_key_bytes(&bytes).or_else(|first| match std::str::from_utf8(&bytes) {
            Ok(text) if !text.trim().is_empty() => {
                let compact: String = text.split_whitespace().collect();
                match RecipientKey::parse(&compact) {
                    Err(PgpError::NotBase64) => Err(first),
                    other => other,
                }
            }
            _ => Err(first),
        });
    parsed.map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

/// The newest usable encryption subkey, else the primary key if it may encrypt.
fn select_target(key: &SignedPublicKey, now: i64) -> Result<Target, PgpError> {
    let best = key
        .public_subkeys
        .iter()
        .enumerate()
        .filter(|(_, subkey)| subkey_may_encrypt(subkey, now))
        .max_by_key(|(_, subkey)| subkey.key.created_at().timestamp());
    if let Some((index, _)) = best {
        return Ok(Target::Subkey(index));
    }
    let primary_flags_allow = key
        .details
        .users
        .iter()
        .flat_map(|user| &user.signatures)
        .chain(&key.details.direct_signatures)
        .any(|sig| {
            let flags = sig.key_flags();
            flags.encrypt_comms() || flags.encrypt_storage()
        });
    if key.primary_key.is_encryption_key() && primary_flags_allow {
        return Ok(Target::Primary);
    }
    Err(PgpError::NoEncryptionKey)
}

/// Whether a subkey's algorithm can encrypt and its newest binding signature allows it (not
/// revoked, not expired).
fn subkey_may_encrypt(subkey: &SignedPublicSubKey, now: i64) -> bool {
    if !subkey.key.is_encryption_key() {
        return false;
    }
    if subkey
        .signatures
        .iter()
        .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return false;
    }
    let Some(binding) = subkey
        .signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|sig| sig.created().map(|at| at.timestamp()))
    else {
        return false;
    };
    let flags = binding.key_flags();
    if !(flags.encrypt_comms() || flags.encrypt_storage()) {
        return false;
    }
    match binding.key_expiration_time() {
        Some(validity) if validity.num_seconds() > 0 => {
            subkey.key.created_at().timestamp() + validity.num_seconds() > now
        }
        _ => true,
    }
}

/// Test keys and decryption, for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod test_keys {
    use pgp::composed::KeyType;
    use pgp::composed::Message;
    use pgp::composed::SecretKeyParamsBuilder;
    use pgp::composed::SignedSecretKey;
    use pgp::composed::SubkeyParamsBuilder;
    use pgp::crypto::ecc_curve::ECCCurve;
    use pgp::ser::Serialize as _;
    use pgp::types::Password;

    use super::*;

    /// A fresh v4 key: Ed25519 primary (certify only) and, if `encrypt`, a Curve25519 ECDH
    /// encryption subkey. Returns the secret key and the public key as Vault's API takes it.
    pub fn generate(encrypt: bool) -> (SignedSecretKey, String) {
        let mut rng = rand08::rngs::OsRng;
        let mut subkeys = Vec::new();
        if encrypt {
            subkeys.push(
                SubkeyParamsBuilder::default()
                    .key_type(KeyType::ECDH(ECCCurve::Curve25519))
                    .can_encrypt(true)
                    .build()
                    .unwrap(),
            );
        }
        let params = SecretKeyParamsBuilder::default()
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("Strongroom test key (never for real use)".into())
            .subkeys(subkeys)
            .build()
            .unwrap();
        let secret = params
            .generate(rng)
            .unwrap()
            .sign(&mut rng, &Password::empty())
            .unwrap();
        let public = SignedPublicKey::from(secret.clone());
        (secret, STANDARD.encode(public.to_bytes().unwrap()))
    }

    /// Decrypts a binary OpenPGP message with `secret`.
    pub fn decrypt(secret: &SignedSecretKey, message: &[u8]) -> Vec<u8> {
        let mut message = Message::from_bytes(message)
            .unwrap()
            .decrypt(&Password::empty(), secret)
            .unwrap();
        if message.is_compressed() {
            message = message.decompress().unwrap();
        }
        message.as_data_vec().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use pgp::composed::Deserializable as _;

    use super::test_keys::decrypt;
    use super::test_keys::generate;
    use super::*;

    #[test]
    fn encrypts_to_the_holder_only() {
        let (alice, alice_public) = generate(true);
        let (bob, _) = generate(true);
        let key = RecipientKey::parse(&alice_public).unwrap();
        assert_eq!(key.fingerprint().len(), 40);
        assert!(key.fingerprint().chars().all(|c| c.is_ascii_hexdigit()));
        let message = key.encrypt(b"0a1b2c").unwrap();
        assert!(!message.windows(6).any(|w| w == b"0a1b2c"));
        assert_eq!(decrypt(&alice, &message), b"0a1b2c");
        let wrong = pgp::composed::Message::from_bytes(&message[..])
            .unwrap()
            .decrypt(&pgp::types::Password::empty(), &bob);
        assert!(wrong.is_err(), "another key must not decrypt it");
        // Two encryptions of the same plaintext differ (fresh session keys).
        assert_ne!(message, key.encrypt(b"0a1b2c").unwrap());
    }

    #[test]
    fn gnupg_made_keys_work() {
        // A key pair made by GnuPG 2.2 (tests/compat/fixtures, test-only).
        let public = include_str!("../../tests/compat/fixtures/holder1.pub.b64");
        let secret = include_str!("../../tests/compat/fixtures/holder1.sec.asc");
        let key = RecipientKey::parse(public).unwrap();
        assert_eq!(
            key.fingerprint(),
            "8631bedc687e60b6758c97349eb7ff7493bebe2f"
        );
        let (secret, _) =
            pgp::composed::SignedSecretKey::from_reader_single(secret.as_bytes()).unwrap();
        let message = key.encrypt(b"deadbeef").unwrap();
        assert_eq!(decrypt(&secret, &message), b"deadbeef");
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert_eq!(
            RecipientKey::parse("keybase:someone").unwrap_err(),
            PgpError::Keybase
        );
        assert_eq!(
            RecipientKey::parse("not base64!").unwrap_err(),
            PgpError::NotBase64
        );
        assert_eq!(
            RecipientKey::parse(&STANDARD.encode(b"garbage bytes")).unwrap_err(),
            PgpError::NotAPublicKey
        );
        let (_, signing_only) = generate(false);
        assert_eq!(
            RecipientKey::parse(&signing_only).unwrap_err(),
            PgpError::NoEncryptionKey
        );
        // A secret key is not a public key.
        let (secret, _) = generate(true);
        let secret_bytes = {
            use pgp::ser::Serialize as _;
            secret.to_bytes().unwrap()
        };
        assert!(RecipientKey::parse(&STANDARD.encode(secret_bytes)).is_err());
    }

    #[test]
    fn armored_keys_and_key_files_are_accepted() {
        let (secret, public_b64) = generate(true);
        let public = SignedPublicKey::from(secret.clone());
        let armored = public.to_armored_string(Default::default()).unwrap();
        let from_armor = RecipientKey::from_key_bytes(armored.as_bytes()).unwrap();
        assert_eq!(from_armor.to_base64().unwrap(), public_b64);
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("a.asc", armored.into_bytes()),
            ("b.gpg", STANDARD.decode(&public_b64).unwrap()),
            ("c.b64", format!("{public_b64}\n").into_bytes()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            let key = read_key_file(&path).unwrap();
            assert_eq!(key.to_base64().unwrap(), public_b64, "{name}");
        }
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"hello").unwrap();
        assert!(read_key_file(&junk).is_err());
    }
}
