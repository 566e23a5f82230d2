//! Rekey and generate-root on a 3-node cluster: bad input is refused with no state change, a
//! rekey from 5/3 to 7/4 with verification keeps the old shares valid until the new ones are
//! proven, then the old shares open nothing on any node and the new ones unseal every node (after
//! root-key rotations made on the two nodes that did not run the rekey);
//! generate-root yields a working root token (decoded from the OTP exactly as Vault's CLI does).

use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

fn errors(body: &Value) -> String {
    body["errors"][0].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_with_verification_then_generate_root() {
    bounded(Duration::from_secs(300), async {
        let mut cluster = TestCluster::start(3).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let old_keys = cluster.keys.clone();

        // Bad parameters: 400 with a clear message, nothing started.
        for (body, needle) in [
            (json!({"secret_shares": 3, "secret_threshold": 4}), "threshold cannot be larger"),
            (json!({"secret_shares": 256, "secret_threshold": 3}), "less than 256"),
            (json!({"secret_shares": 3, "secret_threshold": 0}), "threshold must be at least one"),
            (json!({"secret_shares": 3, "secret_threshold": 1}), "greater than one"),
            (
                json!({"secret_shares": 3, "secret_threshold": 2, "backup": true}),
                "backup",
            ),
        ] {
            let (status, reply) = cluster.call(1, "PUT", "sys/rekey/init", Some(body), None).await;
            assert_eq!(status, 400, "{reply}");
            assert!(errors(&reply).contains(needle), "{reply}");
        }
        let (status, idle) = cluster.call(1, "GET", "sys/rekey/init", None, None).await;
        assert_eq!((status, idle["started"].clone()), (200, json!(false)), "{idle}");
        assert_eq!(idle["required"], 3);

        // Start 7/4 with verification on node 2.
        let (status, started) = cluster
            .call(
                1,
                "PUT",
                "sys/rekey/init",
                Some(json!({"secret_shares": 7, "secret_threshold": 4, "require_verification": true})),
                None,
            )
            .await;
        assert_eq!(status, 200, "{started}");
        assert_eq!(
            (started["started"].clone(), started["t"].clone(), started["n"].clone()),
            (json!(true), json!(4), json!(7))
        );
        assert_eq!(started["verification_required"], true);
        let nonce = started["nonce"].as_str().expect("nonce").to_string();
        let (status, reply) = cluster
            .call(1, "PUT", "sys/rekey/init", Some(json!({"secret_shares": 5, "secret_threshold": 3})), None)
            .await;
        assert_eq!((status, errors(&reply)), (400, "rekey already in progress".into()));

        // Wrong nonce, duplicate, foreign and garbage shares: 400, progress kept, no share echoed.
        let update = |key: &str, nonce: &str| json!({"key": key, "nonce": nonce});
        let (status, reply) = cluster
            .call(1, "PUT", "sys/rekey/update", Some(update(&old_keys[0], "wrong")), None)
            .await;
        assert_eq!(status, 400, "{reply}");
        assert!(errors(&reply).contains("incorrect nonce"), "{reply}");
        let (status, reply) = cluster
            .call(1, "PUT", "sys/rekey/update", Some(update(&old_keys[0], &nonce)), None)
            .await;
        assert_eq!((status, reply["progress"].clone()), (200, json!(1)), "{reply}");
        let foreign = base64::engine::general_purpose::STANDARD.encode([7u8; 33]);
        for bad in [old_keys[0].clone(), foreign, "garbage!".to_string()] {
            let (status, reply) = cluster
                .call(1, "PUT", "sys/rekey/update", Some(update(&bad, &nonce)), None)
                .await;
            assert_eq!(status, 400, "{reply}");
            assert!(!reply.to_string().contains(&bad), "a share in an error: {reply}");
        }
        let (_, progress) = cluster.call(1, "GET", "sys/rekey/init", None, None).await;
        assert_eq!(progress["progress"], 1, "{progress}");

        // The old quorum completes: new shares and a verification nonce, nothing committed yet.
        cluster
            .call(1, "PUT", "sys/rekey/update", Some(update(&old_keys[3], &nonce)), None)
            .await;
        let (status, done) = cluster
            .call(1, "PUT", "sys/rekey/update", Some(update(&old_keys[4], &nonce)), None)
            .await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["complete"], true);
        let new_keys: Vec<String> = done["keys_base64"]
            .as_array()
            .expect("keys_base64")
            .iter()
            .map(|k| k.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(new_keys.len(), 7);
        assert_eq!(done["keys"].as_array().map(Vec::len), Some(7));
        let verify_nonce = done["verification_nonce"].as_str().expect("verification nonce").to_string();
        let (_, status_now) = cluster.call(2, "GET", "sys/seal-status", None, None).await;
        assert_eq!((status_now["n"].clone(), status_now["t"].clone()), (json!(5), json!(3)));
        let (status, reply) = cluster
            .call(1, "PUT", "sys/rekey/update", Some(update(&old_keys[1], &nonce)), None)
            .await;
        assert_eq!(status, 400);
        assert!(errors(&reply).contains("verification must be performed"), "{reply}");

        // Verification: wrong nonce and an old share are refused; four new shares commit.
        let (status, _) = cluster
            .call(1, "PUT", "sys/rekey/verify", Some(update(&new_keys[0], "wrong")), None)
            .await;
        assert_eq!(status, 400);
        let (status, _) = cluster
            .call(1, "PUT", "sys/rekey/verify", Some(update(&old_keys[0], &verify_nonce)), None)
            .await;
        assert_eq!(status, 400, "an old share does not verify the new key");
        let mut last = Value::Null;
        for key in &new_keys[2..6] {
            let (status, reply) = cluster
                .call(1, "PUT", "sys/rekey/verify", Some(update(key, &verify_nonce)), None)
                .await;
            assert_eq!(status, 200, "{reply}");
            last = reply;
        }
        assert_eq!(last, json!({"nonce": verify_nonce, "complete": true}));
        let (_, idle) = cluster.call(1, "GET", "sys/rekey/init", None, None).await;
        assert_eq!(idle["started"], false, "{idle}");

        // Every node sees 7/4.
        for index in 0..3 {
            let this = &cluster;
            wait_for("the new seal config", Duration::from_secs(20), || async move {
                let (_, status) = this.call(index, "GET", "sys/seal-status", None, None).await;
                (status["n"] == 7 && status["t"] == 4).then_some(())
            })
            .await;
        }
        // Root-key rotation on nodes 1 and 3, still unsealed with the old shares' key (the rekey
        // ran on node 2): they use the current unseal key stored in the barrier, so the new root
        // key is wrapped by the new shares' key (the unseals below prove it).
        for index in [0, 2] {
            let (status, reply) = cluster.root(index, "PUT", "sys/rotate/root", None).await;
            assert_eq!(status, 204, "rotate/root on node {}: {reply}", index + 1);
        }
        // Seal them all.
        for index in 0..3 {
            let (status, reply) = cluster.root(index, "PUT", "sys/seal", None).await;
            assert_eq!(status, 204, "seal node {}: {reply}", index + 1);
        }

        // Old shares open nothing; the new ones unseal every node.
        cluster.keys = old_keys.clone();
        for index in 0..3 {
            let (status, reply) = cluster
                .call(index, "PUT", "sys/unseal", Some(json!({"key": old_keys[0]})), None)
                .await;
            assert_eq!(status, 400, "old share on node {}: {reply}", index + 1);
        }
        cluster.keys = new_keys.clone();
        for index in 0..3 {
            let status = cluster.unseal_with(index, &[6, 0, 3]).await;
            assert_eq!(status["sealed"], true, "3 of 7/4 is not enough: {status}");
            let status = cluster.unseal_with(index, &[5]).await;
            assert_eq!(status["sealed"], false, "node {}: {status}", index + 1);
        }

        // Generate root on node 3: bad starts refused, then a server-generated OTP.
        for (body, needle) in [
            (json!({"otp": "short"}), "OTP string is wrong length"),
            (json!({"pgp_key": "bm90IGEga2V5"}), "PGP"),
        ] {
            let (status, reply) = cluster
                .call(2, "PUT", "sys/generate-root/attempt", Some(body), None)
                .await;
            assert_eq!(status, 400, "{reply}");
            assert!(errors(&reply).contains(needle), "{reply}");
        }
        let (status, attempt) = cluster
            .call(2, "PUT", "sys/generate-root/attempt", Some(json!({})), None)
            .await;
        assert_eq!(status, 200, "{attempt}");
        let otp = attempt["otp"].as_str().expect("otp").to_string();
        assert_eq!(attempt["otp_length"].as_u64(), Some(otp.len() as u64));
        assert_eq!(attempt["required"], 4);
        let gen_nonce = attempt["nonce"].as_str().expect("nonce").to_string();
        let (_, status_view) = cluster.call(2, "GET", "sys/generate-root/attempt", None, None).await;
        assert_eq!(status_view["otp"], "", "the OTP is shown once");
        let (status, _) = cluster
            .call(2, "PUT", "sys/generate-root/update", Some(update(&old_keys[0], &gen_nonce)), None)
            .await;
        assert_eq!(status, 400, "old shares do not generate a root token");
        let mut last = Value::Null;
        for key in &new_keys[1..5] {
            let (status, reply) = cluster
                .call(2, "PUT", "sys/generate-root/update", Some(update(key, &gen_nonce)), None)
                .await;
            assert_eq!(status, 200, "{reply}");
            last = reply;
        }
        assert_eq!(last["complete"], true, "{last}");
        let encoded = last["encoded_token"].as_str().expect("encoded_token");
        assert_eq!(last["encoded_root_token"], encoded);
        // Vault's decode: base64 (standard alphabet, no padding), XOR with the OTP's bytes.
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .expect("raw std base64");
        assert_eq!(raw.len(), otp.len());
        let token: String = raw
            .iter()
            .zip(otp.as_bytes())
            .map(|(a, b)| char::from(a ^ b))
            .collect();
        assert!(token.starts_with("hvs."), "decoded token has Vault's prefix");
        for index in 0..3 {
            let (status, me) = cluster
                .call(index, "GET", "auth/token/lookup-self", None, Some(&token))
                .await;
            assert_eq!(status, 200, "{me}");
            assert_eq!(me["data"]["policies"], json!(["root"]));
        }
        let (status, reply) = cluster
            .call(0, "POST", "secret/data/after-rekey", Some(json!({"data": {"k": "v"}})), Some(&token))
            .await;
        assert_eq!(status, 200, "{reply}");
    })
    .await;
}
