//! The store's error type: what callers of [`crate::RaftNode`] and [`crate::StoreReader`] see.

use std::io;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No leader is known (an election is under way or a quorum is unreachable).
    #[error("no raft leader is available")]
    NoLeader,
    /// The leader (or a quorum) could not be reached or refused; nothing was committed.
    #[error("raft cluster is unavailable: {0}")]
    Unavailable(String),
    /// A proposal may or may not have committed (the connection or leadership was lost after it
    /// was handed over). Retrying could apply it twice.
    #[error("outcome of the write is unknown: {0}")]
    Indeterminate(String),
    /// Waiting for the local state machine to catch up took too long.
    #[error("timed out waiting for the local state to reach index {0}")]
    ApplyTimeout(u64),
    /// Local storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
    /// The Raft node has stopped.
    #[error("raft node stopped: {0}")]
    Fatal(String),
    /// The leader refused this node's call: this node is not in the cluster's membership (it was
    /// removed). Nothing was committed.
    #[error("this node is not a member of the cluster: {0}")]
    NotMember(String),
    /// A membership change was refused (unknown node, the leader itself, the last voter, ...).
    /// Nothing changed.
    #[error("membership change refused: {0}")]
    Refused(String),
    /// Starting the node failed.
    #[error("cannot start raft node: {0}")]
    Startup(String),
}

impl StoreError {
    /// A copy of this error for another waiter of the same operation (an `io::Error` keeps its
    /// kind and message).
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::NoLeader => StoreError::NoLeader,
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Indeterminate(m) => StoreError::Indeterminate(m.clone()),
            StoreError::ApplyTimeout(index) => StoreError::ApplyTimeout(*index),
            StoreError::Storage(err) => {
                StoreError::Storage(io::Error::new(err.kind(), err.to_string()))
            }
            StoreError::Fatal(m) => StoreError::Fatal(m.clone()),
            StoreError::NotMember(m) => StoreError::NotMember(m.clone()),
            StoreError::Refused(m) => StoreError::Refused(m.clone()),
            StoreError::Startup(m) => StoreError::Startup(m.clone()),
        }
    }

    /// True when the caller may retry the same operation: nothing was committed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::NoLeader | StoreError::Unavailable(_) | StoreError::NotMember(_)
        )
    }
}
