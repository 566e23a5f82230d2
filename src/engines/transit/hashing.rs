//! Hash algorithms by their Vault names (`sha2-256`, `sha3-512`, ...), the digests and HMACs
//! computed with them, and constant-time MAC comparison.

use hmac::Hmac;
use hmac::KeyInit;
use hmac::Mac;
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::logical::LogicalError;

/// A hash algorithm transit accepts for `hash`, `hmac`, `sign` and `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-224.
    Sha2_224,
    /// SHA-256 (the default everywhere).
    Sha2_256,
    /// SHA-384.
    Sha2_384,
    /// SHA-512.
    Sha2_512,
    /// SHA3-224.
    Sha3_224,
    /// SHA3-256.
    Sha3_256,
    /// SHA3-384.
    Sha3_384,
    /// SHA3-512.
    Sha3_512,
}

impl HashAlg {
    /// Parses a Vault algorithm name; `sha256`-style aliases are accepted too.
    pub fn parse(name: &str) -> Result<HashAlg, LogicalError> {
        Ok(match name {
            "sha2-224" | "sha224" => HashAlg::Sha2_224,
            "sha2-256" | "sha256" => HashAlg::Sha2_256,
            "sha2-384" | "sha384" => HashAlg::Sha2_384,
            "sha2-512" | "sha512" => HashAlg::Sha2_512,
            "sha3-224" => HashAlg::Sha3_224,
            "sha3-256" => HashAlg::Sha3_256,
            "sha3-384" => HashAlg::Sha3_384,
            "sha3-512" => HashAlg::Sha3_512,
            other => {
                return Err(LogicalError::invalid(format!(
                    "unsupported hash algorithm {other:?}"
                )));
            }
        })
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha2_224 | HashAlg::Sha3_224 => 28,
            HashAlg::Sha2_256 | HashAlg::Sha3_256 => 32,
            HashAlg::Sha2_384 | HashAlg::Sha3_384 => 48,
            HashAlg::Sha2_512 | HashAlg::Sha3_512 => 64,
        }
    }

    /// The digest of `input`.
    pub fn digest(self, input: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha2_224 => sha2::Sha224::digest(input).to_vec(),
            HashAlg::Sha2_256 => sha2::Sha256::digest(input).to_vec(),
            HashAlg::Sha2_384 => sha2::Sha384::digest(input).to_vec(),
            HashAlg::Sha2_512 => sha2::Sha512::digest(input).to_vec(),
            HashAlg::Sha3_224 => sha3::Sha3_224::digest(input).to_vec(),
            HashAlg::Sha3_256 => sha3::Sha3_256::digest(input).to_vec(),
            HashAlg::Sha3_384 => sha3::Sha3_384::digest(input).to_vec(),
            HashAlg::Sha3_512 => sha3::Sha3_512::digest(input).to_vec(),
        }
    }

    /// HMAC of `input` under `key` with this hash.
    pub fn hmac(self, key: &[u8], input: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha2_224 => mac::<Hmac<sha2::Sha224>>(key, input),
            HashAlg::Sha2_256 => mac::<Hmac<sha2::Sha256>>(key, input),
            HashAlg::Sha2_384 => mac::<Hmac<sha2::Sha384>>(key, input),
            HashAlg::Sha2_512 => mac::<Hmac<sha2::Sha512>>(key, input),
            HashAlg::Sha3_224 => mac::<Hmac<sha3::Sha3_224>>(key, input),
            HashAlg::Sha3_256 => mac::<Hmac<sha3::Sha3_256>>(key, input),
            HashAlg::Sha3_384 => mac::<Hmac<sha3::Sha3_384>>(key, input),
            HashAlg::Sha3_512 => mac::<Hmac<sha3::Sha3_512>>(key, input),
        }
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], input: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// Compares two MACs in constant time (lengths are public).
pub fn macs_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// HKDF-SHA256 of `ikm` with `info` (no salt), `len` bytes: Vault's `hkdf_sha256` key derivation.
pub fn hkdf_sha256(ikm: &[u8], info: &[u8], len: usize) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(vec![0u8; len]);
    hkdf::Hkdf::<sha2::Sha256>::new(None, ikm)
        .expand(info, &mut out)
        .expect("HKDF-SHA256 output of at most 64 bytes is always valid");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_the_named_lengths() {
        for name in [
            "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384",
            "sha3-512",
        ] {
            let alg = HashAlg::parse(name).unwrap();
            assert_eq!(alg.digest(b"x").len(), alg.output_len(), "{name}");
            assert_eq!(alg.hmac(b"k", b"x").len(), alg.output_len(), "{name}");
        }
        assert!(HashAlg::parse("md5").is_err());
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            hex::encode(HashAlg::Sha2_256.digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(HashAlg::Sha2_256.hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn mac_comparison() {
        assert!(macs_equal(b"abc", b"abc"));
        assert!(!macs_equal(b"abc", b"abd"));
        assert!(!macs_equal(b"abc", b"ab"));
    }
}
