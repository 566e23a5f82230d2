//! The report of a run: `results.json` (machine-readable verdicts and anomalies),
//! `summary.md` (verdict first, then checkers, anomalies with their operations, faults,
//! latencies), `latency.svg`, and the console summary whose last line is
//! `checkers: N passed, M failed` (plus `, K unknown` when some are undecided).

pub mod svg;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use serde_json::Value;
use serde_json::json;

use crate::checker::CheckResult;
use crate::checker::Validity;
use crate::checker::overall;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;
use crate::nemesis::log::NemesisEvent;
use crate::nemesis::log::windows;

/// Anomalies rendered per checker in the summary.
const SHOWN_ANOMALIES: usize = 10;

fn verdict_word(validity: Validity) -> &'static str {
    match validity {
        Validity::Valid => "VALID",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "UNKNOWN",
    }
}

/// The process exit code for a verdict: 0 valid, 1 invalid, 2 unknown.
pub fn exit_code(validity: Validity) -> i32 {
    match validity {
        Validity::Valid => 0,
        Validity::Invalid => 1,
        Validity::Unknown => 2,
    }
}

/// Writes `results.json`, `summary.md` and `latency.svg` into `dir`.
pub fn write(
    dir: &Path,
    test: &str,
    config: &Value,
    results: &[CheckResult],
    ops: &[Op],
    events: &[NemesisEvent],
) -> anyhow::Result<()> {
    let valid = overall(results);
    let by_name: BTreeMap<&str, &CheckResult> =
        results.iter().map(|r| (r.name.as_str(), r)).collect();
    let json = json!({"test": test, "valid": valid.to_json(), "checkers": by_name});
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    std::fs::write(
        dir.join("summary.md"),
        summary(test, config, results, ops, events),
    )?;
    let end = ops.iter().map(|o| o.time_ns).max().unwrap_or(0);
    let plot = svg::latency_plot(
        &format!("{test}: latency per operation, faults shaded"),
        ops,
        &windows(events, end),
    );
    std::fs::write(dir.join("latency.svg"), plot)?;
    Ok(())
}

/// Prints one line per checker, then the totals line (the last line).
pub fn print(results: &[CheckResult], dir: &Path) {
    for result in results {
        println!(
            "  {:<28} {:<8} {} anomalies{}",
            result.name,
            verdict_word(result.valid),
            result.anomaly_count,
            result
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        for anomaly in result.anomalies.iter().take(3) {
            println!("      {}: {}", anomaly.kind, anomaly.explanation);
        }
    }
    println!("report: {}", dir.join("summary.md").display());
    println!("{}", totals_line(results));
}

/// `checkers: N passed, M failed` (`, K unknown` if any).
pub fn totals_line(results: &[CheckResult]) -> String {
    let count = |v: Validity| results.iter().filter(|r| r.valid == v).count();
    let unknown = count(Validity::Unknown);
    let mut line = format!(
        "checkers: {} passed, {} failed",
        count(Validity::Valid),
        count(Validity::Invalid)
    );
    if unknown > 0 {
        line.push_str(&format!(", {unknown} unknown"));
    }
    line
}

fn render_op(op: &Op) -> String {
    let mut text = format!(
        "#{} t={:.3}s p{} n{} {:?} {:?}",
        op.index,
        op.time_ns as f64 / 1e9,
        op.process,
        op.node,
        op.kind,
        op.f
    );
    for (name, value) in [
        ("key", op.key.clone()),
        ("value", op.value.clone()),
        ("version", op.version.map(|v| v.to_string())),
        ("expected", op.expected.map(|v| v.to_string())),
        ("element", op.element.map(|v| v.to_string())),
        (
            "elements",
            op.elements
                .as_ref()
                .map(|e| format!("{} elements", e.len())),
        ),
        ("status", op.status.map(|v| v.to_string())),
        ("error", op.error.clone()),
    ] {
        if let Some(value) = value {
            let _ = write!(text, " {name}={value}");
        }
    }
    text
}

fn summary(
    test: &str,
    config: &Value,
    results: &[CheckResult],
    ops: &[Op],
    events: &[NemesisEvent],
) -> String {
    let valid = overall(results);
    let mut md = format!("# {test}: {}\n\n", verdict_word(valid));
    let _ = writeln!(md, "{}\n", totals_line(results));
    let _ = writeln!(
        md,
        "## Run\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(config).unwrap_or_default()
    );
    let _ = writeln!(
        md,
        "## Checkers\n\n| checker | verdict | anomalies | stats |\n|---|---|---|---|"
    );
    for r in results {
        let _ = writeln!(
            md,
            "| {} | {} | {} | `{}` |",
            r.name,
            verdict_word(r.valid),
            r.anomaly_count,
            r.stats
        );
    }
    let by_index: HashMap<u64, &Op> = ops.iter().map(|o| (o.index, o)).collect();
    let by_id: HashMap<u64, Vec<&Op>> = ops.iter().fold(HashMap::new(), |mut m, o| {
        m.entry(o.id).or_default().push(o);
        m
    });
    for r in results
        .iter()
        .filter(|r| r.anomaly_count > 0 || r.note.is_some())
    {
        let _ = writeln!(md, "\n## {}: {}\n", r.name, verdict_word(r.valid));
        if let Some(note) = &r.note {
            let _ = writeln!(md, "Note: {note}\n");
        }
        for a in r.anomalies.iter().take(SHOWN_ANOMALIES) {
            let key = a
                .key
                .as_ref()
                .map(|k| format!(" on `{k}`"))
                .unwrap_or_default();
            let _ = writeln!(md, "- **{}**{key}: {}", a.kind, a.explanation);
            if !a.ops.is_empty() {
                let _ = writeln!(md, "\n  ```");
                for index in &a.ops {
                    if let Some(op) = by_index.get(index) {
                        for event in by_id.get(&op.id).into_iter().flatten() {
                            let _ = writeln!(md, "  {}", render_op(event));
                        }
                    }
                }
                let _ = writeln!(md, "  ```");
            }
        }
        if r.anomaly_count > SHOWN_ANOMALIES {
            let _ = writeln!(
                md,
                "- ... {} more in results.json",
                r.anomaly_count - SHOWN_ANOMALIES
            );
        }
    }
    let _ = writeln!(
        md,
        "\n## Faults\n\n| time | fault | action | nodes | detail |\n|---|---|---|---|---|"
    );
    for e in events {
        let _ = writeln!(
            md,
            "| {:.1}s | {} | {} | {:?} | `{}` |",
            e.time_ns as f64 / 1e9,
            e.fault,
            e.action,
            e.targets,
            e.detail
        );
    }
    let _ = writeln!(
        md,
        "\n## Operations\n\n| f | ok | fail | info | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|"
    );
    let mut per_f: BTreeMap<String, (usize, usize, usize, Vec<f64>)> = BTreeMap::new();
    for op in pair(ops) {
        let entry = per_f
            .entry(format!("{:?}", op.invoke.f).to_lowercase())
            .or_default();
        match op.kind() {
            OpType::Ok => entry.0 += 1,
            OpType::Fail => entry.1 += 1,
            _ => entry.2 += 1,
        }
        if let Some(done) = op.done
            && op.invoke.f != F::Control
        {
            entry
                .3
                .push(done.time_ns.saturating_sub(op.invoke.time_ns) as f64 / 1e6);
        }
    }
    for (f, (ok, fail, info, mut latencies)) in per_f {
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| -> f64 {
            if latencies.is_empty() {
                0.0
            } else {
                latencies[((latencies.len() - 1) as f64 * p) as usize]
            }
        };
        let _ = writeln!(
            md,
            "| {f} | {ok} | {fail} | {info} | {:.1} | {:.1} | {:.1} |",
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
    let _ = writeln!(
        md,
        "\n## Files\n\n`history.jsonl` (every event), `nemesis.jsonl` (faults), `results.json` (verdicts, anomalies), `latency.svg` (latency and availability, faults shaded), `audit/` (exported journals), `nodes/nK/node.log`, `leak-scan.json`, `liveness.json`, `config.json`.\n\n![latency](latency.svg)"
    );
    md
}
