//! The AppRole auth method (Vault's `approle`): machines log in with a role ID and a secret ID.
//!
//! Paths below the mount (Vault's): `login`; `role` (LIST); `role/<name>` (CRUD);
//! `role/<name>/role-id`; `role/<name>/secret-id` (generate; LIST accessors);
//! `role/<name>/custom-secret-id`; `role/<name>/secret-id/{lookup,destroy}`;
//! `role/<name>/secret-id-accessor/{lookup,destroy}`; one path per role setting
//! (`role/<name>/policies`, `.../secret-id-ttl`, ...); `tidy/secret-id`.
//!
//! Secret IDs are stored only as an HMAC under a per-mount random key and compared in constant
//! time. A login that uses up a secret ID's last use deletes it in the same transaction that issues
//! the token; two concurrent logins with the same secret ID read the same entry, so one of them
//! fails its guard and is re-run on the new state. Expired secret IDs are refused at once and
//! removed by `periodic` (and `tidy/secret-id`). Storage layout: see [`model`].

pub mod model;
mod path_login;
mod path_role;
mod path_secret_id;
mod tidy;

use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::time;

/// The AppRole auth method. Stateless: everything lives in the mount's storage view.
#[derive(Debug, Default)]
pub struct AppRole;

impl Backend for AppRole {
    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError> {
        handle_at(request, storage, time::now_nanos())
    }

    fn periodic(&self, storage: &mut dyn Storage, now_secs: u64) -> Result<(), LogicalError> {
        tidy::remove_expired(storage, now_secs).map(|_| ())
    }

    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login"]
    }
}

/// Routes a request, with `now` (ns since the epoch) as the current time.
pub(crate) fn handle_at(
    request: &Request,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    use Operation::{Create, Delete, List, Read, Update};
    let path = request.path.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let operation = request.operation;
    match (segments.as_slice(), operation) {
        (["login"], Create | Update) => path_login::login(request, storage, now),
        (["role"], List) => path_role::list(storage),
        (["tidy", "secret-id"], Create | Update) => tidy::tidy(storage, now),
        (["role", name, rest @ ..], _) => {
            let name = path_role::role_name(name)?;
            match (rest, operation) {
                ([], Read) => path_role::read(storage, &name),
                ([], Create | Update) => path_role::write(request, storage, &name),
                ([], Delete) => path_role::delete(storage, &name),
                (["role-id"], Read) => path_role::read_role_id(storage, &name),
                (["role-id"], Create | Update) => path_role::write_role_id(request, storage, &name),
                (["secret-id"], Create | Update) => {
                    path_secret_id::generate(request, storage, &name, now, false)
                }
                (["secret-id"], List) => path_secret_id::list(storage, &name),
                (["custom-secret-id"], Create | Update) => {
                    path_secret_id::generate(request, storage, &name, now, true)
                }
                (["secret-id", "lookup"], Create | Update) => {
                    path_secret_id::lookup(request, storage, &name)
                }
                (["secret-id", "destroy"], Create | Update | Delete) => {
                    path_secret_id::destroy(request, storage, &name)
                }
                (["secret-id-accessor", "lookup"], Create | Update) => {
                    path_secret_id::lookup_accessor(request, storage, &name)
                }
                (["secret-id-accessor", "destroy"], Create | Update | Delete) => {
                    path_secret_id::destroy_accessor(request, storage, &name)
                }
                ([field], _) if path_role::is_field_path(field) => {
                    path_role::field(request, storage, &name, field)
                }
                ([] | ["role-id" | "secret-id" | "custom-secret-id"], _)
                | (["secret-id" | "secret-id-accessor", "lookup" | "destroy"], _) => {
                    Err(LogicalError::UnsupportedOperation)
                }
                _ => Err(LogicalError::UnsupportedPath),
            }
        }
        (["login"] | ["role"] | ["tidy", "secret-id"], _) => {
            Err(LogicalError::UnsupportedOperation)
        }
        _ => Err(LogicalError::UnsupportedPath),
    }
}

#[cfg(test)]
mod tests;
