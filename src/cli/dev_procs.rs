//! The child server processes of `strongroom dev`: spawning `strongroom server --config ...`
//! with output appended to a log file, noticing a node that exits early (with the tail of its
//! log), and stopping them all (SIGTERM, a grace period, then SIGKILL).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// How long the nodes get to stop after SIGTERM before they are killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// Lines of a node's log shown when it exits early.
const TAIL_LINES: usize = 20;

/// One running node process.
struct Node {
    id: u64,
    log: PathBuf,
    child: Child,
}

/// The node processes of a dev cluster. Dropping it SIGKILLs any node still running; call
/// [`Nodes::shutdown`] for an orderly stop.
#[derive(Default)]
pub struct Nodes {
    nodes: Vec<Node>,
}

impl Nodes {
    /// Starts `exe server --config <config>` for node `id`, appending its stdout and stderr to
    /// `log`. The child gets its own process group, so a terminal's Ctrl-C reaches only `dev`,
    /// which then stops the nodes in order.
    pub fn spawn(&mut self, exe: &Path, id: u64, config: &Path, log: &Path) -> anyhow::Result<()> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cannot open {}", log.display()))?;
        let child = Command::new(exe)
            .arg("server")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start node {id} ({})", exe.display()))?;
        self.nodes.push(Node {
            id,
            log: log.to_path_buf(),
            child,
        });
        Ok(())
    }

    /// Fails, naming the node and showing the end of its log, if any node has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            let status = n
                .child
                .try_wait()
                .with_context(|| format!("cannot check on node {}", n.id))?;
            if let Some(status) = status {
                return Err(early_exit(n.id, status, &n.log));
            }
        }
        Ok(())
    }

    /// Sends SIGTERM to every node still running, waits up to [`GRACE`] for all of them, then
    /// SIGKILLs the rest.
    pub async fn shutdown(&mut self) {
        for n in &self.nodes {
            if let Some(pid) = n.child.id().and_then(|p| i32::try_from(p).ok())
                && let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM)
            {
                tracing::warn!(node = n.id, "cannot send SIGTERM: {e}");
            }
        }
        let deadline = tokio::time::Instant::now() + GRACE;
        for n in &mut self.nodes {
            match tokio::time::timeout_at(deadline, n.child.wait()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(node = n.id, "cannot wait for the node: {e}"),
                Err(_) => {
                    tracing::warn!(node = n.id, "still running after {GRACE:?}; killing it");
                    if let Err(e) = n.child.kill().await {
                        tracing::warn!(node = n.id, "cannot kill the node: {e}");
                    }
                }
            }
        }
    }
}

/// The error for a node that exited while it should be running.
fn early_exit(id: u64, status: ExitStatus, log: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "node {id} exited early ({status}); last lines of {}:\n{}",
        log.display(),
        tail(log, TAIL_LINES)
    )
}

/// The last `lines` lines of a file (lossily decoded), or a note when it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            let mut out = all[start..].join("\n");
            if out.is_empty() {
                out.push_str("(the log is empty)");
            }
            out
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("node1.log");
        std::fs::write(&log, "a\nb\nc\nd\n").expect("write");
        assert_eq!(tail(&log, 2), "c\nd");
        assert_eq!(tail(&log, 10), "a\nb\nc\nd");
        std::fs::write(&log, "").expect("write");
        assert_eq!(tail(&log, 2), "(the log is empty)");
        assert!(tail(&dir.path().join("missing"), 2).starts_with("(cannot read the log"));
    }

    #[tokio::test]
    async fn notices_an_exited_child_and_shuts_down_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A stand-in "binary" that prints and exits for node 1, and sleeps for node 2.
        let exe = dir.path().join("fake.sh");
        std::fs::write(
            &exe,
            "#!/bin/sh\ncase \"$3\" in */n1.toml) echo boom; exit 3;; *) exec sleep 30;; esac\n",
        )
        .expect("write");
        let mut perms = std::fs::metadata(&exe).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&exe, perms).expect("chmod");

        let mut nodes = Nodes::default();
        let log1 = dir.path().join("node1.log");
        nodes
            .spawn(&exe, 1, &dir.path().join("n1.toml"), &log1)
            .expect("spawn 1");
        nodes
            .spawn(
                &exe,
                2,
                &dir.path().join("n2.toml"),
                &dir.path().join("node2.log"),
            )
            .expect("spawn 2");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let err = loop {
            if let Err(e) = nodes.check_alive() {
                break e;
            }
            assert!(std::time::Instant::now() < deadline, "node 1 never exited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let msg = err.to_string();
        assert!(msg.starts_with("node 1 exited early"), "{msg}");
        assert!(msg.contains("boom"), "{msg}");
        let started = std::time::Instant::now();
        nodes.shutdown().await;
        assert!(
            started.elapsed() < GRACE,
            "SIGTERM should stop `sleep` at once"
        );
    }
}
