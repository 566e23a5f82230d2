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

/// `#[serde(with = "crate::codec::byte_vecs")]` for a `Vec<Vec<u8>>`: each inner vector as serde
/// bytes (as `serde_bytes` does for one `Vec<u8>`). Serde's default treats a `Vec<u8>` as a
/// sequence of `u8`, visited one byte at a time; in bincode both forms are the same bytes (a
/// varint length, then the raw bytes), so this changes the cost, not the format.
pub mod byte_vecs {
    use serde::Deserialize;
    use serde::Deserializer;
    use serde::Serializer;
    use serde_bytes::ByteBuf;
    use serde_bytes::Bytes;

    /// Serializes each vector as bytes.
    ///
    /// # Errors
    ///
    /// The serializer's.
    pub fn serialize<S: Serializer>(vecs: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(vecs.iter().map(|bytes| Bytes::new(bytes)))
    }

    /// Deserializes what [`serialize`] wrote (or a sequence of `u8` sequences: same bincode).
    ///
    /// # Errors
    ///
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        let bufs = Vec::<ByteBuf>::deserialize(deserializer)?;
        Ok(bufs.into_iter().map(ByteBuf::into_vec).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// The byte fields' `serde_bytes` / [`byte_vecs`] encoding is bincode's encoding of a plain
    /// `Vec<u8>` byte for byte, so logs, state machines and snapshots written before the change
    /// read the same after it.
    #[test]
    fn byte_fields_keep_the_plain_vec_encoding() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Plain {
            one: Vec<u8>,
            many: Vec<Vec<u8>>,
        }
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Fast {
            #[serde(with = "serde_bytes")]
            one: Vec<u8>,
            #[serde(with = "byte_vecs")]
            many: Vec<Vec<u8>>,
        }
        let long: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let plain = Plain {
            one: long.clone(),
            many: vec![vec![], vec![7; 300], long.clone()],
        };
        let fast = Fast {
            one: long.clone(),
            many: vec![vec![], vec![7; 300], long],
        };
        let bytes = encode(&plain);
        assert_eq!(bytes, encode(&fast));
        assert_eq!(decode::<Fast>(&bytes).unwrap(), fast);
        assert_eq!(decode::<Plain>(&encode(&fast)).unwrap(), plain);
    }

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
