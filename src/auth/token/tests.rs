//! Token store tests over an in-memory view.

use super::*;
use crate::logical::testing::MemoryStorage;

fn entry(hash: &str, parent: Option<&str>, expire_at: u64) -> TokenEntry {
    TokenEntry {
        id_hash: hash.into(),
        accessor: format!("acc-{hash}"),
        policies: vec!["default".into()],
        parent: parent.map(str::to_string),
        expire_at,
        renewable: true,
        ttl: 100,
        ..TokenEntry::default()
    }
}

#[test]
fn tokens_are_prefixed_random_and_long() {
    let a = generate_token();
    let b = generate_token();
    assert!(a.starts_with(SERVICE_TOKEN_PREFIX));
    assert_ne!(*a, *b);
    assert!(a.len() >= SERVICE_TOKEN_PREFIX.len() + 43);
}

#[test]
fn found_by_hash_and_accessor_until_expiry() {
    let mut storage = MemoryStorage::default();
    store(&mut storage, &entry("ab12", None, 110)).unwrap();
    assert!(lookup(&mut storage, "ab12", 109).unwrap().is_some());
    assert!(lookup(&mut storage, "ab12", 110).unwrap().is_none());
    assert!(lookup(&mut storage, "ab13", 100).unwrap().is_none());
    assert!(lookup(&mut storage, "../x", 100).unwrap().is_none());
    assert!(
        lookup_accessor(&mut storage, "acc-ab12", 100)
            .unwrap()
            .is_some()
    );
    assert!(
        lookup_accessor(&mut storage, "acc-ab12/../x", 100)
            .unwrap()
            .is_none()
    );
}

#[test]
fn revoking_a_parent_revokes_descendants_only() {
    let mut storage = MemoryStorage::default();
    store(&mut storage, &entry("aa", None, 0)).unwrap();
    store(&mut storage, &entry("bb", Some("aa"), 0)).unwrap();
    store(&mut storage, &entry("cc", Some("bb"), 500)).unwrap();
    store(&mut storage, &entry("dd", None, 0)).unwrap();
    assert_eq!(revoke_tree(&mut storage, "aa").unwrap(), 3);
    for gone in ["aa", "bb", "cc"] {
        assert!(lookup(&mut storage, gone, 1).unwrap().is_none());
    }
    assert!(lookup(&mut storage, "dd", 1).unwrap().is_some());
    assert_eq!(
        storage.keys(),
        vec!["accessor/acc-dd".to_string(), "id/dd".to_string()],
        "no index left behind"
    );
}

#[test]
fn revoke_orphan_keeps_children() {
    let mut storage = MemoryStorage::default();
    store(&mut storage, &entry("aa", None, 0)).unwrap();
    store(&mut storage, &entry("bb", Some("aa"), 0)).unwrap();
    assert!(revoke_orphan(&mut storage, "aa").unwrap());
    let child = lookup(&mut storage, "bb", 1).unwrap().unwrap();
    assert_eq!(child.parent, None);
}

#[test]
fn expired_tokens_are_swept_with_their_children() {
    let mut storage = MemoryStorage::default();
    store(&mut storage, &entry("aa", None, 50)).unwrap();
    store(&mut storage, &entry("bb", Some("aa"), 0)).unwrap();
    store(&mut storage, &entry("cc", None, 500)).unwrap();
    assert_eq!(sweep_expired(&mut storage, 100, 10).unwrap(), 2);
    assert!(lookup(&mut storage, "cc", 100).unwrap().is_some());
    assert!(lookup(&mut storage, "bb", 100).unwrap().is_none());
}

#[test]
fn renewal_respects_period_and_caps() {
    let mut token = entry("aa", None, 200);
    token.max_expire_at = 250;
    assert_eq!(token.renewed_expiry(190, 0), Some(250), "capped by max");
    assert_eq!(token.renewed_expiry(100, 30), Some(130));
    assert_eq!(
        token.renewed_expiry(100, 120),
        Some(220),
        "an increment beyond the creation TTL is granted up to the cap"
    );
    token.period = 60;
    assert_eq!(
        token.renewed_expiry(100, 5),
        Some(160),
        "periodic tokens renew by their period"
    );
    token.renewable = false;
    assert_eq!(token.renewed_expiry(100, 0), None);
}

#[test]
fn cidr_bounds() {
    let mut token = entry("aa", None, 0);
    assert!(token.allows_address(None));
    token.bound_cidrs = vec!["10.0.0.0/8".into(), "192.168.1.7".into()];
    assert!(token.allows_address(Some("10.1.2.3")));
    assert!(token.allows_address(Some("192.168.1.7")));
    assert!(!token.allows_address(Some("192.168.1.8")));
    assert!(!token.allows_address(None));
}
