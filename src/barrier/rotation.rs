//! Changing the keyring through storage: the barrier builds the next keyring blob (rotated, with
//! a term retired, or re-wrapped under a new root key) from the *stored* blob, never from what it
//! happens to hold, so a proposal guarded on the stored blob's revision cannot lose a term another
//! node added. Nothing here installs what it builds: once the blob is committed, every node picks
//! it up with [`Barrier::refresh`] (the core calls it when its node applies a write, and the
//! barrier calls it itself when it meets a term it does not know).
//!
//! Root-key rotation writes, beside the re-wrapped keyring and the new root key wrapped by the
//! (unchanged) unseal key, an upgrade record at [`ROOT_UPGRADE_PATH`]: `[unix seconds: 8][new root
//! key sealed under the previous root key]`. A node still holding the previous root key follows
//! through it; the core deletes the record after a grace period, so an old root key does not lead
//! to the current one for long.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::keyring::Keyring;
use super::{Barrier, BarrierError, ROOT_UPGRADE_PATH};
use crate::crypto::aead;
use crate::seal::{self, RootKey};

/// Where the barrier reads the stored keyring from (the core's store reader).
pub trait KeyringSource: Send + Sync {
    /// The stored keyring blob and its mod_revision.
    ///
    /// # Errors
    ///
    /// The store could not be read (the message names no secret).
    fn keyring(&self) -> Result<Option<(u64, Vec<u8>)>, String>;

    /// The stored root-key upgrade record, if any.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    fn root_upgrade(&self) -> Result<Option<Vec<u8>>, String>;
}

/// One term of the held keyring, for status pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermInfo {
    /// The term.
    pub term: u32,
    /// When it was installed (Unix seconds).
    pub install_time: u64,
    /// Whether its data key was retired.
    pub retired: bool,
    /// Whether it is the active term.
    pub active: bool,
}

/// The three blobs a root-key rotation stores.
pub struct RootRotation {
    /// The new root key wrapped by the unseal key, for [`super::ROOT_KEY_PATH`].
    pub root_key_blob: Vec<u8>,
    /// The keyring under the new root key, for [`super::KEYRING_PATH`].
    pub keyring_blob: Vec<u8>,
    /// The new root key under the previous one, for [`ROOT_UPGRADE_PATH`].
    pub upgrade_blob: Vec<u8>,
    /// The unseal key that wraps the new root key, in its stored form for
    /// [`super::UNSEAL_KEY_PATH`] (written back so clusters from before that path gain it).
    pub unseal_key_value: Zeroizing<Vec<u8>>,
}

/// When an upgrade record was written (Unix seconds).
pub fn upgrade_time(blob: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(*blob.first_chunk::<8>()?))
}

impl Barrier {
    /// Every term of the held keyring.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`].
    pub fn terms(&self) -> Result<Vec<TermInfo>, BarrierError> {
        let held = self.held()?;
        let active = held.keyring.active().0;
        Ok(held
            .keyring
            .terms()
            .map(|(term, key)| TermInfo {
                term,
                install_time: key.install_time,
                retired: key.key.is_none(),
                active: term == active,
            })
            .collect())
    }

    /// The mod_revision of the stored keyring the barrier holds, once it loaded one from storage.
    pub fn keyring_revision(&self) -> Option<u64> {
        self.current().and_then(|held| held.revision)
    }

    /// Whether `term`'s journal records need its data key (it has no journal key).
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`], [`BarrierError::UnknownTerm`].
    pub fn term_has_journal_key(&self, term: u32) -> Result<bool, BarrierError> {
        let held = self.held()?;
        let key = held
            .keyring
            .term(term)
            .ok_or(BarrierError::UnknownTerm(term))?;
        Ok(key.journal_key.is_some())
    }

    /// Opens a stored keyring blob with the held root key, following a root rotation this node
    /// has not installed yet. Returns the keyring and the root key that opened it.
    fn open_stored(&self, blob: &[u8]) -> Result<(Keyring, Zeroizing<[u8; 32]>), BarrierError> {
        let held = self.held()?;
        match Keyring::open(&held.root, blob) {
            Ok(keyring) => Ok((keyring, held.root.clone())),
            Err(BarrierError::Decrypt) => {
                let source = self
                    .source
                    .get()
                    .ok_or_else(|| BarrierError::Reload("no keyring source".into()))?;
                let upgrade = source
                    .root_upgrade()
                    .map_err(BarrierError::Reload)?
                    .ok_or(BarrierError::Decrypt)?;
                let sealed = upgrade.get(8..).ok_or(BarrierError::Decrypt)?;
                let plaintext = aead::open(&held.root, ROOT_UPGRADE_PATH.as_bytes(), sealed)
                    .map_err(|_| BarrierError::Decrypt)?;
                let root: [u8; 32] = plaintext
                    .as_slice()
                    .try_into()
                    .map_err(|_| BarrierError::Decrypt)?;
                let root = Zeroizing::new(root);
                Ok((Keyring::open(&root, blob)?, root))
            }
            Err(other) => Err(other),
        }
    }

    /// Installs the stored keyring if it changed since this node loaded one. Returns whether
    /// anything changed. A sealed barrier, or one without a source, does nothing.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Reload`] if the store cannot be read; [`BarrierError::Decrypt`] if the
    /// stored keyring is under a root key this node cannot reach (it missed the upgrade record's
    /// grace period: seal and unseal it).
    pub fn refresh(&self) -> Result<bool, BarrierError> {
        let Some(source) = self.source.get() else {
            return Ok(false);
        };
        let _serial = self
            .reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(held) = self.current() else {
            return Ok(false);
        };
        let Some((revision, blob)) = source.keyring().map_err(BarrierError::Reload)? else {
            return Ok(false);
        };
        if held.revision == Some(revision) {
            return Ok(false);
        }
        let (keyring, root) = self.open_stored(&blob)?;
        if self.current().is_none() {
            return Ok(false); // sealed meanwhile
        }
        self.install(keyring, root, Some(revision));
        Ok(true)
    }

    /// The stored keyring plus a new active term, encrypted for storage at
    /// [`super::KEYRING_PATH`]. Returns the blob and the new term.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Sealed`], or the stored blob does not open.
    pub fn rotated_keyring(&self, stored: &[u8]) -> Result<(Vec<u8>, u32), BarrierError> {
        let (keyring, root) = self.open_stored(stored)?;
        let rotated = keyring.rotated()?;
        Ok((rotated.seal(&root), rotated.active().0))
    }

    /// The stored keyring with `term`'s data key dropped, encrypted for storage. The caller checks
    /// that no value (and no legacy journal record) still uses the term.
    ///
    /// # Errors
    ///
    /// [`BarrierError::ActiveTerm`], [`BarrierError::UnknownTerm`],
    /// [`BarrierError::RetiredTerm`], or the stored blob does not open.
    pub fn retired_keyring(&self, stored: &[u8], term: u32) -> Result<Vec<u8>, BarrierError> {
        let (keyring, root) = self.open_stored(stored)?;
        Ok(keyring.retired(term)?.seal(&root))
    }

    /// A new root key: the stored keyring re-wrapped under it, it wrapped by the unseal key (so
    /// the shares keep working), and the upgrade record. The unseal key is `stored_unseal_key`
    /// (read from [`super::UNSEAL_KEY_PATH`]) when given, else the one this node holds since it
    /// was unsealed; `stored_root_key` must open with it to the root key this node holds. A
    /// stored key that passes becomes the held one.
    ///
    /// # Errors
    ///
    /// [`BarrierError::UnsealKeyOutdated`] if the unseal key does not match the stored root key
    /// (or there is none), [`BarrierError::Sealed`], or the stored keyring does not open.
    pub fn rotate_root(
        &self,
        stored_root_key: &[u8],
        stored_keyring: &[u8],
        stored_unseal_key: Option<seal::UnsealKey>,
        now_secs: u64,
    ) -> Result<RootRotation, BarrierError> {
        let (keyring, old_root) = self.open_stored(stored_keyring)?;
        let mut guard = self
            .unseal_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let candidate = match &stored_unseal_key {
            Some(key) => key,
            None => guard.as_ref().ok_or(BarrierError::UnsealKeyOutdated)?,
        };
        let unseal_key = candidate;
        let stored_root = seal::unwrap_root_key(unseal_key, stored_root_key)
            .map_err(|_| BarrierError::UnsealKeyOutdated)?;
        if !bool::from(stored_root.as_bytes().ct_eq(&*old_root)) {
            return Err(BarrierError::UnsealKeyOutdated);
        }
        let new_root = RootKey::generate();
        let root_key_blob = seal::wrap_root_key(unseal_key, &new_root);
        let unseal_key_value = unseal_key.to_barrier_value();
        if let Some(stored) = stored_unseal_key {
            *guard = Some(stored);
        }
        drop(guard);
        let keyring_blob = keyring.seal(new_root.as_bytes());
        let mut upgrade_blob = now_secs.to_be_bytes().to_vec();
        upgrade_blob.extend(aead::seal(
            &old_root,
            ROOT_UPGRADE_PATH.as_bytes(),
            new_root.as_bytes(),
        ));
        Ok(RootRotation {
            root_key_blob,
            keyring_blob,
            upgrade_blob,
            unseal_key_value,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::{JOURNAL_AAD, TERM_LEN};
    use super::*;

    /// A stand-in for the replicated store.
    #[derive(Default)]
    struct Store {
        keyring: Mutex<Option<(u64, Vec<u8>)>>,
        upgrade: Mutex<Option<Vec<u8>>>,
    }

    impl Store {
        fn put_keyring(&self, blob: Vec<u8>) {
            let mut slot = self.keyring.lock().unwrap();
            let revision = slot.as_ref().map_or(1, |(rev, _)| rev + 1);
            *slot = Some((revision, blob));
        }
        fn keyring_blob(&self) -> Vec<u8> {
            self.keyring.lock().unwrap().clone().unwrap().1
        }
    }

    struct Source(Arc<Store>);

    impl KeyringSource for Source {
        fn keyring(&self) -> Result<Option<(u64, Vec<u8>)>, String> {
            Ok(self.0.keyring.lock().unwrap().clone())
        }
        fn root_upgrade(&self) -> Result<Option<Vec<u8>>, String> {
            Ok(self.0.upgrade.lock().unwrap().clone())
        }
    }

    /// Two nodes over one store, both unsealed, plus the shares' unseal key and root blob.
    fn cluster() -> (Arc<Store>, Barrier, Barrier, Vec<u8>) {
        let (unseal_key, _, _) = seal::generate(3, 2).unwrap();
        let root = RootKey::generate();
        let root_blob = seal::wrap_root_key(&unseal_key, &root);
        let (_, keyring_blob) = Barrier::initialize(&root);
        let store = Arc::new(Store::default());
        store.put_keyring(keyring_blob.clone());
        let make = || {
            let barrier = Barrier::new_sealed();
            barrier.set_source(Box::new(Source(store.clone())));
            barrier.unseal(&root, &keyring_blob).unwrap();
            barrier
        };
        let (a, b) = (make(), make());
        a.hold_unseal_key(unseal_key);
        (store, a, b, root_blob)
    }

    #[test]
    fn a_rotation_committed_by_one_node_is_followed_by_the_other() {
        let (store, a, b, _) = cluster();
        let old = b.encrypt("k", b"v1").unwrap();
        let (blob, term) = a.rotated_keyring(&store.keyring_blob()).unwrap();
        assert_eq!(term, 2);
        store.put_keyring(blob);
        assert!(a.refresh().unwrap());
        assert!(!a.refresh().unwrap(), "same revision: nothing to do");
        let new = a.encrypt("k", b"v2").unwrap();
        assert_eq!(new[..TERM_LEN], 2u32.to_be_bytes());
        // b has not refreshed: it meets term 2, reloads and retries once.
        assert_eq!(b.key_status().unwrap().term, 1);
        assert_eq!(b.decrypt("k", &new).unwrap().as_slice(), b"v2");
        assert_eq!(b.key_status().unwrap().term, 2);
        assert_eq!(a.decrypt("k", &old).unwrap().as_slice(), b"v1");
    }

    #[test]
    fn rotations_build_on_the_stored_keyring_not_the_held_one() {
        let (store, a, b, _) = cluster();
        let (first, _) = a.rotated_keyring(&store.keyring_blob()).unwrap();
        store.put_keyring(first);
        // b never refreshed, yet its rotation keeps a's term 2.
        let (second, term) = b.rotated_keyring(&store.keyring_blob()).unwrap();
        assert_eq!(term, 3);
        store.put_keyring(second);
        a.refresh().unwrap();
        let terms: Vec<u32> = a.terms().unwrap().iter().map(|t| t.term).collect();
        assert_eq!(terms, [1, 2, 3]);
    }

    #[test]
    fn journal_records_use_the_journal_key_and_survive_retirement() {
        let (store, a, _, _) = cluster();
        let record = a.encrypt(JOURNAL_AAD, b"audit").unwrap();
        let value = a.encrypt("k", b"v").unwrap();
        assert_eq!(super::super::value_term(&record), Some((1, true)));
        assert_eq!(super::super::value_term(&value), Some((1, false)));
        let (blob, _) = a.rotated_keyring(&store.keyring_blob()).unwrap();
        store.put_keyring(blob);
        a.refresh().unwrap();
        assert!(matches!(
            a.retired_keyring(&store.keyring_blob(), 2),
            Err(BarrierError::ActiveTerm(2))
        ));
        let blob = a.retired_keyring(&store.keyring_blob(), 1).unwrap();
        store.put_keyring(blob);
        assert!(a.refresh().unwrap());
        assert_eq!(
            a.decrypt(JOURNAL_AAD, &record).unwrap().as_slice(),
            b"audit"
        );
        assert!(matches!(
            a.decrypt("k", &value),
            Err(BarrierError::RetiredTerm(1))
        ));
        let info = a.terms().unwrap();
        assert!(info[0].retired && !info[0].active && info[1].active);
    }

    #[test]
    fn root_rotation_is_followed_and_keeps_the_shares_working() {
        let (store, a, b, root_blob) = cluster();
        let value = a.encrypt("k", b"v").unwrap();
        let rotation = a
            .rotate_root(&root_blob, &store.keyring_blob(), None, 1_000)
            .unwrap();
        assert_eq!(upgrade_time(&rotation.upgrade_blob), Some(1_000));
        store.put_keyring(rotation.keyring_blob.clone());
        *store.upgrade.lock().unwrap() = Some(rotation.upgrade_blob.clone());
        assert!(a.refresh().unwrap());
        assert!(b.refresh().unwrap());
        assert_eq!(b.decrypt("k", &value).unwrap().as_slice(), b"v");
        // A node unsealed from scratch with the same shares' unseal key opens the new root.
        let (blob, term) = b.rotated_keyring(&store.keyring_blob()).unwrap();
        assert_eq!(term, 2);
        store.put_keyring(blob);
        assert!(a.refresh().unwrap());
        // Rotating again needs the new stored root key; the old one is refused.
        assert!(matches!(
            a.rotate_root(&root_blob, &store.keyring_blob(), None, 2_000),
            Err(BarrierError::UnsealKeyOutdated)
        ));
        a.rotate_root(&rotation.root_key_blob, &store.keyring_blob(), None, 2_000)
            .unwrap();
        // b holds no unseal key.
        assert!(matches!(
            b.rotate_root(&rotation.root_key_blob, &store.keyring_blob(), None, 2_000),
            Err(BarrierError::UnsealKeyOutdated)
        ));
    }

    #[test]
    fn the_stored_unseal_key_serves_a_node_whose_held_key_is_stale_or_absent() {
        let (store, a, b, root_blob) = cluster();
        // a's held key is the shares' key; the rotation hands it back in its stored form.
        let first = a
            .rotate_root(&root_blob, &store.keyring_blob(), None, 1_000)
            .unwrap();
        let stored = first.unseal_key_value.clone();
        store.put_keyring(first.keyring_blob.clone());
        *store.upgrade.lock().unwrap() = Some(first.upgrade_blob.clone());
        assert!(b.refresh().unwrap());
        // b holds no unseal key, but with the stored one it rotates, and then holds it.
        let key = seal::UnsealKey::from_barrier_value(&stored).unwrap();
        let second = b
            .rotate_root(
                &first.root_key_blob,
                &store.keyring_blob(),
                Some(key),
                2_000,
            )
            .unwrap();
        assert_eq!(*second.unseal_key_value, *stored);
        store.put_keyring(second.keyring_blob.clone());
        *store.upgrade.lock().unwrap() = Some(second.upgrade_blob.clone());
        assert!(b.refresh().unwrap());
        b.rotate_root(&second.root_key_blob, &store.keyring_blob(), None, 3_000)
            .unwrap();
        // A stored key that does not open the stored root key is refused, not used.
        let (other, _, _) = seal::generate(3, 2).unwrap();
        assert!(matches!(
            b.rotate_root(
                &second.root_key_blob,
                &store.keyring_blob(),
                Some(other),
                3_000
            ),
            Err(BarrierError::UnsealKeyOutdated)
        ));
        assert!(seal::UnsealKey::from_barrier_value(b"short").is_none());
    }

    #[test]
    fn a_node_that_missed_the_upgrade_record_cannot_follow() {
        let (store, a, b, root_blob) = cluster();
        let rotation = a
            .rotate_root(&root_blob, &store.keyring_blob(), None, 1)
            .unwrap();
        store.put_keyring(rotation.keyring_blob);
        assert!(matches!(b.refresh(), Err(BarrierError::Decrypt)));
        assert_eq!(b.key_status().unwrap().term, 1, "b keeps what it had");
    }

    #[test]
    fn encryptions_are_counted_per_term() {
        let (store, a, _, _) = cluster();
        for _ in 0..3 {
            a.encrypt("k", b"v").unwrap();
        }
        assert_eq!(a.key_status().unwrap().encryptions, 3);
        let (blob, _) = a.rotated_keyring(&store.keyring_blob()).unwrap();
        store.put_keyring(blob);
        a.refresh().unwrap();
        assert_eq!(a.key_status().unwrap().encryptions, 0);
    }

    #[test]
    fn seal_drops_the_unseal_key_too() {
        let (store, a, _, root_blob) = cluster();
        a.seal();
        assert!(matches!(
            a.rotate_root(&root_blob, &store.keyring_blob(), None, 1),
            Err(BarrierError::Sealed)
        ));
        assert!(!a.refresh().unwrap());
    }
}
