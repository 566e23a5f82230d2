//! Strongroom over its Vault-compatible HTTP API, with one raw hyper HTTP/1.1 connection per
//! worker (no connection pool in the measured path; reconnects after a failure).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use anyhow::bail;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::Full;
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::DECRYPT_PATH;
use super::ENCRYPT_PATH;
use super::LOGIN_PATH;
use super::Prepared;
use crate::workload::Op;
use crate::workload::key_name;
use crate::workload::value;

/// The header that asks for a local read.
const CONSISTENCY_HEADER: &str = "x-strongroom-consistency";

/// One worker's HTTP connection.
pub struct HttpClient {
    addr: SocketAddr,
    token: Arc<str>,
    sender: Option<SendRequest<Full<Bytes>>>,
    put_body: Bytes,
    prepared: Arc<Prepared>,
}

impl HttpClient {
    /// Connects to `addr`; `seed` varies the value this worker writes.
    pub async fn connect(
        addr: SocketAddr,
        token: Arc<str>,
        prepared: Arc<Prepared>,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let body = serde_json::json!({ "data": { "v": value(seed) } });
        let mut client = HttpClient {
            addr,
            token,
            sender: None,
            put_body: Bytes::from(serde_json::to_vec(&body)?),
            prepared,
        };
        client.sender = Some(client.open().await?);
        Ok(client)
    }

    async fn open(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Performs one request.
    pub async fn call(&mut self, op: Op) -> anyhow::Result<()> {
        let request = self.request(op)?;
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.open().await?,
        };
        sender.ready().await.context("connection not ready")?;
        let response = sender.send_request(request).await.context("HTTP request")?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        self.sender = Some(sender);
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            bail!("HTTP {status}: {text}");
        }
        Ok(())
    }

    fn request(&self, op: Op) -> anyhow::Result<Request<Full<Bytes>>> {
        let builder = Request::builder()
            .header("host", "strongroom")
            .header("x-vault-token", &*self.token);
        Ok(match op {
            Op::Put { key, stale } => {
                let builder = builder
                    .method("POST")
                    .uri(format!("/v1/secret/data/{}", key_name(key)))
                    .header("content-type", "application/json");
                let builder = if stale {
                    builder.header(CONSISTENCY_HEADER, "stale")
                } else {
                    builder
                };
                builder.body(Full::new(self.put_body.clone()))?
            }
            Op::Get { key, stale } => {
                let builder = builder
                    .method("GET")
                    .uri(format!("/v1/secret/data/{}", key_name(key)));
                let builder = if stale {
                    builder.header(CONSISTENCY_HEADER, "stale")
                } else {
                    builder
                };
                builder.body(Full::new(Bytes::new()))?
            }
            Op::Encrypt | Op::Decrypt | Op::Login => {
                let (path, body) = match op {
                    Op::Encrypt => (ENCRYPT_PATH, &self.prepared.encrypt),
                    Op::Decrypt => (DECRYPT_PATH, &self.prepared.decrypt),
                    _ => (LOGIN_PATH, &self.prepared.login),
                };
                builder
                    .method("POST")
                    .uri(format!("/v1/{path}"))
                    .header("content-type", "application/json")
                    .body(Full::new(body.clone()))?
            }
        })
    }
}
