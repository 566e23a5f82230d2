//! `strongroom auth enable|list|disable` over `sys/auth`: mount an auth method (`approle`,
//! `userpass`) at a path, list the mounted methods, or remove one.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::ConnArgs;
use super::output::{Format, cell, json as pretty};

/// The `auth` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enable an auth method: `auth enable approle`, `auth enable --path people userpass`.
    Enable(EnableArgs),
    /// List the enabled auth methods.
    List(ListArgs),
    /// Disable the auth method at a path (its roles, users and credentials are deleted).
    Disable(DisableArgs),
}

/// Arguments of `auth enable`.
#[derive(Debug, Args)]
pub struct EnableArgs {
    /// The method's type (`approle`, `userpass`).
    #[arg(value_name = "TYPE")]
    pub kind: String,
    /// Where to mount it under `auth/` (default: the type's name).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// A human-friendly description.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// Arguments of `auth list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `auth disable`.
#[derive(Debug, Args)]
pub struct DisableArgs {
    /// The mount path under `auth/` (e.g. `approle`).
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// The mount path for `auth enable`: `--path` or the type, without slashes.
pub fn mount_path(kind: &str, path: Option<&str>) -> anyhow::Result<String> {
    let path = path.unwrap_or(kind).trim().trim_matches('/');
    anyhow::ensure!(!path.is_empty(), "missing auth method path");
    Ok(path.to_string())
}

/// Runs an `auth` subcommand.
pub async fn run(conn: &ConnArgs, command: AuthCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        AuthCommand::Enable(a) => {
            let kind = a.kind.trim();
            anyhow::ensure!(!kind.is_empty(), "missing auth method type");
            let path = mount_path(kind, a.path.as_deref())?;
            let mut body = json!({ "type": kind });
            if let Some(description) = &a.description {
                body["description"] = json!(description);
            }
            client
                .post(&format!("sys/auth/{path}"), &body)
                .await
                .context("Error enabling auth method")?;
            println!("Success! Enabled {kind} auth method at: {path}/");
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::List(a) => {
            let resp = client
                .get("sys/auth")
                .await
                .context("Error listing enabled authentications")?
                .unwrap_or(Value::Null);
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", render_list(&resp)),
            }
            Ok(ExitCode::SUCCESS)
        }
        AuthCommand::Disable(a) => {
            let path = a.path.trim().trim_matches('/');
            anyhow::ensure!(!path.is_empty(), "missing auth method path");
            client
                .delete(&format!("sys/auth/{path}"))
                .await
                .context("Error disabling auth method")?;
            println!("Success! Disabled the auth method (if it existed) at: {path}/");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The `auth list` table: path, type, accessor and description of each mount.
pub fn render_list(resp: &Value) -> String {
    let empty = Map::new();
    let mounts = resp
        .get("data")
        .and_then(Value::as_object)
        .unwrap_or_else(|| resp.as_object().unwrap_or(&empty));
    let sorted: BTreeMap<&String, &Value> = mounts
        .iter()
        .filter(|(path, v)| path.ends_with('/') && v.is_object())
        .collect();
    let rows: Vec<[String; 4]> = sorted
        .into_iter()
        .map(|(path, v)| {
            let get = |k: &str| v.get(k).map(cell).unwrap_or_default();
            [
                path.clone(),
                get("type"),
                get("accessor"),
                get("description"),
            ]
        })
        .collect();
    render_columns(&["Path", "Type", "Accessor", "Description"], &rows)
}

/// Aligned columns with a dashed rule under the header, as Vault's list tables.
fn render_columns(headers: &[&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = headers.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(width - cell.chars().count() + 4));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let rules = headers.map(|h| "-".repeat(h.len()));
    let mut out = line(*headers);
    out.push_str(&line([&rules[0], &rules[1], &rules[2], &rules[3]]));
    for row in rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<AuthCommand, clap::Error> {
        let cli = Cli::try_parse_from(
            ["strongroom", "auth"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Auth { command, .. } => Ok(command),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn enable_defaults_the_path_to_the_type() {
        match parse(&["enable", "approle"]).expect("parse") {
            AuthCommand::Enable(a) => {
                assert_eq!(
                    mount_path(&a.kind, a.path.as_deref()).expect("path"),
                    "approle"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["enable", "--path", "/people/", "userpass"]).expect("parse") {
            AuthCommand::Enable(a) => {
                assert_eq!(
                    mount_path(&a.kind, a.path.as_deref()).expect("path"),
                    "people"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["enable"]).is_err());
        assert!(mount_path("x", Some("/")).is_err());
    }

    #[test]
    fn list_table_is_sorted_and_aligned() {
        let resp = json!({"data": {
            "userpass/": {"type": "userpass", "accessor": "auth_userpass_1", "description": ""},
            "approle/": {"type": "approle", "accessor": "auth_approle_2", "description": "machines"},
            "token/": {"type": "token", "accessor": "auth_token_3", "description": "token based credentials"}
        }});
        assert_eq!(
            render_list(&resp),
            "Path         Type        Accessor           Description\n\
             ----         ----        --------           -----------\n\
             approle/     approle     auth_approle_2     machines\n\
             token/       token       auth_token_3       token based credentials\n\
             userpass/    userpass    auth_userpass_1\n"
        );
    }
}
