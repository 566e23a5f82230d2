//! Exporting every node's audit journal after the run: `GET sys/audit/log` page by page with
//! stale consistency (the node's own applied journal), plus `GET sys/audit/verify`. The raw
//! records are written to `audit/n<id>.jsonl` (the leak scan reads them too); the checker's
//! summary of each journal is returned.

use std::fs::File;
use std::io::BufRead;
use std::io::BufReader;
use std::io::BufWriter;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::Cluster;
use crate::checker::audit::EXPORT_PHASE;
use crate::checker::audit::Journal;
use crate::checker::audit::Record;

/// Records requested per page.
const PAGE: u64 = 200;
/// Attempts per export request.
const ATTEMPTS: u32 = 5;
/// Deadline of one export request (a page is decrypted on the node; debug builds are slow).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(60);

impl Cluster {
    /// Exports node `id`'s journal up to `target` into `dir/n<id>.jsonl`. The first export
    /// sets `target` to that node's head: later records are the export's own (each holds the
    /// HMACs of a whole page), and fetching them would snowball.
    pub async fn export_audit(&self, id: u64, dir: &Path, target: &mut Option<u64>) -> Journal {
        let mut journal = Journal {
            node: id,
            ..Journal::default()
        };
        if let Err(err) = self.export_into(id, dir, target, &mut journal).await {
            journal.error = Some(format!("{err:#}"));
        }
        journal
    }

    async fn export_into(
        &self,
        id: u64,
        dir: &Path,
        target: &mut Option<u64>,
        journal: &mut Journal,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut out = BufWriter::new(File::create(dir.join(format!("n{id}.jsonl")))?);
        let target = match *target {
            Some(target) => target,
            None => {
                let first = self.export_call(id, "sys/audit/log?from=1&limit=1").await?;
                let head = first["head"]["seq"].as_u64().unwrap_or(0);
                *target = Some(head);
                head
            }
        };
        let mut from = 1u64;
        while from <= target {
            let limit = PAGE.min(target - from + 1);
            let data = self
                .export_call(id, &format!("sys/audit/log?from={from}&limit={limit}"))
                .await?;
            let records = data["records"].as_array().cloned().unwrap_or_default();
            for raw in &records {
                writeln!(out, "{}", serde_json::to_string(raw)?)?;
                journal.records.push(Record::from_api(raw));
            }
            match records.last().and_then(|r| r["seq"].as_u64()) {
                Some(last) => from = last + 1,
                None => break,
            }
        }
        out.flush()?;
        let verify = self.export_call(id, "sys/audit/verify").await?;
        journal.verify_valid = verify["valid"].as_bool();
        Ok(())
    }

    /// One export request, retried while the node answers 5xx or not at all; returns `data`.
    async fn export_call(&self, id: u64, path: &str) -> anyhow::Result<Value> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let result = self
                .control_with(
                    id,
                    "GET",
                    path,
                    None,
                    EXPORT_PHASE,
                    true,
                    Some(EXPORT_TIMEOUT),
                )
                .await;
            match result {
                Ok(reply) if reply.status == 200 => return Ok(reply.body["data"].clone()),
                Ok(reply) if reply.status < 500 => {
                    anyhow::bail!("{path} answered {}: {:?}", reply.status, reply.error_text())
                }
                Ok(reply) => {
                    last = format!("{path} answered {}: {:?}", reply.status, reply.error_text())
                }
                Err(err) => last = format!("{path}: {err}"),
            }
        }
        anyhow::bail!("{last} (after {ATTEMPTS} attempts)")
    }
}

/// Reads the journals stored under `dir` (for `check DIR`), with the stored verify results.
pub fn load_journals(dir: &Path, meta: &[Journal]) -> anyhow::Result<Vec<Journal>> {
    let mut journals = Vec::new();
    for stored in meta {
        let mut journal = Journal {
            records: Vec::new(),
            ..stored.clone()
        };
        let path = dir.join(format!("n{}.jsonl", stored.node));
        if path.exists() {
            for line in BufReader::new(File::open(&path)?).lines() {
                let value: Value = serde_json::from_str(&line?)?;
                journal.records.push(Record::from_api(&value));
            }
        }
        journals.push(journal);
    }
    Ok(journals)
}
