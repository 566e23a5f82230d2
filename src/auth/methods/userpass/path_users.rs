//! `users`, `users/<name>`, `users/<name>/password` and `users/<name>/policies`: manage users.
//! A new user needs a password; everything is validated (and the password hashed) before anything
//! is staged.

use super::model::USER_PREFIX;
use super::model::UserEntry;
use super::model::load_user;
use super::model::user_key;
use super::password;
use crate::auth::methods::fields;
use crate::auth::methods::store::save;
use crate::auth::methods::token_params::Alias;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::list_children;

/// Deprecated userpass field names Vault still accepts.
const TOKEN_ALIASES: &[Alias] = &[
    ("policies", "token_policies"),
    ("ttl", "token_ttl"),
    ("max_ttl", "token_max_ttl"),
    ("bound_cidrs", "token_bound_cidrs"),
];

/// The longest password accepted (bytes).
pub(crate) const MAX_PASSWORD_LEN: usize = 1024;

/// `LIST users`.
pub(crate) fn list(storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let keys = storage.keys_under(USER_PREFIX)?;
    Ok(Response::list(list_children(USER_PREFIX, &keys)))
}

/// `GET users/<name>`.
pub(crate) fn read(storage: &mut dyn Storage, name: &str) -> Result<Response, LogicalError> {
    let user = load_user(storage, name)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(user.to_json()))
}

/// The body's `password`, checked; `None` when absent.
fn password_field(request: &Request) -> Result<Option<&str>, LogicalError> {
    match fields::body_str(request, "password")? {
        None => Ok(None),
        Some("") => Err(LogicalError::invalid("missing password")),
        Some(text) if text.len() > MAX_PASSWORD_LEN => Err(LogicalError::invalid(format!(
            "password is too long (at most {MAX_PASSWORD_LEN} bytes)"
        ))),
        Some(text) => Ok(Some(text)),
    }
}

/// `POST users/<name>`: creates (a `password` is required) or updates a user.
pub(crate) fn write(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let existing = load_user(storage, name)?;
    let password = password_field(request)?;
    if existing.is_none() && password.is_none() {
        return Err(LogicalError::invalid("missing password"));
    }
    let mut user = existing.unwrap_or_default();
    user.token.update(request, TOKEN_ALIASES)?;
    if let Some(password) = password {
        user.password_hash = password::hash(password)?;
    }
    save(storage, &user_key(name), &user)?;
    Ok(Response::no_content())
}

fn require_user(storage: &mut dyn Storage, name: &str) -> Result<UserEntry, LogicalError> {
    load_user(storage, name)?.ok_or_else(|| LogicalError::invalid("username does not exist"))
}

/// `DELETE users/<name>`.
pub(crate) fn delete(storage: &mut dyn Storage, name: &str) -> Result<Response, LogicalError> {
    storage.delete(&user_key(name))?;
    Ok(Response::no_content())
}

/// `POST users/<name>/password` with `{"password"}`.
pub(crate) fn write_password(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let password =
        password_field(request)?.ok_or_else(|| LogicalError::invalid("missing password"))?;
    let mut user = require_user(storage, name)?;
    user.password_hash = password::hash(password)?;
    save(storage, &user_key(name), &user)?;
    Ok(Response::no_content())
}

/// `POST users/<name>/policies` with `{"token_policies"}` (or the deprecated `policies`).
pub(crate) fn write_policies(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let (value, field) = request
        .field("token_policies")
        .map(|value| (value, "token_policies"))
        .or_else(|| request.field("policies").map(|value| (value, "policies")))
        .ok_or_else(|| LogicalError::invalid("missing token_policies"))?;
    let policies = fields::policies(&value, field)?;
    let mut user = require_user(storage, name)?;
    user.token.policies = policies;
    save(storage, &user_key(name), &user)?;
    Ok(Response::no_content())
}
