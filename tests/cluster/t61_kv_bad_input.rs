//! KV bad input: malformed `data`, negative or non-numeric versions, unknown or mistyped
//! `options`, bad metadata and config settings, a 40 MiB body, and paths with `..`, `//` or
//! percent-encoded tricks each get a clear 4xx with `{"errors": [...]}`, and afterwards the
//! secret, its metadata, the mount config and the set of keys are exactly as before.
//!
//! Requests go out as raw HTTP: client libraries resolve `..` and `%2e%2e` before sending.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;

use crate::bounded;
use crate::fixture::TestCluster;

/// One raw HTTP/1.1 request; returns (status, parsed JSON body or Null). `declared` overrides the
/// Content-Length (to announce more than is sent).
async fn raw(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
    declared: Option<usize>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let length = declared.unwrap_or(body.len());
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    parse_response(&response)
}

fn parse_response(response: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Sends a real `size`-byte JSON body in chunks while reading the answer: the server must answer
/// (413) without reading it all and without falling over. Write errors after the answer are
/// expected (the server closes the connection).
async fn huge_body(addr: &str, token: &str, size: usize) -> (u16, Value) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/secret/data/keep HTTP/1.1\r\nHost: {addr}\r\nX-Vault-Token: {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let prefix = b"{\"data\": {\"v\": \"";
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0;
        let frame = |bytes: &[u8]| {
            let mut out = format!("{:x}\r\n", bytes.len()).into_bytes();
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
            out
        };
        writer.write_all(&frame(prefix)).await?;
        while sent < size {
            writer.write_all(&frame(&chunk)).await?;
            sent += chunk.len();
        }
        writer.write_all(&frame(b"\"}}")).await?;
        writer.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(())
    });
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) => break,
            Ok(read) => response.extend_from_slice(&buffer[..read]),
            // A reset after the answer arrived is fine; before it, parse_response finds no status.
            Err(_) => break,
        }
    }
    sender.abort();
    parse_response(&response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_bad_input_gets_4xx_and_changes_nothing() {
    bounded(Duration::from_secs(240), async {
        let mut cluster = TestCluster::start(1).await;
        cluster.init(0).await;
        cluster.unseal(0).await;
        let (status, body) = cluster
            .root(
                0,
                "POST",
                "secret/metadata/keep",
                Some(json!({"max_versions": 7, "custom_metadata": {"owner": "ops"}})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        for version in 1..=2 {
            let (status, body) = cluster
                .root(
                    0,
                    "POST",
                    "secret/data/keep",
                    Some(json!({"data": {"v": version}})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let snapshot = || async {
            let (_, data) = cluster.root(0, "GET", "secret/data/keep", None).await;
            let (_, old) = cluster
                .root(0, "GET", "secret/data/keep?version=1", None)
                .await;
            let (_, meta) = cluster.root(0, "GET", "secret/metadata/keep", None).await;
            let (_, config) = cluster.root(0, "GET", "secret/config", None).await;
            let (_, keys) = cluster
                .root(0, "LIST", "secret/metadata/?recursive=true", None)
                .await;
            json!({
                "data": data["data"],
                "old": old["data"],
                "meta": meta["data"],
                "config": config["data"],
                "keys": keys["data"]["keys"],
            })
        };
        let before = snapshot().await;
        assert_eq!(before["data"]["data"], json!({"v": 2}), "{before}");
        assert_eq!(before["keys"], json!(["keep"]), "{before}");

        let addr = cluster.nodes[0].api_addr.clone();
        let token = cluster.root_token.clone();
        let write = "/v1/secret/data/keep";
        // (method, path, body, expected status)
        let cases: Vec<(&str, &str, &str, u16)> = vec![
            // `data` not an object, or missing.
            ("POST", write, r#"{"data": "string"}"#, 400),
            ("POST", write, r#"{"data": [1, 2]}"#, 400),
            ("POST", write, r#"{"data": 7}"#, 400),
            ("POST", write, r#"{"data": null}"#, 400),
            ("POST", write, r#"{}"#, 400),
            ("POST", write, r#"{"options": {"cas": 2}}"#, 400),
            ("POST", write, r#"[{"data": {}}]"#, 400),
            ("POST", write, r#"{"data": {"v": 3}"#, 400),
            ("PATCH", write, r#"{"data": "string"}"#, 400),
            ("PATCH", write, r#"{}"#, 400),
            // `options`: unknown keys, the wrong shape, `cas` of the wrong type.
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cass": 2}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": 2, "x": 1}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": "cas=2"}"#,
                400,
            ),
            ("POST", write, r#"{"data": {"v": 3}, "options": [2]}"#, 400),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": "two"}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": true}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": -1}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": 1.5}}"#,
                400,
            ),
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": {}}}"#,
                400,
            ),
            (
                "PATCH",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": "x"}}"#,
                400,
            ),
            // A stale cas is the CAS error, also a 400.
            (
                "POST",
                write,
                r#"{"data": {"v": 3}, "options": {"cas": 1}}"#,
                400,
            ),
            // Negative or non-numeric versions.
            ("GET", "/v1/secret/data/keep?version=-1", "", 400),
            ("GET", "/v1/secret/data/keep?version=two", "", 400),
            ("GET", "/v1/secret/subkeys/keep?depth=-1", "", 400),
            (
                "POST",
                "/v1/secret/delete/keep",
                r#"{"versions": [-1]}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/undelete/keep",
                r#"{"versions": [-2]}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/destroy/keep",
                r#"{"versions": [1, -1]}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/destroy/keep",
                r#"{"versions": []}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/destroy/keep",
                r#"{"versions": ["one"]}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/destroy/keep",
                r#"{"versions": [1.5]}"#,
                400,
            ),
            ("POST", "/v1/secret/destroy/keep", r#"{}"#, 400),
            // Metadata and config settings.
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"max_versions": -1}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"max_versions": "many"}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"cas_required": "maybe"}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"delete_version_after": "soon"}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"custom_metadata": "x"}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/metadata/keep",
                r#"{"custom_metadata": {"a": 1}}"#,
                400,
            ),
            ("POST", "/v1/secret/config", r#"{"max_versions": -1}"#, 400),
            ("POST", "/v1/secret/config", r#"{"cas_required": 3}"#, 400),
            // Paths: climbing, doubled slashes, dot segments, percent-encoded forms of them,
            // control characters, malformed escapes.
            (
                "POST",
                "/v1/secret/data/keep/../other",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            ("POST", "/v1/secret/data/../../sys/seal", "{}", 400),
            (
                "POST",
                "/v1/secret/data/./keep",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            ("POST", "/v1/secret/data/a//b", r#"{"data": {"v": 9}}"#, 400),
            (
                "POST",
                "/v1/secret//data/keep",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1//secret/data/keep",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/%2e%2e/keep",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a/%2E%2E/%2e%2E/b",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a%2F..%2Fkeep",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a%2F%2Fb",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a%00b",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a%0d%0ab",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            (
                "POST",
                "/v1/secret/data/a%zzb",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            ("POST", "/v1/secret/data/a%2", r#"{"data": {"v": 9}}"#, 400),
            (
                "POST",
                "/v1/secret/data/a%ff%fe",
                r#"{"data": {"v": 9}}"#,
                400,
            ),
            ("POST", "/v1/secret/data/", r#"{"data": {"v": 9}}"#, 400),
            ("DELETE", "/v1/secret/metadata/keep/..", "", 400),
            (
                "DELETE",
                "/v1/secret/metadata/%2e%2e/secret/metadata/keep",
                "",
                400,
            ),
            ("LIST", "/v1/secret/metadata/%2e%2e/", "", 400),
        ];
        for (method, path, body, expected) in cases {
            let (status, reply) = raw(&addr, method, path, &token, body.as_bytes(), None).await;
            assert_eq!(status, expected, "{method} {path} {body} -> {reply}");
            assert!(
                reply["errors"]
                    .as_array()
                    .is_some_and(|errors| !errors.is_empty()),
                "{method} {path} {body}: want {{\"errors\": [...]}} with a reason, got {reply}"
            );
        }

        // 40 MiB: announced and refused before it is read, and really sent.
        let (status, reply) = raw(&addr, "POST", write, &token, b"{", Some(40 << 20)).await;
        assert_eq!(status, 413, "{reply}");
        assert!(reply["errors"].is_array(), "{reply}");
        let (status, reply) = huge_body(&addr, &token, 40 << 20).await;
        assert!(
            status == 413 || status == 400,
            "40 MiB chunked body -> {status} {reply}"
        );
        assert!(reply["errors"].is_array(), "{reply}");

        assert_eq!(snapshot().await, before, "bad input changed something");
        let (_, seal) = cluster.call(0, "GET", "sys/seal-status", None, None).await;
        assert_eq!(seal["sealed"], false, "bad input must not seal the node");
        // A well-formed percent-encoded name still works, and means the decoded name.
        let (status, reply) = raw(
            &addr,
            "POST",
            "/v1/secret/data/with%20space",
            &token,
            br#"{"data": {"v": 1}}"#,
            None,
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        let (status, reply) = cluster.root(0, "LIST", "secret/metadata/", None).await;
        assert_eq!(
            (status, reply["data"]["keys"].clone()),
            (200, json!(["keep", "with space"]))
        );
    })
    .await;
}
