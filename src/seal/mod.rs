//! The seal: the only code that holds the unseal key and the root key.
//!
//! ```text
//! unseal key (32 B) --Shamir split--> N shares (33 B), any T recover it
//!    wraps -> root key   (AES-256-GCM-SIV, AAD "core/root-key", stored at core/root-key)
//!       wraps -> keyring (the barrier's business, stored at core/keyring)
//! ```
//!
//! [`generate`] makes the unseal key, its shares and the public [`SealConfig`] (share count,
//! threshold, one verifier per share) at init; [`UnsealProgress`] collects shares on each node;
//! [`wrap_root_key`] / [`unwrap_root_key`] store and recover the root key; a rekey makes a new
//! unseal key with [`generate`] and re-wraps the same root key under it. Shares use
//! `shamirsecretsharing`'s hazmat GF(2^8) key shares (Vault's scheme): they carry no integrity
//! check of their own, so a share is accepted only if its verifier is in the config, duplicates
//! are refused before combining, and the combined key is trusted only once it opens the root key.
//!
//! With an HSM ([`pkcs11`]) the unseal key is also stored wrapped by an AES key inside the HSM,
//! so nodes unseal themselves; its shares become recovery shares.
//!
//! Limitation: the hazmat routines keep intermediate values in their own (unwiped) buffers;
//! everything this module holds is wiped on drop.

mod keys;
pub mod pkcs11;
mod shares;
mod unseal;

pub use keys::{KEY_LEN, RootKey, UnsealKey};
pub use shares::{SHARE_LEN, Share};
pub use unseal::UnsealProgress;

use serde::{Deserialize, Serialize};
use shamirsecretsharing::hazmat::create_keyshares;
use strongroom_raft::codec;
use zeroize::Zeroizing;

use crate::crypto::{aead, random_bytes};

/// AAD binding the wrapped root key to its storage key.
const ROOT_KEY_AAD: &[u8] = b"core/root-key";

/// Why a seal operation failed. Messages never contain key or share material.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Share count / threshold out of range (Vault's wording).
    #[error("invalid seal configuration: {0}")]
    InvalidParameters(String),
    /// The share text is neither hex nor base64 (Vault's wording).
    #[error("'key' must be a valid hex or base64 string")]
    InvalidShareEncoding,
    /// The share decoded to the wrong number of bytes.
    #[error("invalid key: a key share is {SHARE_LEN} bytes, got {0}")]
    InvalidShareLength(usize),
    /// The share's index byte is 0, which no share has.
    #[error("invalid key: malformed key share (index 0)")]
    InvalidShareIndex,
    /// A share with the same index was already submitted in this attempt.
    #[error("this key share was already submitted")]
    DuplicateShare,
    /// The share is well formed but was not issued for this vault (or this seal configuration).
    #[error("key share does not belong to this vault")]
    ForeignShare,
    /// The (combined) unseal key failed to authenticate the stored root key.
    #[error("failed to decrypt the root key: message authentication failed (wrong unseal key)")]
    WrongKey,
    /// The stored seal configuration cannot be decoded or is inconsistent.
    #[error("seal configuration is malformed: {0}")]
    MalformedConfig(String),
}

impl SealError {
    /// Whether the request's input caused the error (HTTP 400), rather than the stored state.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, SealError::MalformedConfig(_))
    }
}

/// The public seal parameters, stored in plaintext at `core/seal-config`. Holds no secret: each
/// verifier is a SHA-256 of a share that carries at least 256 bits of entropy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SealConfig {
    /// Number of shares issued (N).
    pub secret_shares: u8,
    /// Number of shares that unseal (T).
    pub secret_threshold: u8,
    /// `SHA-256("strongroom/share-verifier/v1" || share)` of each issued share, in share order.
    pub share_verifiers: Vec<[u8; 32]>,
}

impl SealConfig {
    /// Encodes the config for storage (codec: version byte + bincode).
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and checks a stored config.
    ///
    /// # Errors
    ///
    /// [`SealError::MalformedConfig`] if the bytes do not decode or the values are inconsistent.
    pub fn decode(bytes: &[u8]) -> Result<Self, SealError> {
        let config: SealConfig =
            codec::decode(bytes).map_err(|err| SealError::MalformedConfig(err.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks the stored invariants: valid N/T and one verifier per share.
    fn check(&self) -> Result<(), SealError> {
        validate_parameters(self.secret_shares.into(), self.secret_threshold.into())
            .map_err(|err| SealError::MalformedConfig(err.to_string()))?;
        if self.share_verifiers.len() != usize::from(self.secret_shares) {
            return Err(SealError::MalformedConfig(format!(
                "{} share verifiers for {} shares",
                self.share_verifiers.len(),
                self.secret_shares
            )));
        }
        Ok(())
    }
}

/// Checks N and T with Vault's rules and messages (as `sys/init` and rekey use them); returns
/// them as bytes.
///
/// # Errors
///
/// [`SealError::InvalidParameters`] with Vault's message when N or T are out of range.
pub fn check_parameters(shares: u32, threshold: u32) -> Result<(u8, u8), SealError> {
    validate_parameters(shares, threshold)
}

/// Checks N and T with Vault's rules and messages; returns them as bytes.
fn validate_parameters(shares: u32, threshold: u32) -> Result<(u8, u8), SealError> {
    let invalid = |reason: &str| Err(SealError::InvalidParameters(reason.to_string()));
    if shares < 1 {
        return invalid("shares must be at least one");
    }
    if threshold < 1 {
        return invalid("threshold must be at least one");
    }
    if shares > 1 && threshold == 1 {
        return invalid("threshold must be greater than one for multiple shares");
    }
    let Ok(shares) = u8::try_from(shares) else {
        return invalid("shares must be less than 256");
    };
    let Ok(threshold) = u8::try_from(threshold) else {
        return invalid("threshold must be less than 256");
    };
    if threshold > shares {
        return invalid("threshold cannot be larger than shares");
    }
    Ok((shares, threshold))
}

/// Makes a fresh unseal key, splits it into `secret_shares` shares of which any
/// `secret_threshold` recover it, and returns the key, the shares (x = 1..=N) and the config.
///
/// `1 <= T <= N <= 255`, and `T >= 2` unless `N = T = 1` (then the one share is the key itself).
///
/// # Errors
///
/// [`SealError::InvalidParameters`] with Vault's message when N or T are out of range.
pub fn generate(
    secret_shares: u32,
    secret_threshold: u32,
) -> Result<(UnsealKey, Vec<Share>, SealConfig), SealError> {
    let (n, k) = validate_parameters(secret_shares, secret_threshold)?;
    let key = random_bytes::<KEY_LEN>();
    let raw = Zeroizing::new(
        create_keyshares(key.as_slice(), n, k)
            .map_err(|err| SealError::InvalidParameters(err.to_string()))?,
    );
    let shares = raw
        .iter()
        .map(|bytes| Share::from_slice(bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let config = SealConfig {
        secret_shares: n,
        secret_threshold: k,
        share_verifiers: shares.iter().map(Share::verifier).collect(),
    };
    Ok((UnsealKey::from_bytes(key), shares, config))
}

/// Encrypts the root key under the unseal key, for storage at `core/root-key`.
pub fn wrap_root_key(unseal_key: &UnsealKey, root_key: &RootKey) -> Vec<u8> {
    aead::seal(unseal_key.as_bytes(), ROOT_KEY_AAD, root_key.as_bytes())
}

/// Recovers the root key stored by [`wrap_root_key`].
///
/// # Errors
///
/// [`SealError::WrongKey`] if the unseal key does not authenticate the blob (or the blob is not
/// a wrapped root key).
pub fn unwrap_root_key(unseal_key: &UnsealKey, blob: &[u8]) -> Result<RootKey, SealError> {
    let plaintext =
        aead::open(unseal_key.as_bytes(), ROOT_KEY_AAD, blob).map_err(|_| SealError::WrongKey)?;
    if plaintext.len() != KEY_LEN {
        return Err(SealError::WrongKey);
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&plaintext);
    Ok(RootKey::from_bytes(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_validation_matches_vault() {
        let cases: &[(u32, u32, Option<&str>)] = &[
            (1, 1, None),
            (2, 2, None),
            (5, 3, None),
            (255, 255, None),
            (255, 2, None),
            (0, 0, Some("shares must be at least one")),
            (0, 1, Some("shares must be at least one")),
            (3, 0, Some("threshold must be at least one")),
            (
                3,
                1,
                Some("threshold must be greater than one for multiple shares"),
            ),
            (256, 3, Some("shares must be less than 256")),
            (3, 4, Some("threshold cannot be larger than shares")),
            (255, 256, Some("threshold must be less than 256")),
        ];
        for &(n, t, expected) in cases {
            match (validate_parameters(n, t), expected) {
                (Ok(_), None) => {}
                (Err(err), Some(reason)) => {
                    assert_eq!(
                        err.to_string(),
                        format!("invalid seal configuration: {reason}")
                    );
                    assert!(err.is_client_error());
                }
                (result, _) => panic!("n={n} t={t}: unexpected {result:?}"),
            }
        }
        assert!(matches!(
            generate(3, 1),
            Err(SealError::InvalidParameters(_))
        ));
    }

    #[test]
    fn generate_issues_n_distinct_verified_shares() {
        let (_, shares, config) = generate(255, 2).unwrap();
        assert_eq!(shares.len(), 255);
        assert_eq!((config.secret_shares, config.secret_threshold), (255, 2));
        for (i, share) in shares.iter().enumerate() {
            assert_eq!(usize::from(share.x()), i + 1);
            assert_eq!(config.share_verifiers[i], share.verifier());
        }
    }

    #[test]
    fn seal_config_round_trips_and_rejects_garbage() {
        let (_, _, config) = generate(5, 3).unwrap();
        assert_eq!(SealConfig::decode(&config.encode()).unwrap(), config);
        assert!(matches!(
            SealConfig::decode(&[]),
            Err(SealError::MalformedConfig(_))
        ));
        let mut short = config.clone();
        short.share_verifiers.pop();
        assert!(matches!(
            SealConfig::decode(&short.encode()),
            Err(SealError::MalformedConfig(_))
        ));
    }

    #[test]
    fn root_key_wrap_round_trip_and_wrong_key() {
        let (unseal, _, _) = generate(3, 2).unwrap();
        let (other, _, _) = generate(3, 2).unwrap();
        let root = RootKey::generate();
        let blob = wrap_root_key(&unseal, &root);
        assert!(!blob.windows(KEY_LEN).any(|w| w == root.as_bytes()));
        assert_eq!(
            unwrap_root_key(&unseal, &blob).unwrap().as_bytes(),
            root.as_bytes()
        );
        assert!(matches!(
            unwrap_root_key(&other, &blob),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            unwrap_root_key(&unseal, &blob[..10]),
            Err(SealError::WrongKey)
        ));
        let moved = aead::seal(unseal.as_bytes(), b"core/keyring", root.as_bytes());
        assert!(matches!(
            unwrap_root_key(&unseal, &moved),
            Err(SealError::WrongKey)
        ));
    }

    #[test]
    fn debug_output_has_no_key_or_share_bytes() {
        let (unseal, shares, config) = generate(3, 2).unwrap();
        let root = RootKey::generate();
        let printed = format!("{unseal:?} {root:?} {shares:?} {config:?} {unseal:#?} {shares:#?}");
        assert!(!printed.contains(&hex::encode(unseal.as_bytes())));
        assert!(!printed.contains(&hex::encode(root.as_bytes())));
        for share in &shares {
            assert!(!printed.contains(&share.to_hex()));
            assert!(!printed.contains(&hex::encode(&share.as_bytes()[1..])));
        }
        // Decimal array printing (as a derived Debug would) is absent too.
        assert!(!printed.contains(&format!("{:?}", &unseal.as_bytes()[..4])));
    }
}
