//! A 3-node Strongroom cluster started from the release binary with its own configs (HTTP, client
//! gRPC and cluster listeners on free loopback ports), then initialized and unsealed over HTTP.

use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context as _;
use anyhow::bail;
use serde_json::Value;
use serde_json::json;
use strongroom::cli::client::Client;
use strongroom::config::DEFAULT_MAX_REQUEST_BYTES;
use strongroom::config::PeerConfig;
use strongroom::config::ServerConfig;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

use super::Proc;
use super::free_ports;
use crate::client::ENCRYPT_PATH;
use crate::client::Prepared;
use crate::client::TRANSIT_KEY_PATH;
use crate::workload::TRANSIT_PLAINTEXT_BYTES;

/// One node's addresses.
#[derive(Debug, Clone)]
pub struct NodeAddrs {
    /// Raft node id.
    pub id: u64,
    /// `127.0.0.1:PORT` of the HTTP API.
    pub api: String,
    /// `127.0.0.1:PORT` of the client gRPC API.
    pub grpc: String,
}

/// A running, unsealed cluster; the nodes are stopped when it is dropped.
pub struct Cluster {
    /// The nodes, in id order.
    pub nodes: Vec<NodeAddrs>,
    procs: Vec<Proc>,
    /// The root token.
    pub token: String,
}

impl Cluster {
    /// Starts `n` nodes of `binary` with data under `dir`, initializes and unseals them.
    pub async fn start(binary: &Path, dir: &Path, n: usize) -> anyhow::Result<Cluster> {
        let ports = free_ports(3 * n)?;
        let nodes: Vec<NodeAddrs> = ports
            .chunks_exact(3)
            .zip(1u64..)
            .map(|(p, id)| NodeAddrs {
                id,
                api: format!("127.0.0.1:{}", p[0]),
                grpc: format!("127.0.0.1:{}", p[2]),
            })
            .collect();
        let peers: Vec<PeerConfig> = ports
            .chunks_exact(3)
            .zip(1u64..)
            .map(|(p, id)| PeerConfig {
                id,
                api_addr: format!("127.0.0.1:{}", p[0]),
                cluster_addr: format!("127.0.0.1:{}", p[1]),
            })
            .collect();
        let mut procs = Vec::new();
        for (node, peer) in nodes.iter().zip(&peers) {
            let node_dir = dir.join(format!("node{}", node.id));
            std::fs::create_dir_all(&node_dir)?;
            let config = ServerConfig {
                node_id: node.id,
                data_dir: node_dir.join("data"),
                api_addr: node.api.clone(),
                cluster_addr: peer.cluster_addr.clone(),
                grpc_addr: Some(node.grpc.clone()),
                log_level: None,
                max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
                raft: Default::default(),
                peers: peers.clone(),
                audit: Default::default(),
                seal: Default::default(),
            };
            let config_path = node_dir.join("node.toml");
            std::fs::write(&config_path, config.to_toml())?;
            let mut command = Command::new(binary);
            command.arg("server").arg("--config").arg(&config_path);
            procs.push(Proc::spawn(
                &format!("strongroom node {}", node.id),
                command,
                &node_dir.join("server.log"),
            )?);
        }
        let mut cluster = Cluster {
            nodes,
            procs,
            token: String::new(),
        };
        cluster.token = cluster.init_and_unseal().await?;
        Ok(cluster)
    }

    /// The server process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }

    /// The process id of node `id`.
    pub fn pid_of(&self, id: u64) -> Option<u32> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .map(|i| self.procs[i].pid())
    }

    async fn init_and_unseal(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = client(&self.nodes[0], None)?;
        let init = loop {
            self.check_alive()?;
            let body = json!({ "secret_shares": 3, "secret_threshold": 2 });
            match first.put("sys/init", &body).await {
                Ok(Some(value)) => break value,
                Ok(None) => bail!("sys/init answered without a body"),
                Err(err) if Instant::now() < deadline => {
                    tracing_free_wait(&format!("init: {err}")).await;
                }
                Err(err) => return Err(err).context("sys/init"),
            }
        };
        let token = init["root_token"]
            .as_str()
            .context("no root_token in sys/init answer")?
            .to_string();
        let keys: Vec<String> = init["keys_base64"]
            .as_array()
            .context("no keys_base64")?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        for node in self.nodes.clone() {
            let c = client(&node, None)?;
            loop {
                self.check_alive()?;
                if Instant::now() > deadline {
                    bail!("node {} did not unseal in time", node.id);
                }
                let status = c.get("sys/seal-status").await.ok().flatten();
                let flag = |k: &str| {
                    status
                        .as_ref()
                        .and_then(|s| s.get(k))
                        .and_then(Value::as_bool)
                };
                if flag("sealed") == Some(false) {
                    break;
                }
                if flag("initialized") != Some(true) {
                    tracing_free_wait("not initialized yet").await;
                    continue;
                }
                let progress = status
                    .as_ref()
                    .and_then(|s| s["progress"].as_u64())
                    .unwrap_or(0) as usize;
                let key = &keys[progress % keys.len()];
                let _ = c.put("sys/unseal", &json!({ "key": key })).await;
            }
        }
        Ok(token)
    }

    /// The current leader's and one follower's node, waiting until every node names the same leader.
    pub async fn leader_and_follower(&mut self) -> anyhow::Result<(NodeAddrs, NodeAddrs)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.check_alive()?;
            let mut leaders = Vec::new();
            for node in &self.nodes {
                let answer = client(node, None)?.get("sys/leader").await.ok().flatten();
                leaders.push(
                    answer
                        .and_then(|a| a["leader_address"].as_str().map(str::to_string))
                        .unwrap_or_default(),
                );
            }
            let first = leaders[0].clone();
            if !first.is_empty() && leaders.iter().all(|l| *l == first) {
                let leader_api = first.trim_start_matches("http://");
                let leader = self.nodes.iter().find(|n| n.api == leader_api).cloned();
                let follower = self.nodes.iter().find(|n| n.api != leader_api).cloned();
                if let (Some(leader), Some(follower)) = (leader, follower) {
                    return Ok((leader, follower));
                }
            }
            if Instant::now() > deadline {
                bail!("the nodes do not agree on a leader: {leaders:?}");
            }
            tracing_free_wait("no agreed leader").await;
        }
    }

    /// Sets up what the transit and login workloads need, through `node`: a transit mount with
    /// an `aes256-gcm96` key `bench`, one ciphertext of [`TRANSIT_PLAINTEXT_BYTES`], and an
    /// AppRole role `bench` with its role id and an unlimited secret id.
    pub async fn prepare(&self, node: &NodeAddrs) -> anyhow::Result<Prepared> {
        let c = client(node, Some(self.token.clone()))?;
        let data = |answer: Option<Value>, field: &str| -> anyhow::Result<String> {
            answer
                .as_ref()
                .and_then(|a| a["data"][field].as_str())
                .map(str::to_string)
                .with_context(|| format!("no data.{field} in {answer:?}"))
        };
        c.post("sys/mounts/transit", &json!({"type": "transit"}))
            .await
            .context("mounting transit")?;
        c.post(TRANSIT_KEY_PATH, &json!({"type": "aes256-gcm96"}))
            .await
            .context("creating the transit key")?;
        let plaintext: Vec<u8> = (0..TRANSIT_PLAINTEXT_BYTES)
            .map(|i| (i % 251) as u8)
            .collect();
        let encrypt = json!({"plaintext": STANDARD.encode(&plaintext)});
        let ciphertext = data(
            c.post(ENCRYPT_PATH, &encrypt).await.context("encrypting")?,
            "ciphertext",
        )?;
        c.post("sys/auth/approle", &json!({"type": "approle"}))
            .await
            .context("enabling approle")?;
        c.post(
            "auth/approle/role/bench",
            &json!({"token_ttl": "1h", "token_policies": ["default"]}),
        )
        .await
        .context("creating the approle role")?;
        let role_id = data(
            c.get("auth/approle/role/bench/role-id")
                .await
                .context("reading the role id")?,
            "role_id",
        )?;
        let secret_id = data(
            c.post("auth/approle/role/bench/secret-id", &json!({}))
                .await
                .context("making a secret id")?,
            "secret_id",
        )?;
        let bytes = |value: Value| serde_json::to_vec(&value).map(Bytes::from);
        Ok(Prepared {
            encrypt: bytes(encrypt)?,
            decrypt: bytes(json!({"ciphertext": ciphertext}))?,
            login: bytes(json!({"role_id": role_id, "secret_id": secret_id}))?,
        })
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        self.procs.iter_mut().try_for_each(Proc::check_alive)
    }

    /// Stops every node.
    pub fn stop(&mut self) {
        for proc in &mut self.procs {
            proc.stop();
        }
    }
}

fn client(node: &NodeAddrs, token: Option<String>) -> anyhow::Result<Client> {
    Ok(Client::with_timeout(
        &format!("http://{}", node.api),
        token,
        Duration::from_secs(5),
    )?)
}

async fn tracing_free_wait(_why: &str) {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The `strongroom` binary next to this one (both are built by `cargo build --release`).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("strongroom")))
        .unwrap_or_else(|| PathBuf::from("strongroom"))
}
