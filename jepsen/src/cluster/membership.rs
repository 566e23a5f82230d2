//! Membership control through the server's API: read the voters
//! (`sys/storage/raft/configuration`), remove a node (`sys/storage/raft/remove-peer`) and add it
//! back (`sys/storage/raft/add-peer`, which returns once the node has caught up and votes). Every
//! call is an audited `control` operation in the history.

use std::time::Duration;

use anyhow::bail;
use serde_json::json;

use super::Cluster;
use super::wait_for;

/// How long adding a node back may take (the server waits until it has caught up).
const ADD_TIMEOUT: Duration = Duration::from_secs(90);

impl Cluster {
    /// The voter ids in node `via`'s configuration.
    pub async fn voters(&self, via: u64) -> anyhow::Result<Vec<u64>> {
        let reply = self
            .control(
                via,
                "GET",
                "sys/storage/raft/configuration",
                None,
                "membership",
            )
            .await?;
        if reply.status != 200 {
            bail!(
                "configuration from node {via} answered {}: {:?}",
                reply.status,
                reply.error_text()
            );
        }
        let servers = reply.body["data"]["config"]["servers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(servers
            .iter()
            .filter(|server| server["voter"].as_bool() == Some(true))
            .filter_map(|server| server["node_id"].as_str()?.parse().ok())
            .collect())
    }

    /// Removes node `id` from the membership, asking node `via`.
    pub async fn remove_peer(&self, id: u64, via: u64) -> anyhow::Result<()> {
        let body = Some(json!({"server_id": id.to_string()}));
        let reply = self
            .control(
                via,
                "POST",
                "sys/storage/raft/remove-peer",
                body,
                "membership",
            )
            .await?;
        if reply.status >= 300 {
            bail!(
                "remove-peer {id} via node {via} answered {}: {:?}",
                reply.status,
                reply.error_text()
            );
        }
        Ok(())
    }

    /// Adds node `id` back (addresses from the asked node's config), asking the voters in turn
    /// until one succeeds or [`ADD_TIMEOUT`] passes.
    pub async fn add_peer(&self, id: u64) -> anyhow::Result<()> {
        let body = json!({"server_id": id.to_string()});
        wait_for(&format!("node {id} to be added back"), ADD_TIMEOUT, || {
            let body = body.clone();
            async move {
                let via = self.leader().await.filter(|leader| *leader != id)?;
                let reply = self
                    .control_with(
                        via,
                        "POST",
                        "sys/storage/raft/add-peer",
                        Some(body),
                        "membership",
                        false,
                        Some(ADD_TIMEOUT),
                    )
                    .await
                    .ok()?;
                (reply.status < 300).then_some(())
            }
        })
        .await
    }

    /// Adds back every node that is not a voter (after the final heal).
    pub async fn ensure_voters(&self) -> anyhow::Result<()> {
        let via = wait_for("a leader", Duration::from_secs(30), || self.leader()).await?;
        let voters = self.voters(via).await?;
        for id in self.ids() {
            if !voters.contains(&id) {
                self.add_peer(id).await?;
            }
        }
        Ok(())
    }
}
