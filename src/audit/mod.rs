//! Audit records: one JSON record per request, in Vault's audit shape, with every secret value,
//! token and accessor replaced by `hmac-sha256:<hex>` under a key held by the barrier.
//!
//! This module only builds records; the core encrypts them and commits them to the replicated
//! journal (with the request's writes, or batched for reads) before a response is released.

pub mod filter;
pub mod sink;

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

/// Computes the audit HMAC of bytes, rendered as `hmac-sha256:<hex>`.
pub type Hasher<'a> = &'a dyn Fn(&[u8]) -> String;

/// Who made the request, when a token was presented and resolved.
#[derive(Debug, Clone, Default)]
pub struct AuthInfo {
    /// The token's accessor (HMAC'd in the record).
    pub accessor: String,
    /// The token's display name.
    pub display_name: String,
    /// The token's policies.
    pub policies: Vec<String>,
}

/// Everything a record says about one request and its outcome.
#[derive(Default)]
pub struct AuditEvent<'a> {
    /// The request id returned to the client.
    pub request_id: &'a str,
    /// Vault's operation name (`read`, `update`, ...).
    pub operation: &'a str,
    /// The path after `/v1/`.
    pub path: &'a str,
    /// The client's address.
    pub remote_address: Option<String>,
    /// The node that served the request.
    pub node_id: u64,
    /// The presented token, if any (HMAC'd).
    pub client_token: Option<&'a str>,
    /// The resolved token, if any.
    pub auth: Option<&'a AuthInfo>,
    /// The request body (values HMAC'd).
    pub request_data: Option<&'a Map<String, Value>>,
    /// Top-level fields of `request_data` kept in the clear when their value is a number: ones
    /// that are public anyway (`sys/init`'s share counts, shown by `sys/seal-status`).
    pub clear_request_fields: &'a [&'a str],
    /// The HTTP status of the response.
    pub status: u16,
    /// The response `data` (values HMAC'd).
    pub response_data: Option<&'a Map<String, Value>>,
    /// The `auth` block of a token the request issued (values, the token included, HMAC'd).
    pub response_auth: Option<&'a Map<String, Value>>,
    /// The error message returned, if the request failed.
    pub error: Option<String>,
}

/// Arrays and objects nested deeper than this in request or response data are recorded as one
/// HMAC of their JSON text instead of itemized. Records must parse back: serde_json refuses input
/// nested deeper than 128 levels, and data can nest without bound (the response of
/// `sys/audit/log` carries earlier records, each carrying the records its own read returned, one
/// level deeper at every generation: a journal read in a loop made an unreadable record within
/// 60 reads, and every later `sys/audit/log` page that included it answered 500).
pub const MAX_ITEMIZED_DEPTH: usize = 32;

/// Replaces every leaf value (string, number, boolean) of `value` by its HMAC, keeping the shape
/// (object keys, array positions, nulls) so records can still be searched by field; below
/// [`MAX_ITEMIZED_DEPTH`] a whole subtree becomes one HMAC.
pub fn hash_value(value: &Value, hasher: Hasher<'_>) -> Value {
    hash_at(value, hasher, 0)
}

fn hash_at(value: &Value, hasher: Hasher<'_>, depth: usize) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(text) => Value::String(hasher(text.as_bytes())),
        Value::Bool(_) | Value::Number(_) => Value::String(hasher(value.to_string().as_bytes())),
        Value::Array(_) | Value::Object(_) if depth >= MAX_ITEMIZED_DEPTH => {
            Value::String(hasher(value.to_string().as_bytes()))
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| hash_at(item, hasher, depth + 1))
                .collect(),
        ),
        Value::Object(map) => Value::Object(hash_map_at(map, hasher, depth + 1)),
    }
}

fn hash_map(map: &Map<String, Value>, hasher: Hasher<'_>) -> Map<String, Value> {
    hash_map_at(map, hasher, 1)
}

fn hash_map_at(map: &Map<String, Value>, hasher: Hasher<'_>, depth: usize) -> Map<String, Value> {
    map.iter()
        .map(|(key, value)| (key.clone(), hash_at(value, hasher, depth)))
        .collect()
}

/// Request or response data larger than this (as JSON) is recorded as a summary: its size and
/// one HMAC of the whole, instead of an HMAC per value. A 100,000-item batch would otherwise
/// make a record of many megabytes, which every node must replicate, apply and keep.
pub const MAX_ITEMIZED_DATA_BYTES: usize = 256 * 1024;

/// `data` with every value HMAC'd, or, when it is larger than [`MAX_ITEMIZED_DATA_BYTES`], a
/// summary that still lets an operator match a known body with `sys/audit-hash`.
fn audited_data(data: &Map<String, Value>, hasher: Hasher<'_>) -> Value {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    if bytes.len() <= MAX_ITEMIZED_DATA_BYTES {
        return Value::Object(hash_map(data, hasher));
    }
    json!({
        "_truncated": true,
        "_bytes": bytes.len(),
        "_hmac": hasher(&bytes),
        "_keys": data.keys().collect::<Vec<_>>(),
    })
}

/// The recorded request data: [`audited_data`], then the clear fields (numbers only) put back.
fn request_data(event: &AuditEvent<'_>, hasher: Hasher<'_>) -> Option<Value> {
    let data = event.request_data?;
    let mut recorded = audited_data(data, hasher);
    if let Value::Object(map) = &mut recorded
        && !map.contains_key("_truncated")
    {
        for field in event.clear_request_fields {
            if let Some(value @ Value::Number(_)) = data.get(*field) {
                map.insert((*field).to_string(), value.clone());
            }
        }
    }
    Some(recorded)
}

/// Builds the record of `event` as JSON bytes, with `time` the RFC 3339 timestamp.
pub fn record(event: &AuditEvent<'_>, time: &str, hasher: Hasher<'_>) -> Vec<u8> {
    let auth = event.auth.map(|auth| {
        json!({
            "accessor": hasher(auth.accessor.as_bytes()),
            "client_token": event.client_token.map(|token| hasher(token.as_bytes())),
            "display_name": auth.display_name,
            "policies": auth.policies,
            "token_type": "service",
        })
    });
    let record = json!({
        "time": time,
        "type": "response",
        "auth": auth,
        "request": {
            "id": event.request_id,
            "operation": event.operation,
            "path": event.path,
            "client_token": event.client_token.map(|token| hasher(token.as_bytes())),
            "remote_address": event.remote_address,
            "node_id": event.node_id,
            "data": request_data(event, hasher),
        },
        "response": {
            "status": event.status,
            "data": event.response_data.map(|data| audited_data(data, hasher)),
            "auth": event.response_auth.map(|auth| hash_map(auth, hasher)),
        },
        "error": event.error.clone().unwrap_or_default(),
    });
    serde_json::to_vec(&record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_data_is_capped_so_the_record_parses_back() {
        let hasher = |bytes: &[u8]| format!("hmac-sha256:{}", bytes.len());
        let mut deep = json!("leaf");
        for _ in 0..300 {
            deep = json!({"records": [deep]});
        }
        let hashed = hash_value(&deep, &hasher);
        let text = serde_json::to_string(&json!({"response": {"data": hashed}})).unwrap();
        let parsed: Value = serde_json::from_str(&text).expect("the record parses back");
        // Shallow levels stay itemized and searchable by field.
        assert!(parsed["response"]["data"]["records"][0]["records"][0].is_object());
        // The first level at the cap is one HMAC of that subtree's JSON.
        let mut at_cap = &hashed;
        for _ in 0..MAX_ITEMIZED_DEPTH / 2 {
            at_cap = &at_cap["records"][0];
        }
        assert!(
            at_cap
                .as_str()
                .is_some_and(|s| s.starts_with("hmac-sha256:")),
            "{at_cap}"
        );
        assert_eq!(
            hash_value(&json!({"a": [1, {"b": "c"}]}), &hasher),
            json!({"a": ["hmac-sha256:1", {"b": "hmac-sha256:1"}]})
        );
    }

    fn fake_hmac(bytes: &[u8]) -> String {
        format!("hmac-sha256:{}", bytes.len())
    }

    #[test]
    fn huge_data_is_summarized_not_itemized() {
        let items: Vec<Value> = (0..100_000)
            .map(|i| json!({"plaintext": format!("secret-{i}")}))
            .collect();
        let data = json!({"batch_input": items}).as_object().cloned().unwrap();
        let summary = audited_data(&data, &fake_hmac);
        assert_eq!(summary["_truncated"], true);
        assert_eq!(summary["_keys"], json!(["batch_input"]));
        let text = summary.to_string();
        assert!(
            text.len() < 1024,
            "summary stays small: {} bytes",
            text.len()
        );
        assert!(!text.contains("secret-1"));
        let small = json!({"k": "v"}).as_object().cloned().unwrap();
        assert_eq!(
            audited_data(&small, &fake_hmac),
            json!({"k": "hmac-sha256:1"})
        );
    }

    #[test]
    fn only_named_number_fields_stay_in_the_clear() {
        let data = json!({"secret_shares": 5, "secret_threshold": "three-canary",
                          "pgp_keys": ["key-canary"], "n": 7})
        .as_object()
        .cloned()
        .unwrap();
        let event = AuditEvent {
            request_data: Some(&data),
            clear_request_fields: &["secret_shares", "secret_threshold"],
            ..AuditEvent::default()
        };
        let value: Value = serde_json::from_slice(&record(&event, "t", &fake_hmac)).unwrap();
        let recorded = &value["request"]["data"];
        assert_eq!(recorded["secret_shares"], 5);
        assert_eq!(
            recorded["secret_threshold"], "hmac-sha256:12",
            "a named field that is not a number is HMAC'd"
        );
        assert_eq!(recorded["pgp_keys"][0], "hmac-sha256:10");
        assert_eq!(recorded["n"], "hmac-sha256:1", "unnamed numbers are HMAC'd");
    }

    #[test]
    fn records_hide_secret_values_and_tokens() {
        let data = json!({"data": {"password": "hunter2-canary", "n": 5, "list": ["a"]}})
            .as_object()
            .cloned()
            .unwrap();
        let auth = AuthInfo {
            accessor: "acc".into(),
            display_name: "root".into(),
            policies: vec!["root".into()],
        };
        let event = AuditEvent {
            request_id: "r1",
            operation: "update",
            path: "secret/data/app",
            client_token: Some("hvs.secret-token-canary"),
            auth: Some(&auth),
            request_data: Some(&data),
            response_data: Some(&data),
            status: 200,
            ..AuditEvent::default()
        };
        let bytes = record(&event, "2026-01-01T00:00:00Z", &fake_hmac);
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("hunter2-canary"));
        assert!(!text.contains("secret-token-canary"));
        assert!(
            text.contains("secret/data/app"),
            "paths are kept in the clear"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["request"]["data"]["data"]["list"][0], "hmac-sha256:1");
        assert_eq!(value["auth"]["policies"][0], "root");
    }
}
