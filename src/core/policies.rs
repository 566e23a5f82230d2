//! Policies in the store and the ACL of a request: `core/policy/<name>` holds each policy's text
//! (encrypted, replicated); parsed policies are cached per node by the revision they were read at,
//! so a change applied on any node takes effect on the next request everywhere. Also the policy
//! API: `sys/policies/acl[/<name>]` and the legacy `sys/policy[/<name>]` (with its top-level
//! response shape).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::codec;

use super::Core;
use super::CoreError;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::policy;
use crate::policy::Acl;
use crate::policy::Policy;

/// Where policies are stored.
pub const POLICY_PREFIX: &str = "core/policy/";

/// A stored policy: its name and its text as written.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredPolicy {
    /// The policy's name.
    pub name: String,
    /// The HCL or JSON text.
    pub text: String,
}

/// A parsed policy with the stored bytes it was parsed from.
type ParsedPolicy = (Vec<u8>, Arc<Policy>);

/// Parsed policies by name, with the bytes they were parsed from.
#[derive(Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, ParsedPolicy>>,
}

fn policy_key(name: &str) -> String {
    format!("{POLICY_PREFIX}{name}")
}

/// The stored `default` policy, written at init.
pub(super) fn default_policy_record() -> Vec<u8> {
    codec::encode(&StoredPolicy {
        name: "default".into(),
        text: policy::DEFAULT_POLICY.to_string(),
    })
}

fn load_stored(
    txn: &mut TxnBuilder,
    name: &str,
) -> Result<Option<(Vec<u8>, StoredPolicy)>, CoreError> {
    let Some(bytes) = txn.get(&policy_key(name)).map_err(LogicalError::from)? else {
        return Ok(None);
    };
    let stored: StoredPolicy = codec::decode(&bytes)
        .map_err(|err| CoreError::Internal(format!("policy {name} is unreadable: {err}")))?;
    Ok(Some((bytes.to_vec(), stored)))
}

/// Vault's warnings for policies a new token names that do not exist (yet).
pub(super) fn missing_policy_warnings(
    txn: &mut TxnBuilder,
    names: &[String],
) -> Result<Vec<String>, CoreError> {
    let mut warnings = Vec::new();
    for name in names
        .iter()
        .filter(|name| *name != "root" && *name != "default")
    {
        if txn
            .get(&policy_key(name))
            .map_err(LogicalError::from)?
            .is_none()
        {
            warnings.push(format!("Policy \"{name}\" does not exist"));
        }
    }
    Ok(warnings)
}

impl Core {
    /// The ACL for a token holding `names` (missing policies are ignored, as in Vault). The
    /// policy reads are part of the request's transaction.
    pub(super) fn acl_for(&self, txn: &mut TxnBuilder, names: &[String]) -> Result<Acl, CoreError> {
        if names.iter().any(|name| name == "root") {
            return Ok(Acl::root());
        }
        let mut policies = Vec::with_capacity(names.len());
        for name in names {
            let Some((bytes, stored)) = load_stored(txn, name)? else {
                continue;
            };
            let mut cache = self
                .policies
                .parsed
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let cached = cache
                .get(name)
                .filter(|(cached_bytes, _)| *cached_bytes == bytes)
                .map(|(_, policy)| policy.clone());
            let parsed = match cached {
                Some(policy) => policy,
                None => {
                    let policy =
                        Arc::new(policy::parse::parse(name, &stored.text).map_err(|err| {
                            CoreError::Internal(format!(
                                "stored policy {name} does not parse: {err}"
                            ))
                        })?);
                    cache.insert(name.clone(), (bytes, policy.clone()));
                    policy
                }
            };
            policies.push((*parsed).clone());
        }
        Ok(Acl::new(&policies))
    }

    /// Serves `sys/policies/acl*` and `sys/policy*`; `None` for other paths.
    pub(super) fn policies_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Option<Result<Response, CoreError>> {
        let path = request.path.trim_end_matches('/');
        let (legacy, name) = if path == "sys/policies/acl" {
            (false, None)
        } else if let Some(name) = path.strip_prefix("sys/policies/acl/") {
            (false, Some(name))
        } else if path == "sys/policy" {
            (true, None)
        } else if let Some(name) = path.strip_prefix("sys/policy/") {
            (true, Some(name))
        } else {
            return None;
        };
        Some(match (name, request.operation) {
            (None, Operation::List) | (None, Operation::Read) => list(txn, legacy),
            (Some(name), Operation::Read) => read(txn, name, legacy),
            (Some(name), Operation::Create | Operation::Update) => write(request, txn, name),
            (Some(name), Operation::Delete) => delete(txn, name),
            _ => Err(CoreError::Logical(LogicalError::UnsupportedOperation)),
        })
    }
}

fn list(txn: &mut TxnBuilder, legacy: bool) -> Result<Response, CoreError> {
    let keys = txn.keys_under(POLICY_PREFIX).map_err(LogicalError::from)?;
    let mut names: Vec<String> = keys
        .iter()
        .filter_map(|key| key.strip_prefix(POLICY_PREFIX))
        .map(str::to_string)
        .collect();
    names.push("root".into());
    names.sort();
    if legacy {
        let mut response = Response::from_value(json!({"policies": names, "keys": names}));
        response.data_at_top_level = true;
        return Ok(response);
    }
    Ok(Response::from_value(json!({"keys": names})))
}

fn read(txn: &mut TxnBuilder, name: &str, legacy: bool) -> Result<Response, CoreError> {
    let text = if name == "root" {
        String::new()
    } else {
        load_stored(txn, name)?
            .ok_or(CoreError::Logical(LogicalError::NotFound))?
            .1
            .text
    };
    if legacy {
        let mut response = Response::from_value(json!({"name": name, "rules": text}));
        response.data_at_top_level = true;
        return Ok(response);
    }
    Ok(Response::from_value(json!({"name": name, "policy": text})))
}

fn write(request: &ClientRequest, txn: &mut TxnBuilder, name: &str) -> Result<Response, CoreError> {
    policy::parse::validate_name(name).map_err(|err| CoreError::InvalidRequest(err.to_string()))?;
    if name == "root" {
        return Err(CoreError::InvalidRequest(
            "cannot update the root policy".into(),
        ));
    }
    let text = match request
        .data
        .get("policy")
        .or_else(|| request.data.get("rules"))
    {
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(CoreError::InvalidRequest("policy must be a string".into())),
        None => {
            return Err(CoreError::InvalidRequest(
                "'policy' parameter not supplied or empty".into(),
            ));
        }
    };
    policy::parse::parse(name, &text).map_err(|err| CoreError::InvalidRequest(err.to_string()))?;
    txn.put(
        &policy_key(name),
        codec::encode(&StoredPolicy {
            name: name.to_string(),
            text,
        }),
    );
    Ok(Response::no_content())
}

fn delete(txn: &mut TxnBuilder, name: &str) -> Result<Response, CoreError> {
    policy::parse::validate_name(name).map_err(|err| CoreError::InvalidRequest(err.to_string()))?;
    if name == "root" || name == "default" {
        return Err(CoreError::InvalidRequest(format!(
            "cannot delete the {name} policy"
        )));
    }
    txn.delete(&policy_key(name));
    Ok(Response::no_content())
}
