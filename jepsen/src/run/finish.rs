//! The end of a run: heal, converge, prove every node serves again, final reads on every node,
//! audit export; then (nodes stopped) the panic and leak scans, the checkers and the report.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use serde_json::json;

use super::config::RunConfig;
use crate::checker::audit::Journal;
use crate::checker::leak;
use crate::checker::leak::Needles;
use crate::checker::liveness::Liveness;
use crate::checks;
use crate::cluster::Cluster;
use crate::history::F;
use crate::history::OpType;
use crate::history::Recorder;
use crate::nemesis;
use crate::nemesis::Fault;
use crate::nemesis::log::NemesisLog;
use crate::workload::Ctx;
use crate::workload::Workload;
use crate::workload::register;
use crate::workload::set;
use crate::workload::transit;

/// Process ids of final reads start here (plus the node id).
const FINAL_PROCESS: u64 = 2_000_000;
/// How long the cluster may take to converge after the final heal.
const CONVERGE: Duration = Duration::from_secs(60);
/// How long each node may take to serve again after convergence.
const RECOVER: Duration = Duration::from_secs(30);

/// What the final phase learned.
pub struct Facts {
    liveness: Liveness,
    journals: Option<Vec<Journal>>,
}

/// Waits until every node is unsealed and reports the same applied index twice in a row.
async fn converge(cluster: &Cluster) -> bool {
    let deadline = Instant::now() + CONVERGE;
    let mut previous: Option<u64> = None;
    while Instant::now() < deadline {
        let mut indexes = Vec::new();
        for id in cluster.ids() {
            if cluster.sealed(id).await == Some(false) {
                indexes.push(cluster.applied_index(id).await);
            }
        }
        let all = indexes.len() == cluster.ids().len();
        let first = indexes.first().copied().flatten();
        if all && first.is_some() && indexes.iter().all(|i| *i == first) {
            if previous == first {
                return true;
            }
            previous = first;
        } else {
            previous = None;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    false
}

/// Heal, converge, liveness probes, final reads, audit export.
pub async fn final_phase(
    config: &RunConfig,
    dir: &Path,
    cluster: &Cluster,
    ctx: &Ctx,
    log: &NemesisLog,
    used_keys: Vec<String>,
    transit_shared: &Mutex<transit::Shared>,
) -> anyhow::Result<Facts> {
    let healed_at = Instant::now();
    nemesis::heal_all(cluster, log, config.faults.contains(&Fault::Clock)).await?;
    // Nodes that lost the vault's initialization serve nothing: they are not waited for, and
    // not read from (their audit journal is reported as not exportable).
    let lost = cluster.lost_init();
    let converged = lost.is_empty() && converge(cluster).await;
    let mut liveness = Liveness {
        converged,
        converge_secs: healed_at.elapsed().as_secs_f64(),
        lost_init: lost.values().cloned().collect(),
        ..Liveness::default()
    };
    let serving: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| !lost.contains_key(id))
        .collect();
    liveness.unrecovered_nodes.extend(lost.keys());
    for &id in &serving {
        let path = format!("secret/data/jepsen-liveness/n{id}");
        let ok = crate::cluster::wait_for(&format!("node {id} to serve"), RECOVER, || {
            let path = path.clone();
            async move {
                let reply = cluster
                    .control(
                        id,
                        "POST",
                        &path,
                        Some(json!({"data": {"alive": "yes"}})),
                        "liveness",
                    )
                    .await
                    .ok()?;
                (reply.status == 200).then_some(())
            }
        })
        .await
        .is_ok();
        if ok {
            liveness.recovered_nodes.push(id);
        } else {
            liveness.unrecovered_nodes.push(id);
        }
    }
    for &id in &serving {
        let process = FINAL_PROCESS + id;
        if config.workloads.contains(&Workload::Set) {
            retry_read(|| set::read(ctx, id, process, "final")).await;
        }
        if config.workloads.contains(&Workload::Register) {
            for key in &used_keys {
                retry_read(|| register::execute(ctx, id, process, key, F::Read, 0, None, "final"))
                    .await;
            }
        }
    }
    if config.workloads.contains(&Workload::Transit) {
        transit::final_decrypts(ctx, &serving, transit_shared).await;
    }
    let journals = if config.workloads.contains(&Workload::Audit) {
        if lost.is_empty() {
            converge(cluster).await;
        }
        let mut journals = Vec::new();
        let mut target = None;
        for id in cluster.ids() {
            if let Some(why) = lost.get(&id) {
                journals.push(Journal {
                    node: id,
                    error: Some(format!("not exported: {why}")),
                    ..Journal::default()
                });
                continue;
            }
            journals.push(
                cluster
                    .export_audit(id, &dir.join("audit"), &mut target)
                    .await,
            );
        }
        Some(journals)
    } else {
        None
    };
    liveness.unexpected_exits = cluster.unexpected_exits();
    Ok(Facts { liveness, journals })
}

/// Retries a read a few times until it succeeds (every attempt is in the history).
async fn retry_read<Fut>(mut read: impl FnMut() -> Fut)
where
    Fut: std::future::Future<Output = crate::history::Op>,
{
    for _ in 0..5 {
        if read().await.kind == OpType::Ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Lines mentioning a panic in each node's log.
fn panics(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for id in cluster.ids() {
        let text = std::fs::read_to_string(&cluster.files(id).log).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("panicked at")) {
            out.push(format!(
                "node {id}: {}",
                line.chars().take(300).collect::<String>()
            ));
        }
    }
    out
}

/// Scans, checks and reports (nodes are stopped).
pub fn finish(
    config: &RunConfig,
    dir: &Path,
    cluster: &Cluster,
    recorder: &Arc<Recorder>,
    log: &NemesisLog,
    facts: Facts,
) -> anyhow::Result<i32> {
    let Facts {
        mut liveness,
        journals,
    } = facts;
    liveness.panics = panics(cluster);
    let ops = recorder.snapshot();
    let mut needles = Needles {
        canaries: ops
            .iter()
            .filter_map(|o| o.value.clone())
            .filter(|v| v.starts_with(leak::CANARY_PREFIX))
            .collect::<HashSet<String>>(),
        secrets: Vec::new(),
    };
    if let Some(secrets) = cluster.secrets() {
        needles
            .secrets
            .push(("root-token".into(), secrets.root_token.clone()));
        for (i, key) in secrets.keys_base64.iter().enumerate() {
            needles
                .secrets
                .push((format!("unseal-share-{}-base64", i + 1), key.clone()));
        }
        for (i, key) in secrets.keys_hex.iter().enumerate() {
            needles
                .secrets
                .push((format!("unseal-share-{}-hex", i + 1), key.clone()));
        }
    }
    let scan = leak::scan(&[dir.join("nodes"), dir.join("audit")], &needles);
    if !config.args.keep_data {
        for id in cluster.ids() {
            let _ = std::fs::remove_dir_all(&cluster.files(id).data_dir);
            crate::cluster::unsynced::remove_lost(&cluster.files(id).dir);
        }
    }
    std::fs::write(
        dir.join("leak-scan.json"),
        serde_json::to_string_pretty(&scan)?,
    )?;
    std::fs::write(
        dir.join("liveness.json"),
        serde_json::to_string_pretty(&liveness)?,
    )?;
    if let Some(journals) = &journals {
        let meta: Vec<Journal> = journals
            .iter()
            .map(|j| Journal {
                records: Vec::new(),
                ..j.clone()
            })
            .collect();
        // (No export may have created it: every node can have lost its journal.)
        std::fs::create_dir_all(dir.join("audit"))?;
        std::fs::write(
            dir.join("audit").join("journals.json"),
            serde_json::to_string_pretty(&meta)?,
        )?;
    }
    let inputs = checks::Inputs {
        ops: &ops,
        workloads: &config.workloads,
        journals: journals.as_deref(),
        leak: Some(&scan),
        liveness: Some(&liveness),
        wgl_budget: config.args.wgl_budget,
    };
    let results = checks::run_all(&inputs);
    crate::report::write(
        dir,
        &config.test,
        &config.to_json(),
        &results,
        &ops,
        &log.events(),
    )?;
    crate::report::print(&results, dir);
    Ok(crate::report::exit_code(crate::checker::overall(&results)))
}
