//! `keys/<name>/rotate` (a new version becomes the latest) and `keys/<name>/trim` (destroy the
//! material of versions below `min_available_version`).

use super::fields;
use super::require_key;
use super::schedule;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// `POST keys/<name>/rotate`: returns the key, as newer Vault versions do.
pub(super) fn rotate(
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, "key not found")?;
    let mut policy = key.policy.clone();
    policy.rotate(now)?;
    schedule::save(storage, &key.id, &policy)?;
    Ok(Response::with_data(policy.to_json()))
}

/// `POST keys/<name>/trim {"min_available_version": N}`.
pub(super) fn trim(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, "invalid key name")?;
    let input = fields::input(request);
    let version = fields::version_field(&input, "min_available_version")?
        .ok_or_else(|| LogicalError::invalid("missing min_available_version"))?;
    let mut policy = key.policy.clone();
    if version == 0 {
        return Err(LogicalError::invalid(
            "minimum available version should be positive",
        ));
    }
    if version < policy.min_available_version {
        return Err(LogicalError::invalid(
            "minimum available version cannot be lowered",
        ));
    }
    if version > policy.min_decryption_version {
        return Err(LogicalError::invalid(format!(
            "cannot set min available version of {version}, it must be less than or equal to \
             the min decryption version of {}",
            policy.min_decryption_version
        )));
    }
    if policy.min_encryption_version > 0 && version > policy.min_encryption_version {
        return Err(LogicalError::invalid(
            "minimum available version should not be greater than the min encryption version",
        ));
    }
    policy.versions.retain(|number, _| *number >= version);
    policy.min_available_version = version;
    if policy != key.policy {
        schedule::save(storage, &key.id, &policy)?;
    }
    Ok(Response::with_data(policy.to_json()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn rotation_adds_versions_and_old_ciphertexts_still_decrypt() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({"type": "chacha20-poly1305"}));
        let v1 = post(&mut storage, "encrypt/k", json!({"plaintext": b64(b"one")}));
        for expected in 2..=4 {
            let rotated = post(&mut storage, "keys/k/rotate", json!({}));
            assert_eq!(rotated["latest_version"], expected);
        }
        let v4 = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"four")}),
        );
        assert!(v4["ciphertext"].as_str().unwrap().starts_with("vault:v4:"));
        let plain = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": v1["ciphertext"]}),
        );
        assert_eq!(unb64(&plain["plaintext"]), b"one");
        post_err(&mut storage, "keys/none/rotate", json!({}));
    }

    #[test]
    fn trim_rules_and_effect() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        for _ in 0..3 {
            post(&mut storage, "keys/k/rotate", json!({}));
        }
        let before = snapshot(&mut storage);
        post_err(
            &mut storage,
            "keys/k/trim",
            json!({"min_available_version": 2}),
        );
        post_err(
            &mut storage,
            "keys/k/trim",
            json!({"min_available_version": 0}),
        );
        post_err(&mut storage, "keys/k/trim", json!({}));
        assert_eq!(snapshot(&mut storage), before);
        post(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 3}),
        );
        let trimmed = post(
            &mut storage,
            "keys/k/trim",
            json!({"min_available_version": 3}),
        );
        assert_eq!(trimmed["min_available_version"], 3);
        let versions: Vec<&String> = trimmed["keys"].as_object().unwrap().keys().collect();
        assert_eq!(versions, ["3", "4"]);
        post_err(
            &mut storage,
            "keys/k/trim",
            json!({"min_available_version": 2}),
        );
        post_err(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 2}),
        );
    }
}
