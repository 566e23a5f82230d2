//! Background cleanup of `delete_version_after`: reads already treat an expired version as
//! deleted; this marks it deleted in the metadata for good (at the time it expired), a bounded
//! batch of secrets per run. Secrets that may expire are indexed under `expiring/<path>` so a run
//! never scans the whole mount.

use super::model::CONFIG_KEY;
use super::model::KeyMetadata;
use super::model::MountConfig;
use super::model::load;
use super::model::meta_key;
use super::model::store;
use crate::logical::LogicalError;
use crate::logical::Storage;

/// Secrets examined per maintenance run at most.
const MAX_PER_RUN: usize = 100;
const EXPIRING_PREFIX: &str = "expiring/";

/// The index key marking that `path` may have versions to expire.
pub(crate) fn expiring_key(path: &str) -> String {
    format!("{EXPIRING_PREFIX}{path}")
}

/// Marks `path` for the cleanup to look at.
pub(crate) fn mark_expiring(storage: &mut dyn Storage, path: &str) -> Result<(), LogicalError> {
    Ok(storage.put(&expiring_key(path), Vec::new())?)
}

/// Marks versions past their `delete_version_after` as deleted at their expiry time, and drops
/// the index entry of secrets with nothing left to expire.
pub(crate) fn expire_versions(
    storage: &mut dyn Storage,
    now_secs: u64,
) -> Result<(), LogicalError> {
    let indexed = storage.keys_under(EXPIRING_PREFIX)?;
    if indexed.is_empty() {
        return Ok(());
    }
    let config: MountConfig = load(storage, CONFIG_KEY)?.unwrap_or_default();
    let now = now_secs.saturating_mul(1_000_000_000);
    for key in indexed.into_iter().take(MAX_PER_RUN) {
        let Some(path) = key.strip_prefix(EXPIRING_PREFIX) else {
            continue;
        };
        let Some(mut meta) = load::<KeyMetadata>(storage, &meta_key(path))? else {
            storage.delete(&key)?;
            continue;
        };
        let after = meta
            .effective_delete_after(&config)
            .saturating_mul(1_000_000_000);
        if after == 0 {
            storage.delete(&key)?;
            continue;
        }
        let mut changed = false;
        let mut pending = false;
        for version in meta.versions.values_mut() {
            if version.destroyed || version.deletion_nanos.is_some() {
                continue;
            }
            let due = version.created_nanos.saturating_add(after);
            if due <= now {
                version.deletion_nanos = Some(due);
                changed = true;
            } else {
                pending = true;
            }
        }
        if changed {
            store(storage, &meta_key(path), &meta)?;
        }
        if !pending {
            storage.delete(&key)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engines::kv::KvV2;
    use crate::logical::Backend;
    use crate::logical::Operation;
    use crate::logical::Request;
    use crate::logical::testing::MemoryStorage;

    fn write(storage: &mut MemoryStorage, path: &str, body: serde_json::Value) {
        let mut request = Request::new(Operation::Update, path);
        if let serde_json::Value::Object(map) = body {
            request.data = map;
        }
        KvV2.handle(&request, storage).unwrap();
    }

    #[test]
    fn expired_versions_are_marked_deleted_and_the_index_emptied() {
        let mut storage = MemoryStorage::default();
        write(
            &mut storage,
            "metadata/tmp",
            json!({"delete_version_after": "1h"}),
        );
        write(&mut storage, "data/tmp", json!({"data": {"v": 1}}));
        write(&mut storage, "data/kept", json!({"data": {"v": 1}}));
        assert_eq!(
            storage
                .keys()
                .iter()
                .filter(|k| k.starts_with(EXPIRING_PREFIX))
                .count(),
            1
        );

        let now = crate::logical::time::now_nanos() / 1_000_000_000;
        KvV2.periodic(&mut storage, now).unwrap();
        let meta: KeyMetadata = load(&mut storage, &meta_key("tmp")).unwrap().unwrap();
        assert!(meta.versions[&1].deletion_nanos.is_none(), "not due yet");

        KvV2.periodic(&mut storage, now + 3_601).unwrap();
        let meta: KeyMetadata = load(&mut storage, &meta_key("tmp")).unwrap().unwrap();
        assert!(meta.versions[&1].deletion_nanos.is_some());
        assert!(
            storage
                .keys()
                .iter()
                .all(|k| !k.starts_with(EXPIRING_PREFIX)),
            "nothing left to expire"
        );
        let kept: KeyMetadata = load(&mut storage, &meta_key("kept")).unwrap().unwrap();
        assert!(kept.versions[&1].deletion_nanos.is_none());
    }
}
