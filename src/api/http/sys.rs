//! The unauthenticated seal and status endpoints: `sys/init` (audited: the request id of its
//! record is answered in the request id header, see `core::audit_edge`), `sys/unseal` (attempts
//! are served and audited by `super::audited`), `sys/seal-status`,
//! `sys/health` (with Vault's status codes and query overrides), `sys/leader` and
//! `sys/cluster-members` (Strongroom's). They answer while sealed. The share-holder ceremonies
//! (`sys/rekey/*`, `sys/generate-root/*`) also take no token (the shares authorize them); the
//! core serves and audits them, and only while unsealed.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::audited::with_request_id;
use super::error::ApiError;
use super::request::json_object;
use crate::core::Core;
use crate::core::audit_edge::InitAudit;
use crate::core::ceremony::CeremonyOperation;
use crate::core::ceremony::CeremonyRequest;
use crate::core::ceremony::is_ceremony_path;
use crate::core::init::InitPgpKeys;
use crate::core::pgp;

/// `sys/init` body.
#[derive(Deserialize)]
struct InitRequest {
    secret_shares: Option<u32>,
    secret_threshold: Option<u32>,
    #[serde(default)]
    pgp_keys: Option<serde_json::Value>,
    #[serde(default)]
    root_token_pgp_key: Option<serde_json::Value>,
    /// With an HSM seal: the recovery share parameters (see [`recovery`]).
    #[serde(default)]
    recovery_shares: Option<u32>,
    #[serde(default)]
    recovery_threshold: Option<u32>,
    #[serde(default)]
    recovery_pgp_keys: Option<serde_json::Value>,
}

mod recovery;

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let map = json_object(bytes)?;
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|err| ApiError::BadRequest(format!("invalid request body: {}", strip_input(&err))))
}

/// serde's message names the field and the type, never the value for these shapes; keep only the
/// part before " at line".
fn strip_input(err: &serde_json::Error) -> String {
    let text = err.to_string();
    text.split(" at line").next().unwrap_or("").to_string()
}

/// Serves the endpoint if `path` is one of the unauthenticated ones; `None` otherwise.
pub(super) async fn serve_unauthenticated(
    core: &Core,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
    remote_address: Option<String>,
) -> Result<Option<Response>, ApiError> {
    let is_write = *method == Method::PUT || *method == Method::POST;
    let path = path.trim_end_matches('/');
    if is_ceremony_path(path) {
        return ceremony(core, method, path, body, remote_address)
            .await
            .map(Some);
    }
    let response = match (path, method.as_str()) {
        ("sys/init", "GET") => {
            Json(json!({ "initialized": core.is_initialized()? })).into_response()
        }
        ("sys/init", _) if is_write => init(core, body, remote_address).await,
        ("sys/seal-status", "GET") => Json(core.seal_status()?).into_response(),
        ("sys/health", "GET" | "HEAD") => health(core, method, query)?,
        ("sys/leader", "GET") => Json(core.leader()).into_response(),
        ("sys/cluster-members", "GET") => Json(core.cluster_members()).into_response(),
        (
            "sys/init"
            | "sys/unseal"
            | "sys/seal-status"
            | "sys/health"
            | "sys/leader"
            | "sys/cluster-members",
            _,
        ) => {
            return Err(ApiError::MethodNotAllowed);
        }
        _ => return Ok(None),
    };
    Ok(Some(response))
}

/// A rekey or generate-root request: Vault's shapes at the top level (no envelope), 204 for a
/// cancel.
async fn ceremony(
    core: &Core,
    method: &Method,
    path: &str,
    body: &[u8],
    remote_address: Option<String>,
) -> Result<Response, ApiError> {
    let operation = match method.as_str() {
        "GET" => CeremonyOperation::Read,
        "PUT" | "POST" => CeremonyOperation::Update,
        "DELETE" => CeremonyOperation::Delete,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let data = if operation == CeremonyOperation::Update {
        json_object(body)?
    } else {
        serde_json::Map::new()
    };
    let request = CeremonyRequest {
        path: path.to_string(),
        operation,
        data,
        remote_address,
    };
    Ok(match core.ceremony(&request).await? {
        Some(value) => Json(value).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `sys/init`, audited: a success's record is committed with the init, a failure's is recorded
/// before it is answered (or held, or not recorded: see `core::audit_edge`), and the answer
/// carries the request id when the record is committed (503 when it could not be).
async fn init(core: &Core, body: &[u8], remote_address: Option<String>) -> Response {
    let audit = InitAudit::new(remote_address, json_object(body).ok());
    match initialize(core, body, &audit).await {
        Ok(response) => with_request_id(response, Some(&audit.request_id)),
        Err(error) => {
            let (status, message) = error.status_and_message();
            match core.audit_init_failure(audit, status, message).await {
                Ok(request_id) => with_request_id(error.into_response(), request_id.as_deref()),
                Err(err) => ApiError::Core(err).into_response(),
            }
        }
    }
}

/// Parses and runs `sys/init` (its record rides in the init's transaction).
async fn initialize(core: &Core, body: &[u8], audit: &InitAudit) -> Result<Response, ApiError> {
    let mut request: InitRequest = parse(body)?;
    let hsm = recovery::apply_seal(&mut request, core.hsm_configured())?;
    let (Some(shares), Some(threshold)) = (request.secret_shares, request.secret_threshold) else {
        return Err(ApiError::BadRequest(
            "secret_shares and secret_threshold are required".into(),
        ));
    };
    // Every key is checked before anything is generated or written.
    let pgp_keys = InitPgpKeys {
        shares: pgp::key_list(request.pgp_keys.as_ref(), "pgp_keys", shares)?,
        root_token: pgp::single_key(request.root_token_pgp_key.as_ref(), "root_token_pgp_key")?,
    };
    let result = core.initialize(shares, threshold, &pgp_keys, audit).await?;
    let (keys, keys_base64) = match &result.encrypted_shares {
        Some(messages) => pgp::share_fields(messages),
        None => (
            result.shares.iter().map(|share| share.to_hex()).collect(),
            result
                .shares
                .iter()
                .map(|share| share.to_base64())
                .collect(),
        ),
    };
    let root_token = match &result.encrypted_root_token {
        Some(encrypted) => encrypted.as_str(),
        None => result.root_token.as_str(),
    };
    let body = json!({
        "keys": keys,
        "keys_base64": keys_base64,
        "root_token": root_token,
    });
    Ok(Json(recovery::answer(body, hsm)).into_response())
}

/// Vault's `sys/health`: 200 active, 429 standby (unless `standbyok`), 503 sealed, 501 not
/// initialized; each code overridable by a query parameter. HEAD answers with no body.
fn health(
    core: &Core,
    method: &Method,
    query: &BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let health = core.health()?;
    let code_param = |name: &str, default: u16| -> Result<u16, ApiError> {
        match query.get(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<u16>()
                .ok()
                .filter(|code| (100..600).contains(code))
                .ok_or_else(|| ApiError::BadRequest(format!("{name} must be an HTTP status code"))),
        }
    };
    let flag = |name: &str| match query.get(name).map(String::as_str) {
        None => Ok(false),
        Some("") => Ok(true),
        Some(value) => crate::api::input::parse_bool(value)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a boolean"))),
    };
    let code = if !health.initialized {
        code_param("uninitcode", 501)?
    } else if health.sealed {
        code_param("sealedcode", 503)?
    } else if health.standby && !flag("standbyok")? {
        code_param("standbycode", 429)?
    } else {
        code_param("activecode", 200)?
    };
    let status = StatusCode::from_u16(code)
        .map_err(|_| ApiError::BadRequest("invalid status code".into()))?;
    if *method == Method::HEAD {
        return Ok(status.into_response());
    }
    Ok((status, Json(health)).into_response())
}
