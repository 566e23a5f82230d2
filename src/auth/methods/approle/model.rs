//! What AppRole stores in its mount's view and how it is laid out:
//!
//! - `salt` -> 32 random bytes: the HMAC-SHA256 key for role IDs and secret IDs, made on the
//!   first write that needs it (replicated and encrypted like everything in the view)
//! - `role/<name>` -> [`RoleEntry`] (names are lowercased and follow Vault's generic name rule)
//! - `role_id/<hex hmac(role_id)>` -> [`RoleIdIndex`] (login finds the role by its role ID)
//! - `secret_id/<name>/<hex hmac(secret_id)>` -> [`SecretIdEntry`] (never the secret ID itself)
//! - `accessor/<accessor>` -> [`AccessorIndex`] (accessor lookup/destroy and listing)
//! - `expiry/<20-digit unix seconds>/<name>/<hex hmac>` -> empty: secret IDs with a TTL, ordered
//!   by expiry, so `periodic` removes expired ones in bounded batches without scanning them all
//!
//! Values are encoded with the project codec.

use std::collections::BTreeMap;
use std::fmt;

use hmac::Hmac;
use hmac::KeyInit;
use hmac::Mac;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::auth::methods::store::load;
use crate::auth::methods::store::save;
use crate::auth::methods::token_params::TokenParams;
use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::StorageError;
use crate::logical::time;

const SALT_KEY: &str = "salt";
const SALT_LEN: usize = 32;
/// Storage prefix of roles.
pub const ROLE_PREFIX: &str = "role/";
/// Storage prefix of the role ID index.
pub const ROLE_ID_PREFIX: &str = "role_id/";
/// Storage prefix of secret IDs.
pub const SECRET_ID_PREFIX: &str = "secret_id/";
/// Storage prefix of the accessor index.
pub const ACCESSOR_PREFIX: &str = "accessor/";
/// Storage prefix of the expiry index.
pub const EXPIRY_PREFIX: &str = "expiry/";

/// One AppRole.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RoleEntry {
    /// The role's name (lowercase).
    pub name: String,
    /// The role ID: the "username" half of the credential.
    pub role_id: String,
    /// Whether login needs a secret ID.
    pub bind_secret_id: bool,
    /// Blocks logins must come from (empty: anywhere).
    pub secret_id_bound_cidrs: Vec<String>,
    /// Default uses of new secret IDs (0: unlimited).
    pub secret_id_num_uses: u64,
    /// Default TTL of new secret IDs in seconds (0: no expiry).
    pub secret_id_ttl: u64,
    /// Accepted and shown for compatibility; every secret ID is replicated here.
    pub local_secret_ids: bool,
    /// Settings of the tokens logins get.
    pub token: TokenParams,
}

impl fmt::Debug for RoleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleEntry")
            .field("name", &self.name)
            .field("bind_secret_id", &self.bind_secret_id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl RoleEntry {
    /// Vault's read-role response.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("bind_secret_id".into(), json!(self.bind_secret_id));
        map.insert("local_secret_ids".into(), json!(self.local_secret_ids));
        map.insert(
            "secret_id_bound_cidrs".into(),
            json!(self.secret_id_bound_cidrs),
        );
        map.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        map.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        self.token.write_json(&mut map);
        // Deprecated names Vault still returns.
        map.insert("policies".into(), json!(self.token.policies));
        map.insert("period".into(), json!(self.token.period));
        map
    }
}

/// The role ID index entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoleIdIndex {
    /// The role the role ID belongs to.
    pub role_name: String,
}

/// The accessor index entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessorIndex {
    /// The role of the secret ID.
    pub role_name: String,
    /// Hex HMAC of the secret ID (its storage key's last segment).
    pub secret_id_hmac: String,
}

/// One secret ID, stored under the HMAC of its value (never the value itself).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SecretIdEntry {
    /// Hex HMAC-SHA256 of the secret ID.
    pub hmac: String,
    /// Its non-secret handle.
    pub accessor: String,
    /// Uses left (0: unlimited).
    pub num_uses: u64,
    /// TTL it was created with, in seconds (0: none).
    pub ttl: u64,
    /// Creation time (ns since the epoch).
    pub creation_nanos: u64,
    /// Expiry time (ns since the epoch; 0: never).
    pub expiration_nanos: u64,
    /// Last change (ns since the epoch).
    pub last_updated_nanos: u64,
    /// Metadata set on tokens it logs in.
    pub metadata: BTreeMap<String, String>,
    /// Blocks logins with it must come from (empty: anywhere).
    pub cidr_list: Vec<String>,
    /// Blocks its tokens are bound to (empty: the role's).
    pub token_bound_cidrs: Vec<String>,
}

impl fmt::Debug for SecretIdEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretIdEntry")
            .field("accessor", &self.accessor)
            .field("num_uses", &self.num_uses)
            .field("expiration_nanos", &self.expiration_nanos)
            .finish_non_exhaustive()
    }
}

/// Go's zero time, which Vault prints for "no expiry".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl SecretIdEntry {
    /// Whether it has expired at `now` (ns).
    pub fn is_expired(&self, now_nanos: u64) -> bool {
        self.expiration_nanos != 0 && self.expiration_nanos <= now_nanos
    }

    /// Vault's secret-id lookup response.
    pub fn to_json(&self) -> Map<String, Value> {
        let expiration = if self.expiration_nanos == 0 {
            GO_ZERO_TIME.to_string()
        } else {
            time::format_nanos(self.expiration_nanos)
        };
        let mut map = Map::new();
        map.insert("cidr_list".into(), json!(self.cidr_list));
        map.insert(
            "creation_time".into(),
            json!(time::format_nanos(self.creation_nanos)),
        );
        map.insert("expiration_time".into(), json!(expiration));
        map.insert(
            "last_updated_time".into(),
            json!(time::format_nanos(self.last_updated_nanos)),
        );
        map.insert("metadata".into(), json!(self.metadata));
        map.insert("secret_id_accessor".into(), json!(self.accessor));
        map.insert("secret_id_num_uses".into(), json!(self.num_uses));
        map.insert("secret_id_ttl".into(), json!(self.ttl));
        map.insert("token_bound_cidrs".into(), json!(self.token_bound_cidrs));
        map
    }
}

/// Storage key of a role.
pub fn role_key(name: &str) -> String {
    format!("{ROLE_PREFIX}{name}")
}

/// Storage key of a role ID index entry.
pub fn role_id_key(role_id_hmac: &str) -> String {
    format!("{ROLE_ID_PREFIX}{role_id_hmac}")
}

/// Storage prefix of one role's secret IDs.
pub fn secret_ids_of(role: &str) -> String {
    format!("{SECRET_ID_PREFIX}{role}/")
}

/// Storage key of a secret ID.
pub fn secret_id_key(role: &str, hmac: &str) -> String {
    format!("{SECRET_ID_PREFIX}{role}/{hmac}")
}

/// Storage key of an accessor index entry.
pub fn accessor_key(accessor: &str) -> String {
    format!("{ACCESSOR_PREFIX}{accessor}")
}

/// Storage key of an expiry index entry.
pub fn expiry_key(expiration_nanos: u64, role: &str, hmac: &str) -> String {
    let seconds = expiration_nanos.div_ceil(1_000_000_000);
    format!("{EXPIRY_PREFIX}{seconds:020}/{role}/{hmac}")
}

/// Splits an expiry index key into (seconds, role, hmac).
pub fn parse_expiry_key(key: &str) -> Option<(u64, &str, &str)> {
    let rest = key.strip_prefix(EXPIRY_PREFIX)?;
    let (seconds, rest) = rest.split_once('/')?;
    let (role, hmac) = rest.rsplit_once('/')?;
    Some((seconds.parse().ok()?, role, hmac))
}

/// The mount's HMAC key, if any write has made it yet.
pub struct Salt(Zeroizing<[u8; SALT_LEN]>);

impl fmt::Debug for Salt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(<redacted>)")
    }
}

impl Salt {
    /// Reads the mount's key; `None` before the first role exists.
    pub fn load(storage: &mut dyn Storage) -> Result<Option<Salt>, LogicalError> {
        let Some(bytes) = storage.get(SALT_KEY)? else {
            return Ok(None);
        };
        let bytes = Zeroizing::new(bytes);
        let key: [u8; SALT_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| LogicalError::Storage(StorageError::Corrupt(SALT_KEY.to_string())))?;
        Ok(Some(Salt(Zeroizing::new(key))))
    }

    /// Reads the mount's key, making and staging a fresh random one if there is none.
    pub fn load_or_create(storage: &mut dyn Storage) -> Result<Salt, LogicalError> {
        if let Some(salt) = Salt::load(storage)? {
            return Ok(salt);
        }
        let key = crate::crypto::random_bytes::<SALT_LEN>();
        storage.put(SALT_KEY, key.to_vec())?;
        Ok(Salt(key))
    }

    /// Hex HMAC-SHA256 of `value` under this key, with a domain label (`role_id`, `secret_id`)
    /// so a value means different things in different places.
    pub fn hmac_hex(&self, label: &str, value: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail with a 32-byte key.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice()) else {
            return String::new();
        };
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Constant-time equality of two hex HMACs.
pub fn hmac_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Loads a role by (lowercased, validated) name.
pub fn load_role(storage: &mut dyn Storage, name: &str) -> Result<Option<RoleEntry>, LogicalError> {
    load(storage, &role_key(name))
}

/// Loads a role or fails with Vault's message for a missing one.
pub fn require_role(storage: &mut dyn Storage, name: &str) -> Result<RoleEntry, LogicalError> {
    load_role(storage, name)?
        .ok_or_else(|| LogicalError::invalid(format!("role \"{name}\" does not exist")))
}

/// Stages a secret ID with its accessor and (when it expires) expiry index entries.
pub fn save_secret_id(
    storage: &mut dyn Storage,
    role: &str,
    entry: &SecretIdEntry,
) -> Result<(), LogicalError> {
    save(storage, &secret_id_key(role, &entry.hmac), entry)?;
    save(
        storage,
        &accessor_key(&entry.accessor),
        &AccessorIndex {
            role_name: role.to_string(),
            secret_id_hmac: entry.hmac.clone(),
        },
    )?;
    if entry.expiration_nanos != 0 {
        storage.put(
            &expiry_key(entry.expiration_nanos, role, &entry.hmac),
            Vec::new(),
        )?;
    }
    Ok(())
}

/// Stages the removal of a secret ID and its index entries.
pub fn delete_secret_id(
    storage: &mut dyn Storage,
    role: &str,
    entry: &SecretIdEntry,
) -> Result<(), LogicalError> {
    storage.delete(&secret_id_key(role, &entry.hmac))?;
    storage.delete(&accessor_key(&entry.accessor))?;
    if entry.expiration_nanos != 0 {
        storage.delete(&expiry_key(entry.expiration_nanos, role, &entry.hmac))?;
    }
    Ok(())
}

/// Loads the secret ID stored under `hmac` for `role`, checking the stored HMAC in constant time.
pub fn load_secret_id(
    storage: &mut dyn Storage,
    role: &str,
    hmac: &str,
) -> Result<Option<SecretIdEntry>, LogicalError> {
    let entry: Option<SecretIdEntry> = load(storage, &secret_id_key(role, hmac))?;
    Ok(entry.filter(|entry| hmac_eq(&entry.hmac, hmac)))
}

/// Whether `text` looks like an accessor this method issues (so it is safe in a storage key).
pub fn valid_accessor(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit() || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn salt_is_made_once_and_keys_the_hmac() {
        let mut storage = MemoryStorage::default();
        assert!(Salt::load(&mut storage).unwrap().is_none());
        let salt = Salt::load_or_create(&mut storage).unwrap();
        let again = Salt::load_or_create(&mut storage).unwrap();
        assert_eq!(
            salt.hmac_hex("secret_id", "x"),
            again.hmac_hex("secret_id", "x")
        );
        assert_ne!(
            salt.hmac_hex("secret_id", "x"),
            salt.hmac_hex("role_id", "x")
        );
        assert_eq!(salt.hmac_hex("secret_id", "x").len(), 64);
        assert!(!format!("{salt:?}").contains(&hex::encode(salt.0.as_slice())));
        storage.put("salt", vec![1, 2, 3]).unwrap();
        assert!(Salt::load(&mut storage).is_err());
    }

    #[test]
    fn expiry_keys_sort_by_time_and_parse_back() {
        let early = expiry_key(5_000_000_001, "web", "ab");
        let late = expiry_key(60_000_000_000, "a", "cd");
        assert!(early < late);
        assert_eq!(parse_expiry_key(&early), Some((6, "web", "ab")));
        assert_eq!(parse_expiry_key("expiry/x"), None);
    }

    #[test]
    fn accessors_are_checked_before_use_in_keys() {
        assert!(valid_accessor("84896a0c-1347-aa90-a4f6-aca8b7558780"));
        for bad in ["", "../x", "a/b", "zz", &"a".repeat(65)] {
            assert!(!valid_accessor(bad), "{bad:?}");
        }
    }
}
