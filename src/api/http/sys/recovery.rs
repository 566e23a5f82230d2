//! `sys/init` on a node with an HSM seal (`[seal.pkcs11]`): Vault's recovery parameters. The
//! shares issued are recovery shares (`recovery_shares`, `recovery_threshold`,
//! `recovery_pgp_keys`), returned as `recovery_keys` / `recovery_keys_base64` while `keys` and
//! `keys_base64` stay empty, as Vault answers for auto-unseal. On a Shamir node the recovery
//! parameters are refused with Vault's message.

use serde_json::Value;

use super::InitRequest;
use crate::api::http::error::ApiError;

/// Rewrites an init request for this node's seal: with an HSM, the recovery parameters become
/// the share parameters (falling back to `secret_shares` / `secret_threshold` when absent, as
/// clients that only know those send them). Returns whether the node has an HSM seal.
///
/// # Errors
///
/// 400 for recovery parameters on a Shamir node, or `pgp_keys` on an HSM node (the recovery
/// shares' holders' keys go in `recovery_pgp_keys`).
pub(super) fn apply_seal(request: &mut InitRequest, hsm: bool) -> Result<bool, ApiError> {
    let given = |value: &Option<Value>| value.as_ref().is_some_and(|v| !v.is_null());
    if !hsm {
        if request.recovery_shares.is_some()
            || request.recovery_threshold.is_some()
            || given(&request.recovery_pgp_keys)
        {
            return Err(ApiError::BadRequest(
                "parameters recovery_shares,recovery_threshold,recovery_pgp_keys not applicable to seal type shamir".into(),
            ));
        }
        return Ok(false);
    }
    if given(&request.pgp_keys) {
        return Err(ApiError::BadRequest(
            "pgp_keys is for unseal keys, which an HSM seal does not issue; use recovery_pgp_keys"
                .into(),
        ));
    }
    if let Some(shares) = request.recovery_shares {
        request.secret_shares = Some(shares);
    }
    if let Some(threshold) = request.recovery_threshold {
        request.secret_threshold = Some(threshold);
    }
    request.pgp_keys = request.recovery_pgp_keys.take();
    Ok(true)
}

/// Vault's answer shape for an HSM seal: the issued shares under `recovery_keys*`.
pub(super) fn answer(mut body: Value, hsm: bool) -> Value {
    if hsm && let Some(object) = body.as_object_mut() {
        for (from, to) in [
            ("keys", "recovery_keys"),
            ("keys_base64", "recovery_keys_base64"),
        ] {
            let shares = object.insert(from.to_string(), Value::Array(Vec::new()));
            object.insert(to.to_string(), shares.unwrap_or(Value::Array(Vec::new())));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: Value) -> InitRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn recovery_parameters_become_the_share_parameters_with_an_hsm() {
        let mut init = request(json!({"recovery_shares": 4, "recovery_threshold": 2}));
        assert!(apply_seal(&mut init, true).unwrap());
        assert_eq!(
            (init.secret_shares, init.secret_threshold),
            (Some(4), Some(2))
        );
        let mut fallback = request(json!({"secret_shares": 5, "secret_threshold": 3}));
        assert!(apply_seal(&mut fallback, true).unwrap());
        assert_eq!(
            (fallback.secret_shares, fallback.secret_threshold),
            (Some(5), Some(3))
        );
        let mut pgp = request(
            json!({"recovery_shares": 1, "recovery_threshold": 1, "recovery_pgp_keys": ["k"]}),
        );
        assert!(apply_seal(&mut pgp, true).unwrap());
        assert_eq!(pgp.pgp_keys, Some(json!(["k"])));
        let mut wrong =
            request(json!({"recovery_shares": 1, "recovery_threshold": 1, "pgp_keys": ["k"]}));
        assert!(apply_seal(&mut wrong, true).is_err());
    }

    #[test]
    fn recovery_parameters_are_refused_on_shamir() {
        let mut init =
            request(json!({"secret_shares": 5, "secret_threshold": 3, "recovery_shares": 5}));
        let err = apply_seal(&mut init, false).unwrap_err();
        assert!(format!("{err:?}").contains("not applicable to seal type shamir"));
        let mut plain = request(json!({"secret_shares": 5, "secret_threshold": 3}));
        assert!(!apply_seal(&mut plain, false).unwrap());
    }

    #[test]
    fn answer_moves_shares_to_recovery_keys() {
        let body = json!({"keys": ["a"], "keys_base64": ["b"], "root_token": "t"});
        let hsm = answer(body.clone(), true);
        assert_eq!(hsm["keys"], json!([]));
        assert_eq!(hsm["keys_base64"], json!([]));
        assert_eq!(hsm["recovery_keys"], json!(["a"]));
        assert_eq!(hsm["recovery_keys_base64"], json!(["b"]));
        assert_eq!(hsm["root_token"], "t");
        assert_eq!(answer(body.clone(), false), body);
    }
}
