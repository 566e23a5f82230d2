//! `keys/<name>/config` (Vault's version rules and flags) and `keys/<name>/rotation-policy` (the
//! Azure-style rotation policy: `expires_in`, `notify_before_expiry`, `rotate_before_expiry`,
//! plus `auto_rotate_period` as its "rotate after create" action).

use super::fields;
use super::path_keys::check_auto_rotate;
use super::path_keys::check_deletion_window;
use super::policy::MIN_AUTO_ROTATE_PERIOD;
use super::policy::RotationPolicy;
use super::require_key;
use super::schedule;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

fn no_such_key(name: &str) -> String {
    format!("no existing key named {name} could be found")
}

/// `POST keys/<name>/config`.
pub(super) fn write(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, &no_such_key(name))?;
    let input = fields::input(request);
    let mut policy = key.policy.clone();
    let mut warnings = Vec::new();
    if let Some(mut version) = fields::version_field(&input, "min_decryption_version")? {
        if version == 0 {
            version = 1;
            warnings.push(
                "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
                    .to_string(),
            );
        }
        if version > policy.latest_version {
            return Err(LogicalError::invalid(format!(
                "cannot set min decryption version of {version}, latest key version is {}",
                policy.latest_version
            )));
        }
        if version < policy.min_available_version {
            return Err(LogicalError::invalid(format!(
                "cannot set min decryption version of {version} below the min available version \
                 of {}",
                policy.min_available_version
            )));
        }
        policy.min_decryption_version = version;
    }
    if let Some(version) = fields::version_field(&input, "min_encryption_version")? {
        if version > policy.latest_version {
            return Err(LogicalError::invalid(format!(
                "cannot set min encryption version of {version}, latest key version is {}",
                policy.latest_version
            )));
        }
        policy.min_encryption_version = version;
    }
    if policy.min_encryption_version > 0
        && policy.min_encryption_version < policy.min_decryption_version
    {
        return Err(LogicalError::invalid(format!(
            "minimum decryption version of {} must be less than or equal to minimum encryption \
             version of {}",
            policy.min_decryption_version, policy.min_encryption_version
        )));
    }
    policy.deletion_allowed =
        fields::bool_field(&input, "deletion_allowed", policy.deletion_allowed)?;
    let exportable = fields::bool_field(&input, "exportable", policy.exportable)?;
    if policy.exportable && !exportable {
        return Err(LogicalError::invalid(
            "export cannot be disabled on a key that has it enabled",
        ));
    }
    policy.exportable = exportable;
    let backup = fields::bool_field(
        &input,
        "allow_plaintext_backup",
        policy.allow_plaintext_backup,
    )?;
    if policy.allow_plaintext_backup && !backup {
        return Err(LogicalError::invalid(
            "plaintext backup cannot be disabled on a key that has it enabled",
        ));
    }
    policy.allow_plaintext_backup = backup;
    if let Some(period) = fields::duration_field(&input, "auto_rotate_period")? {
        policy.auto_rotate_period = check_auto_rotate(period)?;
    }
    if let Some(window) = fields::duration_field(&input, "deletion_window")? {
        policy.deletion_window = check_deletion_window(window)?;
    }
    if policy != key.policy {
        schedule::save(storage, &key.id, &policy)?;
    }
    let mut response = Response::with_data(policy.to_json());
    response.warnings = warnings;
    Ok(response)
}

/// `GET keys/<name>/rotation-policy`.
pub(super) fn read_rotation(
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = super::store::load(storage, name)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::from_value(key.policy.rotation_json()))
}

/// `POST keys/<name>/rotation-policy`: fields not given keep their values.
pub(super) fn write_rotation(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, &no_such_key(name))?;
    let input = fields::input(request);
    let mut policy = key.policy.clone();
    let mut rotation = policy.rotation.clone();
    if let Some(value) = fields::duration_field(&input, "expires_in")? {
        rotation.expires_in = value;
    }
    if let Some(value) = fields::duration_field(&input, "notify_before_expiry")? {
        rotation.notify_before_expiry = value;
    }
    if let Some(value) = fields::duration_field(&input, "rotate_before_expiry")? {
        rotation.rotate_before_expiry = value;
    }
    check_rotation(&rotation)?;
    if let Some(period) = fields::duration_field(&input, "auto_rotate_period")? {
        policy.auto_rotate_period = check_auto_rotate(period)?;
    }
    if rotation != policy.rotation {
        // A new policy may move the expiry: notify again for the current version.
        policy.notified_version = 0;
        policy.rotation = rotation;
    }
    if policy != key.policy {
        schedule::save(storage, &key.id, &policy)?;
    }
    Ok(Response::from_value(policy.rotation_json()))
}

/// `DELETE keys/<name>/rotation-policy`: clears expiry, notification and rotate-before-expiry.
pub(super) fn delete_rotation(
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, &no_such_key(name))?;
    let mut policy = key.policy.clone();
    policy.rotation = RotationPolicy::default();
    policy.notified_version = 0;
    if policy != key.policy {
        schedule::save(storage, &key.id, &policy)?;
    }
    Ok(Response::no_content())
}

fn check_rotation(rotation: &RotationPolicy) -> Result<(), LogicalError> {
    if rotation.expires_in == 0 {
        if rotation.notify_before_expiry > 0 || rotation.rotate_before_expiry > 0 {
            return Err(LogicalError::invalid(
                "notify_before_expiry and rotate_before_expiry need expires_in",
            ));
        }
        return Ok(());
    }
    if rotation.expires_in < MIN_AUTO_ROTATE_PERIOD {
        return Err(LogicalError::invalid(
            "expires_in must be 0 to disable or at least an hour",
        ));
    }
    for (field, value) in [
        ("notify_before_expiry", rotation.notify_before_expiry),
        ("rotate_before_expiry", rotation.rotate_before_expiry),
    ] {
        if value >= rotation.expires_in {
            return Err(LogicalError::invalid(format!(
                "{field} must be shorter than expires_in"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use serde_json::Value;

    use crate::engines::transit::test_util::*;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    fn has_expiry(value: &Value) -> bool {
        value["latest_version_expiry_time"].is_string()
    }

    fn three_versions(storage: &mut MemoryStorage) {
        post(storage, "keys/k", json!({}));
        post(storage, "keys/k/rotate", json!({}));
        post(storage, "keys/k/rotate", json!({}));
    }

    #[test]
    fn version_rules_as_in_vault() {
        let mut storage = MemoryStorage::default();
        three_versions(&mut storage);
        let set = post(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 2, "min_encryption_version": 3}),
        );
        assert_eq!(set["min_decryption_version"], 2);
        assert_eq!(set["min_encryption_version"], 3);
        let before = snapshot(&mut storage);
        for body in [
            json!({"min_decryption_version": 4}),
            json!({"min_encryption_version": 9}),
            json!({"min_encryption_version": 1}),
            json!({"min_decryption_version": "x"}),
            json!({"auto_rotate_period": "59m"}),
            json!({"deletion_window": "100d"}),
        ] {
            post_err(&mut storage, "keys/k/config", body);
        }
        assert_eq!(
            snapshot(&mut storage),
            before,
            "a refused config changes nothing"
        );
        let forced = call(
            &mut storage,
            Operation::Update,
            "keys/k/config",
            json!({"min_decryption_version": 0, "min_encryption_version": 0}),
        )
        .unwrap();
        assert_eq!(data(&forced)["min_decryption_version"], 1);
        assert_eq!(forced.warnings.len(), 1);
        post_err(&mut storage, "keys/none/config", json!({}));
    }

    #[test]
    fn export_and_backup_flags_are_one_way() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        post(
            &mut storage,
            "keys/k/config",
            json!({"exportable": true, "allow_plaintext_backup": true}),
        );
        post_err(&mut storage, "keys/k/config", json!({"exportable": false}));
        post_err(
            &mut storage,
            "keys/k/config",
            json!({"allow_plaintext_backup": false}),
        );
        let read = get(&mut storage, "keys/k");
        assert_eq!(
            (
                read["exportable"].clone(),
                read["allow_plaintext_backup"].clone()
            ),
            (json!(true), json!(true))
        );
    }

    #[test]
    fn rotation_policy_round_trip_and_validation() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let set = post(
            &mut storage,
            "keys/k/rotation-policy",
            json!({"expires_in": "720h", "notify_before_expiry": "72h", "rotate_before_expiry": "24h"}),
        );
        assert_eq!(set["expires_in"], 720 * 3_600);
        assert!(has_expiry(&set));
        assert_eq!(get(&mut storage, "keys/k/rotation-policy"), set);
        for body in [
            json!({"expires_in": "10m"}),
            json!({"expires_in": "1h", "notify_before_expiry": "2h"}),
            json!({"expires_in": 0}),
        ] {
            post_err(&mut storage, "keys/k/rotation-policy", body);
        }
        call(
            &mut storage,
            Operation::Delete,
            "keys/k/rotation-policy",
            json!({}),
        )
        .unwrap();
        let cleared = get(&mut storage, "keys/k/rotation-policy");
        assert_eq!(cleared["expires_in"], 0);
        assert!(!has_expiry(&cleared));
    }
}
