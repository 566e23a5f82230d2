//! The ACL: a token's policies merged into one matcher that decides whether an operation on a
//! path (with its parameters) is allowed, with Vault's semantics:
//!
//! - Rules for the same pattern from several policies are merged (capabilities united; a `deny`
//!   in any of them makes the merged rule deny everything).
//! - An exact pattern wins; otherwise the highest-priority matching pattern applies, where a
//!   pattern is lower priority if (in order) its first wildcard (`+` or `*`) comes earlier, it
//!   ends in `*` and the other does not, it has more `+` segments, it is shorter, or it sorts
//!   lower. Only that one rule decides.
//! - `+` matches exactly one path segment; `*` (last only) matches any suffix.
//! - Parameter constraints (`allowed_parameters`, `denied_parameters`, `required_parameters`)
//!   apply to the top-level body fields of create, update and patch requests.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::collections::HashMap;

use serde_json::Map;
use serde_json::Value;

use super::capability::Capabilities;
use super::parse::Policy;
use crate::logical::Operation;

/// One pattern's rule after merging every policy's rule for it.
#[derive(Debug, Clone, Default)]
struct Rule {
    capabilities: Capabilities,
    allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    denied_parameters: BTreeMap<String, Vec<Value>>,
    required_parameters: BTreeSet<String>,
}

impl Rule {
    fn merge(&mut self, other: &super::parse::PathRule) {
        self.capabilities = self.capabilities.union(other.capabilities);
        if let Some(allowed) = &other.allowed_parameters {
            let merged = self.allowed_parameters.get_or_insert_with(BTreeMap::new);
            for (key, values) in allowed {
                merged
                    .entry(key.clone())
                    .or_default()
                    .extend(values.iter().cloned());
            }
        }
        for (key, values) in &other.denied_parameters {
            self.denied_parameters
                .entry(key.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
        self.required_parameters
            .extend(other.required_parameters.iter().cloned());
    }
}

/// The compiled access rules of a set of policies.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Rule>,
    wildcards: Vec<(String, Rule)>,
}

impl Acl {
    /// The ACL of the `root` policy: everything is allowed.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Merges `policies` (the `root` policy name makes it [`Acl::root`]).
    pub fn new(policies: &[Policy]) -> Acl {
        if policies.iter().any(|policy| policy.name == "root") {
            return Acl::root();
        }
        let mut exact: HashMap<String, Rule> = HashMap::new();
        let mut wildcards: BTreeMap<String, Rule> = BTreeMap::new();
        for rule in policies.iter().flat_map(|policy| &policy.rules) {
            let target = if is_wildcard(&rule.pattern) {
                wildcards.entry(rule.pattern.clone()).or_default()
            } else {
                exact.entry(rule.pattern.clone()).or_default()
            };
            target.merge(rule);
        }
        Acl {
            root: false,
            exact,
            wildcards: wildcards.into_iter().collect(),
        }
    }

    /// Whether this is the root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    fn rule_for(&self, path: &str) -> Option<&Rule> {
        if let Some(rule) = self.exact.get(path) {
            return Some(rule);
        }
        self.wildcards
            .iter()
            .filter(|(pattern, _)| matches(pattern, path))
            .max_by(|(a, _), (b, _)| priority(a, b))
            .map(|(_, rule)| rule)
    }

    /// The capabilities granted on `path` (`["deny"]` when denied, `["root"]`-equivalent: all).
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return [
                "create", "read", "update", "patch", "delete", "list", "sudo",
            ]
            .iter()
            .filter_map(|name| Capabilities::parse(name))
            .fold(Capabilities::NONE, Capabilities::union);
        }
        self.rule_for(path).map_or(Capabilities::NONE, |rule| {
            if rule.capabilities.contains(Capabilities::DENY) {
                Capabilities::DENY
            } else {
                rule.capabilities
            }
        })
    }

    /// Whether `operation` on `path` with body `data` is allowed (`needs_sudo`: the path is
    /// root-protected).
    pub fn allows(
        &self,
        operation: Operation,
        path: &str,
        data: &Map<String, Value>,
        needs_sudo: bool,
    ) -> bool {
        if self.root {
            return true;
        }
        let Some(rule) = self.rule_for(path) else {
            return false;
        };
        if rule.capabilities.contains(Capabilities::DENY) {
            return false;
        }
        if !rule
            .capabilities
            .contains(Capabilities::for_operation(operation))
        {
            return false;
        }
        if needs_sudo && !rule.capabilities.contains(Capabilities::SUDO) {
            return false;
        }
        if matches!(
            operation,
            Operation::Create | Operation::Update | Operation::Patch
        ) {
            return parameters_allowed(rule, data);
        }
        true
    }
}

fn is_wildcard(pattern: &str) -> bool {
    pattern.ends_with('*') || pattern.split('/').any(|segment| segment == "+")
}

/// Whether `pattern` (with `+` segments and an optional trailing `*`) matches `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (body, glob) = match pattern.strip_suffix('*') {
        Some(body) => (body, true),
        None => (pattern, false),
    };
    if !body.split('/').any(|segment| segment == "+") {
        return if glob {
            path.starts_with(body)
        } else {
            path == body
        };
    }
    let pattern_segments: Vec<&str> = body.split('/').collect();
    let path_segments: Vec<&str> = path.split('/').collect();
    if path_segments.len() < pattern_segments.len()
        || (!glob && path_segments.len() != pattern_segments.len())
    {
        return false;
    }
    let last = pattern_segments.len() - 1;
    pattern_segments
        .iter()
        .zip(&path_segments)
        .enumerate()
        .all(|(index, (want, have))| match *want {
            "+" => true,
            want if glob && index == last => have.starts_with(want),
            want => want == *have,
        })
}

/// Orders two matching patterns by Vault's priority (Greater = higher priority).
fn priority(a: &str, b: &str) -> Ordering {
    let first_wildcard = |pattern: &str| pattern.find(['+', '*']).unwrap_or(pattern.len());
    let pluses = |pattern: &str| pattern.split('/').filter(|segment| *segment == "+").count();
    first_wildcard(a)
        .cmp(&first_wildcard(b))
        .then_with(|| b.ends_with('*').cmp(&a.ends_with('*')))
        .then_with(|| pluses(b).cmp(&pluses(a)))
        .then_with(|| a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

fn value_matches(allowed: &Value, actual: &Value) -> bool {
    match (allowed, actual) {
        (Value::String(pattern), Value::String(text))
            if pattern.len() > 1 && pattern.ends_with('*') =>
        {
            text.starts_with(&pattern[..pattern.len() - 1])
        }
        (Value::String(pattern), Value::String(text))
            if pattern.len() > 1 && pattern.starts_with('*') =>
        {
            text.ends_with(&pattern[1..])
        }
        _ => allowed == actual,
    }
}

fn any_value_matches(values: &[Value], actual: &Value) -> bool {
    match actual {
        Value::Array(items) => items
            .iter()
            .all(|item| values.iter().any(|allowed| value_matches(allowed, item))),
        _ => values.iter().any(|allowed| value_matches(allowed, actual)),
    }
}

fn parameters_allowed(rule: &Rule, data: &Map<String, Value>) -> bool {
    if !rule
        .required_parameters
        .iter()
        .all(|name| data.contains_key(name))
    {
        return false;
    }
    for (key, value) in data {
        for denied_key in [key.as_str(), "*"] {
            if let Some(values) = rule.denied_parameters.get(denied_key)
                && (values.is_empty() || any_value_matches(values, value))
            {
                return false;
            }
        }
        if let Some(allowed) = &rule.allowed_parameters {
            let Some(values) = allowed.get(key).or_else(|| allowed.get("*")) else {
                return false;
            };
            if !values.is_empty() && !any_value_matches(values, value) {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
