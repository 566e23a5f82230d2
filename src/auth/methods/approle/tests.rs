//! AppRole behaviour through an in-memory storage view (no raft, no HTTP).

use serde_json::Value;
use serde_json::json;

use super::AppRole;
use super::handle_at;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::testing::MemoryStorage;

const T0: u64 = 1_700_000_000 * 1_000_000_000;
const SEC: u64 = 1_000_000_000;

use crate::logical::testing::request;

fn call_at(
    storage: &mut MemoryStorage,
    operation: Operation,
    path: &str,
    body: Value,
    now: u64,
) -> Result<Response, LogicalError> {
    handle_at(&request(operation, path, body), storage, now)
}

fn call(
    storage: &mut MemoryStorage,
    operation: Operation,
    path: &str,
    body: Value,
) -> Result<Response, LogicalError> {
    call_at(storage, operation, path, body, T0)
}

fn data(response: &Response) -> Value {
    Value::Object(response.data.clone().expect("response has data"))
}

fn error_message(result: Result<Response, LogicalError>) -> String {
    match result {
        Err(LogicalError::InvalidRequest(message)) => message,
        Err(other) => panic!("expected a 400, got {other:?}"),
        Ok(response) => panic!("expected a 400, got {response:?}"),
    }
}

/// Every stored key and value, to check what a request changed and that no secret is stored.
fn snapshot(storage: &mut MemoryStorage) -> Vec<(String, Vec<u8>)> {
    storage
        .keys()
        .into_iter()
        .map(|key| {
            let value = storage.get(&key).unwrap().unwrap_or_default();
            (key, value)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Creates role `web` with `body`, returns (role_id, secret_id) of a fresh secret ID.
fn role_with_secret(
    storage: &mut MemoryStorage,
    body: Value,
    secret_body: Value,
) -> (String, String) {
    call(storage, Operation::Update, "role/web", body).unwrap();
    let role_id =
        data(&call(storage, Operation::Read, "role/web/role-id", json!({})).unwrap())["role_id"]
            .as_str()
            .unwrap()
            .to_string();
    let secret = call(
        storage,
        Operation::Update,
        "role/web/secret-id",
        secret_body,
    )
    .unwrap();
    (
        role_id,
        data(&secret)["secret_id"].as_str().unwrap().to_string(),
    )
}

fn login_at(
    storage: &mut MemoryStorage,
    role_id: &str,
    secret_id: &str,
    now: u64,
) -> Result<Response, LogicalError> {
    call_at(
        storage,
        Operation::Update,
        "login",
        json!({"role_id": role_id, "secret_id": secret_id}),
        now,
    )
}

#[test]
fn login_is_unauthenticated_and_nothing_else_is() {
    assert_eq!(AppRole.unauthenticated_paths(), ["login"]);
}

#[test]
fn role_crud_and_list_in_vaults_shape() {
    let mut storage = MemoryStorage::default();
    assert_eq!(
        call(&mut storage, Operation::List, "role", json!({}))
            .unwrap()
            .status,
        Some(404)
    );
    let written = call(
        &mut storage,
        Operation::Update,
        "role/Web",
        json!({"token_policies": "read-app,default", "token_ttl": "20m", "token_max_ttl": 1800,
               "secret_id_ttl": "10m", "secret_id_num_uses": "40"}),
    )
    .unwrap();
    assert!(written.data.is_none(), "a write answers 204");
    let role = data(&call(&mut storage, Operation::Read, "role/web", json!({})).unwrap());
    assert_eq!(role["token_policies"], json!(["default", "read-app"]));
    assert_eq!(role["policies"], json!(["default", "read-app"]));
    assert_eq!(role["token_ttl"], 1200);
    assert_eq!(role["token_max_ttl"], 1800);
    assert_eq!(role["secret_id_ttl"], 600);
    assert_eq!(role["secret_id_num_uses"], 40);
    assert_eq!(role["bind_secret_id"], true);
    assert_eq!(role["token_type"], "default");
    assert!(
        role.get("role_id").is_none(),
        "role_id is read from its own path"
    );

    // An update changes only what it names.
    call(
        &mut storage,
        Operation::Update,
        "role/web",
        json!({"token_ttl": 60}),
    )
    .unwrap();
    let role = data(&call(&mut storage, Operation::Read, "role/web", json!({})).unwrap());
    assert_eq!(
        (role["token_ttl"].clone(), role["secret_id_ttl"].clone()),
        (json!(60), json!(600))
    );

    call(&mut storage, Operation::Update, "role/api", json!({})).unwrap();
    let listed = call(&mut storage, Operation::List, "role/", json!({})).unwrap();
    assert_eq!(data(&listed)["keys"], json!(["api", "web"]));

    call(&mut storage, Operation::Delete, "role/web", json!({})).unwrap();
    assert!(matches!(
        call(&mut storage, Operation::Read, "role/web", json!({})),
        Err(LogicalError::NotFound)
    ));
    // Deleting again is fine.
    call(&mut storage, Operation::Delete, "role/web", json!({})).unwrap();
}

#[test]
fn bad_role_input_is_refused_without_writes() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "role/web",
        json!({"token_policies": "a"}),
    )
    .unwrap();
    let before = snapshot(&mut storage);
    for (path, body) in [
        ("role/web", json!({"token_ttl": "soon"})),
        ("role/web", json!({"token_ttl": 10, "token_max_ttl": 5})),
        ("role/web", json!({"secret_id_num_uses": -1})),
        ("role/web", json!({"secret_id_bound_cidrs": "10.0.0.0/99"})),
        ("role/web", json!({"token_policies": ["root"]})),
        ("role/web", json!({"token_type": "batch"})),
        ("role/web", json!({"bind_secret_id": "maybe"})),
        ("role/web", json!({"bind_secret_id": false})),
        ("role/web", json!({"role_id": ""})),
        ("role/web", json!({"local_secret_ids": true})),
        ("role/new", json!({"token_policies": [1, 2]})),
        (
            "role/new",
            json!({"metadata_is_ignored": 1, "token_num_uses": "x"}),
        ),
        ("role/bad name", json!({})),
        ("role/..", json!({})),
        ("role/web/role-id", json!({"role_id": ""})),
        ("role/none/role-id", json!({"role_id": "x"})),
        ("role/none/secret-id", json!({})),
        ("role/web/secret-id", json!({"num_uses": "many"})),
        ("role/web/secret-id", json!({"metadata": "{not json"})),
        ("role/web/secret-id", json!({"cidr_list": "nope"})),
        ("role/web/custom-secret-id", json!({})),
        ("role/web/secret-id/lookup", json!({})),
        (
            "role/web/secret-id-accessor/lookup",
            json!({"secret_id_accessor": "../../salt"}),
        ),
        ("role/web/token-ttl", json!({})),
    ] {
        let result = call(&mut storage, Operation::Update, path, body.clone());
        assert!(
            matches!(result, Err(LogicalError::InvalidRequest(_))),
            "{path} {body}: {result:?}"
        );
        assert_eq!(
            snapshot(&mut storage),
            before,
            "{path} {body} must write nothing"
        );
    }
    assert!(matches!(
        call(&mut storage, Operation::Update, "nosuch", json!({})),
        Err(LogicalError::UnsupportedPath)
    ));
    assert!(matches!(
        call(&mut storage, Operation::Read, "login", json!({})),
        Err(LogicalError::UnsupportedOperation)
    ));
}

#[test]
fn login_issues_a_grant_with_the_roles_token_settings() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) = role_with_secret(
        &mut storage,
        json!({"token_policies": "app-read", "token_ttl": "1h", "token_max_ttl": "2h",
               "token_num_uses": 5, "period": 0}),
        json!({"metadata": "{\"tag\": \"prod\"}"}),
    );
    let response = login_at(&mut storage, &role_id, &secret_id, T0).unwrap();
    let auth = response.auth.expect("a login grant");
    assert_eq!(auth.policies, ["app-read"]);
    assert_eq!((auth.ttl, auth.max_ttl, auth.num_uses), (3600, 7200, 5));
    assert!(auth.renewable);
    assert_eq!(
        auth.metadata.get("role_name").map(String::as_str),
        Some("web")
    );
    assert_eq!(auth.metadata.get("tag").map(String::as_str), Some("prod"));
    assert!(response.data.is_none());
    // Unlimited uses: it works again.
    login_at(&mut storage, &role_id, &secret_id, T0).unwrap();
}

#[test]
fn wrong_credentials_get_one_message() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) = role_with_secret(&mut storage, json!({}), json!({}));
    for (role, secret) in [
        (role_id.as_str(), "not-the-secret"),
        ("not-the-role", secret_id.as_str()),
        ("", secret_id.as_str()),
        (role_id.as_str(), ""),
    ] {
        let message = error_message(login_at(&mut storage, role, secret, T0));
        assert!(
            !message.contains(&secret_id),
            "the secret must not be echoed"
        );
        if !role.is_empty() && !secret.is_empty() {
            assert_eq!(message, "invalid role or secret ID");
        }
    }
    // Another role's secret ID does not open this role.
    call(&mut storage, Operation::Update, "role/other", json!({})).unwrap();
    let other = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/other/secret-id",
            json!({}),
        )
        .unwrap(),
    );
    let message = error_message(login_at(
        &mut storage,
        &role_id,
        other["secret_id"].as_str().unwrap(),
        T0,
    ));
    assert_eq!(message, "invalid role or secret ID");
    // A fresh mount with no roles at all.
    let mut empty = MemoryStorage::default();
    assert_eq!(
        error_message(login_at(&mut empty, "x", "y", T0)),
        "invalid role or secret ID"
    );
}

#[test]
fn secret_ids_are_spent_and_removed_on_their_last_use() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) =
        role_with_secret(&mut storage, json!({"secret_id_num_uses": 2}), json!({}));
    let lookup = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id/lookup",
            json!({"secret_id": secret_id}),
        )
        .unwrap(),
    );
    assert_eq!(lookup["secret_id_num_uses"], 2);
    login_at(&mut storage, &role_id, &secret_id, T0 + SEC).unwrap();
    let lookup = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id/lookup",
            json!({"secret_id": secret_id}),
        )
        .unwrap(),
    );
    assert_eq!(lookup["secret_id_num_uses"], 1);
    login_at(&mut storage, &role_id, &secret_id, T0 + 2 * SEC).unwrap();
    assert_eq!(
        error_message(login_at(&mut storage, &role_id, &secret_id, T0 + 3 * SEC)),
        "invalid role or secret ID"
    );
    assert!(
        storage
            .keys()
            .iter()
            .all(|key| !key.starts_with("secret_id/") && !key.starts_with("accessor/"))
    );
}

#[test]
fn expired_secret_ids_are_refused_then_cleaned_up_by_periodic() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) =
        role_with_secret(&mut storage, json!({"secret_id_ttl": "60s"}), json!({}));
    let shorter = call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id",
        json!({"ttl": 30}),
    )
    .unwrap();
    let shorter = data(&shorter)["secret_id"].as_str().unwrap().to_string();
    login_at(&mut storage, &role_id, &secret_id, T0 + 59 * SEC).unwrap();
    assert_eq!(
        error_message(login_at(&mut storage, &role_id, &secret_id, T0 + 60 * SEC)),
        "invalid role or secret ID"
    );
    // Not yet due at T0+20s: periodic leaves both.
    AppRole.periodic(&mut storage, T0 / SEC + 20).unwrap();
    assert_eq!(
        storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("secret_id/"))
            .count(),
        2
    );
    AppRole.periodic(&mut storage, T0 / SEC + 30).unwrap();
    assert_eq!(
        storage
            .keys()
            .iter()
            .filter(|k| k.starts_with("secret_id/"))
            .count(),
        1
    );
    assert!(login_at(&mut storage, &role_id, &shorter, T0 + 31 * SEC).is_err());
    AppRole.periodic(&mut storage, T0 / SEC + 61).unwrap();
    let keys = storage.keys();
    assert!(
        keys.iter().all(|key| !key.starts_with("secret_id/")
            && !key.starts_with("accessor/")
            && !key.starts_with("expiry/")),
        "{keys:?}"
    );
}

#[test]
fn tidy_runs_the_cleanup_on_demand() {
    let mut storage = MemoryStorage::default();
    role_with_secret(&mut storage, json!({}), json!({"ttl": 5}));
    let response = call_at(
        &mut storage,
        Operation::Update,
        "tidy/secret-id",
        json!({}),
        T0 + 6 * SEC,
    )
    .unwrap();
    assert_eq!(response.warnings.len(), 1);
    assert!(
        storage
            .keys()
            .iter()
            .all(|key| !key.starts_with("secret_id/"))
    );
}

#[test]
fn secret_id_settings_may_narrow_but_not_widen_the_role() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "role/web",
        json!({"secret_id_num_uses": 5, "secret_id_ttl": 600,
               "secret_id_bound_cidrs": "10.0.0.0/8", "token_bound_cidrs": ["10.0.0.0/8"]}),
    )
    .unwrap();
    for body in [
        json!({"num_uses": 6}),
        json!({"num_uses": 0}),
        json!({"ttl": 601}),
        json!({"ttl": 0}),
        json!({"cidr_list": "192.168.0.0/16"}),
        json!({"token_bound_cidrs": "10.0.0.0/7"}),
    ] {
        let result = call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id",
            body.clone(),
        );
        assert!(
            matches!(result, Err(LogicalError::InvalidRequest(_))),
            "{body}"
        );
    }
    let secret = data(&call(&mut storage, Operation::Update, "role/web/secret-id",
        json!({"num_uses": 3, "ttl": "5m", "cidr_list": "10.1.0.0/16", "token_bound_cidrs": "10.2.0.0/16"})).unwrap());
    assert_eq!(
        (
            secret["secret_id_num_uses"].clone(),
            secret["secret_id_ttl"].clone()
        ),
        (json!(3), json!(300))
    );
    let defaults = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id",
            json!({}),
        )
        .unwrap(),
    );
    assert_eq!(
        (
            defaults["secret_id_num_uses"].clone(),
            defaults["secret_id_ttl"].clone()
        ),
        (json!(5), json!(600))
    );
}

#[test]
fn cidr_bounds_are_checked_against_the_client_address() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) = role_with_secret(
        &mut storage,
        json!({"secret_id_bound_cidrs": "10.0.0.0/8,127.0.0.0/8", "token_bound_cidrs": "10.0.0.0/8"}),
        json!({"cidr_list": "10.0.0.0/16", "token_bound_cidrs": "10.0.1.0/24"}),
    );
    let login_from = |storage: &mut MemoryStorage, address: Option<&str>| {
        let mut login = request(
            Operation::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret_id}),
        );
        login.remote_address = address.map(str::to_string);
        handle_at(&login, storage, T0)
    };
    let message = error_message(login_from(&mut storage, Some("192.168.1.1")));
    assert!(
        message.contains("CIDR restrictions on the role"),
        "{message}"
    );
    let message = error_message(login_from(&mut storage, Some("127.0.0.1")));
    assert!(
        message.contains("CIDR restrictions on the secret ID"),
        "{message}"
    );
    assert!(login_from(&mut storage, None).is_err());
    let auth = login_from(&mut storage, Some("10.0.9.9"))
        .unwrap()
        .auth
        .unwrap();
    assert_eq!(
        auth.bound_cidrs,
        ["10.0.1.0/24"],
        "the secret ID's token bounds win"
    );
}

#[test]
fn bind_secret_id_false_logs_in_with_the_role_id_alone_within_bounds() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "role/svc",
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.1/32"}),
    )
    .unwrap();
    let role_id = data(
        &call(&mut storage, Operation::Read, "role/svc/role-id", json!({})).unwrap(),
    )["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = call(
        &mut storage,
        Operation::Update,
        "login",
        json!({"role_id": role_id}),
    )
    .unwrap();
    assert_eq!(
        response
            .auth
            .unwrap()
            .metadata
            .get("role_name")
            .map(String::as_str),
        Some("svc")
    );
}

#[test]
fn role_ids_can_be_set_and_are_unique() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "role/a",
        json!({"role_id": "custom-a"}),
    )
    .unwrap();
    call(&mut storage, Operation::Update, "role/b", json!({})).unwrap();
    let read = data(&call(&mut storage, Operation::Read, "role/a/role-id", json!({})).unwrap());
    assert_eq!(read["role_id"], "custom-a");
    let message = error_message(call(
        &mut storage,
        Operation::Update,
        "role/b/role-id",
        json!({"role_id": "custom-a"}),
    ));
    assert_eq!(message, "role_id already in use");
    call(
        &mut storage,
        Operation::Update,
        "role/a/role-id",
        json!({"role_id": "renamed"}),
    )
    .unwrap();
    let secret = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/a/secret-id",
            json!({}),
        )
        .unwrap(),
    );
    let secret_id = secret["secret_id"].as_str().unwrap();
    assert!(
        login_at(&mut storage, "custom-a", secret_id, T0).is_err(),
        "the old role ID is gone"
    );
    login_at(&mut storage, "renamed", secret_id, T0).unwrap();
    // Now b may take the old value.
    call(
        &mut storage,
        Operation::Update,
        "role/b/role-id",
        json!({"role_id": "custom-a"}),
    )
    .unwrap();
}

#[test]
fn secret_ids_are_looked_up_listed_and_destroyed_by_value_or_accessor() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) =
        role_with_secret(&mut storage, json!({}), json!({"metadata": {"k": "v"}}));
    let custom = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/custom-secret-id",
            json!({"secret_id": "my-custom-secret-value", "num_uses": 1}),
        )
        .unwrap(),
    );
    assert_eq!(custom["secret_id"], "my-custom-secret-value");
    let duplicate = call(
        &mut storage,
        Operation::Update,
        "role/web/custom-secret-id",
        json!({"secret_id": "my-custom-secret-value"}),
    );
    assert!(matches!(duplicate, Err(LogicalError::InvalidRequest(_))));

    let listed = data(
        &call(
            &mut storage,
            Operation::List,
            "role/web/secret-id",
            json!({}),
        )
        .unwrap(),
    );
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);

    let found = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id/lookup",
            json!({"secret_id": secret_id}),
        )
        .unwrap(),
    );
    assert_eq!(found["metadata"], json!({"k": "v"}));
    assert_eq!(found["expiration_time"], "0001-01-01T00:00:00Z");
    assert!(found.get("secret_id").is_none());
    let accessor = found["secret_id_accessor"].as_str().unwrap().to_string();
    let by_accessor = data(
        &call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id-accessor/lookup",
            json!({"secret_id_accessor": accessor}),
        )
        .unwrap(),
    );
    assert_eq!(by_accessor, found);

    // Unknown values: 204 by value, 404 by accessor, as Vault.
    let missing = call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id/lookup",
        json!({"secret_id": "nope"}),
    )
    .unwrap();
    assert!(missing.data.is_none());
    assert!(matches!(
        call(
            &mut storage,
            Operation::Update,
            "role/web/secret-id-accessor/lookup",
            json!({"secret_id_accessor": "0000"})
        ),
        Err(LogicalError::NotFound)
    ));

    call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id-accessor/destroy",
        json!({"secret_id_accessor": accessor}),
    )
    .unwrap();
    assert!(login_at(&mut storage, &role_id, &secret_id, T0).is_err());
    call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id/destroy",
        json!({"secret_id": "my-custom-secret-value"}),
    )
    .unwrap();
    assert!(login_at(&mut storage, &role_id, "my-custom-secret-value", T0).is_err());
    assert_eq!(
        call(
            &mut storage,
            Operation::List,
            "role/web/secret-id",
            json!({})
        )
        .unwrap()
        .status,
        Some(404)
    );
}

#[test]
fn secrets_are_never_stored_in_the_clear() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) =
        role_with_secret(&mut storage, json!({"secret_id_ttl": 60}), json!({}));
    call(
        &mut storage,
        Operation::Update,
        "role/web/custom-secret-id",
        json!({"secret_id": "custom-secret-9f8e7d"}),
    )
    .unwrap();
    login_at(&mut storage, &role_id, &secret_id, T0).unwrap();
    for (key, value) in snapshot(&mut storage) {
        for secret in [secret_id.as_str(), "custom-secret-9f8e7d"] {
            assert!(!key.contains(secret), "{key}");
            assert!(!contains(&value, secret.as_bytes()), "{key} holds a secret");
        }
        assert!(!key.contains(&role_id), "role IDs are indexed by HMAC");
    }
}

#[test]
fn deleting_a_role_removes_its_secret_ids_and_indexes() {
    let mut storage = MemoryStorage::default();
    let (role_id, secret_id) =
        role_with_secret(&mut storage, json!({"secret_id_ttl": 60}), json!({}));
    call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id",
        json!({}),
    )
    .unwrap();
    call(&mut storage, Operation::Delete, "role/web", json!({})).unwrap();
    assert_eq!(storage.keys(), ["salt"]);
    assert!(login_at(&mut storage, &role_id, &secret_id, T0).is_err());
}

#[test]
fn one_setting_paths_read_set_and_reset() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "role/web",
        json!({"token_policies": "a"}),
    )
    .unwrap();
    call(
        &mut storage,
        Operation::Update,
        "role/web/policies",
        json!({"policies": "b,c"}),
    )
    .unwrap();
    let read = data(
        &call(
            &mut storage,
            Operation::Read,
            "role/web/policies",
            json!({}),
        )
        .unwrap(),
    );
    assert_eq!(
        read,
        json!({"policies": ["b", "c"], "token_policies": ["b", "c"]})
    );
    call(
        &mut storage,
        Operation::Update,
        "role/web/secret-id-ttl",
        json!({"secret_id_ttl": "1h"}),
    )
    .unwrap();
    let read = data(
        &call(
            &mut storage,
            Operation::Read,
            "role/web/secret-id-ttl",
            json!({}),
        )
        .unwrap(),
    );
    assert_eq!(read, json!({"secret_id_ttl": 3600}));
    call(
        &mut storage,
        Operation::Delete,
        "role/web/secret-id-ttl",
        json!({}),
    )
    .unwrap();
    let read = data(
        &call(
            &mut storage,
            Operation::Read,
            "role/web/secret-id-ttl",
            json!({}),
        )
        .unwrap(),
    );
    assert_eq!(read, json!({"secret_id_ttl": 0}));
    call(
        &mut storage,
        Operation::Update,
        "role/web/period",
        json!({"period": 30}),
    )
    .unwrap();
    let role = data(&call(&mut storage, Operation::Read, "role/web", json!({})).unwrap());
    assert_eq!(role["token_period"], 30);
    assert!(matches!(
        call(
            &mut storage,
            Operation::Update,
            "role/none/token-ttl",
            json!({"token_ttl": 1})
        ),
        Err(LogicalError::InvalidRequest(_))
    ));
    assert!(matches!(
        call(
            &mut storage,
            Operation::Update,
            "role/web/local-secret-ids",
            json!({"local_secret_ids": true})
        ),
        Err(LogicalError::UnsupportedOperation)
    ));
}

#[test]
fn role_names_are_case_insensitive() {
    let mut storage = MemoryStorage::default();
    call(&mut storage, Operation::Update, "role/MyRole", json!({})).unwrap();
    assert!(call(&mut storage, Operation::Read, "role/myrole", json!({})).is_ok());
    assert!(
        call(
            &mut storage,
            Operation::Read,
            "role/MYROLE/role-id",
            json!({})
        )
        .is_ok()
    );
}

#[test]
fn debug_output_redacts_credentials() {
    let mut storage = MemoryStorage::default();
    let (role_id, _) = role_with_secret(&mut storage, json!({}), json!({}));
    let role = super::model::load_role(&mut storage, "web")
        .unwrap()
        .unwrap();
    assert!(!format!("{role:?}").contains(&role_id));
    let key = storage
        .keys()
        .into_iter()
        .find(|k| k.starts_with("secret_id/"))
        .unwrap();
    let entry: super::model::SecretIdEntry = crate::auth::methods::store::load(&mut storage, &key)
        .unwrap()
        .unwrap();
    assert!(!format!("{entry:?}").contains(&entry.hmac));
}
