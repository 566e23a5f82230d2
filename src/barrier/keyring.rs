//! The barrier's keyring: one 256-bit data key per term (the active term encrypts, every term
//! decrypts) and a MAC key for keyed hashes of tokens and audited values (not rotated with terms).
//!
//! Stored at `core/keyring` as `aead::seal(root key, AAD "core/keyring", codec(keyring))`. The
//! plaintext encoding only ever exists in wiped buffers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use strongroom_raft::codec;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{BarrierError, KEYRING_PATH};
use crate::crypto::{aead, random_bytes};
use crate::seal::RootKey;

/// One term's data key and when it was installed.
pub(super) struct TermKey {
    pub(super) key: Zeroizing<[u8; 32]>,
    /// Unix seconds.
    pub(super) install_time: u64,
}

/// All data keys and the MAC key. No `Debug`, `Clone` or `Serialize`: see [`KeyringWire`].
pub(super) struct Keyring {
    terms: BTreeMap<u32, TermKey>,
    active_term: u32,
    mac_key: Zeroizing<[u8; 32]>,
}

/// The serialized form; wiped when dropped, so encoding and decoding leave no copy behind.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct KeyringWire {
    active_term: u32,
    mac_key: [u8; 32],
    terms: Vec<TermWire>,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct TermWire {
    term: u32,
    install_time: u64,
    key: [u8; 32],
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Keyring {
    /// A fresh keyring: term 1 with a random key, and a random MAC key.
    pub(super) fn new() -> Self {
        let mut terms = BTreeMap::new();
        terms.insert(
            1,
            TermKey {
                key: random_bytes(),
                install_time: now_secs(),
            },
        );
        Self {
            terms,
            active_term: 1,
            mac_key: random_bytes(),
        }
    }

    /// The term new writes use, and its key.
    pub(super) fn active(&self) -> (u32, &TermKey) {
        let key = self
            .terms
            .get(&self.active_term)
            .expect("the active term is always in the keyring");
        (self.active_term, key)
    }

    /// The key of `term`, if this keyring has it.
    pub(super) fn term(&self, term: u32) -> Option<&TermKey> {
        self.terms.get(&term)
    }

    pub(super) fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// A copy of this keyring with a new random key at term `active + 1`, made active.
    pub(super) fn rotated(&self) -> Result<Self, BarrierError> {
        let next = self
            .active_term
            .checked_add(1)
            .ok_or(BarrierError::MalformedKeyring)?;
        let mut terms: BTreeMap<u32, TermKey> = self
            .terms
            .iter()
            .map(|(&term, key)| {
                (
                    term,
                    TermKey {
                        key: key.key.clone(),
                        install_time: key.install_time,
                    },
                )
            })
            .collect();
        terms.insert(
            next,
            TermKey {
                key: random_bytes(),
                install_time: now_secs(),
            },
        );
        Ok(Self {
            terms,
            active_term: next,
            mac_key: self.mac_key.clone(),
        })
    }

    /// Encrypts the keyring under the root key for storage at [`KEYRING_PATH`].
    pub(super) fn seal(&self, root_key: &RootKey) -> Vec<u8> {
        let wire = KeyringWire {
            active_term: self.active_term,
            mac_key: *self.mac_key,
            terms: self
                .terms
                .iter()
                .map(|(&term, key)| TermWire {
                    term,
                    install_time: key.install_time,
                    key: *key.key,
                })
                .collect(),
        };
        // Pre-sized so the encoder never reallocates (which would free an unwiped copy): at
        // most 48 bytes of header and 47 per term (varint integers plus the 32-byte key).
        let mut plaintext = Zeroizing::new(Vec::with_capacity(64 + 64 * self.terms.len()));
        // `codec::encode` is `[FORMAT_VERSION]` + `encode_into`; spelled out here to encode
        // straight into the wiped buffer.
        plaintext.push(codec::FORMAT_VERSION);
        codec::encode_into(&wire, &mut plaintext);
        aead::seal(root_key.as_bytes(), KEYRING_PATH.as_bytes(), &plaintext)
    }

    /// Decrypts and checks a keyring stored by [`Keyring::seal`].
    pub(super) fn open(root_key: &RootKey, blob: &[u8]) -> Result<Self, BarrierError> {
        let plaintext = aead::open(root_key.as_bytes(), KEYRING_PATH.as_bytes(), blob)
            .map_err(|_| BarrierError::Decrypt)?;
        let wire: KeyringWire =
            codec::decode(&plaintext).map_err(|_| BarrierError::MalformedKeyring)?;
        let mut terms = BTreeMap::new();
        for entry in &wire.terms {
            let key = TermKey {
                key: Zeroizing::new(entry.key),
                install_time: entry.install_time,
            };
            if terms.insert(entry.term, key).is_some() {
                return Err(BarrierError::MalformedKeyring);
            }
        }
        if !terms.contains_key(&wire.active_term) {
            return Err(BarrierError::MalformedKeyring);
        }
        Ok(Self {
            terms,
            active_term: wire.active_term,
            mac_key: Zeroizing::new(wire.mac_key),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keyring_has_term_one() {
        let ring = Keyring::new();
        let (term, key) = ring.active();
        assert_eq!(term, 1);
        assert!(key.install_time > 0);
        assert_ne!(*key.key, *ring.mac_key);
    }

    #[test]
    fn rotation_adds_a_term_and_keeps_the_rest() {
        let ring = Keyring::new();
        let rotated = ring.rotated().unwrap().rotated().unwrap();
        assert_eq!(rotated.active().0, 3);
        assert_eq!(*rotated.term(1).unwrap().key, *ring.term(1).unwrap().key);
        assert_ne!(*rotated.term(3).unwrap().key, *rotated.term(2).unwrap().key);
        assert_eq!(rotated.mac_key(), ring.mac_key());
    }

    #[test]
    fn seal_open_round_trip() {
        let root = RootKey::generate();
        let ring = Keyring::new().rotated().unwrap();
        let blob = ring.seal(&root);
        assert!(
            !blob.windows(32).any(
                |w| w == ring.mac_key().as_slice() || w == ring.term(1).unwrap().key.as_slice()
            )
        );
        let back = Keyring::open(&root, &blob).unwrap();
        assert_eq!(back.active().0, 2);
        assert_eq!(back.mac_key(), ring.mac_key());
        for term in [1, 2] {
            assert_eq!(*back.term(term).unwrap().key, *ring.term(term).unwrap().key);
            assert_eq!(
                back.term(term).unwrap().install_time,
                ring.term(term).unwrap().install_time
            );
        }
        assert!(matches!(
            Keyring::open(&RootKey::generate(), &blob),
            Err(BarrierError::Decrypt)
        ));
    }

    #[test]
    fn inconsistent_keyring_is_malformed() {
        let root = RootKey::generate();
        let wire = KeyringWire {
            active_term: 2,
            mac_key: [1; 32],
            terms: vec![TermWire {
                term: 1,
                install_time: 0,
                key: [2; 32],
            }],
        };
        let blob = aead::seal(
            root.as_bytes(),
            KEYRING_PATH.as_bytes(),
            &codec::encode(&wire),
        );
        assert!(matches!(
            Keyring::open(&root, &blob),
            Err(BarrierError::MalformedKeyring)
        ));
        let blob = aead::seal(root.as_bytes(), KEYRING_PATH.as_bytes(), b"not a keyring");
        assert!(matches!(
            Keyring::open(&root, &blob),
            Err(BarrierError::MalformedKeyring)
        ));
    }
}
