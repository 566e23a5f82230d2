//! Check-and-set under a race: two clients write the same path at the same moment with the same
//! `options.cas`, through every ordered pair of nodes (leader and followers alike), many times.
//! Exactly one wins; the other gets Vault's CAS error (400) and writes nothing; every node then
//! reads the winner's data at the next version.

use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

const ROUNDS: u64 = 6;
const CAS_ERROR: &str = "check-and-set parameter did not match the current version";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_writes_have_exactly_one_winner_on_any_pair_of_nodes() {
    bounded(Duration::from_secs(420), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let pairs = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)];
        let mut wins = [0u32; 2];
        for (a, b) in pairs {
            let path = format!("secret/data/race/{a}-{b}");
            // Round 0 races two creations (cas 0 = only if absent), later rounds two updates.
            for round in 0..ROUNDS {
                let write = |node: usize, who: &str| {
                    let body = json!({
                        "options": {"cas": round},
                        "data": {"writer": who, "round": round},
                    });
                    let path = path.clone();
                    let cluster = &cluster;
                    async move { cluster.root(node, "POST", &path, Some(body)).await }
                };
                let ((status_a, body_a), (status_b, body_b)) =
                    tokio::join!(write(a, "a"), write(b, "b"));
                let outcome = format!(
                    "nodes {}/{} round {round}: a -> {status_a} {body_a}, b -> {status_b} {body_b}",
                    a + 1,
                    b + 1
                );
                let (winner, loser_body) = match (status_a, status_b) {
                    (200, 400) => ("a", &body_b),
                    (400, 200) => ("b", &body_a),
                    _ => panic!("exactly one write must win: {outcome}"),
                };
                wins[usize::from(winner == "b")] += 1;
                assert_eq!(loser_body["errors"], json!([CAS_ERROR]), "{outcome}");
                let winner_body = if winner == "a" { &body_a } else { &body_b };
                assert_eq!(winner_body["data"]["version"], round + 1, "{outcome}");

                for node in 0..3 {
                    let (status, read) = cluster.root(node, "GET", &path, None).await;
                    assert_eq!(status, 200, "node {}: {read}", node + 1);
                    assert_eq!(
                        read["data"]["data"],
                        json!({"writer": winner, "round": round}),
                        "node {} after {outcome}",
                        node + 1
                    );
                    assert_eq!(read["data"]["metadata"]["version"], round + 1);
                }
            }
            let (_, meta) = cluster
                .root(b, "GET", &path.replace("/data/", "/metadata/"), None)
                .await;
            assert_eq!(meta["data"]["current_version"], ROUNDS, "{meta}");
            let versions = meta["data"]["versions"]
                .as_object()
                .map(serde_json::Map::len)
                .unwrap_or_default();
            assert_eq!(versions as u64, ROUNDS, "one version per round: {meta}");
        }
        eprintln!("wins: a {}, b {}", wins[0], wins[1]);
    })
    .await;
}
