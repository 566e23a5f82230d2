//! `login/<name>` with `{"password"}`: verifies the password against the stored Argon2id hash (or,
//! for an unknown user, against a dummy hash, so both take the same time), checks the user's
//! `token_bound_cidrs` against the client's address, upgrades a hash made with old parameters, and
//! returns the grant. Every credential failure answers Vault's 400 "invalid username or password".

use std::collections::BTreeMap;

use super::model::load_user;
use super::model::user_key;
use super::model::username;
use super::password;
use super::path_users::MAX_PASSWORD_LEN;
use crate::auth::methods::cidr;
use crate::auth::methods::fields;
use crate::auth::methods::store::save;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

fn invalid_credentials() -> LogicalError {
    LogicalError::invalid("invalid username or password")
}

/// `POST login/<name>`.
pub(crate) fn login(
    request: &Request,
    storage: &mut dyn Storage,
    raw_name: &str,
) -> Result<Response, LogicalError> {
    let password = fields::body_str(request, "password")?.unwrap_or_default();
    if password.is_empty() {
        return Err(LogicalError::invalid("missing password"));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(invalid_credentials());
    }
    // A name that cannot exist is treated like an unknown user (same work, same answer).
    let user = match username(raw_name) {
        Ok(name) => load_user(storage, &name)?.map(|user| (name, user)),
        Err(_) => None,
    };
    let Some((name, mut user)) = user else {
        password::verify_dummy(password);
        return Err(invalid_credentials());
    };
    if !password::verify(password, &user.password_hash)? {
        return Err(invalid_credentials());
    }
    if !cidr::allows(&user.token.bound_cidrs, request.remote_address.as_deref()) {
        return Err(LogicalError::invalid(
            "login request originated from invalid CIDR",
        ));
    }
    if password::needs_rehash(&user.password_hash) {
        user.password_hash = password::hash(password)?;
        save(storage, &user_key(&name), &user)?;
    }
    let mut auth = user.token.to_auth();
    auth.metadata = BTreeMap::from([("username".to_string(), name.clone())]);
    auth.display_name = name;
    Ok(Response::login(auth))
}
