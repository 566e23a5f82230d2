//! AES-256-GCM-SIV (RFC 8452) authenticated encryption with a random 96-bit nonce.
//!
//! Sealed layout: `[nonce: 12][ciphertext][tag: 16]`. GCM-SIV is nonce-misuse resistant: a
//! repeated random nonce (possible across many nodes over a key's life) reveals only whether two
//! messages under the same key, nonce and AAD were identical. Keys are borrowed, never kept.

use aes_gcm_siv::aead::{AeadInOut, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

use super::random_bytes;

/// Length of the random nonce that prefixes every sealed message.
pub const NONCE_LEN: usize = 12;
/// Length of the authentication tag that ends every sealed message.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed message adds to its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Why a sealed message could not be opened. Deliberately without detail: no decryption oracle.
#[derive(Debug, thiserror::Error)]
pub enum AeadError {
    /// Wrong key, wrong AAD, or the bytes were altered.
    #[error("message authentication failed")]
    Authentication,
    /// Too short to hold a nonce and a tag.
    #[error("ciphertext is truncated")]
    Truncated,
}

fn cipher(key: &[u8; 32]) -> Aes256GcmSiv {
    Aes256GcmSiv::new(key.into())
}

/// Encrypts `plaintext` under `key`, binding `aad`; returns `[nonce:12][ciphertext+tag]`.
///
/// # Panics
///
/// If the plaintext exceeds AES-GCM-SIV's limit of 2^36 bytes (64 GiB), far beyond any request
/// this server accepts.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(plaintext);
    let nonce = Nonce::from(*nonce);
    match cipher(key).encrypt_inout_detached(&nonce, aad, (&mut out[NONCE_LEN..]).into()) {
        Ok(tag) => {
            out.extend_from_slice(tag.as_slice());
            out
        }
        Err(_) => {
            out.zeroize();
            panic!(
                "AES-GCM-SIV refused a {}-byte message (limit 2^36 bytes)",
                plaintext.len()
            );
        }
    }
}

/// Decrypts a message made by [`seal`] with the same `key` and `aad`.
///
/// # Errors
///
/// [`AeadError::Truncated`] if `sealed` is shorter than nonce + tag, [`AeadError::Authentication`]
/// for any wrong key, wrong AAD or altered byte.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AeadError> {
    if sealed.len() < OVERHEAD {
        return Err(AeadError::Truncated);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| AeadError::Truncated)?;
    let tag = Tag::try_from(tag).map_err(|_| AeadError::Truncated)?;
    // Decrypt in a wiped buffer: on failure it may hold unauthenticated plaintext.
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    cipher(key)
        .decrypt_inout_detached(&nonce, aad, plaintext.as_mut_slice().into(), &tag)
        .map_err(|_| AeadError::Authentication)?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn round_trip() {
        let sealed = seal(&KEY, b"aad", b"attack at dawn");
        assert_eq!(sealed.len(), 14 + OVERHEAD);
        assert_eq!(
            open(&KEY, b"aad", &sealed).unwrap().as_slice(),
            b"attack at dawn"
        );
        let empty = seal(&KEY, b"", b"");
        assert!(open(&KEY, b"", &empty).unwrap().is_empty());
    }

    #[test]
    fn nonces_are_fresh() {
        assert_ne!(
            seal(&KEY, b"", b"same")[..NONCE_LEN],
            seal(&KEY, b"", b"same")[..NONCE_LEN]
        );
    }

    #[test]
    fn wrong_key_fails() {
        let sealed = seal(&KEY, b"aad", b"secret");
        assert!(matches!(
            open(&[8; 32], b"aad", &sealed),
            Err(AeadError::Authentication)
        ));
    }

    #[test]
    fn wrong_aad_fails() {
        let sealed = seal(&KEY, b"a/b", b"secret");
        assert!(matches!(
            open(&KEY, b"a/c", &sealed),
            Err(AeadError::Authentication)
        ));
    }

    #[test]
    fn any_flipped_bit_fails() {
        let sealed = seal(&KEY, b"aad", b"secret");
        for index in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[index] ^= 0x01;
            assert!(matches!(
                open(&KEY, b"aad", &altered),
                Err(AeadError::Authentication)
            ));
        }
    }

    #[test]
    fn truncated_fails() {
        let sealed = seal(&KEY, b"aad", b"secret");
        assert!(matches!(
            open(&KEY, b"aad", &sealed[..OVERHEAD - 1]),
            Err(AeadError::Truncated)
        ));
        assert!(matches!(open(&KEY, b"aad", &[]), Err(AeadError::Truncated)));
        assert!(matches!(
            open(&KEY, b"aad", &sealed[..sealed.len() - 1]),
            Err(AeadError::Authentication)
        ));
    }
}
