//! Background work and its bookkeeping: the schedule of keys that need attention, the periodic
//! pass (auto-rotation, rotate-before-expiry, the notify-before-expiry event, purging deleted keys
//! whose window has passed) and the event log it writes.
//!
//! The periodic pass runs on the leader in its own guarded transaction. It reads only the
//! `schedule` record unless something is due, so an idle mount costs one read. Each rotation is
//! decided from the key's record (the newest version's creation time), and the transaction is
//! guarded on that record: two leaders racing cannot both rotate for the same period.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use serde_json::json;

use super::policy::KeyPolicy;
use super::store;
use super::store::KeyId;
use super::store::POLICY_PREFIX;
use super::store::TRASH_PREFIX;
use super::store::TrashedKey;
use crate::logical::LogicalError;
use crate::logical::Storage;
use crate::logical::time;

const SCHEDULE_KEY: &str = "schedule";
const EVENTS_KEY: &str = "events";
/// Events kept (oldest dropped first).
const MAX_EVENTS: usize = 1000;
/// Keys handled per periodic pass (an RSA-4096 rotation takes a second or more).
const MAX_PER_PASS: usize = 16;

/// When each record next needs the periodic pass: storage key -> seconds since the epoch.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// Due times by storage key (`policy/<name>` or `trash/<name>/<id>`).
    pub due: BTreeMap<String, u64>,
}

/// One recorded event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Increasing sequence number.
    pub seq: u64,
    /// When (ns since the epoch).
    pub time_nanos: u64,
    /// `rotated`, `near_expiry` or `purged`.
    pub kind: String,
    /// The key's name.
    pub key: String,
    /// The key version concerned.
    pub version: u32,
    /// A human-readable detail (never key material).
    pub detail: String,
}

/// The recent events, oldest first.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct EventLog {
    /// The next sequence number.
    pub next_seq: u64,
    /// The events.
    pub events: Vec<Event>,
}

/// When a key next needs the periodic pass, if ever.
pub fn next_due(policy: &KeyPolicy) -> Option<u64> {
    let latest = policy.versions.get(&policy.latest_version)?;
    let created = latest.created_secs();
    let mut due: Option<u64> = None;
    let mut consider = |at: u64| due = Some(due.map_or(at, |current| current.min(at)));
    if policy.auto_rotate_period > 0 {
        consider(created.saturating_add(policy.auto_rotate_period));
    }
    if let Some(expiry) = policy.expiry_secs(policy.latest_version) {
        let rotation = &policy.rotation;
        if rotation.rotate_before_expiry > 0 {
            consider(expiry.saturating_sub(rotation.rotate_before_expiry));
        }
        if rotation.notify_before_expiry > 0 && policy.notified_version < policy.latest_version {
            consider(expiry.saturating_sub(rotation.notify_before_expiry));
        }
    }
    due
}

/// Applies `edit` to the schedule and stores it if it changed.
pub fn edit_schedule(
    storage: &mut dyn Storage,
    edit: impl FnOnce(&mut BTreeMap<String, u64>),
) -> Result<(), LogicalError> {
    let mut schedule: Schedule = store::load_value(storage, SCHEDULE_KEY)?.unwrap_or_default();
    let before = schedule.due.clone();
    edit(&mut schedule.due);
    if schedule.due != before {
        store::store_value(storage, SCHEDULE_KEY, &schedule)?;
    }
    Ok(())
}

fn set_due(map: &mut BTreeMap<String, u64>, key: String, due: Option<u64>) {
    match due {
        Some(at) => {
            map.insert(key, at);
        }
        None => {
            map.remove(&key);
        }
    }
}

/// Stages a policy and keeps its schedule entry in step.
pub fn save(storage: &mut dyn Storage, id: &KeyId, policy: &KeyPolicy) -> Result<(), LogicalError> {
    store::put(storage, id, policy)?;
    let key = store::policy_key(&policy.name);
    let due = next_due(policy);
    edit_schedule(storage, |map| set_due(map, key, due))
}

/// Stages a trashed key and its purge time.
pub fn save_trashed(
    storage: &mut dyn Storage,
    name: &str,
    trashed: &TrashedKey,
) -> Result<(), LogicalError> {
    let key = store::trash_key(name, trashed.deleted_nanos);
    store::store_value(storage, &key, trashed)?;
    let purge = trashed.purge_secs;
    edit_schedule(storage, |map| set_due(map, key, Some(purge)))
}

/// Stages the removal of a record and its schedule entry.
pub fn remove(storage: &mut dyn Storage, storage_key: &str) -> Result<(), LogicalError> {
    storage.delete(storage_key)?;
    edit_schedule(storage, |map| {
        map.remove(storage_key);
    })
}

/// Appends an event.
pub fn record_event(
    storage: &mut dyn Storage,
    now_nanos: u64,
    kind: &str,
    key: &str,
    version: u32,
    detail: String,
) -> Result<(), LogicalError> {
    let mut log: EventLog = store::load_value(storage, EVENTS_KEY)?.unwrap_or_default();
    log.events.push(Event {
        seq: log.next_seq,
        time_nanos: now_nanos,
        kind: kind.to_string(),
        key: key.to_string(),
        version,
        detail,
    });
    log.next_seq += 1;
    if log.events.len() > MAX_EVENTS {
        let excess = log.events.len() - MAX_EVENTS;
        log.events.drain(..excess);
    }
    store::store_value(storage, EVENTS_KEY, &log)
}

/// The `events` read shape: `{"events": [...]}`, events with `seq >= since`.
pub fn events_json(storage: &mut dyn Storage, since: u64) -> Result<Value, LogicalError> {
    let log: EventLog = store::load_value(storage, EVENTS_KEY)?.unwrap_or_default();
    let events: Vec<Value> = log
        .events
        .iter()
        .filter(|event| event.seq >= since)
        .map(|event| {
            json!({
                "seq": event.seq,
                "time": time::format_nanos(event.time_nanos),
                "type": event.kind,
                "key": event.key,
                "version": event.version,
                "detail": event.detail,
            })
        })
        .collect();
    Ok(json!({ "events": events, "next_seq": log.next_seq }))
}

/// The periodic pass: handles up to [`MAX_PER_PASS`] due records.
pub fn periodic(storage: &mut dyn Storage, now_secs: u64) -> Result<(), LogicalError> {
    let Some(schedule) = store::load_value::<Schedule>(storage, SCHEDULE_KEY)? else {
        return Ok(());
    };
    let due: Vec<String> = schedule
        .due
        .iter()
        .filter(|(_, at)| **at <= now_secs)
        .map(|(key, _)| key.clone())
        .take(MAX_PER_PASS)
        .collect();
    for key in due {
        if let Some(name) = key.strip_prefix(POLICY_PREFIX) {
            maintain_key(storage, name, now_secs)?;
        } else if key.starts_with(TRASH_PREFIX) {
            purge_if_due(storage, &key, now_secs)?;
        } else {
            edit_schedule(storage, |map| {
                map.remove(&key);
            })?;
        }
    }
    Ok(())
}

fn maintain_key(storage: &mut dyn Storage, name: &str, now_secs: u64) -> Result<(), LogicalError> {
    let Some(loaded) = store::load(storage, name)? else {
        let key = store::policy_key(name);
        return edit_schedule(storage, |map| {
            map.remove(&key);
        });
    };
    let now_nanos = now_secs.saturating_mul(1_000_000_000);
    let mut policy = loaded.policy.clone();
    let created = policy.latest()?.created_secs();
    let expiry = policy.expiry_secs(policy.latest_version);
    let rotation = policy.rotation.clone();
    let reason = if policy.auto_rotate_period > 0
        && now_secs >= created.saturating_add(policy.auto_rotate_period)
    {
        Some("auto_rotate_period passed")
    } else if rotation.rotate_before_expiry > 0
        && expiry.is_some_and(|at| now_secs >= at.saturating_sub(rotation.rotate_before_expiry))
    {
        Some("rotation policy: rotate before expiry")
    } else {
        None
    };
    if let Some(reason) = reason {
        let version = policy.rotate(now_nanos)?;
        record_event(storage, now_nanos, "rotated", name, version, reason.into())?;
    } else if let Some(at) = expiry
        && rotation.notify_before_expiry > 0
        && policy.notified_version < policy.latest_version
        && now_secs >= at.saturating_sub(rotation.notify_before_expiry)
    {
        policy.notified_version = policy.latest_version;
        record_event(
            storage,
            now_nanos,
            "near_expiry",
            name,
            policy.latest_version,
            format!(
                "key version {} expires at {}",
                policy.latest_version,
                time::format_nanos(at.saturating_mul(1_000_000_000))
            ),
        )?;
    }
    if policy != loaded.policy {
        save(storage, &loaded.id, &policy)
    } else {
        let key = store::policy_key(name);
        let due = next_due(&policy);
        edit_schedule(storage, |map| set_due(map, key, due))
    }
}

fn purge_if_due(storage: &mut dyn Storage, key: &str, now_secs: u64) -> Result<(), LogicalError> {
    let Some(trashed) = store::load_value::<TrashedKey>(storage, key)? else {
        return remove(storage, key);
    };
    if trashed.purge_secs > now_secs {
        let purge = trashed.purge_secs;
        return edit_schedule(storage, |map| set_due(map, key.to_string(), Some(purge)));
    }
    remove(storage, key)?;
    let name = key
        .strip_prefix(TRASH_PREFIX)
        .and_then(|rest| rest.rsplit_once('/'))
        .map_or(key, |(name, _)| name);
    record_event(
        storage,
        now_secs.saturating_mul(1_000_000_000),
        "purged",
        name,
        trashed.latest_version,
        "deletion window passed; key material destroyed".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::transit::keytype::KeyType;
    use crate::engines::transit::test_util;
    use crate::logical::testing::MemoryStorage;

    #[test]
    fn due_times_follow_the_settings() {
        let mut policy = test_util::policy(KeyType::Aes256Gcm96);
        let created = policy.latest().unwrap().created_secs();
        assert_eq!(next_due(&policy), None);
        policy.auto_rotate_period = 7_200;
        assert_eq!(next_due(&policy), Some(created + 7_200));
        policy.rotation.expires_in = 5_000;
        policy.rotation.notify_before_expiry = 1_000;
        assert_eq!(next_due(&policy), Some(created + 4_000));
        policy.notified_version = 1;
        assert_eq!(next_due(&policy), Some(created + 7_200));
    }

    #[test]
    fn an_idle_schedule_writes_nothing() {
        let mut storage = MemoryStorage::default();
        periodic(&mut storage, 1_000).unwrap();
        assert!(storage.keys().is_empty());
        edit_schedule(&mut storage, |map| {
            map.insert("policy/x".into(), 5_000);
        })
        .unwrap();
        let before = storage.get(SCHEDULE_KEY).unwrap();
        periodic(&mut storage, 1_000).unwrap();
        assert_eq!(storage.get(SCHEDULE_KEY).unwrap(), before);
        // A due entry for a key that no longer exists is dropped.
        periodic(&mut storage, 6_000).unwrap();
        let schedule: Schedule = store::load_value(&mut storage, SCHEDULE_KEY)
            .unwrap()
            .unwrap();
        assert!(schedule.due.is_empty());
    }
}
