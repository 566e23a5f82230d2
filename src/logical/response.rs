//! What an engine returns: data for the client, warnings, optionally a status that overrides
//! the default (200 with data, 204 without; KV v2 answers a deleted version with 404 plus data),
//! and, from an auth method's login, a grant the core turns into a token.

use std::collections::BTreeMap;

use serde_json::Map;
use serde_json::Value;

/// A login grant from an auth method: who logged in and what their token may do. The core creates
/// the token (an orphan, owned by no parent) and answers with Vault's `auth` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Auth {
    /// Policies for the token (`default` is added unless `no_default_policy`).
    pub policies: Vec<String>,
    /// Metadata shown in the token's lookup and the `auth` block (e.g. `role_name`, `username`).
    pub metadata: BTreeMap<String, String>,
    /// The token's display name (e.g. `alice`); the core prefixes the mount path, as Vault does.
    pub display_name: String,
    /// Token TTL in seconds (0: the mount's default, then the system default of 32 days).
    pub ttl: u64,
    /// Upper bound the token can be renewed to, in seconds (0: the mount's/system maximum).
    pub max_ttl: u64,
    /// A hard cap on the token's lifetime that renewal never passes (0: none).
    pub explicit_max_ttl: u64,
    /// A periodic token's period in seconds (0: not periodic).
    pub period: u64,
    /// How many requests the token may make (0: unlimited).
    pub num_uses: u32,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// CIDR blocks the token may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// Leave out the `default` policy.
    pub no_default_policy: bool,
}

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
    /// A login grant (auth methods only): the core issues a token for it.
    pub auth: Option<Auth>,
}

impl Response {
    /// A response with no data (HTTP 204).
    pub fn no_content() -> Self {
        Response::default()
    }

    /// A successful login: the core issues a token for `auth` and answers with its `auth` block.
    pub fn login(auth: Auth) -> Self {
        Response {
            auth: Some(auth),
            ..Response::default()
        }
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
