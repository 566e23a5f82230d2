//! The core's error type and the kinds clients see. `api/http/error.rs` (and later the gRPC
//! edge) is the only place that turns a kind into a status code.

use crate::logical::LogicalError;
use crate::seal::SealError;

/// Why the core refused or failed a request. Display strings go to clients: no secrets.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// This node is sealed.
    #[error("Vault is sealed")]
    Sealed,
    /// The cluster has not been initialized.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// `sys/init` on an initialized cluster.
    #[error("Vault is already initialized")]
    AlreadyInitialized,
    /// Missing, unknown or expired token, or the ACL forbids the operation.
    #[error("permission denied")]
    PermissionDenied,
    /// Bad input.
    #[error("{0}")]
    InvalidRequest(String),
    /// A problem with an unseal key share or seal parameters.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The engine's answer.
    #[error(transparent)]
    Logical(#[from] LogicalError),
    /// The request kept conflicting with concurrent writes and gave up.
    #[error("request conflicted with concurrent writes too many times; retry")]
    Conflict,
    /// The replicated store could not commit or serve the request (no leader, no quorum, the
    /// audit record could not be committed). Nothing was answered from a partial state.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt state; details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The kind of a [`CoreError`], for status mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400.
    InvalidRequest,
    /// 403.
    PermissionDenied,
    /// 404 with an empty error list.
    NotFound,
    /// 404 with a message.
    UnsupportedPath,
    /// 405.
    UnsupportedOperation,
    /// 409.
    Conflict,
    /// 500.
    Internal,
    /// 503.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind: the one place that mapping is written (the HTTP edge and
    /// audit records both use it).
    pub fn status_code(self) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound | ErrorKind::UnsupportedPath => 404,
            ErrorKind::UnsupportedOperation => 405,
            ErrorKind::Conflict => 409,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

impl CoreError {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Sealed | CoreError::Unavailable(_) => ErrorKind::Unavailable,
            CoreError::NotInitialized
            | CoreError::AlreadyInitialized
            | CoreError::InvalidRequest(_) => ErrorKind::InvalidRequest,
            CoreError::PermissionDenied => ErrorKind::PermissionDenied,
            CoreError::Seal(err) if err.is_client_error() => ErrorKind::InvalidRequest,
            CoreError::Seal(_) => ErrorKind::Internal,
            CoreError::Logical(err) => match err {
                LogicalError::InvalidRequest(_) => ErrorKind::InvalidRequest,
                LogicalError::NotFound => ErrorKind::NotFound,
                LogicalError::UnsupportedPath => ErrorKind::UnsupportedPath,
                LogicalError::UnsupportedOperation => ErrorKind::UnsupportedOperation,
                LogicalError::Storage(_) => ErrorKind::Internal,
            },
            CoreError::Conflict => ErrorKind::Conflict,
            CoreError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The message shown to the client (internal details are withheld).
    pub fn client_message(&self) -> String {
        match self.kind() {
            ErrorKind::Internal => "internal error".to_string(),
            ErrorKind::NotFound => String::new(),
            _ => self.to_string(),
        }
    }
}

impl From<strongroom_raft::StoreError> for CoreError {
    fn from(err: strongroom_raft::StoreError) -> Self {
        match err {
            strongroom_raft::StoreError::Storage(io) => CoreError::Internal(io.to_string()),
            strongroom_raft::StoreError::Refused(message) => CoreError::InvalidRequest(message),
            other => CoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<crate::barrier::BarrierError> for CoreError {
    fn from(err: crate::barrier::BarrierError) -> Self {
        match err {
            crate::barrier::BarrierError::Sealed => CoreError::Sealed,
            other => CoreError::Internal(other.to_string()),
        }
    }
}
