//! The KV secrets engine, version 2 (Vault's `kv` with `options.version = "2"`): versioned
//! secrets with check-and-set, soft delete, undelete, destroy, metadata and a mount config.
//!
//! Paths below the mount: `data/<path>`, `metadata/<path>`, `delete/<path>`, `undelete/<path>`,
//! `destroy/<path>`, `subkeys/<path>`, `config`. LIST takes `after` and `limit` for pages, and `recursive=true`
//! for every secret below a folder (hiding those the token may not list). Storage layout: see [`model`].

mod cleanup;
pub mod model;
mod path_data;
mod path_metadata;
mod v1;

pub use self::v1::KvV1;

use serde_json::Value;
use serde_json::json;

use self::model::MountConfig;
use self::model::load_config;
use self::model::store;
use self::model::validate_path;
use self::path_metadata::VersionAction;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::duration;

/// The KV v2 engine. Stateless: everything lives in the mount's storage view.
#[derive(Debug, Default)]
pub struct KvV2;

impl Backend for KvV2 {
    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError> {
        let (group, rest) = match request.path.split_once('/') {
            Some((group, rest)) => (group, rest),
            None => (request.path.as_str(), ""),
        };
        match (group, request.operation) {
            ("config", operation) if rest.is_empty() => config(request, operation, storage),
            ("metadata", Operation::List) => path_metadata::list(request, rest, storage),
            ("data", Operation::List) => path_metadata::list(request, rest, storage),
            ("data" | "metadata" | "delete" | "undelete" | "destroy" | "subkeys", _) => {
                validate_path(rest)?;
                dispatch(group, request, rest, storage)
            }
            _ => Err(LogicalError::UnsupportedPath),
        }
    }

    fn periodic(&self, storage: &mut dyn Storage, now_secs: u64) -> Result<(), LogicalError> {
        cleanup::expire_versions(storage, now_secs)
    }

    /// A secret exists once it has metadata (any version, even deleted ones).
    fn exists(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Option<bool>, LogicalError> {
        match request.path.split_once('/') {
            Some(("data" | "metadata", path)) if validate_path(path).is_ok() => {
                Ok(Some(storage.get(&model::meta_key(path))?.is_some()))
            }
            _ => Ok(None),
        }
    }
}

fn dispatch(
    group: &str,
    request: &Request,
    path: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    use Operation::{Create, Delete, Patch, Read, Update};
    match (group, request.operation) {
        ("data", Read) => path_data::read(request, path, storage),
        ("subkeys", Read) => path_data::subkeys(request, path, storage),
        ("data", Create | Update) => path_data::write(request, path, storage),
        ("data", Patch) => path_data::patch(request, path, storage),
        ("data", Delete) => path_data::delete_latest(path, storage),
        ("metadata", Read) => path_metadata::read(path, storage),
        ("metadata", Create | Update) => path_metadata::write(request, path, storage),
        ("metadata", Delete) => path_metadata::delete(path, storage),
        ("delete", Create | Update) => {
            path_metadata::change_versions(request, path, VersionAction::Delete, storage)
        }
        ("undelete", Create | Update) => {
            path_metadata::change_versions(request, path, VersionAction::Undelete, storage)
        }
        ("destroy", Create | Update) => {
            path_metadata::change_versions(request, path, VersionAction::Destroy, storage)
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

/// `config`: read or update the mount-wide settings.
fn config(
    request: &Request,
    operation: Operation,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    match operation {
        Operation::Read => {
            let config = load_config(request, storage)?;
            Ok(Response::from_value(json!({
                "cas_required": config.cas_required,
                "delete_version_after": duration::format_seconds(config.delete_version_after),
                "max_versions": config.max_versions,
            })))
        }
        Operation::Create | Operation::Update => {
            let mut config: MountConfig =
                model::load(storage, model::CONFIG_KEY)?.unwrap_or_default();
            if let Some(value) = request.field("max_versions") {
                config.max_versions = match &value {
                    Value::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
                    Value::String(text) => text.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    LogicalError::invalid("max_versions must be a non-negative integer")
                })?;
            }
            if let Some(value) = request.field("cas_required") {
                config.cas_required = match value {
                    Value::Bool(flag) => flag,
                    Value::String(text) => text
                        .parse()
                        .map_err(|_| LogicalError::invalid("cas_required must be a boolean"))?,
                    _ => return Err(LogicalError::invalid("cas_required must be a boolean")),
                };
            }
            if let Some(value) = request.field("delete_version_after") {
                config.delete_version_after =
                    duration::parse_seconds(&value).map_err(LogicalError::invalid)?;
            }
            store(storage, model::CONFIG_KEY, &config)?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

#[cfg(test)]
mod tests;
