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

use serde_json::Value;

use super::Cluster;
use crate::checker::audit::EXPORT_PHASE;
use crate::checker::audit::Journal;
use crate::checker::audit::Record;

/// Records requested per page.
const PAGE: u64 = 1000;

impl Cluster {
    /// Exports node `id`'s journal into `dir/n<id>.jsonl`.
    pub async fn export_audit(&self, id: u64, dir: &Path) -> Journal {
        let mut journal = Journal {
            node: id,
            ..Journal::default()
        };
        if let Err(err) = self.export_into(id, dir, &mut journal).await {
            journal.error = Some(format!("{err:#}"));
        }
        journal
    }

    async fn export_into(&self, id: u64, dir: &Path, journal: &mut Journal) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut out = BufWriter::new(File::create(dir.join(format!("n{id}.jsonl")))?);
        let mut from = 1u64;
        let mut target: Option<u64> = None;
        loop {
            let path = format!("sys/audit/log?from={from}&limit={PAGE}");
            let reply = self
                .control(id, "GET", &path, None, EXPORT_PHASE, true)
                .await?;
            if reply.status != 200 {
                anyhow::bail!(
                    "sys/audit/log answered {}: {:?}",
                    reply.status,
                    reply.error_text()
                );
            }
            let data = &reply.body["data"];
            let head = data["head"]["seq"].as_u64().unwrap_or(0);
            let target = *target.get_or_insert(head);
            let records = data["records"].as_array().cloned().unwrap_or_default();
            for raw in &records {
                writeln!(out, "{}", serde_json::to_string(raw)?)?;
                journal.records.push(Record::from_api(raw));
            }
            let last = records.last().and_then(|r| r["seq"].as_u64()).unwrap_or(0);
            if records.is_empty() || last >= target {
                break;
            }
            from = last + 1;
        }
        out.flush()?;
        let reply = self
            .control(id, "GET", "sys/audit/verify", None, EXPORT_PHASE, true)
            .await?;
        journal.verify_valid = reply.body["data"]["valid"].as_bool();
        Ok(())
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
