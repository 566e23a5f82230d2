//! `strongroom dev`: a real local cluster for trying Strongroom out. Picks free loopback ports,
//! writes one config per node, starts the nodes as child processes, initializes the vault through
//! node 1, unseals every node, prints the addresses, root token and unseal keys (as Vault's dev
//! server does), optionally writes them to an info file, and stops everything on Ctrl-C/SIGTERM.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Deserialize;
use serde_json::json;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep};

use super::client::{Client, ClientError};
use super::dev_layout::{
    DataDir, DevInfo, DevNodeInfo, banner, node_config, plan_nodes, write_info_file,
};
use super::dev_procs::Nodes;

/// How long each startup phase (nodes answering, init, unseal, an active node) may take.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two polls of a startup condition.
const POLL: Duration = Duration::from_millis(100);
/// Per-request timeout while polling nodes that may not be listening yet.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `strongroom dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    pub nodes: u8,
    /// Directory for configs, data and logs; kept after exit. Must be empty or absent.
    /// Default: a fresh temporary directory, removed on exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Also write the addresses, root token and unseal keys to this JSON file (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub info_file: Option<PathBuf>,
    /// Number of unseal key shares.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_shares: u8,
    /// Number of shares needed to unseal.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
    pub key_threshold: u8,
}

/// The `sys/init` answer the dev command needs. Not `Debug`: it carries secrets.
#[derive(Deserialize)]
struct InitResponse {
    keys_base64: Vec<String>,
    root_token: String,
}

/// Runs `strongroom dev` until Ctrl-C or SIGTERM (exit 0), or until a node fails (exit 1).
pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.key_threshold <= args.key_shares,
        "--key-threshold ({}) must not exceed --key-shares ({})",
        args.key_threshold,
        args.key_shares
    );
    // Take over SIGINT and SIGTERM before any child exists, so none is left behind.
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let dir = DataDir::create(args.data_dir.as_deref())?;
    let mut nodes = Nodes::default();
    let mut ready = false;
    let outcome = {
        let work = start_and_supervise(&args, dir.path(), &mut nodes, &mut ready);
        tokio::select! {
            r = work => match r {
                Err(e) => Err(e),
                Ok(never) => match never {},
            },
            s = stop_signal(&mut sigterm, &mut sigint) => Ok(s),
        }
    };
    tracing::info!("stopping the nodes");
    nodes.shutdown().await;
    if let Err(e) = dir.finish() {
        eprintln!("{e:#}");
    }
    match outcome {
        Ok(sig) if ready => {
            eprintln!("==> {sig} received; the cluster is stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ok(sig) => Err(anyhow::anyhow!(
            "{sig} received before the cluster was ready"
        )),
        Err(e) => Err(e),
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn stop_signal(sigterm: &mut Signal, sigint: &mut Signal) -> &'static str {
    tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    }
}

/// Starts the cluster, announces it, then watches the nodes; returns only with an error.
async fn start_and_supervise(
    args: &DevArgs,
    dir: &Path,
    nodes: &mut Nodes,
    ready: &mut bool,
) -> anyhow::Result<Infallible> {
    let plans = plan_nodes(args.nodes)?;
    let exe = std::env::current_exe().context("cannot find the strongroom executable")?;
    tracing::info!("starting {} nodes in {}", plans.len(), dir.display());
    for p in &plans {
        let node_dir = dir.join(format!("node{}", p.id));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        let config = dir.join(format!("node{}.toml", p.id));
        std::fs::write(&config, node_config(p, &plans, &node_dir).to_toml())
            .with_context(|| format!("cannot write {}", config.display()))?;
        let log = dir.join(format!("node{}.log", p.id));
        nodes.spawn(&exe, p.id, &config, &log)?;
    }

    let probes = plans
        .iter()
        .map(|p| Client::with_timeout(&p.api_url(), None, PROBE_TIMEOUT))
        .collect::<Result<Vec<_>, _>>()?;
    for (p, c) in plans.iter().zip(&probes) {
        wait_for(nodes, &format!("node {} to answer", p.id), || async move {
            Ok(match c.get("sys/health").await {
                Ok(_) | Err(ClientError::Api { .. } | ClientError::Decode { .. }) => {
                    Probe::Done(())
                }
                Err(e) => Probe::Retry(chain(e)),
            })
        })
        .await?;
    }

    tracing::info!("initializing through node 1");
    let first = &Client::new(&plans[0].api_url(), None)?;
    let body = &json!({"secret_shares": args.key_shares, "secret_threshold": args.key_threshold});
    let init = wait_for(nodes, "sys/init on node 1", || async move {
        match first.put("sys/init", body).await {
            Ok(Some(v)) => Ok(Probe::Done(
                serde_json::from_value::<InitResponse>(v).context("unexpected sys/init answer")?,
            )),
            Ok(None) => bail!("sys/init on node 1 answered with no body"),
            Err(e) if transient(&e) => Ok(Probe::Retry(chain(e))),
            Err(e) => Err(anyhow::Error::new(e).context("Error initializing node 1")),
        }
    })
    .await?;
    let threshold = usize::from(args.key_threshold);
    anyhow::ensure!(
        init.keys_base64.len() >= threshold,
        "sys/init returned {} keys, fewer than the threshold {threshold}",
        init.keys_base64.len()
    );

    for p in &plans {
        tracing::info!("unsealing node {}", p.id);
        let c = Client::new(&p.api_url(), None)?;
        let keys = &init.keys_base64[..threshold];
        wait_for(nodes, &format!("node {} to unseal", p.id), || {
            unseal_step(&c, keys)
        })
        .await?;
    }
    let probes = &probes;
    let active = wait_for(nodes, "an active node", || async move {
        for (i, c) in probes.iter().enumerate() {
            if let Ok(Some(h)) = c.get("sys/health").await
                && h.get("sealed").and_then(serde_json::Value::as_bool) == Some(false)
            {
                return Ok(Probe::Done(i));
            }
        }
        Ok(Probe::Retry(
            "no node reports itself active (HTTP 200)".into(),
        ))
    })
    .await?;

    let info = DevInfo {
        nodes: plans
            .iter()
            .map(|p| DevNodeInfo {
                id: p.id,
                api_addr: p.api_url(),
                cluster_addr: p.cluster_addr(),
            })
            .collect(),
        root_token: init.root_token,
        keys_base64: init.keys_base64,
        threshold: args.key_threshold,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(banner(&info, active, dir, args.data_dir.is_some()).as_bytes())?;
    out.flush()?;
    drop(out);
    if let Some(path) = &args.info_file {
        write_info_file(path, &info)?;
        tracing::info!("wrote {}", path.display());
    }
    *ready = true;

    loop {
        nodes.check_alive()?;
        sleep(Duration::from_millis(200)).await;
    }
}

/// One step towards unsealing a node: wait until it knows it is initialized (replication), then
/// submit the share its progress calls for. Done when the node reports `sealed: false`.
async fn unseal_step(c: &Client, keys: &[String]) -> anyhow::Result<Probe<()>> {
    let status = match c.get("sys/seal-status").await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(Probe::Retry("empty seal status".into())),
        Err(e) if transient(&e) => return Ok(Probe::Retry(chain(e))),
        Err(e) => return Err(anyhow::Error::new(e).context("Error checking seal status")),
    };
    let flag = |k: &str| status.get(k).and_then(serde_json::Value::as_bool);
    if flag("sealed") == Some(false) {
        return Ok(Probe::Done(()));
    }
    if flag("initialized") != Some(true) {
        return Ok(Probe::Retry("not initialized yet".into()));
    }
    let progress = status
        .get("progress")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let idx = usize::try_from(progress).unwrap_or(0) % keys.len().max(1);
    let Some(key) = keys.get(idx) else {
        bail!("no unseal keys to submit");
    };
    match c.put("sys/unseal", &json!({ "key": key })).await {
        Ok(Some(s)) if s.get("sealed").and_then(serde_json::Value::as_bool) == Some(false) => {
            Ok(Probe::Done(()))
        }
        Ok(_) => Ok(Probe::Retry(format!("unseal progress {}", idx + 1))),
        Err(e) if transient(&e) => Ok(Probe::Retry(chain(e))),
        Err(e) => Err(anyhow::Error::new(e).context("Error unsealing")),
    }
}

/// The result of one poll of a startup condition.
enum Probe<T> {
    /// The condition holds.
    Done(T),
    /// Not yet; the reason is reported if the phase times out.
    Retry(String),
}

/// Polls `probe` every [`POLL`] until it is done, it fails, a node exits, or [`PHASE_TIMEOUT`]
/// passes.
async fn wait_for<T, F, Fut>(nodes: &mut Nodes, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Probe<T>>>,
{
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        nodes.check_alive()?;
        let why = match probe().await? {
            Probe::Done(v) => return Ok(v),
            Probe::Retry(why) => why,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {PHASE_TIMEOUT:?} waiting for {what} (last: {why})");
        }
        sleep(POLL).await;
    }
}

/// Errors worth retrying during startup: no connection yet, or a 5xx such as "no leader yet".
fn transient(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        ClientError::Api { status, .. } => *status >= 500,
        ClientError::Decode { .. } | ClientError::Config(_) => false,
    }
}

/// A client error with its causes, for the "last:" part of a timeout message.
fn chain(e: ClientError) -> String {
    format!("{:#}", anyhow::Error::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<DevArgs, clap::Error> {
        let cli = Cli::try_parse_from(
            ["strongroom", "dev"]
                .into_iter()
                .chain(args.iter().copied()),
        )?;
        match cli.command {
            Command::Dev(a) => Ok(a),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_dev_flags() {
        let a = parse(&[]).expect("parse");
        assert_eq!((a.nodes, a.key_shares, a.key_threshold), (3, 5, 3));
        assert!(a.data_dir.is_none() && a.info_file.is_none());
        let a = parse(&[
            "--nodes",
            "5",
            "--data-dir",
            "/d",
            "--info-file",
            "/i.json",
            "--key-shares",
            "1",
            "--key-threshold",
            "1",
        ])
        .expect("parse");
        assert_eq!((a.nodes, a.key_shares, a.key_threshold), (5, 1, 1));
        assert_eq!(a.data_dir, Some(PathBuf::from("/d")));
        assert!(parse(&["--nodes", "0"]).is_err());
        assert!(parse(&["--nodes", "8"]).is_err());
    }

    #[test]
    fn only_connection_failures_and_5xx_are_retried() {
        assert!(transient(&ClientError::Api {
            status: 503,
            errors: vec![]
        }));
        assert!(transient(&ClientError::Api {
            status: 500,
            errors: vec![]
        }));
        assert!(!transient(&ClientError::Api {
            status: 400,
            errors: vec![]
        }));
        assert!(!transient(&ClientError::Config("x".into())));
    }
}
