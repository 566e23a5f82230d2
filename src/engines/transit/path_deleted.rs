//! Scheduled deletion (beyond Vault; like AWS KMS's pending deletion and Azure's soft delete):
//! `LIST deleted`, `GET deleted/<name>` (pending deletions of that name), `POST
//! deleted/<name>/recover` (put the key back, same material and identity), `DELETE
//! deleted/<name>` (purge now). Also `GET events` (rotation, expiry and purge events written by the
//! periodic pass; the core may forward them to the audit log).

use std::collections::BTreeSet;

use serde_json::Value;
use serde_json::json;

use super::fields;
use super::schedule;
use super::store;
use super::store::TRASH_PREFIX;
use super::store::TrashedKey;
use crate::logical::LogicalError;
use crate::logical::Request;
use crate::logical::Response;
use crate::logical::Storage;
use crate::logical::time;

/// Every pending deletion of `name`, oldest first, as (storage key, record).
fn pending(
    storage: &mut dyn Storage,
    name: &str,
) -> Result<Vec<(String, TrashedKey)>, LogicalError> {
    let prefix = format!("{TRASH_PREFIX}{name}/");
    let mut out = Vec::new();
    for key in storage.keys_under(&prefix)? {
        if key[prefix.len()..].contains('/') {
            continue;
        }
        if let Some(trashed) = store::load_value::<TrashedKey>(storage, &key)? {
            out.push((key, trashed));
        }
    }
    out.sort_by_key(|(_, trashed)| trashed.deleted_nanos);
    Ok(out)
}

/// The `deletion_id` field, if given.
fn deletion_id(request: &Request) -> Result<Option<u64>, LogicalError> {
    fields::u64_field(&fields::input(request), "deletion_id")
}

/// `LIST deleted`.
pub(super) fn list(storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let names: BTreeSet<String> = storage
        .keys_under(TRASH_PREFIX)?
        .into_iter()
        .filter_map(|key| {
            key.strip_prefix(TRASH_PREFIX)
                .and_then(|rest| rest.rsplit_once('/'))
                .map(|(name, _)| name.to_string())
        })
        .collect();
    Ok(Response::list(names.into_iter().collect()))
}

/// `GET deleted/<name>`.
pub(super) fn read(name: &str, storage: &mut dyn Storage) -> Result<Response, LogicalError> {
    let entries = pending(storage, name)?;
    if entries.is_empty() {
        return Err(LogicalError::NotFound);
    }
    let deletions: Vec<Value> = entries
        .iter()
        .map(|(_, trashed)| {
            json!({
                "deletion_id": trashed.deleted_nanos.to_string(),
                "deletion_time": time::format_nanos(trashed.deleted_nanos),
                "purge_time": time::format_nanos(trashed.purge_secs.saturating_mul(1_000_000_000)),
                "type": trashed.key_type,
                "latest_version": trashed.latest_version,
            })
        })
        .collect();
    Ok(Response::from_value(
        json!({ "name": name, "deletions": deletions }),
    ))
}

/// `POST deleted/<name>/recover [{"deletion_id": ...}]`: the newest deletion unless one is named.
pub(super) fn recover(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let wanted = deletion_id(request)?;
    let entries = pending(storage, name)?;
    let chosen = match wanted {
        Some(id) => entries
            .iter()
            .find(|(_, trashed)| trashed.deleted_nanos == id),
        None => entries.last(),
    };
    let Some((trash_key, trashed)) = chosen else {
        return Err(LogicalError::invalid(format!(
            "no pending deletion of key \"{name}\" to recover"
        )));
    };
    if store::load(storage, name)?.is_some() {
        return Err(LogicalError::invalid(format!(
            "key \"{name}\" already exists; delete or rename it before recovering"
        )));
    }
    let restored = store::decode_stored(trash_key, &trashed.stored)?;
    schedule::remove(storage, trash_key)?;
    schedule::save(storage, &restored.id, &restored.policy)?;
    Ok(Response::with_data(restored.policy.to_json()))
}

/// `DELETE deleted/<name> [{"deletion_id": ...}]`: purges now (all pending deletions of the name
/// unless one is named).
pub(super) fn purge(
    request: &Request,
    name: &str,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let wanted = deletion_id(request)?;
    let entries = pending(storage, name)?;
    let mut purged = false;
    for (key, trashed) in &entries {
        if wanted.is_none_or(|id| id == trashed.deleted_nanos) {
            schedule::remove(storage, key)?;
            purged = true;
        }
    }
    if !purged {
        return Err(LogicalError::NotFound);
    }
    Ok(Response::no_content())
}

/// `GET events[?since=N]`.
pub(super) fn events(
    request: &Request,
    storage: &mut dyn Storage,
) -> Result<Response, LogicalError> {
    let since = fields::u64_field(&fields::input(request), "since")?.unwrap_or(0);
    Ok(Response::from_value(schedule::events_json(storage, since)?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::engines::transit::schedule::periodic;
    use crate::engines::transit::test_util::*;
    use crate::logical::LogicalError;
    use crate::logical::Operation;
    use crate::logical::testing::MemoryStorage;
    use crate::logical::time;

    fn deletable(storage: &mut MemoryStorage, name: &str) {
        post(storage, &format!("keys/{name}"), json!({}));
        post(
            storage,
            &format!("keys/{name}/config"),
            json!({"deletion_allowed": true}),
        );
    }

    #[test]
    fn a_deleted_key_recovers_with_its_material() {
        let mut storage = MemoryStorage::default();
        deletable(&mut storage, "k");
        let sealed = post(
            &mut storage,
            "encrypt/k",
            json!({"plaintext": b64(b"kept")}),
        );
        call(&mut storage, Operation::Delete, "keys/k", json!({})).unwrap();
        post_err(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": sealed["ciphertext"]}),
        );
        let listed = call(&mut storage, Operation::List, "deleted", json!({})).unwrap();
        assert_eq!(data(&listed)["keys"], json!(["k"]));
        let recovered = post(&mut storage, "deleted/k/recover", json!({}));
        assert_eq!(recovered["name"], "k");
        let opened = post(
            &mut storage,
            "decrypt/k",
            json!({"ciphertext": sealed["ciphertext"]}),
        );
        assert_eq!(unb64(&opened["plaintext"]), b"kept");
        assert!(matches!(
            call(&mut storage, Operation::Read, "deleted/k", json!({})),
            Err(LogicalError::NotFound)
        ));
        post_err(&mut storage, "deleted/k/recover", json!({}));
    }

    #[test]
    fn recovery_refuses_to_overwrite_a_live_key() {
        let mut storage = MemoryStorage::default();
        deletable(&mut storage, "k");
        call(&mut storage, Operation::Delete, "keys/k", json!({})).unwrap();
        post(&mut storage, "keys/k", json!({}));
        let before = snapshot(&mut storage);
        post_err(&mut storage, "deleted/k/recover", json!({}));
        assert_eq!(snapshot(&mut storage), before);
    }

    #[test]
    fn the_periodic_pass_purges_after_the_window_and_records_it() {
        let mut storage = MemoryStorage::default();
        deletable(&mut storage, "k");
        let now = time::now_nanos();
        call_at(
            &mut storage,
            now,
            Operation::Delete,
            "keys/k",
            json!({"deletion_window": "7d"}),
        )
        .unwrap();
        let now_secs = now / 1_000_000_000;
        periodic(&mut storage, now_secs + 6 * 86_400).unwrap();
        assert!(get(&mut storage, "deleted/k")["deletions"].is_array());
        periodic(&mut storage, now_secs + 7 * 86_400 + 1).unwrap();
        assert!(matches!(
            call(&mut storage, Operation::Read, "deleted/k", json!({})),
            Err(LogicalError::NotFound)
        ));
        let events = get(&mut storage, "events");
        assert_eq!(events["events"][0]["type"], "purged");
        assert_eq!(events["events"][0]["key"], "k");
    }

    #[test]
    fn purge_now_and_bad_windows() {
        let mut storage = MemoryStorage::default();
        deletable(&mut storage, "k");
        post_err(
            &mut storage,
            "keys/k/config",
            json!({"deletion_window": "6d"}),
        );
        assert!(matches!(
            call(
                &mut storage,
                Operation::Delete,
                "keys/k",
                json!({"deletion_window": "91d"})
            ),
            Err(LogicalError::InvalidRequest(_))
        ));
        call(&mut storage, Operation::Delete, "keys/k", json!({})).unwrap();
        call(&mut storage, Operation::Delete, "deleted/k", json!({})).unwrap();
        assert!(matches!(
            call(&mut storage, Operation::Delete, "deleted/k", json!({})),
            Err(LogicalError::NotFound)
        ));
        // Only the events and schedule records remain (the schedule now empty).
        assert!(
            storage
                .keys()
                .iter()
                .all(|key| key == "schedule" || key == "events")
        );
    }
}
