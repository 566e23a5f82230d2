//! Parsing HTTP requests: the path (normalized, refused if it climbs with `..`), the method as a
//! logical operation, the token, the query, the consistency header and the JSON body.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::Uri;
use serde_json::Map;
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::api::input;
use crate::core::request::Consistency;
use crate::logical::Operation;

/// The header that selects read freshness.
pub const CONSISTENCY_HEADER: &str = "x-strongroom-consistency";

/// The path after `/v1/`, percent-decoded as Vault (Go's `URL.Path`) sees it, then checked and
/// normalized (see [`input::normalize_path`]; a trailing slash is kept for LIST to decide). So
/// `%2e%2e` is a `..` segment and `%2F` a separator, refused or split like their plain forms.
pub fn normalize_path(raw: &str) -> Result<String, ApiError> {
    let Some(rest) = raw.strip_prefix("/v1/") else {
        return Err(ApiError::BadRequest(
            "unsupported path: the API lives under /v1/".into(),
        ));
    };
    let decoded = percent_decode(rest)?;
    if decoded.starts_with('/') {
        return Err(ApiError::BadRequest(
            input::InputError::EmptySegment.to_string(),
        ));
    }
    input::normalize_path(&decoded, true).map_err(|err| ApiError::BadRequest(err.to_string()))
}

/// Decodes `%XX` escapes; a malformed escape or a result that is not UTF-8 is refused (without
/// quoting the path, which may name a secret).
fn percent_decode(raw: &str) -> Result<String, ApiError> {
    if !raw.contains('%') {
        return Ok(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte != b'%' {
            decoded.push(byte);
            index += 1;
            continue;
        }
        let escape = bytes
            .get(index + 1..index + 3)
            .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .ok_or_else(|| {
                ApiError::BadRequest("invalid path: malformed percent-encoding".into())
            })?;
        decoded.push(escape);
        index += 3;
    }
    String::from_utf8(decoded)
        .map_err(|_| ApiError::BadRequest("invalid path: not UTF-8 after percent-decoding".into()))
}

/// Maps the HTTP method (and `?list=true`) to a logical operation.
pub fn operation(method: &Method, query: &BTreeMap<String, String>) -> Result<Operation, ApiError> {
    let listing = match query.get("list") {
        None => false,
        Some(value) => crate::api::input::parse_bool(value).ok_or_else(|| {
            ApiError::BadRequest(format!("list must be a boolean, not {value:?}"))
        })?,
    };
    Ok(match method.as_str() {
        "GET" | "HEAD" if listing => Operation::List,
        "GET" | "HEAD" => Operation::Read,
        "LIST" => Operation::List,
        "POST" | "PUT" => Operation::Update,
        "PATCH" => Operation::Patch,
        "DELETE" => Operation::Delete,
        _ => return Err(ApiError::MethodNotAllowed),
    })
}

/// The query parameters (last value wins).
pub fn query(uri: &Uri) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = uri.query() else {
        return Ok(BTreeMap::new());
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
    Ok(pairs.into_iter().collect())
}

/// The token from `X-Vault-Token`, or `Authorization: Bearer`.
pub fn token(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    if let Some(value) = headers
        .get("x-vault-token")
        .and_then(|value| value.to_str().ok())
    {
        let value = value.trim();
        if !value.is_empty() {
            return Some(Zeroizing::new(value.to_string()));
        }
    }
    let bearer = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    (!bearer.is_empty()).then(|| Zeroizing::new(bearer.to_string()))
}

/// The consistency the client asked for.
pub fn consistency(headers: &HeaderMap) -> Result<Consistency, ApiError> {
    match headers
        .get(CONSISTENCY_HEADER)
        .map(|value| value.to_str().map(str::to_ascii_lowercase))
    {
        None => Ok(Consistency::Linearizable),
        Some(Ok(value)) if value == "stale" => Ok(Consistency::Stale),
        Some(Ok(value)) if value == "linearizable" => Ok(Consistency::Linearizable),
        _ => Err(ApiError::BadRequest(format!(
            "{CONSISTENCY_HEADER} must be 'stale' or 'linearizable'"
        ))),
    }
}

/// Reads the body up to `limit` bytes.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ApiError::TooLarge);
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge)
}

/// Parses a JSON object body (see [`input::json_object`]).
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    input::json_object(bytes).map_err(|err| ApiError::BadRequest(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded_before_they_are_checked() {
        let ok = |raw: &str| normalize_path(raw).ok();
        assert_eq!(
            ok("/v1/secret/data/a%20b").as_deref(),
            Some("secret/data/a b")
        );
        assert_eq!(
            ok("/v1/secret/data/a%2Fb").as_deref(),
            Some("secret/data/a/b")
        );
        assert_eq!(
            ok("/v1/secret/metadata/").as_deref(),
            Some("secret/metadata/")
        );
        for bad in [
            "/v1/secret/data/%2e%2e/x",
            "/v1/secret/data/a%2F..%2Fb",
            "/v1/secret/data/%2E",
            "/v1/secret/data/a//b",
            "/v1//secret/data/a",
            "/v1/secret/data/a%2F%2Fb",
            "/v1/secret/data/a%00b",
            "/v1/secret/data/a%0ab",
            "/v1/secret/data/a%zzb",
            "/v1/secret/data/a%2",
            "/v1/secret/data/a%",
            "/v1/secret/data/a%+1",
            "/v1/secret/data/a%ffb",
            "/v2/secret/data/a",
        ] {
            assert!(
                matches!(normalize_path(bad), Err(ApiError::BadRequest(_))),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn methods_map_to_operations() {
        let mut query = BTreeMap::new();
        assert_eq!(operation(&Method::GET, &query).unwrap(), Operation::Read);
        assert_eq!(
            operation(&Method::from_bytes(b"LIST").unwrap(), &query).unwrap(),
            Operation::List
        );
        query.insert("list".into(), "true".into());
        assert_eq!(operation(&Method::GET, &query).unwrap(), Operation::List);
        assert!(operation(&Method::from_bytes(b"BREW").unwrap(), &query).is_err());
    }
}
