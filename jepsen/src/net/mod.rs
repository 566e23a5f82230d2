//! The network the cluster runs on, and network faults. Two modes:
//!
//! - `netns` (default): inside the sandbox ([`sandbox`]), each node in its own network
//!   namespace behind a bridge ([`netns`]); partitions and packet loss are iptables rules.
//!   Works as root and, through a user namespace, as an ordinary user where unprivileged user
//!   namespaces are allowed.
//! - `loopback`: every node on 127.0.0.1 with its own ports; no network faults (only process,
//!   clock and seal faults). The fallback where namespaces cannot be created.
//!
//! A per-link TCP proxy cannot work with this server: a node advertises its listen address to
//! its peers (`cluster_addr` is both), so no proxy can sit between two nodes.

pub mod cmd;
pub mod netns;
pub mod sandbox;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::TcpListener;

use anyhow::Context;
use serde::Serialize;

/// Nodes whose packets each node drops (node -> peers it does not hear).
pub type Grudge = BTreeMap<u64, BTreeSet<u64>>;

/// The network faults in force (replaced as a whole by [`Net::apply`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetFaults {
    /// Node -> peers whose packets it drops.
    pub drops: Grudge,
    /// Share (0..1) of every other peer packet each node drops.
    pub loss: f64,
    /// Nodes that drop what peers send to their cluster port: they receive no replication and
    /// no votes, yet their own calls to peers (Propose, ReadIndex, Vote) still get answers.
    pub lagging: BTreeSet<u64>,
}

/// The network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Network namespaces inside the sandbox.
    Netns,
    /// Plain loopback.
    Loopback,
}

/// Where one node listens.
#[derive(Debug, Clone)]
pub struct NodeAddrs {
    /// Node id.
    pub id: u64,
    /// HTTP API `host:port`.
    pub api: String,
    /// Cluster (Raft gRPC) `host:port`.
    pub cluster: String,
}

/// The cluster's network.
pub struct Net {
    mode: NetMode,
    netns: Option<netns::Netns>,
    addrs: Vec<NodeAddrs>,
}

/// Network faults need namespaces.
#[derive(Debug, thiserror::Error)]
#[error("network faults need the netns mode (this run uses loopback)")]
pub struct Unsupported;

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

impl Net {
    /// Sets up the network for nodes `1..=count`.
    pub fn setup(mode: NetMode, count: u64) -> anyhow::Result<Net> {
        let ids: Vec<u64> = (1..=count).collect();
        match mode {
            NetMode::Netns => {
                let created = netns::Netns::create(&ids).context("creating network namespaces")?;
                let addrs = ids
                    .iter()
                    .map(|&id| NodeAddrs {
                        id,
                        api: format!("{}:{}", netns::node_ip(id), netns::API_PORT),
                        cluster: format!("{}:{}", netns::node_ip(id), netns::CLUSTER_PORT),
                    })
                    .collect();
                Ok(Net {
                    mode,
                    netns: Some(created),
                    addrs,
                })
            }
            NetMode::Loopback => {
                let mut addrs = Vec::new();
                for &id in &ids {
                    addrs.push(NodeAddrs {
                        id,
                        api: format!("127.0.0.1:{}", free_port()?),
                        cluster: format!("127.0.0.1:{}", free_port()?),
                    });
                }
                Ok(Net {
                    mode,
                    netns: None,
                    addrs,
                })
            }
        }
    }

    /// The mode.
    pub fn mode(&self) -> NetMode {
        self.mode
    }

    /// Every node's addresses, by id order.
    pub fn addrs(&self) -> &[NodeAddrs] {
        &self.addrs
    }

    /// The command prefix that places a program in node `id`'s network (empty on loopback).
    pub fn exec_prefix(&self, id: u64) -> Vec<String> {
        self.netns
            .as_ref()
            .map(|n| n.exec_prefix(id))
            .unwrap_or_default()
    }

    /// True if partitions and packet loss are possible.
    pub fn supports_faults(&self) -> bool {
        self.netns.is_some()
    }

    /// Installs `faults`, replacing any earlier ones.
    pub fn apply(&self, faults: &NetFaults) -> anyhow::Result<()> {
        let netns = self.netns.as_ref().ok_or(Unsupported)?;
        netns.apply(faults)?;
        Ok(())
    }

    /// Removes every network fault (a no-op on loopback).
    pub fn heal(&self) -> anyhow::Result<()> {
        if let Some(netns) = &self.netns {
            netns.heal()?;
        }
        Ok(())
    }
}
