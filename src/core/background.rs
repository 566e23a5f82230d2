//! Background maintenance: while this node is the Raft leader and unsealed, every few seconds
//! each mounted engine's `Backend::periodic` runs in its own transaction (guarded like any
//! request, so a run that raced with a write commits nothing and is simply retried next time).
//! Changes are recorded in the journal with an audit record of type `periodic`.

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use serde_json::json;
use strongroom_raft::TxnOutcome;

use super::Core;
use super::CoreError;
use super::mounts_api::load_table;
use super::now_secs;

/// How often maintenance runs on the leader.
const PERIOD: Duration = Duration::from_secs(5);

impl Core {
    /// Starts the maintenance loop; it stops when the core is dropped.
    pub fn start_background(self: &Arc<Self>) {
        let core = Arc::downgrade(self);
        tokio::spawn(run(core));
    }

    /// One maintenance pass over every mount (no-op unless leader and unsealed).
    pub async fn run_periodic(&self) -> Result<(), CoreError> {
        if self.is_sealed() || !self.node.status().is_leader {
            return Ok(());
        }
        let table = load_table(&mut self.new_txn())?;
        for mount in &table.entries {
            let Some(backend) = self.backend_for(&mount.kind, mount.version) else {
                continue;
            };
            let mut txn = self.new_txn();
            let now = now_secs();
            if let Err(err) = backend.periodic(&mut txn.view(mount.storage_prefix()), now) {
                tracing::warn!(mount = %mount.path, error = %err, "periodic maintenance failed");
                continue;
            }
            if !txn.has_writes() {
                continue;
            }
            let record = json!({
                "time": crate::logical::time::format_nanos(crate::logical::time::now_nanos()),
                "type": "periodic",
                "request": {"path": mount.path, "operation": "periodic", "node_id": self.node.id()},
            });
            let record = self.seal_record(record.to_string().as_bytes())?;
            match self
                .node
                .propose(txn.into_txn(vec![record])?)
                .await?
                .outcome
            {
                TxnOutcome::Applied { .. } => {
                    tracing::debug!(mount = %mount.path, "periodic maintenance committed")
                }
                TxnOutcome::GuardFailed { .. } => {
                    tracing::debug!(mount = %mount.path, "periodic maintenance raced a write; next run retries")
                }
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
