//! `encrypt/<name>`: encrypts base64 `plaintext` (or each `batch_input` item) with the latest
//! version or `key_version`, using `context` for derived keys and `associated_data` for AEAD
//! types. Unknown keys are refused (no upsert).

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::cipher;
use super::cipher::CipherInput;
use super::fields;
use super::policy::KeyPolicy;
use super::require_key;
use super::single_or_batch;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// Vault's message for an operation on a key that does not exist.
pub(super) const KEY_NOT_FOUND: &str = "encryption key not found";

/// `POST encrypt/<name>`.
pub(super) fn encrypt(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, KEY_NOT_FOUND)?;
    let policy = &key.policy;
    check_encryption_type(policy)?;
    single_or_batch(request, |item| encrypt_item(policy, item, now))
}

/// Refuses key types that cannot encrypt.
pub(super) fn check_encryption_type(policy: &KeyPolicy) -> Result<(), LogicalError> {
    if policy.key_type.supports_encryption() {
        Ok(())
    } else {
        Err(LogicalError::invalid(format!(
            "key type {} does not support encryption",
            policy.key_type.name()
        )))
    }
}

/// Refuses a caller-chosen `nonce` (Vault allows one only for legacy convergent keys).
pub(super) fn refuse_nonce(item: &Map<String, Value>) -> Result<(), LogicalError> {
    if fields::base64_field(item, "nonce")?.is_empty() {
        Ok(())
    } else {
        Err(LogicalError::invalid(
            "provided nonce not allowed for this key",
        ))
    }
}

/// Encrypts `plaintext` for one item with the version `key_version` selects.
pub(super) fn seal(
    policy: &KeyPolicy,
    item: &Map<String, Value>,
    plaintext: &[u8],
    now: u64,
) -> Result<Map<String, Value>, LogicalError> {
    refuse_nonce(item)?;
    let context = fields::base64_field(item, "context")?;
    let associated_data = fields::base64_field(item, "associated_data")?;
    let requested = fields::version_field(item, "key_version")?.unwrap_or(0);
    let version = policy.encryption_version(requested, now / 1_000_000_000)?;
    let input = CipherInput {
        context: &context,
        associated_data: &associated_data,
    };
    let ciphertext = cipher::encrypt(policy, version, plaintext, &input)?;
    let mut result = Map::new();
    result.insert("ciphertext".into(), json!(ciphertext));
    result.insert("key_version".into(), json!(version));
    Ok(result)
}

fn encrypt_item(
    policy: &KeyPolicy,
    item: &Map<String, Value>,
    now: u64,
) -> Result<Map<String, Value>, LogicalError> {
    let plaintext = fields::required_base64(item, "plaintext", "missing plaintext to encrypt")?;
    seal(policy, item, &plaintext, now)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn batch_encrypt_keeps_references_and_flags_bad_items() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let response = call(
            &mut storage,
            Operation::Update,
            "encrypt/k",
            json!({"batch_input": [
                {"plaintext": b64(b"a"), "reference": "r1"},
                {"plaintext": "not base64!"},
                {"plaintext": b64(b"c"), "key_version": 7},
            ]}),
        )
        .unwrap();
        assert_eq!(response.status, Some(400));
        let results = data(&response)["batch_results"].clone();
        assert_eq!(results[0]["reference"], "r1");
        assert!(
            results[0]["ciphertext"]
                .as_str()
                .unwrap()
                .starts_with("vault:v1:")
        );
        assert!(results[1]["error"].is_string());
        assert!(results[2]["error"].is_string());
        let partial = call(
            &mut storage,
            Operation::Update,
            "encrypt/k",
            json!({"partial_failure_response_code": 207, "batch_input": [
                {"plaintext": b64(b"a")}, {"plaintext": "***"}]}),
        )
        .unwrap();
        assert_eq!(partial.status, Some(207));
        let ok = call(
            &mut storage,
            Operation::Update,
            "encrypt/k",
            json!({"batch_input": [{"plaintext": b64(b"a")}]}),
        )
        .unwrap();
        assert_eq!(ok.status, None);
    }

    #[test]
    fn bad_encrypt_requests_are_400_and_write_nothing() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        post(&mut storage, "keys/s", json!({"type": "ed25519"}));
        post(&mut storage, "keys/d", json!({"derived": true}));
        let before = snapshot(&mut storage);
        assert_eq!(
            post_err(
                &mut storage,
                "encrypt/none",
                json!({"plaintext": b64(b"x")})
            ),
            "encryption key not found"
        );
        post_err(&mut storage, "encrypt/k", json!({}));
        post_err(&mut storage, "encrypt/k", json!({"plaintext": "%%%"}));
        post_err(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"x"), "key_version": 2}),
        );
        post_err(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"x"), "nonce": b64(&[0; 12])}),
        );
        post_err(&mut storage, "encrypt/s", json!({"plaintext": b64(b"x")}));
        post_err(&mut storage, "encrypt/d", json!({"plaintext": b64(b"x")}));
        post_err(&mut storage, "encrypt/k", json!({"batch_input": []}));
        let huge: Vec<_> = (0..100_000).map(|_| json!({"plaintext": ""})).collect();
        post_err(&mut storage, "encrypt/k", json!({"batch_input": huge}));
        assert_eq!(snapshot(&mut storage), before);
    }

    #[test]
    fn empty_plaintext_is_allowed() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let sealed = post(&mut storage, "encrypt/k", json!({"plaintext": ""}));
        let opened = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": sealed["ciphertext"]}),
        );
        assert_eq!(opened["plaintext"], "");
    }
}
