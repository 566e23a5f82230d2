//! The CLI's HTTP client for the Vault-compatible API: builds `/v1/...` URLs, sends the token and
//! `X-Vault-Request` headers, applies a timeout to every request, and turns Vault's `{"errors":[..]}`
//! responses into [`ClientError::Api`]. Used by every client command and by `strongroom dev`.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// Default time allowed for one request, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request did not produce a successful response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-2xx status.
    #[error("{}", format_api_error(*status, errors))]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The messages from the body's `errors` array (or the raw body when it was not JSON).
        errors: Vec<String>,
    },
    /// The request could not be sent or the response could not be read.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL that was requested.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx response whose body was not JSON.
    #[error("invalid JSON in the response from {url}")]
    Decode {
        /// The URL that was requested.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The address or token could not be used to build a request.
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status when the server answered with an error, `None` otherwise.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Renders an API error the way Vault's CLI does: `Code: 400. Errors:\n\n* message`.
fn format_api_error(status: u16, errors: &[String]) -> String {
    let mut out = format!("Code: {status}. Errors:\n");
    for e in errors {
        out.push_str("\n* ");
        out.push_str(e);
    }
    out
}

/// An HTTP client bound to one server address and, optionally, one token.
#[derive(Clone)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for `address` (e.g. `http://127.0.0.1:8200`) with the default timeout.
    pub fn new(address: &str, token: Option<String>) -> Result<Client, ClientError> {
        Client::with_timeout(address, token, DEFAULT_TIMEOUT)
    }

    /// A client for `address` whose requests each give up after `timeout`.
    pub fn with_timeout(
        address: &str,
        token: Option<String>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let base = Url::parse(address)
            .map_err(|e| ClientError::Config(format!("invalid address {address:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::Config(format!(
                "invalid address {address:?}: expected http://host:port"
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Client { base, token, http })
    }

    /// The server address this client talks to.
    pub fn address(&self) -> &str {
        self.base.as_str()
    }

    /// `GET /v1/<path>`.
    pub async fn get(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.send(Method::GET, path, &[], None).await
    }

    /// `GET /v1/<path>?<query>`.
    pub async fn get_with_query(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>, ClientError> {
        self.send(Method::GET, path, query, None).await
    }

    /// `PUT /v1/<path>` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Option<Value>, ClientError> {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    /// `POST /v1/<path>` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Option<Value>, ClientError> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// `DELETE /v1/<path>`.
    pub async fn delete(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.send(Method::DELETE, path, &[], None).await
    }

    /// `LIST /v1/<path>` (Vault's custom list verb).
    pub async fn list(&self, path: &str) -> Result<Option<Value>, ClientError> {
        let list = Method::from_bytes(b"LIST")
            .map_err(|e| ClientError::Config(format!("LIST method: {e}")))?;
        self.send(list, path, &[], None).await
    }

    /// The full URL for `/v1/<path>`; each `/`-separated segment is percent-encoded on its own.
    pub fn url(&self, path: &str) -> Result<Url, ClientError> {
        let mut url = self.base.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|()| ClientError::Config(format!("invalid address {}", self.base)))?;
            segs.pop_if_empty().push("v1");
            segs.extend(path.trim_start_matches('/').split('/'));
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Option<Value>, ClientError> {
        let url = self.url(path)?;
        let mut req = self.http.request(method, url.clone());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(token)
                .map_err(|_| ClientError::Config("the token contains invalid characters".into()))?;
            value.set_sensitive(true);
            req = req.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let transport = |source| ClientError::Transport {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        interpret(url.as_str(), status, &text)
    }
}

/// Turns a status and body into the client's result: 2xx with an empty body (e.g. 204) is
/// `Ok(None)`, 2xx with JSON is `Ok(Some(..))`, anything else is [`ClientError::Api`].
fn interpret(url: &str, status: StatusCode, text: &str) -> Result<Option<Value>, ClientError> {
    if status.is_success() {
        if text.trim().is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text)
            .map(Some)
            .map_err(|source| ClientError::Decode {
                url: url.to_string(),
                source,
            });
    }
    let errors = match serde_json::from_str::<Value>(text) {
        Ok(v) => v
            .get("errors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        Err(_) if text.trim().is_empty() => Vec::new(),
        Err(_) => vec![text.trim().to_string()],
    };
    Err(ClientError::Api {
        status: status.as_u16(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_error_display_matches_vault() {
        let err = ClientError::Api {
            status: 400,
            errors: vec!["check-and-set parameter did not match the current version".into()],
        };
        assert_eq!(
            err.to_string(),
            "Code: 400. Errors:\n\n* check-and-set parameter did not match the current version"
        );
        let wrapped = anyhow::Error::new(err).context("Error writing data to secret/data/app");
        assert_eq!(
            format!("{wrapped:#}"),
            "Error writing data to secret/data/app: Code: 400. Errors:\n\n\
             * check-and-set parameter did not match the current version"
        );
    }

    #[test]
    fn interpret_handles_success_empty_and_errors() {
        let u = "http://x/v1/a";
        assert_eq!(interpret(u, StatusCode::NO_CONTENT, "").ok(), Some(None));
        assert_eq!(
            interpret(u, StatusCode::OK, r#"{"data":{"a":1}}"#).ok(),
            Some(Some(json!({"data":{"a":1}})))
        );
        match interpret(
            u,
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"errors":["Vault is sealed"]}"#,
        ) {
            Err(ClientError::Api { status, errors }) => {
                assert_eq!(status, 503);
                assert_eq!(errors, vec!["Vault is sealed".to_string()]);
            }
            other => panic!("unexpected {other:?}"),
        }
        match interpret(u, StatusCode::NOT_FOUND, r#"{"errors":[]}"#) {
            Err(e) => assert_eq!(e.status(), Some(404)),
            Ok(v) => panic!("unexpected {v:?}"),
        }
        match interpret(u, StatusCode::BAD_GATEWAY, "upstream down\n") {
            Err(ClientError::Api { errors, .. }) => assert_eq!(errors, vec!["upstream down"]),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            interpret(u, StatusCode::OK, "not json"),
            Err(ClientError::Decode { .. })
        ));
    }

    #[test]
    fn urls_are_built_under_v1_and_segments_encoded() {
        let c = Client::new("http://127.0.0.1:8200", None).expect("client");
        assert_eq!(
            c.url("sys/seal-status").expect("url").as_str(),
            "http://127.0.0.1:8200/v1/sys/seal-status"
        );
        assert_eq!(
            c.url("secret/metadata/").expect("url").as_str(),
            "http://127.0.0.1:8200/v1/secret/metadata/"
        );
        assert_eq!(
            c.url("secret/data/a b?c").expect("url").as_str(),
            "http://127.0.0.1:8200/v1/secret/data/a%20b%3Fc"
        );
        let c = Client::new("http://h:1/", None).expect("client");
        assert_eq!(
            c.url("sys/init").expect("url").as_str(),
            "http://h:1/v1/sys/init"
        );
    }

    #[test]
    fn bad_addresses_are_rejected_and_token_is_not_debug_printed() {
        assert!(Client::new("127.0.0.1:8200", None).is_err());
        assert!(Client::new("not a url", None).is_err());
        let c = Client::new("http://h:1", Some("s.secret-token".into())).expect("client");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret-token"), "{dbg}");
    }
}
