//! In-process clusters of real store nodes (real RocksDB in temp dirs, real gRPC on loopback):
//! proposals from any node, linearizable read points from followers, identical journals, and a
//! node catching up from a snapshot after the log was purged, and a restarted leader that must be
//! elected again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use strongroom_raft::Guard;
use strongroom_raft::NodeConfig;
use strongroom_raft::NodeInfo;
use strongroom_raft::Op;
use strongroom_raft::RaftNode;
use strongroom_raft::Txn;
use strongroom_raft::TxnOutcome;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Member {
    config: NodeConfig,
    node: Option<Arc<RaftNode>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

struct Cluster {
    _dir: TempDir,
    members: Vec<Member>,
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

impl Cluster {
    async fn start(count: u64, snapshot_every: u64) -> Cluster {
        let dir = TempDir::new().unwrap();
        let members: BTreeMap<u64, NodeInfo> = (1..=count)
            .map(|id| {
                (
                    id,
                    NodeInfo {
                        api_addr: String::new(),
                        cluster_addr: free_addr(),
                    },
                )
            })
            .collect();
        let mut cluster = Cluster {
            _dir: dir,
            members: Vec::new(),
        };
        for id in 1..=count {
            let config = NodeConfig {
                id,
                data_dir: cluster._dir.path().join(format!("n{id}")),
                initial_members: members.clone(),
                heartbeat_interval_ms: 100,
                election_timeout_min_ms: 400,
                election_timeout_max_ms: 800,
                snapshot_logs_since_last: snapshot_every,
                snapshot_log_bytes_ratio: 0.5,
                max_in_snapshot_log_to_keep: 2,
                purge_batch_size: 1,
                unsafe_skip_fsync: false,
            };
            cluster.members.push(Member {
                config,
                node: None,
                stop: None,
                server: None,
            });
        }
        for index in 0..count as usize {
            cluster.boot(index).await;
        }
        cluster
    }

    async fn boot(&mut self, index: usize) {
        let member = &mut self.members[index];
        let addr = member.config.initial_members[&member.config.id]
            .cluster_addr
            .clone();
        let listener = TcpListener::bind(&addr).await.unwrap();
        let node = RaftNode::start(member.config.clone()).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = node.grpc_service();
        member.server = Some(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await
                .unwrap();
        }));
        member.node = Some(node);
        member.stop = Some(stop);
    }

    async fn halt(&mut self, index: usize) {
        let member = &mut self.members[index];
        if let Some(stop) = member.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = member.server.take() {
            // Peers keep their HTTP/2 connections open: graceful shutdown would wait for them.
            if tokio::time::timeout(Duration::from_secs(1), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        if let Some(node) = member.node.take() {
            node.shutdown().await;
        }
    }

    fn node(&self, index: usize) -> &Arc<RaftNode> {
        self.members[index].node.as_ref().expect("node is running")
    }

    async fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for (index, member) in self.members.iter().enumerate() {
                if member
                    .node
                    .as_ref()
                    .is_some_and(|node| node.status().is_leader)
                {
                    return index;
                }
            }
            assert!(Instant::now() < deadline, "no leader elected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn put(key: &str, value: &[u8]) -> Txn {
    Txn {
        ops: vec![Op::Put {
            key: key.into(),
            value: value.to_vec(),
        }],
        ..Txn::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_and_linearizable_reads_work_from_every_node() {
    let mut cluster = Cluster::start(3, 10_000).await;
    let leader = cluster.leader().await;
    let followers: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    let committed = cluster
        .node(followers[0])
        .propose(put("k", b"v1"))
        .await
        .unwrap();
    assert!(matches!(committed.outcome, TxnOutcome::Applied { .. }));
    // The proposer has applied it when propose returns.
    assert_eq!(
        cluster
            .node(followers[0])
            .reader()
            .get("k")
            .unwrap()
            .unwrap()
            .value,
        b"v1"
    );
    // A read point on the other follower sees it too.
    cluster.node(followers[1]).read_point().await.unwrap();
    let record = cluster
        .node(followers[1])
        .reader()
        .get("k")
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.value.as_slice(), record.mod_revision),
        (&b"v1"[..], committed.index)
    );

    // A stale guard from a follower fails and writes nothing.
    let stale = Txn {
        guards: vec![Guard::ModRevision {
            key: "k".into(),
            revision: committed.index - 1,
        }],
        ops: vec![Op::Put {
            key: "k".into(),
            value: b"lost".to_vec(),
        }],
        journal: vec![b"never".to_vec()],
    };
    let outcome = cluster
        .node(followers[1])
        .propose(stale)
        .await
        .unwrap()
        .outcome;
    assert_eq!(outcome, TxnOutcome::GuardFailed { guard: 0 });

    // Journal records from every node, in one identical hash chain everywhere.
    for index in 0..3 {
        cluster
            .node(index)
            .propose(Txn::journal_only(vec![
                format!("from {index}").into_bytes(),
            ]))
            .await
            .unwrap();
    }
    let head = cluster.node(leader).reader().journal_head().unwrap();
    assert_eq!(head.seq, 3);
    for index in 0..3 {
        cluster.node(index).read_point().await.unwrap();
        assert_eq!(cluster.node(index).reader().journal_head().unwrap(), head);
        assert_eq!(
            cluster.node(index).reader().journal(1, 10).unwrap(),
            cluster.node(leader).reader().journal(1, 10).unwrap()
        );
    }
    for index in 0..3 {
        cluster.halt(index).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_purged_log_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(3, 20).await;
    let leader = cluster.leader().await;
    let lagging = (leader + 1) % 3;
    let writer = (leader + 2) % 3;
    let lagging_last = cluster.node(lagging).status().last_log_index;
    cluster.halt(lagging).await;

    for n in 0..100u32 {
        cluster
            .node(writer)
            .propose(put(&format!("key/{}", n % 7), &n.to_be_bytes()))
            .await
            .unwrap();
    }
    cluster.node(leader).trigger_snapshot().await.unwrap();
    let target = cluster.node(writer).reader().applied_index();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.node(leader).status().purged_index <= lagging_last {
        assert!(
            Instant::now() < deadline,
            "the leader did not purge its log past the lagging node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    cluster.boot(lagging).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.node(lagging).reader().applied_index() < target {
        assert!(Instant::now() < deadline, "lagging node did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The entries it lacked were purged everywhere it could get them from: only a snapshot could
    // have brought it here.
    assert!(cluster.node(lagging).status().snapshot_index > lagging_last);
    assert_eq!(
        cluster
            .node(lagging)
            .reader()
            .get("key/1")
            .unwrap()
            .unwrap()
            .value,
        99u32.to_be_bytes()
    );
    assert_eq!(
        cluster
            .node(lagging)
            .reader()
            .scan("key/", None, 100)
            .unwrap()
            .len(),
        7
    );
    for index in 0..3 {
        cluster.halt(index).await;
    }
}

/// A leader that restarts must win a new election in a higher term before it leads again.
///
/// openraft restores a restarted leader in its old term by default (`enable_leader_restore`).
/// A leader sends entries to followers before its own fsync, so a power failure can cut entries
/// from its log that a follower kept: restored in the same term, it then wrote *different*
/// entries under the same (term, index), the follower took them for the ones it had (same log
/// id), kept its old content and applied it. The lose-unsynced fault-injection run found this as
/// two nodes' audit journals diverging at one sequence number (jepsen/README.md). Here the
/// followers are down, so a restored leader would lead alone in its old term at once; a node
/// that must be elected cannot, without a quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_is_not_restored_in_its_old_term() {
    let mut cluster = Cluster::start(3, 1_000).await;
    let leader = cluster.leader().await;
    cluster.node(leader).propose(put("k", b"v")).await.unwrap();
    let old_term = cluster.node(leader).status().term;
    for index in (0..3).filter(|&index| index != leader) {
        cluster.halt(index).await;
    }
    cluster.halt(leader).await;
    cluster.boot(leader).await;
    let watched_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watched_until {
        let status = cluster.node(leader).status();
        assert!(
            !status.is_leader,
            "the restarted leader leads again without an election (term {}, was {old_term})",
            status.term
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for index in (0..3).filter(|&index| index != leader) {
        cluster.boot(index).await;
    }
    let new_leader = cluster.leader().await;
    assert!(cluster.node(new_leader).status().term > old_term);
    let committed = cluster.node(leader).propose(put("k", b"w")).await.unwrap();
    assert!(matches!(committed.outcome, TxnOutcome::Applied { .. }));
}
