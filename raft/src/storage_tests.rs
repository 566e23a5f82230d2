//! Storage tests: openraft's conformance suite against our RocksDB log store and state machine,
//! and the transaction semantics of the state machine (guards, revisions, journal chain, snapshot
//! build and install).

use openraft::EntryPayload;
use openraft::RaftSnapshotBuilder;
use openraft::StorageError;
use openraft::storage::RaftStateMachine;
use openraft::testing::log::StoreBuilder;
use openraft::testing::log::Suite;
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

use crate::log_store::LogStore;
use crate::node::open_storage;
use crate::reader::StoreReader;
use crate::state_machine::StateMachine;
use crate::state_machine::apply_batch;
use crate::state_machine::chain_hash;
use crate::types::ApplyResponse;
use crate::types::Guard;
use crate::types::Op;
use crate::types::Txn;
use crate::types::TxnOutcome;
use crate::types::TypeConfig;
use crate::types::typ::Entry;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir =
            TempDir::new().map_err(|err| StorageError::read(TypeConfig::err_from_error(&err)))?;
        let storage = open_storage(dir.path(), true)
            .map_err(|err| StorageError::read(TypeConfig::err_from_error(&err)))?;
        Ok((dir, storage.log_store, storage.state_machine))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_conformance_suite() {
    Suite::test_all(RocksBuilder)
        .await
        .expect("the storage suite passes");
}

pub(crate) fn entry(index: u64, txn: Txn) -> Entry {
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Normal(txn),
    }
}

fn put(key: &str, value: &[u8]) -> Op {
    Op::Put {
        key: key.into(),
        value: value.to_vec(),
    }
}

pub(crate) struct Fixture {
    _dir: TempDir,
    pub(crate) db: std::sync::Arc<rocksdb::DB>,
    pub(crate) sm: StateMachine,
    pub(crate) reader: StoreReader,
}

pub(crate) fn fixture() -> Fixture {
    let dir = TempDir::new().unwrap();
    let storage = open_storage(dir.path(), true).unwrap();
    let reader = StoreReader::new(storage.db.clone(), storage.applied.clone());
    Fixture {
        _dir: dir,
        db: storage.db,
        sm: storage.state_machine,
        reader,
    }
}

/// Applies one transaction at `index` through the batch-apply path and returns its outcome.
pub(crate) fn apply_at(fx: &Fixture, index: u64, txn: Txn) -> TxnOutcome {
    let responses = apply_batch(&fx.db, &[entry(index, txn)]).unwrap();
    match responses.into_iter().next() {
        Some(ApplyResponse::Txn(outcome)) => outcome,
        other => panic!("unexpected response {other:?}"),
    }
}

fn ops(ops: Vec<Op>) -> Txn {
    Txn {
        ops,
        ..Txn::default()
    }
}

#[tokio::test]
async fn apply_stream_publishes_the_applied_index() {
    let mut fx = fixture();
    let entries = vec![
        Ok((entry(1, ops(vec![put("a", b"1")])), None)),
        Ok((entry(2, ops(vec![put("b", b"2")])), None)),
    ];
    fx.sm.apply(futures::stream::iter(entries)).await.unwrap();
    assert_eq!(fx.reader.applied_index(), 2);
    let (applied, _) = fx.sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|id| id.index), Some(2));
}

#[tokio::test]
async fn puts_track_revisions_and_versions() {
    let fx = fixture();
    apply_at(&fx, 1, ops(vec![put("a", b"1")]));
    apply_at(
        &fx,
        2,
        Txn {
            ops: vec![put("a", b"2"), put("b", b"x")],
            ..Txn::default()
        },
    );
    let a = fx.reader.get("a").unwrap().unwrap();
    assert_eq!(
        (
            a.value.as_slice(),
            a.create_revision,
            a.mod_revision,
            a.version
        ),
        (&b"2"[..], 1, 2, 2)
    );
    let b = fx.reader.get("b").unwrap().unwrap();
    assert_eq!((b.create_revision, b.mod_revision, b.version), (2, 2, 1));

    apply_at(
        &fx,
        3,
        Txn {
            ops: vec![Op::Delete { key: "a".into() }],
            ..Txn::default()
        },
    );
    apply_at(
        &fx,
        4,
        Txn {
            ops: vec![put("a", b"3")],
            ..Txn::default()
        },
    );
    let a = fx.reader.get("a").unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (4, 4, 1),
        "recreated key starts over"
    );
}

#[tokio::test]
async fn failed_guard_writes_nothing_and_names_the_guard() {
    let fx = fixture();
    apply_at(
        &fx,
        1,
        Txn {
            ops: vec![put("k", b"v1")],
            ..Txn::default()
        },
    );
    let guarded = Txn {
        guards: vec![
            Guard::Absent {
                key: "other".into(),
            },
            Guard::ModRevision {
                key: "k".into(),
                revision: 99,
            },
        ],
        ops: vec![put("k", b"v2"), put("new", b"n")],
        journal: vec![b"record".to_vec()],
    };
    let outcome = apply_at(&fx, 2, guarded);
    assert_eq!(outcome, TxnOutcome::GuardFailed { guard: 1 });
    assert_eq!(fx.reader.get("k").unwrap().unwrap().value, b"v1");
    assert!(fx.reader.get("new").unwrap().is_none());
    assert_eq!(
        fx.reader.journal_head().unwrap().seq,
        0,
        "no journal record from a failed transaction"
    );

    let ok = Txn {
        guards: vec![
            Guard::ModRevision {
                key: "k".into(),
                revision: 1,
            },
            Guard::Absent { key: "new".into() },
        ],
        ops: vec![put("k", b"v2")],
        journal: vec![],
    };
    assert_eq!(
        apply_at(&fx, 3, ok),
        TxnOutcome::Applied {
            revision: 3,
            first_journal_seq: None
        }
    );
}

#[tokio::test]
async fn prefix_guard_detects_puts_and_deletes() {
    let fx = fixture();
    apply_at(
        &fx,
        1,
        Txn {
            ops: vec![put("p/a", b"1"), put("p/b", b"1")],
            ..Txn::default()
        },
    );
    let stat = fx.reader.prefix_stat("p/").unwrap();
    assert_eq!((stat.count, stat.max_mod_revision), (2, 1));
    let guard = || Guard::PrefixUnchanged {
        prefix: "p/".into(),
        count: 2,
        max_mod_revision: 1,
    };
    let probe = || Txn {
        guards: vec![guard()],
        ops: vec![put("x", b"1")],
        journal: vec![],
    };
    assert!(matches!(
        apply_at(&fx, 2, probe()),
        TxnOutcome::Applied { .. }
    ));
    apply_at(
        &fx,
        3,
        Txn {
            ops: vec![Op::Delete { key: "p/a".into() }],
            ..Txn::default()
        },
    );
    assert_eq!(
        apply_at(&fx, 4, probe()),
        TxnOutcome::GuardFailed { guard: 0 }
    );
}

#[tokio::test]
async fn delete_prefix_removes_only_that_prefix() {
    let fx = fixture();
    let setup = Txn {
        ops: vec![put("m/1", b"a"), put("m/2", b"b"), put("n/1", b"c")],
        ..Txn::default()
    };
    apply_at(&fx, 1, setup);
    apply_at(
        &fx,
        2,
        Txn {
            ops: vec![Op::DeletePrefix {
                prefix: "m/".into(),
            }],
            ..Txn::default()
        },
    );
    assert!(fx.reader.scan("m/", None, 10).unwrap().is_empty());
    assert_eq!(fx.reader.scan("", None, 10).unwrap().len(), 1);
}

#[tokio::test]
async fn journal_is_hash_chained_and_gap_free() {
    let fx = fixture();
    apply_at(
        &fx,
        1,
        Txn::journal_only(vec![b"r1".to_vec(), b"r2".to_vec()]),
    );
    let outcome = apply_at(&fx, 2, Txn::journal_only(vec![b"r3".to_vec()]));
    assert_eq!(
        outcome,
        TxnOutcome::Applied {
            revision: 2,
            first_journal_seq: Some(3)
        }
    );
    let entries = fx.reader.journal(1, 10).unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let mut hash = [0u8; 32];
    for entry in &entries {
        hash = chain_hash(&hash, &entry.record);
        assert_eq!(entry.hash, hash);
    }
    assert_eq!(fx.reader.journal_head().unwrap().hash, hash);
}

#[tokio::test]
async fn snapshot_build_and_install_replace_the_state() {
    let mut source = fixture();
    let txn = Txn {
        ops: vec![put("s/1", b"one"), put("s/2", b"two")],
        journal: vec![b"j".to_vec()],
        ..Txn::default()
    };
    apply_at(&source, 1, txn);
    let mut builder = source.sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();
    assert_eq!(snapshot.meta.last_log_id.map(|id| id.index), Some(1));

    let mut target = fixture();
    apply_at(
        &target,
        1,
        Txn {
            ops: vec![put("stale", b"x")],
            ..Txn::default()
        },
    );
    target
        .sm
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert!(
        target.reader.get("stale").unwrap().is_none(),
        "install replaces, not merges"
    );
    assert_eq!(target.reader.get("s/2").unwrap().unwrap().value, b"two");
    assert_eq!(
        target.reader.journal_head().unwrap(),
        source.reader.journal_head().unwrap()
    );
    let current = target
        .sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("installed snapshot is kept");
    assert_eq!(current.meta.last_log_id.map(|id| id.index), Some(1));
}

#[tokio::test]
async fn a_closed_store_opens_read_only_with_what_it_applied() {
    let dir = TempDir::new().unwrap();
    {
        let mut storage = open_storage(dir.path(), true).unwrap();
        let entries = vec![
            Ok((
                entry(1, ops(vec![put("p/a", b"1"), put("p/b", b"2")])),
                None,
            )),
            Ok((
                entry(
                    2,
                    ops(vec![put("q", b"3"), Op::Delete { key: "p/a".into() }]),
                ),
                None,
            )),
        ];
        storage
            .state_machine
            .apply(futures::stream::iter(entries))
            .await
            .unwrap();
    }
    let reader = StoreReader::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.applied_index(), 2);
    assert_eq!(reader.prefix_stat("p/").unwrap().count, 1);
    assert_eq!(reader.prefix_stat("").unwrap().count, 2);
    assert_eq!(
        reader.get("q").unwrap().map(|r| r.value),
        Some(b"3".to_vec())
    );
    assert!(StoreReader::open_read_only(&dir.path().join("missing")).is_err());
}
