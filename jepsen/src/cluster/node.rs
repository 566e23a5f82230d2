//! One node: its files (config, data dir, log, faketime file, sync log) and its process. The
//! process is started through the network's exec prefix (`ip netns exec srj-nK`, which execs, so
//! the PID is the server's own), with the preloads the nemeses need (libfaketime, the fsync
//! shim), signalled by PID only, and reaped by the harness.

use std::fs;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::Child;
use std::process::Command;
use std::process::Stdio;

use anyhow::Context;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::unsynced;
use crate::net::NodeAddrs;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `strongroom` binary.
    pub bin: PathBuf,
    /// Pass `--unsafe-local-reads`.
    pub unsafe_local_reads: bool,
    /// Pass `--unsafe-no-fsync`.
    pub unsafe_no_fsync: bool,
    /// libfaketime to preload (the clock nemesis), if enabled.
    pub faketime_lib: Option<PathBuf>,
    /// The fsync shim to preload (the lose-unsynced nemesis), if enabled.
    pub sync_shim: Option<PathBuf>,
}

/// A node's files.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// `nodes/n<id>/`.
    pub dir: PathBuf,
    /// The server's data dir.
    pub data_dir: PathBuf,
    /// `node.toml`.
    pub config: PathBuf,
    /// stdout and stderr of every start, appended.
    pub log: PathBuf,
    /// The libfaketime offset file (`+0`, `-30`, ...).
    pub faketime: PathBuf,
    /// The fsync shim's event log ([`super::unsynced`]).
    pub sync_log: PathBuf,
}

impl NodeFiles {
    /// The files of node `id` under `run_dir`.
    pub fn new(run_dir: &Path, id: u64) -> NodeFiles {
        let dir = run_dir.join("nodes").join(format!("n{id}"));
        NodeFiles {
            data_dir: dir.join("data"),
            config: dir.join("node.toml"),
            log: dir.join("node.log"),
            faketime: dir.join("faketime"),
            sync_log: dir.join("sync.log"),
            dir,
        }
    }
}

/// Renders node `me`'s config for a cluster of `all`.
pub fn config_toml(me: &NodeAddrs, all: &[NodeAddrs], data_dir: &Path) -> String {
    let mut text = format!(
        "node_id = {}\ndata_dir = \"{}\"\napi_addr = \"{}\"\ncluster_addr = \"{}\"\n\n[raft]\nheartbeat_interval_ms = 100\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n\n",
        me.id,
        data_dir.display(),
        me.api,
        me.cluster
    );
    for peer in all {
        text.push_str(&format!(
            "[[peers]]\nid = {}\napi_addr = \"{}\"\ncluster_addr = \"{}\"\n\n",
            peer.id, peer.api, peer.cluster
        ));
    }
    text
}

/// A node's process state.
#[derive(Debug, Default)]
pub struct NodeProcess {
    child: Option<Child>,
    /// SIGSTOPped by the nemesis.
    pub paused: bool,
    /// How many times it was started.
    pub starts: u32,
}

impl NodeProcess {
    /// Starts the server (`prefix` places it in its network).
    pub fn spawn(
        &mut self,
        prefix: &[String],
        files: &NodeFiles,
        options: &ServerOptions,
    ) -> anyhow::Result<()> {
        fs::create_dir_all(&files.dir)?;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.log)
            .with_context(|| format!("opening {}", files.log.display()))?;
        self.starts += 1;
        writeln!(log, "=== strongroom-jepsen: start {} ===", self.starts)?;
        let (program, args) = match prefix.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (options.bin.display().to_string(), Vec::new()),
        };
        let mut command = Command::new(program);
        command.args(args);
        if !prefix.is_empty() {
            command.arg(&options.bin);
        }
        command
            .arg("server")
            .arg("--config")
            .arg(&files.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        if options.unsafe_local_reads {
            command.arg("--unsafe-local-reads");
        }
        if options.unsafe_no_fsync {
            command.arg("--unsafe-no-fsync");
        }
        let mut preload = Vec::new();
        if let Some(lib) = &options.faketime_lib {
            if !files.faketime.exists() {
                fs::write(&files.faketime, "+0\n")?;
            }
            preload.push(lib.display().to_string());
            command
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .env("FAKETIME_TIMESTAMP_FILE", &files.faketime)
                .env("FAKETIME_NO_CACHE", "1");
        }
        if let Some(lib) = &options.sync_shim {
            // The shim compares canonical paths, so the data dir must exist to be resolved.
            fs::create_dir_all(&files.data_dir)?;
            preload.push(lib.display().to_string());
            command
                .env(unsynced::ENV_LOG, &files.sync_log)
                .env(unsynced::ENV_DIR, fs::canonicalize(&files.data_dir)?);
        }
        if !preload.is_empty() {
            command.env("LD_PRELOAD", preload.join(":"));
        }
        self.child = Some(command.spawn().context("spawning strongroom server")?);
        self.paused = false;
        Ok(())
    }

    /// The PID, while running.
    pub fn pid(&self) -> Option<Pid> {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .map(Pid::from_raw)
    }

    /// True if a process was started and has not been reaped.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.pid().context("node is not running")?;
        nix::sys::signal::kill(pid, signal)?;
        Ok(())
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// Reaps the process if it exited; returns its status then.
    pub fn try_exit(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.paused {
            let _ = self.signal(Signal::SIGCONT);
        }
        self.kill();
    }
}
