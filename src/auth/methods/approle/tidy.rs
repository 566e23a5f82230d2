//! Removal of expired secret IDs: `periodic` (run by the core on the leader) and
//! `POST tidy/secret-id` both walk the expiry index in time order and remove at most
//! [`MAX_PER_RUN`] expired secret IDs per run, with their accessor and index entries.

use super::model::EXPIRY_PREFIX;
use super::model::delete_secret_id;
use super::model::load_secret_id;
use super::model::parse_expiry_key;
use crate::logical::LogicalError;
use crate::logical::Response;
use crate::logical::Storage;

/// Expired secret IDs removed per run at most.
pub(crate) const MAX_PER_RUN: usize = 256;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Removes up to [`MAX_PER_RUN`] secret IDs expired at `now_secs`; returns how many index entries
/// it handled.
pub(crate) fn remove_expired(
    storage: &mut dyn Storage,
    now_secs: u64,
) -> Result<usize, LogicalError> {
    let now_nanos = now_secs.saturating_mul(NANOS_PER_SEC);
    let keys = storage.keys_under(EXPIRY_PREFIX)?;
    let mut handled = 0;
    for key in keys.iter().take(MAX_PER_RUN) {
        let Some((seconds, role, hmac)) = parse_expiry_key(key) else {
            storage.delete(key)?;
            handled += 1;
            continue;
        };
        if seconds > now_secs {
            break;
        }
        match load_secret_id(storage, role, hmac)? {
            Some(entry) if entry.is_expired(now_nanos) => delete_secret_id(storage, role, &entry)?,
            // The entry's own index key differs: this one is stale.
            Some(_) | None => storage.delete(key)?,
        }
        handled += 1;
    }
    Ok(handled)
}

/// `POST tidy/secret-id`: one bounded cleanup pass now.
pub(crate) fn tidy(storage: &mut dyn Storage, now_nanos: u64) -> Result<Response, LogicalError> {
    let removed = remove_expired(storage, now_nanos / NANOS_PER_SEC)?;
    let mut response = Response::no_content();
    response.warnings.push(format!(
        "Tidy pass done: {removed} expired secret ID entries examined; the leader's background \
         maintenance removes any rest."
    ));
    Ok(response)
}
