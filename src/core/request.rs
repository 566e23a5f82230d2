//! The request pipeline for every path that is not a seal/status endpoint:
//!
//! 1. sealed -> 503; take a linearizable read point unless the client asked for `stale`;
//! 2. the token -> its entry (through the `core/token/` view) -> the ACL -> allowed?;
//! 3. route by mount (the mount table is read through the same transaction) and run the engine on
//!    a view scoped to the mount;
//! 4. build the audit record; if the request staged writes, commit writes + record + one guard
//!    per key read as ONE Raft entry, re-running the request when a guard fails (bounded);
//!    otherwise commit the record through the audit batcher. No record, no response.

use std::collections::BTreeMap;

use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::TxnOutcome;
use zeroize::Zeroizing;

use super::Core;
use super::CoreError;
use super::now_secs;
use super::txn::TxnBuilder;
use crate::audit;
use crate::audit::AuditEvent;
use crate::audit::AuthInfo;
use crate::auth::token;
use crate::auth::token::TokenEntry;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;
use crate::policy::Acl;

/// How many times a request is re-run after losing a race with a concurrent write.
const MAX_ATTEMPTS: usize = 5;

/// How fresh the state a request reads must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Linearizable (default): read after a read point from the leader.
    #[default]
    Linearizable,
    /// Whatever this node has applied (`X-Strongroom-Consistency: stale`).
    Stale,
}

/// A client request as the core sees it.
#[derive(Default)]
pub struct ClientRequest {
    /// The operation.
    pub operation: Operation,
    /// The path after `/v1/`, normalized (no leading slash, no empty or dot segments).
    pub path: String,
    /// The presented token.
    pub token: Option<Zeroizing<String>>,
    /// The JSON body.
    pub data: Map<String, Value>,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// The client's address.
    pub remote_address: Option<String>,
    /// Read freshness.
    pub consistency: Consistency,
}

/// The outcome of a request: its id plus the response or the error.
pub struct Handled {
    /// The request id (also in the audit record).
    pub request_id: String,
    /// What to answer.
    pub result: Result<Response, CoreError>,
}

/// Paths that need the `sudo` capability.
fn needs_sudo(path: &str) -> bool {
    path == "sys/seal" || path.starts_with("sys/audit") || path.starts_with("sys/raw")
}

impl Core {
    /// Runs a request through the pipeline.
    pub async fn handle(&self, request: ClientRequest) -> Handled {
        let request_id = crate::crypto::random_id();
        let result = self.handle_audited(&request, &request_id).await;
        if result.is_ok() && request.path == "sys/seal" && request.operation.is_write() {
            self.seal_now();
        }
        Handled { request_id, result }
    }

    async fn handle_audited(
        &self,
        request: &ClientRequest,
        request_id: &str,
    ) -> Result<Response, CoreError> {
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        if request.consistency == Consistency::Linearizable && !self.unsafe_local_reads {
            self.node.read_point().await?;
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = self.new_txn();
            let mut auth = None;
            let outcome = self.execute(request, &mut txn, &mut auth);
            let record = self.audit_record(request, request_id, auth.as_ref(), &outcome)?;
            match outcome {
                Ok(response) if txn.has_writes() => {
                    let txn = txn.into_txn(vec![record])?;
                    match self.node.propose(txn).await?.outcome {
                        TxnOutcome::Applied { .. } => return Ok(response),
                        // Something this request read changed before it committed: nothing was
                        // written; re-run it on fresh state.
                        TxnOutcome::GuardFailed { .. } => {
                            self.node.read_point().await.map(|_| ())?
                        }
                    }
                }
                other => {
                    self.audit.commit(record).await?;
                    return other;
                }
            }
        }
        let conflict = Err(CoreError::Conflict);
        let record = self.audit_record(request, request_id, None, &conflict)?;
        self.audit.commit(record).await?;
        conflict
    }

    /// Steps 2 and 3: authenticate, authorize, route and run the engine (no I/O beyond local
    /// reads; writes are only staged in `txn`).
    fn execute(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        auth: &mut Option<AuthInfo>,
    ) -> Result<Response, CoreError> {
        let presented = request
            .token
            .as_deref()
            .ok_or(CoreError::PermissionDenied)?;
        let id_hash = hex::encode(self.barrier.mac("token", presented.as_bytes())?);
        let entry = token::lookup(&mut txn.view(token::VIEW_PREFIX), &id_hash, now_secs())?
            .ok_or(CoreError::PermissionDenied)?;
        *auth = Some(AuthInfo {
            accessor: entry.accessor.clone(),
            display_name: entry.display_name.clone(),
            policies: entry.policies.clone(),
        });
        let acl = Acl::for_policies(&entry.policies);
        if !acl.allows(request.operation, &request.path, needs_sudo(&request.path)) {
            return Err(CoreError::PermissionDenied);
        }
        if request.path == "sys" || request.path.starts_with("sys/") {
            return self.system(request, txn);
        }
        if request.path == "auth/token/lookup-self" {
            return lookup_self(request, presented, &entry);
        }
        let table = super::mounts_api::load_table(txn)?;
        let Some((mount, rest)) = table.route(&request.path) else {
            return Err(CoreError::InvalidRequest(format!(
                "no handler for route {:?}: route entry not found",
                request.path
            )));
        };
        let backend = self
            .backend_for(&mount.kind, mount.version)
            .ok_or_else(|| {
                CoreError::Internal(format!(
                    "no engine of type {} v{}",
                    mount.kind, mount.version
                ))
            })?;
        let engine_request = Request {
            operation: request.operation,
            path: rest.to_string(),
            data: request.data.clone(),
            query: request.query.clone(),
            mount_options: mount.options.clone(),
            remote_address: request.remote_address.clone(),
        };
        let mut view = txn.view(mount.storage_prefix());
        Ok(backend.handle(&engine_request, &mut view)?)
    }

    /// Builds and encrypts the audit record of one attempt.
    fn audit_record(
        &self,
        request: &ClientRequest,
        request_id: &str,
        auth: Option<&AuthInfo>,
        outcome: &Result<Response, CoreError>,
    ) -> Result<Vec<u8>, CoreError> {
        let (status, response_data, error) = match outcome {
            Ok(response) => (
                response
                    .status
                    .unwrap_or(if response.data.is_some() { 200 } else { 204 }),
                response.data.as_ref(),
                None,
            ),
            Err(err) => (err.kind().status_code(), None, Some(err.client_message())),
        };
        let event = AuditEvent {
            request_id,
            operation: request.operation.as_str(),
            path: &request.path,
            remote_address: request.remote_address.clone(),
            node_id: self.node.id(),
            client_token: request.token.as_deref().map(String::as_str),
            auth,
            request_data: (!request.data.is_empty()).then_some(&request.data),
            status,
            response_data,
            error,
        };
        let time = crate::logical::time::format_nanos(crate::logical::time::now_nanos());
        let record = audit::record(&event, &time, &|bytes| self.audit_hmac(bytes));
        self.seal_record(&record)
    }
}

/// `auth/token/lookup-self`: the presented token's own entry, in Vault's shape.
fn lookup_self(
    request: &ClientRequest,
    presented: &str,
    entry: &TokenEntry,
) -> Result<Response, CoreError> {
    if request.operation != Operation::Read {
        return Err(CoreError::Logical(LogicalError::UnsupportedOperation));
    }
    let ttl = if entry.ttl == 0 {
        0
    } else {
        entry
            .creation_time
            .saturating_add(entry.ttl)
            .saturating_sub(now_secs())
    };
    Ok(Response::from_value(json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.ttl,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": Value::Null,
        "explicit_max_ttl": 0,
        "id": presented,
        "issue_time": crate::logical::time::format_nanos(entry.creation_time.saturating_mul(1_000_000_000)),
        "meta": entry.meta,
        "num_uses": 0,
        "orphan": true,
        "path": entry.path,
        "policies": entry.policies,
        "renewable": false,
        "ttl": ttl,
        "type": "service",
    })))
}
