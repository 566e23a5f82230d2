//! One Shamir share of the unseal key: its wire encodings (hex, base64), parsing, and the public
//! verifier that lets a node recognise its own vault's shares without learning anything.
//!
//! A share is 33 bytes: byte 0 is the x coordinate (1..=255), bytes 1..33 the y values, one per
//! key byte (`shamirsecretsharing::hazmat` layout).

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::SealError;

/// Length in bytes of one share.
pub const SHARE_LEN: usize = 33;

/// Domain separator hashed before a share's bytes to form its verifier.
const VERIFIER_DOMAIN: &[u8] = b"strongroom/share-verifier/v1";

/// Standard-alphabet base64 that accepts input with or without padding.
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One unseal key share. Wiped on drop; prints as `<redacted>` (its x coordinate is shown, it is
/// not secret).
pub struct Share(Zeroizing<[u8; SHARE_LEN]>);

impl Share {
    /// Wraps 33 raw bytes, rejecting x = 0 (not a valid share; it would be the secret itself).
    pub(super) fn from_bytes(bytes: Zeroizing<[u8; SHARE_LEN]>) -> Result<Self, SealError> {
        if bytes[0] == 0 {
            return Err(SealError::InvalidShareIndex);
        }
        Ok(Self(bytes))
    }

    /// Copies a share from a slice of exactly [`SHARE_LEN`] bytes.
    pub(super) fn from_slice(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != SHARE_LEN {
            return Err(SealError::InvalidShareLength(bytes.len()));
        }
        let mut buffer = Zeroizing::new([0u8; SHARE_LEN]);
        buffer.copy_from_slice(bytes);
        Self::from_bytes(buffer)
    }

    /// Parses a share given as hex (66 digits, either case) or standard base64 (padding
    /// optional). Surrounding whitespace is ignored.
    ///
    /// # Errors
    ///
    /// [`SealError::InvalidShareEncoding`] if the text is neither, [`SealError::InvalidShareLength`]
    /// if it decodes to other than 33 bytes, [`SealError::InvalidShareIndex`] if x is 0.
    pub fn parse(text: &str) -> Result<Share, SealError> {
        let text = text.trim();
        // Hex digits are also base64 characters: an exact-length hex string is hex, and an
        // all-hex string of another length is reported as hex of the wrong length.
        let is_hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex && text.len() == 2 * SHARE_LEN {
            let mut buffer = Zeroizing::new([0u8; SHARE_LEN]);
            hex::decode_to_slice(text, buffer.as_mut_slice())
                .map_err(|_| SealError::InvalidShareEncoding)?;
            return Self::from_bytes(buffer);
        }
        match BASE64_LENIENT.decode(text).map(Zeroizing::new) {
            Ok(decoded) if decoded.len() == SHARE_LEN => Self::from_slice(&decoded),
            _ if is_hex => Err(SealError::InvalidShareLength(text.len() / 2)),
            Ok(decoded) => Err(SealError::InvalidShareLength(decoded.len())),
            Err(_) => Err(SealError::InvalidShareEncoding),
        }
    }

    /// The share's x coordinate (1..=255). Not secret.
    pub fn x(&self) -> u8 {
        self.0[0]
    }

    /// Lower-case hex (66 characters), as Vault's `keys`. The caller owns the secret string.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_slice())
    }

    /// Standard padded base64 (44 characters), as Vault's `keys_base64`. The caller owns the
    /// secret string.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    /// `SHA-256("strongroom/share-verifier/v1" || share)`: public, since every share carries at
    /// least 256 bits the hash does not reveal.
    pub(super) fn verifier(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(VERIFIER_DOMAIN);
        hasher.update(self.0.as_slice());
        hasher.finalize().into()
    }

    pub(super) fn as_bytes(&self) -> &[u8; SHARE_LEN] {
        &self.0
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share(x={}, <redacted>)", self.x())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Share {
        let mut bytes = Zeroizing::new([0xabu8; SHARE_LEN]);
        bytes[0] = 3;
        Share::from_bytes(bytes).unwrap()
    }

    #[test]
    fn hex_and_base64_round_trip() {
        let share = sample();
        assert_eq!(share.to_hex().len(), 66);
        assert_eq!(share.to_base64().len(), 44);
        for text in [
            share.to_hex(),
            share.to_hex().to_uppercase(),
            share.to_base64(),
            format!("  {}\n", share.to_base64()),
            format!("\t{}  ", share.to_hex()),
        ] {
            assert_eq!(Share::parse(&text).unwrap().as_bytes(), share.as_bytes());
        }
    }

    #[test]
    fn base64_padding_is_optional() {
        // 33 bytes encode to 44 characters without padding; a 34-byte value needs "==".
        let padded = STANDARD.encode([1u8; 34]);
        assert!(padded.ends_with("=="));
        assert!(matches!(
            Share::parse(&padded),
            Err(SealError::InvalidShareLength(34))
        ));
        assert!(matches!(
            Share::parse(padded.trim_end_matches('=')),
            Err(SealError::InvalidShareLength(34))
        ));
    }

    #[test]
    fn rejects_garbage_short_and_zero_index() {
        assert!(matches!(
            Share::parse(""),
            Err(SealError::InvalidShareLength(0))
        ));
        assert!(matches!(
            Share::parse("not a key!"),
            Err(SealError::InvalidShareEncoding)
        ));
        assert!(matches!(
            Share::parse(&"zz".repeat(33)),
            Err(SealError::InvalidShareEncoding)
        ));
        assert!(matches!(
            Share::parse(&"ab".repeat(32)),
            Err(SealError::InvalidShareLength(32))
        ));
        assert!(matches!(
            Share::parse(&STANDARD.encode([1u8; 32])),
            Err(SealError::InvalidShareLength(32))
        ));
        let mut zero_x = [0x11u8; SHARE_LEN];
        zero_x[0] = 0;
        assert!(matches!(
            Share::parse(&hex::encode(zero_x)),
            Err(SealError::InvalidShareIndex)
        ));
        assert!(matches!(
            Share::parse(&STANDARD.encode(zero_x)),
            Err(SealError::InvalidShareIndex)
        ));
    }

    #[test]
    fn verifier_depends_on_every_byte() {
        let share = sample();
        let mut bytes = Zeroizing::new(*share.as_bytes());
        bytes[32] ^= 1;
        assert_ne!(
            share.verifier(),
            Share::from_bytes(bytes).unwrap().verifier()
        );
    }

    #[test]
    fn debug_is_redacted() {
        let share = sample();
        let printed = format!("{share:?} {share:#?}");
        assert_eq!(format!("{share:?}"), "Share(x=3, <redacted>)");
        assert!(!printed.contains(&share.to_hex()[2..]));
        assert!(!printed.contains(&share.to_base64()));
    }
}
