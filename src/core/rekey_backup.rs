//! `sys/rekey/backup` (Vault's): with `backup: true` and `pgp_keys` at `sys/rekey/init`, the
//! rekey stores the new shares, encrypted to their holders' keys, inside the barrier at
//! [`REKEY_BACKUP_PATH`] in the same transaction that puts them in effect. An operator with
//! `sudo` reads them back (`GET`, for a holder who lost the reply) or deletes them (`DELETE`).
//! A rekey without `backup` deletes any older backup, whose shares it made useless.
//!
//! Only PGP-encrypted shares are ever stored: `backup` without `pgp_keys` is refused at init.

use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::Core;
use super::CoreError;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;

/// Storage key of the backed-up encrypted shares (a barrier value).
pub(super) const REKEY_BACKUP_PATH: &str = "core/rekey-backup";

/// Vault's backup object: the rekey's nonce, and per holder key fingerprint the encrypted
/// shares made for it (hex of the OpenPGP message, and its base64), in share order.
pub(super) fn backup_record(
    nonce: &str,
    fingerprints: &[String],
    keys_hex: &[String],
    keys_base64: &[String],
) -> Value {
    let mut keys: Map<String, Value> = Map::new();
    let mut keys_b64: Map<String, Value> = Map::new();
    for ((fingerprint, hex), base64) in fingerprints.iter().zip(keys_hex).zip(keys_base64) {
        push(&mut keys, fingerprint, hex);
        push(&mut keys_b64, fingerprint, base64);
    }
    json!({"nonce": nonce, "keys": keys, "keys_base64": keys_b64})
}

fn push(map: &mut Map<String, Value>, fingerprint: &str, value: &str) {
    match map
        .entry(fingerprint.to_string())
        .or_insert_with(|| json!([]))
    {
        Value::Array(items) => items.push(json!(value)),
        other => *other = json!([value]),
    }
}

impl Core {
    /// `GET` / `DELETE sys/rekey/backup`; `None` for any other path.
    pub(super) fn rekey_backup_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Option<Result<Response, CoreError>> {
        if request.path != "sys/rekey/backup" {
            return None;
        }
        Some(match request.operation {
            Operation::Read => read_backup(txn),
            Operation::Delete => {
                txn.delete(REKEY_BACKUP_PATH);
                Ok(Response::no_content())
            }
            _ => Err(CoreError::Logical(LogicalError::UnsupportedOperation)),
        })
    }
}

fn read_backup(txn: &mut TxnBuilder) -> Result<Response, CoreError> {
    let stored = txn
        .get(REKEY_BACKUP_PATH)
        .map_err(LogicalError::from)?
        .ok_or_else(|| CoreError::InvalidRequest("no backed-up keys found".into()))?;
    let value: Value = serde_json::from_slice(&stored)
        .map_err(|err| CoreError::Internal(format!("{REKEY_BACKUP_PATH}: {err}")))?;
    Ok(Response::from_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_groups_encrypted_shares_by_fingerprint_in_share_order() {
        let fingerprints = ["aa".to_string(), "bb".to_string(), "aa".to_string()];
        let hex = ["01".to_string(), "02".to_string(), "03".to_string()];
        let b64 = ["AQ==".to_string(), "Ag==".to_string(), "Aw==".to_string()];
        assert_eq!(
            backup_record("n-1", &fingerprints, &hex, &b64),
            json!({
                "nonce": "n-1",
                "keys": {"aa": ["01", "03"], "bb": ["02"]},
                "keys_base64": {"aa": ["AQ==", "Aw=="], "bb": ["Ag=="]},
            })
        );
    }
}
