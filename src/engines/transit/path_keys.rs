//! `keys` (LIST) and `keys/<name>`: create a key (type, derivation, convergence, export and
//! backup flags, auto-rotation, HMAC key size), read it (public keys for asymmetric types), and
//! delete it: with `deletion_allowed`, the key moves to the trash for its deletion window (7 to 90
//! days), restorable through `deleted/<name>/recover` until the periodic pass purges it.

use std::collections::BTreeMap;

use serde_json::Map;
use serde_json::Value;

use super::fields;
use super::keytype::KeyType;
use super::material;
use super::policy::KeyPolicy;
use super::policy::MAX_DELETION_WINDOW;
use super::policy::MIN_AUTO_ROTATE_PERIOD;
use super::policy::MIN_DELETION_WINDOW;
use super::policy::RestoreInfo;
use super::policy::RotationPolicy;
use super::schedule;
use super::store;
use super::store::TrashedKey;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::duration;

/// `LIST keys`.
pub(super) fn list(storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let names = storage
        .keys_under(store::POLICY_PREFIX)?
        .into_iter()
        .filter_map(|key| key.strip_prefix(store::POLICY_PREFIX).map(str::to_string))
        .collect();
    Ok(Response::list(names))
}

/// `GET keys/<name>`.
pub(super) fn read(name: &str, storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let key = store::load(storage, name)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(key.policy.to_json()))
}

/// Checks an `auto_rotate_period` (0 disables; otherwise at least an hour).
pub(super) fn check_auto_rotate(period: u64) -> Result<u64, LogicalError> {
    if period != 0 && period < MIN_AUTO_ROTATE_PERIOD {
        return Err(LogicalError::invalid(
            "auto rotate period must be 0 to disable or at least an hour",
        ));
    }
    Ok(period)
}

/// Checks a deletion window (7 to 90 days).
pub(super) fn check_deletion_window(window: u64) -> Result<u64, LogicalError> {
    if !(MIN_DELETION_WINDOW..=MAX_DELETION_WINDOW).contains(&window) {
        return Err(LogicalError::invalid(format!(
            "deletion_window must be between {} and {}",
            duration::format_seconds(MIN_DELETION_WINDOW),
            duration::format_seconds(MAX_DELETION_WINDOW)
        )));
    }
    Ok(window)
}

/// `POST keys/<name>`: creates the key, or returns the existing one with a warning (Vault).
pub(super) fn create(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let input = fields::input(request);
    if let Some(existing) = store::load(storage, name)? {
        let mut response = Response::with_data(existing.policy.to_json());
        response
            .warnings
            .push(format!("key {name} already existed"));
        return Ok(response);
    }
    let policy = new_policy(name, &input, now)?;
    schedule::save(storage, &store::new_id(), &policy)?;
    Ok(Response::with_data(policy.to_json()))
}

fn new_policy(name: &str, input: &Map<String, Value>, now: u64) -> Result<KeyPolicy, LogicalError> {
    let type_name =
        fields::string_field(input, "type")?.unwrap_or_else(|| "aes256-gcm96".to_string());
    let kind = KeyType::parse(&type_name)
        .ok_or_else(|| LogicalError::invalid(format!("unknown key type {type_name}")))?;
    let derived = fields::bool_field(input, "derived", false)?;
    let convergent = fields::bool_field(input, "convergent_encryption", false)?;
    if convergent && !derived {
        return Err(LogicalError::invalid(
            "convergent encryption requires derivation to be enabled",
        ));
    }
    if derived && !kind.supports_derivation() {
        return Err(LogicalError::invalid(format!(
            "key derivation and convergent encryption not supported for keys of type {type_name}"
        )));
    }
    if convergent && !kind.is_aead() {
        return Err(LogicalError::invalid(format!(
            "convergent encryption not supported for keys of type {type_name}"
        )));
    }
    let key_size = match (kind, fields::u64_field(input, "key_size")?) {
        (KeyType::Hmac, None | Some(0)) => 32,
        (KeyType::Hmac, Some(size)) if (32..=512).contains(&size) => size as u32,
        (KeyType::Hmac, Some(_)) => {
            return Err(LogicalError::invalid(
                "key_size must be between 32 and 512 bytes",
            ));
        }
        (_, None | Some(0)) => 0,
        (_, Some(_)) => {
            return Err(LogicalError::invalid(
                "key_size is only valid for hmac keys",
            ));
        }
    };
    let auto_rotate_period =
        check_auto_rotate(fields::duration_field(input, "auto_rotate_period")?.unwrap_or(0))?;
    let deletion_window = fields::duration_field(input, "deletion_window")?
        .map(check_deletion_window)
        .transpose()?
        .unwrap_or(0);
    let entry = material::generate(kind, key_size, now)?;
    Ok(KeyPolicy {
        name: name.to_string(),
        key_type: kind,
        versions: BTreeMap::from([(1, entry)]),
        latest_version: 1,
        min_available_version: 0,
        min_decryption_version: 1,
        min_encryption_version: 0,
        deletion_allowed: false,
        derived,
        convergent_encryption: convergent,
        exportable: fields::bool_field(input, "exportable", false)?,
        allow_plaintext_backup: fields::bool_field(input, "allow_plaintext_backup", false)?,
        auto_rotate_period,
        rotation: RotationPolicy::default(),
        notified_version: 0,
        deletion_window,
        key_size,
        restore_info: RestoreInfo::default(),
    })
}

/// `DELETE keys/<name>`: only with `deletion_allowed`; the key goes to the trash for its
/// deletion window (or `deletion_window` given with the request).
pub(super) fn delete(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let Some(key) = store::load(storage, name)? else {
        return Err(LogicalError::invalid("could not delete key; not found"));
    };
    let policy = &key.policy;
    if !policy.deletion_allowed {
        return Err(LogicalError::invalid(
            "deletion is not allowed for this key",
        ));
    }
    let input = fields::input(request);
    let window = match fields::duration_field(&input, "deletion_window")? {
        Some(window) => check_deletion_window(window)?,
        None => policy.effective_deletion_window(),
    };
    let trashed = TrashedKey {
        stored: store::encode(&key.id, policy),
        deleted_nanos: now,
        purge_secs: (now / 1_000_000_000).saturating_add(window),
        key_type: policy.key_type.name().to_string(),
        latest_version: policy.latest_version,
    };
    schedule::remove(storage, &store::policy_key(name))?;
    schedule::save_trashed(storage, name, &trashed)?;
    store::forget(&key.id);
    Ok(Response::no_content())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::LogicalError;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn create_read_list_in_vaults_shape() {
        let mut storage = MemoryStorage::default();
        let created = post(&mut storage, "keys/app", json!({}));
        assert_eq!(created["type"], "aes256-gcm96");
        assert_eq!(created["latest_version"], 1);
        post(&mut storage, "keys/signer", json!({"type": "ecdsa-p256"}));
        let read = get(&mut storage, "keys/signer");
        assert_eq!(read["supports_signing"], true);
        assert_eq!(read["keys"]["1"]["name"], "P-256");
        assert!(
            read["keys"]["1"]["public_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        let symmetric = get(&mut storage, "keys/app");
        assert!(symmetric["keys"]["1"].is_u64());
        assert_eq!(symmetric["min_decryption_version"], 1);
        let listed = call(&mut storage, Operation::List, "keys", json!({})).unwrap();
        assert_eq!(data(&listed)["keys"], json!(["app", "signer"]));
        assert!(matches!(
            call(&mut storage, Operation::Read, "keys/none", json!({})),
            Err(LogicalError::NotFound)
        ));
    }

    #[test]
    fn creating_an_existing_key_changes_nothing_and_warns() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({"type": "ed25519"}));
        let before = snapshot(&mut storage);
        let again = call(
            &mut storage,
            Operation::Update,
            "keys/k",
            json!({"type": "hmac"}),
        )
        .unwrap();
        assert_eq!(again.warnings, vec!["key k already existed".to_string()]);
        assert_eq!(data(&again)["type"], "ed25519");
        assert_eq!(snapshot(&mut storage), before);
    }

    #[test]
    fn bad_create_requests_are_400_and_write_nothing() {
        let mut storage = MemoryStorage::default();
        for body in [
            json!({"type": "aes512"}),
            json!({"convergent_encryption": true}),
            json!({"type": "ecdsa-p256", "derived": true}),
            json!({"type": "ed25519", "derived": true, "convergent_encryption": true}),
            json!({"auto_rotate_period": "10m"}),
            json!({"auto_rotate_period": "soon"}),
            json!({"type": "hmac", "key_size": 16}),
            json!({"key_size": 64}),
            json!({"exportable": "maybe"}),
            json!({"deletion_window": "1d"}),
        ] {
            post_err(&mut storage, "keys/k", body);
        }
        post_err(&mut storage, "keys/bad..name-", json!({}));
        assert!(storage.keys().is_empty());
    }

    #[test]
    fn hmac_keys_take_a_size_and_derived_keys_show_the_kdf() {
        let mut storage = MemoryStorage::default();
        let hmac = post(
            &mut storage,
            "keys/h",
            json!({"type": "hmac", "key_size": 64}),
        );
        assert_eq!(hmac["key_size"], 64);
        let derived = post(
            &mut storage,
            "keys/d",
            json!({"derived": true, "convergent_encryption": true, "auto_rotate_period": "24h"}),
        );
        assert_eq!(derived["kdf"], "hkdf_sha256");
        assert_eq!(derived["convergent_encryption"], true);
        assert_eq!(derived["auto_rotate_period"], 86_400);
    }

    #[test]
    fn delete_needs_deletion_allowed_and_moves_the_key_to_the_trash() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let before = snapshot(&mut storage);
        assert!(matches!(
            call(&mut storage, Operation::Delete, "keys/k", json!({})),
            Err(LogicalError::InvalidRequest(_))
        ));
        assert_eq!(snapshot(&mut storage), before);
        post(
            &mut storage,
            "keys/k/config",
            json!({"deletion_allowed": true}),
        );
        call(&mut storage, Operation::Delete, "keys/k", json!({})).unwrap();
        assert!(matches!(
            call(&mut storage, Operation::Read, "keys/k", json!({})),
            Err(LogicalError::NotFound)
        ));
        let deleted = get(&mut storage, "deleted/k");
        assert_eq!(deleted["deletions"].as_array().unwrap().len(), 1);
        // The name is free again, as in Vault.
        post(&mut storage, "keys/k", json!({}));
        assert!(matches!(
            call(&mut storage, Operation::Delete, "keys/none", json!({})),
            Err(LogicalError::InvalidRequest(_))
        ));
    }
}
