//! The `sys/` paths served through the authenticated, audited pipeline: `sys/mounts` (read),
//! `sys/seal`, and the audit journal: `sys/audit/log` (records with their sequence numbers and
//! chain hashes, decrypted) and `sys/audit/verify` (recomputes the hash chain end to end).
//!
//! The journal read is this node's applied journal (after the request's read point, unless the
//! client asked for `stale`): comparing nodes means asking each of them.

use serde_json::Value;
use serde_json::json;
use strongroom_raft::JournalEntry;
use strongroom_raft::state_machine::chain_hash;

use super::Core;
use super::CoreError;
use super::JOURNAL_AAD;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;

/// Records returned by one `sys/audit/log` call at most.
const MAX_LOG_PAGE: usize = 1000;
/// Records read at a time while verifying.
const VERIFY_PAGE: usize = 1024;

impl Core {
    /// Serves a `sys/` path (the caller has authenticated and authorized the request).
    pub(super) fn system(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Result<Response, CoreError> {
        if let Some(result) = self.mounts_api(request, txn) {
            return result;
        }
        match (request.path.as_str(), request.operation) {
            ("sys/seal", Operation::Update | Operation::Create) => Ok(Response::no_content()),
            ("sys/audit/log", Operation::Read) => self.audit_log_page(request),
            ("sys/audit/verify", Operation::Read) => self.audit_verify(),
            _ => Err(CoreError::Logical(LogicalError::UnsupportedPath)),
        }
    }

    /// `GET sys/audit/log?from=SEQ&limit=N`.
    fn audit_log_page(&self, request: &ClientRequest) -> Result<Response, CoreError> {
        let number = |name: &str, default: u64| -> Result<u64, CoreError> {
            match request.query.get(name) {
                None => Ok(default),
                Some(text) => text.parse().map_err(|_| {
                    CoreError::InvalidRequest(format!("{name} must be a non-negative integer"))
                }),
            }
        };
        let from = number("from", 1)?.max(1);
        let limit = usize::try_from(number("limit", 100)?)
            .unwrap_or(MAX_LOG_PAGE)
            .clamp(1, MAX_LOG_PAGE);
        let reader = self.reader();
        let entries = reader.journal(from, limit)?;
        let records = entries
            .iter()
            .map(|entry| self.journal_json(entry))
            .collect::<Result<Vec<_>, _>>()?;
        let head = reader.journal_head()?;
        Ok(Response::from_value(json!({
            "records": records,
            "head": {"seq": head.seq, "hash": hex::encode(head.hash)},
        })))
    }

    /// One journal entry as JSON, its record decrypted.
    fn journal_json(&self, entry: &JournalEntry) -> Result<Value, CoreError> {
        let plaintext = self.barrier.decrypt(JOURNAL_AAD, &entry.record)?;
        let record: Value = serde_json::from_slice(&plaintext).map_err(|err| {
            CoreError::Internal(format!("journal record {} is not JSON: {err}", entry.seq))
        })?;
        Ok(json!({
            "seq": entry.seq,
            "revision": entry.revision,
            "hash": hex::encode(entry.hash),
            "record": record,
        }))
    }

    /// `GET sys/audit/verify`: recomputes `h_n = SHA-256(h_{n-1} || record)` from the first record
    /// to the head and reports the first sequence number whose stored hash (or position) is wrong.
    fn audit_verify(&self) -> Result<Response, CoreError> {
        let reader = self.reader();
        let head = reader.journal_head()?;
        let mut hash = [0u8; 32];
        let mut expected_seq = 1;
        let mut first_broken = None;
        'pages: loop {
            let page = reader.journal(expected_seq, VERIFY_PAGE)?;
            if page.is_empty() {
                break;
            }
            for entry in page {
                hash = chain_hash(&hash, &entry.record);
                if entry.seq != expected_seq || entry.hash != hash {
                    first_broken = Some(expected_seq);
                    break 'pages;
                }
                expected_seq += 1;
            }
        }
        let checked = expected_seq - 1;
        if first_broken.is_none() && (checked != head.seq || hash != head.hash) {
            first_broken = Some(checked + 1);
        }
        Ok(Response::from_value(json!({
            "valid": first_broken.is_none(),
            "checked": checked,
            "head_seq": head.seq,
            "first_broken_seq": first_broken,
        })))
    }
}
