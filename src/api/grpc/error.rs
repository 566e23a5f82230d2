//! The one place error kinds become gRPC status codes (the HTTP edge has its own, in
//! `core::ErrorKind::status_code`).

use tonic::Code;
use tonic::Status;

use crate::core::CoreError;
use crate::core::ErrorKind;

/// The gRPC code of an error kind.
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidRequest => Code::InvalidArgument,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::NotFound | ErrorKind::UnsupportedPath => Code::NotFound,
        ErrorKind::UnsupportedOperation => Code::Unimplemented,
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::Unavailable => Code::Unavailable,
    }
}

/// A core error as a gRPC status (internal details withheld, as over HTTP).
pub fn status_for(err: &CoreError) -> Status {
    let kind = err.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = ?err, "internal error");
    }
    let message = match kind {
        ErrorKind::NotFound => "not found".to_string(),
        _ => err.client_message(),
    };
    Status::new(code_for(kind), message)
}
