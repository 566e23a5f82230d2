//! The transit secrets engine: named, versioned keys used through the vault (encrypt, decrypt,
//! rewrap, data keys, HMAC, sign, verify) whose material never leaves unless the key allows it.
//! Vault's paths and shapes, plus scheduled deletion (AWS KMS / Azure soft delete) and an
//! Azure-style rotation policy with expiry and a notify-before-expiry event.
//!
//! Paths below the mount (one module per group):
//! - `keys` (LIST), `keys/<name>` (create, read, delete): [`path_keys`]
//! - `keys/<name>/config`, `keys/<name>/rotation-policy`: [`path_config`]
//! - `keys/<name>/rotate`, `keys/<name>/trim`: [`path_rotate`]
//! - `encrypt/<name>`, `decrypt/<name>`, `rewrap/<name>`: [`path_encrypt`], [`path_decrypt`],
//!   [`path_rewrap`]
//! - `datakey/(plaintext|wrapped)/<name>`: [`path_datakey`]
//! - `hmac/<name>[/<algorithm>]`: [`path_hmac`]
//! - `sign/<name>[/<algorithm>]`, `verify/<name>[/<algorithm>]`: [`path_sign_verify`]
//! - `random[/<source>][/<bytes>]`, `hash[/<algorithm>]`: [`path_random_hash`]
//! - `export/<type>/<name>[/<version>]`, `backup/<name>`, `restore[/<name>]`:
//!   [`path_export_backup`]
//! - `deleted` (LIST), `deleted/<name>` (read, purge), `deleted/<name>/recover`, and `events`:
//!   [`path_deleted`]
//!
//! Storage layout and the per-node key cache: [`store`]. Background work: [`schedule`].
//!
//! Differences from Vault, by design: encrypting with an unknown key is refused (no upsert);
//! a `v0` ciphertext is refused (Vault reads it as v1); `DELETE keys/<name>` keeps the key
//! restorable for its deletion window; `sha1` and `ecdsa-p521` are not offered; batches hold at
//! most [`fields::MAX_BATCH`] items.

mod cipher;
mod fields;
mod hashing;
mod keytype;
mod material;
mod path_config;
mod path_datakey;
mod path_decrypt;
mod path_deleted;
mod path_encrypt;
mod path_export_backup;
mod path_hmac;
mod path_keys;
mod path_random_hash;
mod path_rewrap;
mod path_rotate;
mod path_sign_verify;
mod policy;
mod schedule;
mod signing;
mod store;
#[cfg(test)]
mod test_util;

pub use self::keytype::KeyType;

use std::sync::Arc;

use serde_json::Map;
use serde_json::Value;

use self::store::LoadedKey;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::StorageError;
use crate::logical::time;

/// The transit engine. Stateless per instance: keys live in the mount's storage view, decoded
/// keys in a per-process cache (see [`store`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct Transit;

impl Backend for Transit {
    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError> {
        route(request, storage, time::now_nanos())
    }

    fn periodic(&self, storage: &mut dyn Storage, now_secs: u64) -> Result<(), LogicalError> {
        schedule::periodic(storage, now_secs)
    }
}

/// Dispatches a request at `now` (ns since the epoch).
fn route(request: &Request, storage: &mut dyn Storage, now: u64) -> Result<Response, LogicalError> {
    use Operation::Create;
    use Operation::Delete;
    use Operation::List;
    use Operation::Read;
    use Operation::Update;
    let path = request.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let op = request.operation;
    let write = matches!(op, Create | Update);
    match (segments.as_slice(), op) {
        (["keys"], List) => path_keys::list(storage),
        (["keys", name], Read) => path_keys::read(checked(name)?, storage),
        (["keys", name], _) if write => path_keys::create(request, checked(name)?, storage, now),
        (["keys", name], Delete) => path_keys::delete(request, checked(name)?, storage, now),
        (["keys", name, "config"], _) if write => {
            path_config::write(request, checked(name)?, storage)
        }
        (["keys", name, "rotation-policy"], Read) => {
            path_config::read_rotation(checked(name)?, storage)
        }
        (["keys", name, "rotation-policy"], _) if write => {
            path_config::write_rotation(request, checked(name)?, storage)
        }
        (["keys", name, "rotation-policy"], Delete) => {
            path_config::delete_rotation(checked(name)?, storage)
        }
        (["keys", name, "rotate"], _) if write => path_rotate::rotate(checked(name)?, storage, now),
        (["keys", name, "trim"], _) if write => path_rotate::trim(request, checked(name)?, storage),
        (["encrypt", name], _) if write => {
            path_encrypt::encrypt(request, checked(name)?, storage, now)
        }
        (["decrypt", name], _) if write => path_decrypt::decrypt(request, checked(name)?, storage),
        (["rewrap", name], _) if write => {
            path_rewrap::rewrap(request, checked(name)?, storage, now)
        }
        (["datakey", kind, name], _) if write => {
            path_datakey::datakey(request, kind, checked(name)?, storage, now)
        }
        (["hmac", name, rest @ ..], _) if write && rest.len() <= 1 => {
            path_hmac::hmac(request, checked(name)?, rest.first().copied(), storage, now)
        }
        (["sign", name, rest @ ..], _) if write && rest.len() <= 1 => {
            path_sign_verify::sign(request, checked(name)?, rest.first().copied(), storage, now)
        }
        (["verify", name, rest @ ..], _) if write && rest.len() <= 1 => {
            path_sign_verify::verify(request, checked(name)?, rest.first().copied(), storage)
        }
        (["random", rest @ ..], _) if write && rest.len() <= 2 => {
            path_random_hash::random(request, rest)
        }
        (["hash", rest @ ..], _) if write && rest.len() <= 1 => {
            path_random_hash::hash(request, rest.first().copied())
        }
        (["export", kind, name, rest @ ..], Read) if rest.len() <= 1 => {
            path_export_backup::export(kind, checked(name)?, rest.first().copied(), storage)
        }
        (["backup", name], Read) => path_export_backup::backup(checked(name)?, storage),
        (["restore", rest @ ..], _) if write && rest.len() <= 1 => {
            let name = rest.first().map(|name| checked(name)).transpose()?;
            path_export_backup::restore(request, name, storage, now)
        }
        (["deleted"], List) => path_deleted::list(storage),
        (["deleted", name], Read) => path_deleted::read(checked(name)?, storage),
        (["deleted", name], Delete) => path_deleted::purge(request, checked(name)?, storage),
        (["deleted", name, "recover"], _) if write => {
            path_deleted::recover(request, checked(name)?, storage)
        }
        (["events"], Read) => path_deleted::events(request, storage),
        (
            [
                "keys" | "encrypt" | "decrypt" | "rewrap" | "datakey" | "hmac" | "sign" | "verify"
                | "random" | "hash" | "export" | "backup" | "restore" | "deleted" | "events",
                ..,
            ],
            _,
        ) => Err(LogicalError::UnsupportedOperation),
        _ => Err(LogicalError::UnsupportedPath),
    }
}

/// Checks a key name: Vault's `\w(([\w-.]+)?\w)?` (letters, digits, `_`; `-` and `.` inside).
fn checked(name: &str) -> Result<&str, LogicalError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let ok = !name.is_empty()
        && name.len() <= 256
        && name.starts_with(word)
        && name.ends_with(word)
        && name.chars().all(|c| word(c) || c == '-' || c == '.');
    if ok {
        Ok(name)
    } else {
        Err(LogicalError::invalid(format!("invalid key name {name:?}")))
    }
}

/// The key named `name`, or a 400 with `missing` (Vault's message for the operation).
fn require_key(
    storage: &mut dyn Storage,
    name: &str,
    missing: &str,
) -> Result<Arc<LoadedKey>, LogicalError> {
    store::load(storage, name)?.ok_or_else(|| LogicalError::invalid(missing))
}

/// An internal failure (never caused by the client; never carries key material).
fn internal(what: &str) -> LogicalError {
    LogicalError::Storage(StorageError::Backend(format!("transit: {what} failed")))
}

/// A single result as the response data.
fn single(result: Map<String, Value>) -> Response {
    Response::with_data(result)
}

/// The response to a batch: `batch_results`, and Vault's status rules: 400 when an item failed
/// on bad input (500 on an internal failure), unless some succeeded and the request set
/// `partial_failure_response_code`.
fn batch_response(
    input: &Map<String, Value>,
    items: &[Map<String, Value>],
    results: Vec<Result<Map<String, Value>, LogicalError>>,
) -> Response {
    let mut user_error = false;
    let mut internal_error = false;
    let mut success = false;
    let mut out = Vec::with_capacity(results.len());
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(map) => {
                success = true;
                out.push(fields::with_reference(item, map));
            }
            Err(err) => {
                match err {
                    LogicalError::Storage(_) => internal_error = true,
                    _ => user_error = true,
                }
                out.push(fields::error_item(item, &err));
            }
        }
    }
    let mut data = Map::new();
    data.insert("batch_results".into(), Value::Array(out));
    let mut response = Response::with_data(data);
    if user_error || internal_error {
        let mut code = if user_error { 400 } else { 500 };
        if success
            && let Ok(Some(custom)) = fields::u64_field(input, "partial_failure_response_code")
        {
            if (1..=599).contains(&custom) {
                code = custom as u16;
            } else {
                response.warnings.push(format!(
                    "invalid HTTP response code override from partial_failure_response_code, \
                     reverting to {code}"
                ));
            }
        }
        response.status = Some(code);
    }
    response
}

/// Runs `one` on the request itself or on each `batch_input` item.
fn single_or_batch(
    request: &Request,
    mut one: impl FnMut(&Map<String, Value>) -> Result<Map<String, Value>, LogicalError>,
) -> Result<Response, LogicalError> {
    let input = fields::input(request);
    match fields::batch(&input)? {
        None => one(&input).map(single),
        Some(items) => {
            let results = items.iter().map(&mut one).collect();
            Ok(batch_response(&input, &items, results))
        }
    }
}

#[cfg(test)]
mod tests;
