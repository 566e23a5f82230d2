//! The `sys/` paths served through the authenticated, audited pipeline: `sys/mounts` (read),
//! `sys/seal`, and the audit journal: `sys/audit/log` (records with their sequence numbers and
//! chain hashes, decrypted, filtered) and `sys/audit/verify` (recomputes the hash chain end to
//! end); `sys/audit` (the sinks configured in the server file, in Vault's shape; enabling or
//! disabling one through the API is refused) and `sys/audit-hash/<path>` (the audit HMAC of an
//! input, to search records for a known value). Also the journal source the audit sinks follow.
//!
//! With journal retention (`[audit] retention`), the oldest records may have been pruned: the log
//! starts after the prune point, and verify recomputes the chain from the prune point's stored
//! hash and reports the prune point (`pruned_through_seq`, `prune_hash`).
//!
//! The journal read is this node's applied journal (after the request's read point, unless the
//! client asked for `stale`): comparing nodes means asking each of them.

use serde_json::Value;
use serde_json::json;
use strongroom_raft::JournalEntry;
use strongroom_raft::JournalHead;
use strongroom_raft::state_machine::chain_hash;
use tokio::sync::watch;

use super::Core;
use super::CoreError;
use super::JOURNAL_AAD;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::audit::filter::RecordFilter;
use crate::audit::sink;
use crate::audit::sink::JournalSource;
use crate::audit::sink::SinkRecord;
use crate::audit::sink::SourceError;
use crate::auth::token;
use crate::auth::token::TokenEntry;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;
use crate::policy::Acl;

/// Records returned by one `sys/audit/log` call at most.
const MAX_LOG_PAGE: usize = 1000;
/// Records read at a time while verifying.
const VERIFY_PAGE: usize = 1024;
/// Walks of the chain one verify makes at most when a prune runs concurrently.
const VERIFY_ATTEMPTS: u32 = 3;
/// Records examined by one filtered `sys/audit/log` call at most (the reply's `next` resumes).
const MAX_LOG_SCAN: usize = 10_000;
/// Why `PUT`/`DELETE sys/audit/<path>` is refused (OpenBao's lesson: CVE-2025-6000).
const AUDIT_BY_API_REFUSED: &str = "audit sinks are configured in the server config file ([[audit.sink]]) and cannot be enabled or disabled through the API";

/// `sys/capabilities*`: the capabilities an ACL grants on each of `paths` (or `path`), in Vault's
/// shape (each path as a key, plus `capabilities` for a single path; copied to the top level).
fn capabilities(request: &ClientRequest, acl: &Acl) -> Result<Response, CoreError> {
    let paths: Vec<String> = match request
        .data
        .get("paths")
        .or_else(|| request.data.get("path"))
    {
        Some(Value::String(path)) => path.split(',').map(|p| p.trim().to_string()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| CoreError::InvalidRequest("paths must be strings".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(CoreError::InvalidRequest("missing paths".into())),
    };
    let mut data = serde_json::Map::new();
    for path in &paths {
        let path = path.trim_start_matches('/');
        let names = if acl.is_root() {
            vec!["root"]
        } else {
            acl.capabilities(path).names()
        };
        let names = if names.is_empty() {
            vec!["deny"]
        } else {
            names
        };
        data.insert(path.to_string(), json!(names));
        if paths.len() == 1 {
            data.insert("capabilities".into(), json!(names));
        }
    }
    let mut response = Response::with_data(data);
    response.data_at_top_level = true;
    Ok(response)
}

impl Core {
    /// Serves a `sys/` path (the caller has authenticated and authorized the request).
    pub(super) fn system(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
        acl: &Acl,
        caller: &TokenEntry,
        presented: &str,
    ) -> Result<Response, CoreError> {
        if let Some(result) = self.mounts_api(request, txn) {
            return result;
        }
        if let Some(result) = self.policies_api(request, txn) {
            return result;
        }
        if let Some(result) = self.rotate_api(request, txn) {
            return result;
        }
        if let Some(result) = self.raft_api(request, txn) {
            return result;
        }
        if let Some(result) = self.rekey_backup_api(request, txn) {
            return result;
        }
        match (request.path.as_str(), request.operation) {
            ("sys/capabilities-self", Operation::Update | Operation::Create) => {
                capabilities(request, acl)
            }
            ("sys/capabilities", Operation::Update | Operation::Create) => {
                let target = match request.data.get("token") {
                    Some(Value::String(token)) => token.clone(),
                    _ => return Err(CoreError::InvalidRequest("missing token".into())),
                };
                let acl = if target == presented {
                    acl.clone()
                } else {
                    let hash = hex::encode(self.barrier.mac("token", target.as_bytes())?);
                    let entry =
                        token::lookup(&mut txn.view(token::VIEW_PREFIX), &hash, super::now_secs())?
                            .ok_or_else(|| CoreError::InvalidRequest("invalid token".into()))?;
                    self.acl_for(txn, &entry.policies)?
                };
                capabilities(request, &acl)
            }
            ("sys/capabilities-accessor", Operation::Update | Operation::Create) => {
                let accessor = match request.data.get("accessor") {
                    Some(Value::String(accessor)) => accessor.clone(),
                    _ => return Err(CoreError::InvalidRequest("missing accessor".into())),
                };
                let entry = token::lookup_accessor(
                    &mut txn.view(token::VIEW_PREFIX),
                    &accessor,
                    super::now_secs(),
                )?
                .ok_or_else(|| CoreError::InvalidRequest("invalid accessor".into()))?;
                let acl = if entry.id_hash == caller.id_hash {
                    acl.clone()
                } else {
                    self.acl_for(txn, &entry.policies)?
                };
                capabilities(request, &acl)
            }
            ("sys/seal", Operation::Update | Operation::Create) => Ok(Response::no_content()),
            ("sys/audit/log", Operation::Read) => self.audit_log_page(request),
            ("sys/audit/verify", Operation::Read) => self.audit_verify(),
            ("sys/audit", Operation::Read | Operation::List) => Ok(self.audit_sinks_list()),
            (path, operation) if path.starts_with("sys/audit/") && operation.is_write() => {
                Err(CoreError::InvalidRequest(AUDIT_BY_API_REFUSED.into()))
            }
            (path, Operation::Update | Operation::Create)
                if path.starts_with("sys/audit-hash/") =>
            {
                self.audit_hash(request)
            }
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
        let filter = RecordFilter::from_query(&request.query, &|bytes| self.audit_hmac(bytes))
            .map_err(|err| CoreError::InvalidRequest(err.to_string()))?;
        let reader = self.reader();
        // Read the head first: everything up to it is examined, nothing newer is skipped.
        let head = reader.journal_head()?;
        let prune_point = reader.journal_retention()?.prune_point;
        let from = from.max(prune_point.seq + 1);
        let mut records = Vec::new();
        let mut next = from;
        'scan: while records.len() < limit && next <= head.seq {
            let budget =
                MAX_LOG_SCAN.saturating_sub(usize::try_from(next - from).unwrap_or(MAX_LOG_SCAN));
            if budget == 0 {
                break;
            }
            let page = reader.journal(next, budget.min(VERIFY_PAGE))?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                if entry.seq > head.seq {
                    break 'scan;
                }
                next = entry.seq + 1;
                let value = self.journal_json(entry)?;
                if filter.matches(&value["record"]) {
                    records.push(value);
                    if records.len() >= limit {
                        break 'scan;
                    }
                }
            }
        }
        Ok(Response::from_value(json!({
            "records": records,
            "next": next,
            "head": {"seq": head.seq, "hash": hex::encode(head.hash)},
            "pruned_through": {"seq": prune_point.seq, "hash": hex::encode(prune_point.hash)},
        })))
    }

    /// `GET sys/audit`: the sinks this node's server file configures, keyed `<name>/` like
    /// Vault's devices (also copied to the top level, as Vault's legacy route does).
    fn audit_sinks_list(&self) -> Response {
        let data = self
            .audit_sinks
            .get()
            .into_iter()
            .flatten()
            .map(|sink| (format!("{}/", sink.name()), sink.describe()))
            .collect();
        let mut response = Response::with_data(data);
        response.data_at_top_level = true;
        response
    }

    /// `POST sys/audit-hash/<path> {"input": ...}`: the audit HMAC of `input`, the same value the
    /// records hold. Every sink (and the journal) shares the cluster's one audit key, so the
    /// answer does not depend on `<path>`; it must only name something.
    fn audit_hash(&self, request: &ClientRequest) -> Result<Response, CoreError> {
        if request
            .path
            .trim_start_matches("sys/audit-hash/")
            .is_empty()
        {
            return Err(CoreError::InvalidRequest(
                "missing audit device path".into(),
            ));
        }
        let Some(Value::String(input)) = request.data.get("input") else {
            return Err(CoreError::InvalidRequest(
                "input must be given as a string".into(),
            ));
        };
        let mut data = serde_json::Map::new();
        data.insert("hash".into(), json!(self.audit_hmac(input.as_bytes())));
        let mut response = Response::with_data(data);
        response.data_at_top_level = true;
        Ok(response)
    }

    /// Starts delivery to the sinks of the server file (once; later calls do nothing), reading
    /// this node's journal. Delivery pauses while the node is sealed.
    pub fn start_audit_sinks(
        self: &std::sync::Arc<Self>,
        configs: &[crate::config::SinkConfig],
        data_dir: &std::path::Path,
        stop: watch::Receiver<bool>,
    ) {
        if self.audit_sinks.get().is_some() {
            return;
        }
        let source: std::sync::Arc<dyn JournalSource> = self.clone();
        let _ = self
            .audit_sinks
            .set(sink::start(configs, data_dir, source, stop));
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
    /// kept (after the prune point, from its hash) to the head and reports the first sequence
    /// number whose stored hash (or position) is wrong. `checked` counts the records verified.
    ///
    /// A prune applied while verifying deletes records the walk has not reached yet, which would
    /// look like a gap: when the chain breaks and the prune point has moved meanwhile, the walk
    /// starts again from the new prune point (a few times at most).
    fn audit_verify(&self) -> Result<Response, CoreError> {
        let reader = self.reader();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let prune_point = reader.journal_retention()?.prune_point;
            let head = reader.journal_head()?;
            let (last, first_broken) = verify_chain(&reader, prune_point, head)?;
            if first_broken.is_some()
                && attempts < VERIFY_ATTEMPTS
                && reader.journal_retention()?.prune_point != prune_point
            {
                continue;
            }
            return Ok(Response::from_value(json!({
                "valid": first_broken.is_none(),
                "checked": last - prune_point.seq,
                "head_seq": head.seq,
                "first_broken_seq": first_broken,
                "pruned_through_seq": prune_point.seq,
                "prune_hash": hex::encode(prune_point.hash),
            })));
        }
    }
}

/// Walks the journal from `prune_point` to `head`: the last sequence number reached and the
/// first one whose position or chain hash is wrong.
fn verify_chain(
    reader: &strongroom_raft::StoreReader,
    prune_point: JournalHead,
    head: JournalHead,
) -> Result<(u64, Option<u64>), CoreError> {
    let mut hash = prune_point.hash;
    let mut expected_seq = prune_point.seq + 1;
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
    let last = expected_seq - 1;
    if first_broken.is_none() && (last != head.seq || hash != head.hash) {
        first_broken = Some(last + 1);
    }
    Ok((last, first_broken))
}

impl JournalSource for Core {
    fn records(&self, from: u64, limit: usize) -> Result<Vec<SinkRecord>, SourceError> {
        if self.is_sealed() {
            return Err(SourceError::Sealed);
        }
        let entries = self
            .reader()
            .journal(from, limit)
            .map_err(|err| SourceError::Read(err.to_string()))?;
        entries
            .iter()
            .map(|entry| {
                let plaintext =
                    self.barrier
                        .decrypt(JOURNAL_AAD, &entry.record)
                        .map_err(|err| match CoreError::from(err) {
                            CoreError::Sealed => SourceError::Sealed,
                            other => SourceError::Read(format!("record {}: {other}", entry.seq)),
                        })?;
                let record = serde_json::from_slice(&plaintext)
                    .map_err(|_| SourceError::Read(format!("record {} is not JSON", entry.seq)))?;
                Ok(SinkRecord::from_record(entry.seq, record))
            })
            .collect()
    }

    fn applied(&self) -> watch::Receiver<u64> {
        self.reader().applied_watch()
    }

    fn pruned_through(&self) -> Result<u64, SourceError> {
        self.reader()
            .journal_retention()
            .map(|retention| retention.prune_point.seq)
            .map_err(|err| SourceError::Read(err.to_string()))
    }
}
