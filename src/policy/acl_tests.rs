//! ACL matcher tests: Vault's priority rules, globs, `+`, deny, parameter constraints, and a
//! randomized property check that a deny on the rule that applies always wins.

use rand::RngExt;
use rand::SeedableRng;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::*;
use crate::policy::parse::parse;

fn acl(policies: &[(&str, &str)]) -> Acl {
    let parsed: Vec<Policy> = policies
        .iter()
        .map(|(name, text)| parse(name, text).unwrap())
        .collect();
    Acl::new(&parsed)
}

fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn can(acl: &Acl, operation: Operation, path: &str) -> bool {
    acl.allows(operation, path, &Map::new(), false)
}

#[test]
fn exact_glob_and_plus_matching() {
    let acl = acl(&[(
        "p",
        r#"
        path "secret/data/exact" { capabilities = ["read"] }
        path "secret/data/app/*" { capabilities = ["read", "list"] }
        path "secret/data/+/team" { capabilities = ["update"] }
        path "kv/prefix*" { capabilities = ["read"] }
        "#,
    )]);
    assert!(can(&acl, Operation::Read, "secret/data/exact"));
    assert!(!can(&acl, Operation::Read, "secret/data/exactly"));
    assert!(can(&acl, Operation::Read, "secret/data/app/db"));
    assert!(can(&acl, Operation::Read, "secret/data/app/a/b/c"));
    assert!(!can(&acl, Operation::Read, "secret/data/apps"));
    assert!(!can(&acl, Operation::Update, "secret/data/app/db"));
    assert!(can(&acl, Operation::Update, "secret/data/x/team"));
    assert!(
        !can(&acl, Operation::Update, "secret/data/x/y/team"),
        "+ is one segment"
    );
    assert!(!can(&acl, Operation::Update, "secret/data/x/team/more"));
    assert!(can(&acl, Operation::Read, "kv/prefixed/anything"));
    assert!(!can(&acl, Operation::Read, "other"));
}

#[test]
fn vault_priority_rules() {
    // 1. The pattern whose first wildcard comes later wins.
    assert_eq!(priority("secret/a*", "secret/*"), Ordering::Greater);
    assert_eq!(priority("secret/+/c", "secret/a/+"), Ordering::Less);
    // 2. With wildcards at the same place, a trailing glob loses.
    assert_eq!(priority("secret/+/foo", "secret/*"), Ordering::Greater);
    // 3. More `+` segments lose.
    assert_eq!(priority("secret/+/+/x*", "secret/+/b/x*"), Ordering::Less);
    // 4. Shorter loses; 5. then the lexicographically smaller.
    assert_eq!(priority("secret/+/foo", "secret/+/foobar"), Ordering::Less);
    assert_eq!(priority("secret/+/abc", "secret/+/abd"), Ordering::Less);

    let acl = acl(&[
        ("broad", r#"path "secret/*" { capabilities = ["read"] }"#),
        (
            "narrow",
            r#"path "secret/+/foo" { capabilities = ["update"] }"#,
        ),
    ]);
    assert!(
        can(&acl, Operation::Update, "secret/x/foo"),
        "secret/+/foo applies"
    );
    assert!(
        !can(&acl, Operation::Read, "secret/x/foo"),
        "only the applying rule decides"
    );
    assert!(can(&acl, Operation::Read, "secret/x/bar"));
}

#[test]
fn same_pattern_merges_across_policies_and_deny_wins() {
    let acl = acl(&[
        ("a", r#"path "secret/data/x" { capabilities = ["read"] }"#),
        ("b", r#"path "secret/data/x" { capabilities = ["update"] }"#),
    ]);
    assert!(
        can(&acl, Operation::Read, "secret/data/x")
            && can(&acl, Operation::Update, "secret/data/x")
    );
    let denied = acl_with_deny();
    for operation in [
        Operation::Read,
        Operation::Update,
        Operation::List,
        Operation::Delete,
    ] {
        assert!(!can(&denied, operation, "secret/data/x"));
    }
    assert_eq!(denied.capabilities("secret/data/x").names(), vec!["deny"]);
}

fn acl_with_deny() -> Acl {
    acl(&[
        (
            "a",
            r#"path "secret/data/x" { capabilities = ["read", "update", "list", "delete", "sudo"] }"#,
        ),
        ("b", r#"path "secret/data/x" { capabilities = ["deny"] }"#),
    ])
}

#[test]
fn sudo_is_needed_on_protected_paths() {
    let plain = acl(&[("p", r#"path "sys/seal" { capabilities = ["update"] }"#)]);
    assert!(!plain.allows(Operation::Update, "sys/seal", &Map::new(), true));
    let sudo = acl(&[(
        "p",
        r#"path "sys/seal" { capabilities = ["update", "sudo"] }"#,
    )]);
    assert!(sudo.allows(Operation::Update, "sys/seal", &Map::new(), true));
    assert!(Acl::root().allows(Operation::Update, "sys/seal", &Map::new(), true));
}

#[test]
fn parameter_constraints() {
    let acl = acl(&[(
        "p",
        r#"
        path "app/config" {
          capabilities = ["update", "create"]
          allowed_parameters = { "mode" = ["fast", "safe*"], "owner" = [] }
          denied_parameters = { "owner" = ["root"] }
          required_parameters = ["owner"]
        }
        path "app/open" {
          capabilities = ["update"]
          denied_parameters = { "*" = [] }
        }
        "#,
    )]);
    let allowed = |data: Value| acl.allows(Operation::Update, "app/config", &body(data), false);
    assert!(allowed(json!({"owner": "alice", "mode": "fast"})));
    assert!(
        allowed(json!({"owner": "alice", "mode": "safe-ish"})),
        "value globs"
    );
    assert!(!allowed(json!({"mode": "fast"})), "owner is required");
    assert!(
        !allowed(json!({"owner": "alice", "mode": "slow"})),
        "value not allowed"
    );
    assert!(
        !allowed(json!({"owner": "alice", "extra": 1})),
        "key not allowed"
    );
    assert!(!allowed(json!({"owner": "root"})), "denied value");
    assert!(acl.allows(Operation::Update, "app/open", &Map::new(), false));
    assert!(!acl.allows(
        Operation::Update,
        "app/open",
        &body(json!({"any": 1})),
        false
    ));
    // Reads are not subject to parameter constraints.
    let read = self::acl(&[(
        "r",
        "path \"x\" {\n  capabilities = [\"read\"]\n  required_parameters = [\"a\"]\n}",
    )]);
    assert!(read.allows(Operation::Read, "x", &Map::new(), false));
}

/// Property: whenever any policy puts `deny` on the pattern that applies to a path, no operation
/// on that path is allowed, whatever the other policies grant.
#[test]
fn deny_on_the_applying_pattern_always_wins() {
    let patterns = [
        "a/*", "a/b/*", "a/+/c", "a/b/c", "a/+/*", "a/b*", "+/b/c", "*",
    ];
    let capability_names = [
        "read", "update", "create", "delete", "list", "sudo", "patch",
    ];
    let paths = ["a/b/c", "a/x/c", "a/b/d", "a/bb", "z/b/c", "a/b/c/d"];
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..2_000 {
        let mut policies = Vec::new();
        let mut denied_patterns = Vec::new();
        for index in 0..rng.random_range(1..4) {
            let mut text = String::new();
            for pattern in patterns {
                if rng.random_bool(0.4) {
                    let deny = rng.random_bool(0.2);
                    let caps: Vec<String> = if deny {
                        denied_patterns.push(pattern);
                        vec!["\"deny\"".into()]
                    } else {
                        capability_names
                            .iter()
                            .filter(|_| rng.random_bool(0.5))
                            .map(|c| format!("{c:?}"))
                            .collect()
                    };
                    text.push_str(&format!(
                        "path {pattern:?} {{ capabilities = [{}] }}\n",
                        caps.join(", ")
                    ));
                }
            }
            policies.push(parse(&format!("p{index}"), &text).unwrap());
        }
        let acl = Acl::new(&policies);
        for path in paths {
            let applying = patterns
                .iter()
                .filter(|pattern| {
                    policies
                        .iter()
                        .flat_map(|p| &p.rules)
                        .any(|rule| rule.pattern == **pattern)
                })
                .filter(|pattern| matches(pattern, path))
                .copied()
                .max_by(|a, b| {
                    if !is_wildcard(a) {
                        Ordering::Greater
                    } else if !is_wildcard(b) {
                        Ordering::Less
                    } else {
                        priority(a, b)
                    }
                });
            if applying.is_some_and(|pattern| denied_patterns.contains(&pattern)) {
                for operation in [
                    Operation::Read,
                    Operation::Update,
                    Operation::Create,
                    Operation::Delete,
                    Operation::List,
                    Operation::Patch,
                ] {
                    assert!(
                        !acl.allows(operation, path, &Map::new(), false),
                        "{path} allowed {operation} despite deny on {applying:?}"
                    );
                }
                assert_eq!(acl.capabilities(path).names(), vec!["deny"]);
            }
        }
    }
}
