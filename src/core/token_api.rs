//! The token API (`auth/token/*`): create (incl. orphans and roles), lookup (self, by token, by
//! accessor), renew, revoke (with descendants, by accessor, orphaning children), roles, and the
//! accessor listing; plus issuing tokens for auth-method logins. Tokens are handled by their
//! keyed hash only; the token itself appears solely in the response to its creation.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;

use super::Core;
use super::CoreError;
use super::mounts::MountEntry;
use super::request::ClientRequest;
use super::request::Reply;
use super::txn::TxnBuilder;
use crate::auth::token;
use crate::auth::token::TokenEntry;
use crate::logical::Auth;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::duration;
use crate::logical::list_children;
use crate::logical::time;

/// A token role (`auth/token/roles/<name>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct TokenRole {
    allowed_policies: Vec<String>,
    disallowed_policies: Vec<String>,
    orphan: bool,
    renewable: bool,
    token_period: u64,
    token_explicit_max_ttl: u64,
    token_ttl: u64,
    token_no_default_policy: bool,
    token_bound_cidrs: Vec<String>,
}

fn invalid(message: impl Into<String>) -> CoreError {
    CoreError::InvalidRequest(message.into())
}

fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, CoreError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{name} must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(invalid(format!("{name} must be a list of strings"))),
    }
}

fn seconds(value: Option<&Value>, name: &str) -> Result<u64, CoreError> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(value) => {
            duration::parse_seconds(value).map_err(|err| invalid(format!("{name}: {err}")))
        }
    }
}

fn flag(value: Option<&Value>, name: &str, default: bool) -> Result<bool, CoreError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(Value::String(text)) => text
            .parse()
            .map_err(|_| invalid(format!("{name} must be a boolean"))),
        Some(_) => Err(invalid(format!("{name} must be a boolean"))),
    }
}

fn string(value: Option<&Value>, name: &str) -> Result<Option<String>, CoreError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

/// Sorted, de-duplicated policies with `default` added unless asked not to.
fn normalize_policies(mut policies: Vec<String>, no_default: bool) -> Vec<String> {
    if !no_default && !policies.iter().any(|p| p == "root") {
        policies.push("default".into());
    }
    policies.sort();
    policies.dedup();
    policies
}

/// Vault's `auth` block for an issued token.
fn auth_block(client_token: &str, entry: &TokenEntry, now: u64) -> Map<String, Value> {
    let block = json!({
        "client_token": client_token,
        "accessor": entry.accessor,
        "policies": entry.policies,
        "token_policies": entry.policies,
        "identity_policies": Value::Null,
        "metadata": if entry.meta.is_empty() { Value::Null } else { json!(entry.meta) },
        "lease_duration": entry.ttl_left(now),
        "renewable": entry.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": entry.parent.is_none(),
        "mfa_requirement": Value::Null,
        "num_uses": entry.num_uses,
    });
    block.as_object().cloned().unwrap_or_default()
}

/// A token's lookup data in Vault's shape (`id` is the token when the caller presented it).
fn lookup_data(entry: &TokenEntry, id: &str, now: u64) -> Response {
    let secs = |at: u64| {
        if at == 0 {
            Value::Null
        } else {
            json!(time::format_nanos(at.saturating_mul(1_000_000_000)))
        }
    };
    Response::from_value(json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.ttl,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": secs(entry.expire_at),
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": id,
        "issue_time": secs(entry.creation_time),
        "last_renewal_time": if entry.last_renewal_time == 0 { Value::Null } else { json!(entry.last_renewal_time) },
        "meta": if entry.meta.is_empty() { Value::Null } else { json!(entry.meta) },
        "num_uses": entry.num_uses,
        "orphan": entry.parent.is_none(),
        "path": entry.path,
        "period": if entry.period == 0 { Value::Null } else { json!(entry.period) },
        "policies": entry.policies,
        "renewable": entry.renewable,
        "role": entry.role.clone().unwrap_or_default(),
        "ttl": entry.ttl_left(now),
        "type": "service",
    }))
}

/// What a new token looks like before it gets its id.
struct TokenSpec {
    policies: Vec<String>,
    display_name: String,
    path: String,
    meta: BTreeMap<String, String>,
    ttl: u64,
    explicit_max_ttl: u64,
    max_ttl: u64,
    period: u64,
    num_uses: u32,
    renewable: bool,
    bound_cidrs: Vec<String>,
    parent: Option<String>,
    role: Option<String>,
}

impl Core {
    fn token_hash(&self, token: &str) -> Result<String, CoreError> {
        Ok(hex::encode(self.barrier.mac("token", token.as_bytes())?))
    }

    /// Creates a token from `spec`, stages it, and returns the token and its entry.
    fn issue(
        &self,
        txn: &mut TxnBuilder,
        spec: TokenSpec,
        now: u64,
    ) -> Result<(String, TokenEntry), CoreError> {
        let client_token = token::generate_token();
        let (expire_at, max_expire_at) = if spec.period > 0 {
            let cap = if spec.explicit_max_ttl > 0 {
                now + spec.explicit_max_ttl
            } else {
                0
            };
            let expire = now + spec.period;
            (if cap > 0 { expire.min(cap) } else { expire }, cap)
        } else if spec.ttl == 0 && spec.policies.iter().any(|p| p == "root") {
            (0, 0)
        } else {
            let max_ttl = if spec.explicit_max_ttl > 0 {
                spec.explicit_max_ttl.min(spec.max_ttl)
            } else {
                spec.max_ttl
            };
            let ttl = if spec.ttl == 0 {
                max_ttl
            } else {
                spec.ttl.min(max_ttl)
            };
            (now + ttl, now + max_ttl)
        };
        let entry = TokenEntry {
            id_hash: self.token_hash(&client_token)?,
            accessor: token::generate_accessor(),
            policies: spec.policies,
            display_name: spec.display_name,
            path: spec.path,
            meta: spec.meta,
            creation_time: now,
            ttl: expire_at.saturating_sub(now),
            expire_at,
            max_expire_at,
            explicit_max_ttl: spec.explicit_max_ttl,
            period: spec.period,
            num_uses: spec.num_uses,
            parent: spec.parent,
            renewable: spec.renewable && expire_at > 0,
            bound_cidrs: spec.bound_cidrs,
            role: spec.role,
            last_renewal_time: 0,
        };
        token::store(&mut txn.view(token::VIEW_PREFIX), &entry).map_err(LogicalError::from)?;
        Ok((client_token.to_string(), entry))
    }

    /// Issues the token of a successful auth-method login (an orphan).
    pub(super) fn issue_login(
        &self,
        txn: &mut TxnBuilder,
        grant: Auth,
        mount: &MountEntry,
        login_path: &str,
        now: u64,
    ) -> Result<Reply, CoreError> {
        let max_ttl = [grant.max_ttl, mount.max_lease_ttl]
            .into_iter()
            .filter(|ttl| *ttl > 0)
            .min()
            .unwrap_or(token::DEFAULT_TTL_SECS);
        let ttl = if grant.ttl > 0 {
            grant.ttl
        } else if mount.default_lease_ttl > 0 {
            mount.default_lease_ttl
        } else {
            max_ttl
        };
        let mount_name = mount.path.trim_end_matches('/').replace('/', "-");
        let display_name = if grant.display_name.is_empty() {
            mount_name
        } else {
            format!("{mount_name}-{}", grant.display_name)
        };
        let spec = TokenSpec {
            policies: normalize_policies(
                grant.policies.into_iter().filter(|p| p != "root").collect(),
                grant.no_default_policy,
            ),
            display_name,
            path: login_path.to_string(),
            meta: grant.metadata,
            ttl,
            explicit_max_ttl: grant.explicit_max_ttl,
            max_ttl,
            period: grant.period,
            num_uses: grant.num_uses,
            renewable: grant.renewable,
            bound_cidrs: grant.bound_cidrs,
            parent: None,
            role: None,
        };
        let (client_token, entry) = self.issue(txn, spec, now)?;
        Ok(Reply {
            response: Response::no_content(),
            auth: Some(auth_block(&client_token, &entry, now)),
        })
    }

    /// Serves `auth/token/<rest>` for the authenticated `caller`.
    pub(super) fn token_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        caller: &TokenEntry,
        presented: &str,
        now: u64,
    ) -> Result<Reply, CoreError> {
        let rest = request
            .path
            .strip_prefix("auth/token/")
            .unwrap_or("")
            .trim_end_matches('/');
        let data = &request.data;
        let plain = |response: Response| {
            Ok(Reply {
                response,
                auth: None,
            })
        };
        match (rest, request.operation) {
            ("create" | "create-orphan", Operation::Create | Operation::Update) => {
                self.create(request, txn, caller, None, rest == "create-orphan", now)
            }
            (role, Operation::Create | Operation::Update) if role.starts_with("create/") => {
                let name = &role["create/".len()..];
                let role =
                    load_role(txn, name)?.ok_or_else(|| invalid(format!("unknown role {name}")))?;
                self.create(request, txn, caller, Some((name, role)), false, now)
            }
            ("lookup-self", Operation::Read) => plain(lookup_data(caller, presented, now)),
            ("lookup", Operation::Read | Operation::Update | Operation::Create) => {
                let target = string(data.get("token"), "token")?
                    .or_else(|| request.query.get("token").cloned())
                    .ok_or_else(|| invalid("missing token to look up"))?;
                let entry = self.find_token(txn, &target, now)?;
                plain(lookup_data(&entry, &target, now))
            }
            ("lookup-accessor", Operation::Update | Operation::Create) => {
                let entry = self.find_accessor(txn, request, now)?;
                plain(lookup_data(&entry, "", now))
            }
            ("renew-self", Operation::Update | Operation::Create) => {
                self.renew(txn, caller, presented, data, now)
            }
            ("renew", Operation::Update | Operation::Create) => {
                let target = string(data.get("token"), "token")?
                    .ok_or_else(|| invalid("missing token to renew"))?;
                let entry = self.find_token(txn, &target, now)?;
                self.renew(txn, &entry, &target, data, now)
            }
            ("renew-accessor", Operation::Update | Operation::Create) => {
                let entry = self.find_accessor(txn, request, now)?;
                self.renew(txn, &entry, "", data, now)
            }
            ("revoke-self", Operation::Update | Operation::Create) => revoke(txn, &caller.id_hash),
            ("revoke", Operation::Update | Operation::Create) => {
                let target = string(data.get("token"), "token")?
                    .ok_or_else(|| invalid("missing token to revoke"))?;
                let hash = self.token_hash(&target)?;
                revoke(txn, &hash)
            }
            ("revoke-accessor", Operation::Update | Operation::Create) => {
                match self.find_accessor(txn, request, now) {
                    Ok(entry) => revoke(txn, &entry.id_hash),
                    Err(_) => plain(Response::no_content()),
                }
            }
            ("revoke-orphan", Operation::Update | Operation::Create) => {
                let target = string(data.get("token"), "token")?
                    .ok_or_else(|| invalid("missing token to revoke"))?;
                let hash = self.token_hash(&target)?;
                token::revoke_orphan(&mut txn.view(token::VIEW_PREFIX), &hash)?;
                plain(Response::no_content())
            }
            ("accessors", Operation::List) => {
                plain(Response::list(list_in_token_store(txn, "accessor/")?))
            }
            ("roles", Operation::List) => {
                plain(Response::list(list_in_token_store(txn, "roles/")?))
            }
            (role, operation) if role.starts_with("roles/") => {
                plain(roles_api(txn, &role["roles/".len()..], operation, data)?)
            }
            _ => Err(CoreError::Logical(LogicalError::UnsupportedPath)),
        }
    }

    fn find_token(
        &self,
        txn: &mut TxnBuilder,
        target: &str,
        now: u64,
    ) -> Result<TokenEntry, CoreError> {
        let hash = self.token_hash(target)?;
        token::lookup(&mut txn.view(token::VIEW_PREFIX), &hash, now)?
            .ok_or(CoreError::PermissionDenied)
    }

    fn find_accessor(
        &self,
        txn: &mut TxnBuilder,
        request: &ClientRequest,
        now: u64,
    ) -> Result<TokenEntry, CoreError> {
        let accessor = string(request.data.get("accessor"), "accessor")?
            .ok_or_else(|| invalid("missing accessor"))?;
        token::lookup_accessor(&mut txn.view(token::VIEW_PREFIX), &accessor, now)?
            .ok_or_else(|| invalid("invalid accessor"))
    }

    fn renew(
        &self,
        txn: &mut TxnBuilder,
        entry: &TokenEntry,
        presented: &str,
        data: &Map<String, Value>,
        now: u64,
    ) -> Result<Reply, CoreError> {
        let increment = seconds(data.get("increment"), "increment")?;
        let expire_at = entry
            .renewed_expiry(now, increment)
            .ok_or_else(|| invalid("lease is not renewable"))?;
        let renewed = TokenEntry {
            expire_at,
            last_renewal_time: now,
            ..entry.clone()
        };
        token::replace(&mut txn.view(token::VIEW_PREFIX), entry, &renewed)
            .map_err(LogicalError::from)?;
        Ok(Reply {
            response: Response::no_content(),
            auth: Some(auth_block(presented, &renewed, now)),
        })
    }

    fn create(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        caller: &TokenEntry,
        role: Option<(&str, TokenRole)>,
        orphan_path: bool,
        now: u64,
    ) -> Result<Reply, CoreError> {
        let data = &request.data;
        if data.contains_key("id") {
            return Err(invalid("custom token ids are not supported"));
        }
        let caller_root = caller.is_root();
        let no_parent = flag(data.get("no_parent"), "no_parent", false)?;
        if no_parent && !caller_root {
            return Err(CoreError::PermissionDenied);
        }
        let requested = strings(data.get("policies"), "policies")?;
        let no_default = flag(data.get("no_default_policy"), "no_default_policy", false)?
            || role
                .as_ref()
                .is_some_and(|(_, role)| role.token_no_default_policy);
        let mut policies = if requested.is_empty() {
            caller
                .policies
                .iter()
                .filter(|p| caller_root || *p != "root")
                .cloned()
                .collect()
        } else {
            requested
        };
        if let Some((name, role)) = &role {
            if !role.allowed_policies.is_empty()
                && let Some(bad) = policies
                    .iter()
                    .find(|p| *p != "default" && !role.allowed_policies.contains(p))
            {
                return Err(invalid(format!(
                    "token policies ({bad}) must be subset of the role's allowed policies ({name})"
                )));
            }
            if let Some(bad) = policies
                .iter()
                .find(|p| role.disallowed_policies.contains(p))
            {
                return Err(invalid(format!(
                    "token policy ({bad}) is disallowed by the role ({name})"
                )));
            }
        } else if !caller_root
            && let Some(bad) = policies
                .iter()
                .find(|p| *p != "default" && !caller.policies.contains(p))
        {
            return Err(invalid(format!(
                "child policies must be subset of parent (\"{bad}\" is not)"
            )));
        }
        policies = normalize_policies(policies, no_default);
        let meta: BTreeMap<String, String> = match data.get("meta") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.clone(), v.to_string()))
                        .ok_or_else(|| invalid("meta values must be strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("meta must be an object of strings")),
        };
        let num_uses = match data.get("num_uses") {
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid("num_uses must be a non-negative integer"))?,
        };
        let display = string(data.get("display_name"), "display_name")?.unwrap_or_default();
        let role_ref = role.as_ref().map(|(_, role)| role);
        let orphan = orphan_path || no_parent || role_ref.is_some_and(|role| role.orphan);
        let spec = TokenSpec {
            policies,
            display_name: if display.is_empty() {
                "token".into()
            } else {
                format!("token-{display}")
            },
            path: request.path.clone(),
            meta,
            ttl: seconds(data.get("ttl"), "ttl")?.max(role_ref.map_or(0, |role| role.token_ttl)),
            explicit_max_ttl: seconds(data.get("explicit_max_ttl"), "explicit_max_ttl")?
                .max(role_ref.map_or(0, |role| role.token_explicit_max_ttl)),
            max_ttl: token::DEFAULT_TTL_SECS,
            period: seconds(data.get("period"), "period")?
                .max(role_ref.map_or(0, |role| role.token_period)),
            num_uses,
            renewable: flag(
                data.get("renewable"),
                "renewable",
                role_ref.is_none_or(|role| role.renewable),
            )?,
            bound_cidrs: role_ref
                .map(|role| role.token_bound_cidrs.clone())
                .unwrap_or_default(),
            parent: if orphan {
                None
            } else {
                Some(caller.id_hash.clone())
            },
            role: role.as_ref().map(|(name, _)| name.to_string()),
        };
        if spec.period > 0 && !caller_root && role.is_none() {
            return Err(CoreError::PermissionDenied);
        }
        let (client_token, entry) = self.issue(txn, spec, now)?;
        let mut response = Response::no_content();
        response.warnings = super::policies::missing_policy_warnings(txn, &entry.policies)?;
        Ok(Reply {
            response,
            auth: Some(auth_block(&client_token, &entry, now)),
        })
    }
}

/// The immediate children of `prefix` in the token store (LIST semantics).
fn list_in_token_store(txn: &mut TxnBuilder, prefix: &str) -> Result<Vec<String>, CoreError> {
    let keys = txn
        .view(token::VIEW_PREFIX)
        .keys_under(prefix)
        .map_err(LogicalError::from)?;
    Ok(list_children(prefix, &keys))
}

fn revoke(txn: &mut TxnBuilder, hash: &str) -> Result<Reply, CoreError> {
    token::revoke_tree(&mut txn.view(token::VIEW_PREFIX), hash)?;
    Ok(Reply {
        response: Response::no_content(),
        auth: None,
    })
}

fn role_key(name: &str) -> Result<String, CoreError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
        || name == ".."
    {
        return Err(invalid("invalid role name"));
    }
    Ok(format!("roles/{name}"))
}

fn load_role(txn: &mut TxnBuilder, name: &str) -> Result<Option<TokenRole>, CoreError> {
    let key = role_key(name)?;
    let Some(bytes) = txn
        .view(token::VIEW_PREFIX)
        .get(&key)
        .map_err(LogicalError::from)?
    else {
        return Ok(None);
    };
    codec::decode(&bytes)
        .map(Some)
        .map_err(|err| CoreError::Internal(format!("token role {name} is unreadable: {err}")))
}

fn roles_api(
    txn: &mut TxnBuilder,
    name: &str,
    operation: Operation,
    data: &Map<String, Value>,
) -> Result<Response, CoreError> {
    let key = role_key(name)?;
    match operation {
        Operation::Read => {
            let role = load_role(txn, name)?.ok_or(CoreError::Logical(LogicalError::NotFound))?;
            Ok(Response::from_value(json!({
                "name": name,
                "allowed_policies": role.allowed_policies,
                "disallowed_policies": role.disallowed_policies,
                "orphan": role.orphan,
                "renewable": role.renewable,
                "token_period": role.token_period,
                "token_explicit_max_ttl": role.token_explicit_max_ttl,
                "token_ttl": role.token_ttl,
                "token_no_default_policy": role.token_no_default_policy,
                "token_bound_cidrs": role.token_bound_cidrs,
            })))
        }
        Operation::Create | Operation::Update => {
            let role = TokenRole {
                allowed_policies: strings(data.get("allowed_policies"), "allowed_policies")?,
                disallowed_policies: strings(
                    data.get("disallowed_policies"),
                    "disallowed_policies",
                )?,
                orphan: flag(data.get("orphan"), "orphan", false)?,
                renewable: flag(data.get("renewable"), "renewable", true)?,
                token_period: seconds(
                    data.get("token_period").or(data.get("period")),
                    "token_period",
                )?,
                token_explicit_max_ttl: seconds(
                    data.get("token_explicit_max_ttl")
                        .or(data.get("explicit_max_ttl")),
                    "token_explicit_max_ttl",
                )?,
                token_ttl: seconds(data.get("token_ttl"), "token_ttl")?,
                token_no_default_policy: flag(
                    data.get("token_no_default_policy"),
                    "token_no_default_policy",
                    false,
                )?,
                token_bound_cidrs: strings(data.get("token_bound_cidrs"), "token_bound_cidrs")?,
            };
            for cidr in &role.token_bound_cidrs {
                if cidr.parse::<ipnet::IpNet>().is_err()
                    && cidr.parse::<std::net::IpAddr>().is_err()
                {
                    return Err(invalid(format!("invalid CIDR {cidr:?}")));
                }
            }
            txn.view(token::VIEW_PREFIX)
                .put(&key, codec::encode(&role))
                .map_err(LogicalError::from)?;
            Ok(Response::no_content())
        }
        Operation::Delete => {
            txn.view(token::VIEW_PREFIX)
                .delete(&key)
                .map_err(LogicalError::from)?;
            Ok(Response::no_content())
        }
        _ => Err(CoreError::Logical(LogicalError::UnsupportedOperation)),
    }
}
