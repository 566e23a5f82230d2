//! The `socket` audit sink end to end: node 1's server file streams its journal to a Unix
//! socket collector. The collector receives every record; while it is gone, requests keep
//! being served and the sink reports failing; once a collector listens again it receives every
//! record it missed. No secret value appears in what was collected.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use tokio::io::AsyncBufReadExt;
use tokio::io::BufReader;
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

/// Lines received by the collectors.
type Received = Arc<Mutex<Vec<String>>>;

/// A collector: accepts one connection at a time on `path` and keeps every line.
fn collect(path: &Path, received: Received) -> JoinHandle<()> {
    let _ = fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind the collector socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                received.lock().unwrap().push(line);
            }
        }
    })
}

fn seqs(received: &Received) -> BTreeSet<u64> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|value| value["seq"].as_u64())
        .collect()
}

async fn head(cluster: &TestCluster) -> u64 {
    let (status, body) = cluster
        .root(
            0,
            "GET",
            "sys/audit/log?limit=1&from=18446744073709551615",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["head"]["seq"].as_u64().unwrap()
}

async fn wait_received(received: &Received, upto: u64) {
    wait_for(
        &format!("the collector receives records 1..={upto}"),
        Duration::from_secs(60),
        || async move {
            let got = seqs(received);
            (1..=upto).all(|seq| got.contains(&seq)).then_some(())
        },
    )
    .await;
}

async fn write(cluster: &TestCluster, n: usize) {
    let (status, body) = cluster
        .root(
            n % 3,
            "POST",
            &format!("secret/data/socket/k{n}"),
            Some(json!({"data": {"password": format!("sock-canary-{n}-x7")}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_sink_streams_and_catches_up_after_the_collector_returns() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        let socket: PathBuf = cluster.dir().join("collector.sock");
        let received: Received = Arc::default();
        let collector = collect(&socket, received.clone());
        cluster.stop(0).await;
        let config = cluster.dir().join("node1.toml");
        let mut text = fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[audit.sink]]\ntype = \"socket\"\nsocket_type = \"unix\"\npath = \"{}\"\n",
            socket.display()
        ));
        fs::write(&config, text).unwrap();
        cluster.spawn(0);
        cluster.wait_http(0).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }

        let (status, body) = cluster.root(0, "GET", "sys/audit", None).await;
        assert_eq!(status, 200, "{body}");
        let sink = &body["data"]["socket/"];
        assert_eq!(sink["type"], "socket", "{body}");
        assert_eq!(sink["options"]["socket_type"], "unix");
        assert_eq!(sink["options"]["address"], socket.display().to_string());

        for n in 0..20 {
            write(&cluster, n).await;
        }
        // The head read is itself recorded (as head + 1) before it answers; once the collector
        // has that too, nothing is in flight to it (a record the kernel accepted for a collector
        // that dies unread is lost: a socket gives no acknowledgement).
        wait_received(&received, head(&cluster).await + 1).await;

        // The collector goes away: requests are still served, the sink reports failing.
        collector.abort();
        let _ = collector.await;
        fs::remove_file(&socket).unwrap();
        for n in 20..40 {
            write(&cluster, n).await;
        }
        wait_for(
            "the socket sink reports failing",
            Duration::from_secs(30),
            || async {
                let (_, body) = cluster.root(0, "GET", "sys/audit", None).await;
                (body["data"]["socket/"]["failing"] == true).then_some(())
            },
        )
        .await;

        // A collector listens again: it gets everything it missed.
        let collector = collect(&socket, received.clone());
        let upto = head(&cluster).await;
        wait_received(&received, upto).await;
        collector.abort();

        let all = received.lock().unwrap().join("\n");
        assert!(
            !all.contains("sock-canary-"),
            "a secret value reached the socket"
        );
        assert!(
            !all.contains(&cluster.root_token),
            "the root token reached the socket"
        );
    })
    .await;
}
