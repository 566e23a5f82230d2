//! `datakey/(plaintext|wrapped)/<name>`: a fresh random data key (`bits` 128, 256 or 512)
//! encrypted with the named key; the `plaintext` kind also returns the key itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use super::fields;
use super::material;
use super::path_encrypt::KEY_NOT_FOUND;
use super::path_encrypt::check_encryption_type;
use super::path_encrypt::seal;
use super::require_key;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// `POST datakey/<kind>/<name>`.
pub(super) fn datakey(
    request: &Request,
    kind: &str,
    name: &str,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let with_plaintext = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => return Err(LogicalError::invalid("invalid type")),
    };
    let input = fields::input(request);
    let bits = fields::u64_field(&input, "bits")?.unwrap_or(256);
    if !matches!(bits, 128 | 256 | 512) {
        return Err(LogicalError::invalid(format!("invalid bits length {bits}")));
    }
    let key = require_key(storage, name, KEY_NOT_FOUND)?;
    check_encryption_type(&key.policy)?;
    let data_key = material::random((bits / 8) as usize);
    let mut result = seal(&key.policy, &input, &data_key, now)?;
    if with_plaintext {
        result.insert("plaintext".into(), json!(B64.encode(&*data_key)));
    }
    Ok(Response::with_data(result))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn plaintext_and_wrapped_data_keys() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let plain = post(&mut storage, "datakey/plaintext/k", json!({"bits": 512}));
        let key = unb64(&plain["plaintext"]);
        assert_eq!(key.len(), 64);
        let opened = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": plain["ciphertext"]}),
        );
        assert_eq!(unb64(&opened["plaintext"]), key);
        let wrapped = post(&mut storage, "datakey/wrapped/k", json!({}));
        assert!(wrapped.get("plaintext").is_none());
        assert_eq!(wrapped["key_version"], 1);
        let opened = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": wrapped["ciphertext"]}),
        );
        assert_eq!(unb64(&opened["plaintext"]).len(), 32);
    }

    #[test]
    fn bad_datakey_requests() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        post(&mut storage, "keys/h", json!({"type": "hmac"}));
        let before = snapshot(&mut storage);
        post_err(&mut storage, "datakey/other/k", json!({}));
        post_err(&mut storage, "datakey/plaintext/k", json!({"bits": 100}));
        post_err(&mut storage, "datakey/plaintext/none", json!({}));
        post_err(&mut storage, "datakey/plaintext/h", json!({}));
        assert_eq!(snapshot(&mut storage), before);
    }
}
