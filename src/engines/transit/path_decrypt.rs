//! `decrypt/<name>`: decrypts a `vault:v<N>:` ciphertext (or each `batch_input` item), refusing
//! versions below `min_decryption_version`, and returns base64 `plaintext`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use zeroize::Zeroizing;

use super::cipher;
use super::cipher::CipherInput;
use super::fields;
use super::path_encrypt::KEY_NOT_FOUND;
use super::path_encrypt::check_encryption_type;
use super::path_encrypt::refuse_nonce;
use super::policy::KeyPolicy;
use super::require_key;
use super::single_or_batch;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// `POST decrypt/<name>`.
pub(super) fn decrypt(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, KEY_NOT_FOUND)?;
    let policy = &key.policy;
    check_encryption_type(policy)?;
    single_or_batch(request, |item| {
        let plaintext = open(policy, item, "missing ciphertext to decrypt")?;
        let mut result = Map::new();
        result.insert("plaintext".into(), json!(B64.encode(&*plaintext)));
        Ok(result)
    })
}

/// Decrypts an item's `ciphertext` with its `context` and `associated_data`.
pub(super) fn open(
    policy: &KeyPolicy,
    item: &Map<String, Value>,
    missing: &str,
) -> Result<Zeroizing<Vec<u8>>, LogicalError> {
    refuse_nonce(item)?;
    let ciphertext = match item.get("ciphertext") {
        None | Some(Value::Null) => return Err(LogicalError::invalid(missing)),
        Some(Value::String(text)) => text,
        Some(_) => return Err(LogicalError::invalid("ciphertext must be a string")),
    };
    let context = fields::base64_field(item, "context")?;
    let associated_data = fields::base64_field(item, "associated_data")?;
    let input = CipherInput {
        context: &context,
        associated_data: &associated_data,
    };
    cipher::decrypt(policy, ciphertext, &input).map(|(plaintext, _)| plaintext)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::policy::ERR_TOO_OLD;
    use crate::engines::transit::test_util::*;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn v1_decrypts_after_three_rotations_until_min_decryption_version_passes_it() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({"type": "aes128-gcm96"}));
        let v1 = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"v1 data")}),
        );
        for _ in 0..3 {
            post(&mut storage, "keys/k/rotate", json!({}));
        }
        let plain = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": v1["ciphertext"]}),
        );
        assert_eq!(unb64(&plain["plaintext"]), b"v1 data");
        post(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 2}),
        );
        assert_eq!(
            post_err(
                &mut storage,
                "decrypt/k",
                json!({"ciphertext": v1["ciphertext"]})
            ),
            ERR_TOO_OLD
        );
    }

    #[test]
    fn batch_decrypt_with_context_and_associated_data() {
        let mut storage = MemoryStorage::default();
        post(
            &mut storage,
            "keys/d",
            json!({"derived": true, "type": "aes256-gcm-siv"}),
        );
        let sealed = post(
            &mut storage,
            "encrypt/d",
            json!({"batch_input": [
                {"plaintext": b64(b"a"), "context": b64(b"c1"), "associated_data": b64(b"x")},
                {"plaintext": b64(b"b"), "context": b64(b"c2")},
            ]}),
        );
        let results = sealed["batch_results"].as_array().unwrap();
        let opened = post(
            &mut storage,
            "decrypt/d",
            json!({"batch_input": [
                {"ciphertext": results[0]["ciphertext"], "context": b64(b"c1"), "associated_data": b64(b"x")},
                {"ciphertext": results[1]["ciphertext"], "context": b64(b"c2")},
            ]}),
        );
        assert_eq!(unb64(&opened["batch_results"][0]["plaintext"]), b"a");
        assert_eq!(unb64(&opened["batch_results"][1]["plaintext"]), b"b");
        let wrong = call(
            &mut storage,
            Operation::Update,
            "decrypt/d",
            json!({"batch_input": [{"ciphertext": results[1]["ciphertext"], "context": b64(b"c1")}]}),
        )
        .unwrap();
        assert_eq!(wrong.status, Some(400));
    }

    #[test]
    fn malformed_ciphertexts_are_400() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let good = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"data")}),
        );
        let good = good["ciphertext"].as_str().unwrap().to_string();
        let before = snapshot(&mut storage);
        for bad in [
            json!(""),
            json!("vault:v1"),
            json!("vault:v0:AAAA"),
            json!("vault:v2:AAAA"),
            json!("vault:v1:@@@"),
            json!("vault:v1:AAAA"),
            json!(good.replace("vault:v1:", "vault:v01x:")),
            json!(&good[..good.len() - 8]),
            json!(12),
        ] {
            post_err(&mut storage, "decrypt/k", json!({"ciphertext": bad}));
        }
        post_err(&mut storage, "decrypt/k", json!({}));
        post_err(&mut storage, "decrypt/none", json!({"ciphertext": good}));
        assert_eq!(snapshot(&mut storage), before);
    }
}
