//! A 3-member etcd cluster (Debian's `etcd-server`, 3.4) on loopback with its own data dirs and
//! default durability (fdatasync on every commit), stopped by PID when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context as _;
use anyhow::bail;

use super::Proc;
use super::free_ports;

/// A running etcd cluster.
pub struct EtcdCluster {
    /// `127.0.0.1:PORT` client endpoints, in member order.
    pub endpoints: Vec<String>,
    procs: Vec<Proc>,
}

impl EtcdCluster {
    /// Starts `n` members of `binary` with data under `dir` and waits until they have a leader.
    pub async fn start(binary: &Path, dir: &Path, n: usize) -> anyhow::Result<EtcdCluster> {
        let ports = free_ports(2 * n)?;
        let names: Vec<String> = (1..=n).map(|i| format!("m{i}")).collect();
        let initial_cluster = names
            .iter()
            .zip(ports.chunks_exact(2))
            .map(|(name, p)| format!("{name}=http://127.0.0.1:{}", p[1]))
            .collect::<Vec<_>>()
            .join(",");
        let mut procs = Vec::new();
        let mut endpoints = Vec::new();
        for (name, p) in names.iter().zip(ports.chunks_exact(2)) {
            let member_dir = dir.join(name);
            std::fs::create_dir_all(&member_dir)?;
            let client_url = format!("http://127.0.0.1:{}", p[0]);
            let peer_url = format!("http://127.0.0.1:{}", p[1]);
            let mut command = Command::new(binary);
            command
                .arg("--name")
                .arg(name)
                .arg("--data-dir")
                .arg(member_dir.join("data"))
                .arg("--listen-client-urls")
                .arg(&client_url)
                .arg("--advertise-client-urls")
                .arg(&client_url)
                .arg("--listen-peer-urls")
                .arg(&peer_url)
                .arg("--initial-advertise-peer-urls")
                .arg(&peer_url)
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg("strongroom-bench")
                .arg("--logger")
                .arg("zap");
            procs.push(Proc::spawn(
                &format!("etcd {name}"),
                command,
                &member_dir.join("etcd.log"),
            )?);
            endpoints.push(format!("127.0.0.1:{}", p[0]));
        }
        let mut cluster = EtcdCluster { endpoints, procs };
        cluster.leader_and_follower().await?;
        Ok(cluster)
    }

    /// The server process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(Proc::pid).collect()
    }

    /// The leader's and one follower's client endpoint, once every member names the same leader.
    pub async fn leader_and_follower(&mut self) -> anyhow::Result<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for proc in &mut self.procs {
                proc.check_alive()?;
            }
            match self.try_leader().await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(None) => bail!("etcd members do not agree on a leader"),
                Err(err) => return Err(err).context("etcd status"),
            }
        }
    }

    async fn try_leader(&self) -> anyhow::Result<Option<(String, String)>> {
        let mut members = Vec::new();
        for endpoint in &self.endpoints {
            let mut client = etcd_client::Client::connect(
                [format!("http://{endpoint}")],
                Some(etcd_client::ConnectOptions::new().with_timeout(Duration::from_secs(2))),
            )
            .await?;
            let status = client.status().await?;
            let id = status.header().map_or(0, |h| h.member_id());
            members.push((endpoint.clone(), id, status.leader()));
        }
        let leader_id = members[0].2;
        if leader_id == 0 || members.iter().any(|m| m.2 != leader_id) {
            return Ok(None);
        }
        let leader = members.iter().find(|m| m.1 == leader_id);
        let follower = members.iter().find(|m| m.1 != leader_id);
        Ok(match (leader, follower) {
            (Some(l), Some(f)) => Some((l.0.clone(), f.0.clone())),
            _ => None,
        })
    }

    /// Stops every member.
    pub fn stop(&mut self) {
        for proc in &mut self.procs {
            proc.stop();
        }
    }
}
