//! The barrier's keyring: per term a 256-bit data key (the active term encrypts, every term that
//! is not retired decrypts) and a journal key (encrypts the audit journal; never retired, because
//! the journal is append-only and hash-chained and so cannot be re-encrypted), plus a MAC key for
//! keyed hashes of tokens and audited values (not rotated with terms).
//!
//! Stored at `core/keyring` as `aead::seal(root key, AAD "core/keyring", plaintext)` where the
//! plaintext is `[WIRE_V2][codec(KeyringWire)]`. Keyrings written before journal keys existed
//! (plaintext starting with the codec's version byte) still open: their terms have no journal key,
//! so journal records of those terms were encrypted under the data key, and such a term can only be
//! retired once no journal record uses it (the core checks). The plaintext encoding only ever
//! exists in wiped buffers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use strongroom_raft::codec;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{BarrierError, KEYRING_PATH};
use crate::crypto::{aead, random_bytes};

/// First plaintext byte of a keyring with journal keys and retired terms.
const WIRE_V2: u8 = 0xA2;

/// Terms stay below this bit: the barrier marks journal ciphertexts with it.
pub(super) const JOURNAL_BIT: u32 = 0x8000_0000;

/// One term's keys and when they were installed.
pub(super) struct TermKey {
    /// The data key; `None` once the term is retired.
    pub(super) key: Option<Zeroizing<[u8; 32]>>,
    /// The journal key; `None` for terms made before journal keys existed.
    pub(super) journal_key: Option<Zeroizing<[u8; 32]>>,
    /// Unix seconds.
    pub(super) install_time: u64,
}

impl TermKey {
    fn fresh() -> Self {
        TermKey {
            key: Some(random_bytes()),
            journal_key: Some(random_bytes()),
            install_time: now_secs(),
        }
    }

    fn duplicate(&self) -> Self {
        TermKey {
            key: self.key.clone(),
            journal_key: self.journal_key.clone(),
            install_time: self.install_time,
        }
    }
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
    key: Option<[u8; 32]>,
    journal_key: Option<[u8; 32]>,
}

/// The form written before journal keys and retirement existed.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct LegacyKeyringWire {
    active_term: u32,
    mac_key: [u8; 32],
    terms: Vec<LegacyTermWire>,
}

#[derive(Serialize, Deserialize, Zeroize)]
struct LegacyTermWire {
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
    /// A fresh keyring: term 1 with random keys, and a random MAC key.
    pub(super) fn new() -> Self {
        let mut terms = BTreeMap::new();
        terms.insert(1, TermKey::fresh());
        Self {
            terms,
            active_term: 1,
            mac_key: random_bytes(),
        }
    }

    /// The term new writes use, and its keys.
    pub(super) fn active(&self) -> (u32, &TermKey) {
        let key = self
            .terms
            .get(&self.active_term)
            .expect("the active term is always in the keyring");
        (self.active_term, key)
    }

    /// The keys of `term`, if this keyring has it.
    pub(super) fn term(&self, term: u32) -> Option<&TermKey> {
        self.terms.get(&term)
    }

    /// Every term with whether it is retired, in term order.
    pub(super) fn terms(&self) -> impl Iterator<Item = (u32, &TermKey)> {
        self.terms.iter().map(|(&term, key)| (term, key))
    }

    pub(super) fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    fn duplicate_terms(&self) -> BTreeMap<u32, TermKey> {
        self.terms
            .iter()
            .map(|(&term, key)| (term, key.duplicate()))
            .collect()
    }

    /// A copy of this keyring with new random keys at term `active + 1`, made active.
    pub(super) fn rotated(&self) -> Result<Self, BarrierError> {
        let next = self
            .active_term
            .checked_add(1)
            .filter(|next| next & JOURNAL_BIT == 0)
            .ok_or(BarrierError::MalformedKeyring)?;
        let mut terms = self.duplicate_terms();
        terms.insert(next, TermKey::fresh());
        Ok(Self {
            terms,
            active_term: next,
            mac_key: self.mac_key.clone(),
        })
    }

    /// A copy of this keyring with `term`'s data key dropped (its journal key stays).
    pub(super) fn retired(&self, term: u32) -> Result<Self, BarrierError> {
        if term == self.active_term {
            return Err(BarrierError::ActiveTerm(term));
        }
        match self.terms.get(&term) {
            None => return Err(BarrierError::UnknownTerm(term)),
            Some(key) if key.key.is_none() => return Err(BarrierError::RetiredTerm(term)),
            Some(_) => {}
        }
        let mut terms = self.duplicate_terms();
        if let Some(entry) = terms.get_mut(&term) {
            entry.key = None;
        }
        Ok(Self {
            terms,
            active_term: self.active_term,
            mac_key: self.mac_key.clone(),
        })
    }

    /// Encrypts the keyring under `root_key` for storage at [`KEYRING_PATH`].
    pub(super) fn seal(&self, root_key: &[u8; 32]) -> Vec<u8> {
        let wire = KeyringWire {
            active_term: self.active_term,
            mac_key: *self.mac_key,
            terms: self
                .terms
                .iter()
                .map(|(&term, key)| TermWire {
                    term,
                    install_time: key.install_time,
                    key: key.key.as_deref().copied(),
                    journal_key: key.journal_key.as_deref().copied(),
                })
                .collect(),
        };
        // Pre-sized so the encoder never reallocates (which would free an unwiped copy): at
        // most 48 bytes of header and 84 per term (varint integers, two tagged 32-byte keys).
        let mut plaintext = Zeroizing::new(Vec::with_capacity(64 + 96 * self.terms.len()));
        plaintext.push(WIRE_V2);
        // `codec::encode` is `[FORMAT_VERSION]` + `encode_into`; spelled out here to encode
        // straight into the wiped buffer.
        plaintext.push(codec::FORMAT_VERSION);
        codec::encode_into(&wire, &mut plaintext);
        aead::seal(root_key, KEYRING_PATH.as_bytes(), &plaintext)
    }

    /// Decrypts and checks a keyring stored by [`Keyring::seal`] (or by an older build).
    pub(super) fn open(root_key: &[u8; 32], blob: &[u8]) -> Result<Self, BarrierError> {
        let plaintext = aead::open(root_key, KEYRING_PATH.as_bytes(), blob)
            .map_err(|_| BarrierError::Decrypt)?;
        let (active_term, mac_key, entries): (u32, Zeroizing<[u8; 32]>, Vec<(u32, TermKey)>) =
            match plaintext.split_first() {
                Some((&WIRE_V2, rest)) => {
                    let wire: KeyringWire =
                        codec::decode(rest).map_err(|_| BarrierError::MalformedKeyring)?;
                    let entries = wire
                        .terms
                        .iter()
                        .map(|entry| {
                            (
                                entry.term,
                                TermKey {
                                    key: entry.key.map(Zeroizing::new),
                                    journal_key: entry.journal_key.map(Zeroizing::new),
                                    install_time: entry.install_time,
                                },
                            )
                        })
                        .collect();
                    (wire.active_term, Zeroizing::new(wire.mac_key), entries)
                }
                _ => {
                    let wire: LegacyKeyringWire =
                        codec::decode(&plaintext).map_err(|_| BarrierError::MalformedKeyring)?;
                    let entries = wire
                        .terms
                        .iter()
                        .map(|entry| {
                            (
                                entry.term,
                                TermKey {
                                    key: Some(Zeroizing::new(entry.key)),
                                    journal_key: None,
                                    install_time: entry.install_time,
                                },
                            )
                        })
                        .collect();
                    (wire.active_term, Zeroizing::new(wire.mac_key), entries)
                }
            };
        let mut terms = BTreeMap::new();
        for (term, key) in entries {
            if term & JOURNAL_BIT != 0 || terms.insert(term, key).is_some() {
                return Err(BarrierError::MalformedKeyring);
            }
        }
        match terms.get(&active_term) {
            Some(active) if active.key.is_some() => {}
            _ => return Err(BarrierError::MalformedKeyring),
        }
        Ok(Self {
            terms,
            active_term,
            mac_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> [u8; 32] {
        *random_bytes::<32>()
    }

    #[test]
    fn fresh_keyring_has_term_one() {
        let ring = Keyring::new();
        let (term, key) = ring.active();
        assert_eq!(term, 1);
        assert!(key.install_time > 0);
        assert_ne!(**key.key.as_ref().unwrap(), *ring.mac_key);
        assert_ne!(key.key, key.journal_key);
    }

    #[test]
    fn rotation_adds_a_term_and_keeps_the_rest() {
        let ring = Keyring::new();
        let rotated = ring.rotated().unwrap().rotated().unwrap();
        assert_eq!(rotated.active().0, 3);
        assert_eq!(rotated.term(1).unwrap().key, ring.term(1).unwrap().key);
        assert_ne!(rotated.term(3).unwrap().key, rotated.term(2).unwrap().key);
        assert_eq!(rotated.mac_key(), ring.mac_key());
    }

    #[test]
    fn retiring_drops_only_the_data_key() {
        let ring = Keyring::new().rotated().unwrap();
        assert!(matches!(ring.retired(2), Err(BarrierError::ActiveTerm(2))));
        assert!(matches!(ring.retired(7), Err(BarrierError::UnknownTerm(7))));
        let retired = ring.retired(1).unwrap();
        assert!(retired.term(1).unwrap().key.is_none());
        assert_eq!(
            retired.term(1).unwrap().journal_key,
            ring.term(1).unwrap().journal_key
        );
        assert!(matches!(
            retired.retired(1),
            Err(BarrierError::RetiredTerm(1))
        ));
        let root = root();
        let back = Keyring::open(&root, &retired.seal(&root)).unwrap();
        assert!(back.term(1).unwrap().key.is_none());
        assert_eq!(back.active().0, 2);
    }

    #[test]
    fn seal_open_round_trip() {
        let root = root();
        let ring = Keyring::new().rotated().unwrap();
        let blob = ring.seal(&root);
        let term1 = **ring.term(1).unwrap().key.as_ref().unwrap();
        assert!(
            !blob
                .windows(32)
                .any(|w| w == ring.mac_key().as_slice() || w == term1.as_slice())
        );
        let back = Keyring::open(&root, &blob).unwrap();
        assert_eq!(back.active().0, 2);
        assert_eq!(back.mac_key(), ring.mac_key());
        for term in [1, 2] {
            let (a, b) = (back.term(term).unwrap(), ring.term(term).unwrap());
            assert_eq!(a.key, b.key);
            assert_eq!(a.journal_key, b.journal_key);
            assert_eq!(a.install_time, b.install_time);
        }
        assert!(matches!(
            Keyring::open(&self::root(), &blob),
            Err(BarrierError::Decrypt)
        ));
    }

    #[test]
    fn legacy_keyrings_still_open() {
        let root = root();
        let wire = LegacyKeyringWire {
            active_term: 1,
            mac_key: [1; 32],
            terms: vec![LegacyTermWire {
                term: 1,
                install_time: 5,
                key: [2; 32],
            }],
        };
        let blob = aead::seal(&root, KEYRING_PATH.as_bytes(), &codec::encode(&wire));
        let ring = Keyring::open(&root, &blob).unwrap();
        assert_eq!(**ring.term(1).unwrap().key.as_ref().unwrap(), [2; 32]);
        assert!(ring.term(1).unwrap().journal_key.is_none());
        assert!(
            ring.rotated()
                .unwrap()
                .term(2)
                .unwrap()
                .journal_key
                .is_some()
        );
    }

    #[test]
    fn inconsistent_keyring_is_malformed() {
        let root = root();
        let wire = LegacyKeyringWire {
            active_term: 2,
            mac_key: [1; 32],
            terms: vec![LegacyTermWire {
                term: 1,
                install_time: 0,
                key: [2; 32],
            }],
        };
        let blob = aead::seal(&root, KEYRING_PATH.as_bytes(), &codec::encode(&wire));
        assert!(matches!(
            Keyring::open(&root, &blob),
            Err(BarrierError::MalformedKeyring)
        ));
        let blob = aead::seal(&root, KEYRING_PATH.as_bytes(), b"not a keyring");
        assert!(matches!(
            Keyring::open(&root, &blob),
            Err(BarrierError::MalformedKeyring)
        ));
        // A retired active term is inconsistent too.
        let mut plaintext = vec![WIRE_V2];
        plaintext.extend(codec::encode(&KeyringWire {
            active_term: 1,
            mac_key: [1; 32],
            terms: vec![TermWire {
                term: 1,
                install_time: 0,
                key: None,
                journal_key: Some([3; 32]),
            }],
        }));
        let blob = aead::seal(&root, KEYRING_PATH.as_bytes(), &plaintext);
        assert!(matches!(
            Keyring::open(&root, &blob),
            Err(BarrierError::MalformedKeyring)
        ));
    }
}
