//! Strongroom over its client gRPC API (`Vault.Call`), with the workers spread over a fixed number
//! of HTTP/2 channels.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use strongroom::api::grpc::pb;
use strongroom::api::grpc::pb::vault_client::VaultClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use super::DECRYPT_PATH;
use super::ENCRYPT_PATH;
use super::LOGIN_PATH;
use super::Prepared;
use crate::workload::Op;
use crate::workload::key_name;
use crate::workload::value;

/// The channels of one run and the token.
pub struct Channels {
    channels: Vec<Channel>,
    token: MetadataValue<tonic::metadata::Ascii>,
    prepared: Arc<Prepared>,
}

impl Channels {
    /// Opens `conns` channels to `endpoint` (`127.0.0.1:PORT`).
    pub async fn connect(
        endpoint: &str,
        token: &str,
        conns: usize,
        prepared: Arc<Prepared>,
    ) -> anyhow::Result<Self> {
        let mut channels = Vec::with_capacity(conns);
        for _ in 0..conns.max(1) {
            let channel = Endpoint::from_shared(format!("http://{endpoint}"))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await?;
            channels.push(channel);
        }
        Ok(Channels {
            channels,
            token: token.parse()?,
            prepared,
        })
    }

    /// The client of worker `worker` (on channel `worker % conns`).
    pub fn client(&self, worker: usize) -> GrpcClient {
        let body = serde_json::json!({ "data": { "v": value(worker as u64) } });
        GrpcClient {
            client: VaultClient::new(self.channels[worker % self.channels.len()].clone()),
            token: self.token.clone(),
            put_body: serde_json::to_vec(&body).unwrap_or_default(),
            prepared: self.prepared.clone(),
        }
    }
}

/// One worker's gRPC client.
pub struct GrpcClient {
    client: VaultClient<Channel>,
    token: MetadataValue<tonic::metadata::Ascii>,
    put_body: Vec<u8>,
    prepared: Arc<Prepared>,
}

impl GrpcClient {
    /// Performs one request.
    pub async fn call(&mut self, op: Op) -> anyhow::Result<()> {
        let call = match op {
            Op::Put { key, stale } => pb::CallRequest {
                operation: pb::Operation::Update as i32,
                path: format!("secret/data/{}", key_name(key)),
                json_body: self.put_body.clone(),
                stale,
                ..Default::default()
            },
            Op::Get { key, stale } => pb::CallRequest {
                operation: pb::Operation::Read as i32,
                path: format!("secret/data/{}", key_name(key)),
                stale,
                ..Default::default()
            },
            Op::Encrypt | Op::Decrypt | Op::Login => {
                let (path, body) = match op {
                    Op::Encrypt => (ENCRYPT_PATH, &self.prepared.encrypt),
                    Op::Decrypt => (DECRYPT_PATH, &self.prepared.decrypt),
                    _ => (LOGIN_PATH, &self.prepared.login),
                };
                pb::CallRequest {
                    operation: pb::Operation::Update as i32,
                    path: path.to_string(),
                    json_body: body.to_vec(),
                    ..Default::default()
                }
            }
        };
        let mut request = tonic::Request::new(call);
        request
            .metadata_mut()
            .insert("x-vault-token", self.token.clone());
        let response = self.client.call(request).await?.into_inner();
        if !(200..300).contains(&response.status) {
            bail!("status {}", response.status);
        }
        Ok(())
    }
}
