//! The on-disk layout and announcements of `strongroom dev`: free loopback ports per node, each
//! node's `ServerConfig`, the data directory (a temporary one removed on exit, or a kept
//! `--data-dir`), the banner printed once the cluster is ready, and the `--info-file` JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::config::{DEFAULT_MAX_REQUEST_BYTES, PeerConfig, ServerConfig};

/// The addresses chosen for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's id (1-based).
    pub id: u64,
    /// The HTTP API port on 127.0.0.1.
    pub api_port: u16,
    /// The cluster (gRPC) port on 127.0.0.1.
    pub cluster_port: u16,
}

impl NodePlan {
    /// `127.0.0.1:PORT` of the HTTP listener.
    pub fn api_listen(&self) -> String {
        format!("127.0.0.1:{}", self.api_port)
    }

    /// `http://127.0.0.1:PORT`, the URL clients use.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    /// `127.0.0.1:PORT` of the cluster listener.
    pub fn cluster_addr(&self) -> String {
        format!("127.0.0.1:{}", self.cluster_port)
    }
}

/// What `--info-file` holds. Not `Debug`: it carries the root token and the unseal keys.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
pub struct DevInfo {
    /// The nodes' addresses.
    pub nodes: Vec<DevNodeInfo>,
    /// The initial root token.
    pub root_token: String,
    /// All unseal key shares, base64.
    pub keys_base64: Vec<String>,
    /// How many shares unseal a node.
    pub threshold: u8,
}

/// One node in the info file.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DevNodeInfo {
    /// The node's id.
    pub id: u64,
    /// `http://127.0.0.1:PORT`.
    pub api_addr: String,
    /// `127.0.0.1:PORT`.
    pub cluster_addr: String,
}

/// Picks two free loopback ports per node. All listeners are held until every port is chosen,
/// so no port is picked twice.
pub fn plan_nodes(n: u8) -> anyhow::Result<Vec<NodePlan>> {
    let listeners = (0..2 * usize::from(n))
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot find free loopback ports")?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot read a listener's port")?;
    Ok(ports
        .chunks_exact(2)
        .zip(1u64..)
        .map(|(pair, id)| NodePlan {
            id,
            api_port: pair[0],
            cluster_port: pair[1],
        })
        .collect())
}

/// The config of node `me` in a cluster of `all`, storing its data in `data_dir`.
pub fn node_config(me: &NodePlan, all: &[NodePlan], data_dir: &Path) -> ServerConfig {
    ServerConfig {
        node_id: me.id,
        data_dir: data_dir.to_path_buf(),
        api_addr: me.api_listen(),
        cluster_addr: me.cluster_addr(),
        grpc_addr: None,
        log_level: None,
        raft: Default::default(),
        max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
        audit: Default::default(),
        seal: Default::default(),
        peers: all
            .iter()
            .map(|p| PeerConfig {
                id: p.id,
                api_addr: p.api_listen(),
                cluster_addr: p.cluster_addr(),
            })
            .collect(),
    }
}

/// The text printed once the cluster is ready. `active` indexes the node the exports point at.
pub fn banner(info: &DevInfo, active: usize, dir: &Path, kept: bool) -> String {
    let mut s = String::new();
    let n = info.nodes.len();
    let _ = writeln!(
        s,
        "==> Strongroom dev cluster: {n} nodes, initialized and unsealed\n"
    );
    for node in &info.nodes {
        let _ = writeln!(
            s,
            "    Node {}: API {}    cluster {}",
            node.id, node.api_addr, node.cluster_addr
        );
    }
    let fate = if kept { "kept" } else { "removed on exit" };
    let _ = writeln!(
        s,
        "\n    Configs, data and logs: {} ({fate})\n",
        dir.display()
    );
    for (i, k) in info.keys_base64.iter().enumerate() {
        let _ = writeln!(s, "Unseal Key {}: {k}", i + 1);
    }
    let _ = writeln!(
        s,
        "Unseal Threshold: {} of {}",
        info.threshold,
        info.keys_base64.len()
    );
    let _ = writeln!(s, "Root Token: {}\n", info.root_token);
    let addr = info
        .nodes
        .get(active)
        .or(info.nodes.first())
        .map(|n| n.api_addr.as_str())
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "You may need to set the following environment variables:\n"
    );
    let _ = writeln!(s, "    export VAULT_ADDR='{addr}'");
    let _ = writeln!(s, "    export STRONGROOM_ADDR='{addr}'");
    let _ = writeln!(s, "    export STRONGROOM_TOKEN='{}'", info.root_token);
    let _ = writeln!(s, "    export VAULT_TOKEN='{}'\n", info.root_token);
    let _ = writeln!(
        s,
        "Development mode should NOT be used in production installations!\n\
         Press Ctrl-C to stop the cluster."
    );
    s
}

/// Writes the info file atomically (a 0600 temporary file in the same directory, renamed).
pub fn write_info_file(path: &Path, info: &DevInfo) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("cannot create a temporary file in {}", parent.display()))?;
    serde_json::to_writer_pretty(&mut tmp, info)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Where the dev cluster keeps its files.
pub enum DataDir {
    /// A fresh temporary directory, removed on exit.
    Temp(tempfile::TempDir),
    /// A directory given with `--data-dir`, kept.
    Kept(PathBuf),
}

impl DataDir {
    /// Creates the temporary directory, or checks that `dir` is absent or empty and creates it.
    pub fn create(dir: Option<&Path>) -> anyhow::Result<DataDir> {
        let Some(dir) = dir else {
            let tmp = tempfile::Builder::new()
                .prefix("strongroom-dev-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            return Ok(DataDir::Temp(tmp));
        };
        let dir = std::path::absolute(dir)
            .with_context(|| format!("invalid --data-dir {}", dir.display()))?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "--data-dir {} is not empty; strongroom dev needs a fresh directory",
                dir.display()
            );
        }
        Ok(DataDir::Kept(dir))
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        match self {
            DataDir::Temp(t) => t.path(),
            DataDir::Kept(p) => p,
        }
    }

    /// Removes a temporary directory; a kept one is left as it is.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            DataDir::Temp(t) => {
                let shown = t.path().display().to_string();
                t.close().with_context(|| format!("cannot remove {shown}"))
            }
            DataDir::Kept(p) => {
                eprintln!("==> configs, data and logs kept in {}", p.display());
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_info() -> DevInfo {
        DevInfo {
            nodes: vec![
                DevNodeInfo {
                    id: 1,
                    api_addr: "http://127.0.0.1:4001".into(),
                    cluster_addr: "127.0.0.1:4002".into(),
                },
                DevNodeInfo {
                    id: 2,
                    api_addr: "http://127.0.0.1:4003".into(),
                    cluster_addr: "127.0.0.1:4004".into(),
                },
            ],
            root_token: "s.root".into(),
            keys_base64: vec!["a2V5MQ==".into(), "a2V5Mg==".into()],
            threshold: 2,
        }
    }

    #[test]
    fn plans_distinct_ports() {
        let plans = plan_nodes(7).expect("ports");
        assert_eq!(
            plans.iter().map(|p| p.id).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>()
        );
        let mut ports: Vec<u16> = plans
            .iter()
            .flat_map(|p| [p.api_port, p.cluster_port])
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 14);
        assert_eq!(
            plans[0].api_url(),
            format!("http://127.0.0.1:{}", plans[0].api_port)
        );
    }

    #[test]
    fn node_configs_list_every_peer_and_round_trip() {
        let plans = plan_nodes(3).expect("ports");
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = node_config(&plans[1], &plans, &dir.path().join("node2"));
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.api_addr, plans[1].api_listen());
        assert_eq!(cfg.peers.len(), 3);
        let file = dir.path().join("node2.toml");
        std::fs::write(&file, cfg.to_toml()).expect("write");
        let back = ServerConfig::load(&file).expect("the written config loads");
        assert_eq!(back.node_id, 2);
        assert_eq!(back.cluster_addr, plans[1].cluster_addr());
        assert_eq!(back.data_dir, dir.path().join("node2"));
        assert_eq!(
            back.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn info_file_has_the_documented_shape_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("info.json");
        std::fs::write(&path, "old").expect("write");
        write_info_file(&path, &sample_info()).expect("write info");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(
            v,
            json!({"nodes":[{"id":1,"api_addr":"http://127.0.0.1:4001","cluster_addr":"127.0.0.1:4002"},
                            {"id":2,"api_addr":"http://127.0.0.1:4003","cluster_addr":"127.0.0.1:4004"}],
                   "root_token":"s.root","keys_base64":["a2V5MQ==","a2V5Mg=="],"threshold":2})
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o077, 0, "the info file holds secrets");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temp left"
        );
    }

    #[test]
    fn banner_shows_nodes_secrets_and_exports() {
        let b = banner(&sample_info(), 1, Path::new("/tmp/d"), false);
        assert!(
            b.contains("Node 1: API http://127.0.0.1:4001    cluster 127.0.0.1:4002\n"),
            "{b}"
        );
        assert!(b.contains("Node 2: API http://127.0.0.1:4003"), "{b}");
        assert!(b.contains("Unseal Key 2: a2V5Mg==\n"), "{b}");
        assert!(b.contains("Unseal Threshold: 2 of 2\n"), "{b}");
        assert!(b.contains("Root Token: s.root\n"), "{b}");
        assert!(
            b.contains("export VAULT_ADDR='http://127.0.0.1:4003'\n"),
            "{b}"
        );
        assert!(
            b.contains("export STRONGROOM_ADDR='http://127.0.0.1:4003'\n"),
            "{b}"
        );
        assert!(b.contains("export STRONGROOM_TOKEN='s.root'\n"), "{b}");
        assert!(b.contains("(removed on exit)"), "{b}");
    }

    #[test]
    fn data_dir_must_be_fresh() {
        let base = tempfile::tempdir().expect("tempdir");
        let fresh = base.path().join("new");
        let d = DataDir::create(Some(&fresh)).expect("fresh dir");
        assert!(fresh.is_dir());
        std::fs::write(fresh.join("x"), "").expect("write");
        d.finish().expect("kept");
        assert!(fresh.join("x").exists(), "a --data-dir is kept");
        assert!(DataDir::create(Some(&fresh)).is_err(), "not empty");
        let t = DataDir::create(None).expect("temp");
        let p = t.path().to_path_buf();
        assert!(p.is_dir());
        t.finish().expect("removed");
        assert!(!p.exists());
    }
}
