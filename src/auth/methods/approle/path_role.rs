//! `role`, `role/<name>`, `role/<name>/role-id` and the one-setting paths
//! (`role/<name>/policies`, `role/<name>/secret-id-ttl`, ...): create, read, update, delete and
//! list roles; read or set a role's role ID.

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::model::ROLE_PREFIX;
use super::model::RoleEntry;
use super::model::RoleIdIndex;
use super::model::Salt;
use super::model::SecretIdEntry;
use super::model::accessor_key;
use super::model::expiry_key;
use super::model::load_role;
use super::model::require_role;
use super::model::role_id_key;
use super::model::role_key;
use super::model::secret_ids_of;
use crate::auth::methods::cidr;
use crate::auth::methods::fields;
use crate::auth::methods::store::load;
use crate::auth::methods::store::save;
use crate::auth::methods::store::validate_name;
use crate::auth::methods::token_params::Alias;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::list_children;

/// Deprecated AppRole field names Vault still accepts.
const TOKEN_ALIASES: &[Alias] = &[("policies", "token_policies"), ("period", "token_period")];

/// The longest role ID accepted.
const MAX_ROLE_ID_LEN: usize = 4096;

/// A role name from the path: lowercased (Vault's roles are case-insensitive) and validated.
pub(crate) fn role_name(raw: &str) -> Result<String, LogicalError> {
    let name = raw.to_lowercase();
    validate_name(&name, "role_name")?;
    Ok(name)
}

/// `LIST role`.
pub(crate) fn list(storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let keys = storage.keys_under(ROLE_PREFIX)?;
    Ok(Response::list(list_children(ROLE_PREFIX, &keys)))
}

/// `GET role/<name>`.
pub(crate) fn read(storage: &mut dyn Storage, name: &str) -> Result<Response, LogicalError> {
    let role = load_role(storage, name)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(role.to_json()))
}

/// `POST role/<name>`: creates the role (with a fresh role ID unless one is given) or updates the
/// fields present. Everything is validated before anything is staged.
pub(crate) fn write(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let existing = load_role(storage, name)?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or_else(|| RoleEntry {
        name: name.to_string(),
        bind_secret_id: true,
        ..RoleEntry::default()
    });
    let old_role_id = role.role_id.clone();
    apply_fields(&mut role, request, creating)?;
    if let Some(role_id) = fields::string(request, "role_id")? {
        role.role_id = checked_role_id(role_id)?;
    } else if creating {
        role.role_id = crate::crypto::random_id();
    }
    if !role.bind_secret_id
        && role.secret_id_bound_cidrs.is_empty()
        && role.token.bound_cidrs.is_empty()
    {
        return Err(LogicalError::invalid(
            "at least one constraint should be enabled on the role",
        ));
    }
    let salt = Salt::load_or_create(storage)?;
    if role.role_id != old_role_id {
        move_role_id(storage, &salt, name, &old_role_id, &role.role_id)?;
    }
    save(storage, &role_key(name), &role)?;
    Ok(Response::no_content())
}

fn apply_fields(
    role: &mut RoleEntry,
    request: &Request,
    creating: bool,
) -> Result<(), LogicalError> {
    if let Some(value) = request.field("bind_secret_id") {
        role.bind_secret_id = fields::boolean(&value, "bind_secret_id")?;
    }
    let cidrs = request
        .field("secret_id_bound_cidrs")
        .map(|value| (value, "secret_id_bound_cidrs"))
        .or_else(|| {
            request
                .field("bound_cidr_list")
                .map(|v| (v, "bound_cidr_list"))
        });
    if let Some((value, field)) = cidrs {
        role.secret_id_bound_cidrs = cidr::parse_list(&fields::string_list(&value, field)?, field)?;
    }
    if let Some(value) = request.field("secret_id_num_uses") {
        role.secret_id_num_uses = fields::uint(&value, "secret_id_num_uses")?;
    }
    if let Some(value) = request.field("secret_id_ttl") {
        role.secret_id_ttl = fields::seconds(&value, "secret_id_ttl")?;
    }
    if let Some(value) = request.field("local_secret_ids") {
        let local = fields::boolean(&value, "local_secret_ids")?;
        if !creating && local != role.local_secret_ids {
            return Err(LogicalError::invalid(
                "local_secret_ids can only be modified during role creation",
            ));
        }
        role.local_secret_ids = local;
    }
    role.token.update(request, TOKEN_ALIASES)
}

fn checked_role_id(role_id: String) -> Result<String, LogicalError> {
    if role_id.trim().is_empty() {
        return Err(LogicalError::invalid("missing role_id"));
    }
    if role_id.len() > MAX_ROLE_ID_LEN || role_id.chars().any(char::is_control) {
        return Err(LogicalError::invalid(format!(
            "invalid role_id: at most {MAX_ROLE_ID_LEN} bytes, no control characters"
        )));
    }
    Ok(role_id)
}

/// Points the role ID index at `name` for `new` instead of `old` (empty `old`: none yet).
fn move_role_id(
    storage: &mut dyn Storage,
    salt: &Salt,
    name: &str,
    old: &str,
    new: &str,
) -> Result<(), LogicalError> {
    let new_key = role_id_key(&salt.hmac_hex("role_id", new));
    if let Some(index) = load::<RoleIdIndex>(storage, &new_key)?
        && index.role_name != name
    {
        return Err(LogicalError::invalid("role_id already in use"));
    }
    if !old.is_empty() {
        storage.delete(&role_id_key(&salt.hmac_hex("role_id", old)))?;
    }
    save(
        storage,
        &new_key,
        &RoleIdIndex {
            role_name: name.to_string(),
        },
    )
}

/// `DELETE role/<name>`: the role, its role ID index entry and all its secret IDs.
pub(crate) fn delete(storage: &mut dyn Storage, name: &str) -> Result<Response, LogicalError> {
    let Some(role) = load_role(storage, name)? else {
        return Ok(Response::no_content());
    };
    let prefix = secret_ids_of(name);
    for key in storage.keys_under(&prefix)? {
        if let Some(entry) = load::<SecretIdEntry>(storage, &key)? {
            storage.delete(&accessor_key(&entry.accessor))?;
            if entry.expiration_nanos != 0 {
                storage.delete(&expiry_key(entry.expiration_nanos, name, &entry.hmac))?;
            }
        }
    }
    storage.delete_prefix(&prefix)?;
    if let Some(salt) = Salt::load(storage)?
        && !role.role_id.is_empty()
    {
        storage.delete(&role_id_key(&salt.hmac_hex("role_id", &role.role_id)))?;
    }
    storage.delete(&role_key(name))?;
    Ok(Response::no_content())
}

/// `GET role/<name>/role-id`.
pub(crate) fn read_role_id(
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let role = load_role(storage, name)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::from_value(json!({ "role_id": role.role_id })))
}

/// `POST role/<name>/role-id` with `{"role_id"}`: a custom role ID.
pub(crate) fn write_role_id(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let role_id = checked_role_id(fields::string(request, "role_id")?.unwrap_or_default())?;
    let mut role = require_role(storage, name)?;
    if role.role_id != role_id {
        let salt = Salt::load_or_create(storage)?;
        move_role_id(storage, &salt, name, &role.role_id, &role_id)?;
        role.role_id = role_id;
        save(storage, &role_key(name), &role)?;
    }
    Ok(Response::no_content())
}

/// A one-setting path: path segment, the field it sets, and the value DELETE restores.
type FieldPath = (&'static str, &'static str, fn() -> Value);

/// The one-setting paths.
const FIELD_PATHS: &[FieldPath] = &[
    ("policies", "token_policies", || json!([])),
    ("secret-id-num-uses", "secret_id_num_uses", || json!(0)),
    ("secret-id-ttl", "secret_id_ttl", || json!(0)),
    ("token-ttl", "token_ttl", || json!(0)),
    ("token-max-ttl", "token_max_ttl", || json!(0)),
    ("token-num-uses", "token_num_uses", || json!(0)),
    ("bind-secret-id", "bind_secret_id", || json!(true)),
    ("secret-id-bound-cidrs", "secret_id_bound_cidrs", || {
        json!([])
    }),
    ("bound-cidr-list", "secret_id_bound_cidrs", || json!([])),
    ("token-bound-cidrs", "token_bound_cidrs", || json!([])),
    ("period", "token_period", || json!(0)),
    ("local-secret-ids", "local_secret_ids", || json!(false)),
];

/// Whether `segment` is one of the one-setting paths.
pub(crate) fn is_field_path(segment: &str) -> bool {
    FIELD_PATHS.iter().any(|(path, _, _)| *path == segment)
}

/// `GET|POST|DELETE role/<name>/<setting>`: read, set or reset one setting of an existing role.
pub(crate) fn field(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
    segment: &str,
) -> Result<Response, LogicalError> {
    let Some(&(_, field, default)) = FIELD_PATHS.iter().find(|(path, _, _)| *path == segment)
    else {
        return Err(LogicalError::UnsupportedPath);
    };
    let alias = segment.replace('-', "_");
    match request.operation {
        Operation::Read => {
            let role = load_role(storage, name)?.ok_or(LogicalError::NotFound)?;
            let all = role.to_json();
            let mut data = Map::new();
            for key in [field, alias.as_str()] {
                if let Some(value) = all.get(key) {
                    data.insert(key.to_string(), value.clone());
                }
            }
            Ok(Response::with_data(data))
        }
        Operation::Create | Operation::Update if segment != "local-secret-ids" => {
            let value = request
                .field(field)
                .or_else(|| request.field(&alias))
                .ok_or_else(|| LogicalError::invalid(format!("missing {field}")))?;
            set_one(storage, name, field, value)
        }
        Operation::Delete if segment != "local-secret-ids" => {
            set_one(storage, name, field, default())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}

fn set_one(
    storage: &mut dyn Storage,
    name: &str,
    field: &str,
    value: Value,
) -> Result<Response, LogicalError> {
    require_role(storage, name)?;
    let mut update = Request::new(Operation::Update, format!("role/{name}"));
    update.data.insert(field.to_string(), value);
    write(&update, storage, name)
}
