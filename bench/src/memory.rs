//! The memory test: load a fresh 3-node Strongroom cluster with N secrets of 256 B (256 in flight
//! over gRPC to the leader) and read each node's resident memory (`VmRSS`, peak `VmHWM`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context as _;
use serde::Deserialize;
use serde::Serialize;

use crate::client::BackendKind;
use crate::client::Connector;
use crate::cluster;
use crate::cluster::strongroom::Cluster;
use crate::workload::Op;

/// The target: a node holding 1M secrets stays under this resident size.
pub const RSS_LIMIT_BYTES: u64 = 1 << 30;

/// One node's memory after the load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeMemory {
    /// Raft node id.
    pub id: u64,
    /// Whether it was the leader during the load.
    pub leader: bool,
    /// Resident set size after the load, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size, bytes.
    pub hwm_bytes: u64,
}

/// What the memory test measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryResult {
    /// Secrets written.
    pub secrets: u64,
    /// Seconds the load took.
    pub load_s: f64,
    /// Failed writes (retried).
    pub errors: u64,
    /// Per node.
    pub nodes: Vec<NodeMemory>,
    /// On-disk size of each node's data directory, bytes.
    pub disk_bytes: Vec<u64>,
}

impl MemoryResult {
    /// The largest resident size of any node.
    pub fn max_rss(&self) -> u64 {
        self.nodes.iter().map(|n| n.rss_bytes).max().unwrap_or(0)
    }

    /// The largest peak resident size of any node.
    pub fn max_hwm(&self) -> u64 {
        self.nodes.iter().map(|n| n.hwm_bytes).max().unwrap_or(0)
    }
}

/// Runs the memory test on a fresh cluster under `dir`.
pub async fn run(binary: &Path, dir: &Path, secrets: u64) -> anyhow::Result<MemoryResult> {
    eprintln!("memory test: starting a fresh strongroom cluster");
    let mut cluster = Cluster::start(binary, dir, 3).await?;
    let (leader, _) = cluster.leader_and_follower().await?;
    let connector = Connector::connect(
        BackendKind::StrongroomGrpc,
        &leader.grpc,
        &cluster.token,
        8,
        Default::default(),
    )
    .await?;
    let began = Instant::now();
    let errors = load(&connector, 256, secrets).await?;
    let load_s = began.elapsed().as_secs_f64();
    eprintln!("memory test: loaded {secrets} secrets in {load_s:.0} s; settling 5 s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut nodes = Vec::new();
    for node in &cluster.nodes {
        let pid = cluster.pid_of(node.id).context("no such node")?;
        let (rss_bytes, hwm_bytes) = cluster::memory(pid)?;
        nodes.push(NodeMemory {
            id: node.id,
            leader: node.id == leader.id,
            rss_bytes,
            hwm_bytes,
        });
    }
    cluster.stop();
    let disk_bytes = cluster
        .nodes
        .iter()
        .map(|n| dir_size(&dir.join(format!("node{}", n.id))))
        .collect();
    Ok(MemoryResult {
        secrets,
        load_s,
        errors,
        nodes,
        disk_bytes,
    })
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// Writes keys `0..count` once each with `workers` in flight; fails if any key fails 5 times.
pub async fn load_keys(connector: &Connector, workers: usize, count: u64) -> anyhow::Result<()> {
    load(connector, workers, count).await.map(|_| ())
}

async fn load(connector: &Connector, workers: usize, count: u64) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let mut client = connector.client(worker).await?;
        let next = next.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let key = next.fetch_add(1, Ordering::Relaxed);
                if key >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                let mut attempt = 0;
                while let Err(err) = client.call(Op::Put { key, stale: false }).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    attempt += 1;
                    if attempt >= 5 {
                        return Err(err.context(format!("key {key} failed 5 times")));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }));
    }
    let progress = {
        let next = next.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let done = next.load(Ordering::Relaxed).min(count);
                eprintln!(
                    "  loading {done}/{count} ({:.0}/s)",
                    done as f64 / began.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut result = Ok(());
    for task in tasks {
        if let Err(err) = task.await? {
            result = Err(err);
        }
    }
    progress.abort();
    eprintln!();
    result.map(|()| errors.load(Ordering::Relaxed))
}
