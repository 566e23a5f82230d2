//! Codec-encoded values in an auth method's storage view, and the checks that keep names taken
//! from request paths safe to use inside storage keys.

use serde::Serialize;
use serde::de::DeserializeOwned;
use strongroom_raft::codec;

use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::StorageError;

/// Reads and decodes the value at `key`.
pub fn load<T: DeserializeOwned>(
    storage: &mut dyn Storage,
    key: &str,
) -> Result<Option<T>, LogicalError> {
    match storage.get(key)? {
        None => Ok(None),
        Some(bytes) => codec::decode(&bytes)
            .map(Some)
            .map_err(|_| LogicalError::Storage(StorageError::Corrupt(key.to_string()))),
    }
}

/// Encodes and stages `value` at `key`.
pub fn save<T: Serialize>(
    storage: &mut dyn Storage,
    key: &str,
    value: &T,
) -> Result<(), LogicalError> {
    Ok(storage.put(key, codec::encode(value))?)
}

/// The longest role or user name accepted (Vault: "less than 4096 bytes").
pub const MAX_NAME_LEN: usize = 4095;

/// Checks a role or user name with Vault's generic name rule: ASCII letters, digits and `_`
/// at both ends, also `-` and `.` inside; at most [`MAX_NAME_LEN`] bytes. Such a name never
/// holds `/` or `..`, so it is safe inside a storage key. `what` names it in the error.
pub fn validate_name(name: &str, what: &str) -> Result<(), LogicalError> {
    let word = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let bytes = name.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(LogicalError::invalid(format!("missing {what}")));
    };
    let inner_ok = bytes
        .iter()
        .all(|&byte| word(byte) || byte == b'-' || byte == b'.');
    if name.len() > MAX_NAME_LEN || !word(first) || !word(last) || !inner_ok {
        return Err(LogicalError::invalid(format!(
            "invalid {what}: use letters, digits, '_', and '-' or '.' inside, at most \
             {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn names_follow_vaults_generic_rule() {
        for good in ["a", "dev", "web-app.prod_1", "A9"] {
            assert!(validate_name(good, "role_name").is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "..",
            ".a",
            "a.",
            "a/b",
            "a b",
            "-a",
            "a\u{0}",
            "é",
            long.as_str(),
        ] {
            assert!(validate_name(bad, "role_name").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_round_trip_and_corruption_is_reported() {
        let mut storage = MemoryStorage::default();
        save(&mut storage, "k", &vec![1u32, 2]).unwrap();
        assert_eq!(
            load::<Vec<u32>>(&mut storage, "k").unwrap(),
            Some(vec![1, 2])
        );
        assert_eq!(load::<Vec<u32>>(&mut storage, "none").unwrap(), None);
        storage.put("bad", vec![9, 9]).unwrap();
        assert!(load::<Vec<u32>>(&mut storage, "bad").is_err());
    }
}
