//! The HTTP edge's part in auditing requests the core pipeline does not run: a request refused
//! while it is parsed (path, query, body, method, JSON, consistency header) is recorded through
//! [`Core::audit_rejected`] before the refusal is answered (503 when that record cannot be
//! committed), and `sys/unseal` goes through [`Core::unseal_audited`] (see `core::audit_edge`
//! for what a sealed node can and cannot record; `sys/init` is audited in `super::sys`, the same
//! way). The request id header is set only on answers whose record is committed.

use std::sync::Arc;

use axum::Json;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::REQUEST_ID_HEADER;
use super::error::ApiError;
use super::request;
use crate::core::Core;
use crate::core::CoreError;
use crate::core::audit_edge::Rejected;
use crate::core::audit_edge::UnsealAttempt;
use crate::core::audit_edge::UnsealInput;

/// `sys/unseal` body.
#[derive(Deserialize)]
struct UnsealRequest {
    key: Option<String>,
    #[serde(default)]
    reset: bool,
    #[serde(default)]
    migrate: bool,
}

/// Whether the request is an unseal attempt (`PUT`/`POST sys/unseal`).
pub(super) fn is_unseal_attempt(method: &Method, path: &str) -> bool {
    (*method == Method::PUT || *method == Method::POST)
        && path.trim_end_matches('/') == "sys/unseal"
}

/// Sets the request id header (when the record is committed).
pub(super) fn with_request_id(mut response: Response, request_id: Option<&str>) -> Response {
    if let Some(value) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Serves `sys/unseal` (any parse error is part of the attempt's record).
pub(super) async fn unseal(
    core: &Arc<Core>,
    body: &[u8],
    remote_address: Option<String>,
) -> Response {
    let input = request::json_object(body)
        .map_err(|err| err.status_and_message().1)
        .and_then(|map| {
            serde_json::from_value::<UnsealRequest>(serde_json::Value::Object(map)).map_err(|err| {
                // serde names the field and the type here, never the value.
                let text = err.to_string();
                let text = text.split(" at line").next().unwrap_or("");
                format!("invalid request body: {text}")
            })
        })
        .map(|parsed| UnsealInput {
            key: parsed.key.map(Zeroizing::new),
            reset: parsed.reset,
            migrate: parsed.migrate,
        });
    let outcome = core
        .unseal_audited(UnsealAttempt {
            input,
            remote_address,
        })
        .await;
    let response = match outcome.result {
        Ok(status) => Json(status).into_response(),
        Err(err) => ApiError::Core(err).into_response(),
    };
    with_request_id(response, outcome.request_id.as_deref())
}

/// Answers a request refused while parsing, after recording it: the refusal with the request id
/// when recorded, the refusal alone when this node is sealed (it cannot record), 503 when the
/// record could not be committed.
pub(super) async fn rejected(
    core: &Core,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    remote_address: Option<String>,
    error: ApiError,
) -> Response {
    let (status, message) = error.status_and_message();
    let operation = request::operation(method, &Default::default())
        .map(|operation| operation.as_str().to_string())
        .unwrap_or_else(|_| method.as_str().to_ascii_lowercase());
    let token = request::token(headers);
    let rejected = Rejected {
        operation: &operation,
        path,
        token: token.as_deref().map(String::as_str),
        remote_address,
        status,
        error: message,
    };
    match core.audit_rejected(&rejected).await {
        Ok(request_id) => with_request_id(error.into_response(), Some(&request_id)),
        Err(CoreError::Sealed) => error.into_response(),
        Err(err) => ApiError::Core(err).into_response(),
    }
}
