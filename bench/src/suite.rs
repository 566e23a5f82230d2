//! The whole comparison: start an etcd cluster and a Strongroom cluster side by side, preload the
//! key space on each, then run every workload against every backend back to back (row by row, so
//! the systems see the same machine load), optionally repeated; then the memory test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use serde::Deserialize;
use serde::Serialize;

use crate::cipher::CipherResult;
use crate::client::BackendKind;
use crate::client::Connector;
use crate::client::Prepared;
use crate::cluster;
use crate::cluster::etcd::EtcdCluster;
use crate::cluster::strongroom::Cluster;
use crate::driver;
use crate::driver::Timing;
use crate::memory::MemoryResult;
use crate::stats::RowResult;
use crate::workload::KEY_SPACE;
use crate::workload::Mix;
use crate::workload::Target;
use crate::workload::Workload;

/// Options of a suite run.
pub struct SuiteOptions {
    /// Backends to measure.
    pub backends: Vec<BackendKind>,
    /// Workloads to run.
    pub workloads: Vec<Workload>,
    /// Warm-up and measured window per row.
    pub timing: Timing,
    /// How many times the whole set of rows runs; the median (by ops/s) is reported.
    pub repeat: usize,
    /// The `strongroom` binary.
    pub strongroom_bin: PathBuf,
    /// The `etcd` binary.
    pub etcd_bin: PathBuf,
    /// Where cluster data and logs go.
    pub work_dir: PathBuf,
    /// Secrets to load for the memory test (0 = skip).
    pub memory_secrets: u64,
}

/// Everything a suite run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResult {
    /// When and where it ran.
    pub meta: Meta,
    /// One row per (workload, backend): the median of the repeats.
    pub rows: Vec<RowResult>,
    /// Every repeat of every row.
    pub all_runs: Vec<RowResult>,
    /// The memory test, if it ran.
    pub memory: Option<MemoryResult>,
    /// The raw cipher's speed, when transit rows ran.
    #[serde(default)]
    pub cipher: Option<CipherResult>,
}

/// Conditions of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Unix time at the start.
    pub started_unix: u64,
    /// `/proc/loadavg` before the first row.
    pub loadavg_before: String,
    /// `/proc/loadavg` after the last row.
    pub loadavg_after: String,
    /// CPUs online.
    pub cpus: usize,
    /// Warm-up seconds per row.
    pub warmup_s: f64,
    /// Measured seconds per row.
    pub duration_s: f64,
    /// Repeats per row.
    pub repeat: usize,
    /// Wall seconds the suite took.
    pub wall_s: f64,
}

/// Reads `/proc/loadavg` (the first three fields).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs the suite.
pub async fn run(options: SuiteOptions) -> anyhow::Result<SuiteResult> {
    let began = Instant::now();
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::fs::create_dir_all(&options.work_dir)?;
    let wants = |kind| options.backends.contains(&kind);
    let mut etcd = if wants(BackendKind::Etcd) {
        eprintln!("starting etcd (3 members)");
        let mut etcd =
            EtcdCluster::start(&options.etcd_bin, &options.work_dir.join("etcd"), 3).await?;
        let (leader, _) = etcd.leader_and_follower().await?;
        preload(BackendKind::Etcd, &leader, "").await?;
        Some(etcd)
    } else {
        None
    };
    let mut prepared = Arc::new(Prepared::default());
    let mut strongroom = if wants(BackendKind::StrongroomHttp) || wants(BackendKind::StrongroomGrpc)
    {
        eprintln!("starting strongroom (3 nodes)");
        let mut cluster = Cluster::start(
            &options.strongroom_bin,
            &options.work_dir.join("strongroom"),
            3,
        )
        .await?;
        let (leader, _) = cluster.leader_and_follower().await?;
        preload(BackendKind::StrongroomGrpc, &leader.grpc, &cluster.token).await?;
        if options.workloads.iter().any(|w| w.mix.strongroom_only()) {
            prepared = Arc::new(cluster.prepare(&leader).await?);
        }
        Some(cluster)
    } else {
        None
    };
    let loadavg_before = loadavg();
    let mut all_runs = Vec::new();
    for round in 0..options.repeat {
        for workload in &options.workloads {
            for &kind in &options.backends {
                if kind == BackendKind::Etcd && workload.mix.strongroom_only() {
                    continue;
                }
                let (endpoint, token, pids) = match kind {
                    BackendKind::Etcd => {
                        let Some(etcd) = etcd.as_mut() else { continue };
                        let (leader, follower) = etcd.leader_and_follower().await?;
                        let endpoint = pick(workload.target, leader, follower);
                        (endpoint, String::new(), etcd.pids())
                    }
                    BackendKind::StrongroomHttp | BackendKind::StrongroomGrpc => {
                        let Some(cluster) = strongroom.as_mut() else {
                            continue;
                        };
                        let (leader, follower) = cluster.leader_and_follower().await?;
                        let node = pick(workload.target, leader, follower);
                        let endpoint = if kind == BackendKind::StrongroomHttp {
                            node.api
                        } else {
                            node.grpc
                        };
                        (endpoint, cluster.token.clone(), cluster.pids())
                    }
                };
                let label = format!(
                    "[{}/{}] {} {}",
                    round + 1,
                    options.repeat,
                    kind.name(),
                    workload.id
                );
                let server = Server {
                    kind,
                    endpoint: &endpoint,
                    token: &token,
                    pids: &pids,
                    prepared: prepared.clone(),
                };
                let row = run_row(server, workload, options.timing, &label).await?;
                print_row(&row);
                all_runs.push(row);
            }
        }
    }
    let loadavg_after = loadavg();
    if let Some(etcd) = etcd.as_mut() {
        etcd.stop();
    }
    if let Some(cluster) = strongroom.as_mut() {
        cluster.stop();
    }
    drop(etcd);
    drop(strongroom);
    let memory = if options.memory_secrets > 0 {
        Some(
            crate::memory::run(
                &options.strongroom_bin,
                &options.work_dir.join("memory"),
                options.memory_secrets,
            )
            .await?,
        )
    } else {
        None
    };
    let transit = |w: &Workload| matches!(w.mix, Mix::TransitEncrypt | Mix::TransitDecrypt);
    let cipher = if options.workloads.iter().any(transit) {
        eprintln!("measuring the raw cipher (AES-256-GCM, 1 KiB, one thread)");
        Some(crate::cipher::measure()?)
    } else {
        None
    };
    let rows = medians(&all_runs);
    Ok(SuiteResult {
        meta: Meta {
            started_unix,
            loadavg_before,
            loadavg_after,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            warmup_s: options.timing.warmup.as_secs_f64(),
            duration_s: options.timing.duration.as_secs_f64(),
            repeat: options.repeat,
            wall_s: began.elapsed().as_secs_f64(),
        },
        rows,
        all_runs,
        memory,
        cipher,
    })
}

fn pick<T>(target: Target, leader: T, follower: T) -> T {
    match target {
        Target::Leader => leader,
        Target::Follower => follower,
    }
}

/// The server side of a row: which backend, where, with what credentials, its processes.
pub struct Server<'a> {
    /// The backend.
    pub kind: BackendKind,
    /// The member's address.
    pub endpoint: &'a str,
    /// The Vault token (empty for etcd).
    pub token: &'a str,
    /// Every member's process id (their CPU time is measured).
    pub pids: &'a [u32],
    /// Transit and login bodies.
    pub prepared: Arc<Prepared>,
}

/// Runs one workload against one backend and measures the servers' CPU during it.
pub async fn run_row(
    server: Server<'_>,
    workload: &Workload,
    timing: Timing,
    label: &str,
) -> anyhow::Result<RowResult> {
    let Server {
        kind,
        endpoint,
        token,
        pids: server_pids,
        prepared,
    } = server;
    let connector =
        Arc::new(Connector::connect(kind, endpoint, token, workload.conns, prepared).await?);
    let cpu = |pids: &[u32]| pids.iter().map(|&p| cluster::cpu_time(p)).sum::<Duration>();
    let me = [std::process::id()];
    let (server_before, client_before) = (cpu(server_pids), cpu(&me));
    let measured = driver::run(label, connector, workload.mix, workload.workers, timing).await?;
    let (server_after, client_after) = (cpu(server_pids), cpu(&me));
    // CPU is sampled over warm-up + window; scale it to the window's share of the run.
    let share = timing.duration.as_secs_f64() / (timing.warmup + timing.duration).as_secs_f64();
    let ops = measured.latencies.count();
    let per_op = |d: Duration| {
        if ops == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1e6 * share / ops as f64
        }
    };
    let seconds = measured.elapsed.as_secs_f64().max(1e-9);
    let l = &measured.latencies;
    Ok(RowResult {
        backend: kind.name().to_string(),
        workload: workload.id.to_string(),
        workers: workload.workers,
        conns: if kind == BackendKind::StrongroomHttp {
            workload.workers
        } else {
            workload.conns
        },
        duration_s: seconds,
        ops,
        errors: measured.errors,
        ops_per_sec: ops as f64 / seconds,
        p50_ms: l.quantile_ms(0.5),
        p90_ms: l.quantile_ms(0.9),
        p99_ms: l.quantile_ms(0.99),
        p999_ms: l.quantile_ms(0.999),
        max_ms: l.max_ms(),
        server_cpu_us_per_op: per_op(server_after.saturating_sub(server_before)),
        client_cpu_us_per_op: per_op(client_after.saturating_sub(client_before)),
        first_error: measured.first_error,
    })
}

/// Prints one result line.
pub fn print_row(row: &RowResult) {
    println!(
        "{:<16} {:<14} {:>9.0} ops/s  p50 {:>7.2}  p99 {:>7.2}  p99.9 {:>7.2} ms  errors {}  server {:>5.0} µs/op",
        row.backend,
        row.workload,
        row.ops_per_sec,
        row.p50_ms,
        row.p99_ms,
        row.p999_ms,
        row.errors,
        row.server_cpu_us_per_op
    );
    if let Some(err) = &row.first_error {
        println!("    first error: {err}");
    }
}

/// Writes every key of the key space once (64 in flight) so reads find them.
async fn preload(kind: BackendKind, endpoint: &str, token: &str) -> anyhow::Result<()> {
    eprintln!("preloading {KEY_SPACE} keys into {}", kind.name());
    let connector = Connector::connect(kind, endpoint, token, 4, Arc::default()).await?;
    crate::memory::load_keys(&connector, 64, KEY_SPACE).await
}

/// The median run (by ops/s) of each (workload, backend), in first-seen order.
fn medians(runs: &[RowResult]) -> Vec<RowResult> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for run in runs {
        let key = (run.workload.clone(), run.backend.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .filter_map(|(workload, backend)| {
            let mut same: Vec<&RowResult> = runs
                .iter()
                .filter(|r| r.workload == workload && r.backend == backend)
                .collect();
            same.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
            same.get(same.len() / 2).map(|r| (*r).clone())
        })
        .collect()
}
