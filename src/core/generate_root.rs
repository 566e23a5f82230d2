//! Generate root (`sys/generate-root/attempt|update`), for a lost root token: a quorum of unseal
//! key shares authorizes a new root token, created through the token store in one Raft
//! transaction (with the request's audit record) and returned encoded with a one-time pad.
//!
//! Vault 1.10+'s OTP scheme: an attempt started without `otp` gets a server-generated base62 OTP
//! exactly as long as a token (returned once, in the start response, with `otp_length`); an `otp`
//! given by the client must have that length. The result is `encoded_token` (and the same value
//! as `encoded_root_token`) = base64-raw-std(token XOR OTP); see [`crate::crypto::otp`].
//! `pgp_key` is refused for now.

use serde_json::Map;
use serde_json::Value;
use serde_json::json;
use strongroom_raft::Guard;
use strongroom_raft::TxnOutcome;
use zeroize::Zeroizing;

use super::Core;
use super::CoreError;
use super::ceremony::CeremonyRequest;
use super::ceremony::Outcome;
use super::ceremony::ShareSubmission;
use super::now_secs;
use crate::auth::token;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::crypto::otp;
use crate::crypto::random_id;
use crate::seal;
use crate::seal::UnsealProgress;

/// Length of a token from [`token::generate_token`] (`hvs.` + 43 base64url characters), hence of
/// the OTP (`otp_length`).
pub const ROOT_TOKEN_LEN: usize = 47;

/// A root generation attempt in progress on this node.
pub(super) struct GenerateRootState {
    nonce: String,
    otp: Zeroizing<String>,
    progress: UnsealProgress,
}

impl Core {
    /// `GET sys/generate-root/attempt`.
    pub(super) async fn generate_root_status(&self) -> Result<Value, CoreError> {
        self.node.read_point().await?;
        let (config, _) = self.seal_config_revision()?;
        let state = self.ceremonies.generate_root();
        Ok(attempt_json(state.as_ref(), config.secret_threshold, ""))
    }

    /// `PUT sys/generate-root/attempt {otp | pgp_key}`.
    pub(super) async fn generate_root_init(
        &self,
        data: &Map<String, Value>,
    ) -> Result<Value, CoreError> {
        let text = |name: &str| match data.get(name) {
            None | Some(Value::Null) => Ok(""),
            Some(Value::String(text)) => Ok(text.as_str()),
            Some(_) => Err(CoreError::InvalidRequest(format!(
                "{name} must be a string"
            ))),
        };
        let (given_otp, pgp_key) = (text("otp")?, text("pgp_key")?);
        if !pgp_key.is_empty() {
            return Err(CoreError::InvalidRequest(
                "PGP-encrypted root tokens are not supported yet; start the attempt with an otp, or with neither and the server generates one".into(),
            ));
        }
        let generated = given_otp.is_empty();
        let otp = if generated {
            otp::generate(ROOT_TOKEN_LEN)
        } else if given_otp.len() != ROOT_TOKEN_LEN {
            return Err(CoreError::InvalidRequest(
                "OTP string is wrong length".into(),
            ));
        } else {
            Zeroizing::new(given_otp.to_string())
        };
        self.node.read_point().await?;
        let (config, _) = self.seal_config_revision()?;
        let mut state = self.ceremonies.generate_root();
        if state.is_some() {
            return Err(CoreError::InvalidRequest(
                "root generation already in progress".into(),
            ));
        }
        let shown = if generated {
            otp.to_string()
        } else {
            String::new()
        };
        *state = Some(GenerateRootState {
            nonce: random_id(),
            otp,
            progress: UnsealProgress::new(),
        });
        tracing::info!("root generation initialized");
        Ok(attempt_json(
            state.as_ref(),
            config.secret_threshold,
            &shown,
        ))
    }

    /// `PUT sys/generate-root/update {key, nonce}`: one share; at the threshold a new root token.
    pub(super) async fn generate_root_update(
        &self,
        request: &CeremonyRequest,
        request_id: &str,
    ) -> Result<Outcome, CoreError> {
        let ShareSubmission {
            key,
            nonce,
            config,
            config_revision,
            root_key: root_key_blob,
        } = self.share_submission(request).await?;
        let required = config.secret_threshold;
        let otp = {
            let mut guard = self.ceremonies.generate_root();
            let Some(state) = guard.as_mut() else {
                return Err(CoreError::InvalidRequest(
                    "no root generation in progress".into(),
                ));
            };
            if nonce != state.nonce {
                return Err(CoreError::InvalidRequest(format!(
                    "incorrect nonce supplied; nonce for this root generation operation is {:?}",
                    state.nonce
                )));
            }
            let Some(unseal_key) = state.progress.submit(&config, key)? else {
                return Ok(Outcome::Reply(Some(update_json(
                    nonce,
                    state.progress.progress(),
                    required,
                    "",
                ))));
            };
            // Authenticate the quorum: the combined key must open the stored root key.
            seal::unwrap_root_key(&unseal_key, &root_key_blob.value).inspect_err(|_| {
                tracing::warn!("root generation aborted: the shares did not open the root key");
            })?;
            let Some(state) = guard.take() else {
                return Err(CoreError::Internal("root generation state vanished".into()));
            };
            state.otp
        };

        let mut builder = self.new_txn();
        let root_token = token::generate_token();
        let encoded = otp::encode(&root_token, &otp)
            .map_err(|err| CoreError::Internal(format!("encoding the root token: {err}")))?;
        let id_hash = hex::encode(self.barrier.mac("token", root_token.as_bytes())?);
        let entry = token::root_entry(id_hash, token::generate_accessor(), now_secs());
        token::store(&mut builder.view(token::VIEW_PREFIX), &entry)
            .map_err(|err| CoreError::Internal(err.to_string()))?;
        let response = update_json(nonce, usize::from(required), required, &encoded);
        let record = self.ceremony_record(request, request_id, Ok(Some(&response)))?;
        let mut txn = builder.into_txn(vec![record])?;
        // The shares were checked against this configuration: a rekey committed meanwhile
        // voids them.
        txn.guards.push(Guard::ModRevision {
            key: SEAL_CONFIG_PATH.to_string(),
            revision: config_revision,
        });
        match self.node.propose(txn).await?.outcome {
            TxnOutcome::Applied { .. } => {
                tracing::info!("root generation finished: a new root token was created");
                Ok(Outcome::Committed(response))
            }
            TxnOutcome::GuardFailed { .. } => Err(CoreError::InvalidRequest(
                "the seal configuration changed during root generation; start a new attempt".into(),
            )),
        }
    }
}

/// Vault's attempt status object; `otp` is non-empty only in the response that generated it.
fn attempt_json(state: Option<&GenerateRootState>, required: u8, otp: &str) -> Value {
    json!({
        "nonce": state.map_or("", |s| s.nonce.as_str()),
        "started": state.is_some(),
        "progress": state.map_or(0, |s| s.progress.progress()),
        "required": required,
        "complete": false,
        "encoded_token": "",
        "encoded_root_token": "",
        "pgp_fingerprint": "",
        "otp": otp,
        "otp_length": ROOT_TOKEN_LEN,
    })
}

/// Vault's answer to `sys/generate-root/update` (`complete` once progress reaches `required`).
fn update_json(nonce: &str, progress: usize, required: u8, encoded: &str) -> Value {
    json!({
        "nonce": nonce,
        "started": true,
        "progress": progress,
        "required": required,
        "complete": progress >= usize::from(required),
        "encoded_token": encoded,
        "encoded_root_token": encoded,
        "pgp_fingerprint": "",
        "otp": "",
        "otp_length": 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_length_is_the_token_length() {
        for _ in 0..8 {
            assert_eq!(token::generate_token().len(), ROOT_TOKEN_LEN);
        }
    }

    #[test]
    fn shapes_match_vault() {
        let idle = attempt_json(None, 3, "");
        assert_eq!(idle["started"], false);
        assert_eq!(idle["otp_length"], ROOT_TOKEN_LEN);
        assert_eq!(idle["required"], 3);
        let state = GenerateRootState {
            nonce: "n-1".into(),
            otp: Zeroizing::new("x".repeat(ROOT_TOKEN_LEN)),
            progress: UnsealProgress::new(),
        };
        let started = attempt_json(Some(&state), 3, "");
        assert_eq!(started["nonce"], "n-1");
        assert_eq!(
            started["otp"], "",
            "the OTP is never shown after the start response"
        );
        let partial = update_json("n-1", 1, 3, "");
        assert_eq!(
            (partial["complete"].clone(), partial["progress"].clone()),
            (json!(false), json!(1))
        );
        let done = update_json("n-1", 3, 3, "abc");
        assert_eq!(done["complete"], true);
        assert_eq!(done["encoded_token"], "abc");
        assert_eq!(done["encoded_root_token"], "abc");
    }
}
