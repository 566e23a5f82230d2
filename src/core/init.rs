//! `sys/init`: creates a cluster's key hierarchy once, on any node: the unseal key (split into
//! shares), the root key, the keyring, the root token, the initial mount table and the cluster
//! identity, written in one guarded transaction. The shares and the root token are returned once
//! and exist nowhere else; the node stays sealed, as in Vault. With holders' PGP keys they are
//! returned only encrypted (see [`super::pgp`]).
//!
//! The same transaction appends the request's audit record, encrypted and HMAC'd with the keys
//! just made: the share counts and the (HMAC'd) request body, never the shares or the root token
//! (see [`super::audit_edge`] for that choice and for how failed attempts are recorded).

use std::sync::Arc;

use serde::Deserialize;
use serde::Serialize;
use strongroom_raft::Guard;
use strongroom_raft::Op;
use strongroom_raft::TxnOutcome;
use strongroom_raft::codec;
use zeroize::Zeroizing;

use super::CLUSTER_INFO_KEY;
use super::Core;
use super::CoreError;
use super::JOURNAL_AAD;
use super::audit_edge::InitAudit;
use super::mounts::MOUNTS_KEY;
use super::mounts::MountTable;
use super::now_secs;
use super::txn::TxnBuilder;
use crate::auth::token;
use crate::barrier::Barrier;
use crate::barrier::KEYRING_PATH;
use crate::barrier::ROOT_KEY_PATH;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::barrier::UNSEAL_KEY_PATH;
use crate::crypto::pgp::RecipientKey;
use crate::seal;
use crate::seal::RootKey;
use crate::seal::Share;

/// The cluster's identity, shown in seal status and health once unsealed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterInfo {
    /// A random id.
    pub cluster_id: String,
    /// A readable name.
    pub cluster_name: String,
}

/// What `sys/init` returns, exactly once.
pub struct InitResult {
    /// The unseal key shares.
    pub shares: Vec<Share>,
    /// The initial root token.
    pub root_token: Zeroizing<String>,
    /// With `pgp_keys`: each share's hex encrypted to the holder key at its position (binary
    /// OpenPGP messages, in share order). Only these may be returned then.
    pub encrypted_shares: Option<Vec<Vec<u8>>>,
    /// With `root_token_pgp_key`: the root token encrypted to it, base64. Only this may be
    /// returned then.
    pub encrypted_root_token: Option<String>,
}

/// The holders' public keys given to `sys/init`, already checked (see [`super::pgp`]).
#[derive(Debug, Default)]
pub struct InitPgpKeys {
    /// One key per share (`pgp_keys`).
    pub shares: Option<Vec<RecipientKey>>,
    /// The root token's key (`root_token_pgp_key`).
    pub root_token: Option<RecipientKey>,
}

impl Core {
    /// Whether this node has seen the cluster's seal configuration (a local read).
    pub fn is_initialized(&self) -> Result<bool, CoreError> {
        Ok(self.reader().get(SEAL_CONFIG_PATH)?.is_some())
    }

    /// Initializes the cluster with `secret_shares` shares of which `secret_threshold` unseal,
    /// encrypting the shares and the root token to the holders' keys (if any) before anything is
    /// written (a failure leaves the cluster uninitialized), and committing `audit`'s record
    /// (status 200) with the keys. A failure is not recorded here: the edge records it with
    /// [`Core::audit_init_failure`].
    pub async fn initialize(
        &self,
        secret_shares: u32,
        secret_threshold: u32,
        pgp_keys: &InitPgpKeys,
        audit: &InitAudit,
    ) -> Result<InitResult, CoreError> {
        let (unseal_key, shares, seal_config) = seal::generate(secret_shares, secret_threshold)?;
        let encrypted_shares = pgp_keys
            .shares
            .as_deref()
            .map(|keys| super::pgp::encrypt_shares(keys, &shares))
            .transpose()?;
        self.node.read_point().await?;
        if self.is_initialized()? {
            return Err(CoreError::AlreadyInitialized);
        }
        let root_key = RootKey::generate();
        let root_key_blob = seal::wrap_root_key(&unseal_key, &root_key);
        let (barrier, keyring_blob) = Barrier::initialize(&root_key);
        let barrier = Arc::new(barrier);

        let mut builder = TxnBuilder::new(self.reader(), barrier.clone());
        builder.put(MOUNTS_KEY, MountTable::initial().encode());
        builder.put(
            &format!("{}default", super::policies::POLICY_PREFIX),
            super::policies::default_policy_record(),
        );
        let cluster = ClusterInfo {
            cluster_id: crate::crypto::random_id(),
            cluster_name: format!("strongroom-cluster-{}", &crate::crypto::random_id()[..8]),
        };
        builder.put(CLUSTER_INFO_KEY, codec::encode(&cluster));
        builder.put(UNSEAL_KEY_PATH, unseal_key.to_barrier_value().to_vec());
        let root_token = token::generate_token();
        let encrypted_root_token = pgp_keys
            .root_token
            .as_ref()
            .map(|key| super::pgp::encrypt_token(key, &root_token))
            .transpose()?;
        let id_hash = hex::encode(barrier.mac("token", root_token.as_bytes())?);
        let entry = token::root_entry(id_hash, token::generate_accessor(), now_secs());
        token::store(&mut builder.view(token::VIEW_PREFIX), &entry)
            .map_err(|err| CoreError::Internal(err.to_string()))?;
        // The record is built with the new barrier's keys (this node stays sealed), so its HMACs
        // match what `sys/audit-hash` computes once the cluster is unsealed.
        let time = crate::logical::time::format_nanos(crate::logical::time::now_nanos());
        let record = audit.record(self.node.id(), &time, 200, None, &|bytes| {
            super::audit_hmac_with(&barrier, bytes)
        });
        let journal = vec![barrier.encrypt(JOURNAL_AAD, &record)?];
        let mut txn = builder.into_txn(journal)?;
        // The seal material is stored as produced: the config is public, the root key is wrapped
        // by the unseal key and the keyring by the root key.
        txn.guards.push(Guard::Absent {
            key: SEAL_CONFIG_PATH.to_string(),
        });
        txn.ops.push(Op::Put {
            key: SEAL_CONFIG_PATH.to_string(),
            value: seal_config.encode(),
        });
        txn.ops.push(Op::Put {
            key: ROOT_KEY_PATH.to_string(),
            value: root_key_blob,
        });
        txn.ops.push(Op::Put {
            key: KEYRING_PATH.to_string(),
            value: keyring_blob,
        });
        // With an HSM, the unseal key is also stored wrapped by it (its shares are recovery shares).
        txn.ops.extend(self.hsm_init_op(&unseal_key)?);
        match self.node.propose(txn).await?.outcome {
            TxnOutcome::Applied { .. } => {
                tracing::info!(secret_shares, secret_threshold, "vault initialized");
                Ok(InitResult {
                    shares,
                    root_token,
                    encrypted_shares,
                    encrypted_root_token,
                })
            }
            TxnOutcome::GuardFailed { .. } => Err(CoreError::AlreadyInitialized),
        }
    }
}
