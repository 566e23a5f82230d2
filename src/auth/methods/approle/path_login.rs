//! `login` with `{"role_id", "secret_id"}`: finds the role by the HMAC of its role ID, checks the
//! role's and the secret ID's CIDR bounds against the client's address, spends one use of the
//! secret ID (deleting it on its last use) in the same transaction that issues the token, and
//! returns the grant. Every credential failure answers Vault's 400 "invalid role or secret ID".

use std::collections::BTreeMap;

use super::model::RoleIdIndex;
use super::model::Salt;
use super::model::delete_secret_id;
use super::model::hmac_eq;
use super::model::load_role;
use super::model::load_secret_id;
use super::model::role_id_key;
use super::model::secret_id_key;
use crate::auth::methods::cidr;
use crate::auth::methods::fields;
use crate::auth::methods::store::load;
use crate::auth::methods::store::save;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

fn invalid_credentials() -> LogicalError {
    LogicalError::invalid("invalid role or secret ID")
}

/// `POST login`.
pub(crate) fn login(
    request: &Request,
    storage: &mut dyn Storage,
    now: u64,
) -> Result<Response, LogicalError> {
    let role_id = fields::body_str(request, "role_id")?.unwrap_or_default();
    if role_id.is_empty() {
        return Err(LogicalError::invalid("missing role_id"));
    }
    let salt = Salt::load(storage)?.ok_or_else(invalid_credentials)?;
    let index = load::<RoleIdIndex>(storage, &role_id_key(&salt.hmac_hex("role_id", role_id)))?
        .ok_or_else(invalid_credentials)?;
    let role = load_role(storage, &index.role_name)?.ok_or_else(invalid_credentials)?;
    if !hmac_eq(&role.role_id, role_id) {
        return Err(invalid_credentials());
    }
    let remote = request.remote_address.as_deref();
    if !cidr::allows(&role.secret_id_bound_cidrs, remote) {
        return Err(LogicalError::invalid(format!(
            "source address {:?} unauthorized by CIDR restrictions on the role",
            remote.unwrap_or("")
        )));
    }
    let mut metadata = BTreeMap::new();
    let mut token_bound_cidrs = role.token.bound_cidrs.clone();
    if role.bind_secret_id {
        let secret_id = fields::body_str(request, "secret_id")?.unwrap_or_default();
        if secret_id.is_empty() {
            return Err(LogicalError::invalid("missing secret_id"));
        }
        let hmac = salt.hmac_hex("secret_id", secret_id);
        let mut entry =
            load_secret_id(storage, &role.name, &hmac)?.ok_or_else(invalid_credentials)?;
        if entry.is_expired(now) {
            return Err(invalid_credentials());
        }
        if !cidr::allows(&entry.cidr_list, remote) {
            return Err(LogicalError::invalid(format!(
                "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                remote.unwrap_or("")
            )));
        }
        match entry.num_uses {
            0 => {}
            1 => delete_secret_id(storage, &role.name, &entry)?,
            left => {
                entry.num_uses = left - 1;
                entry.last_updated_nanos = now;
                save(storage, &secret_id_key(&role.name, &entry.hmac), &entry)?;
            }
        }
        if !entry.token_bound_cidrs.is_empty() {
            token_bound_cidrs = entry.token_bound_cidrs.clone();
        }
        metadata = entry.metadata;
    }
    metadata.insert("role_name".to_string(), role.name.clone());
    let mut auth = role.token.to_auth();
    auth.metadata = metadata;
    auth.bound_cidrs = token_bound_cidrs;
    Ok(Response::login(auth))
}
