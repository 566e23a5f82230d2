//! Input rules both edges share: how a request path is normalized and how a JSON body is parsed.
//! Error messages never quote the input (a body may hold a secret).

use serde_json::Map;
use serde_json::Value;

/// Why input was refused; each edge renders it in its own format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A path with a `.` or `..` segment.
    #[error("invalid path: '.' and '..' segments are not allowed")]
    DotSegment,
    /// A path with an empty segment (`a//b`).
    #[error("invalid path: empty segments ('//') are not allowed")]
    EmptySegment,
    /// A path with a control character (raw or percent-encoded, such as `%00`).
    #[error("invalid path: control characters are not allowed")]
    ControlCharacter,
    /// A body that is not JSON.
    #[error("failed to parse JSON input: {0}")]
    Malformed(String),
    /// JSON that is not an object.
    #[error("request body must be a JSON object")]
    NotAnObject,
}

/// A boolean query parameter the way Vault (Go's `strconv.ParseBool`) reads it: `1`, `t`, `T`,
/// `true`, `True`, `TRUE` and their false counterparts; `None` for anything else. Vault clients
/// send Python's `True` and Go's `true` alike.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "True" | "TRUE" => Some(true),
        "0" | "f" | "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Checks and normalizes a request path: one leading and one trailing slash are dropped (the
/// trailing one kept when `keep_trailing_slash`: LIST distinguishes `metadata/` from
/// `metadata/app`). Refuses `.` and `..` segments, empty segments (`a//b`: a client that builds
/// such a path has a bug, and quietly serving `a/b` instead could write where it did not mean to)
/// and control characters.
pub fn normalize_path(path: &str, keep_trailing_slash: bool) -> Result<String, InputError> {
    if path.chars().any(char::is_control) {
        return Err(InputError::ControlCharacter);
    }
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if segments
        .iter()
        .any(|segment| *segment == "." || *segment == "..")
    {
        return Err(InputError::DotSegment);
    }
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(InputError::EmptySegment);
    }
    let mut normalized = segments.join("/");
    if keep_trailing_slash && path.ends_with('/') && !normalized.is_empty() {
        normalized.push('/');
    }
    Ok(normalized)
}

/// Parses a JSON object body; an empty (or all-whitespace) body is an empty object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(InputError::NotAnObject),
        Err(err) => {
            let what = match err.classify() {
                serde_json::error::Category::Io => "I/O error",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "invalid data",
                serde_json::error::Category::Eof => "unexpected end of input",
            };
            Err(InputError::Malformed(format!(
                "{what} at line {} column {}",
                err.line(),
                err.column()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_parse_like_go() {
        for yes in ["1", "t", "True", "TRUE", "true"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["0", "f", "False", "false"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        for junk in ["", "yes", "tRuE", "2"] {
            assert_eq!(parse_bool(junk), None, "{junk}");
        }
    }

    #[test]
    fn paths_are_normalized_and_climbing_is_refused() {
        assert_eq!(
            normalize_path("/secret/data/app", false).unwrap(),
            "secret/data/app"
        );
        for doubled in ["secret//data/app", "secret/data/app//", "//secret", "a///b"] {
            assert_eq!(
                normalize_path(doubled, true),
                Err(InputError::EmptySegment),
                "{doubled}"
            );
        }
        assert_eq!(
            normalize_path("secret/data/a\u{0}b", false),
            Err(InputError::ControlCharacter)
        );
        assert_eq!(normalize_path("", true).unwrap(), "");
        assert_eq!(normalize_path("/", true).unwrap(), "");
        assert_eq!(
            normalize_path("secret/metadata/", true).unwrap(),
            "secret/metadata/"
        );
        assert_eq!(
            normalize_path("secret/metadata/", false).unwrap(),
            "secret/metadata"
        );
        assert_eq!(
            normalize_path("secret/../sys/seal", false),
            Err(InputError::DotSegment)
        );
        assert_eq!(normalize_path("./x", false), Err(InputError::DotSegment));
    }

    #[test]
    fn bodies_must_be_json_objects_and_errors_hide_the_input() {
        assert!(json_object(b"").unwrap().is_empty());
        assert!(json_object(b"{\"a\":1}").is_ok());
        assert_eq!(json_object(b"[1]"), Err(InputError::NotAnObject));
        let err = json_object(b"{\"password\": \"hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
