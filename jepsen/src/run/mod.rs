//! One test run, phase by phase: set up the network and the cluster (init, unseal), run the
//! workers and the nemesis for `--time`, heal everything, wait for convergence, read the final
//! state on every node, export the audit journals, stop the nodes, scan for leaks, check, and
//! write the report. The history and nemesis log are streamed to disk as the run goes, so even
//! an interrupted run leaves its events behind.

pub mod config;
mod finish;

use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::time::Instant;

use self::config::RunConfig;
use crate::cluster::Cluster;
use crate::cluster::node::ServerOptions;
use crate::history::Recorder;
use crate::nemesis;
use crate::nemesis::log::NemesisLog;
use crate::net::Net;
use crate::rng::Rng;
use crate::workload::Ctx;
use crate::workload::Workload;
use crate::workload::register;
use crate::workload::set;
use crate::workload::transit;

/// Runs the test; returns the process exit code (0 valid, 1 invalid, 2 unknown).
pub async fn run(config: RunConfig) -> anyhow::Result<i32> {
    let dir = config.run_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config.to_json())?,
    )?;
    eprintln!("strongroom-jepsen: {} -> {}", config.test, dir.display());
    let recorder = Arc::new(Recorder::create(Some(&dir.join("history.jsonl")))?);
    let log = NemesisLog::create(Some(&dir.join("nemesis.jsonl")), recorder.clone())?;
    let net = Net::setup(config.net, config.args.nodes)?;
    let options = ServerOptions {
        bin: config.server_bin.clone(),
        unsafe_local_reads: config.args.unsafe_local_reads,
        unsafe_no_fsync: config.args.unsafe_no_fsync,
        faketime_lib: config.faketime_lib.clone(),
        sync_shim: config.sync_shim.clone(),
    };
    let cluster = Cluster::start(&dir, net, options, recorder.clone(), config.args.op_timeout)
        .await
        .context("starting the cluster")?;
    let outcome = drive(&config, &dir, &cluster, &recorder, &log).await;
    cluster.stop_all().await;
    let facts = outcome.context("running the test")?;
    finish::finish(&config, &dir, &cluster, &recorder, &log, facts)
}

/// Brings the cluster up, runs the fault phase and the final phase.
async fn drive(
    config: &RunConfig,
    dir: &Path,
    cluster: &Cluster,
    recorder: &Arc<Recorder>,
    log: &NemesisLog,
) -> anyhow::Result<finish::Facts> {
    cluster.init(1).await.context("initializing")?;
    for id in cluster.ids() {
        cluster.unseal(id, Duration::from_secs(60)).await?;
    }
    crate::cluster::wait_for("a leader", Duration::from_secs(60), || cluster.leader()).await?;
    // One audited write proves the pipeline works before the clock starts.
    crate::cluster::wait_for("a first write", Duration::from_secs(60), || async {
        let reply = cluster
            .control(
                1,
                "POST",
                "secret/data/jepsen-setup",
                Some(json!({"data": {"ready": "yes"}})),
                "setup",
            )
            .await
            .ok()?;
        (reply.status == 200).then_some(())
    })
    .await?;
    let ctx = Ctx {
        recorder: recorder.clone(),
        api: cluster.api.clone(),
        token: cluster.token(),
    };
    let args = &config.args;
    let root_rng = Rng::new(args.seed);
    let keys = Arc::new(Mutex::new(register::Keys::new(register::KeyLimits {
        active: args.keys,
        ops_per_key: args.ops_per_key,
        infos_per_key: 20,
    })));
    let elements = Arc::new(AtomicU64::new(1));
    let data: Vec<Workload> = config
        .workloads
        .iter()
        .copied()
        .filter(|w| *w != Workload::Audit)
        .collect();
    let transit_shared = Arc::new(Mutex::new(transit::Shared::default()));
    if data.contains(&Workload::Transit) {
        transit::setup(cluster)
            .await
            .context("setting up transit")?;
    }
    let mut transit_workers = 0;
    let ids = cluster.ids();
    let per_worker = args.rate / args.concurrency.max(1) as f64;
    let end = Instant::now() + args.time;
    eprintln!(
        "strongroom-jepsen: cluster up; {} s of load and faults",
        args.time.as_secs()
    );
    let mut handles = Vec::new();
    for index in 0..args.concurrency {
        let node = ids[(index % ids.len() as u64) as usize];
        let rng = root_rng.fork(index + 1);
        let ctx = ctx.clone();
        let stride = args.concurrency;
        let handle = match data[(index % data.len() as u64) as usize] {
            Workload::Transit => {
                transit_workers += 1;
                let worker = transit::Worker {
                    index,
                    stride,
                    node,
                    rng,
                    shared: transit_shared.clone(),
                    controls_key: transit_workers == 1,
                };
                tokio::spawn(worker.run(ctx, per_worker, end))
            }
            Workload::Set => {
                let worker = set::Worker {
                    index,
                    stride,
                    node,
                    rng,
                    next: elements.clone(),
                };
                tokio::spawn(worker.run(ctx, per_worker, end))
            }
            _ => {
                let worker = register::Worker {
                    index,
                    stride,
                    node,
                    rng,
                    keys: keys.clone(),
                };
                tokio::spawn(worker.run(ctx, per_worker, end))
            }
        };
        handles.push(handle);
    }
    let watcher = async {
        while Instant::now() < end {
            cluster.reap_unexpected();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::join!(
        nemesis::run(
            cluster,
            &config.faults,
            root_rng.fork(0),
            config.timing,
            &config.partition_shapes,
            end,
            log
        ),
        watcher
    );
    for handle in handles {
        let _ = handle.await;
    }
    eprintln!("strongroom-jepsen: healing");
    let used_keys = keys.lock().unwrap_or_else(|p| p.into_inner()).used.clone();
    finish::final_phase(config, dir, cluster, &ctx, log, used_keys, &transit_shared).await
}
