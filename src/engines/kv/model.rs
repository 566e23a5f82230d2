//! What KV v2 stores in its view and how it is laid out:
//!
//! - `config` -> [`MountConfig`]
//! - `meta/<path>` -> [`KeyMetadata`] (one per secret; LIST walks these)
//! - `version/<path>/<n>` -> [`VersionData`] (the secret's data for version `n`; the last `/`
//!   separates the numeric version, so keys of different paths never collide)
//!
//! Values are encoded with the project codec (a format-version byte first). Secret data is kept as
//! a JSON string inside [`VersionData`] because the codec cannot carry arbitrary JSON values.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;

use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Storage;
use crate::logical::StorageError;
use crate::logical::duration;
use crate::logical::time;

/// Versions kept per secret when neither the mount nor the secret sets `max_versions`.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;

pub(crate) const CONFIG_KEY: &str = "config";

/// The mount-wide settings (`<mount>/config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    /// Versions kept per secret (0 = the default of 10).
    pub max_versions: u32,
    /// Whether every write must carry `options.cas`.
    pub cas_required: bool,
    /// Seconds after which a version is deleted (0 = never).
    pub delete_version_after: u64,
}

/// The state of one version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VersionMeta {
    /// When it was written (ns since the epoch).
    pub created_nanos: u64,
    /// When it was (or will be) soft-deleted, if at all (ns since the epoch).
    pub deletion_nanos: Option<u64>,
    /// Whether its data was destroyed.
    pub destroyed: bool,
}

impl VersionMeta {
    /// Deleted now: soft-deleted at or before `now`.
    pub fn is_deleted(&self, now: u64) -> bool {
        self.deletion_nanos.is_some_and(|at| at <= now)
    }

    /// The JSON shape Vault returns for a version.
    pub fn to_json(
        &self,
        version: u64,
        custom_metadata: &BTreeMap<String, String>,
    ) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            "created_time".into(),
            json!(time::format_nanos(self.created_nanos)),
        );
        map.insert(
            "custom_metadata".into(),
            custom_metadata_json(custom_metadata),
        );
        map.insert(
            "deletion_time".into(),
            json!(
                self.deletion_nanos
                    .map(time::format_nanos)
                    .unwrap_or_default()
            ),
        );
        map.insert("destroyed".into(), json!(self.destroyed));
        map.insert("version".into(), json!(version));
        map
    }
}

fn custom_metadata_json(custom: &BTreeMap<String, String>) -> Value {
    if custom.is_empty() {
        Value::Null
    } else {
        json!(custom)
    }
}

/// Everything known about one secret except its data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct KeyMetadata {
    /// Live versions (not yet pruned), by number.
    pub versions: BTreeMap<u64, VersionMeta>,
    /// The newest version number ever written (0 before the first write).
    pub current_version: u64,
    /// The oldest version still kept.
    pub oldest_version: u64,
    /// Per-secret max versions (0 = use the mount's).
    pub max_versions: u32,
    /// Per-secret CAS requirement.
    pub cas_required: bool,
    /// Per-secret delete-after (seconds, 0 = use the mount's).
    pub delete_version_after: u64,
    /// User-supplied metadata.
    pub custom_metadata: BTreeMap<String, String>,
    /// When the secret was created (ns).
    pub created_nanos: u64,
    /// When the secret was last written (ns).
    pub updated_nanos: u64,
}

impl KeyMetadata {
    /// The max-versions limit in effect, given the mount config.
    pub fn effective_max_versions(&self, config: &MountConfig) -> u32 {
        match (self.max_versions, config.max_versions) {
            (0, 0) => DEFAULT_MAX_VERSIONS,
            (0, mount) => mount,
            (own, 0) => own,
            (own, mount) => own.min(mount),
        }
    }

    /// The delete-after in effect (seconds; 0 = never), given the mount config.
    pub fn effective_delete_after(&self, config: &MountConfig) -> u64 {
        match (self.delete_version_after, config.delete_version_after) {
            (0, mount) => mount,
            (own, 0) => own,
            (own, mount) => own.min(mount),
        }
    }

    /// The `metadata` read response.
    pub fn to_json(&self) -> Map<String, Value> {
        let versions: Map<String, Value> = self
            .versions
            .iter()
            .map(|(number, meta)| {
                let mut entry = meta.to_json(*number, &self.custom_metadata);
                entry.remove("custom_metadata");
                entry.remove("version");
                (number.to_string(), Value::Object(entry))
            })
            .collect();
        let mut map = Map::new();
        map.insert("cas_required".into(), json!(self.cas_required));
        map.insert(
            "created_time".into(),
            json!(time::format_nanos(self.created_nanos)),
        );
        map.insert("current_version".into(), json!(self.current_version));
        map.insert(
            "custom_metadata".into(),
            custom_metadata_json(&self.custom_metadata),
        );
        map.insert(
            "delete_version_after".into(),
            json!(duration::format_seconds(self.delete_version_after)),
        );
        map.insert("max_versions".into(), json!(self.max_versions));
        map.insert("oldest_version".into(), json!(self.oldest_version));
        map.insert(
            "updated_time".into(),
            json!(time::format_nanos(self.updated_nanos)),
        );
        map.insert("versions".into(), Value::Object(versions));
        map
    }
}

/// The data of one version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionData {
    /// The secret's key/value pairs as a JSON object, serialized.
    pub json: String,
}

pub(crate) fn meta_key(path: &str) -> String {
    format!("meta/{path}")
}

pub(crate) fn version_key(path: &str, version: u64) -> String {
    format!("version/{path}/{version}")
}

fn corrupt(key: &str) -> LogicalError {
    LogicalError::Storage(StorageError::Corrupt(key.to_string()))
}

/// Reads and decodes a codec value.
pub(crate) fn load<T: serde::de::DeserializeOwned>(
    storage: &mut dyn Storage,
    key: &str,
) -> Result<Option<T>, LogicalError> {
    match storage.get(key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes).map(Some).map_err(|_| corrupt(key)),
    }
}

/// Encodes and stages a codec value.
pub(crate) fn store<T: Serialize>(
    storage: &mut dyn Storage,
    key: &str,
    value: &T,
) -> Result<(), LogicalError> {
    Ok(storage.put(key, codec::encode(value))?)
}

/// The mount config (defaults when never written). A `max_versions` mount option (set when
/// the mount was enabled or tuned) applies when the engine config leaves it at 0.
pub(crate) fn load_config(
    request: &Request,
    storage: &mut dyn Storage,
) -> Result<MountConfig, LogicalError> {
    let mut config: MountConfig = load(storage, CONFIG_KEY)?.unwrap_or_default();
    if config.max_versions == 0
        && let Some(max) = request
            .mount_options
            .get("max_versions")
            .and_then(|value| value.parse().ok())
    {
        config.max_versions = max;
    }
    Ok(config)
}

/// Reads the data of one version as a JSON object.
pub(crate) fn load_data(
    storage: &mut dyn Storage,
    path: &str,
    version: u64,
) -> Result<Option<Map<String, Value>>, LogicalError> {
    let key = version_key(path, version);
    let Some(data) = load::<VersionData>(storage, &key)? else {
        return Ok(None);
    };
    serde_json::from_str(&data.json)
        .map(Some)
        .map_err(|_| corrupt(&key))
}

/// Checks a secret path from a request: non-empty, relative, no `..` segments, no control
/// characters, no trailing slash.
pub(crate) fn validate_path(path: &str) -> Result<(), LogicalError> {
    if path.is_empty() {
        return Err(LogicalError::invalid("missing secret path"));
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err(LogicalError::invalid(
            "invalid secret path: must not start or end with '/'",
        ));
    }
    if path
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(LogicalError::invalid(
            "invalid secret path: empty, '.' or '..' segment",
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(LogicalError::invalid(
            "invalid secret path: control characters are not allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_of_different_paths_never_collide() {
        assert_ne!(version_key("a/1", 3), version_key("a", 13));
        assert_eq!(version_key("a/b", 2), "version/a/b/2");
    }

    #[test]
    fn path_rules() {
        assert!(validate_path("app/db").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a\u{0}b"] {
            assert!(validate_path(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn effective_limits_take_the_stricter_setting() {
        let mut meta = KeyMetadata::default();
        let config = MountConfig::default();
        assert_eq!(meta.effective_max_versions(&config), DEFAULT_MAX_VERSIONS);
        meta.max_versions = 5;
        assert_eq!(
            meta.effective_max_versions(&MountConfig {
                max_versions: 3,
                ..MountConfig::default()
            }),
            3
        );
        assert_eq!(meta.effective_max_versions(&config), 5);
    }
}
