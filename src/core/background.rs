//! Background maintenance: while this node is the Raft leader and unsealed, every few seconds
//! expired tokens are revoked (in bounded batches) and each mounted engine's and auth method's `Backend::periodic` runs in its own transaction (guarded like any
//! request, so a run that raced with a write commits nothing and is simply retried next time).
//! Changes are recorded in the journal with an audit record of type `periodic`.

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use serde_json::json;
use strongroom_raft::TxnOutcome;

use super::Core;
use super::CoreError;
use super::mounts::MountKind;
use super::mounts_api::load_table;
use super::now_secs;
use super::txn::TxnBuilder;
use crate::auth::token;

/// At most this many expired tokens (with their children) are revoked per pass.
const SWEEP_BATCH: usize = 256;

/// How often maintenance runs on the leader.
const PERIOD: Duration = Duration::from_secs(5);

impl Core {
    /// Starts the maintenance loop; it stops when the core is dropped.
    pub fn start_background(self: &Arc<Self>) {
        let core = Arc::downgrade(self);
        tokio::spawn(run(core));
    }

    /// One maintenance pass (no-op unless leader and unsealed): expired tokens are swept, then
    /// every secrets engine and auth method runs its `periodic` hook.
    pub async fn run_periodic(&self) -> Result<(), CoreError> {
        if self.is_sealed() || !self.node.status().is_leader {
            return Ok(());
        }
        let mut txn = self.new_txn();
        token::sweep_expired(&mut txn.view(token::VIEW_PREFIX), now_secs(), SWEEP_BATCH)?;
        self.commit_maintenance(txn, "auth/token/").await?;
        if let Err(err) = self.rotation_maintenance().await {
            tracing::warn!(error = %err, "keyring maintenance failed");
        }
        for kind in [MountKind::Secrets, MountKind::Auth] {
            let table = load_table(&mut self.new_txn(), kind)?;
            for mount in &table.entries {
                let backend = match kind {
                    MountKind::Secrets => self.backend_for(&mount.kind, mount.version),
                    MountKind::Auth => self.auth_backend_for(&mount.kind),
                };
                let Some(backend) = backend else { continue };
                let mut txn = self.new_txn();
                let outcome =
                    backend.periodic(&mut txn.view(mount.storage_prefix(kind)), now_secs());
                if let Err(err) = outcome {
                    tracing::warn!(mount = %mount.path, error = %err, "periodic maintenance failed");
                    continue;
                }
                self.commit_maintenance(txn, &mount.path).await?;
            }
        }
        Ok(())
    }

    /// Proposes what a maintenance task staged (if anything) with a `periodic` journal record.
    async fn commit_maintenance(&self, txn: TxnBuilder, path: &str) -> Result<(), CoreError> {
        if !txn.has_writes() {
            return Ok(());
        }
        let record = json!({
            "time": crate::logical::time::format_nanos(crate::logical::time::now_nanos()),
            "type": "periodic",
            "request": {"path": path, "operation": "periodic", "node_id": self.node.id()},
        });
        let record = self.seal_record(record.to_string().as_bytes())?;
        match self
            .node
            .propose(txn.into_txn(vec![record])?)
            .await?
            .outcome
        {
            TxnOutcome::Applied { .. } => {
                tracing::debug!(%path, "periodic maintenance committed")
            }
            TxnOutcome::GuardFailed { .. } => {
                tracing::debug!(%path, "periodic maintenance raced a write; next run retries")
            }
        }
        Ok(())
    }
}

async fn run(core: Weak<Core>) {
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(core) = core.upgrade() else { return };
        if let Err(err) = core.run_periodic().await {
            tracing::warn!(error = %err, "periodic maintenance pass failed");
        }
    }
}
