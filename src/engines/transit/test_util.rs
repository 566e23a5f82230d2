//! Helpers for transit's unit tests: a policy of any type, and requests through the engine with
//! an in-memory storage view.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use super::keytype::KeyType;
use super::material;
use super::policy::KeyPolicy;
use super::policy::RestoreInfo;
use super::policy::RotationPolicy;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::testing::MemoryStorage;
use crate::logical::time;

/// A one-version policy named `test` of type `kind`.
pub fn policy(kind: KeyType) -> KeyPolicy {
    let entry = material::generate(kind, 0, time::now_nanos()).unwrap();
    KeyPolicy {
        name: "test".into(),
        key_type: kind,
        versions: BTreeMap::from([(1, entry)]),
        latest_version: 1,
        min_available_version: 0,
        min_decryption_version: 1,
        min_encryption_version: 0,
        deletion_allowed: false,
        derived: false,
        convergent_encryption: false,
        exportable: false,
        allow_plaintext_backup: false,
        auto_rotate_period: 0,
        rotation: RotationPolicy::default(),
        notified_version: 0,
        deletion_window: 0,
        key_size: 32,
        restore_info: RestoreInfo::default(),
    }
}

pub use crate::logical::testing::request;

/// Runs a request at the current time.
pub fn call(
    storage: &mut MemoryStorage,
    operation: Operation,
    path: &str,
    body: Value,
) -> Result<Response, LogicalError> {
    super::route(&request(operation, path, body), storage, time::now_nanos())
}

/// Runs a request at `now` (ns since the epoch).
pub fn call_at(
    storage: &mut MemoryStorage,
    now: u64,
    operation: Operation,
    path: &str,
    body: Value,
) -> Result<Response, LogicalError> {
    super::route(&request(operation, path, body), storage, now)
}

/// POST (Update) that must succeed; returns the data.
pub fn post(storage: &mut MemoryStorage, path: &str, body: Value) -> Value {
    match call(storage, Operation::Update, path, body) {
        Ok(response) => data(&response),
        Err(err) => panic!("POST {path} failed: {err}"),
    }
}

/// POST that must fail with a 400; returns the message.
pub fn post_err(storage: &mut MemoryStorage, path: &str, body: Value) -> String {
    match call(storage, Operation::Update, path, body) {
        Ok(response) => panic!("POST {path} should fail, got {:?}", response.data),
        Err(LogicalError::InvalidRequest(message)) => message,
        Err(other) => panic!("POST {path} failed with a non-400 error: {other}"),
    }
}

/// GET that must succeed; returns the data.
pub fn get(storage: &mut MemoryStorage, path: &str) -> Value {
    match call(storage, Operation::Read, path, Value::Null) {
        Ok(response) => data(&response),
        Err(err) => panic!("GET {path} failed: {err}"),
    }
}

/// The response's data as a JSON value (`null` when there is none).
pub fn data(response: &Response) -> Value {
    response.data.clone().map_or(Value::Null, Value::Object)
}

/// Base64 of bytes.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes base64 from a JSON string value.
pub fn unb64(value: &Value) -> Vec<u8> {
    B64.decode(value.as_str().unwrap()).unwrap()
}

/// Every stored key and value, to check that a request changed nothing.
pub fn snapshot(storage: &mut MemoryStorage) -> Vec<(String, Option<Vec<u8>>)> {
    use crate::logical::Storage;
    storage
        .keys()
        .into_iter()
        .map(|key| {
            let value = storage.get(&key).unwrap();
            (key, value)
        })
        .collect()
}
