//! Audit records of requests the pipeline ([`super::request`]) never runs: requests an edge
//! rejects before they become a [`super::request::ClientRequest`] (a malformed path, query, body
//! or method), unseal attempts (`sys/unseal`, HTTP and gRPC) and init attempts (`sys/init`, HTTP
//! and gRPC).
//!
//! Edge rejections on an unsealed node are recorded like any request: the record is committed
//! before the rejection is answered, and when it cannot be, the client gets a 503 instead. A
//! sealed node cannot encrypt or HMAC anything, so its rejections are answered unrecorded (as
//! are `sys/seal-status`, `sys/health`, `sys/leader` and `GET sys/init`, which are not audited).
//!
//! Unseal attempts, the decision: an attempt on an unsealed node is recorded before it is
//! answered (fail closed, like every request). An attempt on a sealed node cannot be: the audit
//! HMAC key and the journal encryption key are behind the barrier this very request is trying to
//! open. Shipping the attempt to an unsealed peer to be recorded there would mean sending the
//! share off the node in order to HMAC it, so it is not done. Instead a sealed node keeps its
//! attempts in memory, each share in a zeroizing buffer, and commits their records (shares
//! HMAC'd) as soon as it unseals (by shares, or by its HSM), before the attempt that unsealed it
//! is answered; that attempt comes last, so the journal holds the ceremony in order. At most
//! [`MAX_PENDING`] attempts are held; beyond that one summary record says how many were not kept.
//! What this cannot record: attempts on a node that is restarted or never unsealed (the memory is
//! gone, as is the unseal progress itself), and a sealed node answers attempts before their
//! records exist. If the records cannot be committed at unseal, the node stays unsealed (undoing
//! that would lose the operators' shares), answers without a request id, and retries in the
//! background.
//!
//! Init attempts (`PUT`/`POST sys/init`):
//! - A successful init commits its own record in the very transaction that initializes the
//!   cluster, encrypted and HMAC'd with the keys it just made (see [`super::init`]), so the
//!   journal's first record is always the init. Its request id is answered in the
//!   `X-Strongroom-Request-Id` header (Vault's init answer has no envelope to carry it).
//! - The record holds the request as usual (the share counts in the clear, as they are public in
//!   `sys/seal-status`; every other field, `pgp_keys` included, HMAC'd) and status 200, but no
//!   response data: the shares and the root token are never recorded, not even HMAC'd. Vault
//!   records their HMACs; an HMAC of a share or of the root token serves no search an operator
//!   needs (they hold the values themselves) and would put a derivative of them in every sink.
//! - A failed attempt on an initialized cluster (400 "Vault is already initialized", or a bad
//!   body) is recorded like an edge rejection: on an unsealed node, committed before the answer
//!   (503 if it cannot be); on a sealed node, held with the unseal attempts above and committed
//!   when the node unseals, the answer carrying no request id.
//! - A failed attempt on a node that has not seen the cluster initialized (bad
//!   `secret_shares`/`secret_threshold`, bad PGP keys, no leader yet, or a guard lost to a
//!   concurrent init it has not applied yet) cannot be recorded and is not: no barrier key
//!   exists yet to encrypt or HMAC its record with, and holding it for a barrier made later
//!   would record requests against a cluster that did not exist when they were refused. Such an
//!   attempt changes nothing.
//! - An init whose commit timed out (503) but that applied afterwards has both records: its own
//!   (status 200, in the init transaction) and the failure's (status 503), under one request id.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use zeroize::Zeroizing;

use super::Core;
use super::CoreError;
use super::unseal::SealStatus;
use crate::audit;
use crate::audit::AuditEvent;

/// Unseal attempts a sealed node keeps in memory for the audit log at most.
pub const MAX_PENDING: usize = 256;
/// First delay before re-trying to commit held attempts after a failure.
const RETRY_MIN: Duration = Duration::from_millis(200);
/// Longest delay between re-tries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A request an edge refused before the pipeline could run it.
#[derive(Debug)]
pub struct Rejected<'a> {
    /// The operation if the edge could tell it, else the method (lower case).
    pub operation: &'a str,
    /// The path after `/v1/` (normalized when it could be; else as received, cut to 1 KiB).
    pub path: &'a str,
    /// Whether a token was presented (its HMAC is recorded).
    pub token: Option<&'a str>,
    /// The client's address.
    pub remote_address: Option<String>,
    /// The status answered.
    pub status: u16,
    /// The error answered (names no input value).
    pub error: String,
}

/// What an unseal attempt asked for, as the edge parsed it.
pub struct UnsealInput {
    /// The share (hex or base64), kept zeroizing.
    pub key: Option<Zeroizing<String>>,
    /// Whether the attempt resets progress.
    pub reset: bool,
    /// Vault's `migrate`: the shares also switch the cluster's seal (see `core::auto_unseal`).
    pub migrate: bool,
}

/// An unseal attempt: the parsed input (or why it could not be parsed) and who sent it.
pub struct UnsealAttempt {
    /// The input, or the parse error answered (400).
    pub input: Result<UnsealInput, String>,
    /// The client's address.
    pub remote_address: Option<String>,
}

/// The outcome of an unseal attempt, and the request id when its record is committed.
pub struct UnsealOutcome {
    /// The seal status, or the error to answer.
    pub result: Result<SealStatus, CoreError>,
    /// `Some` only when the attempt's record is in the journal.
    pub request_id: Option<String>,
}

/// Who sent a `sys/init` request and what it asked, for its record (see the module doc).
pub struct InitAudit {
    /// The request's id, answered when its record is committed.
    pub request_id: String,
    /// The client's address.
    pub remote_address: Option<String>,
    /// The request body, when it was a JSON object (HMAC'd in the record except
    /// [`INIT_CLEAR_FIELDS`]).
    pub data: Option<Map<String, Value>>,
}

/// `sys/init` body fields recorded in the clear (when they are numbers): the share counts,
/// which `sys/seal-status` shows to anyone.
pub const INIT_CLEAR_FIELDS: &[&str] = &[
    "secret_shares",
    "secret_threshold",
    "recovery_shares",
    "recovery_threshold",
];

impl InitAudit {
    /// A new init request's audit context, with a fresh request id.
    pub fn new(remote_address: Option<String>, data: Option<Map<String, Value>>) -> Self {
        InitAudit {
            request_id: crate::crypto::random_id(),
            remote_address,
            data,
        }
    }

    /// The record of this request answered with `status` (and `error`), as JSON bytes.
    pub(super) fn record(
        &self,
        node_id: u64,
        time: &str,
        status: u16,
        error: Option<String>,
        hasher: audit::Hasher<'_>,
    ) -> Vec<u8> {
        let event = AuditEvent {
            request_id: &self.request_id,
            operation: "update",
            path: "sys/init",
            remote_address: self.remote_address.clone(),
            node_id,
            request_data: self.data.as_ref(),
            clear_request_fields: INIT_CLEAR_FIELDS,
            status,
            error,
            ..AuditEvent::default()
        };
        audit::record(&event, time, hasher)
    }
}

/// One attempt held by a sealed node until it can be recorded.
struct HeldAttempt {
    request_id: String,
    time: String,
    remote_address: Option<String>,
    /// What was attempted.
    kind: HeldKind,
    key: Option<Zeroizing<String>>,
    reset: Option<bool>,
    status: u16,
    response: Option<Map<String, Value>>,
    error: Option<String>,
}

/// Unseal attempts held while sealed, and how many did not fit.
#[derive(Default)]
pub struct HeldAttempts {
    inner: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    attempts: Vec<HeldAttempt>,
    dropped: u64,
    retrying: bool,
}

impl HeldAttempts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn hold(&self, attempt: HeldAttempt) {
        let mut held = self.lock();
        if held.attempts.len() < MAX_PENDING {
            held.attempts.push(attempt);
        } else {
            held.dropped += 1;
        }
    }

    /// How many attempts are waiting to be recorded.
    pub fn len(&self) -> usize {
        self.lock().attempts.len()
    }

    /// Whether no attempt is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The request a held attempt was.
enum HeldKind {
    /// `sys/unseal` (its share and reset flag are in the attempt).
    Unseal,
    /// `sys/init`, with its request body.
    Init(Option<Map<String, Value>>),
}

fn now() -> String {
    crate::logical::time::format_nanos(crate::logical::time::now_nanos())
}

fn status_map(status: &SealStatus) -> Option<Map<String, Value>> {
    match serde_json::to_value(status) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

impl Core {
    /// Records a request an edge rejected and returns its request id. `Sealed` when this node
    /// cannot record (the edge answers the rejection unrecorded); `Unavailable` when the record
    /// could not be committed (the edge answers 503).
    pub async fn audit_rejected(&self, rejected: &Rejected<'_>) -> Result<String, CoreError> {
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }
        let request_id = crate::crypto::random_id();
        let path: String = rejected.path.chars().take(1024).collect();
        let event = AuditEvent {
            request_id: &request_id,
            operation: rejected.operation,
            path: &path,
            remote_address: rejected.remote_address.clone(),
            node_id: self.node.id(),
            client_token: rejected.token,
            status: rejected.status,
            error: Some(rejected.error.clone()),
            ..AuditEvent::default()
        };
        let record = audit::record(&event, &now(), &|bytes| self.audit_hmac(bytes));
        self.audit.commit(self.seal_record(&record)?).await?;
        Ok(request_id)
    }

    /// `sys/unseal`, audited (see the module doc for what a sealed node can record).
    pub async fn unseal_audited(self: &Arc<Self>, attempt: UnsealAttempt) -> UnsealOutcome {
        let was_sealed = self.is_sealed();
        let time = now();
        let request_id = crate::crypto::random_id();
        let (result, key, reset) = match attempt.input {
            Ok(input) => {
                let result = self
                    .unseal_migrating(
                        input.key.as_deref().map(String::as_str),
                        input.reset,
                        input.migrate,
                    )
                    .await;
                (result, input.key, Some(input.reset))
            }
            Err(message) => (Err(CoreError::InvalidRequest(message)), None, None),
        };
        let (status, response, error) = match &result {
            Ok(status) => (200, status_map(status), None),
            Err(err) => (err.kind().status_code(), None, Some(err.client_message())),
        };
        let held = HeldAttempt {
            request_id,
            time,
            remote_address: attempt.remote_address,
            kind: HeldKind::Unseal,
            key,
            reset,
            status,
            response,
            error,
        };
        if self.is_sealed() {
            self.held_unseal_attempts.hold(held);
            return UnsealOutcome {
                result,
                request_id: None,
            };
        }
        if !was_sealed {
            // Unsealed all along: recorded before the answer, fail closed.
            let request_id = held.request_id.clone();
            return match self.commit_attempts(&[held], 0).await {
                Ok(()) => UnsealOutcome {
                    result,
                    request_id: Some(request_id),
                },
                Err(err) => UnsealOutcome {
                    result: Err(err),
                    request_id: None,
                },
            };
        }
        // This attempt unsealed the node: record everything held, then this one.
        let request_id = held.request_id.clone();
        self.held_unseal_attempts.hold(held);
        let committed = self.flush_held_attempts().await;
        if !committed {
            self.retry_held_attempts();
        }
        UnsealOutcome {
            result,
            request_id: committed.then_some(request_id),
        }
    }

    /// Records a failed `sys/init` answered with `status` and `error` (see the module doc).
    /// Returns the request id when the record is committed, `None` when it is held (sealed node)
    /// or cannot be made (uninitialized node); `Unavailable` when it could not be committed (the
    /// edge answers 503 instead).
    pub async fn audit_init_failure(
        &self,
        init: InitAudit,
        status: u16,
        error: String,
    ) -> Result<Option<String>, CoreError> {
        let time = now();
        if self.is_sealed() {
            if self.is_initialized()? {
                self.held_unseal_attempts.hold(HeldAttempt {
                    request_id: init.request_id,
                    time,
                    remote_address: init.remote_address,
                    kind: HeldKind::Init(init.data),
                    key: None,
                    reset: None,
                    status,
                    response: None,
                    error: Some(error),
                });
            }
            return Ok(None);
        }
        let record = init.record(self.node.id(), &time, status, Some(error), &|bytes| {
            self.audit_hmac(bytes)
        });
        self.audit.commit(self.seal_record(&record)?).await?;
        Ok(Some(init.request_id))
    }

    /// Commits the attempts held while sealed, now that this node is unsealed (by its HSM; an
    /// unseal by shares does it in [`Core::unseal_audited`]), retrying in the background if
    /// that fails.
    pub(super) async fn record_held_attempts(self: &Arc<Self>) {
        if !self.is_sealed() && !self.flush_held_attempts().await {
            self.retry_held_attempts();
        }
    }

    /// Commits every held attempt (and the count of dropped ones); on failure they stay held.
    /// Returns whether nothing is left to record.
    async fn flush_held_attempts(&self) -> bool {
        let (attempts, dropped) = {
            let mut held = self.held_unseal_attempts.lock();
            (
                std::mem::take(&mut held.attempts),
                std::mem::take(&mut held.dropped),
            )
        };
        if attempts.is_empty() && dropped == 0 {
            return true;
        }
        match self.commit_attempts(&attempts, dropped).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, held = attempts.len(), "unseal attempts could not be recorded yet; retrying");
                let mut held = self.held_unseal_attempts.lock();
                let newer = std::mem::take(&mut held.attempts);
                held.attempts = attempts;
                held.attempts.extend(newer);
                held.dropped += dropped;
                false
            }
        }
    }

    /// Keeps trying to record held attempts while the node stays unsealed (one task at a time).
    fn retry_held_attempts(self: &Arc<Self>) {
        {
            let mut held = self.held_unseal_attempts.lock();
            if held.retrying {
                return;
            }
            held.retrying = true;
        }
        let core = self.clone();
        tokio::spawn(async move {
            let mut wait = RETRY_MIN;
            loop {
                tokio::time::sleep(wait).await;
                if core.is_sealed() || core.flush_held_attempts().await {
                    break;
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
            core.held_unseal_attempts.lock().retrying = false;
        });
    }

    /// Builds, encrypts and commits the records of `attempts` (in order) as one journal entry.
    async fn commit_attempts(
        &self,
        attempts: &[HeldAttempt],
        dropped: u64,
    ) -> Result<(), CoreError> {
        let hasher = |bytes: &[u8]| self.audit_hmac(bytes);
        let mut records = Vec::with_capacity(attempts.len() + 1);
        if dropped > 0 {
            let request_id = crate::crypto::random_id();
            let event = AuditEvent {
                request_id: &request_id,
                operation: "update",
                path: "sys/unseal",
                node_id: self.node.id(),
                // Not an answered request: a notice that some were not kept.
                status: 0,
                error: Some(format!(
                    "{dropped} unseal or init attempts while sealed were not recorded: more than {MAX_PENDING} were waiting"
                )),
                ..AuditEvent::default()
            };
            records.push(self.seal_record(&audit::record(&event, &now(), &hasher))?);
        }
        for attempt in attempts {
            if let HeldKind::Init(data) = &attempt.kind {
                let init = InitAudit {
                    request_id: attempt.request_id.clone(),
                    remote_address: attempt.remote_address.clone(),
                    data: data.clone(),
                };
                let record = init.record(
                    self.node.id(),
                    &attempt.time,
                    attempt.status,
                    attempt.error.clone(),
                    &hasher,
                );
                records.push(self.seal_record(&record)?);
                continue;
            }
            let mut data = Map::new();
            if let Some(key) = &attempt.key {
                data.insert("key".into(), json!(key.as_str()));
            }
            if let Some(reset) = attempt.reset {
                data.insert("reset".into(), json!(reset));
            }
            let event = AuditEvent {
                request_id: &attempt.request_id,
                operation: "update",
                path: "sys/unseal",
                remote_address: attempt.remote_address.clone(),
                node_id: self.node.id(),
                request_data: (!data.is_empty()).then_some(&data),
                status: attempt.status,
                response_data: attempt.response.as_ref(),
                error: attempt.error.clone(),
                ..AuditEvent::default()
            };
            let record = audit::record(&event, &attempt.time, &hasher);
            // The share went into `data` as a plain String: wipe that copy too.
            if let Some(Value::String(share)) = data.get_mut("key") {
                zeroize::Zeroize::zeroize(share);
            }
            records.push(self.seal_record(&record)?);
        }
        self.audit.commit_many(records).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(n: usize) -> HeldAttempt {
        HeldAttempt {
            request_id: format!("r{n}"),
            time: String::new(),
            remote_address: None,
            kind: HeldKind::Unseal,
            key: Some(Zeroizing::new(format!("share-{n}"))),
            reset: Some(false),
            status: 200,
            response: None,
            error: None,
        }
    }

    #[test]
    fn holds_at_most_max_pending_and_counts_the_rest() {
        let held = HeldAttempts::default();
        assert!(held.is_empty());
        for n in 0..MAX_PENDING + 5 {
            held.hold(attempt(n));
        }
        assert_eq!(held.len(), MAX_PENDING);
        let inner = held.lock();
        assert_eq!(inner.dropped, 5);
        assert_eq!(
            inner.attempts[0].request_id, "r0",
            "the first ones are kept, in order"
        );
    }
}
