//! A running store node: opens RocksDB, starts openraft, forms the initial cluster, and offers the
//! two operations the vault needs: [`RaftNode::propose`] (commit a transaction through the leader,
//! from any node) and [`RaftNode::read_point`] (a linearizable read point, from any node).
//! Membership changes (remove a node, add it back) are in [`membership`]; when snapshots are
//! built, in [`snapshot_schedule`].

pub mod membership;
pub mod snapshot_schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use openraft::ReadPolicy;
use openraft::SnapshotPolicy;
use openraft::async_runtime::WatchReceiver;
use openraft::error::ClientWriteError;
use openraft::error::InitializeError;
use openraft::error::LinearizableReadError;
use openraft::error::RaftError;
use rocksdb::DB;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::codec;
use crate::db;
use crate::error::StoreError;
use crate::log_store::LogStore;
use crate::network::ChannelPool;
use crate::network::client::NetworkFactory;
use crate::network::pb;
use crate::network::server::RaftGrpc;
use crate::read_batch::ReadBatcher;
use crate::reader::StoreReader;
use crate::state_machine::SnapshotDirs;
use crate::state_machine::StateMachine;
use crate::types::ApplyResponse;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::Txn;
use crate::types::TxnOutcome;
use crate::types::typ::Raft;

/// How long a proposal or read point may take before it fails with an error.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to start a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's id (must appear in `initial_members`).
    pub id: NodeId,
    /// Where this node keeps its RocksDB and snapshots.
    pub data_dir: PathBuf,
    /// The initial cluster, identical on every node (etcd's "initial cluster").
    pub initial_members: BTreeMap<NodeId, NodeInfo>,
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after at least this many log entries since the last one...
    pub snapshot_logs_since_last: u64,
    /// ...and at least this fraction of the latest snapshot's size in log bytes since it (0:
    /// entries only). See [`snapshot_schedule`].
    pub snapshot_log_bytes_ratio: f64,
    /// Log entries kept after a snapshot (the rest are purged).
    pub max_in_snapshot_log_to_keep: u64,
    /// How many log entries are purged at a time.
    pub purge_batch_size: u64,
    /// TESTING ONLY: never fsync the log (acknowledged writes can be lost on a crash; state
    /// machine applies are never synced, the log is the durable record). Exists so
    /// fault-injection tests can prove they notice.
    pub unsafe_skip_fsync: bool,
}

/// The result of a committed proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The log index (= revision) the transaction committed at.
    pub index: u64,
    /// What applying it did.
    pub outcome: TxnOutcome,
}

/// A snapshot of the node's Raft state for status pages.
#[derive(Debug, Clone)]
pub struct ClusterStatus {
    /// This node's id.
    pub id: NodeId,
    /// Whether this node is the leader.
    pub is_leader: bool,
    /// The current leader, if known.
    pub leader: Option<(NodeId, NodeInfo)>,
    /// The current term.
    pub term: u64,
    /// The last log index on this node.
    pub last_log_index: u64,
    /// The committed index known to this node.
    pub committed_index: u64,
    /// The applied index of this node.
    pub applied_index: u64,
    /// The index of the last log entry purged from this node's log (0: none).
    pub purged_index: u64,
    /// The index covered by this node's latest snapshot (0: none).
    pub snapshot_index: u64,
    /// The voters and learners of the current membership.
    pub members: Vec<(NodeId, NodeInfo, bool)>,
}

/// The opened storage of a node: the database and the openraft storage halves over it.
pub(crate) struct Storage {
    pub(crate) db: Arc<DB>,
    pub(crate) dirs: SnapshotDirs,
    pub(crate) log_store: LogStore,
    pub(crate) state_machine: StateMachine,
    pub(crate) applied: watch::Receiver<u64>,
    /// The log store's count of appended bytes.
    pub(crate) appended_bytes: Arc<AtomicU64>,
}

/// Opens (creating if needed) the RocksDB under `data_dir/raft` and the snapshot directories.
pub(crate) fn open_storage(data_dir: &std::path::Path, fsync: bool) -> Result<Storage, StoreError> {
    std::fs::create_dir_all(data_dir)?;
    let db = db::open(&data_dir.join("raft"))?;
    let dirs = SnapshotDirs::under(data_dir)?;
    let (applied_tx, applied) = watch::channel(0u64);
    let log_store = LogStore::new(db.clone(), fsync)?;
    let state_machine = StateMachine::new(db.clone(), dirs.clone(), applied_tx)?;
    let appended_bytes = log_store.appended_bytes();
    Ok(Storage {
        db,
        dirs,
        log_store,
        state_machine,
        applied,
        appended_bytes,
    })
}

/// A running node of the replicated store.
pub struct RaftNode {
    id: NodeId,
    raft: Raft,
    db: Arc<DB>,
    reader: StoreReader,
    applied: watch::Receiver<u64>,
    pool: ChannelPool,
    dirs: SnapshotDirs,
    /// Coalesces concurrent read-index requests into shared rounds.
    reads: ReadBatcher,
    /// The static peer list this node was started with (used once, to form the cluster; kept
    /// to look up a peer's addresses when it is added back).
    initial_members: BTreeMap<NodeId, NodeInfo>,
}

impl RaftNode {
    /// Opens the node's storage, starts Raft, and forms the initial cluster if this node is
    /// pristine (no log, no vote). A restarted node rejoins with what it has.
    pub async fn start(config: NodeConfig) -> Result<Arc<RaftNode>, StoreError> {
        if !config.initial_members.contains_key(&config.id) {
            return Err(StoreError::Startup(format!(
                "node {} is not among the initial members",
                config.id
            )));
        }
        let Storage {
            db,
            dirs,
            log_store,
            state_machine,
            applied: applied_rx,
            appended_bytes,
        } = open_storage(&config.data_dir, !config.unsafe_skip_fsync)?;
        let pool = ChannelPool::default();
        let raft_config = openraft::Config {
            cluster_name: "strongroom".to_string(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            // Snapshots are triggered by `snapshot_schedule`, which also weighs log bytes.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: config.max_in_snapshot_log_to_keep,
            purge_batch_size: config.purge_batch_size,
            install_snapshot_timeout: 60_000,
            // A node that lost touch with the leader (partitioned, or removed from the
            // membership without knowing it) asks first and raises its term only if a quorum
            // would vote for it, so it cannot depose a healthy leader when it comes back.
            enable_pre_vote: Some(true),
            // A restarted leader must be elected again, in a higher term. openraft's default
            // restores it in its old term; but a leader replicates entries before its own fsync,
            // so a crash can cut entries from its log that a follower kept, and the restored
            // leader then writes different entries under the same (term, index): the follower
            // takes them for the ones it has and applies its old content (divergent
            // journals in the lose-unsynced fault-injection run; regression test
            // a_restarted_leader_is_not_restored_in_its_old_term).
            enable_leader_restore: Some(false),
            ..Default::default()
        }
        .validate()
        .map_err(|err| StoreError::Startup(err.to_string()))?;
        let raft = Raft::new(
            config.id,
            Arc::new(raft_config),
            NetworkFactory::new(pool.clone()),
            log_store,
            state_machine,
        )
        .await
        .map_err(|err| StoreError::Fatal(err.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|err| StoreError::Fatal(err.to_string()))?;
        if !initialized {
            match raft.initialize(config.initial_members.clone()).await {
                Ok(()) => tracing::info!(
                    members = config.initial_members.len(),
                    "formed the initial cluster"
                ),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(err) => return Err(StoreError::Startup(err.to_string())),
            }
        }
        tokio::spawn(snapshot_schedule::run(
            raft.clone(),
            snapshot_schedule::SnapshotSchedule {
                logs_since_last: config.snapshot_logs_since_last,
                log_bytes_ratio: config.snapshot_log_bytes_ratio,
            },
            appended_bytes,
            dirs.complete.clone(),
        ));
        let reader = StoreReader::new(db.clone(), applied_rx.clone());
        Ok(Arc::new_cyclic(|node: &std::sync::Weak<RaftNode>| {
            let node = node.clone();
            let reads = ReadBatcher::start(move || {
                let node = node.upgrade()?;
                Some(async move { node.fetch_read_index().await })
            });
            RaftNode {
                id: config.id,
                raft,
                db,
                reader,
                applied: applied_rx,
                pool,
                dirs,
                reads,
                initial_members: config.initial_members,
            }
        }))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Node `id`'s addresses in the static peer list this node was started with.
    pub fn initial_member(&self, id: NodeId) -> Option<&NodeInfo> {
        self.initial_members.get(&id)
    }

    /// The handle for local reads.
    pub fn reader(&self) -> &StoreReader {
        &self.reader
    }

    /// The gRPC service other nodes talk to; serve it on this node's cluster address.
    pub fn grpc_service(self: &Arc<Self>) -> pb::raft_service_server::RaftServiceServer<RaftGrpc> {
        pb::raft_service_server::RaftServiceServer::new(RaftGrpc::new(self.clone()))
            .max_decoding_message_size(crate::network::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::network::MAX_MESSAGE_BYTES)
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    pub(crate) fn snapshot_dirs(&self) -> &SnapshotDirs {
        &self.dirs
    }

    /// Commits `txn` through the current leader (directly, or handed over with `Propose` when this
    /// node is a follower) and returns once this node has applied it, so a following local read
    /// sees it.
    pub async fn propose(&self, txn: Txn) -> Result<Committed, StoreError> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let txn_bytes = codec::encode(&txn);
        let committed = loop {
            let leader = self.wait_for_leader(deadline).await?;
            let attempt = if leader == self.id {
                self.propose_as_leader(txn.clone()).await?
            } else {
                self.propose_remote(leader, &txn_bytes).await?
            };
            match attempt {
                Some(committed) => break committed,
                // Leadership moved before the entry was appended: safe to retry.
                None => self.wait_for_leader_change(leader, deadline).await?,
            }
        };
        self.wait_applied(committed.index, deadline).await?;
        Ok(committed)
    }

    /// Appends `txn` on this node as leader. `Ok(None)` means "not the leader (any more)", with
    /// nothing appended.
    pub(crate) async fn propose_as_leader(
        &self,
        txn: Txn,
    ) -> Result<Option<Committed>, StoreError> {
        match self.raft.client_write(txn).await {
            Ok(response) => match response.data {
                ApplyResponse::Txn(outcome) => Ok(Some(Committed {
                    index: response.log_id.index,
                    outcome,
                })),
                ApplyResponse::None => Err(StoreError::Fatal(
                    "a transaction entry applied without an outcome".into(),
                )),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => Ok(None),
            Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward))) => {
                Err(StoreError::Indeterminate(format!(
                    "leadership changed during the write ({forward})"
                )))
            }
            Err(RaftError::APIError(other)) => Err(StoreError::Unavailable(other.to_string())),
            Err(RaftError::Fatal(fatal)) => Err(StoreError::Fatal(fatal.to_string())),
        }
    }

    async fn propose_remote(
        &self,
        leader: NodeId,
        txn_bytes: &[u8],
    ) -> Result<Option<Committed>, StoreError> {
        let mut client = self.leader_client(leader)?;
        let request = pb::ProposeRequest {
            txn: txn_bytes.to_vec(),
            from: self.id,
        };
        let response = client
            .propose(request)
            .await
            .map_err(|status| {
                StoreError::Indeterminate(format!(
                    "handing the write to leader {leader} failed: {}",
                    status.message()
                ))
            })?
            .into_inner();
        match response.result {
            Some(pb::propose_response::Result::Outcome(bytes)) => {
                let outcome: TxnOutcome = codec::decode(&bytes).map_err(|err| {
                    StoreError::Indeterminate(format!("bad outcome from leader: {err}"))
                })?;
                Ok(Some(Committed {
                    index: response.index,
                    outcome,
                }))
            }
            Some(pb::propose_response::Result::NotLeader(_)) => Ok(None),
            Some(pb::propose_response::Result::NotMember(message)) => {
                Err(StoreError::NotMember(message))
            }
            None => Err(StoreError::Indeterminate(
                "empty propose response from leader".into(),
            )),
        }
    }

    /// Returns a linearizable read point once this node has applied up to it: any write
    /// acknowledged before this call started is visible to local reads after it returns.
    /// Concurrent calls share read-index rounds (see [`crate::read_batch`]).
    pub async fn read_point(&self) -> Result<u64, StoreError> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let index = self.reads.read_index().await?;
        self.wait_applied(index, deadline).await?;
        Ok(index)
    }

    /// One read-index round: from this node if it leads, else with a `ReadIndex` RPC to the
    /// leader, retrying across leader changes until [`OPERATION_TIMEOUT`].
    async fn fetch_read_index(&self) -> Result<u64, StoreError> {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        loop {
            let leader = self.wait_for_leader(deadline).await?;
            let attempt = if leader == self.id {
                self.read_index_as_leader().await?
            } else {
                self.read_index_remote(leader).await?
            };
            match attempt {
                Some(index) => return Ok(index),
                None => self.wait_for_leader_change(leader, deadline).await?,
            }
        }
    }

    /// Confirms leadership with a quorum and returns the read index. `Ok(None)`: not the leader.
    pub(crate) async fn read_index_as_leader(&self) -> Result<Option<u64>, StoreError> {
        match self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
            Ok(linearizer) => Ok(Some(linearizer.read_log_id().index())),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => Ok(None),
            Err(RaftError::APIError(other)) => Err(StoreError::Unavailable(other.to_string())),
            Err(RaftError::Fatal(fatal)) => Err(StoreError::Fatal(fatal.to_string())),
        }
    }

    async fn read_index_remote(&self, leader: NodeId) -> Result<Option<u64>, StoreError> {
        let mut client = self.leader_client(leader)?;
        let response = client
            .read_index(pb::ReadIndexRequest { from: self.id })
            .await
            .map_err(|status| {
                StoreError::Unavailable(format!(
                    "read index from leader {leader}: {}",
                    status.message()
                ))
            })?
            .into_inner();
        match response.result {
            Some(pb::read_index_response::Result::Index(index)) => Ok(Some(index)),
            Some(pb::read_index_response::Result::NotLeader(_)) => Ok(None),
            Some(pb::read_index_response::Result::NotMember(message)) => {
                Err(StoreError::NotMember(message))
            }
            None => Err(StoreError::Unavailable(
                "empty read index response from leader".into(),
            )),
        }
    }

    fn leader_client(
        &self,
        leader: NodeId,
    ) -> Result<pb::raft_service_client::RaftServiceClient<tonic::transport::Channel>, StoreError>
    {
        let addr = self
            .member_info(leader)
            .map(|info| info.cluster_addr)
            .ok_or_else(|| {
                StoreError::Unavailable(format!("leader {leader} is not in the membership"))
            })?;
        self.pool
            .client(&addr)
            .map_err(|err| StoreError::Unavailable(err.to_string()))
    }

    fn member_info(&self, id: NodeId) -> Option<NodeInfo> {
        self.raft
            .metrics()
            .borrow_watched()
            .membership_config
            .get_node(&id)
            .cloned()
    }

    /// Waits until this node has applied `index`.
    pub async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), StoreError> {
        let mut applied = self.applied.clone();
        match tokio::time::timeout_at(deadline, applied.wait_for(|applied| *applied >= index)).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Fatal("state machine stopped".into())),
            Err(_) => Err(StoreError::ApplyTimeout(index)),
        }
    }

    async fn wait_for_leader(&self, deadline: Instant) -> Result<NodeId, StoreError> {
        let mut metrics = self.raft.metrics();
        let waited = tokio::time::timeout_at(deadline, async {
            loop {
                if let Some(leader) = metrics.borrow_watched().current_leader {
                    return Ok(leader);
                }
                if metrics.changed().await.is_err() {
                    return Err(StoreError::Fatal("raft node stopped".into()));
                }
            }
        });
        waited.await.unwrap_or(Err(StoreError::NoLeader))
    }

    /// Waits (bounded) for the leader to be someone other than `old`, or for the same leader to be
    /// re-confirmed after a metrics change; avoids spinning while an election settles.
    async fn wait_for_leader_change(
        &self,
        old: NodeId,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let mut metrics = self.raft.metrics();
        let step = Instant::now() + Duration::from_millis(50);
        let until = step.min(deadline);
        let changed = tokio::time::timeout_at(until, async {
            loop {
                if metrics
                    .borrow_watched()
                    .current_leader
                    .is_some_and(|leader| leader != old)
                {
                    return;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        let _ = changed.await;
        if Instant::now() >= deadline {
            Err(StoreError::NoLeader)
        } else {
            Ok(())
        }
    }

    /// The node's Raft status.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, info)| (*id, info.clone(), voters.contains(id)))
            .collect();
        let leader = metrics
            .current_leader
            .and_then(|id| membership.get_node(&id).map(|info| (id, info.clone())));
        ClusterStatus {
            id: self.id,
            is_leader: metrics.current_leader == Some(self.id),
            leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or(0),
            committed_index: metrics
                .cluster_committed
                .or(metrics.local_committed)
                .map_or(0, |log_id| log_id.index),
            applied_index: *self.applied.borrow(),
            purged_index: metrics.purged.map_or(0, |log_id| log_id.index),
            snapshot_index: metrics.snapshot.map_or(0, |log_id| log_id.index),
            members,
        }
    }

    /// Builds a snapshot now (and purges the log up to it, per the purge settings).
    pub async fn trigger_snapshot(&self) -> Result<(), StoreError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|err| StoreError::Fatal(err.to_string()))
    }

    /// Stops Raft, syncs RocksDB's WAL and flushes its memtables to SST files (so a restart
    /// replays nothing).
    pub async fn shutdown(&self) {
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(error = %err, "raft shutdown failed");
        }
        if let Err(err) = self.db.flush_wal(true) {
            tracing::warn!(error = %err, "final WAL flush failed");
        }
        if let Err(err) = self.reader.flush() {
            tracing::warn!(error = %err, "final memtable flush failed");
        }
    }
}
