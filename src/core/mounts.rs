//! The mount table: which engine serves which path prefix, and under which storage prefix
//! (`logical/<uuid>/`) its data lives. Stored encrypted at `core/mounts`, replicated, and read
//! through each request's transaction (so a write racing a mount change is guarded).

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;

/// Storage key of the mount table.
pub const MOUNTS_KEY: &str = "core/mounts";

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
}

impl MountEntry {
    /// The storage prefix of the mount's data.
    pub fn storage_prefix(&self) -> String {
        format!("logical/{}/", self.uuid)
    }

    /// The entry as Vault's `sys/mounts` lists it.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind,
            "description": self.description,
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
            "options": if self.kind == "kv" { json!({"version": self.version.to_string()}) } else { Value::Null },
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
            entries: vec![MountEntry {
                path: "secret/".into(),
                kind: "kv".into(),
                version: 2,
                uuid: crate::crypto::random_id(),
                accessor: format!("kv_{}", &crate::crypto::random_id()[..8]),
                description: "key/value secret storage".into(),
            }],
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
                .map(|path| MountEntry {
                    path: path.to_string(),
                    kind: "kv".into(),
                    version: 2,
                    uuid: path.to_string(),
                    accessor: String::new(),
                    description: String::new(),
                })
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
}
