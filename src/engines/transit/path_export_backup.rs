//! `export/<type>/<name>[/<version>]` (key material in Vault's encodings, only for `exportable`
//! keys; public keys always), `backup/<name>` (the whole key, base64, only with `exportable` and
//! `allow_plaintext_backup`) and `restore[/<name>]`.
//!
//! A backup is `base64(codec(Backup))`: a format tag and the policy with every version. Restoring
//! gives the key a new identity (the cache treats it as a new key) and records `restore_info`.

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;
use zeroize::Zeroizing;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::fields;
use super::material;
use super::material::ExportType;
use super::policy::KeyPolicy;
use super::policy::RestoreInfo;
use super::schedule;
use super::store;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

const BACKUP_FORMAT: &str = "strongroom-transit-backup-1";

/// What a backup holds.
#[derive(Serialize, Deserialize)]
struct Backup {
    format: String,
    policy: KeyPolicy,
}

/// `GET export/<type>/<name>[/<version>]`.
pub(super) fn export(
    kind: &str,
    name: &str,
    version: Option<&str>,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let what = ExportType::parse(kind)?;
    let key = store::load(storage, name)?.ok_or(LogicalError::NotFound)?;
    let policy = &key.policy;
    if what != ExportType::Public && !policy.exportable {
        return Err(LogicalError::invalid(
            "private key material is not exportable",
        ));
    }
    let versions: Vec<u32> = match version {
        None => policy.versions.keys().copied().collect(),
        Some("latest") => vec![policy.latest_version],
        Some(text) => {
            let number: u32 = text
                .parse()
                .map_err(|_| LogicalError::invalid("version could not be parsed"))?;
            if !policy.versions.contains_key(&number) {
                return Err(LogicalError::invalid(
                    "version does not exist or cannot be found",
                ));
            }
            vec![number]
        }
    };
    let mut keys = Map::new();
    for number in versions {
        let Some(entry) = policy.versions.get(&number) else {
            continue;
        };
        let text = material::export(policy.key_type, entry, what)?;
        keys.insert(number.to_string(), Value::String(text.to_string()));
    }
    let mut data = Map::new();
    data.insert("name".into(), json!(policy.name));
    data.insert("type".into(), json!(policy.key_type.name()));
    data.insert("keys".into(), Value::Object(keys));
    Ok(Response::with_data(data))
}

/// `GET backup/<name>`.
pub(super) fn backup(name: &str, storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let key = store::load(storage, name)?.ok_or(LogicalError::NotFound)?;
    let policy = &key.policy;
    if !policy.exportable {
        return Err(LogicalError::invalid(
            "exporting is disallowed on the policy",
        ));
    }
    if !policy.allow_plaintext_backup {
        return Err(LogicalError::invalid(
            "plaintext backup is disallowed on the policy",
        ));
    }
    let encoded = Zeroizing::new(codec::encode(&Backup {
        format: BACKUP_FORMAT.into(),
        policy: policy.clone(),
    }));
    Ok(Response::from_value(
        json!({ "backup": B64.encode(&*encoded) }),
    ))
}

/// `POST restore[/<name>] {"backup": ..., "force": bool}`.
pub(super) fn restore(
    request: &Request,
    name: Option<&str>,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let input = fields::input(request);
    let bytes = fields::required_base64(&input, "backup", "'backup' must be supplied")?;
    let force = fields::bool_field(&input, "force", false)?;
    let backup: Backup =
        codec::decode(&bytes).map_err(|_| LogicalError::invalid("invalid backup"))?;
    if backup.format != BACKUP_FORMAT {
        return Err(LogicalError::invalid("invalid backup: unknown format"));
    }
    let mut policy = backup.policy;
    check_restored(&policy)?;
    let name = match name {
        Some(name) => name.to_string(),
        None => super::checked(&policy.name)?.to_string(),
    };
    if let Some(existing) = store::load(storage, &name)? {
        if !force {
            return Err(LogicalError::invalid(format!(
                "key \"{name}\" already exists"
            )));
        }
        store::forget(&existing.id);
    }
    policy.name = name;
    policy.restore_info = RestoreInfo {
        nanos: now,
        version: policy.latest_version,
    };
    schedule::save(storage, &store::new_id(), &policy)?;
    Ok(Response::no_content())
}

/// Refuses a backup whose policy is internally inconsistent.
fn check_restored(policy: &KeyPolicy) -> Result<(), LogicalError> {
    let invalid = || LogicalError::invalid("invalid backup: inconsistent key versions");
    let latest = policy
        .versions
        .get(&policy.latest_version)
        .ok_or_else(invalid)?;
    let last = policy.versions.keys().next_back().copied().unwrap_or(0);
    if last != policy.latest_version
        || policy.min_decryption_version == 0
        || policy.min_decryption_version > policy.latest_version
        || policy.min_encryption_version > policy.latest_version
    {
        return Err(invalid());
    }
    if policy.key_type.is_aead() && latest.key.expose().len() != policy.key_type.aead_key_len() {
        return Err(invalid());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::Aead;
    use aes_gcm::aead::KeyInit;
    use serde_json::json;

    use crate::engines::transit::cipher::parse_ciphertext;
    use crate::engines::transit::test_util::*;
    use crate::logical::LogicalError;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn exported_aes_key_decrypts_our_ciphertext() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({"exportable": true}));
        let sealed = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"interop")}),
        );
        let exported = get(&mut storage, "export/encryption-key/k/latest");
        assert_eq!(exported["type"], "aes256-gcm96");
        let key = unb64(&exported["keys"]["1"]);
        let (_, raw) = parse_ciphertext(sealed["ciphertext"].as_str().unwrap()).unwrap();
        let nonce: [u8; 12] = raw[..12].try_into().unwrap();
        let opened = aes_gcm::Aes256Gcm::new_from_slice(&key)
            .unwrap()
            .decrypt(&nonce.into(), &raw[12..])
            .unwrap();
        assert_eq!(opened, b"interop");
    }

    #[test]
    fn export_rules() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        post(&mut storage, "keys/e", json!({"type": "ed25519"}));
        post_err_get(&mut storage, "export/encryption-key/k");
        post_err_get(&mut storage, "export/bogus-key/k");
        let public = get(&mut storage, "export/public-key/e");
        assert!(public["keys"]["1"].is_string());
        post_err_get(&mut storage, "export/public-key/k");
        post(&mut storage, "keys/k/config", json!({"exportable": true}));
        post_err_get(&mut storage, "export/signing-key/k");
        post_err_get(&mut storage, "export/encryption-key/k/7");
        let hmac = get(&mut storage, "export/hmac-key/k");
        assert_eq!(unb64(&hmac["keys"]["1"]).len(), 32);
        assert!(matches!(
            call(
                &mut storage,
                Operation::Read,
                "export/encryption-key/none",
                json!({})
            ),
            Err(LogicalError::NotFound)
        ));
    }

    fn post_err_get(storage: &mut MemoryStorage, path: &str) {
        assert!(
            matches!(
                call(storage, Operation::Read, path, json!({})),
                Err(LogicalError::InvalidRequest(_))
            ),
            "{path}"
        );
    }

    #[test]
    fn backup_and_restore_round_trip() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({"type": "ed25519"}));
        post_err_get(&mut storage, "backup/k");
        post(
            &mut storage,
            "keys/k/config",
            json!({"exportable": true, "allow_plaintext_backup": true}),
        );
        post(&mut storage, "keys/k/rotate", json!({}));
        let signed = post(&mut storage, "sign/k", json!({"input": b64(b"m")}));
        let backup = get(&mut storage, "backup/k")["backup"].clone();
        post_err(&mut storage, "restore", json!({"backup": backup}));
        post(&mut storage, "restore/copy", json!({"backup": backup}));
        let copy = get(&mut storage, "keys/copy");
        assert_eq!(copy["latest_version"], 2);
        assert!(copy["restore_info"]["time"].is_string());
        let ok = post(
            &mut storage,
            "verify/copy",
            json!({"input": b64(b"m"), "signature": signed["signature"]}),
        );
        assert_eq!(ok["valid"], true);
        call(
            &mut storage,
            Operation::Update,
            "restore",
            json!({"backup": backup, "force": true}),
        )
        .unwrap();
        let before = snapshot(&mut storage);
        post_err(&mut storage, "restore", json!({}));
        post_err(&mut storage, "restore", json!({"backup": "%%%"}));
        post_err(&mut storage, "restore", json!({"backup": b64(b"garbage")}));
        assert_eq!(snapshot(&mut storage), before);
    }
}
