//! `strongroom login`: authenticate and store the token in `~/.vault-token`, as Vault's CLI.
//!
//! - `login [TOKEN]` (method `token`, the default): checks the token with `lookup-self`; prompts
//!   for it (without echo) when absent; `-` reads it from stdin.
//! - `login -method=userpass username=alice [password=..]`: `auth/<path>/login/<username>`;
//!   prompts for the password (without echo) when absent.
//! - `login -method=approle role_id=.. [secret_id=..]`: `auth/<path>/login`; prompts for the
//!   secret ID when absent and stdin is a terminal.
//!
//! `-path` overrides the mount (default: the method's name), `-no-store` skips the token file,
//! `-token-only` prints only the token, `-field` one field, `-format=json` the raw response.
//! Credentials are sent in the request body only: never printed, logged or stored.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::ConnArgs;
use super::client::Client;
use super::output::{Format, json as pretty};
use super::token::{print_auth, print_field};

/// Arguments of `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Where the server is (a token flag is ignored: login makes a new one).
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The auth method: `token`, `userpass` or `approle`.
    #[arg(long, default_value = "token", value_name = "METHOD")]
    pub method: String,
    /// The method's mount path under `auth/` (default: the method's name).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Do not store the token in `~/.vault-token`.
    #[arg(long)]
    pub no_store: bool,
    /// Print only the token.
    #[arg(long)]
    pub token_only: bool,
    /// Print only this field of the result (e.g. `token`).
    #[arg(long, value_name = "F")]
    pub field: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The token (method `token`), or the method's `key=value` credentials.
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Splits `key=value` arguments (the first `=` separates); values are kept in zeroizing buffers.
pub fn parse_pairs(args: &[String]) -> anyhow::Result<BTreeMap<String, Zeroizing<String>>> {
    let mut out = BTreeMap::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            // Do not echo the argument: it may be a credential.
            bail!("invalid argument: expected key=value");
        };
        anyhow::ensure!(!key.is_empty(), "invalid argument: empty key");
        out.insert(key.to_string(), Zeroizing::new(value.to_string()));
    }
    Ok(out)
}

/// What a login sends: the API path and the JSON body (which holds the credentials).
pub struct LoginRequest {
    /// `auth/<path>/login[/<username>]`.
    pub path: String,
    /// The credentials.
    pub body: Value,
}

/// Builds the login request of `method` from its `key=value` pairs; `prompt` supplies a missing
/// secret (given its label), or fails when there is no terminal.
pub fn build_request(
    method: &str,
    mount: Option<&str>,
    mut pairs: BTreeMap<String, Zeroizing<String>>,
    prompt: &mut dyn FnMut(&str) -> anyhow::Result<Zeroizing<String>>,
) -> anyhow::Result<LoginRequest> {
    let mount = mount.unwrap_or(method).trim().trim_matches('/').to_string();
    anyhow::ensure!(!mount.is_empty(), "missing auth method path");
    let mut body = Map::new();
    let path = match method {
        "userpass" => {
            let username = pairs
                .remove("username")
                .filter(|u| !u.is_empty())
                .context("missing username: pass username=NAME")?;
            anyhow::ensure!(
                !username.contains('/'),
                "invalid username: it must not contain '/'"
            );
            let password = match pairs.remove("password") {
                Some(p) => p,
                None => prompt("Password (will be hidden): ")?,
            };
            body.insert("password".into(), json!(password.as_str()));
            format!("auth/{mount}/login/{}", username.as_str())
        }
        "approle" => {
            let role_id = pairs
                .remove("role_id")
                .filter(|r| !r.is_empty())
                .context("missing role_id: pass role_id=ID")?;
            let secret_id = match pairs.remove("secret_id") {
                Some(s) => s,
                None => prompt("Secret ID (will be hidden): ")?,
            };
            body.insert("role_id".into(), json!(role_id.as_str()));
            if !secret_id.is_empty() {
                body.insert("secret_id".into(), json!(secret_id.as_str()));
            }
            format!("auth/{mount}/login")
        }
        other => bail!("unknown auth method {other:?}: use token, userpass or approle"),
    };
    if let Some(extra) = pairs.keys().next() {
        bail!("unknown argument {extra:?} for method {method}");
    }
    Ok(LoginRequest {
        path,
        body: Value::Object(body),
    })
}

/// A secret from a no-echo prompt on a terminal; fails without one.
fn prompt_hidden(label: &str) -> anyhow::Result<Zeroizing<String>> {
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "{} not given and stdin is not a terminal",
        label.split(" (").next().unwrap_or(label)
    );
    let value = rpassword::prompt_password(label).context("cannot read from the terminal")?;
    Ok(Zeroizing::new(value))
}

/// Runs `login`.
pub async fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let address = args.conn.resolved_address();
    let method = args.method.trim().to_ascii_lowercase();
    let resp = if method == "token" {
        let token = token_argument(&args.args)?;
        let client = Client::new(&address, Some(token.to_string()))?;
        let lookup = client
            .get("auth/token/lookup-self")
            .await
            .context("Error authenticating")?
            .context("Error authenticating: empty response")?;
        lookup_as_auth(&lookup, &token)
    } else {
        let pairs = parse_pairs(&args.args)?;
        let request = build_request(&method, args.path.as_deref(), pairs, &mut prompt_hidden)?;
        let client = Client::new(&address, None)?;
        client
            .post(&request.path, &request.body)
            .await
            .context("Error authenticating")?
            .context("Error authenticating: empty response")?
    };
    let token = resp
        .pointer("/auth/client_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .context("Error authenticating: the response has no token")?
        .to_string();
    let token = Zeroizing::new(token);
    if !args.no_store {
        let file = token_file()?;
        store_token(&file, &token)?;
        for var in ["STRONGROOM_TOKEN", "VAULT_TOKEN"] {
            if std::env::var(var).is_ok_and(|v| !v.is_empty()) {
                eprintln!(
                    "WARNING! The {var} environment variable is set! It takes precedence over \
                     the token stored in {}: unset it to use the new token.",
                    file.display()
                );
            }
        }
    }
    if args.token_only {
        return print_field(&[("token".to_string(), token.to_string())], "token");
    }
    if args.field.is_some() || args.format == Format::Json {
        if args.format == Format::Json && args.field.is_none() {
            print!("{}", pretty(&resp));
            return Ok(ExitCode::SUCCESS);
        }
        return print_auth(&resp, args.format, args.field.as_deref());
    }
    if args.no_store {
        println!(
            "Success! You are now authenticated. The token was not stored in the token file:\n\
             pass it with --token or STRONGROOM_TOKEN to use it.\n"
        );
    } else {
        println!(
            "Success! You are now authenticated. The token information displayed below\n\
             is already stored in ~/.vault-token. You do NOT need to run \"strongroom login\"\n\
             again. Future requests will automatically use this token.\n"
        );
    }
    print_auth(&resp, Format::Table, None)
}

/// The token given to `login` (method `token`): the argument, `-` for one line of stdin, or a
/// no-echo prompt.
fn token_argument(args: &[String]) -> anyhow::Result<Zeroizing<String>> {
    let token = match args {
        [] => prompt_hidden("Token (will be hidden): ")?,
        [one] if one == "-" => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the token from stdin")?;
            Zeroizing::new(line.trim().to_string())
        }
        [one] => Zeroizing::new(one.trim().to_string()),
        _ => bail!("too many arguments: login with a token takes at most one"),
    };
    anyhow::ensure!(!token.is_empty(), "no token given");
    Ok(token)
}

/// A `lookup-self` response in the shape of a login's `auth` block.
pub fn lookup_as_auth(lookup: &Value, token: &str) -> Value {
    let data = lookup.get("data").unwrap_or(&Value::Null);
    let policies = data.get("policies").cloned().unwrap_or_else(|| json!([]));
    json!({
        "auth": {
            "client_token": token,
            "accessor": data.get("accessor").cloned().unwrap_or(Value::Null),
            "lease_duration": data.get("ttl").cloned().unwrap_or(json!(0)),
            "renewable": data.get("renewable").cloned().unwrap_or(json!(false)),
            "policies": policies,
            "token_policies": policies,
            "identity_policies": data.get("identity_policies").cloned().unwrap_or(json!([])),
            "metadata": data.get("meta").cloned().unwrap_or(Value::Null),
        }
    })
}

/// `~/.vault-token`.
fn token_file() -> anyhow::Result<PathBuf> {
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| !h.is_empty())
        .context("cannot store the token: HOME is not set (use --no-store)")?;
    Ok(Path::new(&home).join(".vault-token"))
}

/// Writes the token to `file`, readable only by its owner (mode 0600), replacing what was there.
pub fn store_token(file: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot write the token to {}", file.display()))?;
    // An existing file keeps its old mode on open: tighten it.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", file.display()))?;
    out.write_all(token.as_bytes())
        .with_context(|| format!("cannot write the token to {}", file.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn no_prompt(label: &str) -> anyhow::Result<Zeroizing<String>> {
        panic!("unexpected prompt {label}")
    }

    #[test]
    fn parses_vault_style_flags() {
        let args = crate::cli::vault_style_args(strings(&[
            "strongroom",
            "login",
            "-method=userpass",
            "-path=people",
            "username=alice",
        ]));
        let cli = Cli::try_parse_from(args).expect("parse");
        match cli.command {
            Command::Login(a) => {
                assert_eq!(a.method, "userpass");
                assert_eq!(a.path.as_deref(), Some("people"));
                assert_eq!(a.args, strings(&["username=alice"]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn userpass_request_with_and_without_a_password() {
        let pairs = parse_pairs(&strings(&["username=alice", "password=p=w"])).expect("pairs");
        let request = build_request("userpass", None, pairs, &mut no_prompt).expect("request");
        assert_eq!(request.path, "auth/userpass/login/alice");
        assert_eq!(request.body, json!({"password": "p=w"}));

        let pairs = parse_pairs(&strings(&["username=bob"])).expect("pairs");
        let mut asked = Vec::new();
        let mut prompt = |label: &str| {
            asked.push(label.to_string());
            Ok(Zeroizing::new("typed".to_string()))
        };
        let request =
            build_request("userpass", Some("/people/"), pairs, &mut prompt).expect("request");
        assert_eq!(request.path, "auth/people/login/bob");
        assert_eq!(request.body, json!({"password": "typed"}));
        assert_eq!(asked, ["Password (will be hidden): "]);
    }

    #[test]
    fn approle_request() {
        let pairs = parse_pairs(&strings(&["role_id=r", "secret_id=s"])).expect("pairs");
        let request = build_request("approle", None, pairs, &mut no_prompt).expect("request");
        assert_eq!(request.path, "auth/approle/login");
        assert_eq!(request.body, json!({"role_id": "r", "secret_id": "s"}));
    }

    #[test]
    fn bad_login_arguments() {
        let build = |method: &str, args: &[&str]| {
            let pairs = parse_pairs(&strings(args))?;
            build_request(method, None, pairs, &mut no_prompt)
        };
        assert!(
            build("userpass", &["password=x"]).is_err(),
            "username required"
        );
        assert!(build("userpass", &["username=a/b", "password=x"]).is_err());
        assert!(
            build("approle", &["secret_id=x"]).is_err(),
            "role_id required"
        );
        assert!(build("approle", &["role_id=r", "secret_id=s", "extra=1"]).is_err());
        assert!(build("ldap", &["username=a"]).is_err());
        let err = parse_pairs(&strings(&["hunter2"])).expect_err("error");
        assert!(
            !err.to_string().contains("hunter2"),
            "credentials are not echoed"
        );
    }

    #[test]
    fn lookup_self_becomes_an_auth_block() {
        let lookup = json!({"data": {"accessor": "acc", "ttl": 60, "renewable": true,
            "policies": ["root"], "meta": null}});
        let auth = lookup_as_auth(&lookup, "hvs.t");
        assert_eq!(auth["auth"]["client_token"], "hvs.t");
        assert_eq!(auth["auth"]["lease_duration"], 60);
        assert_eq!(auth["auth"]["token_policies"], json!(["root"]));
    }

    #[test]
    fn stored_token_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(".vault-token");
        std::fs::write(&file, "old-and-longer").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        store_token(&file, "hvs.new").expect("store");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "hvs.new");
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
