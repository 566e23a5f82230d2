//! Vault's one-time-pad encoding of a generated root token (`sys/generate-root`, Vault 1.10+).
//!
//! The OTP is a random base62 string exactly as long as the token. The server returns
//! `base64_raw_std(token_bytes XOR otp_bytes)` (standard alphabet, no padding: Go's
//! `base64.RawStdEncoding`), and the operator decodes it with the OTP, as
//! `vault operator generate-root -decode=<encoded> -otp=<otp>` does: decode the base64, XOR with
//! the OTP's bytes. Both are the raw bytes of the strings (the OTP is not itself decoded).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use zeroize::Zeroizing;

/// The 62 characters of a base62 OTP, in Vault's order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why an OTP operation failed. Messages carry no token or OTP material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtpError {
    /// The OTP and the token (or the decoded value) differ in length.
    #[error("length of the OTP ({otp}) does not match the length of the token ({token})")]
    LengthMismatch {
        /// OTP length in bytes.
        otp: usize,
        /// Token (or decoded value) length in bytes.
        token: usize,
    },
    /// The encoded token is not unpadded standard base64.
    #[error("error decoding base64'd token")]
    InvalidEncoding,
    /// The decoded token is not UTF-8 (wrong OTP).
    #[error("decoded token is not valid UTF-8; is the OTP right?")]
    NotUtf8,
}

/// A fresh random base62 OTP of `len` characters (rejection sampling: no modulo bias).
pub fn generate(len: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(len));
    while out.len() < len {
        let batch = super::random_bytes::<64>();
        for byte in batch.iter() {
            // 248 = 4 * 62: values at or above it would favour the first characters.
            if *byte < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(*byte % 62)]));
            }
        }
    }
    out
}

/// `base64_raw_std(token XOR otp)`; the OTP must be exactly as long as the token.
///
/// # Errors
///
/// [`OtpError::LengthMismatch`] when the lengths differ.
pub fn encode(token: &str, otp: &str) -> Result<String, OtpError> {
    let mixed = xor(token.as_bytes(), otp.as_bytes())?;
    Ok(STANDARD_NO_PAD.encode(mixed.as_slice()))
}

/// The token from `encoded` and the OTP (Vault's `DecodeToken` for a non-zero OTP length).
///
/// # Errors
///
/// [`OtpError::InvalidEncoding`], [`OtpError::LengthMismatch`], or [`OtpError::NotUtf8`].
pub fn decode(encoded: &str, otp: &str) -> Result<Zeroizing<String>, OtpError> {
    let raw = Zeroizing::new(
        STANDARD_NO_PAD
            .decode(encoded.trim())
            .map_err(|_| OtpError::InvalidEncoding)?,
    );
    let plain = xor(&raw, otp.as_bytes())?;
    let text = std::str::from_utf8(&plain).map_err(|_| OtpError::NotUtf8)?;
    Ok(Zeroizing::new(text.to_string()))
}

fn xor(a: &[u8], b: &[u8]) -> Result<Zeroizing<Vec<u8>>, OtpError> {
    if a.len() != b.len() {
        return Err(OtpError::LengthMismatch {
            otp: b.len(),
            token: a.len(),
        });
    }
    Ok(Zeroizing::new(
        a.iter().zip(b).map(|(x, y)| x ^ y).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Derived by hand from the algorithm:
    /// `"hvs.AB" XOR "012345"` = 0x68^0x30 0x76^0x31 0x73^0x32 0x2e^0x33 0x41^0x34 0x42^0x35
    /// = `58 47 41 1d 75 77`; base64 of `58 47 41` is `WEdB`, of `1d 75 77` is `HXV3`.
    /// With one byte less (`"hvs.A"`, `"01234"`), `1d 75` encodes as `HXU` with no `=` padding.
    #[test]
    fn fixed_vectors_match_vaults_algorithm() {
        assert_eq!(encode("hvs.AB", "012345").unwrap(), "WEdBHXV3");
        assert_eq!(decode("WEdBHXV3", "012345").unwrap().as_str(), "hvs.AB");
        assert_eq!(encode("hvs.A", "01234").unwrap(), "WEdBHXU");
        assert_eq!(decode("WEdBHXU", "01234").unwrap().as_str(), "hvs.A");
        // Padded input is not RawStdEncoding and is refused, as Go's decoder does.
        assert_eq!(decode("WEdBHXU=", "01234"), Err(OtpError::InvalidEncoding));
    }

    #[test]
    fn round_trip_with_a_generated_otp() {
        let token = "hvs.Xy_z-0123456789abcdefghijklmnopqrstuvwxyzABC";
        let otp = generate(token.len());
        assert_eq!(otp.len(), token.len());
        assert!(otp.bytes().all(|b| b.is_ascii_alphanumeric()));
        let encoded = encode(token, &otp).unwrap();
        assert!(!encoded.contains(token));
        assert_eq!(decode(&encoded, &otp).unwrap().as_str(), token);
        assert_ne!(*generate(47), *generate(47));
    }

    #[test]
    fn length_mismatch_is_refused() {
        assert_eq!(
            encode("hvs.AB", "0123"),
            Err(OtpError::LengthMismatch { otp: 4, token: 6 })
        );
        assert!(matches!(
            decode("WEdBHXV3", "0123456"),
            Err(OtpError::LengthMismatch { .. })
        ));
        assert_eq!(decode("not base64!", "x"), Err(OtpError::InvalidEncoding));
    }
}
