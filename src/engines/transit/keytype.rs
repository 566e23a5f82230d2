//! The key types transit offers, their Vault names, and what each can do (encrypt, sign, derive).

use serde::Deserialize;
use serde::Serialize;

/// A transit key type. The serialized form is part of the stored policy: append new variants at
/// the end, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// AES-128 in GCM mode with a 96-bit random nonce.
    Aes128Gcm96,
    /// AES-256 in GCM mode with a 96-bit random nonce (the default).
    Aes256Gcm96,
    /// ChaCha20-Poly1305 with a 96-bit random nonce.
    ChaCha20Poly1305,
    /// AES-256-GCM-SIV (RFC 8452), nonce-misuse resistant. Not in Vault.
    Aes256GcmSiv,
    /// Ed25519 signatures.
    Ed25519,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA, 2048-bit modulus (PSS / PKCS#1 v1.5 signatures, OAEP encryption).
    Rsa2048,
    /// RSA, 3072-bit modulus.
    Rsa3072,
    /// RSA, 4096-bit modulus.
    Rsa4096,
    /// A bare HMAC key (only `hmac` and `verify`).
    Hmac,
}

impl KeyType {
    /// Every type, in a stable order.
    pub const ALL: [KeyType; 11] = [
        KeyType::Aes128Gcm96,
        KeyType::Aes256Gcm96,
        KeyType::ChaCha20Poly1305,
        KeyType::Aes256GcmSiv,
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::Hmac,
    ];

    /// Vault's name for the type (`aes256-gcm96`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Aes128Gcm96 => "aes128-gcm96",
            KeyType::Aes256Gcm96 => "aes256-gcm96",
            KeyType::ChaCha20Poly1305 => "chacha20-poly1305",
            KeyType::Aes256GcmSiv => "aes256-gcm-siv",
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::Hmac => "hmac",
        }
    }

    /// Parses a Vault type name.
    pub fn parse(name: &str) -> Option<KeyType> {
        KeyType::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// A symmetric AEAD type (nonce || ciphertext || tag ciphertexts).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            KeyType::Aes128Gcm96
                | KeyType::Aes256Gcm96
                | KeyType::ChaCha20Poly1305
                | KeyType::Aes256GcmSiv
        )
    }

    /// The RSA modulus size in bits, for the RSA types.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Whether `encrypt`, `decrypt`, `rewrap` and `datakey` work with this type.
    pub fn supports_encryption(self) -> bool {
        self.is_aead() || self.rsa_bits().is_some()
    }

    /// Whether `sign` and signature `verify` work with this type.
    pub fn supports_signing(self) -> bool {
        matches!(
            self,
            KeyType::Ed25519 | KeyType::EcdsaP256 | KeyType::EcdsaP384
        ) || self.rsa_bits().is_some()
    }

    /// Whether `derived` keys (a per-request `context`) are allowed.
    pub fn supports_derivation(self) -> bool {
        self.is_aead() || self == KeyType::Ed25519
    }

    /// Whether the type has a public key that `keys/<name>` shows.
    pub fn is_asymmetric(self) -> bool {
        self.supports_signing()
    }

    /// The length in bytes of a symmetric AEAD key.
    pub fn aead_key_len(self) -> usize {
        match self {
            KeyType::Aes128Gcm96 => 16,
            _ => 32,
        }
    }

    /// The name Vault shows for each asymmetric key version (`P-256`, `ed25519`, `rsa-2048`).
    pub fn version_name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "P-256",
            KeyType::EcdsaP384 => "P-384",
            other => other.name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_capabilities_match_vault() {
        for kind in KeyType::ALL {
            assert_eq!(KeyType::parse(kind.name()), Some(kind));
        }
        assert_eq!(KeyType::parse("aes512"), None);
        assert!(KeyType::Aes256Gcm96.supports_derivation());
        assert!(KeyType::Ed25519.supports_derivation());
        assert!(!KeyType::EcdsaP256.supports_derivation());
        assert!(KeyType::Rsa2048.supports_encryption() && KeyType::Rsa2048.supports_signing());
        assert!(!KeyType::Hmac.supports_encryption() && !KeyType::Hmac.supports_signing());
        assert_eq!(KeyType::Aes128Gcm96.aead_key_len(), 16);
        assert_eq!(KeyType::EcdsaP384.version_name(), "P-384");
    }
}
