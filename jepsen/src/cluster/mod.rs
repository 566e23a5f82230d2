//! Cluster control: writes each node's config, starts the processes, initializes the vault
//! (5 shares, threshold 3), unseals every node, and later kills, pauses, resumes, restarts
//! (and re-unseals), seals and stops nodes, and removes and re-adds them ([`membership`]).
//! With the lose-unsynced nemesis on, each node's data dir is tracked ([`unsynced`]) so a crash
//! can drop what was never synced; a node that forgets the vault's initialization is recorded
//! ([`LostInit`]). Waits poll conditions with deadlines. Every audited request the harness makes
//! for itself is a `control` operation in the history, so the audit checker can account for its
//! record.

pub mod api;
pub mod audit_export;
pub mod membership;
pub mod node;
pub mod unsynced;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::bail;
use nix::sys::signal::Signal;
use serde_json::Value;
use serde_json::json;

use self::api::Api;
use self::api::CallError;
use self::api::Reply;
use self::api::Request;
use self::node::NodeFiles;
use self::node::NodeProcess;
use self::node::ServerOptions;
use self::unsynced::Loss;
use self::unsynced::Tracker;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::Recorder;
use crate::net::Net;

/// The process id used for the harness's own requests.
pub const CONTROL_PROCESS: u64 = 1_000_000;
/// Unseal shares and threshold used at init.
const SHARES: usize = 5;
const THRESHOLD: usize = 3;

/// How long a node may report the vault uninitialized, once it was initialized, before the
/// harness concludes that the node lost its initialization for good. A node that lost its data
/// gets it back from a peer that kept it within a second or two; 20 s is generous.
pub const LOST_INIT_GRACE: Duration = Duration::from_secs(20);

/// A node kept reporting the vault uninitialized after the vault had been initialized: the
/// acknowledged `sys/init`, and every write after it, are gone from it and from every peer it
/// could have caught up from.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "node {node} has reported the vault uninitialized for {secs:.0} s although sys/init succeeded: it lost the vault's initialization and every write after it"
)]
pub struct LostInit {
    /// The node.
    pub node: u64,
    /// Seconds it has reported uninitialized.
    pub secs: f64,
}

/// A node's answer to `sys/seal-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealStatus {
    /// Sealed.
    pub sealed: bool,
    /// Initialized (assumed when the field is missing).
    pub initialized: bool,
}

/// What `sys/init` returned.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The root token.
    pub root_token: String,
    /// The unseal shares, base64.
    pub keys_base64: Vec<String>,
    /// The unseal shares, hex.
    pub keys_hex: Vec<String>,
}

/// A running cluster.
pub struct Cluster {
    net: Net,
    options: ServerOptions,
    files: Vec<NodeFiles>,
    procs: Vec<Mutex<NodeProcess>>,
    /// Each node's sync log and durable baseline (only with the fsync shim).
    trackers: Option<Vec<Mutex<Tracker>>>,
    /// The API client.
    pub api: Api,
    recorder: Arc<Recorder>,
    secrets: Mutex<Option<Secrets>>,
    unexpected_exits: Mutex<Vec<String>>,
    /// Since when each node has reported the vault uninitialized (after init).
    uninitialized_since: Mutex<HashMap<u64, Instant>>,
    /// Nodes that lost the vault's initialization ([`LostInit`]).
    lost_init: Mutex<BTreeMap<u64, String>>,
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, Fut>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Fut,
) -> anyhow::Result<T>
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Cluster {
    /// Writes configs and starts every node of `net` (they come up sealed and uninitialized).
    pub async fn start(
        run_dir: &Path,
        net: Net,
        options: ServerOptions,
        recorder: Arc<Recorder>,
        op_timeout: Duration,
    ) -> anyhow::Result<Cluster> {
        let addrs = net.addrs().to_vec();
        let mut files = Vec::new();
        for me in &addrs {
            let node_files = NodeFiles::new(run_dir, me.id);
            std::fs::create_dir_all(&node_files.dir)?;
            std::fs::write(
                &node_files.config,
                node::config_toml(me, &addrs, &node_files.data_dir),
            )?;
            files.push(node_files);
        }
        let api_addrs: Vec<String> = addrs.iter().map(|a| a.api.clone()).collect();
        let trackers = match options.sync_shim {
            Some(_) => Some(
                files
                    .iter()
                    .map(|f| Tracker::new(f.sync_log.clone(), &f.data_dir).map(Mutex::new))
                    .collect::<anyhow::Result<Vec<_>>>()?,
            ),
            None => None,
        };
        let cluster = Cluster {
            procs: addrs.iter().map(|_| Mutex::default()).collect(),
            trackers,
            net,
            options,
            files,
            api: Api::new(&api_addrs, op_timeout)?,
            recorder,
            secrets: Mutex::new(None),
            unexpected_exits: Mutex::new(Vec::new()),
            uninitialized_since: Mutex::new(HashMap::new()),
            lost_init: Mutex::new(BTreeMap::new()),
        };
        for id in cluster.ids() {
            cluster.spawn(id)?;
        }
        for id in cluster.ids() {
            cluster.wait_http(id).await?;
        }
        if cluster.trackers.is_some() {
            for id in cluster.ids() {
                cluster.check_sync_shim(id).await?;
            }
        }
        Ok(cluster)
    }

    fn tracker(&self, id: u64) -> Option<MutexGuard<'_, Tracker>> {
        self.trackers.as_ref().map(|t| {
            t[(id - 1) as usize]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
        })
    }

    /// Proves the fsync shim is at work in node `id`'s server (it logged its start and a sync of
    /// RocksDB's files), waiting up to 10 s for the database to be opened.
    async fn check_sync_shim(&self, id: u64) -> anyhow::Result<()> {
        let ready = wait_for(
            "the fsync shim's log",
            Duration::from_secs(10),
            || async move {
                self.tracker(id)
                    .and_then(|t| t.check_active().ok())
                    .map(|_| ())
            },
        )
        .await;
        if ready.is_err()
            && let Some(tracker) = self.tracker(id)
        {
            tracker
                .check_active()
                .with_context(|| format!("node {id}"))?;
        }
        Ok(())
    }

    /// Node ids, `1..=n`.
    pub fn ids(&self) -> Vec<u64> {
        (1..=self.files.len() as u64).collect()
    }

    /// The network.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Node `id`'s files.
    pub fn files(&self, id: u64) -> &NodeFiles {
        &self.files[(id - 1) as usize]
    }

    fn process(&self, id: u64) -> MutexGuard<'_, NodeProcess> {
        self.procs[(id - 1) as usize]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The init secrets, once initialized.
    pub fn secrets(&self) -> Option<Secrets> {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The root token ("" before init).
    pub fn token(&self) -> String {
        self.secrets().map(|s| s.root_token).unwrap_or_default()
    }

    /// Starts node `id`'s process.
    pub fn spawn(&self, id: u64) -> anyhow::Result<()> {
        let prefix = self.net.exec_prefix(id);
        self.process(id)
            .spawn(&prefix, self.files(id), &self.options)
    }

    /// Waits until node `id` answers HTTP at all.
    pub async fn wait_http(&self, id: u64) -> anyhow::Result<()> {
        wait_for(
            &format!("node {id} HTTP"),
            Duration::from_secs(60),
            || async move {
                let request = Request {
                    method: "GET",
                    path: "sys/seal-status",
                    ..Request::default()
                };
                self.api.call(id, request).await.ok().map(|_| ())
            },
        )
        .await
    }

    /// Initializes the vault through node `id`, retrying while no leader is elected. Each
    /// attempt is a `control` operation (phase `init`): init writes an audit record.
    pub async fn init(&self, id: u64) -> anyhow::Result<()> {
        let body = json!({"secret_shares": SHARES, "secret_threshold": THRESHOLD});
        let reply = wait_for("sys/init", Duration::from_secs(60), || {
            let body = body.clone();
            async move {
                let reply = self
                    .control_with(id, "PUT", "sys/init", Some(body), "init", false, None)
                    .await
                    .ok()?;
                (reply.status == 200).then_some(reply)
            }
        })
        .await?;
        let strings = |field: &str| -> Vec<String> {
            reply.body[field]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let secrets = Secrets {
            root_token: reply.body["root_token"].as_str().unwrap_or("").to_string(),
            keys_base64: strings("keys_base64"),
            keys_hex: strings("keys"),
        };
        if secrets.root_token.is_empty() || secrets.keys_base64.len() < THRESHOLD {
            bail!("sys/init returned no root token or too few keys");
        }
        *self.secrets.lock().unwrap_or_else(|p| p.into_inner()) = Some(secrets);
        Ok(())
    }

    /// Whether node `id` reports itself sealed (`None` if it does not answer).
    pub async fn sealed(&self, id: u64) -> Option<bool> {
        self.seal_status(id).await.map(|s| s.sealed)
    }

    /// What node `id`'s `sys/seal-status` says (`None` if it does not answer). Once the vault
    /// is initialized, every answer also updates since when the node has reported it
    /// uninitialized.
    pub async fn seal_status(&self, id: u64) -> Option<SealStatus> {
        let request = Request {
            method: "GET",
            path: "sys/seal-status",
            ..Request::default()
        };
        let reply = self.api.call(id, request).await.ok()?;
        let status = SealStatus {
            sealed: reply.body["sealed"].as_bool()?,
            initialized: reply.body["initialized"].as_bool().unwrap_or(true),
        };
        if self.secrets().is_some() {
            let mut since = self
                .uninitialized_since
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if status.initialized {
                since.remove(&id);
            } else {
                since.entry(id).or_insert_with(Instant::now);
            }
        }
        Some(status)
    }

    /// Asks every running node for its seal status (which notes the uninitialized ones).
    async fn observe_initialization(&self) {
        for id in self.ids() {
            if self.is_running(id) && !self.is_paused(id) {
                self.seal_status(id).await;
            }
        }
    }

    /// Unseals node `id` with `THRESHOLD` shares, retrying until it reports unsealed. A node
    /// that keeps reporting the vault uninitialized for [`LOST_INIT_GRACE`] after the vault was
    /// initialized has lost its data and got it from no peer: that is recorded
    /// ([`Cluster::lost_init`]) and returned as [`LostInit`].
    pub async fn unseal(&self, id: u64, timeout: Duration) -> anyhow::Result<()> {
        let keys = self.secrets().context("not initialized")?.keys_base64;
        let deadline = Instant::now() + timeout;
        loop {
            match self.seal_status(id).await {
                Some(SealStatus { sealed: false, .. }) => return Ok(()),
                Some(SealStatus {
                    initialized: false, ..
                }) => {
                    self.observe_initialization().await;
                    let since = self
                        .uninitialized_since
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .copied();
                    let known = self.lost_init().contains_key(&id);
                    if let Some(since) = since
                        && (known || since.elapsed() >= LOST_INIT_GRACE)
                    {
                        let lost = LostInit {
                            node: id,
                            secs: since.elapsed().as_secs_f64(),
                        };
                        self.lost_init
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(id)
                            .or_insert_with(|| lost.to_string());
                        return Err(lost.into());
                    }
                }
                Some(SealStatus { sealed: true, .. }) => {
                    for key in keys.iter().take(THRESHOLD) {
                        // Recorded like any control request: the server audits unseal attempts
                        // (a sealed node answers without a request id and commits the record
                        // when it unseals), so the audit checker must know of each one.
                        let body = Some(json!({"key": key}));
                        let Ok(reply) = self.control(id, "PUT", "sys/unseal", body, "unseal").await
                        else {
                            break;
                        };
                        if reply.body["sealed"] == Value::Bool(false) {
                            return Ok(());
                        }
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for node {id} to unseal");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Nodes found to have lost the vault's initialization, with what was seen.
    pub fn lost_init(&self) -> BTreeMap<u64, String> {
        self.lost_init
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The leader's id as the first node that knows one reports it.
    pub async fn leader(&self) -> Option<u64> {
        for id in self.ids() {
            if !self.is_running(id) || self.is_paused(id) {
                continue;
            }
            let request = Request {
                method: "GET",
                path: "sys/leader",
                ..Request::default()
            };
            if let Ok(reply) = self.api.call(id, request).await
                && let Some(address) = reply.body["leader_address"].as_str()
                && let Some(leader) = self.api.node_of(address)
            {
                return Some(leader);
            }
        }
        None
    }

    /// Node `id`'s applied Raft index.
    pub async fn applied_index(&self, id: u64) -> Option<u64> {
        let request = Request {
            method: "GET",
            path: "sys/leader",
            ..Request::default()
        };
        let reply = self.api.call(id, request).await.ok()?;
        reply.body["raft_applied_index"].as_u64()
    }

    /// SIGKILLs node `id` (expected: not reported as a crash).
    pub fn kill(&self, id: u64) {
        self.process(id).kill();
    }

    /// SIGKILLs every node of `ids` before reaping any, so none outlives the others by more
    /// than the time it takes to send the signals.
    pub fn crash(&self, ids: &[u64]) {
        for &id in ids {
            let _ = self.process(id).signal(Signal::SIGKILL);
        }
        for &id in ids {
            self.process(id).kill();
        }
    }

    /// Simulates a power failure on node `id`, which must be down: its data dir is cut to what
    /// its syncs made durable ([`unsynced`]).
    pub fn lose_unsynced(&self, id: u64) -> anyhow::Result<Loss> {
        if self.is_running(id) {
            bail!("node {id} is still running");
        }
        let mut tracker = self
            .tracker(id)
            .context("the fsync shim is not enabled (lose-unsynced nemesis off)")?;
        tracker
            .lose_unsynced()
            .with_context(|| format!("node {id}"))
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&self, id: u64) -> anyhow::Result<()> {
        let mut process = self.process(id);
        process.signal(Signal::SIGSTOP)?;
        process.paused = true;
        Ok(())
    }

    /// SIGCONTs node `id`.
    pub fn resume(&self, id: u64) -> anyhow::Result<()> {
        let mut process = self.process(id);
        if process.paused {
            process.signal(Signal::SIGCONT)?;
            process.paused = false;
        }
        Ok(())
    }

    /// True if node `id` has a live process.
    pub fn is_running(&self, id: u64) -> bool {
        self.process(id).running()
    }

    /// True if node `id` is paused.
    pub fn is_paused(&self, id: u64) -> bool {
        self.process(id).paused
    }

    /// Starts node `id` again (if it is down) and unseals it.
    pub async fn restart(&self, id: u64) -> anyhow::Result<()> {
        if !self.is_running(id) {
            self.spawn(id)?;
        }
        self.wait_http(id).await?;
        self.unseal(id, Duration::from_secs(60)).await
    }

    /// Reaps nodes that exited on their own, recording each as unexpected.
    pub fn reap_unexpected(&self) {
        for id in self.ids() {
            if let Some(status) = self.process(id).try_exit() {
                self.unexpected_exits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("node {id} exited on its own: {status}"));
            }
        }
    }

    /// Exits nobody caused.
    pub fn unexpected_exits(&self) -> Vec<String> {
        self.unexpected_exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets node `id`'s wall-clock offset in seconds (needs the faketime preload).
    pub fn set_clock_offset(&self, id: u64, seconds: i64) -> anyhow::Result<()> {
        let text = if seconds >= 0 {
            format!("+{seconds}\n")
        } else {
            format!("{seconds}\n")
        };
        std::fs::write(&self.files(id).faketime, text)?;
        Ok(())
    }

    /// An audited request the harness makes for itself, recorded as a `control` operation.
    pub async fn control(
        &self,
        id: u64,
        method: &str,
        path: &str,
        body: Option<Value>,
        phase: &str,
    ) -> Result<Reply, CallError> {
        self.control_with(id, method, path, body, phase, false, None)
            .await
    }

    /// [`Cluster::control`] with stale consistency and/or a deadline of its own.
    #[allow(clippy::too_many_arguments)]
    pub async fn control_with(
        &self,
        id: u64,
        method: &str,
        path: &str,
        body: Option<Value>,
        phase: &str,
        stale: bool,
        timeout: Option<Duration>,
    ) -> Result<Reply, CallError> {
        let token = self.token();
        let token = (!token.is_empty()).then_some(token);
        let mut invoke = Op::new(OpType::Invoke, F::Control, CONTROL_PROCESS, id);
        invoke.path = Some(path.split('?').next().unwrap_or(path).to_string());
        invoke.phase = phase.to_string();
        let invoke = self.recorder.invoke(invoke);
        let request = Request {
            method,
            path,
            body,
            token: token.as_deref(),
            stale,
            timeout,
        };
        let result = self.api.call(id, request).await;
        let mut done = Op::new(OpType::Ok, F::Control, CONTROL_PROCESS, id);
        match &result {
            Ok(reply) => {
                done.status = Some(reply.status);
                done.req_id = reply.req_id.clone();
                if reply.status >= 400 {
                    done.kind = if reply.status >= 500 {
                        OpType::Info
                    } else {
                        OpType::Fail
                    };
                    done.error = reply.error_text();
                }
            }
            Err(err) => {
                done.kind = OpType::Info;
                done.not_sent = matches!(err, CallError::NotSent(_));
                if done.not_sent {
                    done.kind = OpType::Fail;
                }
                done.error = Some(err.to_string());
            }
        }
        self.recorder.complete(&invoke, done);
        result
    }

    /// Seals node `id` through `sys/seal` (audited).
    pub async fn seal(&self, id: u64) -> anyhow::Result<()> {
        let reply = self.control(id, "PUT", "sys/seal", None, "seal").await?;
        if reply.status >= 300 {
            bail!(
                "sys/seal on node {id} answered {}: {:?}",
                reply.status,
                reply.error_text()
            );
        }
        Ok(())
    }

    /// Stops every node (SIGCONT first if paused, then SIGTERM, then SIGKILL after a grace).
    pub async fn stop_all(&self) {
        for id in self.ids() {
            let process = self.process(id);
            if process.paused {
                let _ = process.signal(Signal::SIGCONT);
            }
            let _ = process.signal(Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for id in self.ids() {
            while Instant::now() < deadline && self.is_running(id) {
                let exited = self.process(id).try_exit().is_some();
                if exited {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.process(id).kill();
        }
    }
}
