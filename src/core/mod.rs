//! The core: the request pipeline and the node's seal state. It owns the barrier and the unseal
//! progress, reads and writes the replicated store through [`txn::TxnBuilder`], routes requests to
//! engines by mount, and commits each request's audit record before its response is released.
//!
//! - [`init`]: `sys/init`; [`unseal`]: unseal, seal, seal status; [`status`]: health and leader.
//! - [`auto_unseal`]: HSM (PKCS#11) auto-unseal.
//! - [`ceremony`]: the share-holder ceremonies of an unsealed cluster, [`rekey`] and
//!   [`generate_root`].
//! - [`rotate`]: keyring and root-key rotation, key status; [`rewrap`]: re-encryption.
//! - [`request`]: the pipeline for every other path; `raft_api`: cluster membership
//!   (`sys/storage/raft/*`).

pub mod audit_edge;
pub mod audit_log;
mod audit_retention;
pub mod auto_unseal;
mod background;
pub mod ceremony;
pub mod error;
pub mod generate_root;
pub mod init;
pub mod mounts;
mod mounts_api;
pub mod pgp;
pub mod policies;
mod raft_api;
pub mod rekey;
mod rekey_backup;
pub mod request;
pub mod rewrap;
pub mod rotate;
pub mod status;
pub mod system;
mod token_api;
pub mod txn;
pub mod unseal;

use std::sync::Arc;
use std::sync::Mutex;

use strongroom_raft::RaftNode;
use strongroom_raft::StoreReader;

use self::audit_log::AuditLog;
pub use self::error::CoreError;
pub use self::error::ErrorKind;
use self::txn::TxnBuilder;
use crate::barrier::Barrier;
use crate::engines::kv::KvV1;
use crate::engines::kv::KvV2;
use crate::logical::Backend;
use crate::seal::UnsealProgress;

/// Storage key of the cluster's identity (name and id), encrypted.
pub const CLUSTER_INFO_KEY: &str = "core/cluster-info";
/// AAD of encrypted journal (audit) records (the barrier encrypts them under journal keys).
pub const JOURNAL_AAD: &str = crate::barrier::JOURNAL_AAD;

/// Where this node can be reached, for status pages.
#[derive(Debug, Clone)]
pub struct NodeAddresses {
    /// HTTP API address (`host:port`).
    pub api_addr: String,
    /// Cluster (gRPC) address (`host:port`).
    pub cluster_addr: String,
}

/// One node's vault: the barrier, the unseal progress, and the request pipeline.
pub struct Core {
    node: Arc<RaftNode>,
    barrier: Arc<Barrier>,
    unseal_progress: Mutex<UnsealProgress>,
    /// Rekey and generate-root progress on this node.
    ceremonies: ceremony::Ceremonies,
    audit: AuditLog,
    /// Unseal attempts this node received while sealed, until it can record them.
    held_unseal_attempts: audit_edge::HeldAttempts,
    addresses: NodeAddresses,
    unsafe_local_reads: bool,
    policies: policies::PolicyCache,
    /// This node's configured audit sinks (set once at startup), for `sys/audit`.
    audit_sinks: std::sync::OnceLock<Vec<crate::audit::sink::SinkHandle>>,
    /// This node's HSM (`[seal.pkcs11]`), set once at startup; unset on a Shamir node.
    hsm: std::sync::OnceLock<auto_unseal::HsmSetup>,
}

impl Core {
    /// A sealed core over a running store node.
    /// `unsafe_local_reads` (testing only) serves every request from local state without a read
    /// index, breaking linearizability on purpose.
    pub fn new(
        node: Arc<RaftNode>,
        addresses: NodeAddresses,
        unsafe_local_reads: bool,
    ) -> Arc<Self> {
        let audit = AuditLog::start(node.clone());
        let core = Arc::new(Core {
            node,
            barrier: Arc::new(Barrier::new_sealed()),
            unseal_progress: Mutex::new(UnsealProgress::new()),
            ceremonies: ceremony::Ceremonies::default(),
            audit,
            held_unseal_attempts: audit_edge::HeldAttempts::default(),
            addresses,
            unsafe_local_reads,
            policies: policies::PolicyCache::default(),
            audit_sinks: std::sync::OnceLock::new(),
            hsm: std::sync::OnceLock::new(),
        });
        core.start_keyring_follower();
        core
    }

    /// The store node.
    pub fn node(&self) -> &Arc<RaftNode> {
        &self.node
    }

    fn reader(&self) -> StoreReader {
        self.node.reader().clone()
    }

    fn new_txn(&self) -> TxnBuilder {
        TxnBuilder::new(self.reader(), self.barrier.clone())
    }

    /// Whether this node is sealed.
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    /// The engine for a mount entry.
    fn backend_for(&self, kind: &str, version: u8) -> Option<Arc<dyn Backend>> {
        match (kind, version) {
            ("kv", 1) => Some(Arc::new(KvV1)),
            ("kv", 2) => Some(Arc::new(KvV2)),
            ("transit", _) => Some(Arc::new(crate::engines::transit::Transit)),
            _ => None,
        }
    }

    /// The auth method of a type (`approle`, `userpass`).
    fn auth_backend_for(&self, kind: &str) -> Option<Arc<dyn Backend>> {
        match kind {
            "approle" => Some(Arc::new(crate::auth::methods::approle::AppRole)),
            "userpass" => Some(Arc::new(crate::auth::methods::userpass::Userpass)),
            _ => None,
        }
    }

    /// Encrypts an audit record for the journal.
    fn seal_record(&self, record: &[u8]) -> Result<Vec<u8>, CoreError> {
        Ok(self.barrier.encrypt(JOURNAL_AAD, record)?)
    }

    /// The audit HMAC of bytes as `hmac-sha256:<hex>`.
    fn audit_hmac(&self, bytes: &[u8]) -> String {
        audit_hmac_with(&self.barrier, bytes)
    }

    fn unseal_progress(&self) -> std::sync::MutexGuard<'_, UnsealProgress> {
        self.unseal_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The audit HMAC of bytes under `barrier`'s keys, as `hmac-sha256:<hex>`.
fn audit_hmac_with(barrier: &Barrier, bytes: &[u8]) -> String {
    match barrier.mac("audit", bytes) {
        Ok(mac) => format!("hmac-sha256:{}", hex::encode(mac)),
        Err(_) => "hmac-sha256:unavailable".to_string(),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
