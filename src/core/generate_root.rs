//! Generate root (`sys/generate-root/attempt|update`), for a lost root token: a quorum of unseal
//! key shares authorizes a new root token, created through the token store in one Raft
//! transaction (with the request's audit record) and returned encoded with a one-time pad.
//!
//! Vault 1.10+'s OTP scheme: an attempt started without `otp` gets a server-generated base62 OTP
//! exactly as long as a token (returned once, in the start response, with `otp_length`); an `otp`
//! given by the client must have that length. The result is `encoded_token` (and the same value
//! as `encoded_root_token`) = base64-raw-std(token XOR OTP); see [`crate::crypto::otp`].
//! With `pgp_key` instead (an attempt takes one or the other), `encoded_token` is the base64 of
//! the OpenPGP message encrypting the token to that key, as Vault returns it (see
//! [`super::pgp`]), and `pgp_fingerprint` names the key.

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
use super::pgp;
use crate::auth::token;
use crate::barrier::SEAL_CONFIG_PATH;
use crate::crypto::otp;
use crate::crypto::pgp::RecipientKey;
use crate::crypto::random_id;
use crate::seal;
use crate::seal::UnsealProgress;

/// Length of a token from [`token::generate_token`] (`hvs.` + 43 base64url characters), hence of
/// the OTP (`otp_length`).
pub const ROOT_TOKEN_LEN: usize = 47;

/// A root generation attempt in progress on this node.
pub(super) struct GenerateRootState {
    nonce: String,
    encoding: TokenEncoding,
    progress: UnsealProgress,
}

/// How the new root token is returned.
enum TokenEncoding {
    /// XORed with this one-time pad.
    Otp(Zeroizing<String>),
    /// Encrypted to this OpenPGP key.
    Pgp(Box<RecipientKey>),
}

impl GenerateRootState {
    /// The attempt's `pgp_fingerprint` (empty with an OTP).
    fn fingerprint(&self) -> &str {
        match &self.encoding {
            TokenEncoding::Otp(_) => "",
            TokenEncoding::Pgp(key) => key.fingerprint(),
        }
    }
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
        let given_otp = text("otp")?;
        let pgp_key = pgp::single_key(data.get("pgp_key"), "pgp_key")?;
        if pgp_key.is_some() && !given_otp.is_empty() {
            return Err(CoreError::InvalidRequest(
                "only one of otp and pgp_key may be given".into(),
            ));
        }
        let generated = given_otp.is_empty() && pgp_key.is_none();
        let encoding = if let Some(key) = pgp_key {
            TokenEncoding::Pgp(Box::new(key))
        } else if generated {
            TokenEncoding::Otp(otp::generate(ROOT_TOKEN_LEN))
        } else if given_otp.len() != ROOT_TOKEN_LEN {
            return Err(CoreError::InvalidRequest(
                "OTP string is wrong length".into(),
            ));
        } else {
            TokenEncoding::Otp(Zeroizing::new(given_otp.to_string()))
        };
        self.node.read_point().await?;
        let (config, _) = self.seal_config_revision()?;
        let mut state = self.ceremonies.generate_root();
        if state.is_some() {
            return Err(CoreError::InvalidRequest(
                "root generation already in progress".into(),
            ));
        }
        let shown = match &encoding {
            TokenEncoding::Otp(otp) if generated => otp.to_string(),
            _ => String::new(),
        };
        *state = Some(GenerateRootState {
            nonce: random_id(),
            encoding,
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
        let (encoding, fingerprint) = {
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
                    state.fingerprint(),
                ))));
            };
            // Authenticate the quorum: the combined key must open the stored root key.
            seal::unwrap_root_key(&unseal_key, &root_key_blob.value).inspect_err(|_| {
                tracing::warn!("root generation aborted: the shares did not open the root key");
            })?;
            let Some(state) = guard.take() else {
                return Err(CoreError::Internal("root generation state vanished".into()));
            };
            let fingerprint = state.fingerprint().to_string();
            (state.encoding, fingerprint)
        };

        let mut builder = self.new_txn();
        let root_token = token::generate_token();
        let encoded = match &encoding {
            TokenEncoding::Otp(pad) => otp::encode(&root_token, pad)
                .map_err(|err| CoreError::Internal(format!("encoding the root token: {err}")))?,
            TokenEncoding::Pgp(key) => pgp::encrypt_token(key, &root_token)?,
        };
        let id_hash = hex::encode(self.barrier.mac("token", root_token.as_bytes())?);
        let entry = token::root_entry(id_hash, token::generate_accessor(), now_secs());
        token::store(&mut builder.view(token::VIEW_PREFIX), &entry)
            .map_err(|err| CoreError::Internal(err.to_string()))?;
        let response = update_json(
            nonce,
            usize::from(required),
            required,
            &encoded,
            &fingerprint,
        );
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
        "pgp_fingerprint": state.map_or("", GenerateRootState::fingerprint),
        "otp": otp,
        "otp_length": ROOT_TOKEN_LEN,
    })
}

/// Vault's answer to `sys/generate-root/update` (`complete` once progress reaches `required`).
fn update_json(
    nonce: &str,
    progress: usize,
    required: u8,
    encoded: &str,
    fingerprint: &str,
) -> Value {
    json!({
        "nonce": nonce,
        "started": true,
        "progress": progress,
        "required": required,
        "complete": progress >= usize::from(required),
        "encoded_token": encoded,
        "encoded_root_token": encoded,
        "pgp_fingerprint": fingerprint,
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
            encoding: TokenEncoding::Otp(Zeroizing::new("x".repeat(ROOT_TOKEN_LEN))),
            progress: UnsealProgress::new(),
        };
        let started = attempt_json(Some(&state), 3, "");
        assert_eq!(started["nonce"], "n-1");
        assert_eq!(
            started["otp"], "",
            "the OTP is never shown after the start response"
        );
        assert_eq!(started["pgp_fingerprint"], "");
        let partial = update_json("n-1", 1, 3, "", "");
        assert_eq!(
            (partial["complete"].clone(), partial["progress"].clone()),
            (json!(false), json!(1))
        );
        let done = update_json("n-1", 3, 3, "abc", "f1");
        assert_eq!(done["complete"], true);
        assert_eq!(done["encoded_token"], "abc");
        assert_eq!(done["encoded_root_token"], "abc");
        assert_eq!(done["pgp_fingerprint"], "f1");
    }

    #[test]
    fn a_pgp_attempt_names_its_key() {
        let (_, public) = crate::crypto::pgp::test_keys::generate(true);
        let key = RecipientKey::parse(&public).unwrap();
        let fingerprint = key.fingerprint().to_string();
        let state = GenerateRootState {
            nonce: "n-1".into(),
            encoding: TokenEncoding::Pgp(Box::new(key)),
            progress: UnsealProgress::new(),
        };
        let started = attempt_json(Some(&state), 2, "");
        assert_eq!(started["pgp_fingerprint"], json!(fingerprint));
        assert_eq!(started["otp"], "");
    }
}
