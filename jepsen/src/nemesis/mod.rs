//! Nemeses: the faults a run injects, on a seeded schedule. One fault at a time: a quiet
//! interval, then a fault held for a while, then its healing action, until the fault phase
//! ends; then [`heal_all`] undoes anything left (network, pauses, dead or sealed nodes,
//! clocks). Each fault's start and stop goes to the nemesis log.
//!
//! `lose-unsynced` is a power failure: it SIGKILLs every node, or a majority, at once and cuts
//! each one's data dir to what its fsync calls made durable (the model and its limits are in
//! [`crate::cluster::unsynced`]; the fsync shim preloaded into the servers logs the calls).

pub mod log;
pub mod partition;

use std::time::Duration;

use anyhow::Context;
use anyhow::bail;
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use self::log::NemesisLog;
use crate::cluster::Cluster;
use crate::cluster::LostInit;
use crate::rng::Rng;

/// A fault selectable with `--nemesis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// SIGKILL a node (or the leader, or a minority), restart it, unseal it.
    Kill,
    /// SIGSTOP a node (or the leader, or a minority), SIGCONT it later.
    Pause,
    /// A network partition of a random shape ([`partition::SHAPES`]).
    Partition,
    /// Random packet loss between all nodes (iptables `statistic`).
    Loss,
    /// Wall-clock skew on a minority (libfaketime, monotonic clock untouched).
    Clock,
    /// Seal a node through `sys/seal` under load, unseal it later.
    Seal,
    /// Remove a follower from the Raft membership through the API, add it back later.
    Membership,
    /// Power failure: SIGKILL every node or a majority at once, drop every write not fsynced,
    /// restart and unseal them later.
    LoseUnsynced,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Partition,
        Fault::Loss,
        Fault::Clock,
        Fault::Seal,
        Fault::Membership,
        Fault::LoseUnsynced,
    ];

    /// The fault's name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Partition => "partition",
            Fault::Loss => "loss",
            Fault::Clock => "clock",
            Fault::Seal => "seal",
            Fault::Membership => "membership",
            Fault::LoseUnsynced => "lose-unsynced",
        }
    }

    /// Parses a comma-separated list (`none` = no faults, `all` = every fault).
    pub fn parse_list(text: &str) -> anyhow::Result<Vec<Fault>> {
        let mut faults = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" => {}
                "all" => faults.extend(Fault::ALL),
                _ => match Fault::ALL.iter().find(|f| f.name() == name) {
                    Some(fault) => faults.push(*fault),
                    None => bail!(
                        "unknown nemesis {name:?} (known: kill, pause, partition, loss, clock, seal, membership, lose-unsynced, all, none)"
                    ),
                },
            }
        }
        faults.dedup();
        Ok(faults)
    }

    /// True for faults that need network namespaces.
    pub fn needs_netns(self) -> bool {
        matches!(self, Fault::Partition | Fault::Loss)
    }
}

/// The schedule's timing, in milliseconds (uniform ranges).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timing {
    /// Quiet time between faults.
    pub quiet_ms: (u64, u64),
    /// How long a fault is held.
    pub hold_ms: (u64, u64),
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            quiet_ms: (2_000, 5_000),
            hold_ms: (3_000, 8_000),
        }
    }
}

/// A fault in force, and what undoes it.
enum Active {
    Killed(Vec<u64>),
    Paused(Vec<u64>),
    Network,
    Clock(Vec<u64>),
    Sealed(Vec<u64>),
    Removed(Vec<u64>),
}

/// Nodes to hit: sometimes the leader, sometimes a minority of two (5+ nodes), else one node.
async fn targets(cluster: &Cluster, rng: &mut Rng) -> Vec<u64> {
    let mut ids = cluster.ids();
    let minority = (ids.len() - 1) / 2;
    if rng.chance(0.3)
        && let Some(leader) = cluster.leader().await
    {
        return vec![leader];
    }
    rng.shuffle(&mut ids);
    let count = if minority >= 2 && rng.chance(0.3) {
        2
    } else {
        1
    };
    ids.truncate(count);
    ids
}

/// Nodes a power failure hits: every node (60 %), else a random majority. Losing unsynced
/// writes on a minority cannot lose an acknowledged write in Raft (the majority still has it),
/// so the target is never a minority.
fn crash_targets(cluster: &Cluster, rng: &mut Rng) -> Vec<u64> {
    let mut ids = cluster.ids();
    if !rng.chance(0.6) {
        rng.shuffle(&mut ids);
        ids.truncate(ids.len() / 2 + 1);
        ids.sort_unstable();
    }
    ids
}

async fn start(
    fault: Fault,
    cluster: &Cluster,
    rng: &mut Rng,
    shapes: &[&'static str],
    log: &NemesisLog,
) -> anyhow::Result<Active> {
    let name = fault.name();
    match fault {
        Fault::Kill => {
            let nodes = targets(cluster, rng).await;
            for &id in &nodes {
                cluster.kill(id);
            }
            log.log(name, "start", &nodes, json!(null));
            Ok(Active::Killed(nodes))
        }
        Fault::LoseUnsynced => {
            let nodes = crash_targets(cluster, rng);
            cluster.crash(&nodes);
            let mut lost = Vec::new();
            let mut failures = Vec::new();
            for &id in &nodes {
                match cluster.lose_unsynced(id) {
                    // Per node: files kept, truncated (path, from, to) and deleted (path,
                    // size), and the bytes each removed.
                    Ok(loss) => {
                        let mut entry = serde_json::to_value(&loss).unwrap_or_default();
                        entry["node"] = json!(id);
                        lost.push(entry);
                    }
                    Err(err) => failures.push(format!("{err:#}")),
                }
            }
            log.log(name, "start", &nodes, json!({"lost": lost}));
            if !failures.is_empty() {
                // The nodes are down: still restart them when the hold ends.
                log.log(name, "error", &nodes, json!({"error": failures.join("; ")}));
            }
            Ok(Active::Killed(nodes))
        }
        Fault::Pause => {
            let nodes = targets(cluster, rng).await;
            for &id in &nodes {
                cluster.pause(id)?;
            }
            log.log(name, "start", &nodes, json!(null));
            Ok(Active::Paused(nodes))
        }
        Fault::Partition => {
            let shape = *rng.pick(shapes).unwrap_or(&"isolate-one");
            let leader = if shape == "isolate-leader" || shape == "lagging" {
                cluster.leader().await
            } else {
                None
            };
            let (faults, side) = partition::plan(shape, &cluster.ids(), leader, rng);
            cluster.net().apply(&faults)?;
            let shown: Vec<(u64, Vec<u64>)> = faults
                .drops
                .iter()
                .map(|(k, v)| (*k, v.iter().copied().collect()))
                .collect();
            log.log(
                name,
                "start",
                &side,
                json!({"shape": shape, "drops_from": shown}),
            );
            Ok(Active::Network)
        }
        Fault::Loss => {
            let loss = *rng.pick(&[0.1, 0.2, 0.3, 0.4]).unwrap_or(&0.2);
            let faults = crate::net::NetFaults {
                loss,
                ..Default::default()
            };
            cluster.net().apply(&faults)?;
            log.log(name, "start", &cluster.ids(), json!({"loss": loss}));
            Ok(Active::Network)
        }
        Fault::Clock => {
            let nodes = targets(cluster, rng).await;
            let mut offsets = Vec::new();
            for &id in &nodes {
                let magnitude = *rng.pick(&[5i64, 60, 300, 3600, 86_400]).unwrap_or(&60);
                let offset = if rng.chance(0.5) {
                    magnitude
                } else {
                    -magnitude
                };
                cluster.set_clock_offset(id, offset)?;
                offsets.push((id, offset));
            }
            log.log(name, "start", &nodes, json!({"offsets_s": offsets}));
            Ok(Active::Clock(nodes))
        }
        Fault::Seal => {
            let nodes = targets(cluster, rng).await;
            for &id in &nodes {
                cluster.seal(id).await?;
            }
            log.log(name, "start", &nodes, json!(null));
            Ok(Active::Sealed(nodes))
        }
        Fault::Membership => {
            // A follower (the server refuses to remove the leader), asked of the leader so
            // the answer does not depend on the removed node.
            let leader = cluster.leader().await.context("no leader to ask")?;
            let mut followers: Vec<u64> = cluster
                .ids()
                .into_iter()
                .filter(|id| *id != leader)
                .collect();
            rng.shuffle(&mut followers);
            let target = *followers.first().context("no follower to remove")?;
            cluster.remove_peer(target, leader).await?;
            log.log(name, "start", &[target], json!({"via": leader}));
            Ok(Active::Removed(vec![target]))
        }
    }
}

async fn stop(
    fault: Fault,
    active: Active,
    cluster: &Cluster,
    log: &NemesisLog,
) -> anyhow::Result<()> {
    let name = fault.name();
    let nodes = match active {
        Active::Killed(nodes) => {
            // Log the stop when the processes are back; restarts take a while.
            for &id in &nodes {
                cluster.spawn(id)?;
            }
            log.log(name, "stop", &nodes, json!(null));
            // Every node gets its chance to come back even if one does not.
            let mut first_error = None;
            for &id in &nodes {
                if let Err(err) = cluster.restart(id).await {
                    first_error.get_or_insert(err);
                }
            }
            return first_error.map_or(Ok(()), Err);
        }
        Active::Paused(nodes) => {
            for &id in &nodes {
                cluster.resume(id)?;
            }
            nodes
        }
        Active::Network => {
            cluster.net().heal()?;
            cluster.ids()
        }
        Active::Clock(nodes) => {
            for &id in &nodes {
                cluster.set_clock_offset(id, 0)?;
            }
            nodes
        }
        Active::Sealed(nodes) => {
            for &id in &nodes {
                cluster.unseal(id, Duration::from_secs(60)).await?;
            }
            nodes
        }
        Active::Removed(nodes) => {
            for &id in &nodes {
                cluster.add_peer(id).await?;
            }
            nodes
        }
    };
    log.log(name, "stop", &nodes, json!(null));
    Ok(())
}

fn ms(rng: &mut Rng, range: (u64, u64)) -> Duration {
    Duration::from_millis(rng.range(range.0, range.1))
}

/// Runs the schedule until `end` (the last fault is healed by then).
pub async fn run(
    cluster: &Cluster,
    faults: &[Fault],
    mut rng: Rng,
    timing: Timing,
    shapes: &[&'static str],
    end: Instant,
    log: &NemesisLog,
) {
    if faults.is_empty() {
        return;
    }
    loop {
        tokio::time::sleep_until((Instant::now() + ms(&mut rng, timing.quiet_ms)).min(end)).await;
        if Instant::now() + Duration::from_secs(1) >= end {
            return;
        }
        let fault = *rng.pick(faults).unwrap_or(&Fault::Kill);
        let active = match start(fault, cluster, &mut rng, shapes, log).await {
            Ok(active) => active,
            Err(err) => {
                log.log(
                    fault.name(),
                    "error",
                    &[],
                    json!({"error": format!("{err:#}")}),
                );
                continue;
            }
        };
        tokio::time::sleep_until((Instant::now() + ms(&mut rng, timing.hold_ms)).min(end)).await;
        if let Err(err) = stop(fault, active, cluster, log).await {
            log.log(
                fault.name(),
                "error",
                &[],
                json!({"error": format!("{err:#}")}),
            );
        }
    }
}

/// Undoes every fault: network healed, paused nodes resumed, clocks reset, dead nodes
/// restarted, every node unsealed, removed nodes added back. A node that lost the vault's
/// initialization ([`LostInit`], a finding the liveness checker reports) cannot be unsealed:
/// it is left sealed, and membership is not repaired then (the vault that would answer is gone).
pub async fn heal_all(cluster: &Cluster, log: &NemesisLog, clocks: bool) -> anyhow::Result<()> {
    cluster.net().heal()?;
    for id in cluster.ids() {
        cluster.resume(id)?;
        if clocks {
            cluster.set_clock_offset(id, 0)?;
        }
    }
    cluster.reap_unexpected();
    for id in cluster.ids() {
        if let Err(err) = cluster.restart(id).await
            && err.downcast_ref::<LostInit>().is_none()
        {
            return Err(err);
        }
    }
    let lost = cluster.lost_init();
    if lost.is_empty() {
        cluster.ensure_voters().await?;
    }
    let detail = if lost.is_empty() {
        json!(null)
    } else {
        json!({"lost_init": lost.values().collect::<Vec<_>>()})
    };
    log.log("heal", "stop", &cluster.ids(), detail);
    Ok(())
}
