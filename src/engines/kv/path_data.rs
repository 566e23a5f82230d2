//! `data/<path>`: read a version, write a new version (with check-and-set), patch the latest
//! version (JSON merge patch), and soft-delete the latest version.

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::cleanup;
use super::model::KeyMetadata;
use super::model::MountConfig;
use super::model::VersionData;
use super::model::VersionMeta;
use super::model::load;
use super::model::load_config;
use super::model::load_data;
use super::model::meta_key;
use super::model::store;
use super::model::version_key;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::time;

/// `GET data/<path>[?version=N]`.
pub(crate) fn read(
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let Some(meta) = load::<KeyMetadata>(storage, &meta_key(path))? else {
        return Err(LogicalError::NotFound);
    };
    let version = match request.field("version") {
        None => meta.current_version,
        Some(value) => parse_version(&value)?,
    };
    let version = if version == 0 {
        meta.current_version
    } else {
        version
    };
    let Some(version_meta) = meta.versions.get(&version) else {
        return Err(LogicalError::NotFound);
    };
    let now = time::now_nanos();
    let deleted_by_age = expired(request, &meta, version_meta, storage, now)?;
    let metadata = version_meta.to_json(version, &meta.custom_metadata);
    if version_meta.destroyed || version_meta.is_deleted(now) || deleted_by_age {
        // Vault answers a deleted or destroyed version with 404 and the version's metadata.
        let mut metadata = metadata;
        if deleted_by_age && !version_meta.is_deleted(now) {
            let at = version_meta.created_nanos
                + meta.effective_delete_after(&load_config(request, storage)?) * 1_000_000_000;
            metadata.insert("deletion_time".into(), json!(time::format_nanos(at)));
        }
        let mut response = Response::with_data(data_response(Value::Null, metadata));
        response.status = Some(404);
        return Ok(response);
    }
    let data = load_data(storage, path, version)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(data_response(
        Value::Object(data),
        metadata,
    )))
}

/// `subkeys/<path>`: the structure of a version's data with every leaf value replaced by null,
/// down to `depth` levels of nesting (0 or absent: no limit), and the version's metadata.
pub(crate) fn subkeys(
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let depth = match request.field("depth") {
        None => 0,
        Some(value) => parse_version(&value)
            .map_err(|_| LogicalError::invalid("depth must be a non-negative integer"))?,
    };
    let mut response = read(request, path, storage)?;
    if response.status == Some(404) {
        return Ok(response);
    }
    let Some(data) = response.data.as_mut() else {
        return Err(LogicalError::NotFound);
    };
    let structure = data.remove("data").map(|value| skeleton(&value, depth, 1));
    data.insert("subkeys".into(), structure.unwrap_or(Value::Null));
    Ok(response)
}

/// `value` with leaves replaced by null; objects at `level` beyond `depth` (when not 0) too.
fn skeleton(value: &Value, depth: u64, level: u64) -> Value {
    match value {
        Value::Object(map) if depth == 0 || level <= depth => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let inner = match inner {
                        Value::Object(_) => skeleton(inner, depth, level + 1),
                        _ => Value::Null,
                    };
                    (key.clone(), inner)
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Whether `delete_version_after` has passed for this version (enforced on read at once, not
/// only when a cleanup runs).
fn expired(
    request: &Request,
    meta: &KeyMetadata,
    version: &VersionMeta,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<bool, LogicalError> {
    let after = meta.effective_delete_after(&load_config(request, storage)?);
    Ok(after > 0
        && version
            .created_nanos
            .saturating_add(after.saturating_mul(1_000_000_000))
            <= now)
}

fn data_response(data: Value, metadata: Map<String, Value>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("data".into(), data);
    map.insert("metadata".into(), Value::Object(metadata));
    map
}

fn parse_version(value: &Value) -> Result<u64, LogicalError> {
    let invalid = || LogicalError::invalid("version must be a non-negative integer");
    match value {
        Value::Number(number) => number.as_u64().ok_or_else(invalid),
        Value::String(text) => text.trim().parse().map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// The `options.cas` of a write, if given. `cas` is the only option Vault defines; any other
/// key is refused rather than ignored (a misspelt `cas` would otherwise write unchecked).
fn cas_option(request: &Request) -> Result<Option<u64>, LogicalError> {
    match request.data.get("options") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(options)) if options.keys().any(|key| key != "cas") => Err(
            LogicalError::invalid("options may only hold cas: unknown option given"),
        ),
        Some(Value::Object(options)) => match options.get("cas") {
            None | Some(Value::Null) => Ok(None),
            Some(value) => parse_version(value)
                .map(Some)
                .map_err(|_| LogicalError::invalid("cas must be a non-negative integer")),
        },
        Some(_) => Err(LogicalError::invalid("options must be an object")),
    }
}

/// Checks the CAS rules of Vault: required by mount or secret, and matching the current version.
fn check_cas(
    request: &Request,
    meta: &KeyMetadata,
    config: &MountConfig,
) -> Result<(), LogicalError> {
    match cas_option(request)? {
        None if meta.cas_required || config.cas_required => Err(LogicalError::invalid(
            "check-and-set parameter required for this call",
        )),
        Some(cas) if cas != meta.current_version => Err(LogicalError::invalid(
            "check-and-set parameter did not match the current version",
        )),
        _ => Ok(()),
    }
}

/// `POST/PUT data/<path>`: writes a new version.
pub(crate) fn write(
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let data = match request.data.get("data") {
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Err(LogicalError::invalid("data must be a JSON object")),
        None => return Err(LogicalError::invalid("no data provided")),
    };
    let config = load_config(request, storage)?;
    let mut meta = load::<KeyMetadata>(storage, &meta_key(path))?.unwrap_or_default();
    check_cas(request, &meta, &config)?;
    put_version(storage, path, &mut meta, &config, data)
}

/// `PATCH data/<path>`: merges the body's `data` into the latest version (RFC 7386).
pub(crate) fn patch(
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let Some(Value::Object(changes)) = request.data.get("data") else {
        return Err(LogicalError::invalid("no data provided"));
    };
    let config = load_config(request, storage)?;
    let Some(mut meta) = load::<KeyMetadata>(storage, &meta_key(path))? else {
        return Err(LogicalError::NotFound);
    };
    check_cas(request, &meta, &config)?;
    let now = time::now_nanos();
    let current = meta
        .versions
        .get(&meta.current_version)
        .cloned()
        .unwrap_or_default();
    if current.destroyed
        || current.is_deleted(now)
        || expired(request, &meta, &current, storage, now)?
    {
        return Err(LogicalError::NotFound);
    }
    let mut data = Value::Object(
        load_data(storage, path, meta.current_version)?.ok_or(LogicalError::NotFound)?,
    );
    merge_patch(&mut data, &Value::Object(changes.clone()));
    let Value::Object(merged) = data else {
        return Err(LogicalError::invalid("patch must leave a JSON object"));
    };
    put_version(storage, path, &mut meta, &config, merged)
}

/// Stages version `current + 1` with `data`, prunes versions beyond the limit, and answers with
/// the new version's metadata.
fn put_version(
    storage: &mut dyn Storage,
    path: &str,
    meta: &mut KeyMetadata,
    config: &MountConfig,
    data: Map<String, Value>,
) -> Result<Response, LogicalError> {
    let now = time::now_nanos();
    let version = meta.current_version + 1;
    if meta.created_nanos == 0 {
        meta.created_nanos = now;
    }
    meta.updated_nanos = now;
    meta.current_version = version;
    let version_meta = VersionMeta {
        created_nanos: now,
        deletion_nanos: None,
        destroyed: false,
    };
    meta.versions.insert(version, version_meta.clone());
    let max_versions = u64::from(meta.effective_max_versions(config));
    while meta.versions.len() as u64 > max_versions {
        let Some((&oldest, _)) = meta.versions.iter().next() else {
            break;
        };
        meta.versions.remove(&oldest);
        storage.delete(&version_key(path, oldest))?;
    }
    meta.oldest_version = meta.versions.keys().next().copied().unwrap_or(version);
    let json = serde_json::to_string(&Value::Object(data))
        .map_err(|err| LogicalError::invalid(err.to_string()))?;
    store(storage, &version_key(path, version), &VersionData { json })?;
    store(storage, &meta_key(path), meta)?;
    if meta.effective_delete_after(config) > 0 {
        cleanup::mark_expiring(storage, path)?;
    }
    Ok(Response::with_data(
        version_meta.to_json(version, &meta.custom_metadata),
    ))
}

/// `DELETE data/<path>`: soft-deletes the latest version.
pub(crate) fn delete_latest(
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let Some(mut meta) = load::<KeyMetadata>(storage, &meta_key(path))? else {
        return Ok(Response::no_content());
    };
    let now = time::now_nanos();
    let current = meta.current_version;
    if let Some(version) = meta.versions.get_mut(&current)
        && !version.destroyed
        && !version.is_deleted(now)
    {
        version.deletion_nanos = Some(now);
        store(storage, &meta_key(path), &meta)?;
    }
    Ok(Response::no_content())
}

/// RFC 7386 JSON merge patch: `null` removes a key, objects merge recursively, anything else
/// replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_keep_the_structure_to_a_depth() {
        let data = json!({"user": "admin", "nested": {"password": "x", "deeper": {"a": 1}}});
        assert_eq!(
            skeleton(&data, 0, 1),
            json!({"user": null, "nested": {"password": null, "deeper": {"a": null}}})
        );
        assert_eq!(skeleton(&data, 1, 1), json!({"user": null, "nested": null}));
        assert_eq!(
            skeleton(&data, 2, 1),
            json!({"user": null, "nested": {"password": null, "deeper": null}})
        );
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        merge_patch(&mut doc, &json!({"a": null, "b": {"c": 5}, "f": [1]}));
        assert_eq!(doc, json!({"b": {"c": 5, "d": 3}, "e": 4, "f": [1]}));
    }
}
