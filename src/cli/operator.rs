//! `strongroom operator init|unseal|status|seal|rekey|generate-root`: the seal lifecycle over
//! `sys/init`, `sys/unseal`, `sys/seal-status`, `sys/leader` and `sys/seal`, with Vault-style
//! output; rekey, generate-root and `unseal --all` are in `super::ceremony`.
//! Unseal shares are read from the argument, a no-echo prompt, or one line of stdin, and are
//! never logged.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::ConnArgs;
use super::output::{Format, cell, json as pretty, kv_table};

/// Exit code of `operator status` when the vault is sealed (as Vault's CLI).
pub const EXIT_SEALED: u8 = 2;

/// The `operator` subcommands.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialize a new vault: split the unseal key into shares and create the root token.
    Init(InitArgs),
    /// Submit one unseal key share (prompted for when not given), or reset the unseal progress.
    Unseal(UnsealArgs),
    /// Show the seal status (exit code 2 when sealed).
    Status(StatusArgs),
    /// Seal the vault (needs a token with sudo, e.g. the root token).
    Seal,
    /// Replace the unseal key shares (a quorum of the current ones authorizes it).
    Rekey(super::ceremony::RekeyArgs),
    /// Create a new root token from a quorum of unseal key shares.
    GenerateRoot(super::ceremony::GenerateRootArgs),
}

/// Arguments of `operator init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of unseal key shares to create.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_shares: u8,
    /// Number of shares needed to unseal.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_threshold: u8,
    /// Encrypt each share to its holder's OpenPGP public key: comma-separated key files
    /// (armored or binary), one per share, in order. Each printed share is then the base64 of
    /// an OpenPGP message (`base64 -d | gpg -dq` gives the share to unseal with).
    #[arg(long, value_delimiter = ',', value_name = "FILES")]
    pub pgp_keys: Vec<std::path::PathBuf>,
    /// Encrypt the initial root token to this OpenPGP public key file.
    #[arg(long, value_name = "FILE")]
    pub root_token_pgp_key: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `operator unseal`.
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// The unseal key share (hex or base64). Prompted for (without echo) when omitted.
    #[arg(value_name = "KEY", conflicts_with_all = ["reset", "all"])]
    pub key: Option<String>,
    /// Discard the shares submitted so far.
    #[arg(long, conflicts_with = "all")]
    pub reset: bool,
    /// Unseal every node of the cluster: each share is asked once and sent to every sealed node.
    #[arg(long)]
    pub all: bool,
    /// With --all: read the shares from this file, one per line (`-` for stdin), instead of
    /// hidden prompts.
    #[arg(long, value_name = "FILE", requires = "all")]
    pub key_file: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `operator status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs an `operator` subcommand.
pub async fn run(conn: &ConnArgs, command: OperatorCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        OperatorCommand::Init(a) => {
            anyhow::ensure!(
                a.key_threshold <= a.key_shares,
                "--key-threshold ({}) must not exceed --key-shares ({})",
                a.key_threshold,
                a.key_shares
            );
            anyhow::ensure!(
                a.pgp_keys.is_empty() || a.pgp_keys.len() == usize::from(a.key_shares),
                "--pgp-keys names {} keys for {} shares: give one key per share",
                a.pgp_keys.len(),
                a.key_shares
            );
            let mut body =
                json!({"secret_shares": a.key_shares, "secret_threshold": a.key_threshold});
            if !a.pgp_keys.is_empty() {
                body["pgp_keys"] = json!(super::ceremony::read_pgp_keys(&a.pgp_keys)?);
            }
            if let Some(path) = &a.root_token_pgp_key {
                let key = super::ceremony::read_pgp_keys(std::slice::from_ref(path))?;
                body["root_token_pgp_key"] = json!(key[0]);
            }
            let resp = client
                .put("sys/init", &body)
                .await
                .context("Error initializing")?
                .context("Error initializing: empty response")?;
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", render_init(&resp, a.key_shares, a.key_threshold)),
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Unseal(a) if a.all => {
            super::ceremony::unseal_all(&client, a.key_file.as_deref()).await
        }
        OperatorCommand::Rekey(a) => super::ceremony::rekey(&client, a).await,
        OperatorCommand::GenerateRoot(a) => super::ceremony::generate_root(&client, a).await,
        OperatorCommand::Unseal(a) => {
            let body = if a.reset {
                json!({"reset": true})
            } else {
                let key = match a.key {
                    Some(k) => k,
                    None => read_key()?,
                };
                json!({"key": key})
            };
            let status = client
                .put("sys/unseal", &body)
                .await
                .context("Error unsealing")?
                .context("Error unsealing: empty response")?;
            match a.format {
                Format::Json => print!("{}", pretty(&status)),
                Format::Table => print!("{}", render_status(&status, None)),
            }
            Ok(ExitCode::SUCCESS)
        }
        OperatorCommand::Status(a) => {
            let status = client
                .get("sys/seal-status")
                .await
                .context("Error checking seal status")?
                .context("Error checking seal status: empty response")?;
            match a.format {
                Format::Json => print!("{}", pretty(&status)),
                Format::Table => {
                    // Best effort, as Vault: the HA lines are left out when sys/leader fails.
                    let leader = client.get("sys/leader").await.ok().flatten();
                    print!("{}", render_status(&status, leader.as_ref()));
                }
            }
            let sealed = status
                .get("sealed")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            Ok(if sealed {
                ExitCode::from(EXIT_SEALED)
            } else {
                ExitCode::SUCCESS
            })
        }
        OperatorCommand::Seal => {
            client
                .put("sys/seal", &json!({}))
                .await
                .context("Error sealing")?;
            println!("Success! Vault is sealed.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads one unseal share: a hidden prompt on a terminal, otherwise one line of stdin.
fn read_key() -> anyhow::Result<String> {
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Unseal Key (will be hidden): ")
            .context("cannot read the unseal key")?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the unseal key from stdin")?;
        line
    };
    let key = key.trim().to_string();
    anyhow::ensure!(!key.is_empty(), "no unseal key given");
    Ok(key)
}

/// The `operator init` table: the shares, the root token, and Vault's reminder.
pub fn render_init(resp: &Value, shares: u8, threshold: u8) -> String {
    let mut out = String::new();
    let keys = resp
        .get("keys_base64")
        .or_else(|| resp.get("keys"))
        .and_then(Value::as_array);
    for (i, k) in keys.into_iter().flatten().enumerate() {
        out.push_str(&format!("Unseal Key {}: {}\n", i + 1, cell(k)));
    }
    let root = resp.get("root_token").map(cell).unwrap_or_default();
    out.push_str(&format!("\nInitial Root Token: {root}\n\n"));
    out.push_str(&format!(
        "Vault initialized with {shares} key shares and a key threshold of {threshold}. Please \
         securely\ndistribute the key shares printed above. When the Vault is re-sealed,\n\
         restarted, or stopped, you must supply at least {threshold} of these keys to unseal \
         it\nbefore it can start servicing requests.\n"
    ));
    out
}

/// A field as a table cell, or `None` when absent, `null` or an empty string.
fn present(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        other => Some(cell(other)),
    }
}

/// The `operator status` / `operator unseal` table from a seal-status object and, when known,
/// the `sys/leader` response.
pub fn render_status(status: &Value, leader: Option<&Value>) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            rows.push((k.to_string(), v));
        }
    };
    let sealed = status
        .get("sealed")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    add("Seal Type", present(status, "type"));
    add("Initialized", present(status, "initialized"));
    add("Sealed", present(status, "sealed"));
    add("Total Shares", present(status, "n"));
    add("Threshold", present(status, "t"));
    if sealed {
        let t = present(status, "t").unwrap_or_else(|| "?".into());
        add(
            "Unseal Progress",
            present(status, "progress").map(|p| format!("{p}/{t}")),
        );
        add("Unseal Nonce", present(status, "nonce"));
    }
    add("Version", present(status, "version"));
    add("Build Date", present(status, "build_date"));
    add("Storage Type", present(status, "storage_type"));
    add("Cluster Name", present(status, "cluster_name"));
    add("Cluster ID", present(status, "cluster_id"));
    if let Some(l) = leader {
        let ha = l
            .get("ha_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        add("HA Enabled", Some(ha.to_string()));
        if ha && !sealed {
            add(
                "HA Cluster",
                Some(present(l, "leader_cluster_address").unwrap_or_else(|| "n/a".into())),
            );
            let is_self = l.get("is_self").and_then(Value::as_bool).unwrap_or(false);
            add(
                "HA Mode",
                Some(if is_self { "active" } else { "standby" }.into()),
            );
            if is_self {
                add(
                    "Active Since",
                    present(l, "active_time").filter(|t| !t.starts_with("0001-01-01")),
                );
            } else {
                add("Active Node Address", present(l, "leader_address"));
            }
            add("Raft Committed Index", present(l, "raft_committed_index"));
            add("Raft Applied Index", present(l, "raft_applied_index"));
        }
    }
    kv_table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<OperatorCommand, clap::Error> {
        let cli = Cli::try_parse_from(
            ["strongroom", "operator"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Operator { command, .. } => Ok(command),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_init_with_defaults_and_flags() {
        match parse(&["init"]).expect("parse") {
            OperatorCommand::Init(a) => {
                assert_eq!(
                    (a.key_shares, a.key_threshold, a.format),
                    (5, 3, Format::Table)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&[
            "init",
            "--key-shares",
            "1",
            "--key-threshold",
            "1",
            "--format",
            "json",
        ])
        .expect("parse")
        {
            OperatorCommand::Init(a) => {
                assert_eq!(
                    (a.key_shares, a.key_threshold, a.format),
                    (1, 1, Format::Json)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["init", "--key-shares", "0"]).is_err());
        assert!(parse(&["init", "--key-shares", "256"]).is_err());
        assert!(parse(&["init", "--format", "yaml"]).is_err());
        match parse(&[
            "init",
            "--pgp-keys",
            "a.asc,b.gpg",
            "--root-token-pgp-key",
            "r.asc",
        ])
        .expect("parse")
        {
            OperatorCommand::Init(a) => {
                assert_eq!(a.pgp_keys, ["a.asc", "b.gpg"].map(std::path::PathBuf::from));
                assert_eq!(
                    a.root_token_pgp_key,
                    Some(std::path::PathBuf::from("r.asc"))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_unseal_status_seal() {
        match parse(&["unseal", "abcd"]).expect("parse") {
            OperatorCommand::Unseal(a) => {
                assert_eq!(a.key.as_deref(), Some("abcd"));
                assert!(!a.reset);
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["unseal", "--reset"]).expect("parse") {
            OperatorCommand::Unseal(a) => assert!(a.reset && a.key.is_none()),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["unseal", "abcd", "--reset"]).is_err());
        match parse(&["unseal", "--all", "--key-file", "shares.txt"]).expect("parse") {
            OperatorCommand::Unseal(a) => {
                assert!(a.all && a.key.is_none());
                assert_eq!(a.key_file.as_deref(), Some("shares.txt"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            parse(&["unseal", "--key-file", "f"]).is_err(),
            "--key-file needs --all"
        );
        assert!(parse(&["unseal", "--all", "abcd"]).is_err());
        assert!(matches!(parse(&["status"]), Ok(OperatorCommand::Status(_))));
        assert!(matches!(parse(&["seal"]), Ok(OperatorCommand::Seal)));
    }

    #[test]
    fn parses_rekey_and_generate_root() {
        match parse(&["rekey", "--init", "-n", "7", "-t", "4", "--verify"]).expect("parse") {
            OperatorCommand::Rekey(a) => {
                assert!(a.init && a.verify && a.key.is_none());
                assert_eq!((a.key_shares, a.key_threshold), (7, 4));
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["rekey", "--nonce", "n-1", "abcd"]).expect("parse") {
            OperatorCommand::Rekey(a) => {
                assert_eq!(
                    (a.nonce.as_deref(), a.key.as_deref()),
                    (Some("n-1"), Some("abcd"))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["rekey", "--init", "--cancel"]).is_err());
        assert!(parse(&["rekey", "--init", "abcd"]).is_err());
        match parse(&["generate-root", "--decode", "WEdB", "--otp", "0123"]).expect("parse") {
            OperatorCommand::GenerateRoot(a) => {
                assert_eq!(
                    (a.decode.as_deref(), a.otp.as_deref()),
                    (Some("WEdB"), Some("0123"))
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            parse(&["generate-root", "--decode", "WEdB"]).is_err(),
            "--decode needs --otp"
        );
        assert!(matches!(
            parse(&["generate-root", "--init"]),
            Ok(OperatorCommand::GenerateRoot(a)) if a.init && a.otp.is_none()
        ));
    }

    #[test]
    fn renders_sealed_status_with_progress() {
        let status = json!({"type":"shamir","initialized":true,"sealed":true,"t":3,"n":5,
            "progress":1,"nonce":"abc-123","version":"0.1.0","storage_type":"raft"});
        let out = render_status(&status, Some(&json!({"ha_enabled":true})));
        assert_eq!(
            out,
            "Key                Value\n\
             ---                -----\n\
             Seal Type          shamir\n\
             Initialized        true\n\
             Sealed             true\n\
             Total Shares       5\n\
             Threshold          3\n\
             Unseal Progress    1/3\n\
             Unseal Nonce       abc-123\n\
             Version            0.1.0\n\
             Storage Type       raft\n\
             HA Enabled         true\n"
        );
    }

    #[test]
    fn renders_unsealed_status_with_ha() {
        let status = json!({"type":"shamir","initialized":true,"sealed":false,"t":3,"n":5,
            "progress":0,"nonce":"","version":"0.1.0","cluster_name":"strongroom",
            "cluster_id":"c-1"});
        let standby = json!({"ha_enabled":true,"is_self":false,
            "leader_address":"http://127.0.0.1:8200","leader_cluster_address":"127.0.0.1:8201",
            "raft_committed_index":7,"raft_applied_index":7});
        let out = render_status(&status, Some(&standby));
        assert!(!out.contains("Unseal Progress"), "{out}");
        assert_eq!(row(&out, "Cluster ID"), Some("c-1"));
        assert_eq!(row(&out, "HA Cluster"), Some("127.0.0.1:8201"));
        assert_eq!(row(&out, "HA Mode"), Some("standby"));
        assert_eq!(
            row(&out, "Active Node Address"),
            Some("http://127.0.0.1:8200")
        );
        assert_eq!(row(&out, "Raft Committed Index"), Some("7"));
        let active = json!({"ha_enabled":true,"is_self":true,
            "active_time":"2026-01-01T00:00:00Z","leader_cluster_address":"127.0.0.1:8201"});
        let out = render_status(&status, Some(&active));
        assert_eq!(row(&out, "HA Mode"), Some("active"));
        assert_eq!(row(&out, "Active Since"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(row(&out, "Active Node Address"), None);
    }

    /// The value of the table row whose key is `key`.
    fn row<'a>(table: &'a str, key: &str) -> Option<&'a str> {
        table.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?;
            rest.starts_with("    ").then(|| rest.trim())
        })
    }

    #[test]
    fn renders_init_output() {
        let resp = json!({"keys":["aa","bb"],"keys_base64":["qg==","uw=="],"root_token":"s.root"});
        let out = render_init(&resp, 2, 2);
        assert!(
            out.starts_with(
                "Unseal Key 1: qg==\nUnseal Key 2: uw==\n\nInitial Root Token: s.root\n"
            )
        );
        assert!(out.contains("2 key shares and a key threshold of 2"));
    }
}
