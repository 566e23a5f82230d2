//! The one place that turns values into bytes and back: `bincode` 2 (serde mode, standard config)
//! behind a leading format-version byte.
//!
//! Every value this project persists (log entries, vote, state-machine records, journal entries,
//! snapshot frames, the vault's own stored structures) and every opaque payload it ships between
//! nodes goes through [`encode`] and [`decode`], so that a later change of format is a new version
//! byte and a migration, not silent corruption.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format version written as the first byte of every encoded value.
pub const FORMAT_VERSION: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The input was empty: not even a version byte.
    #[error("empty input: missing format version byte")]
    Empty,
    /// The version byte names a format this build does not know.
    #[error("unsupported format version {0} (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u8),
    /// The bytes after the version byte are not a valid encoding of the expected type.
    #[error("malformed value: {0}")]
    Malformed(String),
    /// Bytes were left over after the value was decoded.
    #[error("malformed value: {0} trailing bytes")]
    Trailing(usize),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` as `[FORMAT_VERSION][bincode(value)]`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_VERSION);
    encode_into(value, &mut out);
    out
}

/// Appends `[FORMAT_VERSION][bincode(value)]` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail for the serde data model we use (no maps with non-string keys
    // are rejected by bincode, and a Vec writer has no I/O errors); an error here is a bug.
    if let Err(err) = bincode::serde::encode_into_std_write(value, out, config()) {
        panic!("bincode encoding into a Vec failed: {err}");
    }
}

/// Decodes a value written by [`encode`], checking the version byte and that nothing trails it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::UnsupportedVersion(version));
    }
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(body, config())
        .map_err(|err| CodecError::Malformed(err.to_string()))?;
    if used != body.len() {
        return Err(CodecError::Trailing(body.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        revision: u64,
        value: Vec<u8>,
    }

    #[test]
    fn round_trips_with_version_byte() {
        let sample = Sample {
            name: "a/b".into(),
            revision: 7,
            value: vec![1, 2, 3],
        };
        let bytes = encode(&sample);
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample);
    }

    #[test]
    fn rejects_unknown_version_empty_and_trailing_bytes() {
        let mut bytes = encode(&5u64);
        assert!(matches!(decode::<u64>(&[]), Err(CodecError::Empty)));
        bytes[0] = 99;
        assert!(matches!(
            decode::<u64>(&bytes),
            Err(CodecError::UnsupportedVersion(99))
        ));
        let mut bytes = encode(&5u64);
        bytes.push(0);
        assert!(matches!(
            decode::<u64>(&bytes),
            Err(CodecError::Trailing(1))
        ));
        assert!(matches!(
            decode::<Sample>(&[FORMAT_VERSION, 0xff]),
            Err(CodecError::Malformed(_))
        ));
    }
}
