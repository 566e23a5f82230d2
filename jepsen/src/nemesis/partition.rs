//! Partition shapes, as grudges (node -> peers whose packets it drops): isolate one node,
//! isolate the leader, random halves, a bridge (two sides that only one node connects), and
//! one-way (a node that cannot hear, or cannot be heard); and lagging (a follower that receives
//! no replication but whose own calls to peers still succeed: the stale-read trap).

use std::collections::BTreeSet;

use crate::net::Grudge;
use crate::net::NetFaults;
use crate::rng::Rng;

/// The partition shapes.
pub const SHAPES: [&str; 6] = [
    "isolate-one",
    "isolate-leader",
    "halves",
    "bridge",
    "one-way",
    "lagging",
];

/// Parses a comma-separated list of shapes (`all` = every shape).
pub fn parse_shapes(text: &str) -> Result<Vec<&'static str>, String> {
    let mut shapes = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            shapes.extend(SHAPES);
            continue;
        }
        match SHAPES.iter().find(|s| **s == name) {
            Some(shape) => shapes.push(*shape),
            None => {
                return Err(format!(
                    "unknown partition shape {name:?} (known: {}, all)",
                    SHAPES.join(", ")
                ));
            }
        }
    }
    shapes.dedup();
    if shapes.is_empty() {
        return Err("no partition shape given".to_string());
    }
    Ok(shapes)
}

/// Builds the network faults of partition `shape`; returns them and the affected nodes.
pub fn plan(shape: &str, ids: &[u64], leader: Option<u64>, rng: &mut Rng) -> (NetFaults, Vec<u64>) {
    if shape == "lagging" {
        let followers: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| Some(id) != leader)
            .collect();
        let node = rng.pick(&followers).copied().unwrap_or(ids[0]);
        let faults = NetFaults {
            lagging: BTreeSet::from([node]),
            ..NetFaults::default()
        };
        return (faults, vec![node]);
    }
    let (drops, side) = grudge(shape, ids, leader, rng);
    let faults = NetFaults {
        drops,
        ..NetFaults::default()
    };
    (faults, side)
}

fn cut(grudge: &mut Grudge, a: &[u64], b: &[u64]) {
    for &x in a {
        grudge.entry(x).or_default().extend(b.iter().copied());
    }
    for &y in b {
        grudge.entry(y).or_default().extend(a.iter().copied());
    }
}

/// Builds partition `shape` over `ids`; returns the grudge and the nodes on the "cut off" side.
pub fn grudge(shape: &str, ids: &[u64], leader: Option<u64>, rng: &mut Rng) -> (Grudge, Vec<u64>) {
    let mut shuffled = ids.to_vec();
    rng.shuffle(&mut shuffled);
    let mut grudge = Grudge::new();
    let first = shuffled.first().copied().unwrap_or(1);
    let others = |x: u64| -> Vec<u64> { ids.iter().copied().filter(|&i| i != x).collect() };
    match shape {
        "isolate-leader" => {
            let x = leader.unwrap_or(first);
            cut(&mut grudge, &[x], &others(x));
            (grudge, vec![x])
        }
        "halves" => {
            let (a, b) = shuffled.split_at(shuffled.len() / 2);
            cut(&mut grudge, a, b);
            (grudge, a.to_vec())
        }
        "bridge" => {
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            cut(&mut grudge, a, b);
            (grudge, vec![first])
        }
        "one-way" => {
            let x = first;
            if rng.chance(0.5) {
                // x hears nobody, everyone hears x.
                grudge.insert(x, others(x).into_iter().collect::<BTreeSet<u64>>());
            } else {
                for y in others(x) {
                    grudge.entry(y).or_default().insert(x);
                }
            }
            (grudge, vec![x])
        }
        _ => {
            cut(&mut grudge, &[first], &others(first));
            (grudge, vec![first])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_lists_parse_and_unknown_shapes_are_refused() {
        assert_eq!(parse_shapes("all").unwrap().len(), SHAPES.len());
        assert_eq!(
            parse_shapes("lagging, isolate-one").unwrap(),
            vec!["lagging", "isolate-one"]
        );
        assert!(parse_shapes("sideways").unwrap_err().contains("sideways"));
        assert!(parse_shapes("").is_err());
    }

    #[test]
    fn shapes_cut_what_they_say() {
        let ids = [1, 2, 3, 4, 5];
        let mut rng = Rng::new(3);
        let (g, side) = grudge("isolate-leader", &ids, Some(4), &mut rng);
        assert_eq!(side, vec![4]);
        assert_eq!(g[&4].len(), 4);
        assert!(g[&1].contains(&4) && !g[&1].contains(&2));
        let (g, side) = grudge("bridge", &ids, None, &mut rng);
        let bridge = side[0];
        assert!(!g.contains_key(&bridge));
        assert!(g.values().all(|peers| !peers.contains(&bridge)));
        let (g, side) = grudge("halves", &ids, None, &mut rng);
        assert_eq!(side.len(), 2);
        for x in &side {
            assert_eq!(g[x].len(), 3);
        }
        let (faults, side) = plan("lagging", &ids, None, &mut rng);
        assert!(faults.drops.is_empty());
        assert_eq!(faults.lagging.iter().copied().collect::<Vec<_>>(), side);
    }
}
