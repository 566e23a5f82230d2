//! Errors engines return. Their mapping to HTTP status lives in `api/http/error.rs` only.

use super::storage::StorageError;

/// Why an engine refused or failed a request. Messages go to clients: never put a secret in one.
#[derive(Debug, thiserror::Error)]
pub enum LogicalError {
    /// The request is malformed or not allowed by the engine's rules (HTTP 400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Nothing is stored at the path (HTTP 404 with an empty error list).
    #[error("not found")]
    NotFound,
    /// The engine has no handler for this path (HTTP 404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// The path exists but not for this operation (HTTP 405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The storage view failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl LogicalError {
    /// Shorthand for [`LogicalError::InvalidRequest`].
    pub fn invalid(message: impl Into<String>) -> Self {
        LogicalError::InvalidRequest(message.into())
    }
}
