//! The versioned key policy: one named key with all its versions' material, the version rules
//! (`min_decryption_version`, `min_encryption_version`, `min_available_version`), the
//! rotation settings, and the `keys/<name>` read shape.
//!
//! Version numbers start at 1. Versions below `min_available_version` have been trimmed (their
//! material is gone). Key material is held in [`SecretBytes`], which is wiped on drop and never
//! printed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use zeroize::Zeroize;
use zeroize::ZeroizeOnDrop;

use super::keytype::KeyType;
use super::material;
use crate::logical::LogicalError;
use crate::logical::duration;
use crate::logical::time;

/// Vault's message for a ciphertext, signature or HMAC whose version is below the minimum.
pub const ERR_TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

/// Key bytes: wiped when dropped, redacted in `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps bytes (the caller's copy should be a `Zeroizing` buffer or dropped at once).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// When the version was created (ns since the epoch).
    pub created_nanos: u64,
    /// The key: the AEAD or HMAC key, the Ed25519 seed, the ECDSA scalar, or RSA PKCS#8 DER.
    pub key: SecretBytes,
    /// A separate 32-byte HMAC key (used by `hmac/` for every type but `hmac`, and to derive
    /// convergent nonces).
    pub hmac_key: SecretBytes,
    /// The public key: SubjectPublicKeyInfo DER for ECDSA and RSA, the raw 32 bytes for Ed25519,
    /// empty for symmetric types.
    pub public_key: Vec<u8>,
}

impl KeyVersion {
    /// Creation time in whole seconds.
    pub fn created_secs(&self) -> u64 {
        self.created_nanos / 1_000_000_000
    }
}

/// The Azure-style rotation policy (all durations in seconds; 0 = off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationPolicy {
    /// Each version expires this long after its creation: it can then still decrypt and verify,
    /// but no longer encrypt, sign or HMAC.
    pub expires_in: u64,
    /// Record a `near_expiry` event this long before the newest version expires.
    pub notify_before_expiry: u64,
    /// Rotate this long before the newest version expires.
    pub rotate_before_expiry: u64,
}

/// When a policy's settings were last exported or restored (Vault's `backup_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreInfo {
    /// When (ns since the epoch; 0 = never).
    pub nanos: u64,
    /// The latest version at that moment.
    pub version: u32,
}

/// A named key with all of its versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    /// The key's name.
    pub name: String,
    /// Its type.
    pub key_type: KeyType,
    /// Live versions (from `min_available_version` or 1 up to `latest_version`).
    pub versions: BTreeMap<u32, KeyVersion>,
    /// The newest version.
    pub latest_version: u32,
    /// Versions below this were trimmed (0 = never trimmed).
    pub min_available_version: u32,
    /// The oldest version that may decrypt or verify.
    pub min_decryption_version: u32,
    /// The oldest version that may encrypt, sign or HMAC (0 = only rules out nothing).
    pub min_encryption_version: u32,
    /// Whether `DELETE keys/<name>` is allowed.
    pub deletion_allowed: bool,
    /// Whether every operation derives a key from a `context`.
    pub derived: bool,
    /// Whether encryption is deterministic (derived nonces).
    pub convergent_encryption: bool,
    /// Whether private material may be exported (one-way).
    pub exportable: bool,
    /// Whether plaintext backups are allowed (one-way).
    pub allow_plaintext_backup: bool,
    /// Rotate when the newest version is this old (seconds; 0 = never).
    pub auto_rotate_period: u64,
    /// The Azure-style rotation policy.
    pub rotation: RotationPolicy,
    /// The newest version a `near_expiry` event was recorded for.
    pub notified_version: u32,
    /// How long a deleted key stays restorable (seconds; 0 = the default).
    pub deletion_window: u64,
    /// The HMAC key size in bytes for `hmac` keys.
    pub key_size: u32,
    /// Set when the key was restored from a backup.
    pub restore_info: RestoreInfo,
}

impl KeyPolicy {
    /// The newest version's entry.
    pub fn latest(&self) -> Result<&KeyVersion, LogicalError> {
        self.versions
            .get(&self.latest_version)
            .ok_or_else(|| LogicalError::invalid("key has no usable version"))
    }

    /// The version to use for encryption, signing or HMAC when `requested` (0 = latest) is
    /// asked for, checked against the version rules and the rotation policy's expiry.
    pub fn encryption_version(&self, requested: u32, now_secs: u64) -> Result<u32, LogicalError> {
        let version = if requested == 0 {
            self.latest_version
        } else {
            requested
        };
        if version > self.latest_version {
            return Err(LogicalError::invalid(
                "requested version for encryption is higher than the latest key version",
            ));
        }
        if version < self.min_encryption_version {
            return Err(LogicalError::invalid(
                "requested version for encryption is less than the minimum encryption key version",
            ));
        }
        if version < self.min_decryption_version || !self.versions.contains_key(&version) {
            return Err(LogicalError::invalid(
                "requested version for encryption is less than the minimum decryption key version",
            ));
        }
        if let Some(expiry) = self.expiry_secs(version)
            && expiry <= now_secs
        {
            return Err(LogicalError::invalid(format!(
                "key version {version} expired at {}; rotate the key",
                time::format_nanos(expiry.saturating_mul(1_000_000_000))
            )));
        }
        Ok(version)
    }

    /// The entry for `version` if it may decrypt or verify.
    pub fn decryption_version(&self, version: u32) -> Result<&KeyVersion, LogicalError> {
        if version > self.latest_version {
            return Err(LogicalError::invalid(
                "invalid ciphertext: version is too new",
            ));
        }
        if version < self.min_decryption_version {
            return Err(LogicalError::invalid(ERR_TOO_OLD));
        }
        self.versions
            .get(&version)
            .ok_or_else(|| LogicalError::invalid(ERR_TOO_OLD))
    }

    /// When `version` expires under the rotation policy (seconds since the epoch), if it does.
    pub fn expiry_secs(&self, version: u32) -> Option<u64> {
        if self.rotation.expires_in == 0 {
            return None;
        }
        self.versions.get(&version).map(|entry| {
            entry
                .created_secs()
                .saturating_add(self.rotation.expires_in)
        })
    }

    /// Adds a new version (fresh material) and makes it the latest.
    pub fn rotate(&mut self, now_nanos: u64) -> Result<u32, LogicalError> {
        let version = self
            .latest_version
            .checked_add(1)
            .ok_or_else(|| LogicalError::invalid("key has reached the maximum version"))?;
        let entry = material::generate(self.key_type, self.key_size, now_nanos)?;
        self.versions.insert(version, entry);
        self.latest_version = version;
        Ok(version)
    }

    /// The `keys/<name>` read shape, as Vault returns it.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut keys = Map::new();
        for (version, entry) in &self.versions {
            let value = if self.key_type.is_asymmetric() {
                json!({
                    "creation_time": time::format_nanos(entry.created_nanos),
                    "name": self.key_type.version_name(),
                    "public_key": material::public_key_text(self.key_type, &entry.public_key, self.derived),
                    "certificate_chain": "",
                })
            } else {
                json!(entry.created_secs())
            };
            keys.insert(version.to_string(), value);
        }
        let kind = self.key_type;
        let mut map = Map::new();
        map.insert("name".into(), json!(self.name));
        map.insert("type".into(), json!(kind.name()));
        map.insert("keys".into(), Value::Object(keys));
        map.insert("latest_version".into(), json!(self.latest_version));
        map.insert(
            "min_available_version".into(),
            json!(self.min_available_version),
        );
        map.insert(
            "min_decryption_version".into(),
            json!(self.min_decryption_version),
        );
        map.insert(
            "min_encryption_version".into(),
            json!(self.min_encryption_version),
        );
        map.insert("deletion_allowed".into(), json!(self.deletion_allowed));
        map.insert("derived".into(), json!(self.derived));
        map.insert("exportable".into(), json!(self.exportable));
        map.insert(
            "allow_plaintext_backup".into(),
            json!(self.allow_plaintext_backup),
        );
        map.insert("auto_rotate_period".into(), json!(self.auto_rotate_period));
        map.insert(
            "supports_encryption".into(),
            json!(kind.supports_encryption()),
        );
        map.insert(
            "supports_decryption".into(),
            json!(kind.supports_encryption()),
        );
        map.insert(
            "supports_derivation".into(),
            json!(kind.supports_derivation()),
        );
        map.insert("supports_signing".into(), json!(kind.supports_signing()));
        map.insert("imported_key".into(), json!(false));
        if self.derived {
            map.insert("kdf".into(), json!("hkdf_sha256"));
            map.insert(
                "convergent_encryption".into(),
                json!(self.convergent_encryption),
            );
            if self.convergent_encryption {
                map.insert("convergent_encryption_version".into(), json!(3));
            }
        }
        if kind == KeyType::Hmac {
            map.insert("key_size".into(), json!(self.key_size));
        }
        if self.restore_info.nanos != 0 {
            map.insert(
                "restore_info".into(),
                json!({
                    "time": time::format_nanos(self.restore_info.nanos),
                    "version": self.restore_info.version,
                }),
            );
        }
        map.insert(
            "deletion_window".into(),
            json!(duration::format_seconds(self.effective_deletion_window())),
        );
        map.insert("rotation_policy".into(), self.rotation_json());
        map
    }

    /// The rotation policy as JSON, with the newest version's expiry if one applies.
    pub fn rotation_json(&self) -> Value {
        let expiry = self
            .expiry_secs(self.latest_version)
            .map(|secs| time::format_nanos(secs.saturating_mul(1_000_000_000)));
        json!({
            "expires_in": self.rotation.expires_in,
            "notify_before_expiry": self.rotation.notify_before_expiry,
            "rotate_before_expiry": self.rotation.rotate_before_expiry,
            "auto_rotate_period": self.auto_rotate_period,
            "latest_version_expiry_time": expiry,
        })
    }

    /// The deletion window in effect (seconds).
    pub fn effective_deletion_window(&self) -> u64 {
        if self.deletion_window == 0 {
            DEFAULT_DELETION_WINDOW
        } else {
            self.deletion_window
        }
    }
}

/// How long a deleted key stays restorable unless configured otherwise: 30 days (AWS KMS's
/// default).
pub const DEFAULT_DELETION_WINDOW: u64 = 30 * 86_400;
/// The shortest deletion window: 7 days.
pub const MIN_DELETION_WINDOW: u64 = 7 * 86_400;
/// The longest deletion window: 90 days (Azure's soft-delete maximum).
pub const MAX_DELETION_WINDOW: u64 = 90 * 86_400;
/// The shortest `auto_rotate_period` Vault accepts: one hour.
pub const MIN_AUTO_ROTATE_PERIOD: u64 = 3_600;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::transit::test_util;

    #[test]
    fn version_rules() {
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        let now = time::now_nanos();
        for _ in 0..3 {
            policy.rotate(now).unwrap();
        }
        assert_eq!(policy.latest_version, 4);
        assert_eq!(policy.encryption_version(0, 0).unwrap(), 4);
        assert_eq!(policy.encryption_version(2, 0).unwrap(), 2);
        assert!(policy.encryption_version(5, 0).is_err());
        assert!(policy.decryption_version(5).is_err());
        policy.min_decryption_version = 3;
        assert!(policy.encryption_version(2, 0).is_err());
        let err = policy.decryption_version(2).unwrap_err().to_string();
        assert_eq!(err, ERR_TOO_OLD);
        policy.min_encryption_version = 4;
        assert!(policy.encryption_version(3, 0).is_err());
        assert!(policy.decryption_version(3).is_ok());
    }

    #[test]
    fn expiry_blocks_encryption_only() {
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        policy.rotation.expires_in = 3_600;
        let created = policy.latest().unwrap().created_secs();
        assert!(policy.encryption_version(0, created + 10).is_ok());
        assert!(policy.encryption_version(0, created + 3_600).is_err());
        assert!(policy.decryption_version(1).is_ok());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let policy = test_util::policy(KeyType::Aes256Gcm96);
        let printed = format!("{policy:?}");
        assert!(printed.contains("redacted"));
        let key = policy.latest().unwrap().key.expose().to_vec();
        assert!(!printed.contains(&format!("{key:?}")));
    }
}
