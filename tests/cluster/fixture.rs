//! A real cluster for tests: `strongroom server` processes on free loopback ports, each with its
//! own temp data dir and log file, driven over HTTP. Waits are on conditions (polled with a
//! deadline), never fixed sleeps. Dropping the cluster kills every process; a failing test prints
//! the tail of each node's log.

use std::collections::BTreeSet;
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;
use std::sync::Condvar;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;
use serde_json::json;
use tempfile::TempDir;

/// Cluster tests that may run at once (each runs 3+ processes on a 2-core machine).
const MAX_CLUSTERS_AT_ONCE: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Holds one of the cluster slots until dropped.
pub struct Slot;

impl Slot {
    /// Blocks until a cluster slot is free.
    pub fn acquire() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= MAX_CLUSTERS_AT_ONCE {
            running = FREED.wait(running).unwrap_or_else(|p| p.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|p| p.into_inner());
        *running -= 1;
        FREED.notify_one();
    }
}

/// Picks a free loopback port (bind to port 0, read it, release it), never one this test binary
/// handed out before: the kernel may offer a just-released port again, and two nodes (or two
/// listeners of one node) must not be given the same one.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One node process.
pub struct TestNode {
    /// The node id.
    pub id: u64,
    /// `127.0.0.1:port` of the HTTP API.
    pub api_addr: String,
    /// `127.0.0.1:port` of the cluster port.
    pub cluster_addr: String,
    /// `127.0.0.1:port` of the client gRPC API.
    pub grpc_addr: String,
    /// The node's data dir.
    pub data_dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Extra environment variables for the node's process.
    env: Vec<(String, String)>,
}

impl TestNode {
    /// The node's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.api_addr)
    }
}

/// Raft tuning written into every node's config.
#[derive(Clone, Copy)]
pub struct Tuning {
    /// Entries between snapshots.
    pub snapshot_logs_since_last: u64,
    /// Entries kept after a snapshot.
    pub max_in_snapshot_log_to_keep: u64,
    /// Entries purged at a time.
    pub purge_batch_size: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            snapshot_logs_since_last: 10_000,
            max_in_snapshot_log_to_keep: 1_000,
            purge_batch_size: 256,
        }
    }
}

/// A running cluster.
pub struct TestCluster {
    _slot: Slot,
    dir: TempDir,
    /// The nodes, index = id - 1.
    pub nodes: Vec<TestNode>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The root token, after [`TestCluster::init`].
    pub root_token: String,
    /// The unseal keys (base64), after [`TestCluster::init`].
    pub keys: Vec<String>,
}

impl TestCluster {
    /// Starts `count` nodes forming one cluster (sealed, uninitialized).
    pub async fn start(count: usize) -> TestCluster {
        TestCluster::start_with(count, Tuning::default()).await
    }

    /// Starts `count` nodes with the given Raft tuning.
    pub async fn start_with(count: usize, tuning: Tuning) -> TestCluster {
        TestCluster::start_custom(count, tuning, "", &[]).await
    }

    /// Starts `count` nodes with `extra_toml` appended to every node's config file and `env`
    /// set for every node's process.
    pub async fn start_custom(
        count: usize,
        tuning: Tuning,
        extra_toml: &str,
        env: &[(&str, &str)],
    ) -> TestCluster {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        TestCluster::start_with_node_env(count, tuning, extra_toml, |_| env.clone()).await
    }

    /// [`TestCluster::start_custom`] with each node's environment given by `env_of(node id)`.
    pub async fn start_with_node_env(
        count: usize,
        tuning: Tuning,
        extra_toml: &str,
        env_of: impl Fn(u64) -> Vec<(String, String)>,
    ) -> TestCluster {
        let slot = Slot::acquire();
        let dir = tempfile::Builder::new()
            .prefix("strongroom-test-")
            .tempdir()
            .expect("temp dir");
        let nodes: Vec<TestNode> = (1..=count as u64)
            .map(|id| TestNode {
                id,
                api_addr: format!("127.0.0.1:{}", free_port()),
                cluster_addr: format!("127.0.0.1:{}", free_port()),
                grpc_addr: format!("127.0.0.1:{}", free_port()),
                data_dir: dir.path().join(format!("node{id}")),
                config_path: dir.path().join(format!("node{id}.toml")),
                log_path: dir.path().join(format!("node{id}.log")),
                child: None,
                env: env_of(id),
            })
            .collect();
        let peers: String = nodes
            .iter()
            .map(|n| {
                format!(
                    "[[peers]]\nid = {}\napi_addr = \"{}\"\ncluster_addr = \"{}\"\n\n",
                    n.id, n.api_addr, n.cluster_addr
                )
            })
            .collect();
        for node in &nodes {
            let config = format!(
                "node_id = {}\ndata_dir = \"{}\"\napi_addr = \"{}\"\ncluster_addr = \"{}\"\ngrpc_addr = \"{}\"\n\n[raft]\nsnapshot_logs_since_last = {}\nmax_in_snapshot_log_to_keep = {}\npurge_batch_size = {}\n\n{peers}{extra_toml}",
                node.id,
                node.data_dir.display(),
                node.api_addr,
                node.cluster_addr,
                node.grpc_addr,
                tuning.snapshot_logs_since_last,
                tuning.max_in_snapshot_log_to_keep,
                tuning.purge_batch_size,
            );
            fs::write(&node.config_path, config).expect("write node config");
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        let mut cluster = TestCluster {
            _slot: slot,
            dir,
            nodes,
            http,
            root_token: String::new(),
            keys: Vec::new(),
        };
        for index in 0..count {
            cluster.spawn(index);
        }
        for index in 0..count {
            cluster.wait_http(index).await;
        }
        cluster
    }

    /// Starts (or restarts) node `index`'s process.
    pub fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .expect("open log");
        let child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
            .arg("server")
            .arg("--config")
            .arg(&node.config_path)
            .env("RUST_LOG", "info")
            .envs(node.env.iter().map(|(key, value)| (key, value)))
            .stdout(Stdio::from(log.try_clone().expect("clone log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn strongroom server");
        node.child = Some(child);
    }

    /// Kills node `index` with SIGKILL and reaps it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `index` with SIGTERM (graceful) and waits for it to exit.
    pub async fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let waited = wait_for("graceful exit", Duration::from_secs(20), || {
                let status = child.try_wait().ok().flatten();
                async move { status }
            })
            .await;
            assert!(waited.success(), "node {} exited with {waited}", index + 1);
        }
    }

    /// Waits up to `timeout` for node `index`'s process to exit on its own; `None` if it is
    /// still running (it is then left running).
    pub async fn wait_exit(
        &mut self,
        index: usize,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let child = self.nodes[index].child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.nodes[index].child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The config file of node `index`.
    pub fn config_path(&self, index: usize) -> &std::path::Path {
        &self.nodes[index].config_path
    }

    /// Waits until node `index` answers HTTP at all.
    pub async fn wait_http(&self, index: usize) {
        let url = format!("{}/v1/sys/seal-status", self.nodes[index].url());
        let http = self.http.clone();
        wait_for(
            &format!("node {} HTTP", index + 1),
            Duration::from_secs(60),
            || {
                let (http, url) = (http.clone(), url.clone());
                async move { http.get(url).send().await.ok().map(|_| ()) }
            },
        )
        .await;
    }

    /// A JSON request to node `index`; returns (status, body or Null).
    pub async fn call(
        &self,
        index: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}/v1/{path}", self.nodes[index].url());
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(err) => (0, json!({ "transport_error": err.to_string() })),
        }
    }

    /// A request with the root token.
    pub async fn root(
        &self,
        index: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call(index, method, path, body, Some(&self.root_token.clone()))
            .await
    }

    /// Initializes the cluster through node `index` (5 shares, threshold 3), retrying while no
    /// leader is elected yet.
    pub async fn init(&mut self, index: usize) {
        let body = json!({"secret_shares": 5, "secret_threshold": 3});
        let this = &*self;
        let result = wait_for("sys/init", Duration::from_secs(60), || {
            let body = body.clone();
            async move {
                let (status, value) = this.call(index, "PUT", "sys/init", Some(body), None).await;
                (status == 200).then_some(value)
            }
        })
        .await;
        self.root_token = result["root_token"]
            .as_str()
            .expect("root_token")
            .to_string();
        self.keys = result["keys_base64"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k.as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(self.keys.len(), 5);
    }

    /// Unseals node `index` with the given key indexes; returns the last seal status.
    pub async fn unseal_with(&self, index: usize, key_indexes: &[usize]) -> Value {
        let mut last = Value::Null;
        for &key in key_indexes {
            let (status, value) = self
                .call(
                    index,
                    "PUT",
                    "sys/unseal",
                    Some(json!({"key": self.keys[key]})),
                    None,
                )
                .await;
            assert_eq!(
                status,
                200,
                "unseal node {} with key {key}: {value}",
                index + 1
            );
            last = value;
        }
        last
    }

    /// Unseals node `index` with keys 0, 1, 2 and checks it reports unsealed.
    pub async fn unseal(&self, index: usize) {
        let status = self.unseal_with(index, &[0, 1, 2]).await;
        assert_eq!(
            status["sealed"],
            false,
            "node {} still sealed: {status}",
            index + 1
        );
    }

    /// The index of the current leader, as reported by node `ask`.
    pub async fn leader_index(&self, ask: usize) -> Option<usize> {
        let (status, value) = self.call(ask, "GET", "sys/leader", None, None).await;
        if status != 200 {
            return None;
        }
        let address = value["leader_address"].as_str()?;
        self.nodes.iter().position(|node| address == node.url())
    }

    /// Waits until some live node reports a leader; returns its index.
    pub async fn wait_leader(&self) -> usize {
        wait_for("a leader", Duration::from_secs(30), || async {
            for index in 0..self.nodes.len() {
                if self.nodes[index].child.is_some()
                    && let Some(leader) = self.leader_index(index).await
                {
                    return Some(leader);
                }
            }
            None
        })
        .await
    }

    /// `raft_applied_index` of node `index`.
    pub async fn applied_index(&self, index: usize) -> u64 {
        let (_, value) = self.call(index, "GET", "sys/leader", None, None).await;
        value["raft_applied_index"].as_u64().unwrap_or(0)
    }

    /// The log file of node `index`.
    pub fn log(&self, index: usize) -> String {
        fs::read_to_string(&self.nodes[index].log_path).unwrap_or_default()
    }

    /// The temp directory holding every node's files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
        if std::thread::panicking() {
            // Keep the whole logs of a failed test where CI and people can find them.
            let kept = std::env::temp_dir()
                .join("strongroom-failed-tests")
                .join(self.dir.path().file_name().unwrap_or_default());
            if std::fs::create_dir_all(&kept).is_ok() {
                for node in &self.nodes {
                    if let Some(name) = node.log_path.file_name() {
                        let _ = std::fs::copy(&node.log_path, kept.join(name));
                    }
                }
                eprintln!("---- node logs kept in {} ----", kept.display());
            }
            for (index, node) in self.nodes.iter().enumerate() {
                let log = self.log(index);
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!(
                    "---- node {} log tail ({}) ----",
                    node.id,
                    node.log_path.display()
                );
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}
