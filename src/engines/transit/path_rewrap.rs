//! `rewrap/<name>`: decrypts a ciphertext and encrypts the plaintext again with the latest
//! version (or `key_version`) without returning it.

use super::fields;
use super::path_decrypt::open;
use super::path_encrypt::KEY_NOT_FOUND;
use super::path_encrypt::check_encryption_type;
use super::path_encrypt::seal;
use super::require_key;
use super::single_or_batch;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// `POST rewrap/<name>`.
pub(super) fn rewrap(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, KEY_NOT_FOUND)?;
    let policy = &key.policy;
    check_encryption_type(policy)?;
    single_or_batch(request, |item| {
        let plaintext = open(policy, item, "missing ciphertext to rewrap")?;
        // Fail on a bad key_version before any work is returned.
        fields::version_field(item, "key_version")?;
        seal(policy, item, &plaintext, now)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn rewrap_moves_a_ciphertext_to_the_newest_version() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let v1 = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"keep")}),
        );
        post(&mut storage, "keys/k/rotate", json!({}));
        post(&mut storage, "keys/k/rotate", json!({}));
        let rewrapped = post(
            &mut storage,
            "rewrap/k",
            json!({"ciphertext": v1["ciphertext"]}),
        );
        assert_eq!(rewrapped["key_version"], 3);
        assert!(rewrapped.get("plaintext").is_none());
        assert!(
            rewrapped["ciphertext"]
                .as_str()
                .unwrap()
                .starts_with("vault:v3:")
        );
        post(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 3}),
        );
        let opened = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": rewrapped["ciphertext"]}),
        );
        assert_eq!(unb64(&opened["plaintext"]), b"keep");
        post_err(
            &mut storage,
            "rewrap/k",
            json!({"ciphertext": v1["ciphertext"]}),
        );
    }

    #[test]
    fn rewrap_to_a_chosen_version_and_in_batches() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        post(&mut storage, "keys/k/rotate", json!({}));
        let v2 = post(&mut storage, "encrypt/k", json!({"plaintext": b64(b"x")}));
        let down = post(
            &mut storage,
            "rewrap/k",
            json!({"ciphertext": v2["ciphertext"], "key_version": 1}),
        );
        assert_eq!(down["key_version"], 1);
        let batch = post(
            &mut storage,
            "rewrap/k",
            json!({"batch_input": [{"ciphertext": down["ciphertext"], "reference": "a"}]}),
        );
        assert_eq!(batch["batch_results"][0]["key_version"], 2);
        assert_eq!(batch["batch_results"][0]["reference"], "a");
        post_err(&mut storage, "rewrap/k", json!({}));
        post_err(
            &mut storage,
            "rewrap/k",
            json!({"ciphertext": v2["ciphertext"], "key_version": 3}),
        );
    }
}
