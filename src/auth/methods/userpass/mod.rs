//! The userpass auth method (Vault's `userpass`): people log in with a username and password.
//!
//! Paths below the mount (Vault's): `users` (LIST), `users/<name>` (CRUD, with `password` and the
//! `token_*` settings), `users/<name>/password`, `users/<name>/policies`, and `login/<name>`
//! (unauthenticated). Passwords are hashed with Argon2id ([`password`]); a login for an unknown
//! user still runs one verification, and every failure answers the same 400 "invalid username or
//! password". Storage layout: see [`model`].

pub mod model;
pub mod password;
mod path_login;
mod path_users;

use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// The userpass auth method. Stateless: everything lives in the mount's storage view.
#[derive(Debug, Default)]
pub struct Userpass;

impl Backend for Userpass {
    fn handle(
        &self,
        request: &Request,
        storage: &mut dyn Storage,
    ) -> Result<Response, LogicalError> {
        use Operation::{Create, Delete, List, Read, Update};
        let path = request.path.trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        let operation = request.operation;
        match (segments.as_slice(), operation) {
            (["users"], List) => path_users::list(storage),
            (["login", name], Create | Update) => path_login::login(request, storage, name),
            (["users", name, rest @ ..], _) => {
                let name = model::username(name)?;
                match (rest, operation) {
                    ([], Read) => path_users::read(storage, &name),
                    ([], Create | Update) => path_users::write(request, storage, &name),
                    ([], Delete) => path_users::delete(storage, &name),
                    (["password"], Create | Update) => {
                        path_users::write_password(request, storage, &name)
                    }
                    (["policies"], Create | Update) => {
                        path_users::write_policies(request, storage, &name)
                    }
                    ([] | ["password" | "policies"], _) => Err(LogicalError::UnsupportedOperation),
                    _ => Err(LogicalError::UnsupportedPath),
                }
            }
            (["users"] | ["login", _], _) => Err(LogicalError::UnsupportedOperation),
            _ => Err(LogicalError::UnsupportedPath),
        }
    }

    fn unauthenticated_paths(&self) -> &'static [&'static str] {
        &["login/*"]
    }
}

#[cfg(test)]
mod tests;
