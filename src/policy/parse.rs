//! Parsing policies: Vault's HCL syntax (and its JSON form) into [`Policy`] rules, with errors that
//! say where and what is wrong.
//!
//! ```hcl
//! path "secret/data/app/*" {
//!   capabilities = ["read", "list"]
//!   allowed_parameters  = { "*" = [] }
//!   denied_parameters   = { "admin" = [] }
//!   required_parameters = ["owner"]
//! }
//! ```
//! The legacy `policy = "read"` (deny, read, write, sudo) inside a path block is accepted too.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::capability::Capabilities;

/// The largest policy document accepted.
pub const MAX_POLICY_BYTES: usize = 128 * 1024;

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is not valid HCL or JSON (the message carries the line and column).
    #[error("failed to parse policy: {0}")]
    Syntax(String),
    /// A rule is well-formed but not meaningful.
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// The policy name is not allowed.
    #[error("invalid policy name: {0}")]
    Name(String),
}

/// One `path` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// The path pattern: exact, with `+` segment wildcards, and/or a trailing `*` glob.
    pub pattern: String,
    /// What the rule grants.
    pub capabilities: Capabilities,
    /// Parameters a request may carry, with allowed values (`[]`: any); `None` = no restriction.
    pub allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// Parameters (and values; `[]`: any value) a request must not carry.
    pub denied_parameters: BTreeMap<String, Vec<Value>>,
    /// Parameters a request must carry.
    pub required_parameters: Vec<String>,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The policy's name.
    pub name: String,
    /// Its rules, one per path pattern.
    pub rules: Vec<PathRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    path: BTreeMap<String, Block>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Block {
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    #[serde(default)]
    denied_parameters: Option<BTreeMap<String, Vec<Value>>>,
    #[serde(default)]
    required_parameters: Vec<String>,
    #[serde(default)]
    min_wrapping_ttl: Option<Value>,
    #[serde(default)]
    max_wrapping_ttl: Option<Value>,
}

/// Checks a policy name: 1 to 128 characters from `[A-Za-z0-9._-]`, not `.`-only, not `root`.
pub fn validate_name(name: &str) -> Result<(), PolicyError> {
    if name.is_empty() || name.len() > 128 {
        return Err(PolicyError::Name("must be 1 to 128 characters".into()));
    }
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
    {
        return Err(PolicyError::Name(
            "only letters, digits, '-', '_' and '.' are allowed".into(),
        ));
    }
    if name.chars().all(|ch| ch == '.') || name.contains("..") {
        return Err(PolicyError::Name(
            "'.' alone and '..' anywhere are not allowed".into(),
        ));
    }
    Ok(())
}

/// Parses a policy document (JSON if it starts with `{`, HCL otherwise).
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::Invalid(format!(
            "policy is larger than {MAX_POLICY_BYTES} bytes"
        )));
    }
    let document: Document = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|err| {
            PolicyError::Syntax(format!(
                "line {} column {}: {err}",
                err.line(),
                err.column()
            ))
        })?
    } else {
        hcl::from_str(text).map_err(|err| PolicyError::Syntax(err.to_string()))?
    };
    let _ = document.name;
    let mut rules = Vec::with_capacity(document.path.len());
    for (pattern, block) in document.path {
        rules.push(rule(pattern, block)?);
    }
    Ok(Policy {
        name: name.to_string(),
        rules,
    })
}

fn rule(pattern: String, block: Block) -> Result<PathRule, PolicyError> {
    let invalid = |what: String| PolicyError::Invalid(format!("path {pattern:?}: {what}"));
    let body = pattern.strip_suffix('*').unwrap_or(&pattern);
    if body.contains('*') {
        return Err(invalid("'*' is only allowed at the end of a path".into()));
    }
    if pattern.split('/').any(|segment| segment == "..") {
        return Err(invalid("'..' segments are not allowed".into()));
    }
    let mut capabilities = Capabilities::NONE;
    for name in &block.capabilities {
        let capability = Capabilities::parse(name)
            .ok_or_else(|| invalid(format!("unknown capability {name:?}")))?;
        capabilities = capabilities.union(capability);
    }
    if let Some(legacy) = &block.policy {
        capabilities = capabilities.union(match legacy.as_str() {
            "deny" => Capabilities::DENY,
            "read" => Capabilities::READ.union(Capabilities::LIST),
            "write" => Capabilities::READ
                .union(Capabilities::LIST)
                .union(Capabilities::CREATE)
                .union(Capabilities::UPDATE)
                .union(Capabilities::DELETE),
            "sudo" => Capabilities::READ
                .union(Capabilities::LIST)
                .union(Capabilities::CREATE)
                .union(Capabilities::UPDATE)
                .union(Capabilities::DELETE)
                .union(Capabilities::SUDO),
            other => return Err(invalid(format!("unknown policy {other:?}"))),
        });
    }
    let _ = (block.min_wrapping_ttl, block.max_wrapping_ttl);
    Ok(PathRule {
        pattern,
        capabilities,
        allowed_parameters: block.allowed_parameters,
        denied_parameters: block.denied_parameters.unwrap_or_default(),
        required_parameters: block.required_parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hcl_and_json_alike() {
        let hcl = r#"
            path "secret/data/*" {
              capabilities = ["read", "list"]
            }
            path "secret/data/admin" {
              capabilities = ["deny"]
              required_parameters = ["owner"]
              allowed_parameters = { "owner" = [], "mode" = ["a", "b"] }
            }
        "#;
        let policy = parse("p", hcl).unwrap();
        assert_eq!(policy.rules.len(), 2);
        let json = r#"{"path": {"secret/data/*": {"capabilities": ["read", "list"]},
                       "secret/data/admin": {"capabilities": ["deny"], "required_parameters": ["owner"],
                                             "allowed_parameters": {"owner": [], "mode": ["a", "b"]}}}}"#;
        assert_eq!(parse("p", json).unwrap(), policy);
    }

    #[test]
    fn refuses_bad_policies_with_a_reason() {
        let unknown = parse("p", r#"path "a/*" { capabilities = ["read", "admin"] }"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown capability \"admin\""),
            "{unknown}"
        );
        let syntax = parse("p", "path \"a\" { capabilities = [\"read\" }").unwrap_err();
        assert!(matches!(syntax, PolicyError::Syntax(_)), "{syntax}");
        assert!(
            syntax.to_string().contains('1'),
            "names a position: {syntax}"
        );
        assert!(parse("p", r#"path "a/*/b" { capabilities = ["read"] }"#).is_err());
        assert!(parse("p", r#"path "a/../b" { capabilities = ["read"] }"#).is_err());
        assert!(parse("p", r#"path "a" { capabilities = ["read"] bogus = 1 }"#).is_err());
        assert!(parse("p", &"#".repeat(MAX_POLICY_BYTES + 1)).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("app-read_1.v2").is_ok());
        for bad in ["", "..", ".", "a..b", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
