//! The set checker. Each `add` creates its own key (create-only), `read-set` lists them all.
//! After healing, the final reads on every node must hold every acknowledged add (`lost`
//! otherwise), nothing never attempted (`unexpected`) and nothing whose add certainly failed
//! (`aborted`); indeterminate adds that show up are `recovered` (fine). Final reads on
//! different nodes must agree (`divergent-final`). Reads during the run are checked against
//! real time: a read must contain every element whose add completed before the read was
//! invoked, and every element an earlier-completed read contained (`stale-read`), and nothing
//! whose add was invoked after the read completed (`future-read`).

use std::collections::BTreeSet;
use std::collections::HashMap;

use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;
use crate::history::Completed;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;

/// Elements listed in an anomaly explanation at most.
const SHOWN: usize = 20;

fn shown(elements: &[u64]) -> String {
    let mut text = format!("{:?}", &elements[..elements.len().min(SHOWN)]);
    if elements.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", elements.len() - SHOWN));
    }
    text
}

/// Runs the set checker.
pub fn check(ops: &[Op]) -> CheckResult {
    let paired = pair(ops);
    let adds: Vec<&Completed<'_>> = paired.iter().filter(|op| op.invoke.f == F::Add).collect();
    let reads: Vec<(&Completed<'_>, BTreeSet<u64>)> = paired
        .iter()
        .filter(|op| op.invoke.f == F::ReadSet && op.kind() == OpType::Ok)
        .filter_map(|op| {
            let elements = op.done?.elements.as_ref()?;
            Some((op, elements.iter().copied().collect()))
        })
        .collect();
    let mut add_of: HashMap<u64, &Completed<'_>> = HashMap::new();
    for add in &adds {
        if let Some(element) = add.invoke.element {
            add_of.insert(element, add);
        }
    }
    let mut anomalies = Vec::new();
    let finals: Vec<&(&Completed<'_>, BTreeSet<u64>)> = reads
        .iter()
        .filter(|(op, _)| op.invoke.phase == "final")
        .collect();
    let ok_adds: BTreeSet<u64> = adds
        .iter()
        .filter(|a| a.kind() == OpType::Ok)
        .filter_map(|a| a.invoke.element)
        .collect();
    let failed_adds: BTreeSet<u64> = adds
        .iter()
        .filter(|a| a.kind() == OpType::Fail)
        .filter_map(|a| a.invoke.element)
        .collect();
    let mut recovered: BTreeSet<u64> = BTreeSet::new();
    let mut lost_total = BTreeSet::new();
    for (read, elements) in &finals {
        let index = read.last_index();
        let lost: Vec<u64> = ok_adds.difference(elements).copied().collect();
        if !lost.is_empty() {
            lost_total.extend(lost.iter().copied());
            anomalies.push(Anomaly::new(
                "lost",
                None,
                vec![index],
                format!(
                    "final read on node {} lacks {} acknowledged adds: {}",
                    read.invoke.node,
                    lost.len(),
                    shown(&lost)
                ),
            ));
        }
        let unexpected: Vec<u64> = elements
            .iter()
            .filter(|e| !add_of.contains_key(e))
            .copied()
            .collect();
        if !unexpected.is_empty() {
            anomalies.push(Anomaly::new(
                "unexpected",
                None,
                vec![index],
                format!(
                    "final read holds elements never added: {}",
                    shown(&unexpected)
                ),
            ));
        }
        let aborted: Vec<u64> = elements.intersection(&failed_adds).copied().collect();
        if !aborted.is_empty() {
            anomalies.push(Anomaly::new(
                "aborted",
                None,
                vec![index],
                format!(
                    "final read holds elements whose add certainly failed: {}",
                    shown(&aborted)
                ),
            ));
        }
        recovered.extend(
            elements
                .iter()
                .filter(|e| add_of.get(e).is_some_and(|a| a.kind() == OpType::Info))
                .copied(),
        );
    }
    for pair in finals.windows(2) {
        if pair[0].1 != pair[1].1 {
            anomalies.push(Anomaly::new(
                "divergent-final",
                None,
                vec![pair[0].0.last_index(), pair[1].0.last_index()],
                format!(
                    "final reads on nodes {} and {} differ ({} vs {} elements)",
                    pair[0].0.invoke.node,
                    pair[1].0.invoke.node,
                    pair[0].1.len(),
                    pair[1].1.len()
                ),
            ));
        }
    }
    real_time(&adds, &add_of, &reads, &mut anomalies);
    let stats = json!({
        "attempted": adds.len(),
        "acknowledged": ok_adds.len(),
        "failed": failed_adds.len(),
        "indeterminate": adds.iter().filter(|a| a.kind() == OpType::Info).count(),
        "recovered": recovered.len(),
        "lost": lost_total.len(),
        "reads": reads.len(),
        "final_reads": finals.len(),
    });
    let fallback = if finals.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let result = CheckResult::from_anomalies("set", anomalies, stats, fallback);
    if finals.is_empty() {
        result.with_note("no final read succeeded")
    } else {
        result
    }
}

/// Reads against real time: what completed before a read began must be in it.
fn real_time(
    adds: &[&Completed<'_>],
    add_of: &HashMap<u64, &Completed<'_>>,
    reads: &[(&Completed<'_>, BTreeSet<u64>)],
    anomalies: &mut Vec<Anomaly>,
) {
    // Known-present elements, in the order they became certain: an ok add at its completion, an
    // element seen by a read at that read's completion.
    let mut certain: Vec<(u64, u64, u64)> = Vec::new(); // (time, element, witness index)
    for add in adds.iter().filter(|a| a.kind() == OpType::Ok) {
        if let Some(element) = add.invoke.element {
            certain.push((add.end(), element, add.last_index()));
        }
    }
    for (read, elements) in reads {
        for element in elements {
            certain.push((read.end(), *element, read.last_index()));
        }
    }
    certain.sort_unstable();
    let mut by_start: Vec<&(&Completed<'_>, BTreeSet<u64>)> = reads.iter().collect();
    by_start.sort_by_key(|(read, _)| read.start());
    let mut known: HashMap<u64, u64> = HashMap::new(); // element -> witness
    let mut next = 0;
    for (read, elements) in by_start {
        while next < certain.len() && certain[next].0 < read.start() {
            known.entry(certain[next].1).or_insert(certain[next].2);
            next += 1;
        }
        let mut missing: Vec<(u64, u64)> = known
            .iter()
            .filter(|(element, _)| !elements.contains(element))
            .map(|(element, witness)| (*element, *witness))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            let list: Vec<u64> = missing.iter().map(|(e, _)| *e).collect();
            anomalies.push(Anomaly::new(
                "stale-read",
                None,
                vec![missing[0].1, read.last_index()],
                format!(
                    "read on node {} misses {} elements known present before it began: {}",
                    read.invoke.node,
                    list.len(),
                    shown(&list)
                ),
            ));
        }
        let future: Vec<u64> = elements
            .iter()
            .filter(|e| add_of.get(e).is_some_and(|a| a.start() > read.end()))
            .copied()
            .collect();
        if !future.is_empty() {
            anomalies.push(Anomaly::new(
                "future-read",
                None,
                vec![read.last_index()],
                format!(
                    "read holds elements added only after it completed: {}",
                    shown(&future)
                ),
            ));
        }
    }
}
