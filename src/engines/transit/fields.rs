//! Reading request fields the way Vault's transit does: booleans and integers as JSON values or
//! strings, durations as Go strings or seconds, binary inputs as standard base64, and
//! `batch_input` as an array of objects (at most [`MAX_BATCH`] items).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Map;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::duration;

/// The largest `batch_input` accepted: bigger batches are refused with a 400 before any work.
pub const MAX_BATCH: usize = 10_000;

/// The request's fields as one object: the body, plus query parameters the body lacks.
pub fn input(request: &Request) -> Map<String, Value> {
    let mut map = request.data.clone();
    for (key, value) in &request.query {
        map.entry(key.clone())
            .or_insert_with(|| Value::String(value.clone()));
    }
    map
}

/// A non-null field.
fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).filter(|value| !value.is_null())
}

/// A boolean field (`true`, `"true"`, `1`, `"1"`...), `default` when absent.
pub fn bool_field(
    map: &Map<String, Value>,
    name: &str,
    default: bool,
) -> Result<bool, LogicalError> {
    let Some(value) = get(map, name) else {
        return Ok(default);
    };
    let invalid = || LogicalError::invalid(format!("{name} must be a boolean"));
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::Number(number) => match number.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(invalid()),
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Ok(true),
            "false" | "0" | "f" | "" => Ok(false),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// An optional non-negative integer field.
pub fn u64_field(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, LogicalError> {
    let Some(value) = get(map, name) else {
        return Ok(None);
    };
    let invalid = || LogicalError::invalid(format!("{name} must be a non-negative integer"));
    match value {
        Value::Number(number) => number.as_u64().map(Some).ok_or_else(invalid),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => text.trim().parse().map(Some).map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// An optional integer field that must fit a key version.
pub fn version_field(map: &Map<String, Value>, name: &str) -> Result<Option<u32>, LogicalError> {
    match u64_field(map, name)? {
        None => Ok(None),
        Some(value) => u32::try_from(value)
            .map(Some)
            .map_err(|_| LogicalError::invalid(format!("{name} is out of range"))),
    }
}

/// An optional string field (numbers are accepted and printed).
pub fn string_field(map: &Map<String, Value>, name: &str) -> Result<Option<String>, LogicalError> {
    match get(map, name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(LogicalError::invalid(format!("{name} must be a string"))),
    }
}

/// An optional duration field in seconds (`"1h"`, `"90s"`, `3600`).
pub fn duration_field(map: &Map<String, Value>, name: &str) -> Result<Option<u64>, LogicalError> {
    match get(map, name) {
        None => Ok(None),
        Some(value) => duration::parse_seconds(value)
            .map(Some)
            .map_err(|err| LogicalError::invalid(format!("{name}: {err}"))),
    }
}

/// An optional base64 field, decoded (empty when absent).
pub fn base64_field(
    map: &Map<String, Value>,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, LogicalError> {
    match get(map, name) {
        None => Ok(Zeroizing::new(Vec::new())),
        Some(Value::String(text)) => B64
            .decode(text.trim())
            .map(Zeroizing::new)
            .map_err(|_| LogicalError::invalid(format!("failed to base64-decode {name}"))),
        Some(_) => Err(LogicalError::invalid(format!(
            "{name} must be a base64 string"
        ))),
    }
}

/// A required base64 field; `missing` is the error when it is absent.
pub fn required_base64(
    map: &Map<String, Value>,
    name: &str,
    missing: &str,
) -> Result<Zeroizing<Vec<u8>>, LogicalError> {
    if get(map, name).is_none() {
        return Err(LogicalError::invalid(missing));
    }
    base64_field(map, name)
}

/// `batch_input` as a list of objects, or `None` when the request is not a batch.
pub fn batch(map: &Map<String, Value>) -> Result<Option<Vec<Map<String, Value>>>, LogicalError> {
    let Some(value) = get(map, "batch_input") else {
        return Ok(None);
    };
    let parsed;
    let items = match value {
        Value::Array(items) => items,
        // Some clients send the batch as a JSON string.
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|_| LogicalError::invalid("batch_input must be a list of objects"))?;
            match &parsed {
                Value::Array(items) => items,
                _ => {
                    return Err(LogicalError::invalid(
                        "batch_input must be a list of objects",
                    ));
                }
            }
        }
        _ => {
            return Err(LogicalError::invalid(
                "batch_input must be a list of objects",
            ));
        }
    };
    if items.is_empty() {
        return Err(LogicalError::invalid("missing batch input to process"));
    }
    if items.len() > MAX_BATCH {
        return Err(LogicalError::invalid(format!(
            "batch_input has {} items; at most {MAX_BATCH} are allowed per request",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(LogicalError::invalid("batch_input items must be objects")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Copies an item's `reference` (if any) into a batch result, as Vault does.
pub fn with_reference(item: &Map<String, Value>, mut result: Map<String, Value>) -> Value {
    if let Some(reference) = item.get("reference") {
        result.insert("reference".into(), reference.clone());
    }
    Value::Object(result)
}

/// A batch result carrying an error message.
pub fn error_item(item: &Map<String, Value>, err: &LogicalError) -> Value {
    let mut result = Map::new();
    result.insert("error".into(), Value::String(err.to_string()));
    with_reference(item, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn lenient_scalars() {
        let m = map(json!({"a": "true", "b": 1, "c": "7", "d": null, "e": "1h", "f": "x"}));
        assert!(bool_field(&m, "a", false).unwrap());
        assert!(bool_field(&m, "b", false).unwrap());
        assert!(!bool_field(&m, "d", false).unwrap());
        assert!(bool_field(&m, "f", false).is_err());
        assert_eq!(u64_field(&m, "c").unwrap(), Some(7));
        assert_eq!(u64_field(&m, "d").unwrap(), None);
        assert!(u64_field(&m, "f").is_err());
        assert_eq!(duration_field(&m, "e").unwrap(), Some(3_600));
        assert!(version_field(&map(json!({"v": 5_000_000_000u64})), "v").is_err());
    }

    #[test]
    fn base64_inputs() {
        let m = map(json!({"p": "aGVsbG8=", "bad": "***", "n": 5}));
        assert_eq!(base64_field(&m, "p").unwrap().as_slice(), b"hello");
        assert!(base64_field(&m, "bad").is_err());
        assert!(base64_field(&m, "n").is_err());
        assert!(base64_field(&m, "absent").unwrap().is_empty());
        assert!(required_base64(&m, "absent", "missing").is_err());
    }

    #[test]
    fn batch_limits() {
        assert!(batch(&map(json!({}))).unwrap().is_none());
        assert!(batch(&map(json!({"batch_input": []}))).is_err());
        assert!(batch(&map(json!({"batch_input": [1]}))).is_err());
        let big: Vec<Value> = (0..=MAX_BATCH).map(|_| json!({})).collect();
        assert!(batch(&map(json!({"batch_input": big}))).is_err());
        let items = batch(&map(json!({"batch_input": "[{\"a\":1}]"})))
            .unwrap()
            .unwrap();
        assert_eq!(items.len(), 1);
    }
}
