//! The request pipeline for every path that is not a seal/status endpoint:
//!
//! 1. sealed -> 503; take a linearizable read point unless the client asked for `stale`;
//! 2. an auth method's unauthenticated path (a login) runs without a token, and a login grant
//!    becomes a new token; every other request needs a live token (expiry, CIDR bounds and use
//!    count are checked here, on every node), whose policies build the ACL that must allow the
//!    operation on the path (with `sudo` on root-protected paths);
//! 3. route: `sys/*` and `auth/token/*` are the core's own; `auth/<mount>/*` goes to an auth
//!    method, anything else to the secrets engine mounted at the longest matching prefix, each on
//!    a storage view scoped to its mount. Every read goes through one transaction builder;
//! 4. build the audit record; if the request staged writes, commit writes + record + one guard
//!    per key read as ONE Raft entry, re-running the request when a guard fails (bounded);
//!    otherwise commit the record through the audit batcher. No record, no response.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Map;
use serde_json::Value;
use strongroom_raft::TxnOutcome;
use zeroize::Zeroizing;

use super::Core;
use super::CoreError;
use super::mounts::MountEntry;
use super::mounts::MountKind;
use super::mounts_api::load_table;
use super::now_secs;
use super::txn::TxnBuilder;
use crate::audit;
use crate::audit::AuditEvent;
use crate::audit::AuthInfo;
use crate::auth::token;
use crate::auth::token::TokenEntry;
use crate::logical::Backend;
use crate::logical::ListFilter;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Request;
use crate::logical::Response;

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

/// What a successful request answers: the response, and the `auth` block of a token it issued.
#[derive(Debug, Default)]
pub struct Reply {
    /// The engine's (or the core's) response.
    pub response: Response,
    /// Vault's `auth` block when a token was issued or renewed (login, token create/renew).
    pub auth: Option<Map<String, Value>>,
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply {
            response,
            auth: None,
        }
    }
}

/// The outcome of a request: its id plus the reply or the error.
pub struct Handled {
    /// The request id (also in the audit record).
    pub request_id: String,
    /// What to answer.
    pub result: Result<Reply, CoreError>,
    /// Whether the request's audit record is committed: only then does the id name a record.
    pub audited: bool,
}

/// Paths that need the `sudo` capability (Vault's root-protected paths that exist here).
pub(super) fn needs_sudo(path: &str) -> bool {
    path == "sys/seal"
        || path == "sys/audit"
        || path.starts_with("sys/audit/")
        || path.starts_with("sys/raw")
        || path == "sys/rotate"
        || path == "sys/rotate/keyring"
        || path == "sys/rotate/root"
        || path == "sys/rotate/retire"
        || path == "sys/rekey/backup"
        || path == "sys/rotate/rewrap"
        || path.starts_with("sys/auth/")
        || path == "auth/token/revoke-orphan"
        || path == "auth/token/accessors"
        || path.starts_with("sys/storage/raft/")
}

/// Whether `path` (relative to its mount) matches one of an engine's unauthenticated patterns.
fn is_unauthenticated(patterns: &[&str], path: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == *pattern,
        })
}

impl Core {
    /// Runs a request through the pipeline.
    pub async fn handle(&self, request: ClientRequest) -> Handled {
        let request_id = crate::crypto::random_id();
        let (result, audited) = match self.handle_audited(&request, &request_id).await {
            Ok(result) => (result, true),
            Err(err) => (Err(err), false),
        };
        if result.is_ok() && request.path == "sys/seal" && request.operation.is_write() {
            self.seal_now();
        }
        if result.is_ok() {
            self.after_keyring_write(&request);
        }
        Handled {
            request_id,
            result,
            audited,
        }
    }

    /// Runs the request and commits its record. The outer error: no record was committed (the
    /// request was not run, or its record could not be committed); the inner result is what the
    /// committed record says.
    async fn handle_audited(
        &self,
        request: &ClientRequest,
        request_id: &str,
    ) -> Result<Result<Reply, CoreError>, CoreError> {
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        if request.consistency == Consistency::Linearizable && !self.unsafe_local_reads {
            self.node.read_point().await?;
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut txn = self.new_txn();
            let mut auth = None;
            let (outcome, record) = off_the_reactor(|| {
                let outcome = self.execute(request, &mut txn, &mut auth);
                let record = self.audit_record(request, request_id, auth.as_ref(), &outcome);
                (outcome, record)
            });
            let record = record?;
            if outcome.is_ok()
                && let Some(change) = txn.take_membership()
            {
                // Not a KV write: the change is made through Raft first, then its record says
                // how it went (the two are not one entry).
                let outcome = self.change_membership(change).await.map(Reply::from);
                let record = self.audit_record(request, request_id, auth.as_ref(), &outcome)?;
                self.audit.commit(record).await?;
                return Ok(outcome);
            }
            match outcome {
                Ok(reply) if txn.has_writes() => {
                    let txn = txn.into_txn(vec![record])?;
                    match self.node.propose(txn).await?.outcome {
                        TxnOutcome::Applied { .. } => return Ok(Ok(reply)),
                        // Something this request read changed before it committed: nothing was
                        // written; re-run it on fresh state.
                        TxnOutcome::GuardFailed { .. } => {
                            self.node.read_point().await.map(|_| ())?
                        }
                    }
                }
                other => {
                    self.audit.commit(record).await?;
                    return Ok(other);
                }
            }
        }
        let conflict = Err(CoreError::Conflict);
        let record = self.audit_record(request, request_id, None, &conflict)?;
        self.audit.commit(record).await?;
        Ok(conflict)
    }

    /// Steps 2 and 3: authenticate, authorize, route and run (no I/O beyond local reads; writes
    /// are only staged in `txn`).
    fn execute(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        auth: &mut Option<AuthInfo>,
    ) -> Result<Reply, CoreError> {
        let now = now_secs();
        if let Some(reply) = self.try_unauthenticated(request, txn, now)? {
            return Ok(reply);
        }
        let presented = request
            .token
            .as_deref()
            .ok_or(CoreError::PermissionDenied)?;
        let id_hash = hex::encode(self.barrier.mac("token", presented.as_bytes())?);
        let entry = token::lookup(&mut txn.view(token::VIEW_PREFIX), &id_hash, now)?
            .ok_or(CoreError::PermissionDenied)?;
        if !entry.allows_address(request.remote_address.as_deref()) {
            return Err(CoreError::PermissionDenied);
        }
        *auth = Some(AuthInfo {
            accessor: entry.accessor.clone(),
            display_name: entry.display_name.clone(),
            policies: entry.policies.clone(),
        });
        let acl = self.acl_for(txn, &entry.policies)?;
        let target = self.target(&request.path, txn)?;
        let operation = self.write_operation(request, &target, txn)?;
        // Vault authorizes a LIST on the folder path, with its trailing slash, so that
        // `path "secret/metadata/app/*" { capabilities = ["list"] }` allows listing `app`.
        let acl_path = match operation {
            Operation::List if !request.path.ends_with('/') => format!("{}/", request.path),
            _ => request.path.clone(),
        };
        if !acl.allows(
            operation,
            &acl_path,
            &request.data,
            needs_sudo(&request.path),
        ) {
            return Err(CoreError::PermissionDenied);
        }
        self.count_use(txn, &entry)?;
        match target {
            Target::System => self
                .system(request, txn, &acl, &entry, presented)
                .map(Reply::from),
            Target::TokenStore => self.token_api(request, txn, &entry, presented, now),
            Target::Mounted(mounted) => {
                // A recursive LIST reaches into subfolders: hide what the token may not list.
                let filter = (operation == Operation::List)
                    .then(|| crate::policy::list_filter(Arc::new(acl), acl_path));
                self.run_mounted(request, operation, txn, &mounted, filter)
                    .map(Reply::from)
            }
            Target::NoRoute => Err(CoreError::InvalidRequest(format!(
                "no handler for route {:?}: route entry not found",
                request.path
            ))),
        }
    }

    /// Where `path` goes: the system backend, the token store, or a mount (looked up once per
    /// request, in the request's transaction).
    fn target(&self, path: &str, txn: &mut TxnBuilder) -> Result<Target, CoreError> {
        let (kind, routed) = match path.strip_prefix("auth/") {
            Some(rest) if rest.starts_with("token/") => return Ok(Target::TokenStore),
            Some(rest) => (MountKind::Auth, rest),
            None if path == "sys" || path.starts_with("sys/") => return Ok(Target::System),
            None => (MountKind::Secrets, path),
        };
        let table = load_table(txn, kind)?;
        Ok(match table.route(routed) {
            Some((mount, rest)) => Target::Mounted(Mounted {
                kind,
                mount: mount.clone(),
                rest: rest.to_string(),
            }),
            None => Target::NoRoute,
        })
    }

    /// Vault's existence check: a write (`update`) to a path whose engine reports that the
    /// object does not exist yet is a `create`, both for the ACL check and for the engine.
    fn write_operation(
        &self,
        request: &ClientRequest,
        target: &Target,
        txn: &mut TxnBuilder,
    ) -> Result<Operation, CoreError> {
        let Target::Mounted(mounted) = target else {
            return Ok(request.operation);
        };
        if request.operation != Operation::Update {
            return Ok(request.operation);
        }
        let Some(backend) = self.backend_of(mounted.kind, &mounted.mount) else {
            return Ok(Operation::Update);
        };
        let probe = Request {
            operation: Operation::Update,
            path: mounted.rest.clone(),
            mount_options: mounted.mount.options.clone(),
            ..Request::default()
        };
        let mut view = txn.view(mounted.mount.storage_prefix(mounted.kind));
        Ok(match backend.exists(&probe, &mut view)? {
            Some(false) => Operation::Create,
            _ => Operation::Update,
        })
    }

    /// The engine or auth method serving a mount of table `kind`.
    fn backend_of(&self, kind: MountKind, mount: &MountEntry) -> Option<Arc<dyn Backend>> {
        match kind {
            MountKind::Secrets => self.backend_for(&mount.kind, mount.version),
            MountKind::Auth => self.auth_backend_for(&mount.kind),
        }
    }

    /// An auth method's login (or other unauthenticated path): runs without a token and turns a
    /// login grant into a token. `None` when the request is not one.
    fn try_unauthenticated(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        now: u64,
    ) -> Result<Option<Reply>, CoreError> {
        let Some(rest) = request.path.strip_prefix("auth/") else {
            return Ok(None);
        };
        if rest.starts_with("token/") {
            return Ok(None);
        }
        let table = load_table(txn, MountKind::Auth)?;
        let Some((mount, sub)) = table.route(rest) else {
            return Ok(None);
        };
        let Some(backend) = self.auth_backend_for(&mount.kind) else {
            return Ok(None);
        };
        if !is_unauthenticated(backend.unauthenticated_paths(), sub) {
            return Ok(None);
        }
        let mount = mount.clone();
        let engine_request = engine_request(request, request.operation, sub, &mount.options);
        let response = backend.handle(
            &engine_request,
            &mut txn.view(mount.storage_prefix(MountKind::Auth)),
        )?;
        match response.auth {
            Some(grant) => {
                let login_path = format!("auth/{}{sub}", mount.path);
                self.issue_login(txn, grant, &mount, &login_path, now)
                    .map(Some)
            }
            None => Ok(Some(Reply::from(response))),
        }
    }

    /// Runs the engine or auth method of a routed request.
    fn run_mounted(
        &self,
        request: &ClientRequest,
        operation: Operation,
        txn: &mut TxnBuilder,
        mounted: &Mounted,
        list_filter: Option<ListFilter>,
    ) -> Result<Response, CoreError> {
        let mount = &mounted.mount;
        let backend = self.backend_of(mounted.kind, mount).ok_or_else(|| {
            CoreError::Internal(format!(
                "no engine of type {} v{}",
                mount.kind, mount.version
            ))
        })?;
        let mut engine_request = engine_request(request, operation, &mounted.rest, &mount.options);
        engine_request.list_filter = list_filter;
        let mut view = txn.view(mount.storage_prefix(mounted.kind));
        Ok(backend.handle(&engine_request, &mut view)?)
    }

    /// Spends one use of a use-limited token; the last use revokes it (after this request).
    fn count_use(&self, txn: &mut TxnBuilder, entry: &TokenEntry) -> Result<(), CoreError> {
        if entry.num_uses == 0 {
            return Ok(());
        }
        let mut view = txn.view(token::VIEW_PREFIX);
        if entry.num_uses == 1 {
            token::revoke_tree(&mut view, &entry.id_hash)?;
        } else {
            let spent = TokenEntry {
                num_uses: entry.num_uses - 1,
                ..entry.clone()
            };
            token::replace(&mut view, entry, &spent).map_err(LogicalError::from)?;
        }
        Ok(())
    }

    /// Builds and encrypts the audit record of one attempt.
    fn audit_record(
        &self,
        request: &ClientRequest,
        request_id: &str,
        auth: Option<&AuthInfo>,
        outcome: &Result<Reply, CoreError>,
    ) -> Result<Vec<u8>, CoreError> {
        let (status, response_data, response_auth, error) = match outcome {
            Ok(reply) => {
                let data = reply.response.data.as_ref();
                let default = if data.is_some() || reply.auth.is_some() {
                    200
                } else {
                    204
                };
                (
                    reply.response.status.unwrap_or(default),
                    data,
                    reply.auth.as_ref(),
                    None,
                )
            }
            Err(err) => (
                err.kind().status_code(),
                None,
                None,
                Some(err.client_message()),
            ),
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
            clear_request_fields: &[],
            status,
            response_data,
            response_auth,
            error,
        };
        let time = crate::logical::time::format_nanos(crate::logical::time::now_nanos());
        let record = audit::record(&event, &time, &|bytes| self.audit_hmac(bytes));
        self.seal_record(&record)
    }
}

/// Where an authorized request is served.
enum Target {
    /// `sys/*`.
    System,
    /// `auth/token/*`.
    TokenStore,
    /// A secrets engine or an auth method.
    Mounted(Mounted),
    /// No mount serves the path.
    NoRoute,
}

/// A request routed to a mount: which table, the mount, and the path below it.
struct Mounted {
    kind: MountKind,
    mount: MountEntry,
    rest: String,
}

/// Runs CPU-bound request work (policy evaluation, engines: RSA key generation, Argon2id
/// hashing) without stalling the runtime's other tasks, Raft heartbeats among them: on a
/// multi-threaded runtime the worker hands its queue to another thread first.
fn off_the_reactor<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

fn engine_request(
    request: &ClientRequest,
    operation: Operation,
    path: &str,
    mount_options: &BTreeMap<String, String>,
) -> Request {
    Request {
        operation,
        path: path.to_string(),
        data: request.data.clone(),
        query: request.query.clone(),
        mount_options: mount_options.clone(),
        remote_address: request.remote_address.clone(),
        list_filter: None,
    }
}
