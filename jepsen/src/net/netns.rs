//! Network namespaces: one per node (`srj-n<id>`, address 10.213.0.<id>), each with a veth pair
//! to a bridge (`srjbr0`, 10.213.0.254, where the harness's clients sit). Faults are iptables
//! rules in each node's INPUT chain, replaced atomically with `iptables-restore`: a node drops
//! packets from the peers it holds a grudge against, or a random share of them (packet loss).
//! Clients are never cut off, so a client bound to a minority node still reaches it.
//!
//! Everything carries the `srj` prefix; [`remove_leftovers`] deletes whatever a crashed run
//! left behind (inside the sandbox there is normally nothing), and dropping [`Netns`] tears
//! its own objects down.

use super::NetFaults;
use super::cmd;
use super::cmd::CmdError;

/// Name prefix of every namespace and link the harness creates.
pub const PREFIX: &str = "srj";
const BRIDGE: &str = "srjbr0";
const SUBNET: &str = "10.213.0";
/// The bridge's (the clients') address.
pub const HOST_IP: &str = "10.213.0.254";
/// Every node's HTTP API port.
pub const API_PORT: u16 = 8200;
/// Every node's cluster (Raft gRPC) port.
pub const CLUSTER_PORT: u16 = 8201;

/// The nodes' namespaces and the bridge.
pub struct Netns {
    ids: Vec<u64>,
}

fn ns_name(id: u64) -> String {
    format!("{PREFIX}-n{id}")
}

/// A node's address.
pub fn node_ip(id: u64) -> String {
    format!("{SUBNET}.{id}")
}

/// Deletes every namespace (killing its processes) and link whose name starts with the prefix.
pub fn remove_leftovers() -> Result<usize, CmdError> {
    let mut removed = 0;
    for line in cmd::run("ip", &["netns", "list"], None)?.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if !name.starts_with(PREFIX) {
            continue;
        }
        if let Ok(pids) = cmd::run("ip", &["netns", "pids", name], None) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        cmd::run("ip", &["netns", "del", name], None)?;
        removed += 1;
    }
    for line in cmd::run("ip", &["-o", "link", "show"], None)?.lines() {
        // "12: srjv1@if11: <...>" -> "srjv1"
        let Some(name) = line.split(':').nth(1).map(|n| n.trim()) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if name.starts_with(PREFIX) {
            let _ = cmd::run("ip", &["link", "del", name], None);
            removed += 1;
        }
    }
    Ok(removed)
}

impl Netns {
    /// Creates the bridge and one namespace per node id.
    pub fn create(ids: &[u64]) -> Result<Netns, CmdError> {
        remove_leftovers()?;
        let netns = Netns { ids: Vec::new() };
        let ip = |args: &[&str]| cmd::run("ip", args, None).map(|_| ());
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{HOST_IP}/24"), "dev", BRIDGE])?;
        ip(&["link", "set", BRIDGE, "up"])?;
        let mut netns = netns;
        for &id in ids {
            let ns = ns_name(id);
            let (host_end, node_end) = (format!("{PREFIX}v{id}"), format!("{PREFIX}p{id}"));
            ip(&["netns", "add", &ns])?;
            netns.ids.push(id);
            ip(&[
                "link", "add", &host_end, "type", "veth", "peer", "name", &node_end,
            ])?;
            ip(&["link", "set", &node_end, "netns", &ns])?;
            ip(&["link", "set", &host_end, "master", BRIDGE])?;
            ip(&["link", "set", &host_end, "up"])?;
            ip(&["-n", &ns, "link", "set", &node_end, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", node_ip(id)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(netns)
    }

    /// The command prefix that runs a program inside node `id`'s namespace.
    pub fn exec_prefix(&self, id: u64) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), ns_name(id)]
    }

    /// Replaces every node's rules with `faults`.
    pub fn apply(&self, faults: &NetFaults) -> Result<(), CmdError> {
        for &id in &self.ids {
            let mut rules = String::from(
                "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
            );
            let dropped = faults.drops.get(&id).cloned().unwrap_or_default();
            for peer in self.ids.iter().filter(|&&p| p != id) {
                let source = node_ip(*peer);
                if dropped.contains(peer) {
                    rules.push_str(&format!("-A INPUT -s {source} -j DROP\n"));
                    continue;
                }
                if faults.lagging.contains(&id) {
                    rules.push_str(&format!(
                        "-A INPUT -s {source} -p tcp --dport {CLUSTER_PORT} -j DROP\n"
                    ));
                }
                if faults.loss > 0.0 {
                    rules.push_str(&format!(
                        "-A INPUT -s {source} -m statistic --mode random --probability {:.3} -j DROP\n",
                        faults.loss
                    ));
                }
            }
            rules.push_str("COMMIT\n");
            cmd::run(
                "ip",
                &["netns", "exec", &ns_name(id), "iptables-restore"],
                Some(&rules),
            )?;
        }
        Ok(())
    }

    /// Removes every rule.
    pub fn heal(&self) -> Result<(), CmdError> {
        self.apply(&NetFaults::default())
    }

    fn teardown(&mut self) {
        for id in self.ids.drain(..) {
            let _ = cmd::run("ip", &["netns", "del", &ns_name(id)], None);
            let _ = cmd::run("ip", &["link", "del", &format!("{PREFIX}v{id}")], None);
        }
        let _ = cmd::run("ip", &["link", "del", BRIDGE], None);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.teardown();
    }
}
