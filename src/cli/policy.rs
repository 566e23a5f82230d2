//! `strongroom policy write|read|list|delete` over `sys/policies/acl/*`. `write NAME FILE` uploads
//! a policy's HCL or JSON from a file, or from stdin with `-`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::ConnArgs;
use super::client::ClientError;
use super::kv::EXIT_NOT_FOUND;
use super::output::{Format, cell, json as pretty};

/// The `policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Upload a policy: `policy write NAME FILE` (`-` reads stdin).
    Write(WriteArgs),
    /// Print a policy's rules.
    Read(ReadArgs),
    /// List the policies.
    List(ListArgs),
    /// Delete a policy.
    Delete(DeleteArgs),
}

/// Arguments of `policy write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The policy's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// File with the policy's HCL or JSON; `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: String,
}

/// Arguments of `policy read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// The policy's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `policy list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `policy delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The policy's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// The API path of a policy.
pub fn policy_path(name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    anyhow::ensure!(!name.is_empty(), "missing policy name");
    Ok(format!("sys/policies/acl/{name}"))
}

/// Reads the policy text from `file` (`-`: `stdin`).
pub fn read_policy(file: &str, stdin: &mut dyn Read) -> anyhow::Result<String> {
    let text = if file == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .context("cannot read the policy from stdin")?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    anyhow::ensure!(!text.trim().is_empty(), "the policy is empty");
    Ok(text)
}

/// Runs a `policy` subcommand.
pub async fn run(conn: &ConnArgs, command: PolicyCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        PolicyCommand::Write(a) => {
            let path = policy_path(&a.name)?;
            let text = read_policy(&a.file, &mut std::io::stdin().lock())?;
            client
                .put(&path, &json!({ "policy": text }))
                .await
                .context("Error uploading policy")?;
            println!("Success! Uploaded policy: {}", a.name.trim());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Read(a) => {
            let path = policy_path(&a.name)?;
            let resp = match client.get(&path).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(ClientError::Api { status: 404, .. }) => {
                    eprintln!("No policy named: {}", a.name.trim());
                    return Ok(ExitCode::from(EXIT_NOT_FOUND));
                }
                Err(e) => return Err(e).context("Error reading policy"),
            };
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => {
                    let rules = resp
                        .pointer("/data/policy")
                        .or_else(|| resp.pointer("/data/rules"))
                        .map(cell)
                        .unwrap_or_default();
                    println!("{}", rules.trim_end());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::List(a) => {
            let resp = match client.list("sys/policies/acl").await {
                Ok(Some(r)) => r,
                Ok(None) | Err(ClientError::Api { status: 404, .. }) => {
                    json!({"data": {"keys": []}})
                }
                Err(e) => return Err(e).context("Error listing policies"),
            };
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", render_names(&resp)),
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Delete(a) => {
            let path = policy_path(&a.name)?;
            client
                .delete(&path)
                .await
                .context("Error deleting policy")?;
            println!("Success! Deleted policy: {}", a.name.trim());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Policy names one per line, as Vault's `policy list`.
pub fn render_names(resp: &Value) -> String {
    let mut out = String::new();
    for k in resp
        .pointer("/data/keys")
        .or_else(|| resp.get("keys"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&cell(k));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<PolicyCommand, clap::Error> {
        let cli = Cli::try_parse_from(
            ["strongroom", "policy"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Policy { command, .. } => Ok(command),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_commands_and_paths() {
        assert!(matches!(
            parse(&["write", "dev", "dev.hcl"]),
            Ok(PolicyCommand::Write(_))
        ));
        assert!(parse(&["write", "dev"]).is_err(), "write needs a file");
        assert!(matches!(
            parse(&["read", "dev"]),
            Ok(PolicyCommand::Read(_))
        ));
        assert!(matches!(
            parse(&["list", "--format", "json"]),
            Ok(PolicyCommand::List(_))
        ));
        assert!(matches!(
            parse(&["delete", "dev"]),
            Ok(PolicyCommand::Delete(_))
        ));
        assert_eq!(policy_path("dev").expect("path"), "sys/policies/acl/dev");
        assert!(policy_path(" ").is_err());
    }

    #[test]
    fn reads_policy_text_from_stdin_or_file() {
        let hcl = "path \"secret/*\" { capabilities = [\"read\"] }\n";
        assert_eq!(read_policy("-", &mut hcl.as_bytes()).expect("stdin"), hcl);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("p.hcl");
        std::fs::write(&file, hcl).expect("write");
        let path = file.display().to_string();
        assert_eq!(
            read_policy(&path, &mut std::io::empty()).expect("file"),
            hcl
        );
        assert!(read_policy("-", &mut "  \n".as_bytes()).is_err());
        assert!(read_policy("/nonexistent/p.hcl", &mut std::io::empty()).is_err());
    }

    #[test]
    fn lists_names() {
        let resp = json!({"data": {"keys": ["default", "dev"]}});
        assert_eq!(render_names(&resp), "default\ndev\n");
    }
}
