//! Journal retention in the state machine: acknowledgements, the prune clamp (lowest
//! acknowledgement of the current members, the head), the prune point's hash, records staged in
//! the same batch, and snapshots carrying the prune point.

use std::collections::BTreeSet;

use openraft::EntryPayload;
use openraft::Membership;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;

use crate::state_machine::apply_batch;
use crate::state_machine::chain_hash;
use crate::storage_tests::Fixture;
use crate::storage_tests::apply_at;
use crate::storage_tests::entry;
use crate::storage_tests::fixture;
use crate::types::JournalHead;
use crate::types::NodeId;
use crate::types::Op;
use crate::types::Txn;
use crate::types::TypeConfig;
use crate::types::typ::Entry;

fn membership_entry(index: u64, members: &[NodeId]) -> Entry {
    let voters: BTreeSet<NodeId> = members.iter().copied().collect();
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: EntryPayload::Membership(Membership::new_with_defaults(vec![voters], [])),
    }
}

fn ops(ops: Vec<Op>) -> Txn {
    Txn {
        ops,
        ..Txn::default()
    }
}

fn ack(node: NodeId, seq: u64) -> Op {
    Op::JournalAck { node, seq }
}

fn prune(through_seq: u64) -> Op {
    Op::JournalPrune { through_seq }
}

fn records(range: std::ops::RangeInclusive<u64>) -> Txn {
    Txn::journal_only(range.map(|n| format!("r{n}").into_bytes()).collect())
}

/// The sequence numbers the journal holds.
fn seqs(fx: &Fixture) -> Vec<u64> {
    fx.reader
        .journal(0, 1000)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// Recomputes the chain from the prune point to the head, as `audit verify` does.
fn chain_verifies(fx: &Fixture) -> bool {
    let retention = fx.reader.journal_retention().unwrap();
    let mut hash = retention.prune_point.hash;
    let mut seq = retention.prune_point.seq;
    for entry in fx.reader.journal(seq + 1, 1000).unwrap() {
        hash = chain_hash(&hash, &entry.record);
        seq += 1;
        if entry.seq != seq || entry.hash != hash {
            return false;
        }
    }
    fx.reader.journal_head().unwrap() == JournalHead { seq, hash }
}

/// A store with members 1 and 2 and ten journal records (applied at indexes 1 and 2).
fn ten_records() -> Fixture {
    let fx = fixture();
    apply_batch(&fx.db, &[membership_entry(1, &[1, 2])]).unwrap();
    apply_at(&fx, 2, records(1..=10));
    fx
}

#[tokio::test]
async fn prune_waits_for_every_member_and_keeps_the_chain_verifiable() {
    let fx = ten_records();
    let hash_at_4 = fx.reader.journal(4, 1).unwrap()[0].hash;

    // Node 2 never acknowledged: nothing is pruned.
    apply_at(&fx, 3, ops(vec![ack(1, 10), prune(8)]));
    assert_eq!(seqs(&fx), (1..=10).collect::<Vec<_>>());
    assert_eq!(fx.reader.journal_retention().unwrap().prune_point.seq, 0);

    // An acknowledgement from a node outside the membership does not count.
    apply_at(&fx, 4, ops(vec![ack(3, 0), ack(2, 4), prune(8)]));
    let retention = fx.reader.journal_retention().unwrap();
    assert_eq!(
        retention.prune_point,
        JournalHead {
            seq: 4,
            hash: hash_at_4
        },
        "clamped to the lowest member acknowledgement"
    );
    assert_eq!(retention.acks.get(&2), Some(&4));
    assert_eq!(seqs(&fx), (5..=10).collect::<Vec<_>>());
    assert!(chain_verifies(&fx));

    // A prune at or before the prune point changes nothing; one past the head stops at it.
    apply_at(&fx, 5, ops(vec![prune(3)]));
    assert_eq!(fx.reader.journal_retention().unwrap().prune_point.seq, 4);
    apply_at(&fx, 6, ops(vec![ack(2, 50), ack(1, 50), prune(99)]));
    assert_eq!(fx.reader.journal_retention().unwrap().prune_point.seq, 10);
    assert!(seqs(&fx).is_empty());
    assert!(chain_verifies(&fx));

    // New records chain on from the head, past the prune point.
    apply_at(&fx, 7, records(11..=12));
    assert_eq!(seqs(&fx), vec![11, 12]);
    assert!(chain_verifies(&fx));
}

#[tokio::test]
async fn a_member_added_later_must_acknowledge_before_pruning() {
    let fx = ten_records();
    apply_at(&fx, 3, ops(vec![ack(1, 10), ack(2, 10)]));
    apply_batch(&fx.db, &[membership_entry(4, &[1, 2, 3])]).unwrap();
    apply_at(&fx, 5, ops(vec![prune(10)]));
    assert_eq!(seqs(&fx).len(), 10, "node 3 has not acknowledged");
    apply_at(&fx, 6, ops(vec![ack(3, 6), prune(10)]));
    assert_eq!(seqs(&fx), (7..=10).collect::<Vec<_>>());
    assert!(chain_verifies(&fx));
}

#[tokio::test]
async fn a_guard_failure_prunes_nothing() {
    let fx = ten_records();
    let txn = Txn {
        guards: vec![crate::types::Guard::Absent { key: "k".into() }],
        ops: vec![ack(1, 10), ack(2, 10), prune(10)],
        journal: Vec::new(),
    };
    apply_at(
        &fx,
        3,
        ops(vec![Op::Put {
            key: "k".into(),
            value: b"v".to_vec(),
        }]),
    );
    apply_at(&fx, 4, txn);
    assert_eq!(seqs(&fx).len(), 10);
    assert!(fx.reader.journal_retention().unwrap().acks.is_empty());
}

#[tokio::test]
async fn records_staged_in_the_same_batch_are_pruned_or_kept_consistently() {
    let fx = fixture();
    let batch = [
        membership_entry(1, &[1]),
        entry(2, records(1..=5)),
        entry(3, ops(vec![ack(1, 3), prune(5)])),
        entry(4, records(6..=7)),
    ];
    apply_batch(&fx.db, &batch).unwrap();
    assert_eq!(seqs(&fx), vec![4, 5, 6, 7]);
    assert_eq!(fx.reader.journal_retention().unwrap().prune_point.seq, 3);
    assert!(chain_verifies(&fx));

    // The same entries one by one give the same state.
    let single = fixture();
    apply_batch(&single.db, &[membership_entry(1, &[1])]).unwrap();
    for item in &batch[1..] {
        apply_batch(&single.db, std::slice::from_ref(item)).unwrap();
    }
    assert_eq!(
        single.reader.journal(0, 100).unwrap(),
        fx.reader.journal(0, 100).unwrap()
    );
    assert_eq!(
        single.reader.journal_retention().unwrap(),
        fx.reader.journal_retention().unwrap()
    );
}

#[tokio::test]
async fn snapshots_carry_the_prune_point() {
    let mut source = ten_records();
    apply_at(&source, 3, ops(vec![ack(1, 6), ack(2, 7), prune(9)]));
    let mut builder = source.sm.get_snapshot_builder().await;
    let snapshot = builder.build_snapshot().await.unwrap();

    let mut target = fixture();
    apply_at(&target, 1, records(1..=3));
    target
        .sm
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    assert_eq!(
        target.reader.journal_retention().unwrap(),
        source.reader.journal_retention().unwrap()
    );
    assert_eq!(
        target.reader.journal_retention().unwrap().prune_point.seq,
        6
    );
    assert_eq!(seqs(&target), (7..=10).collect::<Vec<_>>());
    assert!(chain_verifies(&target));
}
