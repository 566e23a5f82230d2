//! `role/<name>/secret-id` (generate; LIST accessors), `role/<name>/custom-secret-id`,
//! `role/<name>/secret-id/{lookup,destroy}` and `role/<name>/secret-id-accessor/{lookup,destroy}`.
//!
//! A new secret ID is returned once and stored only as its HMAC; lookups by value recompute the
//! HMAC. Missing secret IDs give Vault's answers: 204 for lookup and destroy by value, 404 by
//! accessor.

use serde_json::Value;
use serde_json::json;
use zeroize::Zeroizing;

use super::model::AccessorIndex;
use super::model::RoleEntry;
use super::model::Salt;
use super::model::SecretIdEntry;
use super::model::accessor_key;
use super::model::delete_secret_id;
use super::model::load_secret_id;
use super::model::require_role;
use super::model::save_secret_id;
use super::model::secret_ids_of;
use super::model::valid_accessor;
use crate::auth::methods::cidr;
use crate::auth::methods::fields;
use crate::auth::methods::store::load;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;

/// The longest custom secret ID accepted.
const MAX_SECRET_ID_LEN: usize = 4096;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// `POST role/<name>/secret-id` (a fresh random secret ID) or `role/<name>/custom-secret-id`
/// (the caller's `secret_id`), with optional `metadata`, `cidr_list`, `token_bound_cidrs`,
/// `num_uses` and `ttl` (which may narrow, never widen, the role's settings).
pub(crate) fn generate(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
    now: u64,
    custom: bool,
) -> Result<Response, LogicalError> {
    let role = require_role(storage, name)?;
    let secret_id: Zeroizing<String> = if custom {
        let given = fields::body_str(request, "secret_id")?.unwrap_or_default();
        if given.is_empty() {
            return Err(LogicalError::invalid("missing secret_id"));
        }
        if given.len() > MAX_SECRET_ID_LEN || given.chars().any(char::is_control) {
            return Err(LogicalError::invalid(format!(
                "invalid secret_id: at most {MAX_SECRET_ID_LEN} bytes, no control characters"
            )));
        }
        Zeroizing::new(given.to_string())
    } else {
        new_secret_id()
    };
    let settings = Settings::parse(request, &role)?;
    let salt = Salt::load_or_create(storage)?;
    let hmac = salt.hmac_hex("secret_id", &secret_id);
    if load_secret_id(storage, name, &hmac)?.is_some() {
        return Err(LogicalError::invalid("secret_id is already registered"));
    }
    let accessor = crate::crypto::random_id();
    if storage.get(&accessor_key(&accessor))?.is_some() {
        return Err(LogicalError::invalid(
            "secret_id_accessor collision; try again",
        ));
    }
    let entry = SecretIdEntry {
        hmac,
        accessor,
        num_uses: settings.num_uses,
        ttl: settings.ttl,
        creation_nanos: now,
        expiration_nanos: if settings.ttl == 0 {
            0
        } else {
            now.saturating_add(settings.ttl.saturating_mul(NANOS_PER_SEC))
        },
        last_updated_nanos: now,
        metadata: settings.metadata,
        cidr_list: settings.cidr_list,
        token_bound_cidrs: settings.token_bound_cidrs,
    };
    save_secret_id(storage, name, &entry)?;
    Ok(Response::from_value(json!({
        "secret_id": secret_id.as_str(),
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.num_uses,
        "secret_id_ttl": entry.ttl,
    })))
}

/// A random secret ID in Vault's format (a UUID: 122 random bits from the OS).
fn new_secret_id() -> Zeroizing<String> {
    let bytes = crate::crypto::random_bytes::<16>();
    Zeroizing::new(
        uuid::Builder::from_random_bytes(*bytes)
            .into_uuid()
            .to_string(),
    )
}

/// The validated settings of a new secret ID.
struct Settings {
    metadata: std::collections::BTreeMap<String, String>,
    cidr_list: Vec<String>,
    token_bound_cidrs: Vec<String>,
    num_uses: u64,
    ttl: u64,
}

impl Settings {
    fn parse(request: &Request, role: &RoleEntry) -> Result<Settings, LogicalError> {
        let metadata = match request.field("metadata") {
            Some(value) => fields::metadata(&value, "metadata")?,
            None => Default::default(),
        };
        let cidr_list = cidr_field(request, "cidr_list")?;
        if !cidr::subset(&cidr_list, &role.secret_id_bound_cidrs) {
            return Err(LogicalError::invalid(
                "failed to verify the CIDR restrictions set on the secret ID: cidr_list must be \
                 a subset of the role's secret_id_bound_cidrs",
            ));
        }
        let token_bound_cidrs = cidr_field(request, "token_bound_cidrs")?;
        if !cidr::subset(&token_bound_cidrs, &role.token.bound_cidrs) {
            return Err(LogicalError::invalid(
                "failed to verify the CIDR restrictions set on the secret ID: token_bound_cidrs \
                 must be a subset of the role's token_bound_cidrs",
            ));
        }
        let mut num_uses = role.secret_id_num_uses;
        if let Some(value) = request.field("num_uses") {
            num_uses = fields::uint(&value, "num_uses")?;
            let limit = role.secret_id_num_uses;
            if limit > 0 && (num_uses == 0 || num_uses > limit) {
                return Err(LogicalError::invalid(
                    "num_uses cannot be higher than the role's secret_id_num_uses",
                ));
            }
        }
        let mut ttl = role.secret_id_ttl;
        if let Some(value) = request.field("ttl") {
            ttl = fields::seconds(&value, "ttl")?;
            let limit = role.secret_id_ttl;
            if limit > 0 && (ttl == 0 || ttl > limit) {
                return Err(LogicalError::invalid(
                    "ttl cannot be longer than the role's secret_id_ttl",
                ));
            }
        }
        Ok(Settings {
            metadata,
            cidr_list,
            token_bound_cidrs,
            num_uses,
            ttl,
        })
    }
}

fn cidr_field(request: &Request, name: &str) -> Result<Vec<String>, LogicalError> {
    match request.field(name) {
        Some(value) => cidr::parse_list(&fields::string_list(&value, name)?, name),
        None => Ok(Vec::new()),
    }
}

/// `LIST role/<name>/secret-id`: the accessors of the role's secret IDs.
pub(crate) fn list(storage: &mut dyn Storage, name: &str) -> Result<Response, LogicalError> {
    require_role(storage, name)?;
    let mut accessors = Vec::new();
    for key in storage.keys_under(&secret_ids_of(name))? {
        if let Some(entry) = load::<SecretIdEntry>(storage, &key)? {
            accessors.push(entry.accessor);
        }
    }
    accessors.sort();
    Ok(Response::list(accessors))
}

/// The role's secret ID given in the body's `secret_id`, if stored.
fn find_by_value(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Option<SecretIdEntry>, LogicalError> {
    let secret_id = fields::body_str(request, "secret_id")?.unwrap_or_default();
    if secret_id.is_empty() {
        return Err(LogicalError::invalid("missing secret_id"));
    }
    require_role(storage, name)?;
    let Some(salt) = Salt::load(storage)? else {
        return Ok(None);
    };
    load_secret_id(storage, name, &salt.hmac_hex("secret_id", secret_id))
}

/// `POST role/<name>/secret-id/lookup` with `{"secret_id"}`.
pub(crate) fn lookup(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    Ok(match find_by_value(request, storage, name)? {
        Some(entry) => Response::with_data(entry.to_json()),
        None => Response::no_content(),
    })
}

/// `POST|DELETE role/<name>/secret-id/destroy` with `{"secret_id"}`.
pub(crate) fn destroy(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    if let Some(entry) = find_by_value(request, storage, name)? {
        delete_secret_id(storage, name, &entry)?;
    }
    Ok(Response::no_content())
}

/// The accessor index entry named by the body's `secret_id_accessor`, if it belongs to `name`.
fn find_accessor(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<(String, AccessorIndex), LogicalError> {
    let accessor = match request.field("secret_id_accessor") {
        Some(Value::String(text)) if !text.is_empty() => text,
        Some(Value::String(_)) | None => {
            return Err(LogicalError::invalid("missing secret_id_accessor"));
        }
        Some(_) => return Err(LogicalError::invalid("secret_id_accessor must be a string")),
    };
    if !valid_accessor(&accessor) {
        return Err(LogicalError::invalid("invalid secret_id_accessor"));
    }
    require_role(storage, name)?;
    match load::<AccessorIndex>(storage, &accessor_key(&accessor))? {
        Some(index) if index.role_name == name => Ok((accessor, index)),
        _ => Err(LogicalError::NotFound),
    }
}

/// `POST role/<name>/secret-id-accessor/lookup` with `{"secret_id_accessor"}`.
pub(crate) fn lookup_accessor(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let (_, index) = find_accessor(request, storage, name)?;
    let entry =
        load_secret_id(storage, name, &index.secret_id_hmac)?.ok_or(LogicalError::NotFound)?;
    Ok(Response::with_data(entry.to_json()))
}

/// `POST|DELETE role/<name>/secret-id-accessor/destroy` with `{"secret_id_accessor"}`.
pub(crate) fn destroy_accessor(
    request: &Request,
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Response, LogicalError> {
    let (accessor, index) = find_accessor(request, storage, name)?;
    match load_secret_id(storage, name, &index.secret_id_hmac)? {
        Some(entry) => delete_secret_id(storage, name, &entry)?,
        None => storage.delete(&accessor_key(&accessor))?,
    }
    Ok(Response::no_content())
}
