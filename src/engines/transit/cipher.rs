//! Encryption and decryption with one key version, and the `vault:v<N>:<base64>` wire format.
//!
//! AEAD types produce Vault's layout, `nonce(12) || ciphertext || tag(16)`, so an exported
//! `aes256-gcm96` key decrypts them with any AES-GCM implementation. The nonce is random, or for
//! convergent keys HMAC-SHA256(HKDF(hmac key, context), plaintext)[..12]. RSA keys use
//! RSA-OAEP with SHA-256 (and MGF1-SHA-256), as Vault does.

use aes_gcm::aead::Aead;
use aes_gcm::aead::KeyInit;
use aes_gcm::aead::Payload;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::pkcs8::DecodePrivateKey;
use p256::pkcs8::DecodePublicKey;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use super::hashing::HashAlg;
use super::hashing::hkdf_sha256;
use super::internal;
use super::keytype::KeyType;
use super::material;
use super::policy::KeyPolicy;
use super::policy::KeyVersion;
use crate::logical::LogicalError;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Vault's message when the AEAD tag does not verify.
pub const ERR_AUTH: &str = "cipher: message authentication failed";

/// What one encryption or decryption needs besides the data.
#[derive(Default)]
pub struct CipherInput<'a> {
    /// The derivation context (required for derived keys).
    pub context: &'a [u8],
    /// Additional authenticated data (AEAD types only).
    pub associated_data: &'a [u8],
}

/// `vault:v<version>:<base64 payload>`.
pub fn format_versioned(version: u32, payload: &[u8]) -> String {
    format!("vault:v{version}:{}", B64.encode(payload))
}

/// Splits `vault:v<N>:<payload>` into the version and the still-encoded payload. `what` names the
/// value in errors (`ciphertext`, `signature`, `hmac`).
pub fn parse_versioned<'a>(value: &'a str, what: &str) -> Result<(u32, &'a str), LogicalError> {
    let rest = value
        .strip_prefix("vault:")
        .ok_or_else(|| LogicalError::invalid(format!("invalid {what}: no prefix")))?;
    let (version, payload) = rest
        .split_once(':')
        .ok_or_else(|| LogicalError::invalid(format!("invalid {what}: wrong number of fields")))?;
    let version: u32 = version
        .strip_prefix('v')
        .and_then(|digits| {
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse().ok())
                .flatten()
        })
        .filter(|version| *version > 0)
        .ok_or_else(|| {
            LogicalError::invalid(format!(
                "invalid {what}: version number could not be decoded"
            ))
        })?;
    Ok((version, payload))
}

/// Decodes a `vault:v<N>:` ciphertext into its version and raw bytes.
pub fn parse_ciphertext(value: &str) -> Result<(u32, Vec<u8>), LogicalError> {
    let (version, payload) = parse_versioned(value, "ciphertext")?;
    let bytes = B64
        .decode(payload)
        .map_err(|_| LogicalError::invalid("invalid ciphertext: could not decode base64"))?;
    Ok((version, bytes))
}

/// Encrypts `plaintext` with version `version` of `policy`; returns the `vault:` ciphertext.
pub fn encrypt(
    policy: &KeyPolicy,
    version: u32,
    plaintext: &[u8],
    input: &CipherInput<'_>,
) -> Result<String, LogicalError> {
    let entry = policy
        .versions
        .get(&version)
        .ok_or_else(|| LogicalError::invalid("key version not found"))?;
    let kind = policy.key_type;
    let raw = if kind.is_aead() {
        let key = material::working_key(kind, policy.derived, entry, input.context)?;
        let nonce = if policy.convergent_encryption {
            convergent_nonce(entry, input.context, plaintext)
        } else {
            material::random(NONCE_LEN)
        };
        let mut out = nonce.to_vec();
        out.extend(aead_seal(
            kind,
            &key,
            &nonce,
            plaintext,
            input.associated_data,
        )?);
        out
    } else if kind.rsa_bits().is_some() {
        refuse_associated_data(input)?;
        let public = rsa::PublicKey::from_public_key_der(&entry.public_key)
            .map_err(|_| internal("RSA public key decoding"))?;
        public
            .encrypt(
                &mut SysRng,
                rsa::oaep::Oaep::<sha2::Sha256>::new(),
                plaintext,
            )
            .map_err(|_| LogicalError::invalid("plaintext is too long for this RSA key"))?
    } else {
        return Err(LogicalError::invalid(format!(
            "key type {} does not support encryption",
            kind.name()
        )));
    };
    Ok(format_versioned(version, &raw))
}

/// Decrypts a `vault:` ciphertext with `policy`, enforcing `min_decryption_version`; returns the
/// plaintext and the version that decrypted it.
pub fn decrypt(
    policy: &KeyPolicy,
    ciphertext: &str,
    input: &CipherInput<'_>,
) -> Result<(Zeroizing<Vec<u8>>, u32), LogicalError> {
    let kind = policy.key_type;
    if !kind.supports_encryption() {
        return Err(LogicalError::invalid(format!(
            "key type {} does not support decryption",
            kind.name()
        )));
    }
    let (version, raw) = parse_ciphertext(ciphertext)?;
    let entry = policy.decryption_version(version)?;
    if kind.is_aead() {
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(LogicalError::invalid("invalid ciphertext: too short"));
        }
        let key = material::working_key(kind, policy.derived, entry, input.context)?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let plaintext = aead_open(kind, &key, nonce, sealed, input.associated_data)?;
        return Ok((plaintext, version));
    }
    refuse_associated_data(input)?;
    let private = rsa::PrivateKey::from_pkcs8_der(entry.key.expose())
        .map_err(|_| internal("RSA key decoding"))?;
    let plaintext = private
        .decrypt_blinded(&mut SysRng, rsa::oaep::Oaep::<sha2::Sha256>::new(), &raw)
        .map_err(|_| LogicalError::invalid("invalid ciphertext: could not decrypt"))?;
    Ok((Zeroizing::new(plaintext), version))
}

fn refuse_associated_data(input: &CipherInput<'_>) -> Result<(), LogicalError> {
    if input.associated_data.is_empty() {
        Ok(())
    } else {
        Err(LogicalError::invalid(
            "associated_data is only supported by AEAD key types",
        ))
    }
}

fn convergent_nonce(entry: &KeyVersion, context: &[u8], plaintext: &[u8]) -> Zeroizing<Vec<u8>> {
    let nonce_key = hkdf_sha256(entry.hmac_key.expose(), context, 32);
    let mut nonce = HashAlg::Sha2_256.hmac(&nonce_key, plaintext);
    nonce.truncate(NONCE_LEN);
    Zeroizing::new(nonce)
}

fn aead_seal(
    kind: KeyType,
    key: &[u8],
    nonce: &[u8],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, LogicalError> {
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    let too_long = |_| LogicalError::invalid("plaintext is too long");
    let bad_key = |_| internal("AEAD key setup");
    match kind {
        KeyType::Aes128Gcm96 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(nonce_of(nonce)?, payload)
            .map_err(too_long),
        KeyType::Aes256Gcm96 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(nonce_of(nonce)?, payload)
            .map_err(too_long),
        KeyType::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(nonce_of(nonce)?, payload)
            .map_err(too_long),
        KeyType::Aes256GcmSiv => aes_gcm_siv::Aes256GcmSiv::new_from_slice(key)
            .map_err(bad_key)?
            .encrypt(nonce_of(nonce)?, payload)
            .map_err(too_long),
        _ => Err(internal("AEAD dispatch")),
    }
}

fn aead_open(
    kind: KeyType,
    key: &[u8],
    nonce: &[u8],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LogicalError> {
    let payload = Payload { msg: sealed, aad };
    let failed = |_| LogicalError::invalid(ERR_AUTH);
    let bad_key = |_| internal("AEAD key setup");
    let plaintext = match kind {
        KeyType::Aes128Gcm96 => aes_gcm::Aes128Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(nonce_of(nonce)?, payload)
            .map_err(failed)?,
        KeyType::Aes256Gcm96 => aes_gcm::Aes256Gcm::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(nonce_of(nonce)?, payload)
            .map_err(failed)?,
        KeyType::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(nonce_of(nonce)?, payload)
            .map_err(failed)?,
        KeyType::Aes256GcmSiv => aes_gcm_siv::Aes256GcmSiv::new_from_slice(key)
            .map_err(bad_key)?
            .decrypt(nonce_of(nonce)?, payload)
            .map_err(failed)?,
        _ => return Err(internal("AEAD dispatch")),
    };
    Ok(Zeroizing::new(plaintext))
}

/// A 96-bit nonce as the AEAD crates' array type (all four share `aead 0.6`'s `Nonce<U12>`).
fn nonce_of(nonce: &[u8]) -> Result<&aes_gcm::Nonce<aes_gcm::aead::consts::U12>, LogicalError> {
    <&[u8; NONCE_LEN]>::try_from(nonce)
        .map(Into::into)
        .map_err(|_| LogicalError::invalid("invalid ciphertext: bad nonce"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::transit::test_util;

    #[test]
    fn versioned_strings_parse_strictly() {
        assert_eq!(parse_versioned("vault:v12:abc", "x").unwrap(), (12, "abc"));
        for bad in [
            "v1:abc",
            "vault:v1",
            "vault:1:abc",
            "vault:v0:abc",
            "vault:v:abc",
            "vault:v-1:abc",
            "vault:v+1:abc",
            "vault:v99999999999:abc",
        ] {
            assert!(parse_versioned(bad, "ciphertext").is_err(), "{bad}");
        }
        assert!(parse_ciphertext("vault:v1:!!!").is_err());
    }

    #[test]
    fn every_encryption_type_round_trips_with_aad() {
        for kind in [
            KeyType::Aes128Gcm96,
            KeyType::Aes256Gcm96,
            KeyType::ChaCha20Poly1305,
            KeyType::Aes256GcmSiv,
        ] {
            let policy = test_util::policy(kind);
            let input = CipherInput {
                associated_data: b"aad",
                ..CipherInput::default()
            };
            let ciphertext = encrypt(&policy, 1, b"hello", &input).unwrap();
            assert!(ciphertext.starts_with("vault:v1:"));
            let (plaintext, version) = decrypt(&policy, &ciphertext, &input).unwrap();
            assert_eq!((plaintext.as_slice(), version), (&b"hello"[..], 1));
            let wrong_aad = CipherInput {
                associated_data: b"other",
                ..CipherInput::default()
            };
            let err = decrypt(&policy, &ciphertext, &wrong_aad).unwrap_err();
            assert_eq!(err.to_string(), ERR_AUTH, "{kind:?}");
        }
    }

    #[test]
    fn aes_gcm_layout_is_vaults_nonce_ciphertext_tag() {
        let policy = test_util::policy(KeyType::Aes256Gcm96);
        let ciphertext = encrypt(&policy, 1, b"abc", &CipherInput::default()).unwrap();
        let (_, raw) = parse_ciphertext(&ciphertext).unwrap();
        assert_eq!(raw.len(), NONCE_LEN + 3 + TAG_LEN);
        let key = policy.latest().unwrap().key.expose().to_vec();
        let opened = aes_gcm::Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .decrypt(nonce_of(&raw[..NONCE_LEN]).unwrap(), &raw[NONCE_LEN..])
            .unwrap();
        assert_eq!(opened, b"abc");
    }

    /// AES-256-GCM test case 16 of McGrew & Viega's GCM specification (the NIST vectors), laid
    /// out as Vault's `nonce || ciphertext || tag`: our decryption agrees with the standard.
    #[test]
    fn decrypts_the_published_gcm_test_vector() {
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .unwrap();
        if let Some(entry) = policy.versions.get_mut(&1) {
            entry.key = crate::engines::transit::policy::SecretBytes::new(key);
        }
        let raw = hex::decode(concat!(
            "cafebabefacedbaddecaf888",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ))
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let input = CipherInput {
            associated_data: &aad,
            ..CipherInput::default()
        };
        let (plaintext, _) = decrypt(&policy, &format_versioned(1, &raw), &input).unwrap();
        assert_eq!(
            hex::encode(plaintext.as_slice()),
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        );
    }

    #[test]
    fn truncated_and_tampered_ciphertexts_fail_cleanly() {
        let policy = test_util::policy(KeyType::Aes256Gcm96);
        let none = CipherInput::default();
        let ciphertext = encrypt(&policy, 1, b"abcdef", &none).unwrap();
        let (_, raw) = parse_ciphertext(&ciphertext).unwrap();
        for cut in [0, 5, NONCE_LEN + TAG_LEN - 1] {
            let short = format_versioned(1, &raw[..cut]);
            assert!(decrypt(&policy, &short, &none).is_err());
        }
        let mut flipped = raw.clone();
        flipped[NONCE_LEN] ^= 1;
        let err = decrypt(&policy, &format_versioned(1, &flipped), &none).unwrap_err();
        assert_eq!(err.to_string(), ERR_AUTH);
    }

    #[test]
    fn rsa_oaep_round_trips() {
        let policy = test_util::policy(KeyType::Rsa2048);
        let none = CipherInput::default();
        let ciphertext = encrypt(&policy, 1, b"secret", &none).unwrap();
        let (plaintext, _) = decrypt(&policy, &ciphertext, &none).unwrap();
        assert_eq!(plaintext.as_slice(), b"secret");
        let aad = CipherInput {
            associated_data: b"x",
            ..CipherInput::default()
        };
        assert!(encrypt(&policy, 1, b"secret", &aad).is_err());
    }

    #[test]
    fn convergent_encryption_is_deterministic_per_context() {
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        policy.derived = true;
        policy.convergent_encryption = true;
        let a = CipherInput {
            context: b"ctx-a",
            ..CipherInput::default()
        };
        let b = CipherInput {
            context: b"ctx-b",
            ..CipherInput::default()
        };
        let first = encrypt(&policy, 1, b"same", &a).unwrap();
        assert_eq!(first, encrypt(&policy, 1, b"same", &a).unwrap());
        assert_ne!(first, encrypt(&policy, 1, b"same", &b).unwrap());
        assert_ne!(first, encrypt(&policy, 1, b"other", &a).unwrap());
        assert!(decrypt(&policy, &first, &b).is_err());
        assert_eq!(decrypt(&policy, &first, &a).unwrap().0.as_slice(), b"same");
    }
}
