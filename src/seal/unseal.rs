//! A node's unseal progress: the shares submitted so far (in memory only, wiped on reset), the
//! nonce that names this attempt, and the combination into the unseal key at the threshold.
//!
//! The same collector serves rekey (old shares, then the new ones for verification) and
//! generate-root. Held shares are bound to the seal configuration they were checked against: when
//! the configuration changes (a rekey committed elsewhere in the cluster), the held shares belong
//! to a key that no longer opens anything, so the next submission starts a new attempt.

use std::fmt;

use shamirsecretsharing::hazmat::combine_keyshares;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::keys::{KEY_LEN, UnsealKey};
use super::shares::Share;
use super::{SealConfig, SealError};
use crate::crypto::random_id;

/// Most shares a vault can have (x is one byte, 0 excluded): reserving this much up front means
/// the held shares are never moved by a reallocation, which would leave unwiped copies.
const MAX_SHARES: usize = 255;

/// Shares accepted so far on this node, towards [`SealConfig::secret_threshold`].
pub struct UnsealProgress {
    nonce: String,
    held: Vec<Share>,
    /// The verifiers of the configuration the held shares were accepted under.
    bound: Vec<[u8; 32]>,
}

impl UnsealProgress {
    /// No shares held, a fresh nonce.
    pub fn new() -> Self {
        Self {
            nonce: random_id(),
            held: Vec::with_capacity(MAX_SHARES),
            bound: Vec::new(),
        }
    }

    /// The id of the current unseal attempt (changes on reset and on completion).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// How many distinct valid shares are held.
    pub fn progress(&self) -> usize {
        self.held.len()
    }

    /// Drops (and wipes) every held share and starts a new attempt with a new nonce.
    pub fn reset(&mut self) {
        self.held.clear();
        self.bound.clear();
        self.nonce = random_id();
    }

    /// Submits one share (hex or base64 text).
    ///
    /// Returns `Ok(Some(key))` when this share completes the threshold (progress is then reset),
    /// `Ok(None)` while more are needed. A rejected share leaves the accepted ones in place.
    ///
    /// # Errors
    ///
    /// Share parse errors (see [`Share::parse`]); [`SealError::ForeignShare`] if the share is not
    /// one of this vault's (its verifier is not in `config`); [`SealError::DuplicateShare`] if a
    /// share with the same x is already held; [`SealError::MalformedConfig`] if `config` is
    /// inconsistent.
    pub fn submit(
        &mut self,
        config: &SealConfig,
        key_text: &str,
    ) -> Result<Option<UnsealKey>, SealError> {
        config.check()?;
        if !self.held.is_empty() && self.bound != config.share_verifiers {
            // The held shares were issued for a configuration that has since been replaced.
            self.reset();
        }
        let share = Share::parse(key_text)?;
        if !is_known(config, &share) {
            return Err(SealError::ForeignShare);
        }
        let duplicate = self.held.iter().fold(Choice::from(0), |found, held| {
            found | held.x().ct_eq(&share.x())
        });
        if bool::from(duplicate) {
            return Err(SealError::DuplicateShare);
        }
        if self.held.is_empty() {
            self.bound.clone_from(&config.share_verifiers);
        }
        self.held.push(share);
        if self.held.len() < usize::from(config.secret_threshold) {
            return Ok(None);
        }
        let key = combine(&self.held);
        self.reset();
        Ok(Some(key))
    }
}

impl Default for UnsealProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for UnsealProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsealProgress")
            .field("nonce", &self.nonce)
            .field("progress", &self.held.len())
            .finish_non_exhaustive()
    }
}

/// Whether the share's verifier is one of the config's, comparing against all in constant time.
fn is_known(config: &SealConfig, share: &Share) -> bool {
    let verifier = share.verifier();
    let found = config
        .share_verifiers
        .iter()
        .fold(Choice::from(0), |found, known| {
            found | known.ct_eq(&verifier)
        });
    found.into()
}

/// Lagrange-interpolates the held shares into the unseal key. The result is only as right as the
/// shares: verifiers make a wrong mix unlikely, the root key's AEAD tag makes it detected.
fn combine(shares: &[Share]) -> UnsealKey {
    let raw: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(
        shares
            .iter()
            .map(|share| share.as_bytes().to_vec())
            .collect(),
    );
    let combined = Zeroizing::new(
        combine_keyshares(&raw).expect("every held share is exactly SHARE_LEN bytes"),
    );
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // combine_keyshares always returns KEY_SIZE (32) bytes.
    key.copy_from_slice(&combined);
    UnsealKey::from_bytes(key)
}

#[cfg(test)]
mod tests {
    use super::super::{RootKey, generate, unwrap_root_key, wrap_root_key};
    use super::*;

    fn submit_all(
        progress: &mut UnsealProgress,
        config: &SealConfig,
        shares: &[&Share],
    ) -> Option<UnsealKey> {
        let mut result = None;
        for (i, share) in shares.iter().enumerate() {
            result = progress.submit(config, &share.to_hex()).unwrap();
            assert_eq!(
                result.is_some(),
                i + 1 == shares.len(),
                "completes exactly at the threshold"
            );
        }
        result
    }

    #[test]
    fn any_threshold_subset_recovers_the_key() {
        let (key, shares, config) = generate(5, 3).unwrap();
        let root = RootKey::generate();
        let wrapped = wrap_root_key(&key, &root);
        let subsets: [[usize; 3]; 5] = [[0, 1, 2], [2, 3, 4], [4, 0, 2], [1, 3, 4], [3, 1, 0]];
        for subset in subsets {
            let mut progress = UnsealProgress::new();
            let picked: Vec<&Share> = subset.iter().map(|&i| &shares[i]).collect();
            let recovered = submit_all(&mut progress, &config, &picked).unwrap();
            assert_eq!(recovered.as_bytes(), key.as_bytes());
            assert_eq!(
                unwrap_root_key(&recovered, &wrapped).unwrap().as_bytes(),
                root.as_bytes()
            );
            assert_eq!(progress.progress(), 0, "progress clears on completion");
        }
    }

    #[test]
    fn fewer_than_threshold_do_not_complete() {
        let (_, shares, config) = generate(5, 3).unwrap();
        let mut progress = UnsealProgress::new();
        assert!(
            progress
                .submit(&config, &shares[0].to_hex())
                .unwrap()
                .is_none()
        );
        assert!(
            progress
                .submit(&config, &shares[1].to_base64())
                .unwrap()
                .is_none()
        );
        assert_eq!(progress.progress(), 2);
    }

    #[test]
    fn single_share_mode() {
        let (key, shares, config) = generate(1, 1).unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].x(), 1);
        assert_eq!(
            &shares[0].as_bytes()[1..],
            key.as_bytes(),
            "n = t = 1: the share is the key"
        );
        let recovered = UnsealProgress::new()
            .submit(&config, &shares[0].to_base64())
            .unwrap()
            .unwrap();
        assert_eq!(recovered.as_bytes(), key.as_bytes());
    }

    #[test]
    fn duplicate_is_rejected_and_progress_kept() {
        let (key, shares, config) = generate(3, 2).unwrap();
        let mut progress = UnsealProgress::new();
        let nonce = progress.nonce().to_string();
        progress.submit(&config, &shares[1].to_hex()).unwrap();
        assert!(matches!(
            progress.submit(&config, &shares[1].to_base64()),
            Err(SealError::DuplicateShare)
        ));
        assert_eq!(progress.progress(), 1);
        assert_eq!(progress.nonce(), nonce);
        let recovered = progress
            .submit(&config, &shares[2].to_hex())
            .unwrap()
            .unwrap();
        assert_eq!(recovered.as_bytes(), key.as_bytes());
        assert_ne!(
            progress.nonce(),
            nonce,
            "a completed attempt gets a new nonce"
        );
    }

    #[test]
    fn foreign_share_is_rejected_and_progress_kept() {
        let (key, shares, config) = generate(3, 2).unwrap();
        let (_, other_shares, _) = generate(3, 2).unwrap();
        let mut progress = UnsealProgress::new();
        progress.submit(&config, &shares[0].to_hex()).unwrap();
        let err = progress
            .submit(&config, &other_shares[1].to_hex())
            .unwrap_err();
        assert!(matches!(err, SealError::ForeignShare));
        assert!(err.is_client_error());
        assert!(matches!(
            progress.submit(&config, "garbage"),
            Err(SealError::InvalidShareEncoding)
        ));
        assert_eq!(progress.progress(), 1);
        let recovered = progress
            .submit(&config, &shares[1].to_hex())
            .unwrap()
            .unwrap();
        assert_eq!(recovered.as_bytes(), key.as_bytes());
    }

    #[test]
    fn reset_clears_and_renews_nonce() {
        let (_, shares, config) = generate(3, 3).unwrap();
        let mut progress = UnsealProgress::new();
        let nonce = progress.nonce().to_string();
        progress.submit(&config, &shares[0].to_hex()).unwrap();
        progress.submit(&config, &shares[1].to_hex()).unwrap();
        progress.reset();
        assert_eq!(progress.progress(), 0);
        assert_ne!(progress.nonce(), nonce);
        assert!(
            progress
                .submit(&config, &shares[2].to_hex())
                .unwrap()
                .is_none()
        );
        assert!(!format!("{progress:?}").contains(&shares[2].to_hex()));
    }

    #[test]
    fn a_new_configuration_discards_shares_held_for_the_old_one() {
        let (_, old_shares, old_config) = generate(5, 3).unwrap();
        let (new_key, new_shares, new_config) = generate(3, 2).unwrap();
        let mut progress = UnsealProgress::new();
        progress
            .submit(&old_config, &old_shares[0].to_hex())
            .unwrap();
        progress
            .submit(&old_config, &old_shares[1].to_hex())
            .unwrap();
        let nonce = progress.nonce().to_string();
        // The configuration was replaced: the old shares are no longer held, a new attempt starts.
        assert!(
            progress
                .submit(&new_config, &new_shares[0].to_hex())
                .unwrap()
                .is_none()
        );
        assert_eq!(progress.progress(), 1);
        assert_ne!(progress.nonce(), nonce);
        let key = progress
            .submit(&new_config, &new_shares[2].to_hex())
            .unwrap()
            .unwrap();
        assert!(key.ct_eq(&new_key));
        assert!(matches!(
            progress.submit(&new_config, &old_shares[2].to_hex()),
            Err(SealError::ForeignShare)
        ));
    }

    #[test]
    fn inconsistent_config_is_refused() {
        let (_, shares, mut config) = generate(3, 2).unwrap();
        config.secret_threshold = 0;
        let err = UnsealProgress::new()
            .submit(&config, &shares[0].to_hex())
            .unwrap_err();
        assert!(matches!(err, SealError::MalformedConfig(_)));
        assert!(!err.is_client_error());
    }
}
