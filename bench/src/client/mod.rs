//! The three clients the driver can use, behind one [`Client`] enum so the driver's loop stays
//! monomorphic: Strongroom over HTTP/1.1, Strongroom over gRPC, and etcd over gRPC.

pub mod etcd;
pub mod grpc;
pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde::Serialize;

use crate::workload::Op;

/// The mount of the transit engine the transit workloads use, and its key.
pub const TRANSIT_KEY_PATH: &str = "transit/keys/bench";
/// The path the encrypt workload posts to.
pub const ENCRYPT_PATH: &str = "transit/encrypt/bench";
/// The path the decrypt workload posts to.
pub const DECRYPT_PATH: &str = "transit/decrypt/bench";
/// The path the login workload posts to.
pub const LOGIN_PATH: &str = "auth/approle/login";

/// The JSON bodies of the transit and login workloads, made once per cluster (the ciphertext
/// and the AppRole credentials come from the cluster: `cluster::strongroom::Cluster::prepare`).
/// Empty for etcd and for runs without those workloads.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// `{"plaintext": <base64 of 1 KiB>}`.
    pub encrypt: Bytes,
    /// `{"ciphertext": "vault:v1:..."}`.
    pub decrypt: Bytes,
    /// `{"role_id": ..., "secret_id": ...}`.
    pub login: Bytes,
}

/// Which system and protocol a run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// Strongroom's Vault-compatible HTTP API.
    StrongroomHttp,
    /// Strongroom's client gRPC API (`proto/vault.proto`).
    StrongroomGrpc,
    /// etcd 3.4 through the `etcd-client` crate.
    Etcd,
}

impl BackendKind {
    /// The name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::StrongroomHttp => "strongroom-http",
            BackendKind::StrongroomGrpc => "strongroom-grpc",
            BackendKind::Etcd => "etcd",
        }
    }
}

/// Shared connection state from which each worker gets its client.
pub enum Connector {
    /// One HTTP/1.1 connection per worker (HTTP/1.1 has one request in flight per connection).
    Http {
        /// The node's HTTP address.
        addr: SocketAddr,
        /// The Vault token.
        token: Arc<str>,
        /// Transit and login bodies.
        prepared: Arc<Prepared>,
    },
    /// `conns` HTTP/2 channels shared round-robin by the workers.
    Grpc(grpc::Channels),
    /// `conns` etcd clients shared round-robin by the workers.
    Etcd(Vec<etcd_client::KvClient>),
}

impl Connector {
    /// Opens `conns` connections (gRPC backends) to `endpoint` (`127.0.0.1:PORT`); Strongroom
    /// clients send `prepared`'s bodies for transit and login requests.
    pub async fn connect(
        kind: BackendKind,
        endpoint: &str,
        token: &str,
        conns: usize,
        prepared: Arc<Prepared>,
    ) -> anyhow::Result<Connector> {
        Ok(match kind {
            BackendKind::StrongroomHttp => Connector::Http {
                addr: endpoint.parse()?,
                token: Arc::from(token),
                prepared,
            },
            BackendKind::StrongroomGrpc => {
                Connector::Grpc(grpc::Channels::connect(endpoint, token, conns, prepared).await?)
            }
            BackendKind::Etcd => Connector::Etcd(etcd::connect(endpoint, conns).await?),
        })
    }

    /// The client of worker number `worker`.
    pub async fn client(&self, worker: usize) -> anyhow::Result<Client> {
        Ok(match self {
            Connector::Http {
                addr,
                token,
                prepared,
            } => Client::Http(
                http::HttpClient::connect(*addr, token.clone(), prepared.clone(), worker as u64)
                    .await?,
            ),
            Connector::Grpc(channels) => Client::Grpc(channels.client(worker)),
            Connector::Etcd(clients) => Client::Etcd(etcd::EtcdClient::new(
                clients[worker % clients.len()].clone(),
                worker as u64,
            )),
        })
    }
}

/// One worker's client.
pub enum Client {
    /// Strongroom over HTTP.
    Http(http::HttpClient),
    /// Strongroom over gRPC.
    Grpc(grpc::GrpcClient),
    /// etcd.
    Etcd(etcd::EtcdClient),
}

impl Client {
    /// Performs one request; `Err` if it failed (transport error or a non-success answer).
    pub async fn call(&mut self, op: Op) -> anyhow::Result<()> {
        match self {
            Client::Http(client) => client.call(op).await,
            Client::Grpc(client) => client.call(op).await,
            Client::Etcd(client) => client.call(op).await,
        }
    }
}
