//! PGP-encrypted shares on a 3-node cluster: bad `pgp_keys` / `root_token_pgp_key` are a 400
//! naming the key before anything changes (every node still uninitialized); `sys/init` with
//! three holder keys (3 shares, threshold 2) returns each share as an OpenPGP message that only
//! its holder's key decrypts, to the share's hex, which unseals every node; the root token comes
//! back encrypted to its own key and works. A rekey with `pgp_keys` returns the new shares
//! encrypted (they unseal a resealed node, the old ones no longer do) and, with `backup`, stores
//! them for `sys/rekey/backup` (sudo; read on another node, then deleted); generate-root with
//! `pgp_key` returns the new root token encrypted to that key.
//!
//! The keys are generated here with the `pgp` crate (Ed25519 primary, Curve25519 encryption
//! subkey), test-only.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pgp::composed::KeyType;
use pgp::composed::Message;
use pgp::composed::SecretKeyParamsBuilder;
use pgp::composed::SignedPublicKey;
use pgp::composed::SignedSecretKey;
use pgp::composed::SubkeyParamsBuilder;
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::ser::Serialize as _;
use pgp::types::Password;
use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

/// A test key: the secret key and the public key as Vault's API takes it.
fn generate(encrypt: bool) -> (SignedSecretKey, String) {
    let mut rng = rand08::rngs::OsRng;
    let mut subkeys = Vec::new();
    if encrypt {
        subkeys.push(
            SubkeyParamsBuilder::default()
                .key_type(KeyType::ECDH(ECCCurve::Curve25519))
                .can_encrypt(true)
                .build()
                .expect("subkey params"),
        );
    }
    let secret = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id("Strongroom t101 test key (never for real use)".into())
        .subkeys(subkeys)
        .build()
        .expect("key params")
        .generate(rng)
        .expect("generate")
        .sign(&mut rng, &Password::empty())
        .expect("self-sign");
    let public = SignedPublicKey::from(secret.clone());
    let encoded = STANDARD.encode(public.to_bytes().expect("serialize"));
    (secret, encoded)
}

/// Decrypts a base64 OpenPGP message as `base64 -d | gpg -dq` would.
fn decrypt(secret: &SignedSecretKey, encoded: &str) -> String {
    let bytes = STANDARD.decode(encoded).expect("base64 message");
    let mut message = Message::from_bytes(&bytes[..])
        .expect("OpenPGP message")
        .decrypt(&Password::empty(), secret)
        .expect("decrypts with the holder's key");
    if message.is_compressed() {
        message = message.decompress().expect("decompress");
    }
    String::from_utf8(message.as_data_vec().expect("literal data")).expect("UTF-8")
}

fn errors(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgp_encrypted_shares_and_root_tokens() {
    bounded(Duration::from_secs(300), async {
        let holders: Vec<_> = (0..3).map(|_| generate(true)).collect();
        let publics: Vec<String> = holders.iter().map(|(_, public)| public.clone()).collect();
        let (root_secret, root_public) = generate(true);
        let (_, signing_only) = generate(false);

        let mut cluster = TestCluster::start(3).await;
        cluster.wait_leader().await;

        // Bad keys: 400 naming the field and index, before anything is generated or written.
        let bad = [
            (
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": publics[..2]}),
                "incorrect number of PGP keys",
            ),
            (
                json!({"secret_shares": 3, "secret_threshold": 2,
                       "pgp_keys": [publics[0], "bm90IGEga2V5", publics[2]]}),
                "pgp_keys[1]: not an OpenPGP public key",
            ),
            (
                json!({"secret_shares": 3, "secret_threshold": 2,
                       "pgp_keys": [publics[0], publics[1], signing_only]}),
                "pgp_keys[2]: the key has no valid encryption",
            ),
            (
                json!({"secret_shares": 3, "secret_threshold": 2,
                       "pgp_keys": [publics[0], publics[1], "keybase:someone"]}),
                "pgp_keys[2]: keybase users are not supported",
            ),
            (
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": publics,
                       "root_token_pgp_key": "%%% not base64"}),
                "root_token_pgp_key: not valid base64",
            ),
            (
                json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": "x"}),
                "incorrect number of PGP keys",
            ),
        ];
        for (body, needle) in bad {
            let (status, reply) = cluster.call(1, "PUT", "sys/init", Some(body), None).await;
            assert_eq!(status, 400, "{reply}");
            assert!(errors(&reply).contains(needle), "{needle:?} in {reply}");
        }
        for index in 0..3 {
            let (status, reply) = cluster.call(index, "GET", "sys/init", None, None).await;
            assert_eq!((status, reply["initialized"].clone()), (200, json!(false)));
        }

        // Init with one key per share and a root token key.
        let body = json!({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": publics,
                          "root_token_pgp_key": root_public});
        let this = &cluster;
        let result = wait_for("sys/init with pgp_keys", Duration::from_secs(60), || {
            let body = body.clone();
            async move {
                let (status, value) = this.call(0, "PUT", "sys/init", Some(body), None).await;
                (status == 200).then_some(value)
            }
        })
        .await;
        let encrypted = strings(&result["keys_base64"]);
        let encrypted_hex = strings(&result["keys"]);
        assert_eq!(encrypted.len(), 3);
        let mut shares = Vec::new();
        for (index, (secret, _)) in holders.iter().enumerate() {
            let raw = STANDARD.decode(&encrypted[index]).expect("base64");
            assert_eq!(
                encrypted_hex[index],
                hex::encode(&raw),
                "keys is the message's hex"
            );
            let share = decrypt(secret, &encrypted[index]);
            assert!(
                share.len() > 32 && share.chars().all(|c| c.is_ascii_hexdigit()),
                "a share's hex"
            );
            assert!(!result.to_string().contains(&share), "no plaintext share");
            // Another holder's key does not open it.
            let other = &holders[(index + 1) % 3].0;
            let attempt = Message::from_bytes(&raw[..])
                .expect("message")
                .decrypt(&Password::empty(), other);
            assert!(attempt.is_err(), "share {index} opened by another key");
            shares.push(share);
        }
        let root_token = decrypt(&root_secret, result["root_token"].as_str().expect("token"));
        assert!(root_token.starts_with("hvs."), "the token itself");
        assert!(!result.to_string().contains(&root_token));

        // The encrypted form is not a share; the decrypted ones unseal every node.
        let (status, reply) = cluster
            .call(
                2,
                "PUT",
                "sys/unseal",
                Some(json!({"key": encrypted[0]})),
                None,
            )
            .await;
        assert_eq!(status, 400, "{reply}");
        cluster.keys = shares.clone();
        cluster.root_token = root_token.clone();
        for index in 0..3 {
            let status = cluster.unseal_with(index, &[2, 0]).await;
            assert_eq!(status["sealed"], false, "node {}: {status}", index + 1);
        }
        let leader = cluster.wait_leader().await;
        let (status, lookup) = cluster
            .call(
                leader,
                "GET",
                "auth/token/lookup-self",
                None,
                Some(&root_token),
            )
            .await;
        assert_eq!(status, 200, "{lookup}");

        // Rekey to 2/2 with PGP keys (a bad key first: 400, nothing started).
        let (status, reply) = cluster
            .call(
                1,
                "PUT",
                "sys/rekey/init",
                Some(json!({"secret_shares": 2, "secret_threshold": 2,
                              "pgp_keys": [publics[0], signing_only]})),
                None,
            )
            .await;
        assert_eq!(status, 400, "{reply}");
        assert!(errors(&reply).contains("pgp_keys[1]"), "{reply}");
        let (_, idle) = cluster.call(1, "GET", "sys/rekey/init", None, None).await;
        assert_eq!(idle["started"], false, "{idle}");
        let (status, started) = cluster
            .call(
                1,
                "PUT",
                "sys/rekey/init",
                Some(json!({"secret_shares": 2, "secret_threshold": 2,
                              "pgp_keys": publics[..2], "backup": true})),
                None,
            )
            .await;
        assert_eq!(status, 200, "{started}");
        assert_eq!(started["backup"], true, "{started}");
        assert_eq!(strings(&started["pgp_fingerprints"]).len(), 2, "{started}");
        let nonce = started["nonce"].as_str().expect("nonce").to_string();
        let mut done = Value::Null;
        for share in &shares[..2] {
            let (status, reply) = cluster
                .call(
                    1,
                    "PUT",
                    "sys/rekey/update",
                    Some(json!({"key": share, "nonce": nonce})),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{reply}");
            done = reply;
        }
        assert_eq!(done["complete"], true, "{done}");
        assert_eq!(done["pgp_fingerprints"], started["pgp_fingerprints"]);
        assert_eq!(done["backup"], true, "{done}");
        // The backup (Vault's sys/rekey/backup, sudo): the same encrypted shares by fingerprint,
        // readable from another node; a token is required; DELETE removes it.
        let (status, _) = cluster.call(0, "GET", "sys/rekey/backup", None, None).await;
        assert_eq!(status, 403, "the backup needs a token");
        let this = &cluster;
        let backup = wait_for(
            "the backup on node 1",
            Duration::from_secs(30),
            || async move {
                let (status, reply) = this.root(0, "GET", "sys/rekey/backup", None).await;
                (status == 200).then_some(reply)
            },
        )
        .await;
        assert_eq!(backup["data"]["nonce"], json!(nonce), "{backup}");
        for (index, fingerprint) in strings(&done["pgp_fingerprints"]).iter().enumerate() {
            assert_eq!(
                backup["data"]["keys"][fingerprint],
                json!([done["keys"][index]]),
                "{backup}"
            );
            assert_eq!(
                backup["data"]["keys_base64"][fingerprint],
                json!([done["keys_base64"][index]]),
                "{backup}"
            );
        }
        let new_shares: Vec<String> = strings(&done["keys_base64"])
            .iter()
            .zip(&holders)
            .map(|(message, (secret, _))| decrypt(secret, message))
            .collect();
        wait_for("node 3 applies the rekey", Duration::from_secs(30), || {
            let cluster = &cluster;
            async move {
                let (_, status) = cluster.call(2, "GET", "sys/seal-status", None, None).await;
                (status["n"] == 2 && status["t"] == 2).then_some(())
            }
        })
        .await;
        let (status, _) = cluster.root(2, "PUT", "sys/seal", None).await;
        assert_eq!(status, 204);
        let (status, reply) = cluster
            .call(
                2,
                "PUT",
                "sys/unseal",
                Some(json!({"key": shares[2]})),
                None,
            )
            .await;
        assert_eq!(status, 400, "an old share after the rekey: {reply}");
        cluster.keys = new_shares.clone();
        let status = cluster.unseal_with(2, &[0, 1]).await;
        assert_eq!(status["sealed"], false, "{status}");
        let (status, reply) = cluster.root(2, "DELETE", "sys/rekey/backup", None).await;
        assert_eq!(status, 204, "{reply}");
        let (status, reply) = cluster.root(2, "GET", "sys/rekey/backup", None).await;
        assert_eq!(status, 400, "{reply}");
        assert!(errors(&reply).contains("no backed-up keys"), "{reply}");

        // Generate root with a PGP key: the new token comes back encrypted to it.
        let (status, attempt) = cluster
            .call(
                0,
                "PUT",
                "sys/generate-root/attempt",
                Some(json!({"pgp_key": publics[2]})),
                None,
            )
            .await;
        assert_eq!(status, 200, "{attempt}");
        assert_eq!(attempt["otp"], "");
        let fingerprint = attempt["pgp_fingerprint"].as_str().expect("fingerprint");
        assert_eq!(fingerprint.len(), 40, "{attempt}");
        let nonce = attempt["nonce"].as_str().expect("nonce").to_string();
        let mut last = Value::Null;
        for share in &new_shares {
            let (status, reply) = cluster
                .call(
                    0,
                    "PUT",
                    "sys/generate-root/update",
                    Some(json!({"key": share, "nonce": nonce})),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{reply}");
            last = reply;
        }
        assert_eq!(last["complete"], true, "{last}");
        assert_eq!(last["pgp_fingerprint"], fingerprint);
        let token = decrypt(
            &holders[2].0,
            last["encoded_token"].as_str().expect("encoded"),
        );
        assert_ne!(token, root_token);
        let (status, lookup) = cluster
            .call(1, "GET", "auth/token/lookup-self", None, Some(&token))
            .await;
        assert_eq!(status, 200, "generated root token: {lookup}");
        assert!(
            lookup["data"]["policies"]
                .as_array()
                .is_some_and(|p| p.contains(&json!("root"))),
            "{lookup}"
        );
    })
    .await;
}
