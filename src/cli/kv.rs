//! `strongroom kv put|get|list|delete` against a KV version 2 engine: splits `MOUNT/PATH`,
//! builds the secret from `key=value` arguments with Vault's rules (`@file`, `-` for stdin,
//! repeated keys become lists), and prints Vault-style tables or the raw JSON response.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::ConnArgs;
use super::client::ClientError;
use super::output::{Format, cell, heading, json as pretty, kv_table};

/// Exit code when there is no secret at the path (as Vault's CLI).
pub const EXIT_NOT_FOUND: u8 = 2;

/// The `kv` subcommands.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Write a new version of a secret: `kv put secret/app user=admin pass=@pass.txt`.
    Put(PutArgs),
    /// Read a secret (the latest version unless --version is given).
    Get(GetArgs),
    /// List the keys under a path (folders end in `/`).
    List(ListArgs),
    /// Soft-delete the latest version of a secret.
    Delete(DeleteArgs),
}

/// Where a secret lives: the engine's mount and the path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvPath {
    /// The engine's mount, without slashes (e.g. `secret`).
    pub mount: String,
    /// The path inside the mount, without leading or trailing slashes (may be empty).
    pub path: String,
}

impl KvPath {
    /// `MOUNT/data/PATH`, the API path of the secret's data.
    pub fn data(&self) -> String {
        format!("{}/data/{}", self.mount, self.path)
    }

    /// `MOUNT/metadata/PATH/`, the API path listed by `kv list` (with Vault's trailing slash).
    pub fn metadata_dir(&self) -> String {
        if self.path.is_empty() {
            format!("{}/metadata/", self.mount)
        } else {
            format!("{}/metadata/{}/", self.mount, self.path)
        }
    }

    /// Fails when the path inside the mount is empty (needed by put, get and delete).
    fn require_secret(self) -> anyhow::Result<KvPath> {
        anyhow::ensure!(
            !self.path.is_empty(),
            "missing secret path: expected MOUNT/PATH (e.g. secret/app) or --mount MOUNT PATH"
        );
        Ok(self)
    }
}

/// Splits a command-line path: with `--mount` the whole argument is the path in that mount;
/// without it, the first segment is the mount (`secret/app/db` -> `secret`, `app/db`).
pub fn split_path(mount: Option<&str>, path: &str) -> anyhow::Result<KvPath> {
    let path = path.trim_matches('/');
    let (mount, rest) = match mount {
        Some(m) => (m.trim_matches('/'), path),
        None => path.split_once('/').unwrap_or((path, "")),
    };
    anyhow::ensure!(
        !mount.is_empty(),
        "missing mount: expected MOUNT/PATH (e.g. secret/app)"
    );
    Ok(KvPath {
        mount: mount.to_string(),
        path: rest.trim_matches('/').to_string(),
    })
}

/// Options shared by the kv commands.
#[derive(Debug, Args)]
pub struct Target {
    /// The KV v2 mount. Without it, the first segment of PATH is the mount.
    #[arg(long, value_name = "MOUNT")]
    pub mount: Option<String>,
    /// The secret's path, e.g. `secret/app` (or `app` with --mount secret).
    #[arg(value_name = "PATH")]
    pub path: String,
}

/// Arguments of `kv put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Mount and path.
    #[command(flatten)]
    pub target: Target,
    /// Data as `key=value`; `key=@file` reads a file, `key=-` reads stdin; a lone `-` or
    /// `@file.json` merges a JSON object.
    #[arg(value_name = "K=V", required = true)]
    pub data: Vec<String>,
    /// Check-and-set: write only if the current version is N (0: only if the secret is new).
    #[arg(long, value_name = "N")]
    pub cas: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `kv get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Mount and path.
    #[command(flatten)]
    pub target: Target,
    /// Read this version instead of the latest.
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
    /// Print only this field's value.
    #[arg(long, value_name = "F")]
    pub field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `kv list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Mount and path.
    #[command(flatten)]
    pub target: Target,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `kv delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Mount and path.
    #[command(flatten)]
    pub target: Target,
}

/// Runs a `kv` subcommand.
pub async fn run(conn: &ConnArgs, command: KvCommand) -> anyhow::Result<ExitCode> {
    let client = conn.client()?;
    match command {
        KvCommand::Put(a) => {
            let p = split_path(a.target.mount.as_deref(), &a.target.path)?.require_secret()?;
            let data = parse_kv_args(&a.data, &mut std::io::stdin().lock())?;
            let mut body = json!({ "data": data });
            if let Some(cas) = a.cas {
                body["options"] = json!({ "cas": cas });
            }
            let resp = client
                .post(&p.data(), &body)
                .await
                .with_context(|| format!("Error writing data to {}", p.data()))?;
            match (a.format, resp) {
                (Format::Json, Some(r)) => print!("{}", pretty(&r)),
                (Format::Table, Some(r)) => print!("{}", render_put(&p.data(), &r)),
                (_, None) => println!("Success! Data written to: {}", p.data()),
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Get(a) => {
            let p = split_path(a.target.mount.as_deref(), &a.target.path)?.require_secret()?;
            let query: Vec<(&str, String)> = a
                .version
                .map(|v| ("version", v.to_string()))
                .into_iter()
                .collect();
            let resp = match client.get_with_query(&p.data(), &query).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(ClientError::Api { status: 404, .. }) => {
                    eprintln!("No value found at {}", p.data());
                    return Ok(ExitCode::from(EXIT_NOT_FOUND));
                }
                Err(e) => return Err(e).with_context(|| format!("Error reading {}", p.data())),
            };
            if let Some(field) = &a.field {
                let value = field_value(&resp, field)?;
                let mut out = std::io::stdout().lock();
                // Like Vault: no trailing newline when piped, so `$(...)` gets the exact value.
                if out.is_terminal() {
                    writeln!(out, "{value}")?;
                } else {
                    write!(out, "{value}")?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", render_get(&p.data(), &resp)),
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::List(a) => {
            let p = split_path(a.target.mount.as_deref(), &a.target.path)?;
            let dir = p.metadata_dir();
            let resp = match client.list(&dir).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(ClientError::Api { status: 404, .. }) => {
                    eprintln!("No value found at {dir}");
                    return Ok(ExitCode::from(EXIT_NOT_FOUND));
                }
                Err(e) => return Err(e).with_context(|| format!("Error listing {dir}")),
            };
            match a.format {
                Format::Json => print!("{}", pretty(&resp)),
                Format::Table => print!("{}", render_list(&resp)),
            }
            Ok(ExitCode::SUCCESS)
        }
        KvCommand::Delete(a) => {
            let p = split_path(a.target.mount.as_deref(), &a.target.path)?.require_secret()?;
            client
                .delete(&p.data())
                .await
                .with_context(|| format!("Error deleting {}", p.data()))?;
            println!("Success! Data deleted (if it existed) at: {}", p.data());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Builds the secret's data from `key=value` arguments with the rules of Vault's CLI:
/// `key=@file` takes the file's contents, `key=\@x` the literal `@x`, `key=-` all of stdin; a
/// lone `-` or `@file` merges a JSON object (keys already given win); a repeated key collects
/// its values into a list. Only the first `=` separates key and value.
pub fn parse_kv_args(args: &[String], stdin: &mut dyn Read) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut stdin_used = false;
    let mut take_stdin = |used: &mut bool| -> anyhow::Result<String> {
        anyhow::ensure!(!*used, "stdin (-) can only be read once");
        *used = true;
        let mut s = String::new();
        stdin.read_to_string(&mut s).context("cannot read stdin")?;
        Ok(s)
    };
    for raw in args {
        if raw.is_empty() {
            continue;
        }
        let Some((key, value)) = raw.split_once('=') else {
            let text = if raw == "-" {
                take_stdin(&mut stdin_used)?
            } else if let Some(file) = raw.strip_prefix('@') {
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
            } else {
                bail!("invalid data {raw:?}: the format is key=value");
            };
            let obj: Map<String, Value> = serde_json::from_str(&text)
                .with_context(|| format!("{raw}: expected a JSON object"))?;
            for (k, v) in obj {
                out.entry(k).or_insert(v);
            }
            continue;
        };
        anyhow::ensure!(!key.is_empty(), "invalid data {raw:?}: empty key");
        let value = if let Some(file) = value.strip_prefix('@') {
            std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
        } else if let Some(literal) = value.strip_prefix("\\@") {
            format!("@{literal}")
        } else if value == "-" {
            take_stdin(&mut stdin_used)?
        } else {
            value.to_string()
        };
        match out.get_mut(key) {
            Some(Value::Array(list)) => list.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None => {
                out.insert(key.to_string(), Value::String(value));
            }
        }
    }
    Ok(out)
}

/// The value of `--field` from a `GET .../data/...` response, as printed: strings bare, other
/// values as JSON.
pub fn field_value(resp: &Value, field: &str) -> anyhow::Result<String> {
    match resp.pointer("/data/data").and_then(|d| d.get(field)) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => bail!("Field \"{field}\" not present in secret"),
    }
}

/// Table rows of a JSON object, sorted by key; `deletion_time: ""` shows as `n/a` (as Vault).
fn object_rows(obj: Option<&Value>) -> Vec<(String, String)> {
    let sorted: BTreeMap<&String, &Value> = obj
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    sorted
        .into_iter()
        .map(|(k, v)| {
            let shown = match (k.as_str(), v) {
                ("deletion_time", Value::String(s)) if s.is_empty() => "n/a".to_string(),
                _ => cell(v),
            };
            (k.clone(), shown)
        })
        .collect()
}

/// The `kv put` table: the secret's path and the new version's metadata.
pub fn render_put(data_path: &str, resp: &Value) -> String {
    format!(
        "{}{data_path}\n\n{}{}",
        heading("Secret Path"),
        heading("Metadata"),
        kv_table(&object_rows(resp.get("data")))
    )
}

/// The `kv get` table: the path, the version's metadata, then the data.
pub fn render_get(data_path: &str, resp: &Value) -> String {
    let mut out = format!(
        "{}{data_path}\n\n{}{}",
        heading("Secret Path"),
        heading("Metadata"),
        kv_table(&object_rows(resp.pointer("/data/metadata")))
    );
    match resp.pointer("/data/data") {
        Some(d @ Value::Object(_)) => {
            out.push('\n');
            out.push_str(&heading("Data"));
            out.push_str(&kv_table(&object_rows(Some(d))));
        }
        _ => out.push_str("\n(no data: this version is deleted or destroyed)\n"),
    }
    out
}

/// The `kv list` table: a `Keys` column.
pub fn render_list(resp: &Value) -> String {
    let mut out = String::from("Keys\n----\n");
    for k in resp
        .pointer("/data/keys")
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

    fn parse(args: &[&str]) -> Result<KvCommand, clap::Error> {
        let cli =
            Cli::try_parse_from(["strongroom", "kv"].into_iter().chain(args.iter().copied()))?;
        match cli.command {
            Command::Kv { command, .. } => Ok(command),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn splits_mount_and_path() {
        let p = split_path(None, "secret/app/db").expect("split");
        assert_eq!((p.mount.as_str(), p.path.as_str()), ("secret", "app/db"));
        assert_eq!(p.data(), "secret/data/app/db");
        assert_eq!(p.metadata_dir(), "secret/metadata/app/db/");
        let p = split_path(None, "/secret/app/").expect("split");
        assert_eq!((p.mount.as_str(), p.path.as_str()), ("secret", "app"));
        let p = split_path(None, "secret").expect("split");
        assert_eq!(p.path, "");
        assert_eq!(p.metadata_dir(), "secret/metadata/");
        assert!(p.require_secret().is_err());
        let p = split_path(Some("kv/"), "team/app").expect("split");
        assert_eq!((p.mount.as_str(), p.path.as_str()), ("kv", "team/app"));
        assert!(split_path(None, "/").is_err());
        assert!(split_path(Some(""), "app").is_err());
    }

    #[test]
    fn key_value_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pass.txt");
        std::fs::write(&file, "s3cr=t\n").expect("write");
        let args = strings(&[
            "user=admin",
            "url=postgres://h/db?sslmode=require&x=y",
            &format!("pass=@{}", file.display()),
            "lit=\\@home",
            "empty=",
            "tag=a",
            "tag=b",
            "tag=c",
            "note=-",
        ]);
        let data = parse_kv_args(&args, &mut "from stdin".as_bytes()).expect("parse");
        assert_eq!(
            Value::Object(data),
            json!({"user":"admin","url":"postgres://h/db?sslmode=require&x=y","pass":"s3cr=t\n",
                   "lit":"@home","empty":"","tag":["a","b","c"],"note":"from stdin"})
        );
    }

    #[test]
    fn whole_json_from_stdin_or_file_merges() {
        let data = parse_kv_args(
            &strings(&["a=1", "-"]),
            &mut r#"{"a":"x","b":2}"#.as_bytes(),
        )
        .expect("parse");
        assert_eq!(Value::Object(data), json!({"a":"1","b":2}));
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("d.json");
        std::fs::write(&file, r#"{"k":"v"}"#).expect("write");
        let data =
            parse_kv_args(&[format!("@{}", file.display())], &mut std::io::empty()).expect("parse");
        assert_eq!(Value::Object(data), json!({"k":"v"}));
    }

    #[test]
    fn key_value_errors() {
        let mut none = std::io::empty();
        assert!(parse_kv_args(&strings(&["novalue"]), &mut none).is_err());
        assert!(parse_kv_args(&strings(&["=v"]), &mut none).is_err());
        assert!(parse_kv_args(&strings(&["a=-", "b=-"]), &mut none).is_err());
        assert!(parse_kv_args(&strings(&["a=@/nonexistent/file"]), &mut none).is_err());
        assert!(parse_kv_args(&strings(&["-"]), &mut "[1]".as_bytes()).is_err());
    }

    #[test]
    fn parses_commands() {
        match parse(&["put", "secret/app", "a=b", "c=d=e", "--cas", "0"]).expect("parse") {
            KvCommand::Put(a) => {
                assert_eq!(a.target.path, "secret/app");
                assert_eq!(a.data, strings(&["a=b", "c=d=e"]));
                assert_eq!(a.cas, Some(0));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["put", "secret/app"]).is_err(), "put needs data");
        match parse(&[
            "get",
            "--mount",
            "secret",
            "--version",
            "2",
            "--field",
            "pw",
            "app",
        ])
        .expect("parse")
        {
            KvCommand::Get(a) => {
                assert_eq!(a.target.mount.as_deref(), Some("secret"));
                assert_eq!((a.version, a.field.as_deref()), (Some(2), Some("pw")));
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["list", "secret/", "--format", "json"]).expect("parse") {
            KvCommand::List(a) => assert_eq!(a.format, Format::Json),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse(&["delete", "secret/app"]),
            Ok(KvCommand::Delete(_))
        ));
        assert!(parse(&["delete", "secret/app", "--format", "json"]).is_err());
    }

    fn sample_get() -> Value {
        json!({"request_id":"r","data":{"data":{"user":"admin","n":3},
            "metadata":{"created_time":"2026-01-01T00:00:00Z","custom_metadata":null,
                        "deletion_time":"","destroyed":false,"version":2}}})
    }

    #[test]
    fn renders_get() {
        assert_eq!(
            render_get("secret/data/app", &sample_get()),
            "== Secret Path ==\nsecret/data/app\n\n\
             == Metadata ==\n\
             Key                Value\n\
             ---                -----\n\
             created_time       2026-01-01T00:00:00Z\n\
             custom_metadata    <nil>\n\
             deletion_time      n/a\n\
             destroyed          false\n\
             version            2\n\n\
             == Data ==\n\
             Key     Value\n\
             ---     -----\n\
             n       3\n\
             user    admin\n"
        );
    }

    #[test]
    fn renders_field_put_and_list() {
        assert_eq!(field_value(&sample_get(), "user").expect("field"), "admin");
        assert_eq!(field_value(&sample_get(), "n").expect("field"), "3");
        assert!(field_value(&sample_get(), "missing").is_err());
        let put =
            json!({"data":{"created_time":"t","deletion_time":"","destroyed":false,"version":1}});
        let out = render_put("secret/data/app", &put);
        assert!(out.starts_with("== Secret Path ==\nsecret/data/app\n\n== Metadata ==\n"));
        assert!(out.contains("version          1\n"), "{out}");
        let list = json!({"data":{"keys":["app","team/"]}});
        assert_eq!(render_list(&list), "Keys\n----\napp\nteam/\n");
    }
}
