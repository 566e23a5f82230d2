//! Transit on a real 3-node cluster through HTTP: a mount, keys of several types, a ciphertext
//! encrypted on one node, the key rotated on another, the ciphertext decrypted and rewrapped on a
//! third; `min_decryption_version`; batches with context; data keys; HMAC; signatures made on one
//! node, verified on another and by `openssl` on the exported public keys; scheduled deletion and
//! recovery; and bad input answered with a clean 4xx that changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    B64.decode(value.as_str().expect("a base64 string"))
        .expect("valid base64")
}

/// POST that must answer 200; returns `data`.
async fn ok(cluster: &TestCluster, node: usize, path: &str, body: Value) -> Value {
    let (status, response) = cluster.root(node, "POST", path, Some(body)).await;
    assert_eq!(status, 200, "POST {path} on node {}: {response}", node + 1);
    response["data"].clone()
}

/// POST that must answer 400; returns the first error message.
async fn bad(cluster: &TestCluster, node: usize, path: &str, body: Value) -> String {
    let (status, response) = cluster.root(node, "POST", path, Some(body)).await;
    assert_eq!(status, 400, "POST {path} must be refused: {response}");
    response["errors"][0]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn read_key(cluster: &TestCluster, node: usize, name: &str) -> Value {
    let (status, body) = cluster
        .root(node, "GET", &format!("transit/keys/{name}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_keys_work_across_nodes() {
    bounded(Duration::from_secs(300), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let (status, body) = cluster
            .root(
                1,
                "POST",
                "sys/mounts/transit",
                Some(json!({"type": "transit"})),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        for (name, kind) in [
            ("aes", "aes256-gcm96"),
            ("chacha", "chacha20-poly1305"),
            ("siv", "aes256-gcm-siv"),
            ("ed", "ed25519"),
            ("p256", "ecdsa-p256"),
            ("rsa", "rsa-2048"),
            ("mac", "hmac"),
        ] {
            let created = ok(
                &cluster,
                0,
                &format!("transit/keys/{name}"),
                json!({"type": kind}),
            )
            .await;
            assert_eq!(created["type"], kind);
        }
        let (status, body) = cluster.root(2, "LIST", "transit/keys", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["keys"].as_array().map(Vec::len), Some(7));

        encrypt_rotate_decrypt_rewrap(&cluster).await;
        batches_datakeys_and_other_ciphers(&cluster).await;
        signatures_and_hmac(&cluster).await;
        bad_input_changes_nothing(&cluster).await;
        deletion_and_recovery(&cluster).await;
    })
    .await;
}

/// Encrypt on node 1, rotate on node 2, decrypt and rewrap on node 3.
async fn encrypt_rotate_decrypt_rewrap(cluster: &TestCluster) {
    let sealed = ok(
        cluster,
        0,
        "transit/encrypt/aes",
        json!({"plaintext": b64(b"across the cluster"), "associated_data": b64(b"aad")}),
    )
    .await;
    let v1 = sealed["ciphertext"].clone();
    assert!(v1.as_str().unwrap_or_default().starts_with("vault:v1:"));
    for expected in 2..=4 {
        let rotated = ok(cluster, 1, "transit/keys/aes/rotate", json!({})).await;
        assert_eq!(rotated["latest_version"], expected);
    }
    let opened = ok(
        cluster,
        2,
        "transit/decrypt/aes",
        json!({"ciphertext": v1, "associated_data": b64(b"aad")}),
    )
    .await;
    assert_eq!(unb64(&opened["plaintext"]), b"across the cluster");
    let rewrapped = ok(
        cluster,
        2,
        "transit/rewrap/aes",
        json!({"ciphertext": v1, "associated_data": b64(b"aad")}),
    )
    .await;
    assert_eq!(rewrapped["key_version"], 4);
    let v4 = rewrapped["ciphertext"].clone();
    ok(
        cluster,
        0,
        "transit/keys/aes/config",
        json!({"min_decryption_version": 4}),
    )
    .await;
    let refused = bad(
        cluster,
        1,
        "transit/decrypt/aes",
        json!({"ciphertext": v1, "associated_data": b64(b"aad")}),
    )
    .await;
    assert_eq!(
        refused,
        "ciphertext or signature version is disallowed by policy (too old)"
    );
    let opened = ok(
        cluster,
        1,
        "transit/decrypt/aes",
        json!({"ciphertext": v4, "associated_data": b64(b"aad")}),
    )
    .await;
    assert_eq!(unb64(&opened["plaintext"]), b"across the cluster");
    let key = read_key(cluster, 2, "aes").await;
    assert_eq!(key["min_decryption_version"], 4);
    assert_eq!(key["keys"].as_object().map(|keys| keys.len()), Some(4));
}

async fn batches_datakeys_and_other_ciphers(cluster: &TestCluster) {
    ok(cluster, 0, "transit/keys/derived", json!({"derived": true})).await;
    let sealed = ok(
        cluster,
        1,
        "transit/encrypt/derived",
        json!({"batch_input": [
            {"plaintext": b64(b"one"), "context": b64(b"tenant-1"), "reference": "a"},
            {"plaintext": b64(b"two"), "context": b64(b"tenant-2"), "reference": "b"},
        ]}),
    )
    .await;
    let results = sealed["batch_results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), 2);
    let opened = ok(
        cluster,
        2,
        "transit/decrypt/derived",
        json!({"batch_input": [
            {"ciphertext": results[0]["ciphertext"], "context": b64(b"tenant-1"), "reference": "a"},
            {"ciphertext": results[1]["ciphertext"], "context": b64(b"tenant-2"), "reference": "b"},
        ]}),
    )
    .await;
    assert_eq!(unb64(&opened["batch_results"][0]["plaintext"]), b"one");
    assert_eq!(unb64(&opened["batch_results"][1]["plaintext"]), b"two");
    assert_eq!(opened["batch_results"][1]["reference"], "b");
    // One bad item: 400 with the per-item results.
    let (status, body) = cluster
        .root(
            0,
            "POST",
            "transit/decrypt/derived",
            Some(json!({"batch_input": [
                {"ciphertext": results[0]["ciphertext"], "context": b64(b"tenant-2")},
            ]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["data"]["batch_results"][0]["error"].is_string());

    for key in ["chacha", "siv"] {
        let sealed = ok(
            cluster,
            2,
            &format!("transit/encrypt/{key}"),
            json!({"plaintext": b64(b"x")}),
        )
        .await;
        let opened = ok(
            cluster,
            0,
            &format!("transit/decrypt/{key}"),
            json!({"ciphertext": sealed["ciphertext"]}),
        )
        .await;
        assert_eq!(unb64(&opened["plaintext"]), b"x");
    }
    let datakey = ok(
        cluster,
        2,
        "transit/datakey/plaintext/aes",
        json!({"bits": 256}),
    )
    .await;
    let opened = ok(
        cluster,
        0,
        "transit/decrypt/aes",
        json!({"ciphertext": datakey["ciphertext"]}),
    )
    .await;
    assert_eq!(unb64(&opened["plaintext"]), unb64(&datakey["plaintext"]));
    let random = ok(cluster, 1, "transit/random/24", json!({})).await;
    assert_eq!(unb64(&random["random_bytes"]).len(), 24);
    let hashed = ok(
        cluster,
        1,
        "transit/hash/sha2-256",
        json!({"input": b64(b"abc")}),
    )
    .await;
    assert_eq!(
        hashed["sum"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

async fn signatures_and_hmac(cluster: &TestCluster) {
    let message = b"signed on one node, verified on another";
    for (key, extra) in [
        ("ed", json!({})),
        ("p256", json!({})),
        (
            "p256",
            json!({"marshaling_algorithm": "jws", "hash_algorithm": "sha2-384"}),
        ),
        ("rsa", json!({})),
        (
            "rsa",
            json!({"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-512"}),
        ),
    ] {
        let mut body = extra.clone();
        body["input"] = json!(b64(message));
        let signed = ok(cluster, 0, &format!("transit/sign/{key}"), body.clone()).await;
        body["signature"] = signed["signature"].clone();
        let verified = ok(cluster, 2, &format!("transit/verify/{key}"), body.clone()).await;
        assert_eq!(verified["valid"], true, "{key} {extra}");
        body["input"] = json!(b64(b"tampered"));
        let verified = ok(cluster, 1, &format!("transit/verify/{key}"), body).await;
        assert_eq!(verified["valid"], false, "{key} {extra}");
    }
    openssl_verifies(cluster, message).await;

    let mac = ok(
        cluster,
        1,
        "transit/hmac/mac/sha2-512",
        json!({"input": b64(b"m")}),
    )
    .await;
    let verified = ok(
        cluster,
        0,
        "transit/verify/mac/sha2-512",
        json!({"input": b64(b"m"), "hmac": mac["hmac"]}),
    )
    .await;
    assert_eq!(verified["valid"], true);
}

/// Signatures made by the cluster verify with `openssl` on the public keys it publishes.
async fn openssl_verifies(cluster: &TestCluster, message: &[u8]) {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl not installed: skipping the independent signature check");
        return;
    }
    let dir = cluster.dir().join("openssl");
    std::fs::create_dir_all(&dir).expect("openssl work dir");
    let message_path = dir.join("message.bin");
    std::fs::write(&message_path, message).expect("write message");

    // ECDSA P-256, SHA-256, ASN.1 (DER) signature.
    let p256 = read_key(cluster, 1, "p256").await;
    let pem = p256["keys"]["1"]["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let signed = ok(
        cluster,
        0,
        "transit/sign/p256",
        json!({"input": b64(message)}),
    )
    .await;
    assert_openssl(
        &dir,
        "p256",
        &pem,
        &signature_bytes(&signed),
        &message_path,
        &["dgst", "-sha256"],
    );

    // RSA-PSS with the maximum salt length (Vault's default), SHA-256.
    let rsa = read_key(cluster, 2, "rsa").await;
    let pem = rsa["keys"]["1"]["public_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let signed = ok(
        cluster,
        0,
        "transit/sign/rsa",
        json!({"input": b64(message)}),
    )
    .await;
    assert_openssl(
        &dir,
        "rsa",
        &pem,
        &signature_bytes(&signed),
        &message_path,
        &[
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:auto",
        ],
    );

    // Ed25519: the raw public key wrapped in a SubjectPublicKeyInfo.
    let ed = ok_get(cluster, 1, "transit/export/public-key/ed/latest").await;
    let mut spki = hex_bytes("302a300506032b6570032100");
    spki.extend(unb64(&ed["keys"]["1"]));
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        b64(&spki)
    );
    let signed = ok(
        cluster,
        2,
        "transit/sign/ed",
        json!({"input": b64(message)}),
    )
    .await;
    let pub_path = dir.join("ed.pem");
    let sig_path = dir.join("ed.sig");
    std::fs::write(&pub_path, pem).expect("write key");
    std::fs::write(&sig_path, signature_bytes(&signed)).expect("write signature");
    let output = Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(&pub_path)
        .arg("-in")
        .arg(&message_path)
        .arg("-sigfile")
        .arg(&sig_path)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl rejected the Ed25519 signature: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn ok_get(cluster: &TestCluster, node: usize, path: &str) -> Value {
    let (status, body) = cluster.root(node, "GET", path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body["data"].clone()
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The raw bytes of a `vault:v1:<base64>` signature.
fn signature_bytes(signed: &Value) -> Vec<u8> {
    let text = signed["signature"].as_str().unwrap_or_default();
    let payload = text.splitn(3, ':').nth(2).unwrap_or_default();
    B64.decode(payload).expect("signature base64")
}

fn assert_openssl(
    dir: &Path,
    name: &str,
    pem: &str,
    signature: &[u8],
    message: &Path,
    args: &[&str],
) {
    let pub_path = dir.join(format!("{name}.pem"));
    let sig_path = dir.join(format!("{name}.sig"));
    std::fs::write(&pub_path, pem).expect("write key");
    std::fs::write(&sig_path, signature).expect("write signature");
    let output = Command::new("openssl")
        .args(args)
        .arg("-verify")
        .arg(&pub_path)
        .arg("-signature")
        .arg(&sig_path)
        .arg(message)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl rejected the {name} signature: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Unknown keys, wrong key types, malformed or truncated ciphertexts, version 0, bad base64 and a
/// 100,000-item batch: each a 400, and the key is unchanged afterwards.
async fn bad_input_changes_nothing(cluster: &TestCluster) {
    let before = read_key(cluster, 0, "aes").await;
    let sealed = ok(
        cluster,
        1,
        "transit/encrypt/aes",
        json!({"plaintext": b64(b"data")}),
    )
    .await;
    let good = sealed["ciphertext"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        bad(
            cluster,
            2,
            "transit/encrypt/nosuch",
            json!({"plaintext": b64(b"x")})
        )
        .await,
        "encryption key not found"
    );
    bad(
        cluster,
        0,
        "transit/encrypt/ed",
        json!({"plaintext": b64(b"x")}),
    )
    .await;
    bad(cluster, 0, "transit/sign/aes", json!({"input": b64(b"x")})).await;
    bad(
        cluster,
        1,
        "transit/encrypt/aes",
        json!({"plaintext": "not base64!"}),
    )
    .await;
    bad(
        cluster,
        1,
        "transit/encrypt/aes",
        json!({"plaintext": b64(b"x"), "key_version": 99}),
    )
    .await;
    for ciphertext in [
        "garbage".to_string(),
        "vault:v0:AAAA".to_string(),
        "vault:v4:%%%".to_string(),
        good[..good.len() - 10].to_string(),
        good.replace("vault:v4:", "vault:v9:"),
    ] {
        bad(
            cluster,
            2,
            "transit/decrypt/aes",
            json!({"ciphertext": ciphertext}),
        )
        .await;
    }
    let huge: Vec<Value> = (0..100_000).map(|_| json!({"plaintext": ""})).collect();
    let message = bad(
        cluster,
        0,
        "transit/encrypt/aes",
        json!({"batch_input": huge}),
    )
    .await;
    assert!(message.contains("at most"), "{message}");
    bad(cluster, 0, "transit/keys/new", json!({"type": "aes512"})).await;
    let (status, _) = cluster.root(1, "GET", "transit/keys/new", None).await;
    assert_eq!(status, 404, "a refused create writes nothing");
    let (status, _) = cluster.root(1, "DELETE", "transit/keys/aes", None).await;
    assert_eq!(status, 400, "deletion is not allowed by default");
    assert_eq!(read_key(cluster, 2, "aes").await, before);
}

/// Scheduled deletion: a deleted key disappears on every node and can be recovered with its
/// material.
async fn deletion_and_recovery(cluster: &TestCluster) {
    let sealed = ok(
        cluster,
        0,
        "transit/encrypt/chacha",
        json!({"plaintext": b64(b"keep me")}),
    )
    .await;
    ok(
        cluster,
        0,
        "transit/keys/chacha/config",
        json!({"deletion_allowed": true}),
    )
    .await;
    let (status, body) = cluster.root(1, "DELETE", "transit/keys/chacha", None).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = cluster.root(2, "GET", "transit/keys/chacha", None).await;
    assert_eq!(status, 404);
    let (status, body) = cluster.root(0, "LIST", "transit/deleted", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["keys"], json!(["chacha"]));
    let recovered = ok(cluster, 2, "transit/deleted/chacha/recover", json!({})).await;
    assert_eq!(recovered["name"], "chacha");
    let opened = ok(
        cluster,
        1,
        "transit/decrypt/chacha",
        json!({"ciphertext": sealed["ciphertext"]}),
    )
    .await;
    assert_eq!(unb64(&opened["plaintext"]), b"keep me");
}
