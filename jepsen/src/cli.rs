//! Command-line interface: `run` (start a cluster, inject faults, record, check, report) and
//! `check DIR` (re-run the checkers on a stored run).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use clap::Parser;
use clap::Subcommand;

/// A Jepsen-style fault-injection harness for Strongroom.
#[derive(Debug, Parser)]
#[command(name = "strongroom-jepsen", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a test: start a cluster, run workloads under faults, check the history.
    Run(Box<RunArgs>),
    /// Re-run the checkers on a stored run directory and rewrite its report.
    Check {
        /// The run directory (`jepsen/store/<test>/<time>`).
        dir: PathBuf,
        /// Time budget of the linearizability search.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        wgl_budget: Duration,
    },
}

/// Options of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Workloads, comma-separated: register, set, transit, audit (or all).
    #[arg(long, default_value = "register,set,audit")]
    pub workload: String,
    /// Faults, comma-separated: kill, pause, partition, loss, clock, seal, membership,
    /// lose-unsynced (or all, none).
    #[arg(long, default_value = "kill,pause,partition")]
    pub nemesis: String,
    /// Partition shapes the partition nemesis picks from, comma-separated (or all): isolate-one,
    /// isolate-leader, halves, bridge, one-way, lagging.
    #[arg(long, default_value = "all")]
    pub partition_shapes: String,
    /// Cluster size (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// Length of the fault phase (`60s`, `5m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time: Duration,
    /// Operations per second, all workers together.
    #[arg(long, default_value_t = 40.0)]
    pub rate: f64,
    /// Concurrent workers (each bound to one node, round-robin).
    #[arg(long, default_value_t = 6)]
    pub concurrency: u64,
    /// Seed of every generator and of the nemesis schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start servers with `--unsafe-local-reads` (needs a `jepsen-unsafe` build).
    #[arg(long)]
    pub unsafe_local_reads: bool,
    /// Start servers with `--unsafe-no-fsync` (needs a `jepsen-unsafe` build).
    #[arg(long)]
    pub unsafe_no_fsync: bool,
    /// Directory holding the `strongroom` binary [default: $CARGO_TARGET_DIR/debug, else
    /// <workspace>/target/debug].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Where runs are stored [default: <workspace>/jepsen/store].
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Test name (the store subdirectory) [default: from workloads, nemeses and options].
    #[arg(long)]
    pub name: Option<String>,
    /// Network mode: auto (netns if possible, else loopback), netns, loopback.
    #[arg(long, default_value = "auto")]
    pub net: String,
    /// Per-request timeout (an unanswered write becomes indeterminate).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub op_timeout: Duration,
    /// Quiet time between faults, `MIN..MAX` (`2s..5s`).
    #[arg(long, default_value = "2s..5s")]
    pub quiet: String,
    /// How long a fault is held, `MIN..MAX` (`3s..8s`).
    #[arg(long, default_value = "3s..8s")]
    pub hold: String,
    /// Register keys in use at once.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// Operations on one register key before it is replaced.
    #[arg(long, default_value_t = 150)]
    pub ops_per_key: u32,
    /// Time budget of the linearizability search.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wgl_budget: Duration,
    /// Keep node data directories, and what lose-unsynced cut from them (both are deleted after
    /// the leak scan otherwise).
    #[arg(long)]
    pub keep_data: bool,
}

/// Parses `90`, `90s`, `500ms`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration unit in {text:?} (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses `MIN..MAX` durations into milliseconds.
pub fn parse_range_ms(text: &str) -> Result<(u64, u64), String> {
    let (low, high) = text
        .split_once("..")
        .ok_or_else(|| format!("expected MIN..MAX, got {text:?}"))?;
    let low = parse_duration(low)?.as_millis() as u64;
    let high = parse_duration(high)?.as_millis() as u64;
    if high < low {
        return Err(format!("empty range {text:?}"));
    }
    Ok((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ranges_parse() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_range_ms("2s..5s"), Ok((2000, 5000)));
        assert!(parse_range_ms("5s..2s").is_err());
    }
}
