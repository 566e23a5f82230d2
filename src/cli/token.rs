//! `strongroom token create|lookup|renew|revoke` over `auth/token/*`, with Vault-style output:
//! the `auth` block of a create or renew as a `token`, `token_accessor`, `token_duration`, ...
//! table, a lookup's `data` as a sorted table, or the raw JSON with `--format json`. `--field`
//! prints one value (e.g. `token create --field token`).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::ConnArgs;
use super::output::{Format, cell, json as pretty, kv_table};

/// The `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token (a child of the current token unless --orphan).
    Create(CreateArgs),
    /// Show a token's properties (the current token when none is given).
    Lookup(LookupArgs),
    /// Extend a token's lease (the current token when none is given).
    Renew(RenewArgs),
    /// Revoke a token and its children.
    Revoke(RevokeArgs),
}

/// Arguments of `token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A policy for the token; repeat or separate with commas.
    #[arg(long = "policy", value_name = "NAME", value_delimiter = ',')]
    pub policies: Vec<String>,
    /// Initial TTL (e.g. `30m`, `24h`, or seconds).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// A hard lifetime cap the token can never be renewed past.
    #[arg(long, value_name = "DURATION")]
    pub explicit_max_ttl: Option<String>,
    /// Make a periodic token renewable forever by this period.
    #[arg(long, value_name = "DURATION")]
    pub period: Option<String>,
    /// Number of requests the token may make (0: unlimited).
    #[arg(long, value_name = "N")]
    pub use_limit: Option<u64>,
    /// Create a token with no parent (it outlives the current token).
    #[arg(long)]
    pub orphan: bool,
    /// Whether the token may be renewed.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub renewable: bool,
    /// Leave out the `default` policy.
    #[arg(long)]
    pub no_default_policy: bool,
    /// A name shown in audit logs and lookups.
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// Metadata `key=value`; repeatable.
    #[arg(long = "metadata", value_name = "K=V")]
    pub metadata: Vec<String>,
    /// Create the token from this token role.
    #[arg(long, value_name = "NAME")]
    pub role: Option<String>,
    /// Print only this field (e.g. `token`, `token_accessor`).
    #[arg(long, value_name = "F")]
    pub field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `token lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The token (or, with --accessor, its accessor). The current token when omitted.
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// TOKEN is an accessor.
    #[arg(long, requires = "token")]
    pub accessor: bool,
    /// Print only this field.
    #[arg(long, value_name = "F")]
    pub field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `token renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The token (or, with --accessor, its accessor). The current token when omitted.
    #[arg(value_name = "TOKEN")]
    pub token: Option<String>,
    /// TOKEN is an accessor.
    #[arg(long, requires = "token")]
    pub accessor: bool,
    /// Requested extension (e.g. `1h`); the server caps it.
    #[arg(long, value_name = "DURATION")]
    pub increment: Option<String>,
    /// Print only this field.
    #[arg(long, value_name = "F")]
    pub field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How `token revoke` treats the token's children (Vault's `-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RevokeMode {
    /// Revoke the token and all its children.
    #[default]
    Tree,
    /// Revoke only the token; its children become orphans (needs sudo).
    Orphan,
}

/// Arguments of `token revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The token (or, with --accessor, its accessor).
    #[arg(value_name = "TOKEN", required_unless_present = "self_")]
    pub token: Option<String>,
    /// Revoke the current token.
    #[arg(long = "self", id = "self_", conflicts_with_all = ["token", "accessor"])]
    pub self_: bool,
    /// TOKEN is an accessor.
    #[arg(long)]
    pub accessor: bool,
    /// Revoke the whole tree (default) or only this token.
    #[arg(long, value_enum, default_value_t = RevokeMode::Tree)]
    pub mode: RevokeMode,
}

/// Runs a `token` subcommand.
pub async fn run(conn: &ConnArgs, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        TokenCommand::Create(a) => {
            let path = match (&a.role, a.orphan) {
                (Some(role), _) => format!("auth/token/create/{role}"),
                (None, true) => "auth/token/create-orphan".to_string(),
                (None, false) => "auth/token/create".to_string(),
            };
            let body = create_body(&a)?;
            let resp = client
                .post(&path, &body)
                .await
                .context("Error creating token")?
                .context("Error creating token: empty response")?;
            print_auth(&resp, a.format, a.field.as_deref())
        }
        TokenCommand::Lookup(a) => {
            let resp = match (&a.token, a.accessor) {
                (None, _) => client.get("auth/token/lookup-self").await,
                (Some(t), false) => client.post("auth/token/lookup", &json!({"token": t})).await,
                (Some(t), true) => {
                    client
                        .post("auth/token/lookup-accessor", &json!({"accessor": t}))
                        .await
                }
            }
            .context("Error looking up token")?
            .context("Error looking up token: empty response")?;
            if let Some(field) = &a.field {
                return print_field(&object_rows(resp.get("data")), field);
            }
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", kv_table(&object_rows(resp.get("data")))),
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Renew(a) => {
            let mut body = Map::new();
            if let Some(increment) = &a.increment {
                body.insert("increment".into(), json!(increment));
            }
            let path = match (&a.token, a.accessor) {
                (None, _) => "auth/token/renew-self",
                (Some(t), false) => {
                    body.insert("token".into(), json!(t));
                    "auth/token/renew"
                }
                (Some(t), true) => {
                    body.insert("accessor".into(), json!(t));
                    "auth/token/renew-accessor"
                }
            };
            let resp = client
                .post(path, &Value::Object(body))
                .await
                .context("Error renewing token")?
                .context("Error renewing token: empty response")?;
            print_auth(&resp, a.format, a.field.as_deref())
        }
        TokenCommand::Revoke(a) => {
            let (path, body) = revoke_request(&a)?;
            client
                .post(path, &body)
                .await
                .context("Error revoking token")?;
            println!("Success! Revoked token (if it existed)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The body of `auth/token/create`.
pub fn create_body(a: &CreateArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    let policies: Vec<&str> = a
        .policies
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    for (key, value) in [
        ("ttl", &a.ttl),
        ("explicit_max_ttl", &a.explicit_max_ttl),
        ("period", &a.period),
        ("display_name", &a.display_name),
    ] {
        if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(uses) = a.use_limit {
        body.insert("num_uses".into(), json!(uses));
    }
    if a.orphan {
        body.insert("no_parent".into(), json!(true));
    }
    if a.no_default_policy {
        body.insert("no_default_policy".into(), json!(true));
    }
    body.insert("renewable".into(), json!(a.renewable));
    if !a.metadata.is_empty() {
        let mut meta = BTreeMap::new();
        for pair in &a.metadata {
            let Some((k, v)) = pair.split_once('=') else {
                bail!("invalid metadata {pair:?}: the format is key=value");
            };
            anyhow::ensure!(!k.is_empty(), "invalid metadata {pair:?}: empty key");
            meta.insert(k.to_string(), v.to_string());
        }
        body.insert("meta".into(), json!(meta));
    }
    Ok(Value::Object(body))
}

/// The path and body of a revoke.
pub fn revoke_request(a: &RevokeArgs) -> anyhow::Result<(&'static str, Value)> {
    if a.self_ {
        return Ok(("auth/token/revoke-self", json!({})));
    }
    let Some(token) = &a.token else {
        bail!("a token (or --self) is required");
    };
    Ok(match (a.accessor, a.mode) {
        (true, RevokeMode::Tree) => ("auth/token/revoke-accessor", json!({"accessor": token})),
        (true, RevokeMode::Orphan) => bail!("--accessor cannot be used with --mode orphan"),
        (false, RevokeMode::Tree) => ("auth/token/revoke", json!({"token": token})),
        (false, RevokeMode::Orphan) => ("auth/token/revoke-orphan", json!({"token": token})),
    })
}

/// A duration in seconds as Vault's CLI shows it: `768h`, `1h30m`, `45s`; `∞` for none.
pub fn human_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "∞".to_string();
    }
    let (hours, minutes, secs) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut text = String::new();
    for (amount, unit) in [(hours, "h"), (minutes, "m"), (secs, "s")] {
        if amount > 0 {
            text.push_str(&format!("{amount}{unit}"));
        }
    }
    text
}

/// The table rows of a response's `auth` block, as Vault's CLI prints them.
pub fn auth_rows(resp: &Value) -> Vec<(String, String)> {
    let auth = resp.get("auth").unwrap_or(&Value::Null);
    let get = |k: &str| auth.get(k).map(cell).unwrap_or_default();
    let list = |k: &str| match auth.get(k) {
        Some(v @ Value::Array(_)) => v.to_string(),
        _ => "[]".to_string(),
    };
    let duration = auth
        .get("lease_duration")
        .and_then(Value::as_u64)
        .map(human_duration)
        .unwrap_or_default();
    let mut rows = vec![
        ("token".to_string(), get("client_token")),
        ("token_accessor".to_string(), get("accessor")),
        ("token_duration".to_string(), duration),
        ("token_renewable".to_string(), get("renewable")),
        ("token_policies".to_string(), list("token_policies")),
        ("identity_policies".to_string(), list("identity_policies")),
        ("policies".to_string(), list("policies")),
    ];
    let meta: BTreeMap<&String, &Value> = auth
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    for (k, v) in meta {
        rows.push((format!("token_meta_{k}"), cell(v)));
    }
    rows
}

/// Prints a response with an `auth` block: a table, the JSON, or one field.
pub fn print_auth(resp: &Value, format: Format, field: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(field) = field {
        return print_field(&auth_rows(resp), field);
    }
    match format {
        Format::Json => print!("{}", pretty(resp)),
        Format::Table => {
            for w in resp
                .get("warnings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                eprintln!("WARNING! {}", cell(w));
            }
            print!("{}", kv_table(&auth_rows(resp)))
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Table rows of a JSON object, sorted by key.
pub fn object_rows(obj: Option<&Value>) -> Vec<(String, String)> {
    let sorted: BTreeMap<&String, &Value> = obj
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    sorted
        .into_iter()
        .map(|(k, v)| (k.clone(), cell(v)))
        .collect()
}

/// Prints one row's value like Vault's `-field`: no trailing newline when piped.
pub fn print_field(rows: &[(String, String)], field: &str) -> anyhow::Result<ExitCode> {
    let Some((_, value)) = rows.iter().find(|(k, _)| k == field) else {
        bail!("Field \"{field}\" not present in secret");
    };
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        writeln!(out, "{value}")?;
    } else {
        write!(out, "{value}")?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<TokenCommand, clap::Error> {
        let cli = Cli::try_parse_from(
            ["strongroom", "token"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Token { command, .. } => Ok(command),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn create_builds_vaults_body() {
        let TokenCommand::Create(a) = parse(&[
            "create",
            "--policy",
            "a,b",
            "--policy",
            "c",
            "--ttl",
            "1h",
            "--use-limit",
            "3",
            "--metadata",
            "team=x",
            "--orphan",
            "--renewable",
            "false",
        ])
        .expect("parse") else {
            panic!("not create")
        };
        let body = create_body(&a).expect("body");
        assert_eq!(
            body,
            json!({"policies": ["a", "b", "c"], "ttl": "1h", "num_uses": 3, "no_parent": true,
                   "renewable": false, "meta": {"team": "x"}})
        );
        let TokenCommand::Create(bad) = parse(&["create", "--metadata", "novalue"]).expect("parse")
        else {
            panic!("not create")
        };
        assert!(create_body(&bad).is_err());
    }

    #[test]
    fn revoke_picks_the_endpoint() {
        let path = |args: &[&str]| match parse(args).expect("parse") {
            TokenCommand::Revoke(a) => revoke_request(&a),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            path(&["revoke", "tok"]).ok().map(|r| r.0),
            Some("auth/token/revoke")
        );
        assert_eq!(
            path(&["revoke", "--self"]).ok().map(|r| r.0),
            Some("auth/token/revoke-self")
        );
        assert_eq!(
            path(&["revoke", "--accessor", "acc"]).expect("ok"),
            ("auth/token/revoke-accessor", json!({"accessor": "acc"}))
        );
        assert_eq!(
            path(&["revoke", "t", "--mode", "orphan"]).ok().map(|r| r.0),
            Some("auth/token/revoke-orphan")
        );
        assert!(path(&["revoke", "t", "--accessor", "--mode", "orphan"]).is_err());
        assert!(parse(&["revoke"]).is_err(), "a token or --self is required");
        assert!(parse(&["revoke", "--self", "t"]).is_err());
    }

    #[test]
    fn durations_print_like_vault() {
        assert_eq!(human_duration(0), "∞");
        assert_eq!(human_duration(768 * 3600), "768h");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(600), "10m");
    }

    #[test]
    fn auth_table_matches_vault() {
        let resp = json!({"auth": {"client_token": "hvs.x", "accessor": "acc",
            "lease_duration": 3600, "renewable": true, "policies": ["default", "dev"],
            "token_policies": ["default", "dev"], "metadata": {"username": "alice"}}});
        assert_eq!(
            kv_table(&auth_rows(&resp)),
            "Key                    Value\n\
             ---                    -----\n\
             token                  hvs.x\n\
             token_accessor         acc\n\
             token_duration         1h\n\
             token_renewable        true\n\
             token_policies         [\"default\",\"dev\"]\n\
             identity_policies      []\n\
             policies               [\"default\",\"dev\"]\n\
             token_meta_username    alice\n"
        );
    }
}
