//! `strongroom dev --info-file F` starts a real local cluster, writes F once every node is
//! unsealed, and a KV write through one node reads back through another (as the README shows).

use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::Slot;
use crate::fixture::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_serves_reads_and_writes_on_every_node() {
    let _slot = Slot::acquire();
    bounded(Duration::from_secs(180), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let info_file = dir.path().join("info.json");
        let mut dev = Command::new(env!("CARGO_BIN_EXE_strongroom"))
            .arg("dev")
            .arg("--data-dir")
            .arg(dir.path().join("cluster"))
            .arg("--info-file")
            .arg(&info_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn strongroom dev");
        let info: Value = wait_for("the dev info file", Duration::from_secs(120), || {
            let text = std::fs::read_to_string(&info_file).ok();
            async move { text.and_then(|text| serde_json::from_str(&text).ok()) }
        })
        .await;
        let nodes = info["nodes"].as_array().expect("nodes").clone();
        assert_eq!(nodes.len(), 3);
        assert_eq!(info["threshold"], 3);
        assert_eq!(info["keys_base64"].as_array().map(Vec::len), Some(5));
        let token = info["root_token"].as_str().expect("root token").to_string();
        let http = reqwest::Client::new();
        let first = nodes[0]["api_addr"].as_str().expect("api_addr").to_string();
        let second = nodes[1]["api_addr"].as_str().expect("api_addr").to_string();
        let written = http
            .post(format!("{first}/v1/secret/data/hello"))
            .header("X-Vault-Token", &token)
            .json(&json!({"data": {"greeting": "hi"}}))
            .send()
            .await
            .expect("write");
        assert_eq!(written.status().as_u16(), 200);
        let read: Value = http
            .get(format!("{second}/v1/secret/data/hello"))
            .header("X-Vault-Token", &token)
            .send()
            .await
            .expect("read")
            .json()
            .await
            .expect("json");
        assert_eq!(read["data"]["data"]["greeting"], "hi");

        let pid = nix::unistd::Pid::from_raw(dev.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("signal dev");
        let status = wait_for("dev to exit", Duration::from_secs(30), || {
            let status = dev.try_wait().ok().flatten();
            async move { status }
        })
        .await;
        assert!(status.success(), "dev exited with {status}");
    })
    .await;
}
