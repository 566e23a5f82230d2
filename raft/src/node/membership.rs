//! Cluster membership: the configuration as this node sees it, and changes to it (remove a node,
//! add a node back) made by the leader through openraft's joint consensus, from any node: a
//! follower hands the change to the leader with the `ChangeMembership` RPC, as it does writes.
//!
//! - Remove: the node leaves the membership entirely (not kept as a learner). Removing the
//!   leader is refused (move leadership first), so a change never empties the voter set. The
//!   leader stops replicating to a removed node at once; the removed node does not learn it was
//!   removed, so it keeps its old configuration and looks for a leader. Pre-vote (enabled in
//!   [`super::RaftNode::start`]) keeps it from raising its term and disturbing the cluster, and a
//!   leader refuses its `Propose` and `ReadIndex` calls ([`RaftNode::is_member`]): it serves no
//!   linearizable read and commits nothing until it is added back.
//! - Add: the node joins as a learner, the leader waits until it has caught up (by log or
//!   snapshot), then promotes it to voter. Adding a node that is already a voter at the same
//!   addresses changes nothing. If catching up times out the node stays a learner (it does not
//!   count for quorum) and the call fails; calling again finishes the job.
//!
//! A restarted node never re-forms the cluster from its static peer list: it is initialized (it
//! has a log and a vote), and its membership comes from its log.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ChangeMembershipError;
use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use tokio::time::Instant;

use super::RaftNode;
use crate::error::StoreError;
use crate::network::pb;
use crate::types::NodeId;
use crate::types::NodeInfo;

/// How long adding a node may take (catching up included) before the call fails.
const ADD_TIMEOUT: Duration = Duration::from_secs(60);
/// How long removing a node may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(15);

/// A change to the cluster's membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Remove the node (voter or learner) from the membership.
    Remove(NodeId),
    /// Add the node: as a learner, then, once it has caught up, as a voter.
    Add(NodeId, NodeInfo),
}

/// One member of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The node's id.
    pub id: NodeId,
    /// Its addresses.
    pub info: NodeInfo,
    /// Whether it votes (false: a learner).
    pub voter: bool,
    /// Whether it is the leader this node knows of.
    pub leader: bool,
}

/// The membership configuration in force on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    /// The log index of the membership entry (0 before any).
    pub index: u64,
    /// Every member, by id.
    pub servers: Vec<Server>,
    /// True while a change is half done (joint consensus: two voter sets).
    pub joint: bool,
}

impl RaftNode {
    /// The membership configuration this node has (the latest it has appended).
    pub fn configuration(&self) -> Configuration {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let stored = &metrics.membership_config;
        let membership = stored.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let servers = membership
            .nodes()
            .map(|(id, info)| Server {
                id: *id,
                info: info.clone(),
                voter: voters.contains(id),
                leader: metrics.current_leader == Some(*id),
            })
            .collect();
        Configuration {
            index: stored.log_id().as_ref().map_or(0, |log_id| log_id.index),
            servers,
            joint: membership.get_joint_config().len() > 1,
        }
    }

    /// Whether `id` is a voter or learner of the membership this node has.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .get_node(&id)
            .is_some()
    }

    /// Makes `change` through the leader (this node, or handed over with `ChangeMembership`)
    /// and returns the log index of the membership now in force.
    pub async fn change_membership(&self, change: MembershipChange) -> Result<u64, StoreError> {
        let timeout = match change {
            MembershipChange::Remove(_) => REMOVE_TIMEOUT,
            MembershipChange::Add(..) => ADD_TIMEOUT,
        };
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.wait_for_leader(deadline).await?;
            let attempt = if leader == self.id {
                self.change_membership_as_leader(&change, deadline).await?
            } else {
                self.change_membership_remote(leader, &change, deadline)
                    .await?
            };
            match attempt {
                Some(index) => return Ok(index),
                None => self.wait_for_leader_change(leader, deadline).await?,
            }
        }
    }

    /// Makes `change` on this node as leader. `Ok(None)`: not the leader (nothing changed).
    pub(crate) async fn change_membership_as_leader(
        &self,
        change: &MembershipChange,
        deadline: Instant,
    ) -> Result<Option<u64>, StoreError> {
        if !self.status().is_leader {
            return Ok(None);
        }
        let work = async {
            match change {
                MembershipChange::Remove(id) => self.remove_as_leader(*id).await,
                MembershipChange::Add(id, info) => self.add_as_leader(*id, info).await,
            }
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "the membership change did not finish in time ({change:?}); it may be partly done"
            ))),
        }
    }

    async fn remove_as_leader(&self, id: NodeId) -> Result<Option<u64>, StoreError> {
        let current = self.configuration();
        if current.servers.iter().all(|server| server.id != id) {
            return Err(StoreError::Refused(format!(
                "unknown server id {id}: not in the cluster's configuration"
            )));
        }
        if id == self.id {
            return Err(StoreError::Refused(format!(
                "node {id} is the leader; it cannot remove itself (move leadership to another node first)"
            )));
        }
        let voters: Vec<NodeId> = current
            .servers
            .iter()
            .filter(|server| server.voter)
            .map(|server| server.id)
            .collect();
        if voters == [id] {
            return Err(StoreError::Refused(format!(
                "node {id} is the last voter; it cannot be removed"
            )));
        }
        let ids = BTreeSet::from([id]);
        let changes = if voters.contains(&id) {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.write_membership(changes).await
    }

    async fn add_as_leader(&self, id: NodeId, info: &NodeInfo) -> Result<Option<u64>, StoreError> {
        let current = self.configuration();
        if let Some(server) = current.servers.iter().find(|server| server.id == id) {
            if server.info != *info {
                return Err(StoreError::Refused(format!(
                    "node {id} is already a member at other addresses ({}); remove it first",
                    server.info
                )));
            }
            if server.voter {
                return Ok(Some(current.index));
            }
        }
        let added = self.raft.add_learner(id, info.clone(), true).await;
        if let Err(err) = added {
            return map_write_error(err).map(|_| None);
        }
        let mut ids = BTreeSet::new();
        ids.insert(id);
        self.write_membership(ChangeMembers::AddVoterIds(ids)).await
    }

    async fn write_membership(
        &self,
        changes: ChangeMembers<NodeId, NodeInfo>,
    ) -> Result<Option<u64>, StoreError> {
        match self.raft.change_membership(changes, false).await {
            Ok(response) => Ok(Some(response.log_id.index)),
            Err(err) => map_write_error(err).map(|_| None),
        }
    }

    async fn change_membership_remote(
        &self,
        leader: NodeId,
        change: &MembershipChange,
        deadline: Instant,
    ) -> Result<Option<u64>, StoreError> {
        let mut client = self.leader_client(leader)?;
        let change = match change {
            MembershipChange::Remove(id) => pb::membership_request::Change::Remove(*id),
            MembershipChange::Add(id, info) => pb::membership_request::Change::Add(pb::AddMember {
                id: *id,
                api_addr: info.api_addr.clone(),
                cluster_addr: info.cluster_addr.clone(),
            }),
        };
        let request = pb::MembershipRequest {
            change: Some(change),
        };
        let call = client.change_membership(request);
        let response = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                return Err(StoreError::Indeterminate(format!(
                    "handing the membership change to leader {leader} failed: {}",
                    status.message()
                )));
            }
            Err(_) => {
                return Err(StoreError::Indeterminate(format!(
                    "leader {leader} did not answer the membership change in time"
                )));
            }
        };
        match response.result {
            Some(pb::membership_response::Result::Index(index)) => Ok(Some(index)),
            Some(pb::membership_response::Result::NotLeader(_)) => Ok(None),
            Some(pb::membership_response::Result::Refused(message)) => {
                Err(StoreError::Refused(message))
            }
            Some(pb::membership_response::Result::Failed(message)) => {
                Err(StoreError::Unavailable(message))
            }
            None => Err(StoreError::Indeterminate(
                "empty membership response from leader".into(),
            )),
        }
    }
}

/// Maps a failed membership write: `Ok(())` means "not the leader" (nothing changed, retry).
fn map_write_error(
    err: RaftError<crate::types::TypeConfig, ClientWriteError<crate::types::TypeConfig>>,
) -> Result<(), StoreError> {
    match err {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Ok(()),
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
            Err(StoreError::Indeterminate(format!(
                "leadership changed during the membership change ({forward})"
            )))
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(change)) => match change {
            ChangeMembershipError::InProgress(_)
            | ChangeMembershipError::UncommittedLeaderLog(_) => Err(StoreError::Unavailable(
                format!("another membership change is in progress, try again: {change}"),
            )),
            other => Err(StoreError::Refused(other.to_string())),
        },
        RaftError::APIError(other) => Err(StoreError::Unavailable(other.to_string())),
        RaftError::Fatal(fatal) => Err(StoreError::Fatal(fatal.to_string())),
    }
}

/// The membership change a `ChangeMembership` request asks for.
pub(crate) fn change_from_request(
    request: &pb::MembershipRequest,
) -> Result<MembershipChange, String> {
    match &request.change {
        Some(pb::membership_request::Change::Remove(id)) => Ok(MembershipChange::Remove(*id)),
        Some(pb::membership_request::Change::Add(add)) => Ok(MembershipChange::Add(
            add.id,
            NodeInfo {
                api_addr: add.api_addr.clone(),
                cluster_addr: add.cluster_addr.clone(),
            },
        )),
        None => Err("the membership request names no change".into()),
    }
}

/// The answer to a `ChangeMembership` request from the outcome of making it here.
pub(crate) fn response_of(
    node: &RaftNode,
    result: Result<Option<u64>, StoreError>,
) -> pb::MembershipResponse {
    let result = match result {
        Ok(Some(index)) => pb::membership_response::Result::Index(index),
        Ok(None) => {
            pb::membership_response::Result::NotLeader(node.status().leader.map_or(0, |(id, _)| id))
        }
        Err(StoreError::Refused(message)) => pb::membership_response::Result::Refused(message),
        Err(other) => pb::membership_response::Result::Failed(other.to_string()),
    };
    pb::MembershipResponse {
        result: Some(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_changes() {
        let remove = pb::MembershipRequest {
            change: Some(pb::membership_request::Change::Remove(3)),
        };
        assert_eq!(
            change_from_request(&remove),
            Ok(MembershipChange::Remove(3))
        );
        let add = pb::MembershipRequest {
            change: Some(pb::membership_request::Change::Add(pb::AddMember {
                id: 4,
                api_addr: "a:1".into(),
                cluster_addr: "c:2".into(),
            })),
        };
        assert_eq!(
            change_from_request(&add),
            Ok(MembershipChange::Add(
                4,
                NodeInfo {
                    api_addr: "a:1".into(),
                    cluster_addr: "c:2".into(),
                }
            ))
        );
        assert!(change_from_request(&pb::MembershipRequest { change: None }).is_err());
    }
}
