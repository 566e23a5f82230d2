//! Committing audit records: records of requests that write nothing are batched into shared
//! journal-only Raft entries (many requests, one entry, one fsync); the caller waits until its
//! record is committed. Writes carry their record in their own transaction instead.
//!
//! Fail closed: if a batch cannot be committed, every request in it gets an error, not a response.
//! Records handed over together ([`AuditLog::commit_many`]) stay together, in order, in one entry.

use std::sync::Arc;

use strongroom_raft::RaftNode;
use strongroom_raft::Txn;
use tokio::sync::Semaphore;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use super::error::CoreError;

/// Largest number of records in one journal entry.
const MAX_BATCH: usize = 1024;
/// Batches in flight at once (more overlap fsyncs; records in one batch share one).
const MAX_IN_FLIGHT: usize = 4;

type Ack = oneshot::Sender<Result<(), String>>;

/// A handle to the node's audit batcher.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<(Vec<Vec<u8>>, Ack)>,
}

impl AuditLog {
    /// Starts the batcher task proposing through `node`.
    pub fn start(node: Arc<RaftNode>) -> Self {
        let (queue, pending) = mpsc::channel(16 * MAX_BATCH);
        tokio::spawn(run(node, pending));
        AuditLog { queue }
    }

    /// Commits one (already encrypted) record; returns once it is in the replicated journal.
    pub async fn commit(&self, record: Vec<u8>) -> Result<(), CoreError> {
        self.commit_many(vec![record]).await
    }

    /// Commits (already encrypted) records together, in order, in one journal entry; returns once
    /// they are in the replicated journal.
    pub async fn commit_many(&self, records: Vec<Vec<u8>>) -> Result<(), CoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.queue
            .send((records, ack))
            .await
            .map_err(|_| CoreError::Unavailable("audit log is shut down".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(CoreError::Unavailable(format!(
                "audit record could not be committed: {reason}"
            ))),
            Err(_) => Err(CoreError::Unavailable("audit log is shut down".into())),
        }
    }
}

async fn run(node: Arc<RaftNode>, mut pending: mpsc::Receiver<(Vec<Vec<u8>>, Ack)>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = pending.recv().await else {
            return;
        };
        let mut count = first.0.len();
        let mut batch = vec![first];
        while count < MAX_BATCH {
            match pending.try_recv() {
                Ok(item) => {
                    count += item.0.len();
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
        let node = node.clone();
        tokio::spawn(async move {
            let (groups, acks): (Vec<Vec<Vec<u8>>>, Vec<Ack>) = batch.into_iter().unzip();
            let records: Vec<Vec<u8>> = groups.into_iter().flatten().collect();
            let result = node
                .propose(Txn::journal_only(records))
                .await
                .map(|_| ())
                .map_err(|err| err.to_string());
            if let Err(reason) = &result {
                tracing::warn!(%reason, records = acks.len(), "audit batch failed; failing its requests closed");
            }
            for ack in acks {
                let _ = ack.send(result.clone());
            }
            drop(slot);
        });
    }
}
