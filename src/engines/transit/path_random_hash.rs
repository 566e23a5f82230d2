//! `random[/<source>][/<bytes>]` (random bytes from the OS CSPRNG, base64 or hex) and
//! `hash[/<algorithm>]` (a digest of base64 `input`, hex or base64). Neither touches storage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::fields;
use super::material;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;

/// The most bytes `random` returns at once (Vault's limit).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;

fn encode(bytes: &[u8], format: &str) -> Result<String, LogicalError> {
    match format {
        "base64" => Ok(B64.encode(bytes)),
        "hex" => Ok(hex::encode(bytes)),
        other => Err(LogicalError::invalid(format!(
            "unsupported encoding format {other}; must be \"hex\" or \"base64\""
        ))),
    }
}

fn format_field(input: &Map<String, Value>, default: &str) -> Result<String, LogicalError> {
    Ok(fields::string_field(input, "format")?.unwrap_or_else(|| default.to_string()))
}

/// `POST random[/<source>][/<bytes>]`.
pub(super) fn random(request: &Request, rest: &[&str]) -> Result<Response, LogicalError> {
    let input = fields::input(request);
    let (source, path_bytes) = match rest {
        [] => (None, None),
        [one] if one.bytes().all(|b| b.is_ascii_digit()) => (None, Some(*one)),
        [one] => (Some(*one), None),
        [source, bytes] => (Some(*source), Some(*bytes)),
        _ => return Err(LogicalError::UnsupportedPath),
    };
    if let Some(source) = source
        && !matches!(source, "platform" | "seal" | "all")
    {
        return Err(LogicalError::invalid(format!(
            "unsupported entropy source {source:?}; must be \"platform\", \"seal\" or \"all\""
        )));
    }
    let count = match path_bytes {
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| LogicalError::invalid("bytes must be a number"))?,
        None => fields::u64_field(&input, "bytes")?.unwrap_or(32),
    };
    if count == 0 {
        return Err(LogicalError::invalid("number of bytes must be positive"));
    }
    if count > MAX_RANDOM_BYTES {
        return Err(LogicalError::invalid(format!(
            "number of bytes cannot be greater than {MAX_RANDOM_BYTES}"
        )));
    }
    let format = format_field(&input, "base64")?;
    // Check the format before drawing randomness.
    encode(&[], &format)?;
    let bytes = material::random(count as usize);
    Ok(Response::from_value(
        json!({ "random_bytes": encode(&bytes, &format)? }),
    ))
}

/// `POST hash[/<algorithm>]`.
pub(super) fn hash(
    request: &Request,
    path_algorithm: Option<&str>,
) -> Result<Response, LogicalError> {
    let input = fields::input(request);
    let data = fields::required_base64(&input, "input", "missing input to hash")?;
    let alg = super::path_hmac::algorithm(&input, path_algorithm, "algorithm")?;
    let format = format_field(&input, "hex")?;
    let sum = encode(&alg.digest(&data), &format)?;
    Ok(Response::from_value(json!({ "sum": sum })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::test_util::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn random_bytes_in_both_formats_and_limits() {
        let mut storage = MemoryStorage::default();
        let default = post(&mut storage, "random", json!({}));
        assert_eq!(unb64(&default["random_bytes"]).len(), 32);
        let hex = post(&mut storage, "random/16", json!({"format": "hex"}));
        assert_eq!(hex["random_bytes"].as_str().unwrap().len(), 32);
        let sourced = post(&mut storage, "random/platform/8", json!({}));
        assert_eq!(unb64(&sourced["random_bytes"]).len(), 8);
        let body = post(&mut storage, "random/all", json!({"bytes": 4}));
        assert_eq!(unb64(&body["random_bytes"]).len(), 4);
        post_err(&mut storage, "random", json!({"bytes": 0}));
        post_err(&mut storage, "random", json!({"bytes": 200_000}));
        post_err(&mut storage, "random", json!({"format": "base32"}));
        post_err(&mut storage, "random/dice", json!({}));
        assert!(storage.keys().is_empty());
    }

    #[test]
    fn hash_known_vectors() {
        let mut storage = MemoryStorage::default();
        let sum = post(&mut storage, "hash", json!({"input": b64(b"abc")}));
        assert_eq!(
            sum["sum"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let sha3 = post(
            &mut storage,
            "hash/sha3-256",
            json!({"input": b64(b""), "format": "hex"}),
        );
        assert_eq!(
            sha3["sum"],
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        let b = post(
            &mut storage,
            "hash",
            json!({"input": b64(b"abc"), "algorithm": "sha2-512", "format": "base64"}),
        );
        assert_eq!(unb64(&b["sum"]).len(), 64);
        post_err(&mut storage, "hash", json!({}));
        post_err(&mut storage, "hash/md5", json!({"input": b64(b"abc")}));
        post_err(&mut storage, "hash", json!({"input": "**"}));
    }
}
