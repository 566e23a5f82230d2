//! HSM auto-unseal (`[seal.pkcs11]`): a node whose configuration names an HSM asks it to decrypt
//! the stored, HSM-wrapped unseal key (`core/hsm-unseal-key`) and unseals itself: at start, after
//! a restart, and as soon as `sys/init` (on any node) has committed the blob. Init and rekey on
//! such a cluster store the unseal key wrapped by the HSM next to the usual seal material.
//!
//! The unseal key's Shamir shares are the cluster's recovery shares: a node whose HSM cannot be
//! opened (token or key gone) stays sealed and `sys/unseal` with a quorum of recovery shares
//! unseals it, as on a Shamir cluster.
//!
//! Seal migration (`migrate: true` on `sys/unseal`, Vault's flow): a node whose configured seal
//! differs from the cluster's (an HSM configured on a Shamir cluster, or none on an HSM cluster)
//! reports `migration: true`; a quorum of shares submitted with `migrate` then commits the switch
//! for the whole cluster: the HSM-wrapped unseal key is stored (Shamir -> PKCS#11) or deleted
//! (PKCS#11 -> Shamir). The unseal key and its shares stay the same, so the shares simply change
//! role (unseal shares <-> recovery shares) and nothing else is re-encrypted.

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use strongroom_raft::Guard;
use strongroom_raft::Op;
use strongroom_raft::Txn;
use strongroom_raft::TxnOutcome;

use super::Core;
use super::CoreError;
use crate::barrier::KEYRING_PATH;
use crate::barrier::ROOT_KEY_PATH;
use crate::seal;
use crate::seal::UnsealKey;
use crate::seal::pkcs11::HSM_UNSEAL_KEY_PATH;
use crate::seal::pkcs11::Hsm;

/// How often a sealed node with an HSM looks for the wrapped unseal key (until it unseals).
const AUTO_UNSEAL_POLL: Duration = Duration::from_millis(250);

/// This node's HSM, as set once at startup.
#[derive(Debug)]
pub enum HsmSetup {
    /// Opened and logged in; the wrapping key was found.
    Ready(Arc<Hsm>),
    /// Configured, but it could not be opened (the reason, with no secret in it): the node
    /// stays sealed until recovery shares unseal it.
    Unavailable(String),
}

impl Core {
    /// Sets this node's HSM (once, at startup, before requests are served).
    pub fn set_hsm(&self, setup: HsmSetup) {
        if self.hsm.set(setup).is_err() {
            tracing::warn!("the HSM was already set up; keeping the first one");
        }
    }

    /// Whether this node's configuration has an HSM (`[seal.pkcs11]`), usable or not.
    pub fn hsm_configured(&self) -> bool {
        self.hsm.get().is_some()
    }

    /// Whether the cluster's unseal key is stored wrapped by an HSM (a local read).
    pub fn is_hsm_sealed(&self) -> Result<bool, CoreError> {
        Ok(self.reader().get(HSM_UNSEAL_KEY_PATH)?.is_some())
    }

    /// Vault's seal `type` and `recovery_seal` for seal status: `pkcs11` once the cluster stores
    /// an HSM-wrapped key, or before init on a node configured with one.
    pub(super) fn seal_type(&self, initialized: bool) -> Result<(&'static str, bool), CoreError> {
        let hsm = if initialized {
            self.is_hsm_sealed()?
        } else {
            self.hsm_configured()
        };
        Ok(if hsm {
            ("pkcs11", true)
        } else {
            ("shamir", false)
        })
    }

    /// The opened HSM, or why there is none.
    fn ready_hsm(&self) -> Result<&Arc<Hsm>, CoreError> {
        match self.hsm.get() {
            Some(HsmSetup::Ready(hsm)) => Ok(hsm),
            Some(HsmSetup::Unavailable(reason)) => Err(CoreError::Unavailable(format!(
                "this node's HSM is unavailable: {reason}"
            ))),
            None => Err(CoreError::InvalidRequest(
                "this node has no HSM configured ([seal.pkcs11])".into(),
            )),
        }
    }

    /// The write storing `unseal_key` wrapped by this node's HSM, for `sys/init` on a node with
    /// an HSM (`None` without one).
    ///
    /// # Errors
    ///
    /// [`CoreError::Unavailable`] if the HSM is configured but could not be opened or refuses.
    pub(super) fn hsm_init_op(&self, unseal_key: &UnsealKey) -> Result<Option<Op>, CoreError> {
        if !self.hsm_configured() {
            return Ok(None);
        }
        self.hsm_wrap_op(unseal_key).map(Some)
    }

    /// The write replacing the HSM-wrapped unseal key after a rekey made a new one: `None` on a
    /// Shamir cluster. On an HSM cluster the rekey must run on a node whose HSM works, or the
    /// stored blob would open an unseal key that no longer opens the root key.
    ///
    /// # Errors
    ///
    /// [`CoreError::Unavailable`] / [`CoreError::InvalidRequest`] if this node cannot wrap.
    pub(super) fn hsm_rekey_op(&self, new_key: &UnsealKey) -> Result<Option<Op>, CoreError> {
        if !self.is_hsm_sealed()? {
            return Ok(None);
        }
        self.hsm_wrap_op(new_key).map(Some)
    }

    fn hsm_wrap_op(&self, unseal_key: &UnsealKey) -> Result<Op, CoreError> {
        let blob = self
            .ready_hsm()?
            .wrap_unseal_key(unseal_key)
            .map_err(|err| {
                tracing::error!(error = %err, "the HSM could not wrap the unseal key");
                CoreError::Unavailable(err.to_string())
            })?;
        Ok(Op::Put {
            key: HSM_UNSEAL_KEY_PATH.to_string(),
            value: blob,
        })
    }

    /// Whether this node's configured seal differs from the cluster's stored one, so that
    /// `sys/unseal` with `migrate` would switch the cluster (an HSM that is configured but could
    /// not be opened is not a migration: that node needs recovery shares).
    pub(super) fn migration_pending(&self) -> Result<bool, CoreError> {
        if !self.is_initialized()? {
            return Ok(false);
        }
        let stored_hsm = self.is_hsm_sealed()?;
        Ok(match self.hsm.get() {
            Some(HsmSetup::Ready(_)) => !stored_hsm,
            Some(HsmSetup::Unavailable(_)) => false,
            None => stored_hsm,
        })
    }

    /// Commits the seal migration this node is configured for, once `unseal_key` (combined from
    /// shares sent with `migrate`) has been proven to open the root key. Guarded, so two nodes
    /// migrating at once cannot both apply.
    ///
    /// # Errors
    ///
    /// 400 if no migration is pending here, [`CoreError::Conflict`] if the seal changed
    /// meanwhile, the HSM's or the store's errors.
    pub(super) async fn migrate_seal(&self, unseal_key: &UnsealKey) -> Result<(), CoreError> {
        let stored = self.reader().get(HSM_UNSEAL_KEY_PATH)?;
        let (txn, to) = match (self.hsm.get(), stored) {
            (Some(HsmSetup::Ready(_)), None) => (
                Txn {
                    guards: vec![Guard::Absent {
                        key: HSM_UNSEAL_KEY_PATH.to_string(),
                    }],
                    ops: vec![self.hsm_wrap_op(unseal_key)?],
                    journal: Vec::new(),
                },
                "pkcs11",
            ),
            (None, Some(record)) => (
                Txn {
                    guards: vec![Guard::ModRevision {
                        key: HSM_UNSEAL_KEY_PATH.to_string(),
                        revision: record.mod_revision,
                    }],
                    ops: vec![Op::Delete {
                        key: HSM_UNSEAL_KEY_PATH.to_string(),
                    }],
                    journal: Vec::new(),
                },
                "shamir",
            ),
            _ => return Err(not_migrating()),
        };
        match self.node.propose(txn).await?.outcome {
            TxnOutcome::Applied { .. } => {
                tracing::info!(node = self.node.id(), to, "seal migrated");
                Ok(())
            }
            TxnOutcome::GuardFailed { .. } => Err(CoreError::Conflict),
        }
    }

    /// Unseals this node with its HSM if it is sealed, has a working HSM and the cluster's
    /// HSM-wrapped unseal key is in its local state. Returns whether the node is unsealed.
    ///
    /// # Errors
    ///
    /// The HSM refusing the blob (another key), or the unwrapped key not opening the root key.
    pub fn try_auto_unseal(&self) -> Result<bool, CoreError> {
        if !self.barrier.is_sealed() {
            return Ok(true);
        }
        let Some(HsmSetup::Ready(hsm)) = self.hsm.get() else {
            return Ok(false);
        };
        let reader = self.reader();
        let (Some(blob), Some(root_key_blob), Some(keyring_blob)) = (
            reader.get(HSM_UNSEAL_KEY_PATH)?,
            reader.get(ROOT_KEY_PATH)?,
            reader.get(KEYRING_PATH)?,
        ) else {
            return Ok(false);
        };
        let unseal_key = hsm
            .unwrap_unseal_key(&blob.value)
            .map_err(|err| CoreError::Unavailable(err.to_string()))?;
        let root_key = seal::unwrap_root_key(&unseal_key, &root_key_blob.value)?;
        self.barrier.unseal(&root_key, &keyring_blob.value)?;
        self.barrier.hold_unseal_key(unseal_key);
        self.unseal_progress().reset();
        tracing::info!(node = self.node.id(), "node unsealed by its HSM");
        Ok(true)
    }

    /// With a working HSM, keeps trying [`Core::try_auto_unseal`] until the node is unsealed
    /// once (after that, `sys/seal` keeps it sealed until a restart or recovery shares, as in
    /// Vault). Failures are logged once per distinct message.
    pub fn start_auto_unseal(self: &Arc<Self>) {
        if !matches!(self.hsm.get(), Some(HsmSetup::Ready(_))) {
            return;
        }
        tokio::spawn(auto_unseal_loop(Arc::downgrade(self)));
    }
}

/// Vault's answer to `migrate` when no migration is configured.
pub(super) fn not_migrating() -> CoreError {
    CoreError::InvalidRequest(
        "migrate option not applicable: this node's seal configuration matches the cluster's (no seal migration pending)".into(),
    )
}

async fn auto_unseal_loop(core: Weak<Core>) {
    let mut last_error = String::new();
    loop {
        let Some(strong) = core.upgrade() else { return };
        match strong.try_auto_unseal() {
            Ok(true) => {
                // Init attempts answered while sealed are recorded now (see `audit_edge`).
                strong.record_held_attempts().await;
                return;
            }
            Ok(false) => {}
            Err(err) => {
                let message = err.to_string();
                if message != last_error {
                    tracing::error!(error = %message, "auto-unseal with the HSM failed; the node stays sealed (recovery shares can unseal it)");
                    last_error = message;
                }
            }
        }
        drop(strong);
        tokio::time::sleep(AUTO_UNSEAL_POLL).await;
    }
}
