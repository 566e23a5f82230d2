//! The PGP fields of the seal ceremonies, in Vault's shapes: `pgp_keys` (one holder key per new
//! share) on `sys/init` and `sys/rekey/init`, `root_token_pgp_key` on `sys/init` and `pgp_key`
//! on `sys/generate-root/attempt` (see [`crate::crypto::pgp`] for what a valid key is).
//!
//! Every key is parsed and checked when the request arrives, before anything changes: a bad key
//! is a 400 naming its field and index. The encryption happens before the ceremony's final
//! commit, so a failure there leaves the cluster as it was. As in Vault, each share is
//! encrypted as its hex (`base64 -d | gpg -dq` yields what `operator unseal` takes) and a root
//! token as itself; the messages are returned as hex in `keys` and base64 in `keys_base64`
//! (shares) or base64 (`root_token`, `encoded_token`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use zeroize::Zeroizing;

use super::CoreError;
use crate::crypto::pgp::RecipientKey;
use crate::seal::Share;

/// A `pgp_keys` list: absent, null or empty is `None`; otherwise one valid key per share.
pub fn key_list(
    value: Option<&Value>,
    field: &str,
    secret_shares: u32,
) -> Result<Option<Vec<RecipientKey>>, CoreError> {
    let entries = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(entries)) if entries.is_empty() => return Ok(None),
        Some(Value::Array(entries)) => entries,
        // Vault's API also takes a comma-separated string for a list field.
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        Some(Value::String(text)) => {
            let entries: Vec<Value> = text
                .split(',')
                .map(|part| Value::String(part.to_string()))
                .collect();
            return key_list(Some(&Value::Array(entries)), field, secret_shares);
        }
        Some(_) => {
            return Err(CoreError::InvalidRequest(format!(
                "{field} must be a list of base64-encoded OpenPGP public keys"
            )));
        }
    };
    if u32::try_from(entries.len()).ok() != Some(secret_shares) {
        return Err(CoreError::InvalidRequest(format!(
            "incorrect number of PGP keys: {field} has {} keys for {secret_shares} shares",
            entries.len()
        )));
    }
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let Value::String(text) = entry else {
                return Err(CoreError::InvalidRequest(format!(
                    "{field}[{index}]: must be a string (a base64-encoded OpenPGP public key)"
                )));
            };
            RecipientKey::parse(text)
                .map_err(|err| CoreError::InvalidRequest(format!("{field}[{index}]: {err}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A single key field (`root_token_pgp_key`, `pgp_key`): absent, null or empty is `None`.
pub fn single_key(value: Option<&Value>, field: &str) -> Result<Option<RecipientKey>, CoreError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => RecipientKey::parse(text)
            .map(Some)
            .map_err(|err| CoreError::InvalidRequest(format!("{field}: {err}"))),
        Some(_) => Err(CoreError::InvalidRequest(format!(
            "{field} must be a string (a base64-encoded OpenPGP public key)"
        ))),
    }
}

/// Each share's hex encrypted to the key at the same position (binary OpenPGP messages).
pub fn encrypt_shares(keys: &[RecipientKey], shares: &[Share]) -> Result<Vec<Vec<u8>>, CoreError> {
    if keys.len() != shares.len() {
        return Err(CoreError::InvalidRequest(format!(
            "incorrect number of PGP keys: {} keys for {} shares",
            keys.len(),
            shares.len()
        )));
    }
    keys.iter()
        .zip(shares)
        .enumerate()
        .map(|(index, (key, share))| {
            let hex = Zeroizing::new(share.to_hex());
            key.encrypt(hex.as_bytes()).map_err(|err| {
                CoreError::Internal(format!("encrypting share {index} to its PGP key: {err}"))
            })
        })
        .collect()
}

/// A root token encrypted to `key`, base64 (Vault's `root_token` / `encoded_token`).
pub fn encrypt_token(key: &RecipientKey, token: &str) -> Result<String, CoreError> {
    key.encrypt(token.as_bytes())
        .map(|message| STANDARD.encode(message))
        .map_err(|err| CoreError::Internal(format!("encrypting the root token: {err}")))
}

/// Vault's `keys` and `keys_base64` for PGP-encrypted shares: each message as hex and base64.
pub fn share_fields(messages: &[Vec<u8>]) -> (Vec<String>, Vec<String>) {
    (
        messages.iter().map(hex::encode).collect(),
        messages.iter().map(|m| STANDARD.encode(m)).collect(),
    )
}

/// The keys' fingerprints (Vault's `pgp_fingerprints`).
pub fn fingerprints(keys: &[RecipientKey]) -> Vec<String> {
    keys.iter().map(|k| k.fingerprint().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crypto::pgp::test_keys;
    use crate::seal;

    #[test]
    fn shares_decrypt_to_their_hex_and_combine() {
        let holders: Vec<_> = (0..3).map(|_| test_keys::generate(true)).collect();
        let list = json!(holders.iter().map(|(_, public)| public).collect::<Vec<_>>());
        let keys = key_list(Some(&list), "pgp_keys", 3).unwrap().unwrap();
        let (unseal_key, shares, config) = seal::generate(3, 2).unwrap();
        let messages = encrypt_shares(&keys, &shares).unwrap();
        let (hex_fields, b64_fields) = share_fields(&messages);
        assert_eq!(hex_fields[0], hex::encode(&messages[0]));
        let mut progress = seal::UnsealProgress::new();
        let mut combined = None;
        for (index, (secret, _)) in holders.iter().enumerate().skip(1) {
            let message = STANDARD.decode(&b64_fields[index]).unwrap();
            let plain = String::from_utf8(test_keys::decrypt(secret, &message)).unwrap();
            assert_eq!(plain, shares[index].to_hex(), "the share's hex, as Vault");
            assert!(!b64_fields[index].contains(&plain));
            combined = progress.submit(&config, &plain).unwrap();
        }
        assert!(combined.unwrap().ct_eq(&unseal_key));
        assert_eq!(fingerprints(&keys)[1], keys[1].fingerprint());
    }

    #[test]
    fn lists_are_checked_before_use() {
        let (_, good) = test_keys::generate(true);
        let (_, signing_only) = test_keys::generate(false);
        assert!(key_list(None, "pgp_keys", 3).unwrap().is_none());
        assert!(key_list(Some(&json!([])), "pgp_keys", 3).unwrap().is_none());
        let count = key_list(Some(&json!([good, good])), "pgp_keys", 3).unwrap_err();
        assert!(
            count.to_string().contains("incorrect number of PGP keys"),
            "{count}"
        );
        let bad = key_list(Some(&json!([good, "bm90IGEga2V5", good])), "pgp_keys", 3);
        let message = bad.unwrap_err().to_string();
        assert!(message.starts_with("pgp_keys[1]: "), "{message}");
        let no_encryption = key_list(Some(&json!([good, signing_only])), "pgp_keys", 2);
        assert!(
            no_encryption
                .unwrap_err()
                .to_string()
                .contains("pgp_keys[1]: the key has no")
        );
        let keybase = key_list(Some(&json!(["keybase:jeff"])), "pgp_keys", 1).unwrap_err();
        assert!(keybase.to_string().contains("keybase"));
        assert!(key_list(Some(&json!([1])), "pgp_keys", 1).is_err());
        assert!(key_list(Some(&json!({"a": 1})), "pgp_keys", 1).is_err());
        let joined = format!("{good},{good}");
        assert_eq!(
            key_list(Some(&json!(joined)), "pgp_keys", 2)
                .unwrap()
                .unwrap()
                .len(),
            2
        );
        assert!(single_key(Some(&json!("")), "pgp_key").unwrap().is_none());
        assert!(single_key(Some(&json!(good)), "pgp_key").unwrap().is_some());
        let message = single_key(Some(&json!("%%%")), "pgp_key")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("pgp_key: not valid base64"),
            "{message}"
        );
    }

    #[test]
    fn root_tokens_are_encrypted_as_themselves() {
        let (secret, public) = test_keys::generate(true);
        let key = single_key(Some(&json!(public)), "root_token_pgp_key")
            .unwrap()
            .unwrap();
        let encoded = encrypt_token(&key, "hvs.example-token").unwrap();
        let message = STANDARD.decode(encoded).unwrap();
        assert_eq!(test_keys::decrypt(&secret, &message), b"hvs.example-token");
    }
}
