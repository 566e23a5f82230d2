//! `strongroom-bench`: a closed-loop load driver that measures Strongroom (HTTP and gRPC) and
//! etcd 3.4 side by side on the same machine, and writes a table, JSON, a Markdown report and a
//! latency plot.
//!
//! - `suite`: start both clusters, run every workload against every backend, write the results.
//! - `report`: re-render the report and plot from a results JSON.
//! - `memory`: only the memory test (N secrets into a fresh Strongroom cluster, then VmRSS).

mod cipher;
mod client;
mod cluster;
mod driver;
mod memory;
mod plot;
mod report;
mod stats;
mod suite;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use clap::Subcommand;

use crate::client::BackendKind;
use crate::suite::SuiteResult;

#[derive(Parser)]
#[command(name = "strongroom-bench", about = "Strongroom vs etcd load driver")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the comparison and write results.json, report.md and latency.svg into --out.
    Suite {
        /// Output directory.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// Backends to measure.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [BackendKind::Etcd, BackendKind::StrongroomHttp, BackendKind::StrongroomGrpc])]
        backends: Vec<BackendKind>,
        /// Only these workloads (ids, comma-separated); default: all.
        #[arg(long, value_delimiter = ',')]
        only: Option<Vec<String>>,
        /// Warm-up seconds per row (not measured).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Measured seconds per row.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Repeat every row this many times and report the median.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Secrets to load for the memory test (0: skip it).
        #[arg(long, default_value_t = 1_000_000)]
        memory_secrets: u64,
        /// The strongroom binary (default: next to this one).
        #[arg(long)]
        strongroom_bin: Option<PathBuf>,
        /// The etcd binary.
        #[arg(long, default_value = "etcd")]
        etcd_bin: PathBuf,
        /// Where the clusters keep their data (default: a temporary directory, removed at the end).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Re-render report.md and latency.svg from a results.json.
    Report {
        /// The results file.
        #[arg(long)]
        results: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Only the memory test.
    Memory {
        /// Secrets to load.
        #[arg(long, default_value_t = 1_000_000)]
        secrets: u64,
        /// The strongroom binary (default: next to this one).
        #[arg(long)]
        strongroom_bin: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Suite {
            out,
            backends,
            only,
            warmup,
            duration,
            repeat,
            memory_secrets,
            strongroom_bin,
            etcd_bin,
            work_dir,
        } => {
            let temp = tempdir_if(work_dir.is_none())?;
            let work_dir = work_dir
                .or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()))
                .context("no work dir")?;
            let workloads = workload::select(only.as_deref());
            anyhow::ensure!(!workloads.is_empty(), "no workload matches --only");
            let options = suite::SuiteOptions {
                backends,
                workloads,
                timing: driver::Timing {
                    warmup: Duration::from_secs_f64(warmup),
                    duration: Duration::from_secs_f64(duration),
                },
                repeat: repeat.max(1),
                strongroom_bin: strongroom_bin.unwrap_or_else(cluster::strongroom::default_binary),
                etcd_bin,
                work_dir,
                memory_secrets,
            };
            let result = suite::run(options).await?;
            write_outputs(&result, &out)
        }
        Command::Report { results, out } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("reading {}", results.display()))?;
            let result: SuiteResult = serde_json::from_str(&text)?;
            write_outputs(&result, &out)
        }
        Command::Memory {
            secrets,
            strongroom_bin,
        } => {
            let temp = tempfile::tempdir()?;
            let binary = strongroom_bin.unwrap_or_else(cluster::strongroom::default_binary);
            let result = memory::run(&binary, temp.path(), secrets).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
    }
}

fn tempdir_if(needed: bool) -> anyhow::Result<Option<tempfile::TempDir>> {
    Ok(if needed {
        Some(
            tempfile::Builder::new()
                .prefix("strongroom-bench-")
                .tempdir()?,
        )
    } else {
        None
    })
}

fn write_outputs(result: &SuiteResult, out: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(result)?,
    )?;
    let plot = match plot::latency_svg(&result.rows, &out.join("latency.svg")) {
        Ok(()) => Some("latency.svg"),
        Err(err) => {
            eprintln!("no plot: {err:#}");
            None
        }
    };
    std::fs::write(out.join("report.md"), report::markdown(result, plot))?;
    println!(
        "\nwrote {}/results.json, report.md and latency.svg",
        out.display()
    );
    for row in &result.rows {
        suite::print_row(row);
    }
    Ok(())
}
