//! The `strongroom` command line: the clap command tree, logging setup, the tokio runtime, and
//! dispatch to the command groups (`server`, `dev`, `operator`, `kv`, `token`, `policy`, `login`,
//! `auth`, `audit`). Also resolves the server address and token for client commands (flag, then
//! `STRONGROOM_*`, then `VAULT_*`, then defaults), and accepts Vault's single-dash long flags
//! (`-method=userpass`, `-format=json`) as well as `--method`.
//!
//! Exit codes follow Vault's CLI: 0 success, 1 error (including usage errors), 2 "sealed" for
//! `operator status` and "no value found" for `kv get`/`kv list`.

pub mod audit;
pub mod auth;
pub mod ceremony;
pub mod client;
pub mod dev;
mod dev_layout;
mod dev_procs;
pub mod kv;
pub mod login;
pub mod operator;
pub mod output;
pub mod policy;
pub mod token;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::config::ServerConfig;
use client::Client;

/// Address used when neither `--address`, `STRONGROOM_ADDR` nor `VAULT_ADDR` is set.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:8200";

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "strongroom",
    version,
    about = "A distributed, replicated secrets vault with a Vault-compatible API"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one server node from a TOML config file.
    Server(ServerArgs),
    /// Start a real local cluster (initialized and unsealed) for trying Strongroom out.
    Dev(dev::DevArgs),
    /// Initialize, unseal, seal, and inspect the vault.
    Operator {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The operator command.
        #[command(subcommand)]
        command: operator::OperatorCommand,
    },
    /// Read and write secrets in a KV version 2 engine.
    Kv {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The kv command.
        #[command(subcommand)]
        command: kv::KvCommand,
    },
    /// Create, look up, renew and revoke tokens.
    Token {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The token command.
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Write, read, list and delete ACL policies.
    Policy {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The policy command.
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Log in with a token, userpass or approle, and store the token in ~/.vault-token.
    Login(login::LoginArgs),
    /// Enable, list and disable auth methods.
    Auth {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The auth command.
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    /// Read and verify the audit journal, list audit sinks.
    Audit {
        /// Where the server is and which token to use.
        #[command(flatten)]
        conn: ConnArgs,
        /// The audit command.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// Arguments of `strongroom server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Path to the node's TOML config file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// TESTING ONLY (builds with the `jepsen-unsafe` feature): answer reads from local state
    /// without a read index, so the fault-injection harness can prove it catches stale reads.
    #[cfg(feature = "jepsen-unsafe")]
    #[arg(long)]
    pub unsafe_local_reads: bool,
    /// TESTING ONLY (builds with the `jepsen-unsafe` feature): never fsync the Raft log or the
    /// state machine, so the harness can prove it catches lost acknowledged writes.
    #[cfg(feature = "jepsen-unsafe")]
    #[arg(long)]
    pub unsafe_no_fsync: bool,
}

impl ServerArgs {
    /// The unsafe testing switches given on the command line (always off without the feature).
    fn unsafe_options(&self) -> crate::server::UnsafeOptions {
        #[cfg(feature = "jepsen-unsafe")]
        {
            crate::server::UnsafeOptions {
                local_reads: self.unsafe_local_reads,
                no_fsync: self.unsafe_no_fsync,
            }
        }
        #[cfg(not(feature = "jepsen-unsafe"))]
        {
            crate::server::UnsafeOptions::default()
        }
    }
}

/// Connection flags shared by the client commands.
#[derive(Debug, Default, Args)]
pub struct ConnArgs {
    /// Server address [env: STRONGROOM_ADDR, then VAULT_ADDR] [default: http://127.0.0.1:8200].
    #[arg(long, global = true, value_name = "URL")]
    pub address: Option<String>,
    /// Token to authenticate with [env: STRONGROOM_TOKEN, then VAULT_TOKEN, then ~/.vault-token].
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

impl ConnArgs {
    /// The server address from the flag, else the environment, else the default.
    pub fn resolved_address(&self) -> String {
        resolve_address(
            self.address.clone(),
            env_nonempty("STRONGROOM_ADDR"),
            env_nonempty("VAULT_ADDR"),
        )
    }

    /// Builds a client from the flags, falling back to the environment and `~/.vault-token`.
    pub fn client(&self) -> anyhow::Result<Client> {
        let address = self.resolved_address();
        let token = resolve_token(
            self.token.clone(),
            env_nonempty("STRONGROOM_TOKEN"),
            env_nonempty("VAULT_TOKEN"),
            read_token_file,
        );
        Ok(Client::new(&address, token)?)
    }
}

/// The server address: the flag, else `STRONGROOM_ADDR`, else `VAULT_ADDR`, else the default.
pub fn resolve_address(
    flag: Option<String>,
    strongroom_env: Option<String>,
    vault_env: Option<String>,
) -> String {
    flag.or(strongroom_env)
        .or(vault_env)
        .unwrap_or_else(|| DEFAULT_ADDRESS.to_string())
}

/// The token: the flag, else `STRONGROOM_TOKEN`, else `VAULT_TOKEN`, else what `token_file`
/// yields (`~/.vault-token`); `token_file` is only called when needed.
pub fn resolve_token(
    flag: Option<String>,
    strongroom_env: Option<String>,
    vault_env: Option<String>,
    token_file: impl FnOnce() -> Option<String>,
) -> Option<String> {
    flag.or(strongroom_env).or(vault_env).or_else(token_file)
}

/// An environment variable's value, treating an empty value as unset.
fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The token stored in `~/.vault-token`, if that file exists and is not empty.
fn read_token_file() -> Option<String> {
    let home = env_nonempty("HOME")?;
    let text = std::fs::read_to_string(Path::new(&home).join(".vault-token")).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// Rewrites Vault's single-dash long flags (`-method=userpass`, `-no-store`) to clap's
/// `--method=userpass`, `--no-store`. Single letters (`-h`), a lone `-`, negative numbers and
/// everything after `--` are left alone; the program name (the first item) too.
pub fn vault_style_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut rest_verbatim = false;
    args.into_iter()
        .enumerate()
        .map(|(index, arg)| {
            let arg: OsString = arg.into();
            if index == 0 || rest_verbatim {
                return arg;
            }
            let Some(text) = arg.to_str() else {
                return arg;
            };
            if text == "--" {
                rest_verbatim = true;
                return arg;
            }
            let name = text
                .strip_prefix('-')
                .filter(|rest| !rest.starts_with('-'))
                .map(|rest| rest.split('=').next().unwrap_or(rest));
            let is_long_flag = name.is_some_and(|name| {
                name.len() >= 2
                    && name.starts_with(|c: char| c.is_ascii_alphabetic())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
            if is_long_flag {
                OsString::from(format!("-{text}"))
            } else {
                arg
            }
        })
        .collect()
}

/// Entry point of the `strongroom` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(vault_style_args(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS // --help, --version
            };
        }
    };
    let result = match cli.command {
        Command::Server(args) => run_server(&args),
        command => {
            init_tracing(None);
            runtime().and_then(|rt| rt.block_on(dispatch(command)))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a client command or `dev` on the runtime.
async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Server(_) => anyhow::bail!("`server` is not dispatched on a shared runtime"),
        Command::Dev(args) => dev::run(args).await,
        Command::Operator { conn, command } => operator::run(&conn, command).await,
        Command::Kv { conn, command } => kv::run(&conn, command).await,
        Command::Token { conn, command } => token::run(&conn, command).await,
        Command::Policy { conn, command } => policy::run(&conn, command).await,
        Command::Login(args) => login::run(args).await,
        Command::Auth { conn, command } => auth::run(&conn, command).await,
        Command::Audit { conn, command } => audit::run(&conn, command).await,
    }
}

/// `strongroom server --config FILE`: load the config, set up logging, run the node.
fn run_server(args: &ServerArgs) -> anyhow::Result<ExitCode> {
    // ConfigError's message already names the file and, for an unknown key, the key and line;
    // its source is part of that message, so it is not printed again as a cause.
    let config = ServerConfig::load(&args.config)
        .map_err(|e| anyhow::anyhow!("Error loading configuration: {e}"))?;
    init_tracing(config.log_level.as_deref());
    let rt = runtime()?;
    rt.block_on(crate::server::run_with(config, args.unsafe_options()))
        .context("Error running the server")?;
    Ok(ExitCode::SUCCESS)
}

/// A multi-threaded tokio runtime with I/O and timers.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs to stderr. The filter is `RUST_LOG` when set, else `config_level`, else `info`.
fn init_tracing(config_level: Option<&str>) {
    let directives = log_directives(env_nonempty("RUST_LOG"), config_level);
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("invalid log filter {directives:?} ({e}); using \"info\"");
        tracing_subscriber::EnvFilter::new("info")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The log filter directives: `RUST_LOG`, else the config's `log_level`, else `info`.
fn log_directives(rust_log: Option<String>, config_level: Option<&str>) -> String {
    rust_log
        .or_else(|| config_level.map(str::to_string))
        .unwrap_or_else(|| "info".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("strongroom").chain(args.iter().copied()))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn address_precedence() {
        assert_eq!(
            resolve_address(s("http://f"), s("http://s"), s("http://v")),
            "http://f"
        );
        assert_eq!(
            resolve_address(None, s("http://s"), s("http://v")),
            "http://s"
        );
        assert_eq!(resolve_address(None, None, s("http://v")), "http://v");
        assert_eq!(resolve_address(None, None, None), DEFAULT_ADDRESS);
    }

    #[test]
    fn token_precedence_and_lazy_file() {
        let no_file = || -> Option<String> { panic!("token file read although not needed") };
        assert_eq!(resolve_token(s("f"), s("s"), s("v"), no_file), s("f"));
        assert_eq!(resolve_token(None, s("s"), s("v"), no_file), s("s"));
        assert_eq!(resolve_token(None, None, s("v"), no_file), s("v"));
        assert_eq!(resolve_token(None, None, None, || s("file")), s("file"));
        assert_eq!(resolve_token(None, None, None, || None), None);
    }

    #[test]
    fn log_filter_precedence() {
        assert_eq!(log_directives(s("debug"), Some("warn")), "debug");
        assert_eq!(log_directives(None, Some("warn")), "warn");
        assert_eq!(log_directives(None, None), "info");
    }

    #[test]
    fn parses_server() {
        let cli = parse(&["server", "--config", "/etc/n1.toml"]).expect("parse");
        match cli.command {
            Command::Server(a) => assert_eq!(a.config, PathBuf::from("/etc/n1.toml")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse(&["server"]).is_err());
    }

    #[test]
    fn global_connection_flags_work_before_and_after_the_subcommand() {
        for args in [
            &[
                "kv",
                "--address",
                "http://a:1",
                "--token",
                "t",
                "get",
                "secret/x",
            ][..],
            &[
                "kv",
                "get",
                "secret/x",
                "--address",
                "http://a:1",
                "--token",
                "t",
            ][..],
        ] {
            match parse(args).expect("parse").command {
                Command::Kv { conn, .. } => {
                    assert_eq!(conn.address.as_deref(), Some("http://a:1"));
                    assert_eq!(conn.token.as_deref(), Some("t"));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn connection_flags_are_not_accepted_by_server_and_dev() {
        assert!(parse(&["server", "--config", "c", "--token", "t"]).is_err());
        assert!(parse(&["dev", "--address", "http://a"]).is_err());
    }

    #[test]
    fn vault_single_dash_flags_become_long_flags() {
        let args = vault_style_args([
            "strongroom",
            "kv",
            "get",
            "-format=json",
            "-mount",
            "secret",
            "-",
            "-h",
            "-1",
            "k=-v",
            "--",
            "-field=x",
        ]);
        let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
        assert_eq!(
            args,
            [
                "strongroom",
                "kv",
                "get",
                "--format=json",
                "--mount",
                "secret",
                "-",
                "-h",
                "-1",
                "k=-v",
                "--",
                "-field=x"
            ]
        );
        let cli = Cli::try_parse_from(vault_style_args([
            "strongroom",
            "token",
            "create",
            "-policy=dev",
            "-ttl=1h",
        ]))
        .expect("parse");
        assert!(matches!(cli.command, Command::Token { .. }));
    }

    #[test]
    fn unknown_command_is_an_error() {
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&[]).is_err());
    }
}
