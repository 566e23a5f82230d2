//! Re-encryption (ours): `PUT sys/rotate/rewrap` starts moving every stored value under an older
//! term to the active term; `GET sys/rotate/rewrap` reports progress, the keyring's terms and how
//! many values each term encrypts on the answering node (a full scan of its state machine).
//!
//! The work runs on the leader's background pass in batches of [`BATCH`] keys, each one Raft
//! transaction: every re-encrypted value is guarded by the mod_revision it was read at (a client
//! write in between wins and the key is left to the next pass), and the progress record
//! (`core/rewrap`, barrier-encrypted) is guarded too, so two leaders never run the same batch.
//! When the cursor reaches the end, a verification scan counts values still under older terms
//! (for example written by a node that had not installed the new keyring yet); if there are any,
//! another pass starts, until a pass finds none (or re-encrypts nothing, when only undecryptable
//! values are left: those are reported as `skipped`). The journal is never re-encrypted (see
//! [`super::rotate`]). Values are moved under the active term at the time of each batch, so a
//! rotation during a run only moves the target up.

use std::collections::BTreeMap;
use std::time::Duration;
use std::time::Instant;

use serde::Deserialize;
use serde::Serialize;
use serde_json::json;
use strongroom_raft::Guard;
use strongroom_raft::Op;
use strongroom_raft::StoreReader;
use strongroom_raft::TxnOutcome;

use super::Core;
use super::CoreError;
use super::txn::TxnBuilder;
use crate::barrier::RAW_KEYS;
use crate::barrier::value_term;
use crate::logical::LogicalError;
use crate::logical::Response;
use crate::logical::time;

/// Storage key of the re-encryption progress.
pub const REWRAP_KEY: &str = "core/rewrap";
/// Keys examined (and at most re-encrypted) per Raft transaction.
pub const BATCH: usize = 256;
/// Keys read per page while counting.
const COUNT_PAGE: usize = 1024;
/// Attempts at one batch when client writes race it.
const BATCH_ATTEMPTS: usize = 4;

/// Progress of a re-encryption run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapState {
    /// `running` or `done`.
    pub status: String,
    /// The active term when the run started or last advanced.
    pub target_term: u32,
    /// The last key examined in this pass (not shown: key names can be sensitive).
    pub cursor: Option<String>,
    /// Values re-encrypted so far.
    pub rewrapped: u64,
    /// Values re-encrypted in the current pass.
    pub pass_rewrapped: u64,
    /// Values under an older term that did not decrypt (left as they are).
    pub skipped: u64,
    /// Full passes over the keyspace so far.
    pub passes: u64,
    /// When the run started (RFC 3339).
    pub started: String,
    /// When it finished (RFC 3339).
    pub finished: Option<String>,
}

/// Counts stored barrier values by term on this node (journal records are not in the keyspace;
/// the seal's raw keys are left out).
pub fn count_terms(reader: &StoreReader) -> Result<BTreeMap<u32, u64>, CoreError> {
    let mut counts = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = reader.scan("", after.as_deref(), COUNT_PAGE)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        for (key, record) in &page {
            if RAW_KEYS.contains(&key.as_str()) {
                continue;
            }
            if let Some((term, false)) = value_term(&record.value) {
                *counts.entry(term).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

/// Whether any journal record is under `term`'s data key (written before journal keys). Reads
/// the whole journal: only for retiring a term from before journal keys.
pub fn journal_uses_data_key(reader: &StoreReader, term: u32) -> Result<bool, CoreError> {
    let mut from = 1;
    loop {
        let page = reader.journal(from, COUNT_PAGE)?;
        let Some(last) = page.last() else {
            return Ok(false);
        };
        from = last.seq + 1;
        if page
            .iter()
            .any(|entry| value_term(&entry.record) == Some((term, false)))
        {
            return Ok(true);
        }
    }
}

fn load_state(txn: &mut TxnBuilder) -> Result<Option<RewrapState>, CoreError> {
    txn.get(REWRAP_KEY)
        .map_err(LogicalError::from)?
        .map(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|err| CoreError::Internal(format!("rewrap state: {err}")))
        })
        .transpose()
}

fn store_state(txn: &mut TxnBuilder, state: &RewrapState) -> Result<(), CoreError> {
    let bytes = serde_json::to_vec(state).map_err(|err| CoreError::Internal(err.to_string()))?;
    txn.put(REWRAP_KEY, bytes);
    Ok(())
}

fn now() -> String {
    time::format_nanos(time::now_nanos())
}

/// One batch's outcome.
enum Step {
    /// More to do.
    Continue,
    /// Nothing running, finished, or another runner holds the progress record.
    Stop,
}

impl Core {
    /// `GET sys/rotate/rewrap`.
    pub(super) fn rewrap_status(&self, txn: &mut TxnBuilder) -> Result<Response, CoreError> {
        let _ = self.barrier.refresh();
        let state = load_state(txn)?;
        let counts = count_terms(&self.reader())?;
        let terms: Vec<_> = self
            .barrier
            .terms()?
            .iter()
            .map(|info| {
                json!({
                    "term": info.term,
                    "install_time": time::format_nanos(info.install_time.saturating_mul(1_000_000_000)),
                    "active": info.active,
                    "retired": info.retired,
                    "values": counts.get(&info.term).copied().unwrap_or(0),
                })
            })
            .collect();
        let values: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(term, count)| (term.to_string(), json!(count)))
            .collect();
        let mut body = match &state {
            None => json!({"status": "idle"}),
            Some(state) => json!({
                "status": state.status,
                "target_term": state.target_term,
                "rewrapped": state.rewrapped,
                "skipped": state.skipped,
                "passes": state.passes,
                "started": state.started,
                "finished": state.finished,
            }),
        };
        body["terms"] = json!(terms);
        body["values_by_term"] = json!(values);
        Ok(Response::from_value(body))
    }

    /// `PUT sys/rotate/rewrap`: starts (or restarts) a run toward the active term.
    pub(super) fn rewrap_start(&self, txn: &mut TxnBuilder) -> Result<Response, CoreError> {
        let _ = self.barrier.refresh();
        let _previous = load_state(txn)?;
        let state = RewrapState {
            status: "running".into(),
            target_term: self.barrier.key_status()?.term,
            started: now(),
            ..RewrapState::default()
        };
        store_state(txn, &state)?;
        Ok(Response::from_value(json!({
            "status": state.status,
            "target_term": state.target_term,
            "started": state.started,
        })))
    }

    /// Runs re-encryption batches for up to `budget` (leader only; the caller checks).
    pub(super) async fn rewrap_batches(&self, budget: Duration) -> Result<(), CoreError> {
        let start = Instant::now();
        while start.elapsed() < budget {
            if let Step::Stop = self.rewrap_batch().await? {
                break;
            }
        }
        Ok(())
    }

    async fn rewrap_batch(&self) -> Result<Step, CoreError> {
        let mut excluded: Vec<String> = Vec::new();
        for _ in 0..BATCH_ATTEMPTS {
            let mut txn = self.new_txn();
            let Some(mut state) = load_state(&mut txn)? else {
                return Ok(Step::Stop);
            };
            if state.status != "running" {
                return Ok(Step::Stop);
            }
            let active = self.barrier.key_status()?.term;
            state.target_term = state.target_term.max(active);
            let page = self.reader().scan("", state.cursor.as_deref(), BATCH)?;
            let mut guards = Vec::new();
            let mut guarded_keys = Vec::new();
            let mut ops = Vec::new();
            match page.last() {
                None => {
                    let stale: u64 = count_terms(&self.reader())?
                        .range(..active)
                        .map(|(_, count)| count)
                        .sum();
                    if stale == 0 || state.pass_rewrapped == 0 {
                        state.status = "done".into();
                        state.finished = Some(now());
                    }
                    state.cursor = None;
                    state.passes += 1;
                    state.pass_rewrapped = 0;
                }
                Some((last, _)) => {
                    state.cursor = Some(last.clone());
                    for (key, record) in &page {
                        if RAW_KEYS.contains(&key.as_str())
                            || key == REWRAP_KEY
                            || excluded.contains(key)
                        {
                            continue;
                        }
                        let Some((term, false)) = value_term(&record.value) else {
                            continue;
                        };
                        if term >= active {
                            continue;
                        }
                        let Ok(plaintext) = self.barrier.decrypt(key, &record.value) else {
                            state.skipped += 1;
                            continue;
                        };
                        guarded_keys.push(key.clone());
                        guards.push(Guard::ModRevision {
                            key: key.clone(),
                            revision: record.mod_revision,
                        });
                        ops.push(Op::Put {
                            value: self.barrier.encrypt(key, &plaintext)?,
                            key: key.clone(),
                        });
                    }
                    state.rewrapped += ops.len() as u64;
                    state.pass_rewrapped += ops.len() as u64;
                }
            }
            store_state(&mut txn, &state)?;
            let mut proposal = txn.into_txn(vec![self.maintenance_record("sys/rotate/rewrap")?])?;
            let first_value_guard = proposal.guards.len();
            proposal.guards.extend(guards);
            proposal.ops.extend(ops);
            match self.node.propose(proposal).await?.outcome {
                TxnOutcome::Applied { .. } => {
                    if state.status == "done" {
                        tracing::info!(rewrapped = state.rewrapped, "re-encryption finished");
                        return Ok(Step::Stop);
                    }
                    return Ok(Step::Continue);
                }
                TxnOutcome::GuardFailed { guard } => {
                    let guard = guard as usize;
                    let Some(index) = guard.checked_sub(first_value_guard) else {
                        // The progress record changed: another runner.
                        return Ok(Step::Stop);
                    };
                    // A client wrote this key since the scan: leave it to the next pass.
                    if let Some(key) = guarded_keys.get(index) {
                        excluded.push(key.clone());
                    }
                }
            }
        }
        Ok(Step::Continue)
    }
}
