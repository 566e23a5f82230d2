//! The client gRPC API (`proto/vault.proto`): the same pipeline as the HTTP API behind typed
//! calls. Tokens travel in the `x-vault-token` metadata entry. Calls refused while parsing and
//! unseal and init attempts are audited as over HTTP (see `core::audit_edge`).

mod error;

use std::sync::Arc;

use serde_json::Map;
use serde_json::Value;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use zeroize::Zeroizing;

use self::error::status_for;
use crate::api::input::json_object;
use crate::api::input::normalize_path;
use crate::core::Core;
use crate::core::CoreError;
use crate::core::audit_edge::InitAudit;
use crate::core::audit_edge::Rejected;
use crate::core::audit_edge::UnsealAttempt;
use crate::core::audit_edge::UnsealInput;
use crate::core::init::InitPgpKeys;
use crate::core::request::ClientRequest;
use crate::core::request::Consistency;
use crate::core::unseal::SealStatus;
use crate::logical::Operation;

/// The generated protobuf and tonic code for `proto/vault.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("strongroom.vault.v1");
}

/// Largest request accepted (Vault's default body limit).
const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// The gRPC service over a node's core.
pub struct VaultGrpc {
    core: Arc<Core>,
}

/// The tonic server for `core`, ready to add to a tonic `Server`.
pub fn service(core: Arc<Core>) -> pb::vault_server::VaultServer<VaultGrpc> {
    pb::vault_server::VaultServer::new(VaultGrpc { core })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn operation(value: i32) -> Result<Operation, Status> {
    Ok(match pb::Operation::try_from(value) {
        Ok(pb::Operation::Read) => Operation::Read,
        Ok(pb::Operation::List) => Operation::List,
        Ok(pb::Operation::Create) => Operation::Create,
        Ok(pb::Operation::Update) => Operation::Update,
        Ok(pb::Operation::Patch) => Operation::Patch,
        Ok(pb::Operation::Delete) => Operation::Delete,
        Ok(pb::Operation::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument("operation is required"));
        }
    })
}

fn invalid(err: crate::api::input::InputError) -> Status {
    Status::invalid_argument(err.to_string())
}

fn seal_status(status: SealStatus) -> pb::SealStatus {
    pb::SealStatus {
        initialized: status.initialized,
        sealed: status.sealed,
        t: u32::from(status.t),
        n: u32::from(status.n),
        progress: u32::try_from(status.progress).unwrap_or(u32::MAX),
        nonce: status.nonce,
        version: status.version.to_string(),
        cluster_name: status.cluster_name.unwrap_or_default(),
        cluster_id: status.cluster_id.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl pb::vault_server::Vault for VaultGrpc {
    async fn call(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallResponse>, Status> {
        let token = request
            .metadata()
            .get("x-vault-token")
            .and_then(|value| value.to_str().ok())
            .map(|value| Zeroizing::new(value.to_string()));
        let remote_address = request.remote_addr().map(|addr| addr.ip().to_string());
        let call = request.into_inner();
        let parsed = operation(call.operation).and_then(|operation| {
            let path = normalize_path(&call.path, operation == Operation::List).map_err(invalid)?;
            let data = json_object(&call.json_body).map_err(invalid)?;
            Ok((operation, path, data))
        });
        let (operation, path, data) = match parsed {
            Ok(parsed) => parsed,
            Err(status) => {
                let operation = operation(call.operation).map_or("unknown", Operation::as_str);
                let rejected = Rejected {
                    operation,
                    path: &call.path,
                    token: token.as_deref().map(String::as_str),
                    remote_address,
                    status: 400,
                    error: status.message().to_string(),
                };
                return Err(match self.core.audit_rejected(&rejected).await {
                    Ok(_) | Err(CoreError::Sealed) => status,
                    Err(err) => status_for(&err),
                });
            }
        };
        let client_request = ClientRequest {
            operation,
            path,
            token,
            data,
            query: call.query.into_iter().collect(),
            remote_address,
            consistency: if call.stale {
                Consistency::Stale
            } else {
                Consistency::Linearizable
            },
        };
        let handled = self.core.handle(client_request).await;
        let reply = handled.result.map_err(|err| status_for(&err))?;
        let response = reply.response;
        let status =
            response
                .status
                .unwrap_or(if response.data.is_some() || reply.auth.is_some() {
                    200
                } else {
                    204
                });
        let to_json = |map: Option<Map<String, Value>>| match map {
            Some(map) => serde_json::to_vec(&Value::Object(map))
                .map_err(|err| Status::internal(err.to_string())),
            None => Ok(Vec::new()),
        };
        let json_data = to_json(response.data)?;
        let json_auth = to_json(reply.auth)?;
        Ok(Response::new(pb::CallResponse {
            request_id: handled.request_id,
            status: u32::from(status),
            json_data,
            json_auth,
            warnings: response.warnings,
        }))
    }

    async fn init(
        &self,
        request: Request<pb::InitRequest>,
    ) -> Result<Response<pb::InitResponse>, Status> {
        let remote_address = request.remote_addr().map(|addr| addr.ip().to_string());
        let init = request.into_inner();
        let mut data = Map::new();
        data.insert("secret_shares".into(), init.secret_shares.into());
        data.insert("secret_threshold".into(), init.secret_threshold.into());
        // Audited as over HTTP (see `core::audit_edge`); gRPC's answer has no request id.
        let audit = InitAudit::new(remote_address, Some(data));
        let initialized = self
            .core
            .initialize(
                init.secret_shares,
                init.secret_threshold,
                &InitPgpKeys::default(),
                &audit,
            )
            .await;
        let result = match initialized {
            Ok(result) => result,
            Err(err) => {
                let status = err.kind().status_code();
                let recorded = self
                    .core
                    .audit_init_failure(audit, status, err.client_message())
                    .await;
                return Err(match recorded {
                    Ok(_) => status_for(&err),
                    Err(record_err) => status_for(&record_err),
                });
            }
        };
        Ok(Response::new(pb::InitResponse {
            keys: result.shares.iter().map(|share| share.to_hex()).collect(),
            keys_base64: result
                .shares
                .iter()
                .map(|share| share.to_base64())
                .collect(),
            root_token: result.root_token.to_string(),
        }))
    }

    async fn unseal(
        &self,
        request: Request<pb::UnsealRequest>,
    ) -> Result<Response<pb::SealStatus>, Status> {
        let remote_address = request.remote_addr().map(|addr| addr.ip().to_string());
        let unseal = request.into_inner();
        let key = (!unseal.key.is_empty()).then(|| Zeroizing::new(unseal.key));
        let attempt = UnsealAttempt {
            input: Ok(UnsealInput {
                key,
                reset: unseal.reset,
                migrate: false,
            }),
            remote_address,
        };
        let outcome = self.core.unseal_audited(attempt).await;
        let status = outcome.result.map_err(|err| status_for(&err))?;
        Ok(Response::new(seal_status(status)))
    }

    async fn get_seal_status(
        &self,
        _request: Request<pb::SealStatusRequest>,
    ) -> Result<Response<pb::SealStatus>, Status> {
        let status = self.core.seal_status().map_err(|err| status_for(&err))?;
        Ok(Response::new(seal_status(status)))
    }

    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let health = self.core.health().map_err(|err| status_for(&err))?;
        Ok(Response::new(pb::HealthResponse {
            initialized: health.initialized,
            sealed: health.sealed,
            standby: health.standby,
            server_time_utc: health.server_time_utc,
            version: health.version.to_string(),
            cluster_name: health.cluster_name.unwrap_or_default(),
            cluster_id: health.cluster_id.unwrap_or_default(),
        }))
    }
}
