//! `strongroom audit tail|verify|list` over `sys/audit/log`, `sys/audit/verify` and `sys/audit`
//! (all need a token with `sudo` on `sys/audit*`).
//!
//! - `tail [-f] [-n N] [--from SEQ] [filters]` prints records of the node's journal: one summary
//!   line each (`seq time operation status path`), or the whole record as one JSON line with
//!   `--format json`. Without `--from` it starts N records before the head (before filtering);
//!   `-f` keeps polling for new records. Filters: `--path` (prefix), `--accessor`,
//!   `--operation`, `--status` (`404` or `4xx`), `--since`/`--until` (RFC 3339).
//! - `verify` recomputes the node's hash chain and reports the first broken sequence number
//!   (exit code 2 when the chain is broken). Point `--address` at each node to check them all.
//! - `list` shows the sinks the node's server file configures.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::ConnArgs;
use super::client::Client;
use super::output::{Format, cell, json as pretty, table};

/// Records asked for per `sys/audit/log` call.
const PAGE: u64 = 1000;
/// How often `tail -f` polls once it has caught up.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the journal's records, optionally filtered; -f keeps following.
    Tail(TailArgs),
    /// Recompute the journal's hash chain and report the first broken sequence number.
    Verify(VerifyArgs),
    /// List the audit sinks configured in the node's server file.
    List(ListArgs),
}

/// Arguments of `audit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Keep polling for new records.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Start this many records before the head (ignored with --from).
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: u64,
    /// Start at this sequence number.
    #[arg(long, value_name = "SEQ")]
    pub from: Option<u64>,
    /// Only records whose path starts with this prefix.
    #[arg(long, value_name = "PREFIX")]
    pub path: Option<String>,
    /// Only requests made with the token of this accessor.
    #[arg(long, value_name = "ACCESSOR")]
    pub accessor: Option<String>,
    /// Only this operation (`read`, `update`, `delete`, `list`, ...).
    #[arg(long, value_name = "OP")]
    pub operation: Option<String>,
    /// Only this status (`403`) or class (`4xx`).
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only records at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// `table`: one summary line per record; `json`: each record as one JSON line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl TailArgs {
    fn filters(&self) -> Vec<(&'static str, String)> {
        [
            ("path", &self.path),
            ("accessor", &self.accessor),
            ("operation", &self.operation),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
        .collect()
    }
}

/// Arguments of `audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `audit list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs an `audit` subcommand.
pub async fn run(conn: &ConnArgs, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        AuditCommand::Tail(args) => tail(&client, &args).await,
        AuditCommand::Verify(args) => verify(&client, args.format).await,
        AuditCommand::List(args) => list(&client, args.format).await,
    }
}

/// One page of `sys/audit/log`: its records, where to continue, and the head.
struct Page {
    records: Vec<Value>,
    next: u64,
    head: u64,
}

async fn page(client: &Client, from: u64, filters: &[(&str, String)]) -> anyhow::Result<Page> {
    let mut query = vec![("from", from.to_string()), ("limit", PAGE.to_string())];
    query.extend(filters.iter().cloned());
    let body = client
        .get_with_query("sys/audit/log", &query)
        .await
        .context("Error reading the audit log")?
        .context("Error reading the audit log: empty response")?;
    let data = &body["data"];
    let head = data["head"]["seq"].as_u64().unwrap_or(0);
    let records = data["records"].as_array().cloned().unwrap_or_default();
    let last = records.last().and_then(|r| r["seq"].as_u64());
    let next = data["next"]
        .as_u64()
        .or(last.map(|seq| seq + 1))
        .unwrap_or(from);
    Ok(Page {
        records,
        next,
        head,
    })
}

async fn tail(client: &Client, args: &TailArgs) -> anyhow::Result<ExitCode> {
    let filters = args.filters();
    let mut next = match args.from {
        Some(from) => from.max(1),
        None => {
            let head = page(client, u64::MAX, &[]).await?.head;
            (head + 1).saturating_sub(args.lines).max(1)
        }
    };
    loop {
        let page = page(client, next, &filters).await?;
        for record in &page.records {
            println!("{}", render(record, args.format));
        }
        let progressed = page.next > next;
        next = page.next.max(next);
        if progressed && next <= page.head {
            continue;
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// A record as one output line.
fn render(entry: &Value, format: Format) -> String {
    let record = &entry["record"];
    match format {
        Format::Json => {
            let mut line = record.clone();
            if let Some(object) = line.as_object_mut() {
                object.insert("seq".into(), entry["seq"].clone());
            }
            line.to_string()
        }
        Format::Table => {
            let error = record["error"].as_str().filter(|e| !e.is_empty());
            format!(
                "{} {} {} {} {}{}",
                cell(&entry["seq"]),
                cell(&record["time"]),
                cell(&record["request"]["operation"]),
                cell(&record["response"]["status"]),
                cell(&record["request"]["path"]),
                error.map(|e| format!(" ({e})")).unwrap_or_default(),
            )
        }
    }
}

async fn verify(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let body = client
        .get("sys/audit/verify")
        .await
        .context("Error verifying the audit log")?
        .context("Error verifying the audit log: empty response")?;
    let data = &body["data"];
    let valid = data["valid"].as_bool().unwrap_or(false);
    match format {
        Format::Json => println!("{}", pretty(data)),
        Format::Table if valid => println!(
            "Audit journal of {} verified: {} records, hash chain intact{}",
            client.address(),
            cell(&data["checked"]),
            prune_note(data),
        ),
        Format::Table => println!(
            "Audit journal of {} is BROKEN at sequence number {} ({} records verified before it, head {}){}",
            client.address(),
            cell(&data["first_broken_seq"]),
            cell(&data["checked"]),
            cell(&data["head_seq"]),
            prune_note(data),
        ),
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn list(client: &Client, format: Format) -> anyhow::Result<ExitCode> {
    let body = client
        .get("sys/audit")
        .await
        .context("Error listing audit sinks")?
        .context("Error listing audit sinks: empty response")?;
    let data = body["data"].as_object().cloned().unwrap_or_default();
    if format == Format::Json {
        println!("{}", pretty(&Value::Object(data)));
        return Ok(ExitCode::SUCCESS);
    }
    if data.is_empty() {
        println!("No audit sinks are configured on this node.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<(String, String)> = data
        .iter()
        .map(|(path, sink)| {
            (
                path.clone(),
                format!(
                    "{} {} (delivered through seq {}{})",
                    cell(&sink["type"]),
                    destination(sink),
                    cell(&sink["delivered_seq"]),
                    if sink["failing"].as_bool() == Some(true) {
                        ", failing"
                    } else {
                        ""
                    }
                ),
            )
        })
        .collect();
    println!("{}", table(("Path", "Sink"), &rows));
    Ok(ExitCode::SUCCESS)
}

/// Where a listed sink writes: a file's path, or a socket's type and address.
/// `; verified from the prune point ...` when retention has pruned records, else nothing.
fn prune_note(data: &Value) -> String {
    match data["pruned_through_seq"].as_u64() {
        Some(seq) if seq > 0 => format!(
            "; records through {seq} were pruned by retention, verified from the prune point's hash {}",
            cell(&data["prune_hash"])
        ),
        _ => String::new(),
    }
}

fn destination(sink: &Value) -> String {
    let options = &sink["options"];
    match (options["socket_type"].as_str(), sink["type"].as_str()) {
        (Some(kind), _) => format!("{kind}:{}", cell(&options["address"])),
        (None, Some("syslog")) => format!(
            "facility={} tag={}",
            cell(&options["facility"]),
            cell(&options["tag"])
        ),
        (None, _) => cell(&options["file_path"]),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_summary_and_json_lines() {
        let entry = json!({"seq": 7, "record": {
            "time": "2026-01-01T00:00:00Z",
            "request": {"operation": "read", "path": "secret/data/a"},
            "response": {"status": 403},
            "error": "permission denied",
        }});
        assert_eq!(
            render(&entry, Format::Table),
            "7 2026-01-01T00:00:00Z read 403 secret/data/a (permission denied)"
        );
        let line: Value = serde_json::from_str(&render(&entry, Format::Json)).unwrap();
        assert_eq!(line["seq"], 7);
        assert_eq!(line["request"]["path"], "secret/data/a");
    }

    #[test]
    fn destinations_of_file_and_socket_sinks() {
        let file = json!({"options": {"file_path": "/var/log/a.log"}});
        assert_eq!(destination(&file), "/var/log/a.log");
        let tcp = json!({"options": {"address": "10.0.0.5:9000", "socket_type": "tcp"}});
        assert_eq!(destination(&tcp), "tcp:10.0.0.5:9000");
        let syslog = json!({"type": "syslog", "options": {"facility": "AUTH", "tag": "sr"}});
        assert_eq!(destination(&syslog), "facility=AUTH tag=sr");
    }

    #[test]
    fn the_prune_point_is_named_only_when_records_were_pruned() {
        assert_eq!(prune_note(&json!({"pruned_through_seq": 0})), "");
        let note = prune_note(&json!({"pruned_through_seq": 41, "prune_hash": "ab"}));
        assert!(note.contains("through 41") && note.contains("ab"), "{note}");
    }
}
