//! Keyring and root-key rotation: `PUT sys/rotate` (also OpenBao's `sys/rotate/keyring`) adds a
//! term, `GET sys/key-status` reports the active one, `GET|PUT sys/rotate/config` (also
//! `sys/rotate/keyring/config`) sets automatic rotation, `PUT sys/rotate/root` (OpenBao's) makes a
//! new root key without shares, and `PUT sys/rotate/retire {"term"}` (ours) drops an old term's
//! data key once nothing uses it. Re-encryption is in [`super::rewrap`].
//!
//! - Every change is a write of `core/keyring` (raw: it is wrapped by the root key) in the
//!   request's own Raft transaction, built from the *stored* keyring and guarded on its
//!   mod_revision, so two concurrent rotations cannot lose a term: the loser re-runs on the new
//!   keyring.
//! - Every node installs the committed keyring when it applies the write: a task follows the
//!   node's applied index and calls [`crate::barrier::Barrier::refresh`], and the barrier reloads by
//!   itself when it meets a term it does not know, so no node fails to decrypt a newer value.
//! - Automatic rotation runs on the leader's background pass: the active term is rotated when the
//!   leader's own encryption count under it (counted per node since the node installed the term;
//!   followers' encryptions are not summed) reaches `max_operations`, or when the term is older
//!   than `interval`. The decision reads the stored keyring and the proposal is guarded on its
//!   revision, so a period rotates once even across leader changes.
//! - Root rotation needs the unseal key, which the barrier keeps while unsealed. After a rekey, a
//!   node unsealed with the old shares holds an out-of-date unseal key and refuses (400); the
//!   upgrade record lets other unsealed nodes follow, and is deleted by the leader after
//!   [`ROOT_UPGRADE_GRACE`] seconds: a node that applied nothing for that long must be unsealed
//!   again (with the same shares).
//! - Journal records: see [`crate::barrier`]. They are under per-term journal keys that are never
//!   retired (the journal is append-only and hash-chained, so it is never re-encrypted and there
//!   is no pruning yet); retiring a term removes only its data key. A term from before journal
//!   keys existed cannot be retired while a journal record uses it.

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;
use std::time::Instant;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::StoreReader;
use strongroom_raft::TxnOutcome;
use tokio::sync::watch;

use super::Core;
use super::CoreError;
use super::now_secs;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::barrier::BarrierError;
use crate::barrier::KEYRING_PATH;
use crate::barrier::KeyringSource;
use crate::barrier::ROOT_KEY_PATH;
use crate::barrier::ROOT_UPGRADE_PATH;
use crate::barrier::UNSEAL_KEY_PATH;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::seal::UnsealKey;

/// Storage key of the automatic rotation configuration (barrier-encrypted JSON).
pub const ROTATE_CONFIG_KEY: &str = "core/rotate-config";
/// Vault's default and largest `max_operations` (just under 2^32 * 0.9, NIST SP 800-38D).
pub const MAX_OPERATIONS: u64 = 3_865_470_566;
/// Vault's smallest `max_operations`.
const MIN_OPERATIONS: u64 = 1_000_000;
/// Vault's smallest `interval`: 24 hours.
const MIN_INTERVAL: u64 = 86_400;
/// Seconds the root-key upgrade record is kept after a root rotation.
pub const ROOT_UPGRADE_GRACE: u64 = 600;

/// The automatic rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateConfig {
    /// Encryptions under one term after which it is rotated.
    pub max_operations: u64,
    /// Age in seconds after which the active term is rotated (0: never).
    pub interval: u64,
    /// Whether automatic rotation runs at all.
    pub enabled: bool,
}

impl Default for RotateConfig {
    fn default() -> Self {
        RotateConfig {
            max_operations: MAX_OPERATIONS,
            interval: 0,
            enabled: true,
        }
    }
}

impl RotateConfig {
    /// Applies a `sys/rotate/config` write over this configuration.
    ///
    /// # Errors
    ///
    /// A message for the client when a field is malformed or out of Vault's ranges.
    pub fn updated(&self, data: &serde_json::Map<String, Value>) -> Result<Self, String> {
        let mut next = *self;
        if let Some(value) = data.get("max_operations") {
            let number = match value {
                Value::Number(number) => number.as_u64(),
                Value::String(text) => text.trim().parse().ok(),
                _ => None,
            }
            .ok_or("max_operations must be a non-negative integer")?;
            if !(MIN_OPERATIONS..=MAX_OPERATIONS).contains(&number) {
                return Err(format!(
                    "max_operations must be between {MIN_OPERATIONS} and {MAX_OPERATIONS}"
                ));
            }
            next.max_operations = number;
        }
        if let Some(value) = data.get("interval") {
            let seconds = crate::logical::duration::parse_seconds(value)?;
            if seconds != 0 && seconds < MIN_INTERVAL {
                return Err("interval must be greater or equal to 24h".into());
            }
            next.interval = seconds;
        }
        if let Some(value) = data.get("enabled") {
            next.enabled = match value {
                Value::Bool(flag) => *flag,
                Value::String(text) => text
                    .parse()
                    .map_err(|_| "enabled must be a boolean".to_string())?,
                _ => return Err("enabled must be a boolean".into()),
            };
        }
        Ok(next)
    }

    /// Whether a term installed at `install_time` that encrypted `encryptions` times is due.
    pub fn due(&self, install_time: u64, encryptions: u64, now: u64) -> bool {
        self.enabled
            && (encryptions >= self.max_operations
                || (self.interval > 0 && now >= install_time.saturating_add(self.interval)))
    }

    fn to_response(self) -> Response {
        let interval = if self.interval > 0 {
            json!(crate::logical::duration::format_seconds(self.interval))
        } else {
            json!(0)
        };
        let mut response = Response::from_value(json!({
            "max_operations": self.max_operations,
            "interval": interval,
            "enabled": self.enabled,
        }));
        response.data_at_top_level = true;
        response
    }
}

/// Reads the stored keyring for the barrier.
struct StoreSource(StoreReader);

impl KeyringSource for StoreSource {
    fn keyring(&self) -> Result<Option<(u64, Vec<u8>)>, String> {
        Ok(self
            .0
            .get(KEYRING_PATH)
            .map_err(|err| err.to_string())?
            .map(|record| (record.mod_revision, record.value)))
    }

    fn root_upgrade(&self) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .0
            .get(ROOT_UPGRADE_PATH)
            .map_err(|err| err.to_string())?
            .map(|record| record.value))
    }
}

/// Barrier errors of a rotation request: the client's mistakes are 400s.
fn rotation_error(err: BarrierError) -> CoreError {
    match err {
        BarrierError::ActiveTerm(_)
        | BarrierError::UnknownTerm(_)
        | BarrierError::RetiredTerm(_)
        | BarrierError::UnsealKeyOutdated => CoreError::InvalidRequest(err.to_string()),
        other => CoreError::from(other),
    }
}

/// Loads the rotation configuration (the default when none was written).
pub(super) fn load_config(txn: &mut TxnBuilder) -> Result<RotateConfig, CoreError> {
    match txn.get(ROTATE_CONFIG_KEY).map_err(LogicalError::from)? {
        None => Ok(RotateConfig::default()),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|err| CoreError::Internal(format!("rotation config: {err}"))),
    }
}

impl Core {
    /// Makes the barrier read the stored keyring from this node's store and follow every
    /// keyring write this node applies (until the core is dropped).
    pub(super) fn start_keyring_follower(self: &Arc<Self>) {
        self.barrier
            .set_source(Box::new(StoreSource(self.reader())));
        let applied = self.reader().applied_watch();
        tokio::spawn(follow(Arc::downgrade(self), applied));
    }

    /// Installs a keyring this request just committed (so the answer's node uses it at once).
    pub(super) fn after_keyring_write(&self, request: &ClientRequest) {
        if request.operation.is_write()
            && request.path.starts_with("sys/rotate")
            && let Err(err) = self.barrier.refresh()
        {
            tracing::warn!(error = %err, "installing the new keyring failed");
        }
    }

    /// The rotation paths; `None` for any other path.
    pub(super) fn rotate_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Option<Result<Response, CoreError>> {
        let write = matches!(request.operation, Operation::Update | Operation::Create);
        let read = request.operation == Operation::Read;
        Some(match request.path.as_str() {
            "sys/rotate" | "sys/rotate/keyring" if write => self.rotate_keyring(txn),
            "sys/key-status" | "sys/rotate/keyring/status" if read => self.key_status(),
            "sys/rotate/config" | "sys/rotate/keyring/config" if read => {
                load_config(txn).map(RotateConfig::to_response)
            }
            "sys/rotate/config" | "sys/rotate/keyring/config" if write => {
                self.write_config(request, txn)
            }
            "sys/rotate/root" if write => self.rotate_root(txn),
            "sys/rotate/retire" if write => self.retire_term(request, txn),
            "sys/rotate/rewrap" if read => self.rewrap_status(txn),
            "sys/rotate/rewrap" if write => self.rewrap_start(txn),
            _ => return None,
        })
    }

    fn stored_keyring(txn: &mut TxnBuilder) -> Result<Vec<u8>, CoreError> {
        txn.get_raw(KEYRING_PATH)
            .map_err(LogicalError::from)?
            .ok_or(CoreError::NotInitialized)
    }

    /// `PUT sys/rotate`: stages the stored keyring plus a new term (204, as Vault).
    fn rotate_keyring(&self, txn: &mut TxnBuilder) -> Result<Response, CoreError> {
        let stored = Self::stored_keyring(txn)?;
        let (blob, term) = self
            .barrier
            .rotated_keyring(&stored)
            .map_err(rotation_error)?;
        txn.put_raw(KEYRING_PATH, blob);
        tracing::info!(term, "keyring rotation staged");
        Ok(Response::no_content())
    }

    /// `GET sys/key-status`: Vault's `term`, `install_time` (RFC 3339) and `encryptions` (this
    /// node's, under the active term).
    fn key_status(&self) -> Result<Response, CoreError> {
        if let Err(err) = self.barrier.refresh() {
            tracing::warn!(error = %err, "keyring reload failed");
        }
        let status = self.barrier.key_status()?;
        let mut response = Response::from_value(json!({
            "term": status.term,
            "install_time": crate::logical::time::format_nanos(
                status.install_time.saturating_mul(1_000_000_000)
            ),
            "encryptions": status.encryptions,
        }));
        response.data_at_top_level = true;
        Ok(response)
    }

    fn write_config(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Result<Response, CoreError> {
        let config = load_config(txn)?
            .updated(&request.data)
            .map_err(CoreError::InvalidRequest)?;
        let bytes =
            serde_json::to_vec(&config).map_err(|err| CoreError::Internal(err.to_string()))?;
        txn.put(ROTATE_CONFIG_KEY, bytes);
        Ok(Response::no_content())
    }

    /// `PUT sys/rotate/root`: a new root key wrapped by the unchanged unseal key, the keyring
    /// re-wrapped under it, and the upgrade record, guarded on both stored blobs.
    fn rotate_root(&self, txn: &mut TxnBuilder) -> Result<Response, CoreError> {
        let stored_root = txn
            .get_raw(ROOT_KEY_PATH)
            .map_err(LogicalError::from)?
            .ok_or(CoreError::NotInitialized)?;
        let stored = Self::stored_keyring(txn)?;
        let _ = txn.get_raw(ROOT_UPGRADE_PATH).map_err(LogicalError::from)?;
        // The current unseal key as stored in the barrier (a rekey on another node changed it
        // there); clusters initialized before that path use this node's held key.
        let stored_unseal_key = match txn.get(UNSEAL_KEY_PATH).map_err(LogicalError::from)? {
            Some(value) => Some(UnsealKey::from_barrier_value(&value).ok_or_else(|| {
                CoreError::Internal(format!("{UNSEAL_KEY_PATH} does not hold a key"))
            })?),
            None => None,
        };
        let rotation = self
            .barrier
            .rotate_root(&stored_root, &stored, stored_unseal_key, now_secs())
            .map_err(rotation_error)?;
        txn.put_raw(ROOT_KEY_PATH, rotation.root_key_blob);
        txn.put_raw(KEYRING_PATH, rotation.keyring_blob);
        txn.put_raw(ROOT_UPGRADE_PATH, rotation.upgrade_blob);
        txn.put(UNSEAL_KEY_PATH, rotation.unseal_key_value.to_vec());
        tracing::info!("root key rotation staged");
        Ok(Response::no_content())
    }

    /// `PUT sys/rotate/retire {"term": N}`: drops term N's data key when no stored value uses it
    /// (checked over the whole keyspace; the transaction is guarded on the keyspace being
    /// unchanged since) and no journal record needs it.
    fn retire_term(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Result<Response, CoreError> {
        let term = match request.data.get("term") {
            Some(Value::Number(number)) => number.as_u64(),
            Some(Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        }
        .and_then(|term| u32::try_from(term).ok())
        .ok_or_else(|| CoreError::InvalidRequest("term must be a positive integer".into()))?;
        let _ = self.barrier.refresh();
        if !self.barrier.terms()?.iter().any(|info| info.term == term) {
            return Err(CoreError::InvalidRequest(format!("no key for term {term}")));
        }
        // Registers a guard on the whole keyspace: any write after this scan fails the retire.
        txn.keys_under("").map_err(LogicalError::from)?;
        let counts = super::rewrap::count_terms(&self.reader())?;
        if let Some(count) = counts.get(&term).filter(|count| **count > 0) {
            return Err(CoreError::InvalidRequest(format!(
                "term {term} still encrypts {count} values; run sys/rotate/rewrap first"
            )));
        }
        if !self
            .barrier
            .term_has_journal_key(term)
            .map_err(rotation_error)?
            && super::rewrap::journal_uses_data_key(&self.reader(), term)?
        {
            return Err(CoreError::InvalidRequest(format!(
                "term {term} encrypted audit journal records (written before journal keys); the journal cannot be re-encrypted, so the term stays"
            )));
        }
        let stored = Self::stored_keyring(txn)?;
        let blob = self
            .barrier
            .retired_keyring(&stored, term)
            .map_err(rotation_error)?;
        txn.put_raw(KEYRING_PATH, blob);
        Ok(Response::no_content())
    }

    /// The journal record of a maintenance change.
    pub(super) fn maintenance_record(&self, path: &str) -> Result<Vec<u8>, CoreError> {
        let record = json!({
            "time": crate::logical::time::format_nanos(crate::logical::time::now_nanos()),
            "type": "periodic",
            "request": {"path": path, "operation": "periodic", "node_id": self.node.id()},
        });
        self.seal_record(record.to_string().as_bytes())
    }

    /// The leader's rotation duties, once per background pass: automatic rotation, deleting an
    /// expired root-key upgrade record, and re-encryption batches.
    pub(super) async fn rotation_maintenance(&self) -> Result<(), CoreError> {
        if let Err(err) = self.barrier.refresh() {
            tracing::warn!(error = %err, "keyring reload failed");
        }
        self.auto_rotate().await?;
        self.expire_root_upgrade().await?;
        self.rewrap_batches(Duration::from_secs(3)).await
    }

    async fn auto_rotate(&self) -> Result<(), CoreError> {
        let mut txn = self.new_txn();
        let config = load_config(&mut txn)?;
        let Some(record) = self.reader().get(KEYRING_PATH)? else {
            return Ok(());
        };
        // Decide on the stored keyring only: the barrier must hold exactly that revision.
        if self.barrier.keyring_revision() != Some(record.mod_revision) {
            return Ok(());
        }
        let status = self.barrier.key_status()?;
        if !config.due(status.install_time, status.encryptions, now_secs()) {
            return Ok(());
        }
        let stored = Self::stored_keyring(&mut txn)?;
        let (blob, term) = self.barrier.rotated_keyring(&stored)?;
        txn.put_raw(KEYRING_PATH, blob);
        let txn = txn.into_txn(vec![self.maintenance_record("sys/rotate")?])?;
        if let TxnOutcome::Applied { .. } = self.node.propose(txn).await?.outcome {
            tracing::info!(term, "keyring rotated automatically");
            self.barrier.refresh()?;
        }
        Ok(())
    }

    async fn expire_root_upgrade(&self) -> Result<(), CoreError> {
        let mut txn = self.new_txn();
        let Some(blob) = txn.get_raw(ROOT_UPGRADE_PATH).map_err(LogicalError::from)? else {
            return Ok(());
        };
        let written = crate::barrier::upgrade_time(&blob).unwrap_or(0);
        if now_secs() < written.saturating_add(ROOT_UPGRADE_GRACE) {
            return Ok(());
        }
        txn.delete(ROOT_UPGRADE_PATH);
        let txn = txn.into_txn(vec![self.maintenance_record("sys/rotate/root")?])?;
        self.node.propose(txn).await?;
        Ok(())
    }
}

/// Follows this node's applied index and installs a changed keyring (one local read per wakeup;
/// the watch coalesces bursts). Failures are logged at most once a minute.
async fn follow(core: Weak<Core>, mut applied: watch::Receiver<u64>) {
    let mut last_warning: Option<Instant> = None;
    loop {
        if applied.changed().await.is_err() {
            return;
        }
        let Some(core) = core.upgrade() else { return };
        if core.is_sealed() {
            continue;
        }
        if let Err(err) = core.barrier.refresh()
            && last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(60))
        {
            last_warning = Some(Instant::now());
            tracing::warn!(error = %err, "could not install the stored keyring");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn config_defaults_and_updates_like_vault() {
        let config = RotateConfig::default();
        assert_eq!(config.max_operations, MAX_OPERATIONS);
        let next = config
            .updated(&data(
                json!({"max_operations": 2_000_000_000u64, "interval": "4320h"}),
            ))
            .unwrap();
        assert_eq!(next.max_operations, 2_000_000_000);
        assert_eq!(next.interval, 4320 * 3600);
        assert!(next.enabled);
        let off = next.updated(&data(json!({"enabled": false}))).unwrap();
        assert!(!off.enabled);
        assert_eq!(off.max_operations, 2_000_000_000, "unset fields stay");
        let shown = off.to_response().data.unwrap();
        assert_eq!(shown["interval"], json!("4320h0m0s"));
        assert_eq!(
            RotateConfig::default().to_response().data.unwrap()["interval"],
            json!(0)
        );
    }

    #[test]
    fn config_rejects_out_of_range_values() {
        let config = RotateConfig::default();
        for bad in [
            json!({"max_operations": 999_999}),
            json!({"max_operations": MAX_OPERATIONS + 1}),
            json!({"max_operations": "many"}),
            json!({"interval": "1h"}),
            json!({"interval": "soon"}),
            json!({"enabled": "maybe"}),
        ] {
            assert!(config.updated(&data(bad.clone())).is_err(), "{bad}");
        }
        assert_eq!(
            config
                .updated(&data(json!({"interval": "0s"})))
                .unwrap()
                .interval,
            0
        );
    }

    #[test]
    fn due_by_count_or_age_only_when_enabled() {
        let config = RotateConfig {
            max_operations: 1_000_000,
            interval: MIN_INTERVAL,
            enabled: true,
        };
        assert!(!config.due(1_000, 999_999, 1_000 + MIN_INTERVAL - 1));
        assert!(config.due(1_000, 1_000_000, 1_000));
        assert!(config.due(1_000, 0, 1_000 + MIN_INTERVAL));
        let no_interval = RotateConfig {
            interval: 0,
            ..config
        };
        assert!(!no_interval.due(0, 0, u64::MAX));
        let disabled = RotateConfig {
            enabled: false,
            ..config
        };
        assert!(!disabled.due(0, u64::MAX, u64::MAX));
    }
}
