//! Key material: generating a new version for each type, randomness, derived keys (HKDF with the
//! request's `context`), public key encodings, and the export encodings Vault uses
//! (`export/<type>/<name>`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use p256::pkcs8::DecodePrivateKey;
use p256::pkcs8::EncodePrivateKey;
use p256::pkcs8::EncodePublicKey;
use p256::pkcs8::LineEnding;
use rand::TryRng;
use rand::rngs::SysRng;
use rsa::pkcs1::EncodeRsaPrivateKey;
use zeroize::Zeroizing;

use super::hashing::hkdf_sha256;
use super::internal;
use super::keytype::KeyType;
use super::policy::KeyVersion;
use super::policy::SecretBytes;
use crate::logical::LogicalError;

/// `len` bytes from the operating system's CSPRNG, wiped when dropped.
///
/// # Panics
///
/// If the operating system cannot provide randomness (nothing secure can be done without it).
pub fn random(len: usize) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    if let Err(err) = SysRng.try_fill_bytes(&mut bytes) {
        panic!("the operating system's random number generator failed: {err}");
    }
    bytes
}

/// A fresh version of a key of type `kind` (`key_size` applies to `hmac` keys).
pub fn generate(kind: KeyType, key_size: u32, now_nanos: u64) -> Result<KeyVersion, LogicalError> {
    let hmac_key = SecretBytes::new(random(32).to_vec());
    let (key, public_key): (Zeroizing<Vec<u8>>, Vec<u8>) = match kind {
        KeyType::Aes128Gcm96
        | KeyType::Aes256Gcm96
        | KeyType::ChaCha20Poly1305
        | KeyType::Aes256GcmSiv => (random(kind.aead_key_len()), Vec::new()),
        KeyType::Hmac => (random(key_size.max(32) as usize), Vec::new()),
        KeyType::Ed25519 => {
            let seed = random(32);
            let public = ed25519_public(&seed)?;
            (seed, public)
        }
        KeyType::EcdsaP256 => loop {
            let scalar = random(32);
            if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&scalar) {
                let public = key
                    .verifying_key()
                    .to_public_key_der()
                    .map_err(|_| internal("P-256 public key encoding"))?;
                break (scalar, public.as_bytes().to_vec());
            }
        },
        KeyType::EcdsaP384 => loop {
            let scalar = random(48);
            if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&scalar) {
                let public = key
                    .verifying_key()
                    .to_public_key_der()
                    .map_err(|_| internal("P-384 public key encoding"))?;
                break (scalar, public.as_bytes().to_vec());
            }
        },
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = kind.rsa_bits().unwrap_or(2048);
            let private = rsa::PrivateKey::new(&mut SysRng, bits)
                .map_err(|_| internal("RSA key generation"))?;
            let der = private
                .to_pkcs8_der()
                .map_err(|_| internal("RSA key encoding"))?;
            let public = private
                .to_public_key()
                .to_public_key_der()
                .map_err(|_| internal("RSA public key encoding"))?;
            (
                Zeroizing::new(der.as_bytes().to_vec()),
                public.as_bytes().to_vec(),
            )
        }
    };
    Ok(KeyVersion {
        created_nanos: now_nanos,
        key: SecretBytes::new(key.to_vec()),
        hmac_key,
        public_key,
    })
}

/// The raw 32-byte Ed25519 public key of a seed.
pub fn ed25519_public(seed: &[u8]) -> Result<Vec<u8>, LogicalError> {
    let seed: &[u8; 32] = seed
        .try_into()
        .map_err(|_| internal("Ed25519 key decoding"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(seed)
        .verifying_key()
        .to_bytes()
        .to_vec())
}

/// The key bytes to use for `entry` with the request's `context`: the stored key, or for derived
/// keys HKDF-SHA256(key, info = context). `context` must be non-empty for derived keys.
pub fn working_key(
    kind: KeyType,
    derived: bool,
    entry: &KeyVersion,
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LogicalError> {
    if !derived {
        return Ok(Zeroizing::new(entry.key.expose().to_vec()));
    }
    if context.is_empty() {
        return Err(LogicalError::invalid(
            "missing 'context' for key derivation; the key was created using a derived key, \
             which means additional, per-request information must be included in order to \
             perform operations with the key",
        ));
    }
    let len = if kind.is_aead() {
        kind.aead_key_len()
    } else {
        32
    };
    Ok(hkdf_sha256(entry.key.expose(), context, len))
}

/// The public key as `keys/<name>` shows it: base64 of the raw key for Ed25519, PEM
/// (SubjectPublicKeyInfo) for ECDSA and RSA; empty for derived Ed25519 (one per context).
pub fn public_key_text(kind: KeyType, public_der: &[u8], derived: bool) -> String {
    match kind {
        KeyType::Ed25519 if derived => String::new(),
        KeyType::Ed25519 => B64.encode(public_der),
        _ if public_der.is_empty() => String::new(),
        _ => pem("PUBLIC KEY", public_der),
    }
}

/// PEM armour with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What `export/<type>/...` can export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    /// `encryption-key`: AEAD keys (base64), RSA keys (PKCS#1 PEM).
    Encryption,
    /// `signing-key`: Ed25519 (base64 of seed || public key), ECDSA (SEC1 PEM), RSA (PKCS#1 PEM).
    Signing,
    /// `hmac-key`: the HMAC key (base64).
    Hmac,
    /// `public-key`: asymmetric public keys; allowed without `exportable`.
    Public,
}

impl ExportType {
    /// Parses the path segment.
    pub fn parse(name: &str) -> Result<ExportType, LogicalError> {
        Ok(match name {
            "encryption-key" => ExportType::Encryption,
            "signing-key" => ExportType::Signing,
            "hmac-key" => ExportType::Hmac,
            "public-key" => ExportType::Public,
            other => {
                return Err(LogicalError::invalid(format!(
                    "invalid export type {other:?}"
                )));
            }
        })
    }

    /// The path segment.
    pub fn name(self) -> &'static str {
        match self {
            ExportType::Encryption => "encryption-key",
            ExportType::Signing => "signing-key",
            ExportType::Hmac => "hmac-key",
            ExportType::Public => "public-key",
        }
    }
}

/// One version's material in the export encoding for `what`.
pub fn export(
    kind: KeyType,
    entry: &KeyVersion,
    what: ExportType,
) -> Result<Zeroizing<String>, LogicalError> {
    let unsupported = || {
        LogicalError::invalid(format!(
            "export type {} is not supported for keys of type {}",
            what.name(),
            kind.name()
        ))
    };
    let text = match (what, kind) {
        (ExportType::Hmac, KeyType::Hmac) => B64.encode(entry.key.expose()),
        (ExportType::Hmac, _) => B64.encode(entry.hmac_key.expose()),
        (ExportType::Encryption, kind) if kind.is_aead() => B64.encode(entry.key.expose()),
        (ExportType::Encryption | ExportType::Signing, kind) if kind.rsa_bits().is_some() => {
            let private = rsa::PrivateKey::from_pkcs8_der(entry.key.expose())
                .map_err(|_| internal("RSA key decoding"))?;
            let pem = private
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|_| internal("RSA key encoding"))?;
            pem.as_str().to_string()
        }
        (ExportType::Signing, KeyType::Ed25519) => {
            let mut pair = Zeroizing::new(entry.key.expose().to_vec());
            pair.extend_from_slice(&entry.public_key);
            B64.encode(&*pair)
        }
        (ExportType::Signing, KeyType::EcdsaP256) => {
            let secret = p256::SecretKey::from_slice(entry.key.expose())
                .map_err(|_| internal("P-256 key decoding"))?;
            let pem = secret
                .to_sec1_pem(LineEnding::LF)
                .map_err(|_| internal("P-256 key encoding"))?;
            pem.as_str().to_string()
        }
        (ExportType::Signing, KeyType::EcdsaP384) => {
            let secret = p384::SecretKey::from_slice(entry.key.expose())
                .map_err(|_| internal("P-384 key decoding"))?;
            let pem = secret
                .to_sec1_pem(LineEnding::LF)
                .map_err(|_| internal("P-384 key encoding"))?;
            pem.as_str().to_string()
        }
        (ExportType::Public, kind) if kind.is_asymmetric() => {
            public_key_text(kind, &entry.public_key, false)
        }
        _ => return Err(unsupported()),
    };
    Ok(Zeroizing::new(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_material_of_the_right_shape() {
        for kind in KeyType::ALL {
            if kind.rsa_bits().is_some_and(|bits| bits > 2048) {
                continue; // slow; covered by the signing tests
            }
            let entry = generate(kind, 0, 1).unwrap();
            match kind {
                KeyType::Aes128Gcm96 => assert_eq!(entry.key.expose().len(), 16),
                KeyType::Ed25519 => assert_eq!(entry.public_key.len(), 32),
                KeyType::Hmac => assert_eq!(entry.key.expose().len(), 32),
                _ => {}
            }
            assert_eq!(entry.hmac_key.expose().len(), 32);
            assert_eq!(entry.public_key.is_empty(), !kind.is_asymmetric());
        }
    }

    #[test]
    fn derived_keys_depend_on_context() {
        let entry = generate(KeyType::Aes256Gcm96, 0, 1).unwrap();
        let a = working_key(KeyType::Aes256Gcm96, true, &entry, b"a").unwrap();
        let b = working_key(KeyType::Aes256Gcm96, true, &entry, b"b").unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 32);
        assert!(working_key(KeyType::Aes256Gcm96, true, &entry, b"").is_err());
        let plain = working_key(KeyType::Aes256Gcm96, false, &entry, b"").unwrap();
        assert_eq!(plain.as_slice(), entry.key.expose());
    }

    #[test]
    fn exports_use_vault_encodings() {
        let ec = generate(KeyType::EcdsaP256, 0, 1).unwrap();
        let pem = export(KeyType::EcdsaP256, &ec, ExportType::Signing).unwrap();
        assert!(pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let public = export(KeyType::EcdsaP256, &ec, ExportType::Public).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(export(KeyType::EcdsaP256, &ec, ExportType::Encryption).is_err());
        let ed = generate(KeyType::Ed25519, 0, 1).unwrap();
        let pair = export(KeyType::Ed25519, &ed, ExportType::Signing).unwrap();
        assert_eq!(B64.decode(pair.as_str()).unwrap().len(), 64);
        let aes = generate(KeyType::Aes128Gcm96, 0, 1).unwrap();
        assert!(export(KeyType::Aes128Gcm96, &aes, ExportType::Public).is_err());
    }
}
