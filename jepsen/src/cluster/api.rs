//! The HTTP client for the Vault-compatible API: one request, one answer or one classified
//! transport failure. It never retries: retries of writes would hide or create anomalies.

use std::time::Duration;

use serde_json::Value;

/// The response header naming the request's audit record.
pub const REQUEST_ID_HEADER: &str = "x-strongroom-request-id";
/// The header selecting read consistency.
pub const CONSISTENCY_HEADER: &str = "x-strongroom-consistency";

/// A response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// `X-Strongroom-Request-Id`, if present.
    pub req_id: Option<String>,
}

impl Reply {
    /// The `errors` array joined, if the body has one.
    pub fn error_text(&self) -> Option<String> {
        let errors = self.body.get("errors")?.as_array()?;
        Some(
            errors
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// No response arrived.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The connection could not be opened: the request was certainly not sent.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The deadline passed: the request may or may not have been executed.
    #[error("timeout")]
    Timeout,
    /// Another transport failure after sending began (reset, broken body).
    #[error("transport: {0}")]
    Transport(String),
}

/// The client for every node.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    bases: Vec<String>,
}

/// A request to send.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// HTTP method (`GET`, `POST`, `PUT`, `LIST`).
    pub method: &'a str,
    /// Path after `/v1/`, with any query string.
    pub path: &'a str,
    /// JSON body.
    pub body: Option<Value>,
    /// `X-Vault-Token`.
    pub token: Option<&'a str>,
    /// Ask for a stale (local) read.
    pub stale: bool,
    /// A deadline other than the client's default.
    pub timeout: Option<Duration>,
}

impl Api {
    /// A client for nodes at `api_addrs` (index = node id - 1), with a per-request timeout.
    pub fn new(api_addrs: &[String], timeout: Duration) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .no_proxy()
            .pool_max_idle_per_host(8)
            .build()?;
        Ok(Api {
            http,
            bases: api_addrs.iter().map(|a| format!("http://{a}")).collect(),
        })
    }

    /// `http://host:port` of node `id`.
    pub fn base(&self, id: u64) -> &str {
        self.bases
            .get((id as usize).wrapping_sub(1))
            .map_or("", String::as_str)
    }

    /// The node id whose base URL is `url`, if any.
    pub fn node_of(&self, url: &str) -> Option<u64> {
        let url = url.trim_end_matches('/');
        self.bases
            .iter()
            .position(|b| b == url)
            .map(|i| i as u64 + 1)
    }

    /// Sends `request` to node `id`.
    pub async fn call(&self, id: u64, request: Request<'_>) -> Result<Reply, CallError> {
        let url = format!("{}/v1/{}", self.base(id), request.path);
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|err| CallError::NotSent(err.to_string()))?;
        let mut builder = self.http.request(method, url);
        if let Some(token) = request.token {
            builder = builder.header("X-Vault-Token", token);
        }
        if request.stale {
            builder = builder.header(CONSISTENCY_HEADER, "stale");
        }
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let req_id = response
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.map_err(classify)?;
        Ok(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            req_id,
        })
    }
}

fn classify(err: reqwest::Error) -> CallError {
    if err.is_timeout() {
        CallError::Timeout
    } else if err.is_connect() {
        CallError::NotSent(root_cause(&err))
    } else {
        CallError::Transport(root_cause(&err))
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
