//! The Vault-compatible HTTP API: every route under `/v1/`, Vault's response envelope, `LIST`
//! and `?list=true`, 204 for writes without data, `{"errors": [...]}` for every failure.
//!
//! The seal endpoints (`sys/init`, `sys/unseal`, `sys/seal-status`, `sys/health`, `sys/leader`,
//! `sys/cluster-members`) and the share-holder ceremonies (`sys/rekey/*`, `sys/generate-root/*`)
//! are served here without a token, as in Vault; everything else goes through the core pipeline.
//! Requests refused while parsing, and unseal attempts, are audited too (see [`audited`]).

mod audited;
mod error;
mod request;
mod sys;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::response::Response;
use serde_json::Value;
use serde_json::json;

pub use self::error::ApiError;
use crate::core::Core;
use crate::core::request::ClientRequest;
use crate::core::request::Reply;
use crate::logical::Operation;

/// The response header carrying the id of the request's audit record (`request.id`).
pub const REQUEST_ID_HEADER: &str = "x-strongroom-request-id";

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct HttpState {
    core: Arc<Core>,
    max_request_bytes: usize,
}

/// The router serving the whole API.
pub fn router(core: Arc<Core>, max_request_bytes: usize) -> Router {
    Router::new().fallback(dispatch).with_state(HttpState {
        core,
        max_request_bytes,
    })
}

async fn dispatch(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match serve(&state, peer, method, uri, headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn serve(
    state: &HttpState,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let remote_address = Some(peer.ip().to_string());
    let parsed = match request::normalize_path(uri.path()) {
        Ok(path) => match request::query(&uri) {
            Ok(query) => Ok((path, query)),
            Err(err) => Err((path, err)),
        },
        Err(err) => Err((uri.path().to_string(), err)),
    };
    let (path, query) = match parsed {
        Ok(parsed) => parsed,
        Err((path, err)) => {
            let rejected =
                audited::rejected(&state.core, &method, &path, &headers, remote_address, err);
            return Ok(rejected.await);
        }
    };
    let bytes = match request::read_body(body, &headers, state.max_request_bytes).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let rejected =
                audited::rejected(&state.core, &method, &path, &headers, remote_address, err);
            return Ok(rejected.await);
        }
    };
    if audited::is_unseal_attempt(&method, &path) {
        return Ok(audited::unseal(&state.core, &bytes, remote_address).await);
    }
    if let Some(response) = sys::serve_unauthenticated(
        &state.core,
        &method,
        &path,
        &query,
        &bytes,
        Some(peer.ip().to_string()),
    )
    .await?
    {
        return Ok(response);
    }
    let parsed = request::operation(&method, &query).and_then(|operation| {
        let data = request::json_object(&bytes)?;
        Ok((operation, data, request::consistency(&headers)?))
    });
    let (operation, data, consistency) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let rejected =
                audited::rejected(&state.core, &method, &path, &headers, remote_address, err);
            return Ok(rejected.await);
        }
    };
    // A trailing slash matters only to LIST (`metadata/` vs `metadata/app`).
    let path = if operation == Operation::List {
        path
    } else {
        path.trim_end_matches('/').to_string()
    };
    let client_request = ClientRequest {
        operation,
        path,
        token: request::token(&headers),
        data,
        query,
        remote_address: Some(peer.ip().to_string()),
        consistency,
    };
    let handled = state.core.handle(client_request).await;
    let response = match handled.result {
        Ok(reply) => envelope(&handled.request_id, reply),
        Err(err) => ApiError::Core(err).into_response(),
    };
    // Every request whose record is committed names it, errors included.
    let request_id = handled.audited.then_some(handled.request_id.as_str());
    Ok(audited::with_request_id(response, request_id))
}

/// Vault's success envelope, or 204 when there is nothing to say.
fn envelope(request_id: &str, reply: Reply) -> Response {
    let Reply { response, auth } = reply;
    let status = response
        .status
        .and_then(|code| StatusCode::from_u16(code).ok());
    if response.data.is_none() && response.warnings.is_empty() && auth.is_none() {
        return match status {
            Some(StatusCode::NOT_FOUND) => error::error_response(404, Vec::new()),
            Some(code) => code.into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        };
    }
    let top_level = response
        .data_at_top_level
        .then(|| response.data.clone())
        .flatten();
    let mut body = json!({
        "request_id": request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": response.data.map(Value::Object),
        "wrap_info": Value::Null,
        "warnings": if response.warnings.is_empty() { Value::Null } else { json!(response.warnings) },
        "auth": auth.map(Value::Object),
    });
    if let (Some(fields), Value::Object(body)) = (top_level, &mut body) {
        for (key, value) in fields {
            body.entry(key).or_insert(value);
        }
    }
    (status.unwrap_or(StatusCode::OK), Json(body)).into_response()
}
