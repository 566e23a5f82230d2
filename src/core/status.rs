//! `sys/health` and `sys/leader`: what load balancers and clients ask a node about itself.
//! Any unsealed node serves requests; the Raft leader is reported as Vault's "active" node.
//! `sys/cluster-members` (not in Vault) lists the Raft membership's API addresses, so that
//! `strongroom operator unseal --all` can find every node while they are all sealed.

use serde::Serialize;

use super::Core;
use super::CoreError;
use super::unseal::VERSION;

/// Vault's health object (the status code is chosen by the HTTP edge from these fields).
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Whether the cluster is initialized.
    pub initialized: bool,
    /// Whether this node is sealed.
    pub sealed: bool,
    /// Whether this node is not the leader.
    pub standby: bool,
    /// Always false (no performance standbys; every unsealed node serves reads).
    pub performance_standby: bool,
    /// Always `disabled`.
    pub replication_performance_mode: &'static str,
    /// Always `disabled`.
    pub replication_dr_mode: &'static str,
    /// Seconds since the epoch.
    pub server_time_utc: u64,
    /// Server version.
    pub version: &'static str,
    /// The cluster's name, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// The cluster's id, once unsealed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

/// Vault's leader object.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderStatus {
    /// Always true.
    pub ha_enabled: bool,
    /// Whether this node is the leader.
    pub is_self: bool,
    /// When this node became active (not tracked; Vault's zero time).
    pub active_time: &'static str,
    /// The leader's API address (`http://host:port`), empty when unknown.
    pub leader_address: String,
    /// The leader's cluster address (`https://host:port` in Vault's style), empty when unknown.
    pub leader_cluster_address: String,
    /// Always false.
    pub performance_standby: bool,
    /// Always 0.
    pub performance_standby_last_remote_wal: u64,
    /// The committed Raft index known to this node.
    pub raft_committed_index: u64,
    /// The Raft index this node has applied.
    pub raft_applied_index: u64,
}

impl Core {
    /// This node's health.
    pub fn health(&self) -> Result<Health, CoreError> {
        let status = self.node.status();
        let sealed = self.is_sealed();
        let cluster = if sealed { None } else { self.cluster_info() };
        Ok(Health {
            initialized: self.is_initialized()?,
            sealed,
            standby: !status.is_leader,
            performance_standby: false,
            replication_performance_mode: "disabled",
            replication_dr_mode: "disabled",
            server_time_utc: super::now_secs(),
            version: VERSION,
            cluster_name: cluster.as_ref().map(|c| c.cluster_name.clone()),
            cluster_id: cluster.map(|c| c.cluster_id),
        })
    }

    /// Who leads the cluster, as this node sees it.
    pub fn leader(&self) -> LeaderStatus {
        let status = self.node.status();
        let (leader_address, leader_cluster_address) = match &status.leader {
            Some((_, info)) => (
                format!("http://{}", info.api_addr),
                format!("https://{}", info.cluster_addr),
            ),
            None => (String::new(), String::new()),
        };
        LeaderStatus {
            ha_enabled: true,
            is_self: status.is_leader,
            active_time: "0001-01-01T00:00:00Z",
            leader_address,
            leader_cluster_address,
            performance_standby: false,
            performance_standby_last_remote_wal: 0,
            raft_committed_index: status.committed_index,
            raft_applied_index: status.applied_index,
        }
    }

    /// The nodes of the Raft membership as this node knows it (served unauthenticated and while
    /// sealed: addresses only, as `sys/leader` already reveals the leader's).
    pub fn cluster_members(&self) -> serde_json::Value {
        let status = self.node.status();
        let leader = status.leader.as_ref().map(|(id, _)| *id);
        let members: Vec<serde_json::Value> = status
            .members
            .iter()
            .map(|(id, info, voter)| {
                serde_json::json!({
                    "node_id": id,
                    "api_addr": format!("http://{}", info.api_addr),
                    "cluster_addr": info.cluster_addr,
                    "voter": voter,
                    "is_self": *id == self.node.id(),
                    "is_leader": Some(*id) == leader,
                })
            })
            .collect();
        serde_json::json!({ "members": members })
    }

    /// The addresses this node was configured with.
    pub fn addresses(&self) -> &super::NodeAddresses {
        &self.addresses
    }
}
