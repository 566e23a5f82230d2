//! Liveness facts the run observed: whether the cluster converged after the final heal (every
//! node unsealed, one applied index), whether a write and a linearizable read succeeded on every
//! node afterwards, and whether any node process exited without the nemesis killing it or
//! panicked. These are failures of availability or robustness, not of safety, but a vault that
//! crashes or never recovers is broken too. One fact here is a safety failure: a node that came
//! back from a restart reporting the vault uninitialized, and stayed so (`lost-init`), lost the
//! acknowledged `sys/init` and everything after it; no other checker can see that loss, since a
//! vault that forgot its keys answers no read.

use serde::Deserialize;
use serde::Serialize;
use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;

/// What the run observed about recovery (stored in `liveness.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Liveness {
    /// Every node unsealed and at the same applied index within the deadline.
    pub converged: bool,
    /// Seconds from the final heal until convergence.
    pub converge_secs: f64,
    /// Nodes on which a write and a read succeeded after the heal.
    pub recovered_nodes: Vec<u64>,
    /// Nodes on which they did not.
    pub unrecovered_nodes: Vec<u64>,
    /// Node exits the harness did not cause (`node 2: exit status 101`).
    pub unexpected_exits: Vec<String>,
    /// Panic lines found in node logs.
    pub panics: Vec<String>,
    /// Nodes that lost the vault's initialization (`cluster::LostInit`), as observed.
    #[serde(default)]
    pub lost_init: Vec<String>,
}

/// Turns the facts into a result.
pub fn check(facts: &Liveness) -> CheckResult {
    let mut anomalies = Vec::new();
    // First: the one safety finding here, and the cause of the others when present.
    for lost in &facts.lost_init {
        anomalies.push(Anomaly::new("lost-init", None, vec![], lost.clone()));
    }
    if !facts.converged {
        let explanation = if facts.lost_init.is_empty() {
            format!(
                "the cluster did not converge within {:.0} s of the final heal",
                facts.converge_secs
            )
        } else {
            "the cluster cannot converge: nodes lost the vault's initialization (lost-init)".into()
        };
        anomalies.push(Anomaly::new("no-convergence", None, vec![], explanation));
    }
    for node in &facts.unrecovered_nodes {
        anomalies.push(Anomaly::new(
            "unavailable-after-heal",
            None,
            vec![],
            format!("node {node} did not serve a write and a read after the final heal"),
        ));
    }
    for exit in &facts.unexpected_exits {
        anomalies.push(Anomaly::new("crash", None, vec![], exit.clone()));
    }
    for panic in &facts.panics {
        anomalies.push(Anomaly::new("panic", None, vec![], panic.clone()));
    }
    CheckResult::from_anomalies(
        "liveness",
        anomalies,
        json!({
            "converged": facts.converged,
            "converge_secs": facts.converge_secs,
            "recovered_nodes": facts.recovered_nodes,
        }),
        Validity::Valid,
    )
}
