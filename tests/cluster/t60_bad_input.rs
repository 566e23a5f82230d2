//! Bad input gets a clear 4xx with `{"errors": [...]}` and changes nothing.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

use crate::bounded;
use crate::fixture::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_change_nothing() {
    bounded(Duration::from_secs(180), async {
        let mut cluster = TestCluster::start(1).await;
        cluster.init(0).await;
        cluster.unseal(0).await;
        let (status, _) = cluster
            .root(
                0,
                "POST",
                "secret/data/keep",
                Some(json!({"data": {"v": 1}})),
            )
            .await;
        assert_eq!(status, 200);
        let url = cluster.nodes[0].url();
        let token = cluster.root_token.clone();

        let raw = |method: &str, path: &str, body: Vec<u8>, token: Option<&str>| {
            let mut request = cluster
                .http
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{url}{path}"),
                )
                .body(body);
            if let Some(token) = token {
                request = request.header("X-Vault-Token", token);
            }
            async move {
                let response = request.send().await.expect("request");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                (status, body)
            }
        };

        // (method, path, body, token, expected status)
        type Case<'a> = (&'a str, &'a str, Vec<u8>, Option<&'a str>, u16);
        let cases: Vec<Case<'_>> = vec![
            (
                "POST",
                "/v1/secret/data/keep",
                b"{\"data\": {\"v\": ".to_vec(),
                Some(&token),
                400,
            ),
            (
                "POST",
                "/v1/secret/data/keep",
                b"[1,2,3]".to_vec(),
                Some(&token),
                400,
            ),
            (
                "POST",
                "/v1/secret/data/keep",
                b"{\"data\": \"string\"}".to_vec(),
                Some(&token),
                400,
            ),
            (
                "POST",
                "/v1/secret/data/keep",
                b"{\"data\": {}, \"options\": {\"cas\": \"x\"}}".to_vec(),
                Some(&token),
                400,
            ),
            (
                "GET",
                "/v1/secret/data/keep",
                Vec::new(),
                Some("hvs.unknown-token"),
                403,
            ),
            ("GET", "/v1/secret/data/keep", Vec::new(), None, 403),
            (
                "POST",
                "/v1/secret/data/keep",
                b"{\"data\": {\"v\": 2}}".to_vec(),
                Some("hvs.unknown-token"),
                403,
            ),
            (
                "BREW",
                "/v1/secret/data/keep",
                Vec::new(),
                Some(&token),
                405,
            ),
            ("GET", "/v1/nomount/x", Vec::new(), Some(&token), 400),
            ("GET", "/v2/secret/data/keep", Vec::new(), Some(&token), 400),
            (
                "PUT",
                "/v1/sys/init",
                b"{\"secret_shares\": \"five\"}".to_vec(),
                None,
                400,
            ),
            (
                "PUT",
                "/v1/sys/unseal",
                b"{\"key\": 12}".to_vec(),
                None,
                400,
            ),
            ("PUT", "/v1/sys/unseal", b"{}".to_vec(), None, 400),
            ("DELETE", "/v1/sys/health", Vec::new(), None, 405),
        ];
        for (method, path, body, token, expected) in cases {
            let size = body.len();
            let (status, body) = raw(method, path, body, token).await;
            assert_eq!(status, expected, "{method} {path} ({size} bytes) -> {body}");
            assert!(
                body["errors"].is_array(),
                "{method} {path}: error body must be {{\"errors\": [...]}}, got {body}"
            );
        }

        // HTTP clients resolve `..` before sending; speak raw HTTP to send it as is.
        let addr = &cluster.nodes[0].api_addr;
        let (status, body) = raw_http(
            addr,
            "POST",
            "/v1/secret/data/../../sys/seal",
            &token,
            2,
            b"{}",
        )
        .await;
        assert_eq!(status, 400, "a climbing path must be refused: {body}");
        assert!(body.contains("\"errors\""), "{body}");
        // A body over the 32 MiB limit is refused from its declared length, before it is read.
        let (status, body) =
            raw_http(addr, "POST", "/v1/secret/data/keep", &token, 33 << 20, b"{").await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("\"errors\""), "{body}");

        let (status, body) = cluster.root(0, "GET", "secret/data/keep", None).await;
        assert_eq!(
            (
                status,
                body["data"]["data"].clone(),
                body["data"]["metadata"]["version"].clone()
            ),
            (200, json!({"v": 1}), json!(1))
        );
        let (_, body) = cluster.call(0, "GET", "sys/seal-status", None, None).await;
        assert_eq!(body["sealed"], false, "bad input must not seal the node");
    })
    .await;
}

/// Sends one request with the path exactly as given, declaring `length` body bytes but sending
/// only `body`, and returns (status, body text).
async fn raw_http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    length: usize,
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}
