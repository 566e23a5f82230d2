//! Turning errors into HTTP responses: `{"errors": [...]}` with the status of the error's kind
//! (see `core::ErrorKind::status_code`, the one mapping).

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde_json::json;

use crate::core::CoreError;
use crate::core::ErrorKind;

/// An error answered by the HTTP edge.
#[derive(Debug)]
pub enum ApiError {
    /// An error from the core.
    Core(CoreError),
    /// A request the edge could not parse (400).
    BadRequest(String),
    /// A body over the size limit (413).
    TooLarge,
    /// A method the path does not support (405).
    MethodNotAllowed,
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        ApiError::Core(err)
    }
}

impl ApiError {
    /// The status and the message this error is answered with (for its audit record).
    pub fn status_and_message(&self) -> (u16, String) {
        match self {
            ApiError::Core(err) => (err.kind().status_code(), err.client_message()),
            ApiError::BadRequest(message) => (400, message.clone()),
            ApiError::TooLarge => (413, TOO_LARGE.into()),
            ApiError::MethodNotAllowed => (405, UNSUPPORTED.into()),
        }
    }
}

const TOO_LARGE: &str = "request body is too large";
const UNSUPPORTED: &str = "unsupported operation";

/// `{"errors": [...]}` with `status`.
pub fn error_response(status: u16, errors: Vec<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "errors": errors }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Core(err) => {
                let kind = err.kind();
                if kind == ErrorKind::Internal {
                    tracing::error!(error = ?err, "internal error");
                }
                let errors = match kind {
                    ErrorKind::NotFound => Vec::new(),
                    _ => vec![err.client_message()],
                };
                error_response(kind.status_code(), errors)
            }
            ApiError::BadRequest(message) => error_response(400, vec![message]),
            ApiError::TooLarge => error_response(413, vec![TOO_LARGE.into()]),
            ApiError::MethodNotAllowed => error_response(405, vec![UNSUPPORTED.into()]),
        }
    }
}
