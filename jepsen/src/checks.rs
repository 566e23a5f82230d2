//! Which checkers a run gets, and `check DIR`: re-running them on a stored run (history,
//! audit export, scan findings, liveness facts) and rewriting its report.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::checker::CheckResult;
use crate::checker::audit;
use crate::checker::audit::Journal;
use crate::checker::leak;
use crate::checker::leak::LeakScan;
use crate::checker::liveness;
use crate::checker::liveness::Liveness;
use crate::checker::register;
use crate::checker::set;
use crate::checker::transit;
use crate::checker::wgl;
use crate::history::Op;
use crate::workload::Workload;

/// What the checkers look at.
pub struct Inputs<'a> {
    /// The history.
    pub ops: &'a [Op],
    /// The run's workloads (they select the checkers).
    pub workloads: &'a [Workload],
    /// Exported audit journals (audit workload).
    pub journals: Option<&'a [Journal]>,
    /// Leak scan findings.
    pub leak: Option<&'a LeakScan>,
    /// Liveness facts.
    pub liveness: Option<&'a Liveness>,
    /// The linearizability search's budget.
    pub wgl_budget: Duration,
}

/// Runs every applicable checker.
pub fn run_all(inputs: &Inputs<'_>) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let has = |w: Workload| inputs.workloads.contains(&w);
    let key_value = has(Workload::Set) || has(Workload::Transit);
    if has(Workload::Register) || !key_value {
        results.push(register::check(inputs.ops));
        results.push(wgl::check(inputs.ops, inputs.wgl_budget));
    }
    if has(Workload::Set) {
        results.push(set::check(inputs.ops));
    }
    if has(Workload::Transit) {
        results.push(transit::check(inputs.ops));
    }
    if has(Workload::Audit) {
        results.push(audit::check(inputs.ops, inputs.journals.unwrap_or(&[])));
    }
    if let Some(scan) = inputs.leak {
        results.push(leak::check(scan));
    }
    if let Some(facts) = inputs.liveness {
        results.push(liveness::check(facts));
    }
    results
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path)?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

/// `check DIR`: re-checks a stored run; returns the exit code.
pub fn check_dir(dir: &Path, wgl_budget: Duration) -> anyhow::Result<i32> {
    let config: serde_json::Value =
        read_json(&dir.join("config.json"))?.context("no config.json: not a run directory")?;
    let workloads: Vec<Workload> = config["workloads"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| Workload::parse(w.as_str()?))
                .collect()
        })
        .unwrap_or_default();
    let ops = crate::history::load(&dir.join("history.jsonl"))?;
    let events = crate::nemesis::log::load(&dir.join("nemesis.jsonl"))?;
    let meta: Option<Vec<Journal>> = read_json(&dir.join("audit").join("journals.json"))?;
    let journals = match meta {
        Some(meta) => Some(crate::cluster::audit_export::load_journals(
            &dir.join("audit"),
            &meta,
        )?),
        None => None,
    };
    let scan: Option<LeakScan> = read_json(&dir.join("leak-scan.json"))?;
    let facts: Option<Liveness> = read_json(&dir.join("liveness.json"))?;
    let inputs = Inputs {
        ops: &ops,
        workloads: &workloads,
        journals: journals.as_deref(),
        leak: scan.as_ref(),
        liveness: facts.as_ref(),
        wgl_budget,
    };
    let results = run_all(&inputs);
    let test = config["test"].as_str().unwrap_or("run").to_string();
    crate::report::write(dir, &test, &config, &results, &ops, &events)?;
    crate::report::print(&results, dir);
    Ok(crate::report::exit_code(crate::checker::overall(&results)))
}
