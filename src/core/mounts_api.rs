//! The mount tables over the API: secrets engines at `sys/mounts` (list), `sys/mounts/<path>`
//! (enable, read, disable), `sys/mounts/<path>/tune` (read, update) and `sys/remount`; auth
//! methods at `sys/auth`, `sys/auth/<path>` and `sys/auth/<path>/tune`, served at
//! `auth/<path>/`. Every change is one guarded transaction: disabling a mount removes its entry
//! and deletes all of its data together.

use std::collections::BTreeMap;

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::Core;
use super::CoreError;
use super::mounts::MountEntry;
use super::mounts::MountKind;
use super::mounts::MountTable;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::duration;

/// Reads a mount table through `txn` (the read becomes a guard of any write).
pub(crate) fn load_table(txn: &mut TxnBuilder, kind: MountKind) -> Result<MountTable, CoreError> {
    match txn.get(kind.table_key()).map_err(LogicalError::from)? {
        Some(bytes) => {
            MountTable::decode(&bytes).map_err(|err| CoreError::Internal(err.to_string()))
        }
        None => Ok(MountTable::default()),
    }
}

fn store_table(txn: &mut TxnBuilder, kind: MountKind, table: &MountTable) {
    txn.put(kind.table_key(), table.encode());
}

fn string_field(request: &ClientRequest, name: &str) -> Result<Option<String>, CoreError> {
    match request.data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(CoreError::InvalidRequest(format!(
            "{name} must be a string"
        ))),
    }
}

fn ttl_field(config: &Map<String, Value>, name: &str) -> Result<Option<u64>, CoreError> {
    match config.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => duration::parse_seconds(value)
            .map(Some)
            .map_err(|err| CoreError::InvalidRequest(format!("{name}: {err}"))),
    }
}

/// `options` as strings (`{"version": "2"}`; numbers and booleans are accepted and stringified).
fn options_field(request: &ClientRequest) -> Result<BTreeMap<String, String>, CoreError> {
    match request.data.get("options") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((key.clone(), value.to_string())),
                _ => Err(CoreError::InvalidRequest(format!(
                    "option {key} must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(CoreError::InvalidRequest(
            "options must be an object".into(),
        )),
    }
}

fn unsupported() -> Result<Response, CoreError> {
    Err(CoreError::Logical(LogicalError::UnsupportedOperation))
}

impl Core {
    /// Serves `sys/mounts*`, `sys/remount` and `sys/auth*`; `None` for other paths.
    pub(super) fn mounts_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Option<Result<Response, CoreError>> {
        let path = request.path.trim_end_matches('/');
        let (kind, rest) = if path == "sys/mounts" {
            (MountKind::Secrets, None)
        } else if let Some(rest) = path.strip_prefix("sys/mounts/") {
            (MountKind::Secrets, Some(rest))
        } else if path == "sys/auth" {
            (MountKind::Auth, None)
        } else if let Some(rest) = path.strip_prefix("sys/auth/") {
            (MountKind::Auth, Some(rest))
        } else if path == "sys/remount" {
            return Some(match request.operation {
                Operation::Update | Operation::Create => remount(request, txn),
                _ => unsupported(),
            });
        } else {
            return None;
        };
        let Some(rest) = rest else {
            return Some(match request.operation {
                Operation::Read => load_table(txn, kind).map(|table| legacy(listing(kind, &table))),
                _ => unsupported(),
            });
        };
        Some(match (rest.strip_suffix("/tune"), request.operation) {
            (Some(mount), Operation::Read) => read_tune(txn, kind, mount),
            (Some(mount), Operation::Update | Operation::Create) => tune(request, txn, kind, mount),
            (None, Operation::Update | Operation::Create) => self.enable(request, txn, kind, rest),
            (None, Operation::Delete) => disable(txn, kind, rest),
            (None, Operation::Read) => load_table(txn, kind).and_then(|table| {
                let entry = table
                    .find(rest)
                    .ok_or(CoreError::Logical(LogicalError::NotFound))?;
                Ok(legacy(
                    entry.to_json().as_object().cloned().unwrap_or_default(),
                ))
            }),
            _ => unsupported(),
        })
    }

    fn enable(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        kind: MountKind,
        path: &str,
    ) -> Result<Response, CoreError> {
        let engine = string_field(request, "type")?
            .ok_or_else(|| CoreError::InvalidRequest("type is required".into()))?;
        let mut options = options_field(request)?;
        let (engine, version) = match (kind, engine.as_str()) {
            (MountKind::Secrets, "kv-v2") => ("kv".to_string(), 2),
            (MountKind::Secrets, "kv") => match options.get("version").map(String::as_str) {
                None | Some("") | Some("1") => ("kv".to_string(), 1),
                Some("2") => ("kv".to_string(), 2),
                Some(other) => {
                    return Err(CoreError::InvalidRequest(format!(
                        "unsupported kv version {other:?}"
                    )));
                }
            },
            (_, other) => (other.to_string(), 1),
        };
        let known = match kind {
            MountKind::Secrets => self.backend_for(&engine, version).is_some(),
            MountKind::Auth => self.auth_backend_for(&engine).is_some(),
        };
        if !known {
            return Err(CoreError::InvalidRequest(format!(
                "plugin not found in the catalog: {engine}"
            )));
        }
        let mut table = load_table(txn, kind)?;
        let point = table
            .check_new_path(kind, path, None)
            .map_err(CoreError::InvalidRequest)?;
        let description = string_field(request, "description")?.unwrap_or_default();
        let mut entry = MountEntry::new(&point, &engine, version, &description);
        if engine == "kv" {
            options.insert("version".into(), version.to_string());
        }
        entry.options = options;
        if let Some(Value::Object(config)) = request.data.get("config") {
            entry.default_lease_ttl = ttl_field(config, "default_lease_ttl")?.unwrap_or(0);
            entry.max_lease_ttl = ttl_field(config, "max_lease_ttl")?.unwrap_or(0);
        }
        table.entries.push(entry);
        store_table(txn, kind, &table);
        Ok(Response::no_content())
    }
}

/// The listing of a table in Vault's shape; the auth table also shows the built-in `token/`.
fn listing(kind: MountKind, table: &MountTable) -> Map<String, Value> {
    let mut map = table.to_json();
    if kind == MountKind::Auth {
        let token = json!({
            "type": "token", "description": "token based credentials", "accessor": "auth_token",
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            "options": Value::Null, "local": false, "seal_wrap": false, "external_entropy_access": false,
        });
        map.insert("token/".into(), token);
    }
    map
}

/// `POST sys/remount {"from", "to"}`: the data moves with the mount (it lives under its uuid).
fn remount(request: &ClientRequest, txn: &mut TxnBuilder) -> Result<Response, CoreError> {
    let from = string_field(request, "from")?
        .ok_or_else(|| CoreError::InvalidRequest("from is required".into()))?;
    let to = string_field(request, "to")?
        .ok_or_else(|| CoreError::InvalidRequest("to is required".into()))?;
    let mut table = load_table(txn, MountKind::Secrets)?;
    let current = table
        .find(&from)
        .map(|entry| entry.path.clone())
        .ok_or_else(|| CoreError::InvalidRequest(format!("no secrets engine mounted at {from}")))?;
    let point = table
        .check_new_path(MountKind::Secrets, &to, Some(&current))
        .map_err(CoreError::InvalidRequest)?;
    for entry in &mut table.entries {
        if entry.path == current {
            entry.path = point.clone();
        }
    }
    store_table(txn, MountKind::Secrets, &table);
    Ok(Response::no_content())
}

/// Disables a mount: removes it and all of its data in one transaction.
fn disable(txn: &mut TxnBuilder, kind: MountKind, path: &str) -> Result<Response, CoreError> {
    let mut table = load_table(txn, kind)?;
    let Some(entry) = table.find(path).cloned() else {
        return Ok(Response::no_content());
    };
    table
        .entries
        .retain(|candidate| candidate.path != entry.path);
    store_table(txn, kind, &table);
    txn.delete_prefix(&entry.storage_prefix(kind));
    Ok(Response::no_content())
}

fn read_tune(txn: &mut TxnBuilder, kind: MountKind, path: &str) -> Result<Response, CoreError> {
    let table = load_table(txn, kind)?;
    let entry = table
        .find(path)
        .ok_or_else(|| CoreError::InvalidRequest(format!("no mount at {path}")))?;
    let data = json!({
        "default_lease_ttl": entry.default_lease_ttl,
        "max_lease_ttl": entry.max_lease_ttl,
        "force_no_cache": false,
        "description": entry.description,
        "options": entry.options,
    });
    Ok(legacy(data.as_object().cloned().unwrap_or_default()))
}

/// Tunes a mount: description, lease TTLs and options (`max_versions` for KV v2; the engine
/// version cannot change).
fn tune(
    request: &ClientRequest,
    txn: &mut TxnBuilder,
    kind: MountKind,
    path: &str,
) -> Result<Response, CoreError> {
    let mut table = load_table(txn, kind)?;
    let point = table
        .find(path)
        .map(|entry| entry.path.clone())
        .ok_or_else(|| CoreError::InvalidRequest(format!("no mount at {path}")))?;
    let description = string_field(request, "description")?;
    let options = options_field(request)?;
    let default_ttl = ttl_field(&request.data, "default_lease_ttl")?;
    let max_ttl = ttl_field(&request.data, "max_lease_ttl")?;
    let entry = table
        .entries
        .iter_mut()
        .find(|entry| entry.path == point)
        .ok_or(CoreError::Logical(LogicalError::NotFound))?;
    if let Some(description) = description {
        entry.description = description;
    }
    for (key, value) in options {
        if key == "version" && Some(&value) != entry.options.get("version") {
            return Err(CoreError::InvalidRequest(
                "the engine version of a mount cannot be changed by tuning".into(),
            ));
        }
        entry.options.insert(key, value);
    }
    if let Some(ttl) = default_ttl {
        entry.default_lease_ttl = ttl;
    }
    if let Some(ttl) = max_ttl {
        entry.max_lease_ttl = ttl;
    }
    store_table(txn, kind, &table);
    Ok(Response::no_content())
}

/// A response whose data Vault also copies to the top level of the body (legacy `sys/` shape).
fn legacy(data: Map<String, Value>) -> Response {
    let mut response = Response::with_data(data);
    response.data_at_top_level = true;
    response
}
