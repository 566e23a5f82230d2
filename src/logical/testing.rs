//! An in-memory [`Storage`] for engine unit tests.

use std::collections::BTreeMap;

use super::Storage;
use super::StorageError;

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
