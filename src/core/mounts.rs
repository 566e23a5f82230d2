//! The mount table: which engine serves which path prefix, and under which storage prefix
//! (`logical/<uuid>/`) its data lives. Stored encrypted at `core/mounts`, replicated, and read
//! through each request's transaction (so a write racing a mount change is guarded).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;

/// Storage key of the secrets engines' mount table.
pub const MOUNTS_KEY: &str = "core/mounts";
/// Storage key of the auth methods' mount table.
pub const AUTH_MOUNTS_KEY: &str = "core/auth-mounts";

/// Which mount table: secrets engines (`sys/mounts`, served at `<path>/`) or auth methods
/// (`sys/auth`, served at `auth/<path>/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    /// Secrets engines.
    Secrets,
    /// Auth methods.
    Auth,
}

impl MountKind {
    /// Where the table is stored.
    pub fn table_key(self) -> &'static str {
        match self {
            MountKind::Secrets => MOUNTS_KEY,
            MountKind::Auth => AUTH_MOUNTS_KEY,
        }
    }

    /// The storage prefix mounts' data lives under.
    pub fn storage_root(self) -> &'static str {
        match self {
            MountKind::Secrets => "logical/",
            MountKind::Auth => "auth/",
        }
    }

    /// Mount points that cannot be used (relative to where the table's mounts are served).
    fn reserved(self) -> &'static [&'static str] {
        match self {
            MountKind::Secrets => &["sys/", "auth/", "cubbyhole/", "identity/"],
            MountKind::Auth => &["token/"],
        }
    }
}

/// One mounted secrets engine.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountEntry {
    /// The mount point with a trailing slash (`secret/`).
    pub path: String,
    /// The engine type (`kv`).
    pub kind: String,
    /// The engine version option (`2` for KV v2).
    pub version: u8,
    /// The mount's unique id; its data lives under `logical/<uuid>/`.
    pub uuid: String,
    /// A non-secret handle for the mount.
    pub accessor: String,
    /// Free text.
    pub description: String,
    /// Engine options (`version`, and for KV v2 a mount-wide `max_versions` default).
    pub options: BTreeMap<String, String>,
    /// Default lease TTL in seconds (0: the system default).
    pub default_lease_ttl: u64,
    /// Maximum lease TTL in seconds (0: the system default).
    pub max_lease_ttl: u64,
}

impl MountEntry {
    /// A new mount of `kind` (engine `version`) at `path` (`foo/`), with a fresh uuid.
    pub fn new(path: &str, kind: &str, version: u8, description: &str) -> Self {
        let id = crate::crypto::random_id();
        let mut options = BTreeMap::new();
        if kind == "kv" {
            options.insert("version".to_string(), version.to_string());
        }
        MountEntry {
            path: path.to_string(),
            kind: kind.to_string(),
            version,
            accessor: format!("{kind}_{}", &id[..8]),
            uuid: id,
            description: description.to_string(),
            options,
            default_lease_ttl: 0,
            max_lease_ttl: 0,
        }
    }

    /// The storage prefix of the mount's data (`logical/<uuid>/` or `auth/<uuid>/`).
    pub fn storage_prefix(&self, kind: MountKind) -> String {
        format!("{}{}/", kind.storage_root(), self.uuid)
    }

    /// The entry as Vault's `sys/mounts` lists it.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {
                "default_lease_ttl": self.default_lease_ttl,
                "max_lease_ttl": self.max_lease_ttl,
                "force_no_cache": false,
            },
            "options": if self.options.is_empty() { Value::Null } else { json!(self.options) },
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
        })
    }
}

/// All mounts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountTable {
    /// The mounts, in no particular order.
    pub entries: Vec<MountEntry>,
}

impl MountTable {
    /// The table a new cluster starts with: KV v2 at `secret/`.
    pub fn initial() -> Self {
        MountTable {
            entries: vec![MountEntry::new(
                "secret/",
                "kv",
                2,
                "key/value secret storage",
            )],
        }
    }

    /// The mount serving `path` (longest matching mount point) and the path below it.
    pub fn route<'a>(&self, path: &'a str) -> Option<(&MountEntry, &'a str)> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let mount = entry.path.trim_end_matches('/');
                match path.strip_prefix(mount) {
                    Some("") => Some((entry, "")),
                    Some(rest) => rest.strip_prefix('/').map(|rest| (entry, rest)),
                    None => None,
                }
            })
            .max_by_key(|(entry, _)| entry.path.len())
    }

    /// The mount whose point is exactly `path` (`foo` or `foo/`).
    pub fn find(&self, path: &str) -> Option<&MountEntry> {
        let wanted = format!("{}/", path.trim_end_matches('/'));
        self.entries.iter().find(|entry| entry.path == wanted)
    }

    /// Checks that a mount could be placed at `path` (normalized to `foo/bar/`): well-formed, not
    /// reserved, and neither equal to, inside, nor around another mount (`except` is ignored: the
    /// mount being moved). Returns the normalized mount point.
    pub fn check_new_path(
        &self,
        kind: MountKind,
        path: &str,
        except: Option<&str>,
    ) -> Result<String, String> {
        let trimmed = path.trim_matches('/');
        if trimmed.is_empty() {
            return Err("mount path must not be empty".into());
        }
        if trimmed
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        {
            return Err("invalid mount path: empty, '.' or '..' segment".into());
        }
        if trimmed
            .chars()
            .any(|ch| ch.is_control() || ch.is_whitespace())
        {
            return Err("invalid mount path: control or whitespace characters".into());
        }
        let point = format!("{trimmed}/");
        for reserved in kind.reserved() {
            if point.starts_with(reserved) || reserved.starts_with(&point) {
                return Err(format!("cannot mount under reserved path {reserved:?}"));
            }
        }
        for entry in &self.entries {
            if Some(entry.path.as_str()) == except {
                continue;
            }
            if entry.path.starts_with(&point) || point.starts_with(&entry.path) {
                return Err(format!("path is already in use at {}", entry.path));
            }
        }
        Ok(point)
    }

    /// `sys/mounts` data: mount point -> entry.
    pub fn to_json(&self) -> Map<String, Value> {
        self.entries
            .iter()
            .map(|entry| (entry.path.clone(), entry.to_json()))
            .collect()
    }

    /// Encodes the table for storage.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a stored table.
    pub fn decode(bytes: &[u8]) -> Result<Self, codec::CodecError> {
        codec::decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(paths: &[&str]) -> MountTable {
        MountTable {
            entries: paths
                .iter()
                .map(|path| MountEntry::new(path, "kv", 2, ""))
                .collect(),
        }
    }

    #[test]
    fn routes_by_longest_prefix_on_segment_boundaries() {
        let table = table(&["secret/", "secret/team/"]);
        assert_eq!(
            table
                .route("secret/data/x")
                .map(|(e, r)| (e.path.as_str(), r)),
            Some(("secret/", "data/x"))
        );
        assert_eq!(
            table
                .route("secret/team/data/x")
                .map(|(e, r)| (e.path.as_str(), r)),
            Some(("secret/team/", "data/x"))
        );
        assert_eq!(
            table.route("secret").map(|(e, r)| (e.path.as_str(), r)),
            Some(("secret/", ""))
        );
        assert!(table.route("secretive/x").is_none());
        assert!(table.route("other/x").is_none());
    }

    #[test]
    fn new_mount_paths_must_not_collide_nest_or_climb() {
        let table = table(&["secret/", "team/a/"]);
        assert_eq!(
            table
                .check_new_path(MountKind::Secrets, "kv2", None)
                .unwrap(),
            "kv2/"
        );
        assert_eq!(
            table
                .check_new_path(MountKind::Secrets, "/team/b/", None)
                .unwrap(),
            "team/b/"
        );
        for bad in [
            "secret", "secret/x", "team", "team/a/b", "", "a/../b", "sys", "auth/x", "a b",
        ] {
            assert!(
                table.check_new_path(MountKind::Secrets, bad, None).is_err(),
                "{bad:?} must be refused"
            );
        }
        assert_eq!(
            table
                .check_new_path(MountKind::Secrets, "secret/inner", Some("secret/"))
                .unwrap(),
            "secret/inner/"
        );
    }
}
