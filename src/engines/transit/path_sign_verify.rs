//! `sign/<name>[/<hash_algorithm>]` and `verify/<name>[/<hash_algorithm>]`: signatures with the
//! asymmetric key types (and `verify` of HMACs). Options: `hash_algorithm` (or the path),
//! `prehashed`, `signature_algorithm` (`pss` | `pkcs1v15`), `salt_length` (`auto` | `hash` | N),
//! `marshaling_algorithm` (`asn1` | `jws`), `context` for derived Ed25519, `batch_input`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::cipher::parse_versioned;
use super::fields;
use super::hashing::HashAlg;
use super::path_hmac;
use super::policy::KeyPolicy;
use super::require_key;
use super::signing;
use super::signing::SaltLength;
use super::signing::SignOptions;
use super::single_or_batch;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

fn options(
    input: &Map<String, Value>,
    path_algorithm: Option<&str>,
) -> Result<SignOptions, LogicalError> {
    let hash_name = match path_algorithm {
        Some(name) => Some(name.to_string()),
        None => match fields::string_field(input, "hash_algorithm")? {
            Some(name) => Some(name),
            None => fields::string_field(input, "algorithm")?,
        },
    };
    let hash = match hash_name.as_deref() {
        None | Some("") => Some(HashAlg::Sha2_256),
        Some("none") => None,
        Some(name) => Some(HashAlg::parse(name)?),
    };
    let pss = match fields::string_field(input, "signature_algorithm")?.as_deref() {
        None | Some("") | Some("pss") => true,
        Some("pkcs1v15") => false,
        Some(other) => {
            return Err(LogicalError::invalid(format!(
                "unsupported signature algorithm {other:?}"
            )));
        }
    };
    let jws = match fields::string_field(input, "marshaling_algorithm")?.as_deref() {
        None | Some("") | Some("asn1") => false,
        Some("jws") => true,
        Some(other) => {
            return Err(LogicalError::invalid(format!(
                "unsupported marshaling type {other:?}"
            )));
        }
    };
    let salt = match fields::string_field(input, "salt_length")?.as_deref() {
        None | Some("") | Some("auto") => SaltLength::Auto,
        Some("hash") => SaltLength::Hash,
        Some(number) => SaltLength::Bytes(number.parse().map_err(|_| {
            LogicalError::invalid("salt_length must be \"auto\", \"hash\" or a number of bytes")
        })?),
    };
    Ok(SignOptions {
        hash,
        prehashed: fields::bool_field(input, "prehashed", false)?,
        pss,
        salt,
        jws,
    })
}

fn check_signing_type(policy: &KeyPolicy, what: &str) -> Result<(), LogicalError> {
    if policy.key_type.supports_signing() {
        Ok(())
    } else {
        Err(LogicalError::invalid(format!(
            "key type {} does not support {what}",
            policy.key_type.name()
        )))
    }
}

/// `POST sign/<name>[/<hash_algorithm>]`.
pub(super) fn sign(
    request: &Request,
    name: &str,
    path_algorithm: Option<&str>,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, "signing key not found")?;
    let policy = &key.policy;
    check_signing_type(policy, "signing")?;
    let top = fields::input(request);
    let opts = options(&top, path_algorithm)?;
    let requested = fields::version_field(&top, "key_version")?.unwrap_or(0);
    single_or_batch(request, |item| {
        let input = fields::base64_field(item, "input")?;
        let context = fields::base64_field(item, "context")?;
        let version = policy.encryption_version(requested, now / 1_000_000_000)?;
        let entry = policy
            .versions
            .get(&version)
            .ok_or_else(|| LogicalError::invalid("key version not found"))?;
        let (signature, public) = signing::sign(
            policy.key_type,
            entry,
            policy.derived,
            &context,
            &input,
            &opts,
        )?;
        let mut result = Map::new();
        result.insert(
            "signature".into(),
            json!(format!("vault:v{version}:{}", opts.encode(&signature))),
        );
        result.insert("key_version".into(), json!(version));
        if let Some(public) = public {
            result.insert("publickey".into(), json!(B64.encode(public)));
        }
        Ok(result)
    })
}

/// `POST verify/<name>[/<hash_algorithm>]`: exactly one of `signature` or `hmac` per item.
pub(super) fn verify(
    request: &Request,
    name: &str,
    path_algorithm: Option<&str>,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let key = require_key(storage, name, "signature verification key not found")?;
    let policy = &key.policy;
    let top = fields::input(request);
    let opts = options(&top, path_algorithm)?;
    single_or_batch(request, |item| {
        let signature = fields::string_field(item, "signature")?;
        let hmac = fields::string_field(item, "hmac")?;
        let valid = match (signature, hmac) {
            (Some(_), Some(_)) => {
                return Err(LogicalError::invalid(
                    "provide one of 'signature' or 'hmac', not both",
                ));
            }
            (None, None) => {
                return Err(LogicalError::invalid("missing signature or hmac to verify"));
            }
            (None, Some(hmac)) => {
                let alg = opts.hash.unwrap_or(HashAlg::Sha2_256);
                path_hmac::verify_item(policy, alg, item, &hmac)?
            }
            (Some(signature), None) => verify_signature(policy, item, &signature, &opts)?,
        };
        let mut result = Map::new();
        result.insert("valid".into(), json!(valid));
        Ok(result)
    })
}

fn verify_signature(
    policy: &KeyPolicy,
    item: &Map<String, Value>,
    signature: &str,
    opts: &SignOptions,
) -> Result<bool, LogicalError> {
    check_signing_type(policy, "verification")?;
    let input = fields::base64_field(item, "input")?;
    let context = fields::base64_field(item, "context")?;
    let (version, payload) = parse_versioned(signature, "signature")?;
    if version > policy.latest_version {
        return Err(LogicalError::invalid(
            "invalid signature: version is too new",
        ));
    }
    let entry = policy.decryption_version(version)?;
    let raw = opts
        .decode(payload)
        .ok_or_else(|| LogicalError::invalid("invalid signature: could not decode base64"))?;
    signing::verify(
        policy.key_type,
        entry,
        policy.derived,
        &context,
        &input,
        &raw,
        opts,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;

    fn sign_and_verify(storage: &mut MemoryStorage, key: &str, path: &str, extra: Value) {
        let mut body = json!({"input": b64(b"payload")});
        for (name, value) in extra.as_object().unwrap() {
            body[name] = value.clone();
        }
        let signed = post(storage, &format!("sign/{key}{path}"), body.clone());
        assert!(
            signed["signature"]
                .as_str()
                .unwrap()
                .starts_with("vault:v1:")
        );
        let mut check = body.clone();
        check["signature"] = signed["signature"].clone();
        let valid = post(storage, &format!("verify/{key}{path}"), check.clone());
        assert_eq!(valid["valid"], true, "{key}{path} {extra}");
        check["input"] = json!(b64(b"tampered"));
        let invalid = post(storage, &format!("verify/{key}{path}"), check);
        assert_eq!(invalid["valid"], false, "{key}{path} {extra}");
    }

    #[test]
    fn every_signing_type_through_the_api() {
        let mut storage = MemoryStorage::default();
        for (name, kind) in [
            ("ed", "ed25519"),
            ("p256", "ecdsa-p256"),
            ("p384", "ecdsa-p384"),
            ("rsa", "rsa-2048"),
        ] {
            post(&mut storage, &format!("keys/{name}"), json!({"type": kind}));
            sign_and_verify(&mut storage, name, "", json!({}));
        }
        sign_and_verify(
            &mut storage,
            "p256",
            "/sha2-384",
            json!({"marshaling_algorithm": "jws"}),
        );
        sign_and_verify(
            &mut storage,
            "p384",
            "",
            json!({"hash_algorithm": "sha3-512"}),
        );
        sign_and_verify(
            &mut storage,
            "rsa",
            "/sha2-512",
            json!({"signature_algorithm": "pkcs1v15"}),
        );
        sign_and_verify(&mut storage, "rsa", "", json!({"salt_length": "hash"}));
        sign_and_verify(&mut storage, "rsa", "", json!({"salt_length": 20}));
        let digest = crate::engines::transit::hashing::HashAlg::Sha2_256.digest(b"payload");
        let signed = post(
            &mut storage,
            "sign/rsa",
            json!({"input": b64(&digest), "prehashed": true}),
        );
        let plain = post(
            &mut storage,
            "verify/rsa",
            json!({"input": b64(b"payload"), "signature": signed["signature"]}),
        );
        assert_eq!(plain["valid"], true);
    }

    #[test]
    fn derived_ed25519_returns_the_public_key_per_context() {
        let mut storage = MemoryStorage::default();
        post(
            &mut storage,
            "keys/d",
            json!({"type": "ed25519", "derived": true}),
        );
        let signed = post(
            &mut storage,
            "sign/d",
            json!({"input": b64(b"m"), "context": b64(b"c")}),
        );
        assert!(signed["publickey"].is_string());
        let ok = post(
            &mut storage,
            "verify/d",
            json!({"input": b64(b"m"), "context": b64(b"c"), "signature": signed["signature"]}),
        );
        assert_eq!(ok["valid"], true);
        post_err(&mut storage, "sign/d", json!({"input": b64(b"m")}));
    }

    #[test]
    fn batch_sign_and_verify() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/e", json!({"type": "ed25519"}));
        let signed = post(
            &mut storage,
            "sign/e",
            json!({"batch_input": [{"input": b64(b"a"), "reference": "1"}, {"input": b64(b"b")}]}),
        );
        let results = signed["batch_results"].as_array().unwrap();
        let verified = post(
            &mut storage,
            "verify/e",
            json!({"batch_input": [
                {"input": b64(b"a"), "signature": results[0]["signature"]},
                {"input": b64(b"a"), "signature": results[1]["signature"]},
            ]}),
        );
        assert_eq!(verified["batch_results"][0]["valid"], true);
        assert_eq!(verified["batch_results"][1]["valid"], false);
    }

    #[test]
    fn bad_sign_and_verify_requests_are_400_and_write_nothing() {
        let mut storage = MemoryStorage::default();
        post(&mut storage, "keys/e", json!({"type": "ecdsa-p256"}));
        post(&mut storage, "keys/a", json!({}));
        let signed = post(&mut storage, "sign/e", json!({"input": b64(b"m")}));
        let before = snapshot(&mut storage);
        post_err(&mut storage, "sign/a", json!({"input": b64(b"m")}));
        post_err(&mut storage, "sign/none", json!({"input": b64(b"m")}));
        post_err(&mut storage, "sign/e/md5", json!({"input": b64(b"m")}));
        post_err(
            &mut storage,
            "sign/e",
            json!({"input": b64(b"m"), "marshaling_algorithm": "xml"}),
        );
        post_err(&mut storage, "sign/e", json!({"input": "@@"}));
        post_err(
            &mut storage,
            "sign/e",
            json!({"input": b64(b"m"), "prehashed": true}),
        );
        post_err(
            &mut storage,
            "sign/e",
            json!({"input": b64(b"m"), "key_version": 2}),
        );
        post_err(&mut storage, "verify/e", json!({"input": b64(b"m")}));
        post_err(
            &mut storage,
            "verify/e",
            json!({"input": b64(b"m"), "signature": signed["signature"], "hmac": "vault:v1:AA=="}),
        );
        post_err(
            &mut storage,
            "verify/e",
            json!({"input": b64(b"m"), "signature": "vault:v1:@@"}),
        );
        post_err(
            &mut storage,
            "verify/e",
            json!({"input": b64(b"m"), "signature": "vault:v2:AA=="}),
        );
        post_err(
            &mut storage,
            "verify/a",
            json!({"input": b64(b"m"), "signature": "vault:v1:AA=="}),
        );
        assert_eq!(snapshot(&mut storage), before);
        // hvac sends `name` in the verify body: it is ignored.
        let ok = call(
            &mut storage,
            Operation::Update,
            "verify/e",
            json!({"name": "e", "input": b64(b"m"), "signature": signed["signature"]}),
        )
        .unwrap();
        assert_eq!(data(&ok)["valid"], true);
    }
}
