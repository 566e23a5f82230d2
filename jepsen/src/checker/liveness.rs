//! Liveness facts the run observed: whether the cluster converged after the final heal (every
//! node unsealed, one applied index), whether a write and a linearizable read succeeded on every
//! node afterwards, and whether any node process exited without the nemesis killing it or
//! panicked. These are failures of availability or robustness, not of safety, but a vault that
//! crashes or never recovers is broken too.

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
}

/// Turns the facts into a result.
pub fn check(facts: &Liveness) -> CheckResult {
    let mut anomalies = Vec::new();
    if !facts.converged {
        anomalies.push(Anomaly::new(
            "no-convergence",
            None,
            vec![],
            format!(
                "the cluster did not converge within {:.0} s of the final heal",
                facts.converge_secs
            ),
        ));
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
