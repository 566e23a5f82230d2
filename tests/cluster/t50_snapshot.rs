//! A node that fell behind past the purged log catches up through a snapshot.

use std::time::Duration;

use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::Tuning;
use crate::fixture::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_through_a_snapshot() {
    bounded(Duration::from_secs(240), async {
        let tuning = Tuning {
            snapshot_logs_since_last: 40,
            max_in_snapshot_log_to_keep: 5,
            purge_batch_size: 1,
        };
        let mut cluster = TestCluster::start_with(3, tuning).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let leader = cluster.wait_leader().await;
        let lagging = (leader + 1) % 3;
        let writer = (leader + 2) % 3;
        cluster.kill(lagging);

        for n in 0..150 {
            let (status, body) = cluster
                .root(
                    writer,
                    "POST",
                    &format!("secret/data/bulk/{}", n % 20),
                    Some(json!({"data": {"n": n}})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let target = cluster.applied_index(writer).await;

        cluster.spawn(lagging);
        cluster.wait_http(lagging).await;
        wait_for(
            "the lagging node to install a snapshot and catch up",
            Duration::from_secs(60),
            || async { (cluster.applied_index(lagging).await >= target).then_some(()) },
        )
        .await;
        assert!(
            cluster.log(lagging).contains("installed snapshot"),
            "the lagging node caught up without a snapshot: the log was not purged far enough"
        );
        cluster.unseal(lagging).await;
        let (status, body) = cluster
            .root(lagging, "GET", "secret/data/bulk/9", None)
            .await;
        assert_eq!(
            (status, body["data"]["data"]["n"].clone()),
            (200, json!(149))
        );
    })
    .await;
}
