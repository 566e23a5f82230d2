//! `metadata/<path>`: read, list, write settings and custom metadata, delete all versions; and
//! `delete/`, `undelete/`, `destroy/` of given versions.

use std::collections::BTreeMap;

use serde_json::Value;

use super::cleanup;
use super::model::KeyMetadata;
use super::model::load;
use super::model::meta_key;
use super::model::store;
use super::model::version_key;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::duration;
use crate::logical::list_children;
use crate::logical::list_descendants;
use crate::logical::time;

/// `GET metadata/<path>`.
pub(crate) fn read(path: &str, storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let meta = load::<KeyMetadata>(storage, &meta_key(path))?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(meta.to_json()))
}

/// `LIST metadata/<prefix>`: the secrets and folders directly under `prefix`; with
/// `recursive=true` (beyond Vault) every secret below it, as paths relative to `prefix`, left out
/// where the token may not list the folder holding it.
pub(crate) fn list(
    request: &Request,
    prefix: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    if prefix.split('/').any(|segment| segment == "..") {
        return Err(LogicalError::invalid("invalid path: '..' segment"));
    }
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    let full_prefix = meta_key(&prefix);
    let keys = storage.keys_under(&full_prefix)?;
    let entries = if request.recursive()? {
        list_descendants(&full_prefix, &keys)
    } else {
        list_children(&full_prefix, &keys)
    };
    Ok(Response::list(request.list_page(entries)?))
}

/// `POST metadata/<path>`: settings and custom metadata; creates the metadata if needed.
pub(crate) fn write(
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let mut meta = load::<KeyMetadata>(storage, &meta_key(path))?.unwrap_or_default();
    if let Some(value) = request.field("max_versions") {
        meta.max_versions = match &value {
            Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(text) => text.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| LogicalError::invalid("max_versions must be a non-negative integer"))?;
    }
    if let Some(value) = request.field("cas_required") {
        meta.cas_required = parse_bool(&value)
            .ok_or_else(|| LogicalError::invalid("cas_required must be a boolean"))?;
    }
    if let Some(value) = request.field("delete_version_after") {
        meta.delete_version_after =
            duration::parse_seconds(&value).map_err(LogicalError::invalid)?;
    }
    if let Some(value) = request.data.get("custom_metadata") {
        meta.custom_metadata = parse_custom_metadata(value)?;
    }
    let now = time::now_nanos();
    if meta.created_nanos == 0 {
        meta.created_nanos = now;
    }
    meta.updated_nanos = now;
    store(storage, &meta_key(path), &meta)?;
    if meta.delete_version_after > 0 {
        cleanup::mark_expiring(storage, path)?;
    }
    Ok(Response::no_content())
}

/// `DELETE metadata/<path>`: removes the secret, every version and its metadata.
pub(crate) fn delete(path: &str, storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    if let Some(meta) = load::<KeyMetadata>(storage, &meta_key(path))? {
        for version in meta.versions.keys() {
            storage.delete(&version_key(path, *version))?;
        }
        storage.delete(&meta_key(path))?;
        storage.delete(&cleanup::expiring_key(path))?;
    }
    Ok(Response::no_content())
}

/// What `delete/`, `undelete/` and `destroy/` do to each listed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionAction {
    /// Soft delete.
    Delete,
    /// Undo a soft delete.
    Undelete,
    /// Remove the data for good.
    Destroy,
}

/// `POST {delete,undelete,destroy}/<path>` with `{"versions": [..]}`.
pub(crate) fn change_versions(
    request: &Request,
    path: &str,
    action: VersionAction,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let versions = parse_versions(request.data.get("versions"))?;
    let Some(mut meta) = load::<KeyMetadata>(storage, &meta_key(path))? else {
        return Ok(Response::no_content());
    };
    let now = time::now_nanos();
    for number in versions {
        let Some(version) = meta.versions.get_mut(&number) else {
            continue;
        };
        match action {
            VersionAction::Delete if !version.destroyed && version.deletion_nanos.is_none() => {
                version.deletion_nanos = Some(now);
            }
            VersionAction::Undelete if !version.destroyed => version.deletion_nanos = None,
            VersionAction::Destroy if !version.destroyed => {
                version.destroyed = true;
                storage.delete(&version_key(path, number))?;
            }
            _ => {}
        }
    }
    store(storage, &meta_key(path), &meta)?;
    Ok(Response::no_content())
}

fn parse_versions(value: Option<&Value>) -> Result<Vec<u64>, LogicalError> {
    let invalid = || LogicalError::invalid("versions must be a non-empty list of version numbers");
    let items: Vec<Value> = match value {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(text)) => text
            .split(',')
            .map(|part| Value::String(part.trim().to_string()))
            .collect(),
        Some(Value::Number(number)) => vec![Value::Number(number.clone())],
        _ => return Err(LogicalError::invalid("no version number provided")),
    };
    if items.is_empty() {
        return Err(invalid());
    }
    items
        .iter()
        .map(|item| match item {
            Value::Number(number) => number.as_u64().ok_or_else(invalid),
            Value::String(text) => text.parse().map_err(|_| invalid()),
            _ => Err(invalid()),
        })
        .collect()
}

fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

fn parse_custom_metadata(value: &Value) -> Result<BTreeMap<String, String>, LogicalError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| match value {
                Value::String(text) => Ok((key.clone(), text.clone())),
                _ => Err(LogicalError::invalid(
                    "custom_metadata values must be strings",
                )),
            })
            .collect(),
        _ => Err(LogicalError::invalid(
            "custom_metadata must be an object of strings",
        )),
    }
}
