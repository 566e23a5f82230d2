//! Request fields as Vault's auth methods accept them: lists as JSON arrays or comma-separated
//! strings (hvac sends the latter), booleans and integers as JSON values or strings, durations as
//! seconds or Go-style strings. Every error names the field and never echoes its value.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::duration;

fn bad(name: &str, expected: &str) -> LogicalError {
    LogicalError::invalid(format!("{name} must be {expected}"))
}

/// A string field; `None` when absent or null.
pub fn string(request: &Request, name: &str) -> Result<Option<String>, LogicalError> {
    match request.field(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(bad(name, "a string")),
    }
}

/// A string field borrowed from the body (no copy: used for secrets such as passwords and secret
/// IDs, which then live only in the request). Query parameters are not consulted.
pub fn body_str<'a>(request: &'a Request, name: &str) -> Result<Option<&'a str>, LogicalError> {
    match request.data.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(bad(name, "a string")),
    }
}

/// A list of strings: a JSON array of strings or one comma-separated string. Items are trimmed
/// and empty ones dropped.
pub fn string_list(value: &Value, name: &str) -> Result<Vec<String>, LogicalError> {
    let items: Vec<String> = match value {
        Value::Null => Vec::new(),
        Value::String(text) => text.split(',').map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(bad(name, "a list of strings or a comma-separated string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad(name, "a list of strings or a comma-separated string")),
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

/// A boolean: JSON `true`/`false` or the strings `"true"`/`"false"` (also `1`/`0`, `t`/`f`, as Go's
/// `strconv.ParseBool`).
pub fn boolean(value: &Value, name: &str) -> Result<bool, LogicalError> {
    match value {
        Value::Bool(flag) => Ok(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => Ok(true),
            "false" | "f" | "0" => Ok(false),
            _ => Err(bad(name, "a boolean")),
        },
        Value::Number(number) => match number.as_u64() {
            Some(1) => Ok(true),
            Some(0) => Ok(false),
            _ => Err(bad(name, "a boolean")),
        },
        _ => Err(bad(name, "a boolean")),
    }
}

/// A non-negative integer: a JSON number or a numeric string.
pub fn uint(value: &Value, name: &str) -> Result<u64, LogicalError> {
    match value {
        Value::Number(number) => number
            .as_u64()
            .ok_or_else(|| bad(name, "a non-negative integer")),
        Value::String(text) if text.trim().is_empty() => Ok(0),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| bad(name, "a non-negative integer")),
        _ => Err(bad(name, "a non-negative integer")),
    }
}

/// A duration in seconds: a number of seconds or a Go-style string (`"90s"`, `"1h30m"`).
pub fn seconds(value: &Value, name: &str) -> Result<u64, LogicalError> {
    duration::parse_seconds(value)
        .map_err(|reason| LogicalError::invalid(format!("{name}: {reason}")))
}

/// The longest policy name accepted in a role or user.
const MAX_POLICY_NAME_LEN: usize = 128;

/// A policy list as Vault normalizes it: trimmed, lowercased, deduplicated and sorted. `root` is
/// refused: auth methods cannot create root tokens.
pub fn policies(value: &Value, name: &str) -> Result<Vec<String>, LogicalError> {
    let mut list: Vec<String> = string_list(value, name)?
        .into_iter()
        .map(|policy| policy.to_lowercase())
        .collect();
    list.sort();
    list.dedup();
    for policy in &list {
        if policy == "root" {
            return Err(LogicalError::invalid(
                "auth methods cannot create root tokens: \"root\" is not allowed in policies",
            ));
        }
        let forbidden = |c: char| c == '/' || c == '\\' || c.is_whitespace() || c.is_control();
        if policy.len() > MAX_POLICY_NAME_LEN || policy.contains("..") || policy.contains(forbidden)
        {
            return Err(LogicalError::invalid(format!(
                "{name}: invalid policy name (no '/', '\\', '..', spaces or control characters; \
                 at most {MAX_POLICY_NAME_LEN} bytes)"
            )));
        }
    }
    Ok(list)
}

/// Metadata as a map of strings: a JSON-encoded object in a string (what Vault documents and hvac
/// sends) or a JSON object.
pub fn metadata(value: &Value, name: &str) -> Result<BTreeMap<String, String>, LogicalError> {
    let invalid = || {
        bad(
            name,
            "a JSON object of strings (or such an object encoded as a string)",
        )
    };
    let object = match value {
        Value::Null => return Ok(BTreeMap::new()),
        Value::String(text) if text.trim().is_empty() => return Ok(BTreeMap::new()),
        Value::String(text) => serde_json::from_str::<Value>(text).map_err(|_| invalid())?,
        other => other.clone(),
    };
    let Value::Object(map) = object else {
        return Err(invalid());
    };
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => Ok((key, text)),
            _ => Err(invalid()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_accept_arrays_and_comma_strings() {
        assert_eq!(
            string_list(&json!("a, b,,c"), "x").unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(string_list(&json!(["a", " b "]), "x").unwrap(), ["a", "b"]);
        assert!(string_list(&json!(""), "x").unwrap().is_empty());
        assert!(string_list(&json!([1]), "x").is_err());
        assert!(string_list(&json!({"a": 1}), "x").is_err());
    }

    #[test]
    fn scalars_accept_strings_too() {
        assert!(boolean(&json!("true"), "b").unwrap());
        assert!(!boolean(&json!(false), "b").unwrap());
        assert!(boolean(&json!("yes"), "b").is_err());
        assert_eq!(uint(&json!("12"), "n").unwrap(), 12);
        assert_eq!(uint(&json!(3), "n").unwrap(), 3);
        assert!(uint(&json!(-1), "n").is_err());
        assert!(uint(&json!("x"), "n").is_err());
        assert_eq!(seconds(&json!("1h"), "t").unwrap(), 3600);
        assert_eq!(seconds(&json!(30), "t").unwrap(), 30);
        assert!(seconds(&json!("soon"), "t").is_err());
    }

    #[test]
    fn policies_are_normalized_and_root_is_refused() {
        assert_eq!(
            policies(&json!("Dev, ops,dev"), "token_policies").unwrap(),
            ["dev", "ops"]
        );
        assert!(policies(&json!(["root"]), "p").is_err());
        assert!(policies(&json!(["a/b"]), "p").is_err());
        assert!(policies(&json!(["../x"]), "p").is_err());
    }

    #[test]
    fn metadata_accepts_encoded_and_plain_objects() {
        let parsed = metadata(&json!("{\"tag\": \"prod\"}"), "metadata").unwrap();
        assert_eq!(parsed.get("tag").map(String::as_str), Some("prod"));
        assert_eq!(metadata(&json!({"a": "b"}), "m").unwrap().len(), 1);
        assert!(metadata(&json!(""), "m").unwrap().is_empty());
        assert!(metadata(&json!("{not json"), "m").is_err());
        assert!(metadata(&json!({"a": 1}), "m").is_err());
        assert!(metadata(&json!("[1]"), "m").is_err());
    }

    #[test]
    fn body_strings_are_borrowed_and_typed() {
        let mut request = Request::default();
        request.data.insert("password".into(), json!("pw"));
        request.data.insert("n".into(), json!(1));
        assert_eq!(body_str(&request, "password").unwrap(), Some("pw"));
        assert_eq!(body_str(&request, "missing").unwrap(), None);
        assert!(body_str(&request, "n").is_err());
    }
}
