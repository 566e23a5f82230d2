//! userpass behaviour through an in-memory storage view (no raft, no HTTP).

use serde_json::Value;
use serde_json::json;

use super::Userpass;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::testing::MemoryStorage;

fn call(
    storage: &mut MemoryStorage,
    operation: Operation,
    path: &str,
    body: Value,
) -> Result<Response, LogicalError> {
    let request = crate::logical::testing::request(operation, path, body);
    Userpass.handle(&request, storage)
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

fn login(
    storage: &mut MemoryStorage,
    name: &str,
    password: &str,
) -> Result<Response, LogicalError> {
    call(
        storage,
        Operation::Update,
        &format!("login/{name}"),
        json!({"password": password}),
    )
}

#[test]
fn only_login_is_unauthenticated() {
    assert_eq!(Userpass.unauthenticated_paths(), ["login/*"]);
}

#[test]
fn users_crud_and_list() {
    let mut storage = MemoryStorage::default();
    assert_eq!(
        call(&mut storage, Operation::List, "users", json!({}))
            .unwrap()
            .status,
        Some(404)
    );
    call(
        &mut storage,
        Operation::Update,
        "users/Alice",
        json!({"password": "s3cret-pw", "policies": "dev,ops", "token_ttl": "1h"}),
    )
    .unwrap();
    call(
        &mut storage,
        Operation::Update,
        "users/bob",
        json!({"password": "pw2"}),
    )
    .unwrap();
    let alice = data(&call(&mut storage, Operation::Read, "users/alice", json!({})).unwrap());
    assert_eq!(alice["token_policies"], json!(["dev", "ops"]));
    assert_eq!(alice["policies"], json!(["dev", "ops"]));
    assert_eq!(alice["token_ttl"], 3600);
    assert!(alice.get("password").is_none() && alice.get("password_hash").is_none());
    let listed = data(&call(&mut storage, Operation::List, "users/", json!({})).unwrap());
    assert_eq!(listed["keys"], json!(["alice", "bob"]));

    // An update without a password keeps it.
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"token_ttl": 60}),
    )
    .unwrap();
    login(&mut storage, "alice", "s3cret-pw").unwrap();

    call(&mut storage, Operation::Delete, "users/bob", json!({})).unwrap();
    assert!(matches!(
        call(&mut storage, Operation::Read, "users/bob", json!({})),
        Err(LogicalError::NotFound)
    ));
    assert_eq!(
        error_message(login(&mut storage, "bob", "pw2")),
        "invalid username or password"
    );
}

#[test]
fn login_grants_the_users_token_settings() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "pw", "token_policies": ["reader"], "token_ttl": 600,
               "token_max_ttl": "1h", "token_bound_cidrs": "127.0.0.0/8"}),
    )
    .unwrap();
    let response = login(&mut storage, "ALICE", "pw").unwrap();
    assert!(response.data.is_none());
    let auth = response.auth.expect("a grant");
    assert_eq!(auth.policies, ["reader"]);
    assert_eq!((auth.ttl, auth.max_ttl), (600, 3600));
    assert_eq!(auth.display_name, "alice");
    assert_eq!(
        auth.metadata.get("username").map(String::as_str),
        Some("alice")
    );
    assert_eq!(auth.bound_cidrs, ["127.0.0.0/8"]);
    assert!(auth.renewable);
}

#[test]
fn wrong_passwords_and_unknown_users_get_one_message() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "right"}),
    )
    .unwrap();
    for (name, password) in [
        ("alice", "wrong"),
        ("nobody", "right"),
        ("bad name", "x"),
        ("..", "x"),
    ] {
        let message = error_message(login(&mut storage, name, password));
        assert_eq!(message, "invalid username or password", "{name}");
    }
    assert_eq!(
        error_message(login(&mut storage, "alice", "")),
        "missing password"
    );
}

#[test]
fn passwords_are_stored_only_as_argon2id_hashes() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "Tr0ub4dor&3"}),
    )
    .unwrap();
    for (key, value) in snapshot(&mut storage) {
        assert!(!value.windows(11).any(|w| w == b"Tr0ub4dor&3"), "{key}");
        assert!(String::from_utf8_lossy(&value).contains("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
    let user = super::model::load_user(&mut storage, "alice")
        .unwrap()
        .unwrap();
    assert!(
        !format!("{user:?}").contains("argon2id"),
        "Debug redacts the hash"
    );
}

#[test]
fn password_and_policies_paths() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "old"}),
    )
    .unwrap();
    call(
        &mut storage,
        Operation::Update,
        "users/alice/password",
        json!({"password": "new"}),
    )
    .unwrap();
    assert!(login(&mut storage, "alice", "old").is_err());
    login(&mut storage, "alice", "new").unwrap();
    call(
        &mut storage,
        Operation::Update,
        "users/alice/policies",
        json!({"policies": "a,b"}),
    )
    .unwrap();
    let auth = login(&mut storage, "alice", "new").unwrap().auth.unwrap();
    assert_eq!(auth.policies, ["a", "b"]);
    assert_eq!(
        error_message(call(
            &mut storage,
            Operation::Update,
            "users/nobody/password",
            json!({"password": "x"})
        )),
        "username does not exist"
    );
}

#[test]
fn bad_input_is_refused_without_writes() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "pw"}),
    )
    .unwrap();
    let before = snapshot(&mut storage);
    for (path, body) in [
        ("users/bob", json!({})),
        ("users/bob", json!({"password": ""})),
        ("users/bob", json!({"password": 5})),
        ("users/bob", json!({"password": "x".repeat(2000)})),
        ("users/bob", json!({"password": "pw", "token_ttl": "later"})),
        ("users/alice", json!({"token_policies": "root"})),
        ("users/alice", json!({"token_bound_cidrs": "1.2.3.4/40"})),
        (
            "users/alice",
            json!({"password": "new", "token_type": "batch"}),
        ),
        ("users/bad%name", json!({"password": "pw"})),
        ("users/..", json!({"password": "pw"})),
        ("users/alice/password", json!({})),
        ("users/alice/policies", json!({})),
        ("users/alice/policies", json!({"policies": ["a/b"]})),
    ] {
        let result = call(&mut storage, Operation::Update, path, body.clone());
        assert!(
            matches!(result, Err(LogicalError::InvalidRequest(_))),
            "{path} {body}: {result:?}"
        );
        assert_eq!(snapshot(&mut storage), before, "{path} must write nothing");
    }
    assert!(matches!(
        call(&mut storage, Operation::Read, "login/alice", json!({})),
        Err(LogicalError::UnsupportedOperation)
    ));
    assert!(matches!(
        call(&mut storage, Operation::Read, "nosuch", json!({})),
        Err(LogicalError::UnsupportedPath)
    ));
}

#[test]
fn token_bound_cidrs_refuse_logins_from_elsewhere() {
    let mut storage = MemoryStorage::default();
    call(
        &mut storage,
        Operation::Update,
        "users/alice",
        json!({"password": "pw", "token_bound_cidrs": "10.0.0.0/8"}),
    )
    .unwrap();
    let message = error_message(login(&mut storage, "alice", "pw"));
    assert_eq!(message, "login request originated from invalid CIDR");
}

#[test]
fn hashes_with_old_parameters_are_upgraded_at_login() {
    use argon2::PasswordHasher;
    let mut storage = MemoryStorage::default();
    let params = argon2::Params::new(8, 1, 1, Some(32)).unwrap();
    let weak = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_with_salt(b"pw", b"0123456789abcdef")
        .unwrap()
        .to_string();
    let user = super::model::UserEntry {
        password_hash: weak.clone(),
        ..Default::default()
    };
    crate::auth::methods::store::save(&mut storage, "user/old", &user).unwrap();
    login(&mut storage, "old", "pw").unwrap();
    let upgraded = super::model::load_user(&mut storage, "old")
        .unwrap()
        .unwrap();
    assert_ne!(upgraded.password_hash, weak);
    assert!(!super::password::needs_rehash(&upgraded.password_hash));
}
