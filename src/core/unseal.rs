//! Sealing and unsealing this node: unseal key shares accumulate in memory until the threshold is
//! reached; the combined unseal key opens the root key, which opens the keyring into the barrier.
//! `seal` drops the keys. Each node unseals on its own; sealed nodes keep replicating.

use serde::Serialize;
use strongroom_raft::codec;

use super::CLUSTER_INFO_KEY;
use super::Core;
use super::CoreError;
use super::init::ClusterInfo;
use crate::barrier::KEYRING_PATH;
use crate::barrier::ROOT_KEY_PATH;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::seal;
use crate::seal::SealConfig;

/// The version string reported by status endpoints.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Vault's seal-status object (also the answer to `sys/unseal`).
#[derive(Debug, Clone, Serialize)]
pub struct SealStatus {
    /// `shamir`, or `pkcs11` on an HSM-sealed cluster.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether the cluster is initialized.
    pub initialized: bool,
    /// Whether this node is sealed.
    pub sealed: bool,
    /// The threshold.
    pub t: u8,
    /// The number of shares.
    pub n: u8,
    /// Shares accepted so far.
    pub progress: usize,
    /// The nonce of the current unseal attempt.
    pub nonce: String,
    /// Server version.
    pub version: &'static str,
    /// Build date (not tracked).
    pub build_date: &'static str,
    /// Whether this node's configured seal differs from the cluster's (`migrate` applies).
    pub migration: bool,
    /// Whether this is a recovery seal (an HSM cluster: `t`/`n` count recovery shares).
    pub recovery_seal: bool,
    /// Always `raft`.
    pub storage_type: &'static str,
    /// The cluster's name, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// The cluster's id, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

impl Core {
    fn seal_config(&self) -> Result<Option<SealConfig>, CoreError> {
        match self.reader().get(SEAL_CONFIG_PATH)? {
            None => Ok(None),
            Some(record) => Ok(Some(SealConfig::decode(&record.value)?)),
        }
    }

    /// The seal configuration, catching up with the cluster first if this node has not seen it
    /// yet (a restarted or new node may still be replicating).
    async fn seal_config_fresh(&self) -> Result<SealConfig, CoreError> {
        if let Some(config) = self.seal_config()? {
            return Ok(config);
        }
        self.node.read_point().await?;
        self.seal_config()?.ok_or(CoreError::NotInitialized)
    }

    /// The cluster identity (only readable while unsealed).
    pub fn cluster_info(&self) -> Option<ClusterInfo> {
        let record = self.reader().get(CLUSTER_INFO_KEY).ok()??;
        let plaintext = self.barrier.decrypt(CLUSTER_INFO_KEY, &record.value).ok()?;
        codec::decode(&plaintext).ok()
    }

    /// This node's seal status.
    pub fn seal_status(&self) -> Result<SealStatus, CoreError> {
        let config = self.seal_config()?;
        let sealed = self.barrier.is_sealed();
        let cluster = if sealed { None } else { self.cluster_info() };
        let (kind, recovery_seal) = self.seal_type(config.is_some())?;
        let progress = self.unseal_progress();
        Ok(SealStatus {
            kind,
            initialized: config.is_some(),
            sealed,
            t: config.as_ref().map_or(0, |c| c.secret_threshold),
            n: config.as_ref().map_or(0, |c| c.secret_shares),
            progress: progress.progress(),
            nonce: if config.is_some() && sealed {
                progress.nonce().to_string()
            } else {
                String::new()
            },
            version: VERSION,
            build_date: "",
            migration: sealed && self.migration_pending()?,
            recovery_seal,
            storage_type: "raft",
            cluster_name: cluster.as_ref().map(|c| c.cluster_name.clone()),
            cluster_id: cluster.map(|c| c.cluster_id),
        })
    }

    /// Submits one unseal key share (hex or base64), or resets progress.
    pub async fn unseal(&self, key: Option<&str>, reset: bool) -> Result<SealStatus, CoreError> {
        self.unseal_migrating(key, reset, false).await
    }

    /// [`Core::unseal`] with Vault's `migrate`: at the threshold the shares also switch the
    /// cluster's seal to this node's configured one (see [`super::auto_unseal`]).
    pub async fn unseal_migrating(
        &self,
        key: Option<&str>,
        reset: bool,
        migrate: bool,
    ) -> Result<SealStatus, CoreError> {
        if reset {
            if !self.barrier.is_sealed() {
                return Err(CoreError::InvalidRequest("vault is unsealed".into()));
            }
            self.unseal_progress().reset();
            return self.seal_status();
        }
        let Some(key) = key else {
            return Err(CoreError::InvalidRequest(
                "'key' must be specified in request body as JSON, or 'reset' set to true".into(),
            ));
        };
        if !self.barrier.is_sealed() {
            return self.seal_status();
        }
        let config = self.seal_config_fresh().await?;
        if migrate && !self.migration_pending()? {
            return Err(super::auto_unseal::not_migrating());
        }
        let unseal_key = self.unseal_progress().submit(&config, key)?;
        if let Some(unseal_key) = unseal_key {
            let root_key_blob = self
                .reader()
                .get(ROOT_KEY_PATH)?
                .ok_or(CoreError::NotInitialized)?;
            let keyring_blob = self
                .reader()
                .get(KEYRING_PATH)?
                .ok_or(CoreError::NotInitialized)?;
            let root_key = seal::unwrap_root_key(&unseal_key, &root_key_blob.value)?;
            if migrate {
                self.migrate_seal(&unseal_key).await?;
            }
            self.barrier.unseal(&root_key, &keyring_blob.value)?;
            // Kept (wiped on seal) so `sys/rotate/root` can wrap a new root key without shares.
            self.barrier.hold_unseal_key(unseal_key);
            tracing::info!(node = self.node.id(), "node unsealed");
        }
        self.seal_status()
    }

    /// Seals this node (after an authorized, audited request): keys leave memory.
    pub(crate) fn seal_now(&self) {
        self.barrier.seal();
        self.unseal_progress().reset();
        self.ceremonies.clear();
        tracing::info!(node = self.node.id(), "node sealed");
    }
}
