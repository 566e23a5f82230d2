//! `hmac/<name>[/<algorithm>]`: HMAC of base64 `input` with a key version (the key itself for
//! `hmac` keys, the version's separate HMAC key for every other type), as `vault:v<N>:<base64>`;
//! and the HMAC half of `verify` (constant-time comparison).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::cipher::format_versioned;
use super::cipher::parse_versioned;
use super::fields;
use super::hashing::HashAlg;
use super::hashing::macs_equal;
use super::keytype::KeyType;
use super::path_encrypt::KEY_NOT_FOUND;
use super::policy::KeyPolicy;
use super::policy::KeyVersion;
use super::require_key;
use super::single_or_batch;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// The algorithm from the path, else the `algorithm` field, else SHA-256.
pub(super) fn algorithm(
    input: &Map<String, Value>,
    from_path: Option<&str>,
    field: &str,
) -> Result<HashAlg, LogicalError> {
    match from_path {
        Some(name) => HashAlg::parse(name),
        None => match fields::string_field(input, field)? {
            Some(name) => HashAlg::parse(&name),
            None => Ok(HashAlg::Sha2_256),
        },
    }
}

fn mac_key<'a>(policy: &KeyPolicy, entry: &'a KeyVersion) -> &'a [u8] {
    if policy.key_type == KeyType::Hmac {
        entry.key.expose()
    } else {
        entry.hmac_key.expose()
    }
}

/// `POST hmac/<name>[/<algorithm>]`.
pub(super) fn hmac(
    request: &Request,
    name: &str,
    path_algorithm: Option<&str>,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, KEY_NOT_FOUND)?;
    let policy = &key.policy;
    let top = fields::input(request);
    let alg = algorithm(&top, path_algorithm, "algorithm")?;
    let requested = fields::version_field(&top, "key_version")?.unwrap_or(0);
    single_or_batch(request, |item| {
        let input = fields::required_base64(item, "input", "missing input for HMAC")?;
        let version = policy.encryption_version(requested, now / 1_000_000_000)?;
        let entry = policy
            .versions
            .get(&version)
            .ok_or_else(|| LogicalError::invalid("key version not found"))?;
        let mac = alg.hmac(mac_key(policy, entry), &input);
        let mut result = Map::new();
        result.insert("hmac".into(), json!(format_versioned(version, &mac)));
        Ok(result)
    })
}

/// Verifies an item's `hmac` over its `input`.
pub(super) fn verify_item(
    policy: &KeyPolicy,
    alg: HashAlg,
    item: &Map<String, Value>,
    hmac: &str,
) -> Result<bool, LogicalError> {
    let input = fields::base64_field(item, "input")?;
    let (version, payload) = parse_versioned(hmac, "hmac")?;
    if version > policy.latest_version {
        return Err(LogicalError::invalid("invalid hmac: version is too new"));
    }
    let entry = policy.decryption_version(version)?;
    let Ok(given) = B64.decode(payload) else {
        return Err(LogicalError::invalid(
            "invalid hmac: could not decode base64",
        ));
    };
    let expected = alg.hmac(mac_key(policy, entry), &input);
    Ok(macs_equal(&expected, &given))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::hashing::HashAlg;
    use crate::engines::transit::test_util::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn hmac_round_trip_with_algorithms_and_versions() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/h", json!({"type": "hmac"}));
        post(&mut storage, "keys/a", json!({}));
        for key in ["h", "a"] {
            let made = post(
                &mut storage,
                &format!("hmac/{key}/sha3-256"),
                json!({"input": b64(b"msg")}),
            );
            let mac = made["hmac"].as_str().unwrap().to_string();
            assert!(mac.starts_with("vault:v1:"));
            let ok = post(
                &mut storage,
                &format!("verify/{key}/sha3-256"),
                json!({"input": b64(b"msg"), "hmac": mac}),
            );
            assert_eq!(ok["valid"], true);
            let wrong_alg = post(
                &mut storage,
                &format!("verify/{key}"),
                json!({"input": b64(b"msg"), "hmac": mac}),
            );
            assert_eq!(wrong_alg["valid"], false);
            let wrong_input = post(
                &mut storage,
                &format!("verify/{key}/sha3-256"),
                json!({"input": b64(b"msh"), "hmac": mac}),
            );
            assert_eq!(wrong_input["valid"], false);
        }
        // The hmac type's MAC is a plain HMAC under the exported key.
        post(
            &mut storage,
            "keys/x",
            json!({"type": "hmac", "exportable": true}),
        );
        let made = post(&mut storage, "hmac/x", json!({"input": b64(b"abc")}));
        let exported = get(&mut storage, "export/hmac-key/x/1");
        let key = unb64(&exported["keys"]["1"]);
        let expected = HashAlg::Sha2_256.hmac(&key, b"abc");
        assert_eq!(made["hmac"], format!("vault:v1:{}", b64(&expected)));
    }

    #[test]
    fn hmac_version_rules_and_batches() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/k", json!({}));
        let old = post(&mut storage, "hmac/k", json!({"input": b64(b"m")}));
        post(&mut storage, "keys/k/rotate", json!({}));
        let batch = post(
            &mut storage,
            "hmac/k",
            json!({"batch_input": [{"input": b64(b"a"), "reference": "x"}, {"input": b64(b"b")}]}),
        );
        assert!(
            batch["batch_results"][0]["hmac"]
                .as_str()
                .unwrap()
                .starts_with("vault:v2:")
        );
        assert_eq!(batch["batch_results"][0]["reference"], "x");
        post(
            &mut storage,
            "keys/k/config",
            json!({"min_decryption_version": 2}),
        );
        post_err(
            &mut storage,
            "verify/k",
            json!({"input": b64(b"m"), "hmac": old["hmac"]}),
        );
        post_err(
            &mut storage,
            "hmac/k",
            json!({"input": b64(b"m"), "key_version": 1}),
        );
        post_err(&mut storage, "hmac/k", json!({}));
        post_err(&mut storage, "hmac/k/md5", json!({"input": b64(b"m")}));
        post_err(&mut storage, "hmac/none", json!({"input": b64(b"m")}));
        post_err(
            &mut storage,
            "verify/k",
            json!({"input": b64(b"m"), "hmac": "vault:v9:AAAA"}),
        );
        post_err(
            &mut storage,
            "verify/k",
            json!({"input": b64(b"m"), "hmac": "vault:v2:%%"}),
        );
    }
}
