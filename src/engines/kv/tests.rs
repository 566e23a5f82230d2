//! KV v2 behaviour through an in-memory storage view (no raft, no HTTP).

use serde_json::Value;
use serde_json::json;

use super::KvV2;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::testing::MemoryStorage;

use crate::logical::testing::request;

fn call(
    storage: &mut MemoryStorage,
    operation: Operation,
    path: &str,
    body: Value,
) -> Result<Response, LogicalError> {
    KvV2.handle(&request(operation, path, body), storage)
}

fn data(response: &Response) -> Value {
    Value::Object(response.data.clone().expect("response has data"))
}

#[test]
fn write_then_read_latest_and_by_version() {
    let mut storage = MemoryStorage::default();
    let written = call(
        &mut storage,
        Operation::Update,
        "data/app",
        json!({"data": {"password": "one"}}),
    )
    .unwrap();
    assert_eq!(data(&written)["version"], 1);
    call(
        &mut storage,
        Operation::Update,
        "data/app",
        json!({"data": {"password": "two"}}),
    )
    .unwrap();

    let latest = call(&mut storage, Operation::Read, "data/app", json!({})).unwrap();
    assert_eq!(data(&latest)["data"], json!({"password": "two"}));
    assert_eq!(data(&latest)["metadata"]["version"], 2);
    assert_eq!(data(&latest)["metadata"]["deletion_time"], "");

    let mut by_version = request(Operation::Read, "data/app", json!({}));
    by_version.query.insert("version".into(), "1".into());
    let first = KvV2.handle(&by_version, &mut storage).unwrap();
    assert_eq!(data(&first)["data"], json!({"password": "one"}));
}

#[test]
fn missing_secret_is_not_found() {
    let mut storage = MemoryStorage::default();
    assert!(matches!(
        call(&mut storage, Operation::Read, "data/none", json!({})),
        Err(LogicalError::NotFound)
    ));
}

#[test]
fn cas_rules_match_vault() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "data/c",
        json!({"data": {"a": 1}, "options": {"cas": 0}}),
    )
    .unwrap();
    let again = call(
        &mut storage,
        Operation::Update,
        "data/c",
        json!({"data": {"a": 2}, "options": {"cas": 0}}),
    );
    assert!(
        matches!(again, Err(LogicalError::InvalidRequest(m)) if m == "check-and-set parameter did not match the current version")
    );
    call(
        &mut storage,
        Operation::Update,
        "data/c",
        json!({"data": {"a": 2}, "options": {"cas": 1}}),
    )
    .unwrap();

    call(
        &mut storage,
        Operation::Update,
        "config",
        json!({"cas_required": true}),
    )
    .unwrap();
    let no_cas = call(
        &mut storage,
        Operation::Update,
        "data/c",
        json!({"data": {"a": 3}}),
    );
    assert!(
        matches!(no_cas, Err(LogicalError::InvalidRequest(m)) if m == "check-and-set parameter required for this call")
    );
}

#[test]
fn soft_delete_answers_404_with_metadata_and_undelete_restores() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "data/d",
        json!({"data": {"k": "v"}}),
    )
    .unwrap();
    call(&mut storage, Operation::Delete, "data/d", json!({})).unwrap();
    let deleted = call(&mut storage, Operation::Read, "data/d", json!({})).unwrap();
    assert_eq!(deleted.status, Some(404));
    assert_eq!(data(&deleted)["data"], Value::Null);
    assert_ne!(data(&deleted)["metadata"]["deletion_time"], "");

    call(
        &mut storage,
        Operation::Update,
        "undelete/d",
        json!({"versions": [1]}),
    )
    .unwrap();
    let restored = call(&mut storage, Operation::Read, "data/d", json!({})).unwrap();
    assert_eq!(data(&restored)["data"], json!({"k": "v"}));

    call(
        &mut storage,
        Operation::Update,
        "destroy/d",
        json!({"versions": [1]}),
    )
    .unwrap();
    let destroyed = call(&mut storage, Operation::Read, "data/d", json!({})).unwrap();
    assert_eq!(destroyed.status, Some(404));
    assert_eq!(data(&destroyed)["metadata"]["destroyed"], true);
    assert!(
        storage
            .keys()
            .iter()
            .all(|key| !key.starts_with("version/")),
        "destroy removes the data"
    );
}

#[test]
fn versions_beyond_max_are_pruned() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "metadata/p",
        json!({"max_versions": 3}),
    )
    .unwrap();
    for n in 0..7 {
        call(
            &mut storage,
            Operation::Update,
            "data/p",
            json!({"data": {"n": n}}),
        )
        .unwrap();
    }
    let meta = call(&mut storage, Operation::Read, "metadata/p", json!({})).unwrap();
    assert_eq!(data(&meta)["current_version"], 7);
    assert_eq!(data(&meta)["oldest_version"], 5);
    assert_eq!(data(&meta)["versions"].as_object().unwrap().len(), 3);
    assert_eq!(
        storage
            .keys()
            .iter()
            .filter(|key| key.starts_with("version/"))
            .count(),
        3
    );
}

#[test]
fn list_shows_children_and_folders_and_404_when_empty() {
    let mut storage = MemoryStorage::default();
    for path in ["a/x", "a/y/z", "b"] {
        call(
            &mut storage,
            Operation::Update,
            &format!("data/{path}"),
            json!({"data": {"v": 1}}),
        )
        .unwrap();
    }
    let root = call(&mut storage, Operation::List, "metadata/", json!({})).unwrap();
    assert_eq!(data(&root)["keys"], json!(["a/", "b"]));
    let folder = call(&mut storage, Operation::List, "metadata/a", json!({})).unwrap();
    assert_eq!(data(&folder)["keys"], json!(["x", "y/"]));
    let empty = call(
        &mut storage,
        Operation::List,
        "metadata/nothing/",
        json!({}),
    )
    .unwrap();
    assert_eq!(empty.status, Some(404));
}

#[test]
fn patch_merges_into_latest() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "data/m",
        json!({"data": {"a": 1, "b": 2}}),
    )
    .unwrap();
    let patched = call(
        &mut storage,
        Operation::Patch,
        "data/m",
        json!({"data": {"b": null, "c": 3}}),
    )
    .unwrap();
    assert_eq!(data(&patched)["version"], 2);
    let read = call(&mut storage, Operation::Read, "data/m", json!({})).unwrap();
    assert_eq!(data(&read)["data"], json!({"a": 1, "c": 3}));
}

#[test]
fn delete_metadata_removes_everything() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "data/gone",
        json!({"data": {"a": 1}}),
    )
    .unwrap();
    call(
        &mut storage,
        Operation::Update,
        "data/gone",
        json!({"data": {"a": 2}}),
    )
    .unwrap();
    call(&mut storage, Operation::Delete, "metadata/gone", json!({})).unwrap();
    assert!(storage.keys().is_empty());
}

#[test]
fn bad_input_is_refused_without_writing() {
    let mut storage = MemoryStorage::default();
    for (path, body) in [
        ("data/x", json!({})),
        ("data/x", json!({"data": "not an object"})),
        ("data/x", json!({"data": {}, "options": {"cas": "abc"}})),
        ("data/../x", json!({"data": {}})),
        ("data/", json!({"data": {}})),
        ("metadata/x", json!({"max_versions": -1})),
        ("delete/x", json!({"versions": "a,b"})),
    ] {
        let outcome = call(&mut storage, Operation::Update, path, body);
        assert!(
            matches!(outcome, Err(LogicalError::InvalidRequest(_))),
            "{path} -> {outcome:?}"
        );
    }
    assert!(storage.keys().is_empty());
    assert!(matches!(
        call(&mut storage, Operation::Read, "nosuch/x", json!({})),
        Err(LogicalError::UnsupportedPath)
    ));
}

#[test]
fn list_pages_with_after_and_limit() {
    let mut storage = MemoryStorage::default();
    for name in ["a", "b", "c", "d/x", "e"] {
        let path = format!("data/team/{name}");
        call(
            &mut storage,
            Operation::Update,
            &path,
            json!({"data": {"k": "v"}}),
        )
        .unwrap();
    }
    let page = |query: &[(&str, &str)], storage: &mut MemoryStorage| {
        let mut list = request(Operation::List, "metadata/team", json!({}));
        for (name, value) in query {
            list.query.insert(name.to_string(), value.to_string());
        }
        KvV2.handle(&list, storage)
            .map(|response| match response.data {
                Some(_) => data(&response)["keys"].clone(),
                None => json!(response.status),
            })
    };
    assert_eq!(
        page(&[], &mut storage).unwrap(),
        json!(["a", "b", "c", "d/", "e"])
    );
    assert_eq!(
        page(&[("limit", "2")], &mut storage).unwrap(),
        json!(["a", "b"])
    );
    assert_eq!(
        page(&[("after", "b"), ("limit", "2")], &mut storage).unwrap(),
        json!(["c", "d/"])
    );
    assert_eq!(
        page(&[("after", "e")], &mut storage).unwrap(),
        json!(404),
        "past the end: Vault's empty-list 404"
    );
    for bad in ["0", "-1", "x"] {
        assert!(
            page(&[("limit", bad)], &mut storage).is_err(),
            "limit={bad}"
        );
    }
}

#[test]
fn ten_thousand_versions_keep_five_and_the_rest_is_deleted() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "metadata/many",
        json!({"max_versions": 5}),
    )
    .unwrap();
    for version in 1..=10_000u64 {
        let written = call(
            &mut storage,
            Operation::Update,
            "data/many",
            json!({"data": {"n": version}}),
        )
        .unwrap();
        assert_eq!(data(&written)["version"], version);
    }
    let mut expected: Vec<String> = (9_996..=10_000)
        .map(|version| format!("version/many/{version}"))
        .collect();
    expected.push("meta/many".into());
    expected.sort();
    assert_eq!(storage.keys(), expected);
    let meta = call(&mut storage, Operation::Read, "metadata/many", json!({})).unwrap();
    assert_eq!(data(&meta)["oldest_version"], 9_996);
    assert_eq!(
        data(&meta)["versions"].as_object().map(|v| v.len()),
        Some(5)
    );
}

#[test]
fn recursive_list_returns_every_key_below_filtered_then_paged() {
    let mut storage = MemoryStorage::default();
    for name in ["a", "d/x", "d/y/z", "hidden/s", "hidden/t/u", "team2"] {
        call(
            &mut storage,
            Operation::Update,
            &format!("data/team/{name}"),
            json!({"data": {"k": "v"}}),
        )
        .unwrap();
    }
    call(
        &mut storage,
        Operation::Update,
        "data/other",
        json!({"data": {"k": "v"}}),
    )
    .unwrap();
    let list = |query: &[(&str, &str)], filter: bool, storage: &mut MemoryStorage| {
        let mut list = request(Operation::List, "metadata/team/", json!({}));
        for (name, value) in query {
            list.query.insert(name.to_string(), value.to_string());
        }
        if filter {
            // Like the core's ACL filter for a token that may not list `team/hidden/`: entries
            // inside it go, the folder entry itself (in the listed folder) stays.
            list.list_filter = Some(crate::logical::ListFilter::new(|entry: &str| {
                entry == "hidden/" || !entry.starts_with("hidden/")
            }));
        }
        KvV2.handle(&list, storage)
            .map(|response| match response.data {
                Some(_) => data(&response)["keys"].clone(),
                None => json!(response.status),
            })
    };
    let recursive = [("recursive", "true")];
    assert_eq!(
        list(&recursive, false, &mut storage).unwrap(),
        json!(["a", "d/x", "d/y/z", "hidden/s", "hidden/t/u", "team2"])
    );
    assert_eq!(
        list(&recursive, true, &mut storage).unwrap(),
        json!(["a", "d/x", "d/y/z", "team2"])
    );
    // Pages are cut after filtering: no short or empty page where hidden keys were.
    assert_eq!(
        list(
            &[("recursive", "true"), ("after", "d/y/z"), ("limit", "1")],
            true,
            &mut storage
        )
        .unwrap(),
        json!(["team2"])
    );
    assert_eq!(
        list(&[("recursive", "false")], true, &mut storage).unwrap(),
        json!(["a", "d/", "hidden/", "team2"])
    );
    assert!(list(&[("recursive", "maybe")], false, &mut storage).is_err());
    // KV v1 lists the same way.
    let mut v1 = MemoryStorage::default();
    for name in ["p/q", "p/r/s"] {
        let write = request(Operation::Update, name, json!({"k": "v"}));
        super::KvV1.handle(&write, &mut v1).unwrap();
    }
    let mut listing = request(Operation::List, "", json!({}));
    listing.query.insert("recursive".into(), "true".into());
    let listed = super::KvV1.handle(&listing, &mut v1).unwrap();
    assert_eq!(data(&listed)["keys"], json!(["p/q", "p/r/s"]));
}

#[test]
fn bad_writes_are_refused_and_change_nothing() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "data/app",
        json!({"data": {"v": 1}}),
    )
    .unwrap();
    let before = storage.keys();
    for body in [
        json!({"data": {"v": 2}, "options": {"cas": 1, "cass": 1}}),
        json!({"data": {"v": 2}, "options": {"check_and_set": 1}}),
        json!({"data": {"v": 2}, "options": {"cas": -1}}),
        json!({"data": {"v": 2}, "options": {"cas": true}}),
        json!({"data": {"v": 2}, "options": {"cas": 1.5}}),
        json!({"data": {"v": 2}, "options": "cas=1"}),
        json!({"data": [1, 2]}),
        json!({"data": null}),
        json!({"options": {"cas": 1}}),
    ] {
        let refused = call(&mut storage, Operation::Update, "data/app", body.clone());
        assert!(
            matches!(refused, Err(LogicalError::InvalidRequest(_))),
            "{body} must be refused"
        );
    }
    assert_eq!(storage.keys(), before);
    let read = call(&mut storage, Operation::Read, "data/app", json!({})).unwrap();
    assert_eq!(data(&read)["metadata"]["version"], 1);
}
