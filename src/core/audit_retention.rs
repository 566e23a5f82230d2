//! Journal retention (`[audit] retention = "720h"`): records older than the configured age are
//! pruned from the replicated journal, but only once every node's sinks have them.
//!
//! Design (the simpler of "peers report" and "leader asks"): every node commits its delivery
//! position into the replicated state through Raft, and the prune rule is enforced by the state
//! machine itself.
//!
//! - **Acknowledgements.** Every node, sealed or not, periodically proposes
//!   `Op::JournalAck { node, seq }`, where `seq` is the lowest delivered position of its sinks
//!   (each sink's durable cursor, as the sink task holds it), or its applied journal head when it
//!   has no sinks. It proposes only when that value differs from the one in the replicated state,
//!   so an idle cluster writes nothing. Acknowledgements carry no journal record (an audit record
//!   would move the head and call for another acknowledgement, forever).
//! - **Prune.** While it is the leader and unsealed (it must decrypt records to read their
//!   `time`), a node walks the journal from the prune point up to the lowest acknowledgement of the
//!   current members, stops at the first record younger than `now - retention` (or whose time it
//!   cannot read), and proposes one `Op::JournalPrune { through_seq }` for the last older record.
//! - **Apply.** Every node clamps the prune to the lowest acknowledgement of the members in the
//!   replicated membership (a member that never acknowledged counts as 0) and to the head, deletes
//!   the same records, and keeps the sequence number and chain hash of the last one as the prune
//!   point (also carried by snapshots), so `sys/audit/verify` checks the chain from there. The
//!   clamp uses only replicated state, so it is deterministic, and it holds even if the leader's
//!   view of the acknowledgements was stale.
//!
//! The prune leaves no journal record of its own for the same reason acknowledgements do not (it
//! would itself age and be pruned, one record per pass at short retentions); the prune point in
//! `sys/audit/verify` and `sys/audit/log` and the leader's log line say what was pruned.
//!
//! Both run every quarter of the retention age, at least every 10 s and at most every second.
//! The leader's retention setting applies: give every node the same value.

use std::sync::Arc;
use std::sync::Weak;
use std::time::Duration;

use serde_json::Value;
use strongroom_raft::JournalEntry;
use strongroom_raft::Op;
use strongroom_raft::Txn;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use super::Core;
use super::CoreError;
use super::JOURNAL_AAD;

/// The shortest pass period.
const MIN_PERIOD: Duration = Duration::from_secs(1);
/// The longest pass period (also the period of nodes without retention configured).
const MAX_PERIOD: Duration = Duration::from_secs(10);
/// Records examined by one prune pass at most (the next pass continues).
const PRUNE_SCAN: u64 = 10_000;
/// Records read at a time by a prune pass.
const PRUNE_PAGE: usize = 256;

/// How often acknowledgements and prunes run for a given retention age.
pub fn pass_period(retention: Option<Duration>) -> Duration {
    retention.map_or(MAX_PERIOD, |age| (age / 4).clamp(MIN_PERIOD, MAX_PERIOD))
}

impl Core {
    /// Starts the acknowledgement and prune loop; it stops when `stop` turns true or the core is
    /// dropped. Call after [`Core::start_audit_sinks`]: until the sinks exist, nothing is
    /// acknowledged.
    pub fn start_audit_retention(
        self: &Arc<Self>,
        retention: Option<Duration>,
        stop: watch::Receiver<bool>,
    ) {
        tokio::spawn(run(Arc::downgrade(self), retention, stop));
    }

    /// The journal position this node acknowledges: the lowest delivered position of its sinks,
    /// or its applied journal head without sinks (`None` before the sinks are started).
    fn audit_ack_position(&self) -> Result<Option<u64>, CoreError> {
        let Some(sinks) = self.audit_sinks.get() else {
            return Ok(None);
        };
        if sinks.is_empty() {
            return Ok(Some(self.reader().journal_head()?.seq));
        }
        Ok(sinks.iter().map(|sink| sink.delivered()).min())
    }

    /// Proposes this node's acknowledgement if the replicated one differs; returns what was
    /// proposed.
    pub async fn acknowledge_audit_delivery(&self) -> Result<Option<u64>, CoreError> {
        let Some(seq) = self.audit_ack_position()? else {
            return Ok(None);
        };
        let node = self.node.id();
        if self.reader().journal_retention()?.acks.get(&node) == Some(&seq) {
            return Ok(None);
        }
        self.node
            .propose(Txn {
                ops: vec![Op::JournalAck { node, seq }],
                ..Txn::default()
            })
            .await?;
        Ok(Some(seq))
    }

    /// One prune pass (nothing unless leader and unsealed): proposes pruning the records older
    /// than `retention` that every member has acknowledged; returns the sequence number proposed.
    pub async fn prune_audit_journal(&self, retention: Duration) -> Result<Option<u64>, CoreError> {
        if self.is_sealed() || !self.node.status().is_leader {
            return Ok(None);
        }
        let reader = self.reader();
        let prune_point = reader.journal_retention()?.prune_point.seq;
        let limit = reader
            .journal_prune_limit()?
            .min(prune_point.saturating_add(PRUNE_SCAN));
        if limit <= prune_point {
            return Ok(None);
        }
        let now = i128::from(crate::logical::time::now_nanos());
        let cutoff = now - i128::try_from(retention.as_nanos()).unwrap_or(i128::MAX);
        let mut target = prune_point;
        'scan: while target < limit {
            let page = reader.journal(target + 1, PRUNE_PAGE)?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                if entry.seq > limit || entry.seq != target + 1 {
                    break 'scan;
                }
                match self.record_time(entry)? {
                    Some(time) if time <= cutoff => target = entry.seq,
                    _ => break 'scan,
                }
            }
        }
        if target <= prune_point {
            return Ok(None);
        }
        self.node
            .propose(Txn {
                ops: vec![Op::JournalPrune {
                    through_seq: target,
                }],
                ..Txn::default()
            })
            .await?;
        tracing::info!(
            through_seq = target,
            "audit journal pruned: records past retention that every node's sinks have"
        );
        Ok(Some(target))
    }

    /// A journal record's `time` in nanoseconds since the epoch (`None` if it has none).
    fn record_time(&self, entry: &JournalEntry) -> Result<Option<i128>, CoreError> {
        let plaintext = self.barrier.decrypt(JOURNAL_AAD, &entry.record)?;
        let record: Value = serde_json::from_slice(&plaintext).map_err(|_| {
            CoreError::Internal(format!("journal record {} is not JSON", entry.seq))
        })?;
        Ok(record["time"]
            .as_str()
            .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
            .map(OffsetDateTime::unix_timestamp_nanos))
    }
}

async fn run(core: Weak<Core>, retention: Option<Duration>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(pass_period(retention));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
        if *stop.borrow() {
            return;
        }
        let Some(core) = core.upgrade() else { return };
        if let Err(err) = core.acknowledge_audit_delivery().await {
            tracing::debug!(error = %err, "audit delivery acknowledgement failed; next pass retries");
        }
        if let Some(retention) = retention
            && let Err(err) = core.prune_audit_journal(retention).await
        {
            tracing::warn!(error = %err, "audit journal prune pass failed; next pass retries");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pass_period_follows_the_retention_within_bounds() {
        assert_eq!(pass_period(None), MAX_PERIOD);
        assert_eq!(pass_period(Some(Duration::from_secs(2))), MIN_PERIOD);
        assert_eq!(
            pass_period(Some(Duration::from_secs(20))),
            Duration::from_secs(5)
        );
        assert_eq!(
            pass_period(Some(Duration::from_secs(720 * 3600))),
            MAX_PERIOD
        );
    }
}
