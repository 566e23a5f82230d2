//! Resolving `run` options into a run configuration: workloads, faults, binary, network mode,
//! the store directory and the test name; stored as `config.json` with the seed and git commit.

use std::path::Path;
use std::path::PathBuf;

use anyhow::Context;
use anyhow::bail;
use serde::Serialize;

use crate::cli::RunArgs;
use crate::cli::parse_range_ms;
use crate::cluster::unsynced::SHIM_FILE;
use crate::nemesis::Fault;
use crate::nemesis::Timing;
use crate::nemesis::partition;
use crate::net::NetMode;
use crate::workload::Workload;

/// Everything a run needs to know, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    /// Test name.
    pub test: String,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Faults.
    pub faults: Vec<Fault>,
    /// Fault timing.
    pub timing: Timing,
    /// The shapes the partition nemesis picks from.
    pub partition_shapes: Vec<&'static str>,
    /// Network mode.
    pub net: NetMode,
    /// The server binary.
    pub server_bin: PathBuf,
    /// libfaketime, when the clock fault is on.
    pub faketime_lib: Option<PathBuf>,
    /// The fsync shim, when the lose-unsynced fault is on.
    pub sync_shim: Option<PathBuf>,
    /// The git commit of the workspace, if known.
    pub git_commit: Option<String>,
    /// The options as given.
    #[serde(skip)]
    pub args: RunArgs,
}

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where `strongroom` is looked for by default.
pub fn default_bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

const FAKETIME_PATHS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// The fsync shim of the lose-unsynced nemesis: next to the `strongroom` binary, else next to
/// this harness (an unsafe server copied aside has no shim beside it; the one this workspace
/// built fits any server).
fn find_sync_shim(bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let own_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let candidates: Vec<PathBuf> = std::iter::once(bin_dir.to_path_buf())
        .chain(own_dir)
        .map(|dir| dir.join(SHIM_FILE))
        .collect();
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.canonicalize()?),
        None => bail!(
            "the lose-unsynced nemesis needs the fsync shim {SHIM_FILE}, not found at {}: build it (cargo build --workspace)",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    }
}

fn parse_workloads(text: &str) -> anyhow::Result<Vec<Workload>> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            out.extend(Workload::ALL);
            continue;
        }
        out.push(Workload::parse(name).with_context(|| {
            format!("unknown workload {name:?} (known: register, set, transit, audit, all)")
        })?);
    }
    out.dedup();
    if out.is_empty() {
        bail!("no workload given");
    }
    // The audit workload checks the records of the others; alone, it audits the register's.
    if out.iter().all(|w| *w == Workload::Audit) {
        out.insert(0, Workload::Register);
    }
    Ok(out)
}

fn git_commit(root: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Checks that `bin` accepts `flag` (the unsafe switches exist only in `jepsen-unsafe` builds).
fn supports_flag(bin: &Path, flag: &str) -> bool {
    std::process::Command::new(bin)
        .args(["server", "--help"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(flag))
        .unwrap_or(false)
}

impl RunConfig {
    /// Resolves `args` for network mode `net`.
    pub fn resolve(args: &RunArgs, net: NetMode) -> anyhow::Result<RunConfig> {
        let workloads = parse_workloads(&args.workload)?;
        let faults = Fault::parse_list(&args.nemesis)?;
        if net == NetMode::Loopback
            && let Some(fault) = faults.iter().find(|f| f.needs_netns())
        {
            bail!(
                "the {} nemesis needs network namespaces (netns mode), not available here",
                fault.name()
            );
        }
        let timing = Timing {
            quiet_ms: parse_range_ms(&args.quiet).map_err(anyhow::Error::msg)?,
            hold_ms: parse_range_ms(&args.hold).map_err(anyhow::Error::msg)?,
        };
        let partition_shapes =
            partition::parse_shapes(&args.partition_shapes).map_err(anyhow::Error::msg)?;
        let bin_dir = args.bin_dir.clone().unwrap_or_else(default_bin_dir);
        let server_bin = bin_dir.join("strongroom");
        if !server_bin.is_file() {
            bail!(
                "{} not found: build it (cargo build --workspace) or pass --bin-dir",
                server_bin.display()
            );
        }
        for (wanted, flag) in [
            (args.unsafe_local_reads, "--unsafe-local-reads"),
            (args.unsafe_no_fsync, "--unsafe-no-fsync"),
        ] {
            if wanted && !supports_flag(&server_bin, flag) {
                bail!(
                    "{} has no {flag}: build it with `cargo build --workspace --features strongroom/jepsen-unsafe`",
                    server_bin.display()
                );
            }
        }
        let faketime_lib = if faults.contains(&Fault::Clock) {
            let lib = FAKETIME_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .context("the clock nemesis needs libfaketime (apt-get install faketime; see scripts/setup.sh)")?;
            Some(lib)
        } else {
            None
        };
        let sync_shim = if faults.contains(&Fault::LoseUnsynced) {
            Some(find_sync_shim(&bin_dir)?)
        } else {
            None
        };
        let test = args.name.clone().unwrap_or_else(|| {
            let w: Vec<&str> = workloads.iter().map(|w| w.name()).collect();
            let f: Vec<&str> = faults.iter().map(|f| f.name()).collect();
            let mut name = format!(
                "{}__{}__n{}",
                w.join("+"),
                if f.is_empty() {
                    "none".to_string()
                } else {
                    f.join("+")
                },
                args.nodes
            );
            if args.unsafe_local_reads {
                name.push_str("__unsafe-local-reads");
            }
            if args.unsafe_no_fsync {
                name.push_str("__unsafe-no-fsync");
            }
            name
        });
        Ok(RunConfig {
            test,
            workloads,
            faults,
            timing,
            partition_shapes,
            net,
            server_bin,
            faketime_lib,
            sync_shim,
            git_commit: git_commit(&workspace_root()),
            args: args.clone(),
        })
    }

    /// The run directory: `<store>/<test>/<UTC time>`.
    pub fn run_dir(&self) -> PathBuf {
        let store = self
            .args
            .store
            .clone()
            .unwrap_or_else(|| workspace_root().join("jepsen").join("store"));
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            now.month() as u8,
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        store.join(&self.test).join(stamp)
    }

    /// `config.json`'s content.
    pub fn to_json(&self) -> serde_json::Value {
        let a = &self.args;
        serde_json::json!({
            "test": self.test,
            "workloads": self.workloads,
            "nemesis": self.faults,
            "timing": self.timing,
            "nodes": a.nodes,
            "time_s": a.time.as_secs_f64(),
            "rate": a.rate,
            "concurrency": a.concurrency,
            "seed": a.seed,
            "unsafe_local_reads": a.unsafe_local_reads,
            "unsafe_no_fsync": a.unsafe_no_fsync,
            "net": self.net,
            "op_timeout_s": a.op_timeout.as_secs_f64(),
            "keys": a.keys,
            "ops_per_key": a.ops_per_key,
            "server_bin": self.server_bin,
            "faketime_lib": self.faketime_lib,
            "sync_shim": self.sync_shim,
            "git_commit": self.git_commit,
        })
    }
}
