//! Test support for engines and auth methods: an in-memory [`Storage`] and a request builder.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Operation;
use super::Request;
use super::Storage;
use super::StorageError;

/// A request for `path` with a JSON object body (anything else: no body), from `127.0.0.1`.
pub fn request(operation: Operation, path: &str, body: Value) -> Request {
    let mut request = Request::new(operation, path);
    if let Value::Object(map) = body {
        request.data = map;
    }
    request.remote_address = Some("127.0.0.1".into());
    request
}

/// A plain map standing in for a mount's storage view.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    values: BTreeMap<String, Vec<u8>>,
}

impl MemoryStorage {
    /// Every stored key.
    pub fn keys(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }
}

impl Storage for MemoryStorage {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.values.get(key).cloned())
    }

    fn keys_under(&mut self, prefix: &str) -> Result<Vec<String>, StorageError> {
        Ok(self
            .values
            .range(prefix.to_string()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, _)| key.clone())
            .collect())
    }

    fn put(&mut self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.values.insert(key.to_string(), value);
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), StorageError> {
        self.values.remove(key);
        Ok(())
    }

    fn delete_prefix(&mut self, prefix: &str) -> Result<(), StorageError> {
        self.values.retain(|key, _| !key.starts_with(prefix));
        Ok(())
    }
}
