//! Rekey (`sys/rekey/init|update|verify`): a quorum of the current unseal key shares authorizes a
//! new unseal key split into new N/T shares. The root key does not change; it is re-wrapped under
//! the new unseal key, and the new seal configuration (with the new shares' verifiers) and the
//! re-wrapped root key are written in ONE Raft transaction guarded on both keys' revisions. From
//! its commit on, the old shares open nothing on any node, and the new ones unseal every node.
//!
//! With `require_verification`, the new shares are returned first and nothing is written until a
//! threshold of them is submitted to `sys/rekey/verify`: the old shares keep working until the
//! new ones are proven. Without it, the new shares are returned only once the commit succeeded.
//! With `pgp_keys` (one holder key per new share, checked at `sys/rekey/init`) the new shares
//! are returned only encrypted, as Vault does (see [`super::pgp`]); with `backup` too, they are
//! also stored for `sys/rekey/backup` (see [`super::rekey_backup`]).
//!
//! Progress lives in this node's memory (see [`super::ceremony`]). The rekey is bound to the seal
//! configuration it started under: if another rekey commits meanwhile, this one is cancelled.

use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::Guard;
use strongroom_raft::Op;
use strongroom_raft::Txn;
use strongroom_raft::TxnOutcome;

use super::Core;
use super::CoreError;
use super::ceremony::CeremonyRequest;
use super::ceremony::Outcome;
use super::ceremony::ShareSubmission;
use super::ceremony::key_field;
use super::ceremony::nonce_field;
use super::pgp;
use super::rekey_backup;
use super::rekey_backup::REKEY_BACKUP_PATH;
use crate::barrier::ROOT_KEY_PATH;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::barrier::UNSEAL_KEY_PATH;
use crate::crypto::pgp::RecipientKey;
use crate::crypto::random_id;
use crate::seal;
use crate::seal::SealConfig;
use crate::seal::Share;
use crate::seal::UnsealKey;
use crate::seal::UnsealProgress;

/// A rekey in progress on this node.
pub(super) struct RekeyState {
    nonce: String,
    shares: u8,
    threshold: u8,
    require_verification: bool,
    /// `mod_revision` of the seal configuration the rekey started under (the old shares are
    /// checked against it and the commit is guarded on it).
    config_revision: u64,
    /// Old shares submitted so far.
    progress: UnsealProgress,
    /// The new shares' holders' keys, one per share (`pgp_keys`).
    pgp_keys: Option<Vec<RecipientKey>>,
    /// Store the encrypted new shares for `sys/rekey/backup` (only with `pgp_keys`).
    backup: bool,
    /// Set once the old quorum was reached with `require_verification`.
    verification: Option<Verification>,
}

/// New shares issued but not yet proven.
struct Verification {
    nonce: String,
    key: UnsealKey,
    config: SealConfig,
    root_key_blob: Vec<u8>,
    root_key_revision: u64,
    /// New shares submitted so far.
    progress: UnsealProgress,
    /// The backup to store with the commit (`backup`), else `None`.
    backup: Option<Value>,
}

/// What one `sys/rekey/update` or `sys/rekey/verify` decided under the lock.
enum Step {
    Reply(Value),
    Commit(Commit),
}

/// The writes that complete a rekey.
struct Commit {
    config: SealConfig,
    root_key_blob: Vec<u8>,
    config_revision: u64,
    root_key_revision: u64,
    /// The rekey's nonce, to clear exactly this rekey afterwards.
    nonce: String,
    response: Value,
    /// On an HSM cluster, the write of the new unseal key wrapped by the HSM (else empty).
    hsm_ops: Vec<Op>,
    /// The new unseal key: stored in the barrier with the commit, and held by this node after.
    new_key: UnsealKey,
    /// The encrypted shares to store for `sys/rekey/backup`; `None` deletes an older backup.
    backup: Option<Value>,
}

/// Vault's `backup` without PGP keys.
const BACKUP_REFUSED: &str =
    "cannot request a backup of the new keys without providing PGP keys for encryption";

impl Core {
    /// `GET sys/rekey/init`.
    pub(super) async fn rekey_status(&self) -> Result<Value, CoreError> {
        self.node.read_point().await?;
        let (config, _) = self.seal_config_revision()?;
        Ok(status_json(
            self.ceremonies.rekey().as_ref(),
            config.secret_threshold,
        ))
    }

    /// `PUT sys/rekey/init {secret_shares, secret_threshold, require_verification, pgp_keys}`.
    pub(super) async fn rekey_init(&self, data: &Map<String, Value>) -> Result<Value, CoreError> {
        let backup = flag(data, "backup")?;
        let require_verification = flag(data, "require_verification")?;
        let shares = number(data, "secret_shares")?;
        let threshold = number(data, "secret_threshold")?;
        let (shares, threshold) = seal::check_parameters(shares, threshold)?;
        let pgp_keys = pgp::key_list(data.get("pgp_keys"), "pgp_keys", shares.into())?;
        if backup && pgp_keys.is_none() {
            return Err(CoreError::InvalidRequest(BACKUP_REFUSED.into()));
        }
        self.node.read_point().await?;
        let (config, config_revision) = self.seal_config_revision()?;
        let mut state = self.ceremonies.rekey();
        if state.is_some() {
            return Err(CoreError::InvalidRequest(
                "rekey already in progress".into(),
            ));
        }
        *state = Some(RekeyState {
            nonce: random_id(),
            shares,
            threshold,
            require_verification,
            config_revision,
            progress: UnsealProgress::new(),
            pgp_keys,
            backup,
            verification: None,
        });
        tracing::info!(
            secret_shares = shares,
            secret_threshold = threshold,
            require_verification,
            pgp = state.as_ref().is_some_and(|s| s.pgp_keys.is_some()),
            "rekey initialized"
        );
        Ok(status_json(state.as_ref(), config.secret_threshold))
    }

    /// `PUT sys/rekey/update {key, nonce}`: one old share; at the old threshold the new shares.
    pub(super) async fn rekey_update(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
    ) -> Result<Outcome, CoreError> {
        let ShareSubmission {
            key,
            nonce,
            config,
            config_revision,
            root_key: root_key_record,
        } = self.share_submission(request).await?;
        let step = {
            let mut guard = self.ceremonies.rekey();
            let Some(state) = guard.as_mut() else {
                return Err(CoreError::InvalidRequest("no rekey in progress".into()));
            };
            if let Some(verification) = &state.verification {
                return Err(CoreError::InvalidRequest(format!(
                    "rekey operation already finished; verification must be performed; nonce for the verification operation is {:?}",
                    verification.nonce
                )));
            }
            if nonce != state.nonce {
                return Err(CoreError::InvalidRequest(format!(
                    "incorrect nonce supplied; nonce for this rekey operation is {:?}",
                    state.nonce
                )));
            }
            if config_revision != state.config_revision {
                guard.take();
                return Err(config_changed());
            }
            let Some(old_key) = state.progress.submit(&config, key)? else {
                return Ok(Outcome::Reply(Some(status_json(
                    Some(state),
                    config.secret_threshold,
                ))));
            };
            // The combined key must open the stored root key: a wrong mix ends here (400) and
            // the progress is already cleared.
            let root_key = seal::unwrap_root_key(&old_key, &root_key_record.value)?;
            let (new_key, new_shares, new_config) =
                seal::generate(state.shares.into(), state.threshold.into())?;
            let root_key_blob = seal::wrap_root_key(&new_key, &root_key);
            // Encrypted (with PGP keys) before anything is committed.
            let fields = NewShares::new(&new_shares, state.pgp_keys.as_deref(), state.backup)?;
            let backup = fields.backup_record(&state.nonce);
            if state.require_verification {
                let verification_nonce = random_id();
                let response = update_json(&state.nonce, &fields, Some(&verification_nonce));
                state.verification = Some(Verification {
                    nonce: verification_nonce,
                    key: new_key,
                    config: new_config,
                    root_key_blob,
                    root_key_revision: root_key_record.mod_revision,
                    progress: UnsealProgress::new(),
                    backup,
                });
                Step::Reply(response)
            } else {
                Step::Commit(Commit {
                    response: update_json(&state.nonce, &fields, None),
                    config: new_config,
                    root_key_blob,
                    config_revision,
                    root_key_revision: root_key_record.mod_revision,
                    nonce: state.nonce.clone(),
                    hsm_ops: self.hsm_rekey_op(&new_key)?.into_iter().collect(),
                    new_key,
                    backup,
                })
            }
        };
        match step {
            Step::Reply(value) => Ok(Outcome::Reply(Some(value))),
            Step::Commit(commit) => self.commit_rekey(request, request_id, commit).await,
        }
    }

    /// `GET sys/rekey/verify`.
    pub(super) fn rekey_verify_status(&self) -> Result<Value, CoreError> {
        let state = self.ceremonies.rekey();
        let state = state.as_ref().ok_or_else(no_rekey_config)?;
        Ok(verify_status_json(state))
    }

    /// `DELETE sys/rekey/verify`: forget the new shares submitted so far, new verification nonce.
    pub(super) fn rekey_verify_restart(&self) -> Result<Value, CoreError> {
        let mut state = self.ceremonies.rekey();
        let state = state.as_mut().ok_or_else(no_rekey_config)?;
        if let Some(verification) = state.verification.as_mut() {
            verification.progress.reset();
            verification.nonce = random_id();
        }
        Ok(verify_status_json(state))
    }

    /// `PUT sys/rekey/verify {key, nonce}`: one new share; at the new threshold the rekey commits.
    pub(super) async fn rekey_verify(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
    ) -> Result<Outcome, CoreError> {
        let key = key_field(&request.data)?;
        let nonce = nonce_field(&request.data);
        let commit = {
            let mut guard = self.ceremonies.rekey();
            let Some(state) = guard.as_mut() else {
                return Err(CoreError::InvalidRequest("no rekey in progress".into()));
            };
            let Some(verification) = state.verification.as_mut() else {
                return Err(CoreError::InvalidRequest(
                    "no rekey verification in progress".into(),
                ));
            };
            if nonce != verification.nonce {
                return Err(CoreError::InvalidRequest(format!(
                    "incorrect nonce supplied; nonce for this verify operation is {:?}",
                    verification.nonce
                )));
            }
            let Some(proven) = verification.progress.submit(&verification.config, key)? else {
                return Ok(Outcome::Reply(Some(verify_status_json(state))));
            };
            if !proven.ct_eq(&verification.key) {
                verification.nonce = random_id();
                return Err(CoreError::InvalidRequest(
                    "rekey verification failed; incorrect key shares supplied".into(),
                ));
            }
            Commit {
                response: json!({"nonce": verification.nonce, "complete": true}),
                config: verification.config.clone(),
                root_key_blob: verification.root_key_blob.clone(),
                config_revision: state.config_revision,
                root_key_revision: verification.root_key_revision,
                nonce: state.nonce.clone(),
                hsm_ops: self.hsm_rekey_op(&verification.key)?.into_iter().collect(),
                new_key: proven,
                backup: verification.backup.take(),
            }
        };
        self.commit_rekey(request, request_id, commit).await
    }

    /// Writes the new seal configuration and the re-wrapped root key (with the request's audit
    /// record) as one transaction guarded on both keys' revisions, then ends the rekey.
    async fn commit_rekey(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
        commit: Commit,
    ) -> Result<Outcome, CoreError> {
        let record = self.ceremony_record(request, request_id, Ok(Some(&commit.response)))?;
        let encoded_config = commit.config.encode();
        let unseal_key_value = self
            .barrier
            .encrypt(UNSEAL_KEY_PATH, &commit.new_key.to_barrier_value())?;
        let mut txn = Txn {
            guards: vec![
                Guard::ModRevision {
                    key: SEAL_CONFIG_PATH.to_string(),
                    revision: commit.config_revision,
                },
                Guard::ModRevision {
                    key: ROOT_KEY_PATH.to_string(),
                    revision: commit.root_key_revision,
                },
            ],
            ops: vec![
                Op::Put {
                    key: SEAL_CONFIG_PATH.to_string(),
                    value: encoded_config.clone(),
                },
                Op::Put {
                    key: ROOT_KEY_PATH.to_string(),
                    value: commit.root_key_blob,
                },
                Op::Put {
                    key: UNSEAL_KEY_PATH.to_string(),
                    value: unseal_key_value,
                },
            ],
            journal: vec![record],
        };
        txn.ops.extend(commit.hsm_ops);
        txn.ops.push(match &commit.backup {
            Some(backup) => Op::Put {
                key: REKEY_BACKUP_PATH.to_string(),
                value: self
                    .barrier
                    .encrypt(REKEY_BACKUP_PATH, backup.to_string().as_bytes())?,
            },
            None => Op::Delete {
                key: REKEY_BACKUP_PATH.to_string(),
            },
        });
        let applied = match self.node.propose(txn).await {
            Ok(proposed) => Ok(matches!(proposed.outcome, TxnOutcome::Applied { .. })),
            // The outcome is unknown (leader lost, timeout): the new shares must not be lost if
            // the write did land, so look before reporting a failure.
            Err(err) if self.committed_config_is(&encoded_config).await => {
                tracing::warn!(error = %err, "rekey proposal reported an error but committed");
                Ok(true)
            }
            Err(err) => Err(CoreError::from(err)),
        };
        // An unavailable cluster keeps the rekey (its progress was cleared): submitting the
        // shares again retries. Otherwise this rekey is over.
        if !matches!(applied, Err(CoreError::Unavailable(_))) {
            let mut state = self.ceremonies.rekey();
            if state.as_ref().is_some_and(|s| s.nonce == commit.nonce) {
                state.take();
            }
        }
        if !applied? {
            return Err(config_changed());
        }
        // The other nodes keep their old held key (root rotation reads the stored one).
        self.barrier.hold_unseal_key(commit.new_key);
        tracing::info!(
            secret_shares = commit.config.secret_shares,
            secret_threshold = commit.config.secret_threshold,
            "rekey committed: new unseal key shares in effect on every node"
        );
        Ok(Outcome::Committed(commit.response))
    }

    /// Whether the committed seal configuration is exactly `encoded` (after a read point).
    async fn committed_config_is(&self, encoded: &[u8]) -> bool {
        if self.node.read_point().await.is_err() {
            return false;
        }
        matches!(self.reader().get(SEAL_CONFIG_PATH), Ok(Some(record)) if record.value == encoded)
    }
}

fn config_changed() -> CoreError {
    CoreError::InvalidRequest(
        "the seal configuration changed since this rekey started (another rekey or root key rotation committed); the rekey was cancelled, start a new one".into(),
    )
}

fn no_rekey_config() -> CoreError {
    CoreError::InvalidRequest("no rekey configuration found".into())
}

/// A non-negative integer field (absent: 0, which the parameter check refuses with Vault's
/// message).
fn number(data: &Map<String, Value>, name: &str) -> Result<u32, CoreError> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .ok_or_else(|| {
                CoreError::InvalidRequest(format!("{name} must be a non-negative integer"))
            }),
        Some(_) => Err(CoreError::InvalidRequest(format!(
            "{name} must be a non-negative integer"
        ))),
    }
}

/// A boolean field (absent: false).
fn flag(data: &Map<String, Value>, name: &str) -> Result<bool, CoreError> {
    match data.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(CoreError::InvalidRequest(format!(
            "{name} must be a boolean"
        ))),
    }
}

/// Vault's rekey status object (`GET/PUT sys/rekey/init`, and `sys/rekey/update` before the
/// threshold).
fn status_json(state: Option<&RekeyState>, required: u8) -> Value {
    let mut status = json!({
        "nonce": state.map_or("", |s| s.nonce.as_str()),
        "started": state.is_some(),
        "t": state.map_or(0, |s| s.threshold),
        "n": state.map_or(0, |s| s.shares),
        "progress": state.map_or(0, |s| s.progress.progress()),
        "required": required,
        "pgp_fingerprints": state
            .and_then(|s| s.pgp_keys.as_deref())
            .map_or(Value::Null, |keys| json!(pgp::fingerprints(keys))),
        "backup": state.is_some_and(|s| s.backup),
        "verification_required": state.is_some_and(|s| s.require_verification),
    });
    if let Some(verification) = state.and_then(|s| s.verification.as_ref()) {
        status["verification_nonce"] = json!(verification.nonce);
    }
    status
}

/// The new shares as a completed rekey returns them: plain, or encrypted to their holders' keys.
struct NewShares {
    keys: Vec<String>,
    keys_base64: Vec<String>,
    /// The holders' key fingerprints, one per share (`None` without PGP keys).
    fingerprints: Option<Vec<String>>,
    /// Whether the (encrypted) shares are also stored for `sys/rekey/backup`.
    backup: bool,
}

impl NewShares {
    fn new(
        shares: &[Share],
        pgp_keys: Option<&[RecipientKey]>,
        backup: bool,
    ) -> Result<NewShares, CoreError> {
        Ok(match pgp_keys {
            Some(keys) => {
                let (keys_hex, keys_base64) =
                    pgp::share_fields(&pgp::encrypt_shares(keys, shares)?);
                NewShares {
                    keys: keys_hex,
                    keys_base64,
                    fingerprints: Some(pgp::fingerprints(keys)),
                    backup,
                }
            }
            // Plain shares are never stored (`backup` without PGP keys is refused at init).
            None => NewShares {
                keys: shares.iter().map(Share::to_hex).collect(),
                keys_base64: shares.iter().map(Share::to_base64).collect(),
                fingerprints: None,
                backup: false,
            },
        })
    }

    /// The record `sys/rekey/backup` returns, when these shares are to be backed up.
    fn backup_record(&self, nonce: &str) -> Option<Value> {
        let fingerprints = self.fingerprints.as_deref().filter(|_| self.backup)?;
        Some(rekey_backup::backup_record(
            nonce,
            fingerprints,
            &self.keys,
            &self.keys_base64,
        ))
    }
}

/// Vault's rekey completion object with the new shares.
fn update_json(nonce: &str, shares: &NewShares, verification_nonce: Option<&str>) -> Value {
    let mut body = json!({
        "nonce": nonce,
        "complete": true,
        "keys": shares.keys,
        "keys_base64": shares.keys_base64,
        "pgp_fingerprints": shares.fingerprints,
        "backup": shares.backup,
        "verification_required": verification_nonce.is_some(),
    });
    if let Some(nonce) = verification_nonce {
        body["verification_nonce"] = json!(nonce);
    }
    body
}

/// Vault's verification status object (`sys/rekey/verify`).
fn verify_status_json(state: &RekeyState) -> Value {
    let verification = state.verification.as_ref();
    json!({
        "nonce": verification.map_or("", |v| v.nonce.as_str()),
        "started": verification.is_some(),
        "t": state.threshold,
        "n": state.shares,
        "progress": verification.map_or(0, |v| v.progress.progress()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn fields_parse_with_clear_errors() {
        let body = data(json!({"secret_shares": 7, "secret_threshold": "4", "backup": "yes"}));
        assert_eq!(number(&body, "secret_shares").unwrap(), 7);
        assert_eq!(number(&body, "missing").unwrap(), 0);
        assert!(number(&body, "secret_threshold").is_err());
        assert!(flag(&body, "backup").is_err());
        assert!(!flag(&body, "require_verification").unwrap());
        let huge = data(json!({"secret_shares": 1u64 << 40, "negative": -1}));
        assert_eq!(number(&huge, "secret_shares").unwrap(), u32::MAX);
        assert!(number(&huge, "negative").is_err());
    }

    #[test]
    fn status_shapes_match_vault() {
        let idle = status_json(None, 3);
        assert_eq!(
            idle,
            json!({"nonce": "", "started": false, "t": 0, "n": 0, "progress": 0, "required": 3,
                   "pgp_fingerprints": null, "backup": false, "verification_required": false})
        );
        let state = RekeyState {
            nonce: "n-1".into(),
            shares: 7,
            threshold: 4,
            require_verification: true,
            config_revision: 1,
            progress: UnsealProgress::new(),
            pgp_keys: None,
            backup: false,
            verification: None,
        };
        let started = status_json(Some(&state), 3);
        assert_eq!(started["started"], true);
        assert_eq!(
            (started["t"].clone(), started["n"].clone()),
            (json!(4), json!(7))
        );
        assert_eq!(started["verification_required"], true);
        assert!(started.get("verification_nonce").is_none());
        assert_eq!(
            verify_status_json(&state),
            json!({"nonce": "", "started": false, "t": 4, "n": 7, "progress": 0})
        );
    }

    #[test]
    fn completion_carries_both_encodings() {
        let (_, shares, _) = seal::generate(3, 2).unwrap();
        let fields = NewShares::new(&shares, None, false).unwrap();
        let body = update_json("n-1", &fields, Some("v-1"));
        assert_eq!(body["keys"][1], json!(shares[1].to_hex()));
        assert_eq!(body["keys_base64"][2], json!(shares[2].to_base64()));
        assert_eq!(body["verification_nonce"], "v-1");
        assert_eq!(body["complete"], true);
        assert_eq!(body["pgp_fingerprints"], Value::Null);
        assert_eq!(body["backup"], false);
        assert!(
            fields.backup_record("n-1").is_none(),
            "plain shares are never stored"
        );
        assert!(
            update_json("n-1", &fields, None)
                .get("verification_nonce")
                .is_none()
        );
    }

    #[test]
    fn pgp_keys_encrypt_the_new_shares() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;

        use crate::crypto::pgp::test_keys;
        let holders: Vec<_> = (0..2).map(|_| test_keys::generate(true)).collect();
        let keys: Vec<_> = holders
            .iter()
            .map(|(_, public)| RecipientKey::parse(public).unwrap())
            .collect();
        let (_, shares, _) = seal::generate(2, 2).unwrap();
        let fields = NewShares::new(&shares, Some(&keys), true).unwrap();
        let body = update_json("n-1", &fields, None);
        assert_eq!(body["pgp_fingerprints"][1], json!(keys[1].fingerprint()));
        for (index, (secret, _)) in holders.iter().enumerate() {
            let b64 = body["keys_base64"][index].as_str().unwrap();
            let message = STANDARD.decode(b64).unwrap();
            assert_eq!(body["keys"][index], json!(hex::encode(&message)));
            assert_eq!(
                test_keys::decrypt(secret, &message),
                shares[index].to_hex().into_bytes()
            );
        }
        let state = RekeyState {
            nonce: "n-1".into(),
            shares: 2,
            threshold: 2,
            require_verification: false,
            config_revision: 1,
            progress: UnsealProgress::new(),
            pgp_keys: Some(keys.clone()),
            backup: true,
            verification: None,
        };
        assert_eq!(
            status_json(Some(&state), 3)["pgp_fingerprints"],
            json!([keys[0].fingerprint(), keys[1].fingerprint()])
        );
        assert_eq!(status_json(Some(&state), 3)["backup"], true);
        assert_eq!(body["backup"], true);
        let backup = fields.backup_record("n-1").unwrap();
        assert_eq!(backup["nonce"], "n-1");
        for (index, key) in keys.iter().enumerate() {
            assert_eq!(
                backup["keys"][key.fingerprint()],
                json!([body["keys"][index]])
            );
            assert_eq!(
                backup["keys_base64"][key.fingerprint()],
                json!([body["keys_base64"][index]])
            );
        }
    }
}
