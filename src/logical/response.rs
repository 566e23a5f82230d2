//! What an engine returns: data for the client, warnings, and optionally a status that overrides
//! the default (200 with data, 204 without; KV v2 answers a deleted version with 404 plus data).

use serde_json::Map;
use serde_json::Value;

/// A successful engine response.
#[derive(Default, Clone)]
pub struct Response {
    /// The `data` object returned to the client, if any.
    pub data: Option<Map<String, Value>>,
    /// Warnings shown to the client.
    pub warnings: Vec<String>,
    /// A status code that overrides the default.
    pub status: Option<u16>,
    /// Also copy `data`'s fields to the top level of the body (Vault's legacy `sys/` routes such as
    /// `sys/mounts`; clients read either place).
    pub data_at_top_level: bool,
}

impl Response {
    /// A response with no data (HTTP 204).
    pub fn no_content() -> Self {
        Response::default()
    }

    /// A response carrying `data` (HTTP 200).
    pub fn with_data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Response::default()
        }
    }

    /// A `data` response whose top level is built from a JSON object value.
    pub fn from_value(value: Value) -> Self {
        match value {
            Value::Object(map) => Response::with_data(map),
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other);
                Response::with_data(map)
            }
        }
    }

    /// The LIST response shape: `{"keys": [...]}`; an empty list is a 404, as in Vault.
    pub fn list(keys: Vec<String>) -> Self {
        if keys.is_empty() {
            return Response {
                status: Some(404),
                ..Response::default()
            };
        }
        let mut map = Map::new();
        map.insert("keys".into(), Value::from(keys));
        Response::with_data(map)
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("has_data", &self.data.is_some())
            .field("warnings", &self.warnings)
            .finish()
    }
}
