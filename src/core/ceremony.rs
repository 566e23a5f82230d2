//! The share-holder ceremonies of an unsealed cluster: rekey (`sys/rekey/init|update|verify`,
//! see [`super::rekey`]) and generate-root (`sys/generate-root/attempt|update`, see
//! [`super::generate_root`]). As in Vault they need no token: a quorum of unseal key shares is
//! the authorization. Unlike `sys/unseal` they run only while this node is unsealed (Vault's
//! rule; 503 otherwise), so every request is audited like any other: its record (request and
//! response values HMAC'd, shares included) is committed before the answer is released, and a
//! step that commits cluster state carries its record in the same Raft entry.
//!
//! Where the progress lives: on the node the operator talks to, in memory, like unseal progress.
//! Vault keeps it on the active node and forwards standbys' requests there; here any unsealed
//! node serves the ceremony and only its final step goes through Raft, as one guarded
//! transaction, so two ceremonies started on different nodes cannot both commit (the second
//! one's guard on the seal configuration fails). Sealing the node, or restarting it, drops
//! the progress (and wipes the held shares).

use std::sync::Mutex;
use std::sync::MutexGuard;

use serde_json::Map;
use serde_json::Value;

use super::Core;
use super::CoreError;
use super::generate_root::GenerateRootState;
use super::rekey::RekeyState;
use crate::audit;
use crate::audit::AuditEvent;
use crate::barrier::ROOT_KEY_PATH;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::logical::LogicalError;
use crate::seal::SealConfig;

/// One ceremony request as the HTTP edge parsed it.
#[derive(Debug, Clone)]
pub struct CeremonyRequest {
    /// The path after `/v1/`, without a trailing slash (`sys/rekey/update`).
    pub path: String,
    /// `read` (GET), `update` (PUT/POST) or `delete` (DELETE).
    pub operation: CeremonyOperation,
    /// The JSON body.
    pub data: Map<String, Value>,
    /// The client's address.
    pub remote_address: Option<String>,
}

/// The verbs a ceremony path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyOperation {
    /// GET: status.
    Read,
    /// PUT or POST: start, or submit a share.
    Update,
    /// DELETE: cancel (or restart verification).
    Delete,
}

impl CeremonyOperation {
    fn as_str(self) -> &'static str {
        match self {
            CeremonyOperation::Read => "read",
            CeremonyOperation::Update => "update",
            CeremonyOperation::Delete => "delete",
        }
    }
}

/// Whether `path` is a ceremony path this module serves.
pub fn is_ceremony_path(path: &str) -> bool {
    matches!(
        path,
        "sys/rekey/init"
            | "sys/rekey/update"
            | "sys/rekey/verify"
            | "sys/generate-root/attempt"
            | "sys/generate-root/update"
    )
}

/// What a ceremony step produced.
pub(super) enum Outcome {
    /// An answer (`None`: 204) whose audit record is still to be committed.
    Reply(Option<Value>),
    /// An answer whose audit record was committed with the step's own transaction.
    Committed(Value),
}

/// This node's in-memory ceremony progress.
#[derive(Default)]
pub(super) struct Ceremonies {
    rekey: Mutex<Option<RekeyState>>,
    generate_root: Mutex<Option<GenerateRootState>>,
}

impl Ceremonies {
    pub(super) fn rekey(&self) -> MutexGuard<'_, Option<RekeyState>> {
        self.rekey
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn generate_root(&self) -> MutexGuard<'_, Option<GenerateRootState>> {
        self.generate_root
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops every ceremony in progress (the node sealed); held shares are wiped.
    pub(super) fn clear(&self) {
        self.rekey().take();
        self.generate_root().take();
    }
}

impl Core {
    /// Serves one ceremony request: runs it, then commits its audit record (unless the step
    /// committed it itself). `Ok(None)` answers 204.
    pub async fn ceremony(&self, request: &CeremonyRequest) -> Result<Option<Value>, CoreError> {
        let request_id = crate::crypto::random_id();
        let outcome = if self.is_sealed() {
            // Vault's rule: no rekey or root generation on a sealed node. Without keys there is
            // also no audit key, so nothing is recorded (as for sys/unseal).
            return Err(CoreError::Sealed);
        } else {
            self.run_ceremony(request, &request_id).await
        };
        let (reply, record) = match outcome {
            Ok(Outcome::Committed(value)) => return Ok(Some(value)),
            Ok(Outcome::Reply(value)) => {
                let record = self.ceremony_record(request, &request_id, Ok(value.as_ref()));
                (Ok(value), record)
            }
            Err(err) => {
                let record = self.ceremony_record(request, &request_id, Err(&err));
                (Err(err), record)
            }
        };
        match record {
            Ok(record) => self.audit.commit(record).await?,
            // Sealed meanwhile: no audit key, and nothing to answer either.
            Err(CoreError::Sealed) => return Err(CoreError::Sealed),
            Err(err) => return Err(err),
        }
        reply
    }

    async fn run_ceremony(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
    ) -> Result<Outcome, CoreError> {
        use CeremonyOperation::{Delete, Read, Update};
        match (request.path.as_str(), request.operation) {
            ("sys/rekey/init", Read) => self.rekey_status().await.map(reply),
            ("sys/rekey/init", Update) => self.rekey_init(&request.data).await.map(reply),
            ("sys/rekey/init", Delete) => {
                self.ceremonies.rekey().take();
                Ok(Outcome::Reply(None))
            }
            ("sys/rekey/update", Update) => self.rekey_update(request, request_id).await,
            ("sys/rekey/verify", Read) => self.rekey_verify_status().map(reply),
            ("sys/rekey/verify", Update) => self.rekey_verify(request, request_id).await,
            ("sys/rekey/verify", Delete) => self.rekey_verify_restart().map(reply),
            ("sys/generate-root/attempt", Read) => self.generate_root_status().await.map(reply),
            ("sys/generate-root/attempt", Update) => {
                self.generate_root_init(&request.data).await.map(reply)
            }
            ("sys/generate-root/attempt", Delete) => {
                self.ceremonies.generate_root().take();
                Ok(Outcome::Reply(None))
            }
            ("sys/generate-root/update", Update) => {
                self.generate_root_update(request, request_id).await
            }
            _ => Err(CoreError::Logical(LogicalError::UnsupportedOperation)),
        }
    }

    /// The encrypted audit record of one ceremony step (values HMAC'd: shares, OTPs, tokens).
    pub(super) fn ceremony_record(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
        outcome: Result<Option<&Value>, &CoreError>,
    ) -> Result<Vec<u8>, CoreError> {
        let (status, response_data, error) = match outcome {
            Ok(Some(Value::Object(map))) => (200, Some(map), None),
            Ok(_) => (204, None, None),
            Err(err) => (err.kind().status_code(), None, Some(err.client_message())),
        };
        let event = AuditEvent {
            request_id,
            operation: request.operation.as_str(),
            path: &request.path,
            remote_address: request.remote_address.clone(),
            node_id: self.node.id(),
            request_data: (!request.data.is_empty()).then_some(&request.data),
            status,
            response_data,
            error,
            ..AuditEvent::default()
        };
        let time = crate::logical::time::format_nanos(crate::logical::time::now_nanos());
        let record = audit::record(&event, &time, &|bytes| self.audit_hmac(bytes));
        self.seal_record(&record)
    }

    /// What every share submission (`rekey/update`, `generate-root/update`) starts with: the
    /// share and nonce from the body, then, at a fresh read point, the seal configuration with
    /// its revision and the stored root key record.
    pub(super) async fn share_submission<'a>(
        &self,
        request: &'a CeremonyRequest,
    ) -> Result<ShareSubmission<'a>, CoreError> {
        let key = key_field(&request.data)?;
        let nonce = nonce_field(&request.data);
        self.node.read_point().await?;
        let (config, config_revision) = self.seal_config_revision()?;
        let root_key = self
            .reader()
            .get(ROOT_KEY_PATH)?
            .ok_or(CoreError::NotInitialized)?;
        Ok(ShareSubmission {
            key,
            nonce,
            config,
            config_revision,
            root_key,
        })
    }

    /// The current seal configuration and its `mod_revision` (this node's applied state; callers
    /// take a read point first).
    pub(super) fn seal_config_revision(&self) -> Result<(SealConfig, u64), CoreError> {
        let record = self
            .reader()
            .get(SEAL_CONFIG_PATH)?
            .ok_or(CoreError::NotInitialized)?;
        Ok((SealConfig::decode(&record.value)?, record.mod_revision))
    }
}

/// See [`Core::share_submission`].
pub(super) struct ShareSubmission<'a> {
    /// The submitted share (hex or base64).
    pub(super) key: &'a str,
    /// The submitted nonce.
    pub(super) nonce: &'a str,
    /// The seal configuration the share is checked against.
    pub(super) config: SealConfig,
    /// Its `mod_revision` (the commit's guard).
    pub(super) config_revision: u64,
    /// The stored, wrapped root key and its revision.
    pub(super) root_key: strongroom_raft::Record,
}

fn reply(value: Value) -> Outcome {
    Outcome::Reply(Some(value))
}

/// The `key` of a share submission (Vault's message when missing).
pub(super) fn key_field(data: &Map<String, Value>) -> Result<&str, CoreError> {
    match data.get("key") {
        Some(Value::String(key)) if !key.is_empty() => Ok(key),
        _ => Err(CoreError::InvalidRequest(
            "'key' must be specified in request body as JSON".into(),
        )),
    }
}

/// The `nonce` of a share submission (empty when absent: it then matches nothing).
pub(super) fn nonce_field(data: &Map<String, Value>) -> &str {
    data.get("nonce").and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceremony_paths() {
        for path in [
            "sys/rekey/init",
            "sys/rekey/update",
            "sys/rekey/verify",
            "sys/generate-root/attempt",
            "sys/generate-root/update",
        ] {
            assert!(is_ceremony_path(path), "{path}");
        }
        for path in [
            "sys/rekey",
            "sys/rekey/backup",
            "sys/generate-root",
            "sys/unseal",
        ] {
            assert!(!is_ceremony_path(path), "{path}");
        }
    }

    #[test]
    fn share_fields() {
        let data = serde_json::json!({"key": "abc", "nonce": "n-1"});
        let data = data.as_object().unwrap();
        assert_eq!(key_field(data).unwrap(), "abc");
        assert_eq!(nonce_field(data), "n-1");
        let empty = Map::new();
        assert!(matches!(
            key_field(&empty),
            Err(CoreError::InvalidRequest(message)) if message.contains("'key' must be specified")
        ));
        assert_eq!(nonce_field(&empty), "");
    }
}
