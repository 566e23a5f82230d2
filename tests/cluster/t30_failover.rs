//! The leader is killed with SIGKILL during a stream of writes: every acknowledged write survives,
//! a new leader serves writes, and the killed node restarts sealed, catches up while sealed, and
//! after unseal serves the newest data.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_leader_kill() {
    bounded(Duration::from_secs(240), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let leader = cluster.wait_leader().await;
        let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

        // Writers on the two followers keep writing distinct keys; each remembers what got a 2xx.
        let acknowledged = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for (writer, &node) in survivors.iter().enumerate() {
            let url = cluster.nodes[node].url();
            let token = cluster.root_token.clone();
            let http = cluster.http.clone();
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    let key = format!("w{writer}/k{n}");
                    let sent = http
                        .post(format!("{url}/v1/secret/data/{key}"))
                        .header("X-Vault-Token", &token)
                        .json(&json!({"data": {"n": n}}))
                        .timeout(Duration::from_secs(15))
                        .send()
                        .await;
                    if sent.is_ok_and(|response| response.status().is_success()) {
                        acknowledged.lock().unwrap().push((key, n));
                    }
                }
            }));
        }
        wait_for("some acknowledged writes", Duration::from_secs(30), || {
            let count = acknowledged.lock().unwrap().len();
            async move { (count >= 20).then_some(()) }
        })
        .await;

        cluster.kill(leader);
        let killed_at = Instant::now();
        let before_kill = acknowledged.lock().unwrap().len();
        let failover = wait_for(
            "writes after the leader was killed",
            Duration::from_secs(30),
            || {
                let count = acknowledged.lock().unwrap().len();
                async move { (count > before_kill + 5).then(|| killed_at.elapsed()) }
            },
        )
        .await;
        eprintln!("writes resumed {failover:?} after SIGKILL of the leader");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in writers {
            writer.await.expect("writer task");
        }

        // Every acknowledged write is readable through both survivors.
        let written = acknowledged.lock().unwrap().clone();
        for (key, n) in &written {
            for &node in &survivors {
                let (status, body) = cluster
                    .root(node, "GET", &format!("secret/data/{key}"), None)
                    .await;
                assert_eq!(
                    status,
                    200,
                    "acknowledged write {key} lost on node {}: {body}",
                    node + 1
                );
                assert_eq!(body["data"]["data"]["n"], *n);
            }
        }

        // The killed node restarts sealed and catches up while sealed.
        cluster.spawn(leader);
        cluster.wait_http(leader).await;
        let (_, status) = cluster
            .call(leader, "GET", "sys/seal-status", None, None)
            .await;
        assert_eq!(status["sealed"], true);
        let (status, _) = cluster
            .root(
                survivors[0],
                "POST",
                "secret/data/after-restart",
                Some(json!({"data": {"v": "newest"}})),
            )
            .await;
        assert_eq!(status, 200);
        let target = cluster.applied_index(survivors[0]).await;
        wait_for(
            "the restarted node to catch up while sealed",
            Duration::from_secs(30),
            || async { (cluster.applied_index(leader).await >= target).then_some(()) },
        )
        .await;
        let (_, status) = cluster
            .call(leader, "GET", "sys/seal-status", None, None)
            .await;
        assert_eq!(status["sealed"], true, "catching up must not unseal");

        cluster.unseal(leader).await;
        let (status, body) = cluster
            .root(leader, "GET", "secret/data/after-restart", None)
            .await;
        assert_eq!(
            (status, body["data"]["data"]["v"].clone()),
            (200, json!("newest"))
        );
        let (key, n) = written.last().expect("at least one write").clone();
        let (_, body) = cluster
            .root(leader, "GET", &format!("secret/data/{key}"), None)
            .await;
        assert_eq!(body["data"]["data"]["n"], n);
    })
    .await;
}
