//! KV version 1 (Vault's unversioned `kv`): a flat JSON object per path, read, written, deleted
//! and listed in place (LIST pages with `after`/`limit`, and `recursive=true`, as in KV v2). Storage: `data/<path>` -> the object as JSON (behind the codec).

use serde_json::Map;
use serde_json::Value;

use super::model::VersionData;
use super::model::load;
use super::model::store;
use super::model::validate_path;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::StorageError;
use crate::logical::list_children;
use crate::logical::list_descendants;

/// The KV v1 engine.
#[derive(Debug, Default)]
pub struct KvV1;

fn data_key(path: &str) -> String {
    format!("data/{path}")
}

impl Backend for KvV1 {
    /// A key exists once it has been written.
    fn exists(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Option<bool>, LogicalError> {
        let path = request.path.as_str();
        if validate_path(path).is_err() {
            return Ok(None);
        }
        Ok(Some(storage.get(&data_key(path))?.is_some()))
    }

    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError> {
        let path = request.path.as_str();
        if request.operation == Operation::List {
            if path.split('/').any(|segment| segment == "..") {
                return Err(LogicalError::invalid("invalid path: '..' segment"));
            }
            let prefix = if path.is_empty() || path.ends_with('/') {
                path.to_string()
            } else {
                format!("{path}/")
            };
            let full = data_key(&prefix);
            let keys = storage.keys_under(&full)?;
            let entries = if request.recursive()? {
                list_descendants(&full, &keys)
            } else {
                list_children(&full, &keys)
            };
            return Ok(Response::list(request.list_page(entries)?));
        }
        validate_path(path)?;
        match request.operation {
            Operation::Read => {
                let Some(stored) = load::<VersionData>(storage, &data_key(path))? else {
                    return Err(LogicalError::NotFound);
                };
                let data: Map<String, Value> = serde_json::from_str(&stored.json)
                    .map_err(|_| LogicalError::Storage(StorageError::Corrupt(data_key(path))))?;
                Ok(Response::with_data(data))
            }
            Operation::Create | Operation::Update => {
                if request.data.is_empty() {
                    return Err(LogicalError::invalid("no data provided"));
                }
                let json = serde_json::to_string(&request.data)
                    .map_err(|err| LogicalError::invalid(err.to_string()))?;
                store(storage, &data_key(path), &VersionData { json })?;
                Ok(Response::no_content())
            }
            Operation::Delete => {
                storage.delete(&data_key(path))?;
                Ok(Response::no_content())
            }
            Operation::Patch | Operation::List => Err(LogicalError::UnsupportedOperation),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::logical::testing::MemoryStorage;

    fn call(
        storage: &mut MemoryStorage,
        operation: Operation,
        path: &str,
        body: Value,
    ) -> Result<Response, LogicalError> {
        let request = crate::logical::testing::request(operation, path, body);
        KvV1.handle(&request, storage)
    }

    #[test]
    fn read_write_list_delete() {
        let mut storage = MemoryStorage::default();
        call(
            &mut storage,
            Operation::Update,
            "app/db",
            json!({"user": "u", "n": 1}),
        )
        .unwrap();
        call(
            &mut storage,
            Operation::Update,
            "app/cache",
            json!({"k": "v"}),
        )
        .unwrap();
        let read = call(&mut storage, Operation::Read, "app/db", Value::Null).unwrap();
        assert_eq!(
            Value::Object(read.data.unwrap()),
            json!({"user": "u", "n": 1})
        );
        let listed = call(&mut storage, Operation::List, "app", Value::Null).unwrap();
        assert_eq!(listed.data.unwrap()["keys"], json!(["cache", "db"]));
        call(&mut storage, Operation::Delete, "app/db", Value::Null).unwrap();
        assert!(matches!(
            call(&mut storage, Operation::Read, "app/db", Value::Null),
            Err(LogicalError::NotFound)
        ));
        assert!(call(&mut storage, Operation::Update, "a/../b", json!({"k": 1})).is_err());
        assert!(call(&mut storage, Operation::Update, "empty", json!({})).is_err());
    }
}
