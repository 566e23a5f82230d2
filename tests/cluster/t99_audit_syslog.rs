//! The `syslog` audit sink end to end: node 1 sends one RFC 5424 message per journal record to a
//! Unix datagram socket bound in the test's temp dir (standing in for `/dev/log`). Every record
//! arrives, with the configured facility and tag; `sys/audit` lists the sink in Vault's shape
//! (type `syslog`, options `facility` and `tag`); no secret value appears in what was sent.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

/// Messages received by the stand-in syslog daemon.
type Received = Arc<Mutex<Vec<String>>>;

/// The record JSON of an RFC 5424 message (the 8th space-separated field on).
fn body(message: &str) -> Option<Value> {
    serde_json::from_str(message.splitn(8, ' ').nth(7)?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_sink_sends_every_record_as_one_message() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(3).await;
        let path = cluster.dir().join("syslog.sock");
        let daemon = UnixDatagram::bind(&path).expect("bind the syslog socket");
        daemon
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let received: Received = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0u8; 256 * 1024];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(len) = daemon.recv(&mut buffer) {
                        let text = String::from_utf8_lossy(&buffer[..len]).into_owned();
                        received.lock().unwrap().push(text);
                    }
                }
            })
        };
        cluster.stop(0).await;
        let config = cluster.config_path(0).to_path_buf();
        let mut text = fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[[audit.sink]]\ntype = \"syslog\"\npath = \"{}\"\nfacility = \"local4\"\ntag = \"sr-audit\"\n",
            path.display()
        ));
        fs::write(&config, text).unwrap();
        cluster.spawn(0);
        cluster.wait_http(0).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }

        let (status, body_) = cluster.root(0, "GET", "sys/audit", None).await;
        assert_eq!(status, 200, "{body_}");
        let sink = &body_["data"]["syslog/"];
        assert_eq!(sink["type"], "syslog", "{body_}");
        assert_eq!(sink["path"], "syslog/");
        assert_eq!(
            sink["options"],
            json!({"facility": "LOCAL4", "tag": "sr-audit"}),
            "{body_}"
        );
        assert_eq!(sink["local"], false);

        for n in 0..15 {
            let (status, reply) = cluster
                .root(
                    n % 3,
                    "POST",
                    &format!("secret/data/syslog/k{n}"),
                    Some(json!({"data": {"password": format!("syslog-canary-{n}-q9")}})),
                )
                .await;
            assert_eq!(status, 200, "{reply}");
        }
        let (status, log) = cluster
            .root(0, "GET", "sys/audit/log?limit=1&from=18446744073709551615", None)
            .await;
        assert_eq!(status, 200, "{log}");
        // The head read is itself recorded as head + 1 before it answers.
        let upto = log["data"]["head"]["seq"].as_u64().unwrap() + 1;
        wait_for(
            &format!("the syslog socket receives records 1..={upto}"),
            Duration::from_secs(60),
            || async {
                let got: BTreeSet<u64> = received
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|message| body(message)?["seq"].as_u64())
                    .collect();
                (1..=upto).all(|seq| got.contains(&seq)).then_some(())
            },
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();

        let messages = received.lock().unwrap().clone();
        for message in &messages {
            // LOCAL4 = 20; 20 * 8 + 6 (info) = 166.
            assert!(message.starts_with("<166>1 "), "{message}");
            let fields: Vec<&str> = message.splitn(8, ' ').collect();
            assert_eq!(fields[3], "sr-audit", "{message}");
            assert_eq!(fields[5], "audit", "{message}");
            assert!(body(message).is_some(), "one JSON record per message: {message}");
        }
        let seqs: Vec<u64> = messages
            .iter()
            .filter_map(|message| body(message)?["seq"].as_u64())
            .collect();
        assert!(
            seqs.windows(2).all(|pair| pair[0] < pair[1]),
            "in order, each once: {seqs:?}"
        );
        let all = messages.join("\n");
        assert!(!all.contains("syslog-canary-"), "a secret value reached syslog");
        assert!(!all.contains(&cluster.root_token), "the root token reached syslog");
    })
    .await;
}
