//! Coalescing of read-index requests: concurrent callers of [`crate::RaftNode::read_point`] on a
//! node share one read-index round (one `ReadIndex` RPC to the leader, or one quorum check when
//! this node leads) instead of one each.
//!
//! Linearizability: a round starts only after every caller it answers has enqueued itself, so the
//! index it returns is at least the commit index at each caller's start, which is all a read index
//! must guarantee. Callers that arrive while a round is in flight wait for the next round.
//! [`MAX_ROUNDS_IN_FLIGHT`] rounds may overlap, so a lone request does not wait for a full round.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

use crate::error::StoreError;

/// Read-index rounds in flight at once.
const MAX_ROUNDS_IN_FLIGHT: usize = 2;

type Waiter = oneshot::Sender<Result<u64, StoreError>>;

/// A handle to the node's read-index batcher task.
pub(crate) struct ReadBatcher {
    queue: mpsc::UnboundedSender<Waiter>,
}

impl ReadBatcher {
    /// Starts the batcher; `round` performs one read-index round and is called with no lock held.
    /// The task ends when `round` returns `None` (the node is gone) or every handle is dropped.
    pub(crate) fn start<F, Fut>(round: F) -> Self
    where
        F: Fn() -> Option<Fut> + Send + 'static,
        Fut: Future<Output = Result<u64, StoreError>> + Send + 'static,
    {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(round, pending));
        ReadBatcher { queue }
    }

    /// A read index obtained by a round that started after this call.
    pub(crate) async fn read_index(&self) -> Result<u64, StoreError> {
        let (waiter, answer) = oneshot::channel();
        self.queue
            .send(waiter)
            .map_err(|_| StoreError::Fatal("read-index batcher stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Fatal("read-index batcher stopped".into()))?
    }
}

async fn run<F, Fut>(round: F, mut pending: mpsc::UnboundedReceiver<Waiter>)
where
    F: Fn() -> Option<Fut> + Send + 'static,
    Fut: Future<Output = Result<u64, StoreError>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_ROUNDS_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = pending.recv().await else {
            return;
        };
        let mut waiters = vec![first];
        while let Ok(waiter) = pending.try_recv() {
            waiters.push(waiter);
        }
        let Some(fetch) = round() else {
            for waiter in waiters {
                let _ = waiter.send(Err(StoreError::Fatal("raft node stopped".into())));
            }
            return;
        };
        tokio::spawn(async move {
            let result = fetch.await;
            for waiter in waiters {
                let _ = waiter.send(result.as_ref().copied().map_err(StoreError::duplicate));
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_rounds() {
        let rounds = Arc::new(AtomicU64::new(0));
        let counter = rounds.clone();
        let batcher = Arc::new(ReadBatcher::start(move || {
            let counter = counter.clone();
            Some(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(counter.fetch_add(1, Ordering::SeqCst) + 1)
            })
        }));
        let calls: Vec<_> = (0..100)
            .map(|_| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.read_index().await })
            })
            .collect();
        for call in calls {
            assert!(call.await.unwrap().unwrap() >= 1);
        }
        assert!(
            rounds.load(Ordering::SeqCst) <= 4,
            "100 callers, few rounds"
        );
    }

    #[tokio::test]
    async fn a_round_starts_after_the_call() {
        // Each round returns the number of rounds started so far: a caller must never get the
        // index of a round that started before it enqueued.
        let started = Arc::new(AtomicU64::new(0));
        let counter = started.clone();
        let batcher = ReadBatcher::start(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            Some(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(n)
            })
        });
        for _ in 0..5 {
            let before = started.load(Ordering::SeqCst);
            let index = batcher.read_index().await.unwrap();
            assert!(index > before);
        }
    }

    #[tokio::test]
    async fn errors_reach_every_waiter() {
        let batcher = ReadBatcher::start(|| {
            Some(async { Err::<u64, _>(StoreError::Unavailable("no quorum".into())) })
        });
        let (a, b) = tokio::join!(batcher.read_index(), batcher.read_index());
        assert!(matches!(a, Err(StoreError::Unavailable(_))));
        assert!(matches!(b, Err(StoreError::Unavailable(_))));
    }
}
