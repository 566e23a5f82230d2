//! Signatures with one key version: Ed25519 (pure, over the input), ECDSA P-256/P-384 over a
//! digest of the input, RSA-PSS and RSA PKCS#1 v1.5 over a digest. Options follow Vault's `sign`:
//! `hash_algorithm`, `prehashed`, `signature_algorithm`, `salt_length`, `marshaling_algorithm`.
//!
//! ECDSA signatures are DER (`asn1`, the default) or `r || s` (`jws`); `jws` also switches the
//! signature's base64 to the URL-safe alphabet without padding, as Vault does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64_URL;
use ed25519_dalek::Signer as _;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::pkcs8::DecodePrivateKey;
use p256::pkcs8::DecodePublicKey;
use rand::rngs::SysRng;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pss::Pss;
use sha2::Digest;

use super::hashing::HashAlg;
use super::internal;
use super::keytype::KeyType;
use super::material;
use super::policy::KeyVersion;
use crate::logical::LogicalError;

/// RSA-PSS salt length (`salt_length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaltLength {
    /// Sign with the largest salt the key allows; verify whatever length was used.
    Auto,
    /// The digest's length.
    Hash,
    /// A fixed number of bytes.
    Bytes(usize),
}

/// How to sign or verify.
#[derive(Debug, Clone, Copy)]
pub struct SignOptions {
    /// The digest (`None` = `none`: the input is signed as is; RSA PKCS#1 v1.5 only).
    pub hash: Option<HashAlg>,
    /// The input is already a digest.
    pub prehashed: bool,
    /// RSA: PSS (default) or PKCS#1 v1.5.
    pub pss: bool,
    /// RSA-PSS salt length.
    pub salt: SaltLength,
    /// `marshaling_algorithm = jws`.
    pub jws: bool,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            hash: Some(HashAlg::Sha2_256),
            prehashed: false,
            pss: true,
            salt: SaltLength::Auto,
            jws: false,
        }
    }
}

impl SignOptions {
    /// Base64 of a raw signature in the chosen marshaling.
    pub fn encode(&self, signature: &[u8]) -> String {
        if self.jws {
            B64_URL.encode(signature)
        } else {
            B64.encode(signature)
        }
    }

    /// Decodes a signature payload; `None` when it is not valid base64.
    pub fn decode(&self, payload: &str) -> Option<Vec<u8>> {
        if self.jws {
            B64_URL.decode(payload).ok()
        } else {
            B64.decode(payload).ok()
        }
    }

    /// What gets signed for ECDSA and RSA: the input (prehashed or `none`) or its digest.
    fn message_digest(&self, input: &[u8]) -> Result<Vec<u8>, LogicalError> {
        match self.hash {
            None => Ok(input.to_vec()),
            Some(hash) if self.prehashed => {
                if input.len() != hash.output_len() {
                    return Err(LogicalError::invalid(format!(
                        "prehashed input must be {} bytes for the chosen hash algorithm",
                        hash.output_len()
                    )));
                }
                Ok(input.to_vec())
            }
            Some(hash) => Ok(hash.digest(input)),
        }
    }
}

/// The Ed25519 signing key for a version and context (derived keys get one per context).
fn ed25519_key(
    entry: &KeyVersion,
    derived: bool,
    context: &[u8],
) -> Result<ed25519_dalek::SigningKey, LogicalError> {
    let seed = material::working_key(KeyType::Ed25519, derived, entry, context)?;
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| internal("Ed25519 key decoding"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed))
}

/// Signs `input`; returns the raw signature and, for derived Ed25519 keys, the public key used.
pub fn sign(
    kind: KeyType,
    entry: &KeyVersion,
    derived: bool,
    context: &[u8],
    input: &[u8],
    options: &SignOptions,
) -> Result<(Vec<u8>, Option<Vec<u8>>), LogicalError> {
    match kind {
        KeyType::Ed25519 => {
            if options.prehashed {
                return Err(LogicalError::invalid(
                    "prehashed input is not supported for ed25519 keys",
                ));
            }
            let key = ed25519_key(entry, derived, context)?;
            let public = derived.then(|| key.verifying_key().to_bytes().to_vec());
            Ok((key.sign(input).to_bytes().to_vec(), public))
        }
        KeyType::EcdsaP256 => {
            let digest = options.message_digest(input)?;
            let key = p256::ecdsa::SigningKey::from_slice(entry.key.expose())
                .map_err(|_| internal("P-256 key decoding"))?;
            let signature: p256::ecdsa::Signature = key
                .sign_prehash(&digest)
                .map_err(|_| LogicalError::invalid("input digest is too short for P-256"))?;
            Ok((ecdsa_bytes_p256(&signature, options.jws), None))
        }
        KeyType::EcdsaP384 => {
            let digest = options.message_digest(input)?;
            let key = p384::ecdsa::SigningKey::from_slice(entry.key.expose())
                .map_err(|_| internal("P-384 key decoding"))?;
            let signature: p384::ecdsa::Signature = key
                .sign_prehash(&digest)
                .map_err(|_| LogicalError::invalid("input digest is too short for P-384"))?;
            let bytes = if options.jws {
                signature.to_bytes().to_vec()
            } else {
                signature.to_der().as_bytes().to_vec()
            };
            Ok((bytes, None))
        }
        kind if kind.rsa_bits().is_some() => {
            let digest = options.message_digest(input)?;
            let private = rsa::PrivateKey::from_pkcs8_der(entry.key.expose())
                .map_err(|_| internal("RSA key decoding"))?;
            let bits = kind.rsa_bits().unwrap_or(2048);
            let signature = rsa_sign(&private, bits, &digest, options)?;
            Ok((signature, None))
        }
        other => Err(LogicalError::invalid(format!(
            "key type {} does not support signing",
            other.name()
        ))),
    }
}

fn ecdsa_bytes_p256(signature: &p256::ecdsa::Signature, jws: bool) -> Vec<u8> {
    if jws {
        signature.to_bytes().to_vec()
    } else {
        signature.to_der().as_bytes().to_vec()
    }
}

/// Checks a raw signature over `input`. `Ok(false)` for a signature that does not verify.
pub fn verify(
    kind: KeyType,
    entry: &KeyVersion,
    derived: bool,
    context: &[u8],
    input: &[u8],
    signature: &[u8],
    options: &SignOptions,
) -> Result<bool, LogicalError> {
    match kind {
        KeyType::Ed25519 => {
            if options.prehashed {
                return Err(LogicalError::invalid(
                    "prehashed input is not supported for ed25519 keys",
                ));
            }
            let public = if derived {
                ed25519_key(entry, true, context)?.verifying_key()
            } else {
                let bytes: &[u8; 32] = entry
                    .public_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| internal("Ed25519 public key decoding"))?;
                ed25519_dalek::VerifyingKey::from_bytes(bytes)
                    .map_err(|_| internal("Ed25519 public key decoding"))?
            };
            let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                return Ok(false);
            };
            Ok(public.verify_strict(input, &signature).is_ok())
        }
        KeyType::EcdsaP256 => {
            let digest = options.message_digest(input)?;
            let public = p256::ecdsa::VerifyingKey::from_public_key_der(&entry.public_key)
                .map_err(|_| internal("P-256 public key decoding"))?;
            let parsed = if options.jws {
                p256::ecdsa::Signature::from_slice(signature)
            } else {
                p256::ecdsa::Signature::from_der(signature)
            };
            Ok(parsed.is_ok_and(|sig| public.verify_prehash(&digest, &sig).is_ok()))
        }
        KeyType::EcdsaP384 => {
            let digest = options.message_digest(input)?;
            let public = p384::ecdsa::VerifyingKey::from_public_key_der(&entry.public_key)
                .map_err(|_| internal("P-384 public key decoding"))?;
            let parsed = if options.jws {
                p384::ecdsa::Signature::from_slice(signature)
            } else {
                p384::ecdsa::Signature::from_der(signature)
            };
            Ok(parsed.is_ok_and(|sig| public.verify_prehash(&digest, &sig).is_ok()))
        }
        kind if kind.rsa_bits().is_some() => {
            let digest = options.message_digest(input)?;
            let public = rsa::PublicKey::from_public_key_der(&entry.public_key)
                .map_err(|_| internal("RSA public key decoding"))?;
            let bits = kind.rsa_bits().unwrap_or(2048);
            rsa_verify(&public, bits, &digest, signature, options)
        }
        other => Err(LogicalError::invalid(format!(
            "key type {} does not support verification",
            other.name()
        ))),
    }
}

/// Runs `$body` with `$d` bound to the digest type of a [`HashAlg`].
macro_rules! with_digest {
    ($alg:expr, $d:ident => $body:expr) => {
        match $alg {
            HashAlg::Sha2_224 => {
                type $d = sha2::Sha224;
                $body
            }
            HashAlg::Sha2_256 => {
                type $d = sha2::Sha256;
                $body
            }
            HashAlg::Sha2_384 => {
                type $d = sha2::Sha384;
                $body
            }
            HashAlg::Sha2_512 => {
                type $d = sha2::Sha512;
                $body
            }
            HashAlg::Sha3_224 => {
                type $d = sha3::Sha3_224;
                $body
            }
            HashAlg::Sha3_256 => {
                type $d = sha3::Sha3_256;
                $body
            }
            HashAlg::Sha3_384 => {
                type $d = sha3::Sha3_384;
                $body
            }
            HashAlg::Sha3_512 => {
                type $d = sha3::Sha3_512;
                $body
            }
        }
    };
}

/// The PSS salt length to sign with: Go's `PSSSaltLengthAuto` is the maximum,
/// `ceil((bits - 1) / 8) - hash_len - 2`.
fn pss_sign_salt(bits: usize, hash: HashAlg, salt: SaltLength) -> Result<usize, LogicalError> {
    let max = (bits - 1)
        .div_ceil(8)
        .checked_sub(hash.output_len() + 2)
        .ok_or_else(|| LogicalError::invalid("hash is too long for this RSA key"))?;
    match salt {
        SaltLength::Auto => Ok(max),
        SaltLength::Hash => Ok(hash.output_len()),
        SaltLength::Bytes(len) if len <= max => Ok(len),
        SaltLength::Bytes(_) => Err(LogicalError::invalid(format!(
            "salt_length must be at most {max} for this key and hash"
        ))),
    }
}

fn rsa_sign(
    private: &rsa::PrivateKey,
    bits: usize,
    digest: &[u8],
    options: &SignOptions,
) -> Result<Vec<u8>, LogicalError> {
    let failed = |_| LogicalError::invalid("RSA signing failed for this input");
    match (options.pss, options.hash) {
        (true, None) => Err(LogicalError::invalid(
            "hash_algorithm none is only supported with signature_algorithm pkcs1v15",
        )),
        (true, Some(hash)) => {
            let salt = pss_sign_salt(bits, hash, options.salt)?;
            with_digest!(hash, D => private
                .sign_with_rng(&mut SysRng, Pss::<D>::new_with_salt(salt), digest)
                .map_err(failed))
        }
        (false, None) => private
            .sign_with_rng(&mut SysRng, Pkcs1v15Sign::new_unprefixed(), digest)
            .map_err(failed),
        (false, Some(hash)) => with_digest!(hash, D => private
            .sign_with_rng(&mut SysRng, Pkcs1v15Sign::new::<D>(), digest)
            .map_err(failed)),
    }
}

fn rsa_verify(
    public: &rsa::PublicKey,
    bits: usize,
    digest: &[u8],
    signature: &[u8],
    options: &SignOptions,
) -> Result<bool, LogicalError> {
    let verified = match (options.pss, options.hash) {
        (true, None) => {
            return Err(LogicalError::invalid(
                "hash_algorithm none is only supported with signature_algorithm pkcs1v15",
            ));
        }
        (true, Some(hash)) => {
            let salt_len = match options.salt {
                SaltLength::Auto => None,
                other => Some(pss_sign_salt(bits, hash, other)?),
            };
            with_digest!(hash, D => public.verify(
                Pss::<D> { blinded: false, digest: D::new(), salt_len },
                digest,
                signature,
            ))
        }
        (false, None) => public.verify(Pkcs1v15Sign::new_unprefixed(), digest, signature),
        (false, Some(hash)) => {
            with_digest!(hash, D => public.verify(Pkcs1v15Sign::new::<D>(), digest, signature))
        }
    };
    Ok(verified.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::transit::material::generate;

    fn options(hash: Option<HashAlg>, pss: bool, jws: bool) -> SignOptions {
        SignOptions {
            hash,
            pss,
            jws,
            ..SignOptions::default()
        }
    }

    #[test]
    fn every_signing_type_round_trips_and_rejects_tampering() {
        for kind in [
            KeyType::Ed25519,
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::Rsa2048,
        ] {
            let entry = generate(kind, 0, 1).unwrap();
            for opts in [
                SignOptions::default(),
                options(Some(HashAlg::Sha3_384), false, false),
                options(Some(HashAlg::Sha2_512), true, true),
            ] {
                let (signature, _) = sign(kind, &entry, false, b"", b"message", &opts).unwrap();
                assert!(verify(kind, &entry, false, b"", b"message", &signature, &opts).unwrap());
                assert!(!verify(kind, &entry, false, b"", b"messagf", &signature, &opts).unwrap());
                assert!(!verify(kind, &entry, false, b"", b"message", b"short", &opts).unwrap());
            }
        }
    }

    #[test]
    fn rsa_options_pkcs1v15_none_prehashed_and_salt() {
        let entry = generate(KeyType::Rsa2048, 0, 1).unwrap();
        let digest = HashAlg::Sha2_256.digest(b"m");
        let prehashed = SignOptions {
            prehashed: true,
            ..SignOptions::default()
        };
        let (signature, _) =
            sign(KeyType::Rsa2048, &entry, false, b"", &digest, &prehashed).unwrap();
        // A prehashed signature verifies as a signature of the original message.
        assert!(
            verify(
                KeyType::Rsa2048,
                &entry,
                false,
                b"",
                b"m",
                &signature,
                &SignOptions::default()
            )
            .unwrap()
        );
        let none = options(None, false, false);
        let (raw, _) = sign(KeyType::Rsa2048, &entry, false, b"", b"raw input", &none).unwrap();
        assert!(
            verify(
                KeyType::Rsa2048,
                &entry,
                false,
                b"",
                b"raw input",
                &raw,
                &none
            )
            .unwrap()
        );
        assert!(
            sign(
                KeyType::Rsa2048,
                &entry,
                false,
                b"",
                b"x",
                &options(None, true, false)
            )
            .is_err()
        );
        let hash_salt = SignOptions {
            salt: SaltLength::Hash,
            ..SignOptions::default()
        };
        let (salted, _) = sign(KeyType::Rsa2048, &entry, false, b"", b"m", &hash_salt).unwrap();
        assert!(
            verify(
                KeyType::Rsa2048,
                &entry,
                false,
                b"",
                b"m",
                &salted,
                &hash_salt
            )
            .unwrap()
        );
        assert!(
            verify(
                KeyType::Rsa2048,
                &entry,
                false,
                b"",
                b"m",
                &salted,
                &SignOptions::default()
            )
            .unwrap()
        );
        let wrong_len = SignOptions {
            prehashed: true,
            ..SignOptions::default()
        };
        assert!(sign(KeyType::Rsa2048, &entry, false, b"", b"short", &wrong_len).is_err());
    }

    #[test]
    fn derived_ed25519_keys_differ_per_context() {
        let entry = generate(KeyType::Ed25519, 0, 1).unwrap();
        let opts = SignOptions::default();
        let (sig_a, public_a) = sign(KeyType::Ed25519, &entry, true, b"a", b"m", &opts).unwrap();
        let (_, public_b) = sign(KeyType::Ed25519, &entry, true, b"b", b"m", &opts).unwrap();
        assert_ne!(public_a, public_b);
        assert!(verify(KeyType::Ed25519, &entry, true, b"a", b"m", &sig_a, &opts).unwrap());
        assert!(!verify(KeyType::Ed25519, &entry, true, b"b", b"m", &sig_a, &opts).unwrap());
        assert!(sign(KeyType::Ed25519, &entry, true, b"", b"m", &opts).is_err());
    }

    #[test]
    fn jws_and_asn1_encodings() {
        let entry = generate(KeyType::EcdsaP256, 0, 1).unwrap();
        let jws = options(Some(HashAlg::Sha2_256), true, true);
        let (raw, _) = sign(KeyType::EcdsaP256, &entry, false, b"", b"m", &jws).unwrap();
        assert_eq!(raw.len(), 64);
        let encoded = jws.encode(&raw);
        assert!(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'));
        assert_eq!(jws.decode(&encoded).unwrap(), raw);
        let (der, _) = sign(
            KeyType::EcdsaP256,
            &entry,
            false,
            b"",
            b"m",
            &SignOptions::default(),
        )
        .unwrap();
        assert_eq!(der[0], 0x30, "DER SEQUENCE");
    }
}
