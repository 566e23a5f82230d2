//! t102: HSM auto-unseal on SoftHSM2. A 3-node cluster whose nodes each have their own SoftHSM2
//! holding the same key (copies of one token; `[seal.pkcs11]`) is initialized with recovery shares and unseals itself; killed and restarted
//! it comes back unsealed with no operator action; a rekey with recovery shares keeps
//! auto-unseal working and generate-root takes recovery shares; a wrong PIN is a clear startup
//! error that never shows the PIN; with the token deleted a restarted node stays sealed and
//! recovery shares unseal it. A second test migrates a Shamir cluster to PKCS#11 and back with
//! `migrate` on `sys/unseal`.
//!
//! Needs SoftHSM2, which `scripts/setup.sh` installs: without it the tests fail and say so.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::Tuning;
use crate::fixture::wait_for;

const SOFTHSM_LIB: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "strongroom-t102";
const PIN: &str = "t102-user-pin-8841";
const WRONG_PIN: &str = "t102-wrong-pin-5512";
const KEY_LABEL: &str = "strongroom-unseal";

fn softhsm_available() -> bool {
    Path::new(SOFTHSM_LIB).is_file()
        && Command::new("softhsm2-util")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
}

fn softhsm(conf: &Path, args: &[&str]) {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(args)
        .output()
        .expect("run softhsm2-util");
    assert!(out.status.success(), "softhsm2-util {args:?}: {out:?}");
}

/// Writes `dir/softhsm2.conf` naming `tokens` as the token dir; returns its path.
fn softhsm_conf(dir: &Path, tokens: &Path) -> std::path::PathBuf {
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("write softhsm2.conf");
    conf
}

/// A SoftHSM2 config with its own token dir, a token, and an AES-256 key labelled KEY_LABEL
/// (imported from random bytes that are deleted right after).
fn make_hsm(dir: &Path) -> std::path::PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let conf = softhsm_conf(dir, &tokens);
    softhsm(
        &conf,
        &[
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "t102-so-pin",
        ],
    );
    // softhsm2-util 2.6.1 (Debian's) reads the key file with `fgets` and takes its `strlen`, so a
    // key with a newline or NUL byte is imported cut short there (fixed upstream in 90aba385):
    // the node then refuses the key (t102 once failed ~1 run in 5 on this). Those two bytes are
    // left out of the test key.
    let key_file = dir.join("aes.key");
    let key: [u8; 32] = std::array::from_fn(|_| {
        loop {
            let byte: u8 = rand::random();
            if byte != 0 && byte != b'\n' {
                break byte;
            }
        }
    });
    std::fs::write(&key_file, key).expect("write key file");
    softhsm(
        &conf,
        &[
            "--import",
            key_file.to_str().expect("utf-8 path"),
            "--aes",
            "--token",
            TOKEN,
            "--label",
            KEY_LABEL,
            "--id",
            "0102",
            "--pin",
            PIN,
        ],
    );
    std::fs::remove_file(&key_file).expect("remove key file");
    conf
}

/// Gives each of `nodes` its own SoftHSM2 (a copy of the token made by [`make_hsm`], so the same
/// key), as nodes on separate hosts each have their own HSM holding the cluster's key. Returns
/// each node's `SOFTHSM2_CONF`, by node id.
fn hsm_per_node(dir: &Path, nodes: u64) -> Vec<String> {
    (1..=nodes)
        .map(|id| {
            let own = dir.join(format!("node{id}"));
            let tokens = own.join("tokens");
            copy_dir(&dir.join("tokens"), &tokens);
            softhsm_conf(&own, &tokens)
                .to_str()
                .expect("utf-8 path")
                .to_string()
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Each node's environment: its own SoftHSM2 config.
fn hsm_env(confs: &[String]) -> impl Fn(u64) -> Vec<(String, String)> + '_ {
    |id| {
        let index = usize::try_from(id - 1).expect("node id");
        vec![("SOFTHSM2_CONF".to_string(), confs[index].clone())]
    }
}

async fn status(cluster: &TestCluster, index: usize) -> Value {
    let (code, body) = cluster
        .call(index, "GET", "sys/seal-status", None, None)
        .await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_unsealed(cluster: &TestCluster, index: usize) {
    wait_for(
        &format!("node {} unsealed by its HSM", index + 1),
        Duration::from_secs(60),
        || async move {
            let (code, body) = cluster
                .call(index, "GET", "sys/seal-status", None, None)
                .await;
            (code == 200 && body["sealed"] == false).then_some(())
        },
    )
    .await;
}

async fn read_secret(cluster: &TestCluster, index: usize) -> Value {
    wait_for(
        &format!("secret readable on node {}", index + 1),
        Duration::from_secs(30),
        || async move {
            let (code, body) = cluster.root(index, "GET", "secret/data/hsm", None).await;
            (code == 200).then(|| body["data"]["data"].clone())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_cluster_unseals_itself_and_recovers_without_the_hsm() {
    assert!(
        softhsm_available(),
        "softhsm2 is not installed: run scripts/setup.sh"
    );
    bounded(Duration::from_secs(400), async {
        let hsm_dir = tempfile::tempdir().expect("hsm dir");
        make_hsm(hsm_dir.path());
        let pin_file = hsm_dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).expect("pin file");
        let seal = format!(
            "\n[seal.pkcs11]\nlib = \"{SOFTHSM_LIB}\"\ntoken_label = \"{TOKEN}\"\npin_file = \"{}\"\nkey_label = \"{KEY_LABEL}\"\n",
            pin_file.display()
        );
        let confs = hsm_per_node(hsm_dir.path(), 3);
        let mut cluster =
            TestCluster::start_with_node_env(3, Tuning::default(), &seal, hsm_env(&confs)).await;

        let before = status(&cluster, 0).await;
        assert_eq!(
            (before["type"].clone(), before["initialized"].clone(), before["sealed"].clone()),
            (json!("pkcs11"), json!(false), json!(true)),
            "{before}"
        );

        // Init with recovery shares (Vault's parameters); no unseal shares are issued.
        let this = &cluster;
        let init = wait_for("sys/init", Duration::from_secs(60), || async move {
            let body = json!({"recovery_shares": 5, "recovery_threshold": 3});
            let (code, value) = this.call(1, "PUT", "sys/init", Some(body), None).await;
            if code != 200 {
                eprintln!("sys/init answered {code}: {value}");
            }
            (code == 200).then_some(value)
        })
        .await;
        assert_eq!(init["keys"], json!([]), "{init}");
        assert_eq!(init["keys_base64"], json!([]), "{init}");
        let recovery: Vec<String> = init["recovery_keys_base64"]
            .as_array()
            .expect("recovery_keys_base64")
            .iter()
            .map(|key| key.as_str().expect("string").to_string())
            .collect();
        assert_eq!(recovery.len(), 5, "{init}");
        assert_eq!(init["recovery_keys"].as_array().map(Vec::len), Some(5));
        cluster.root_token = init["root_token"].as_str().expect("root_token").to_string();

        // Every node unseals itself, with no sys/unseal call.
        for index in 0..3 {
            wait_unsealed(&cluster, index).await;
            let after = status(&cluster, index).await;
            assert_eq!(after["type"], "pkcs11", "{after}");
            assert_eq!(after["recovery_seal"], true, "{after}");
            assert_eq!((after["t"].clone(), after["n"].clone()), (json!(3), json!(5)));
        }
        let (code, body) = cluster
            .root(0, "POST", "secret/data/hsm", Some(json!({"data": {"k": "v1"}})))
            .await;
        assert_eq!(code, 200, "{body}");

        // All nodes killed and restarted: back unsealed on their own.
        for index in 0..3 {
            cluster.kill(index);
        }
        for index in 0..3 {
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
            wait_unsealed(&cluster, index).await;
        }
        for index in 0..3 {
            assert_eq!(read_secret(&cluster, index).await, json!({"k": "v1"}));
        }

        // Rekey the recovery shares (5/3 -> 3/2) with a quorum of the old ones; the HSM-wrapped
        // key follows, so a full restart still auto-unseals.
        let (code, started) = cluster
            .call(0, "PUT", "sys/rekey/init", Some(json!({"secret_shares": 3, "secret_threshold": 2})), None)
            .await;
        assert_eq!(code, 200, "{started}");
        let nonce = started["nonce"].as_str().expect("nonce").to_string();
        let mut done = Value::Null;
        for key in &recovery[..3] {
            let (code, reply) = cluster
                .call(0, "PUT", "sys/rekey/update", Some(json!({"key": key, "nonce": nonce})), None)
                .await;
            assert_eq!(code, 200, "{reply}");
            done = reply;
        }
        let recovery: Vec<String> = done["keys_base64"]
            .as_array()
            .expect("new recovery shares")
            .iter()
            .map(|key| key.as_str().expect("string").to_string())
            .collect();
        assert_eq!(recovery.len(), 3, "{done}");
        for index in 0..3 {
            cluster.kill(index);
        }
        for index in 0..3 {
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
            wait_unsealed(&cluster, index).await;
        }
        let rekeyed = status(&cluster, 2).await;
        assert_eq!((rekeyed["t"].clone(), rekeyed["n"].clone()), (json!(2), json!(3)));

        // Generate-root with the recovery shares yields a working root token.
        let (code, attempt) = cluster
            .call(1, "PUT", "sys/generate-root/attempt", Some(json!({})), None)
            .await;
        assert_eq!(code, 200, "{attempt}");
        assert_eq!(attempt["required"], 2, "{attempt}");
        let otp = attempt["otp"].as_str().expect("otp").to_string();
        let gen_nonce = attempt["nonce"].as_str().expect("nonce").to_string();
        let mut last = Value::Null;
        for key in &recovery[1..3] {
            let body = json!({"key": key, "nonce": gen_nonce});
            let (code, reply) = cluster
                .call(1, "PUT", "sys/generate-root/update", Some(body), None)
                .await;
            assert_eq!(code, 200, "{reply}");
            last = reply;
        }
        let encoded = last["encoded_token"].as_str().expect("encoded_token");
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .expect("raw std base64");
        let token: String = raw
            .iter()
            .zip(otp.as_bytes())
            .map(|(a, b)| char::from(a ^ b))
            .collect();
        let (code, me) = cluster
            .call(2, "GET", "auth/token/lookup-self", None, Some(&token))
            .await;
        assert_eq!((code, me["data"]["policies"].clone()), (200, json!(["root"])), "{me}");

        // A wrong PIN: node 3 refuses to start, says why, and never prints either PIN.
        let wrong_pin_file = hsm_dir.path().join("wrong-pin");
        std::fs::write(&wrong_pin_file, WRONG_PIN).expect("wrong pin file");
        let config_path = cluster.config_path(2).to_path_buf();
        let good_config = std::fs::read_to_string(&config_path).expect("read config");
        let bad_config = good_config.replace(
            &pin_file.display().to_string(),
            &wrong_pin_file.display().to_string(),
        );
        assert_ne!(bad_config, good_config);
        cluster.stop(2).await;
        std::fs::write(&config_path, &bad_config).expect("write bad config");
        cluster.spawn(2);
        let exit = cluster
            .wait_exit(2, Duration::from_secs(60))
            .await
            .expect("a node with a wrong PIN exits");
        assert!(!exit.success(), "{exit}");
        let log = cluster.log(2);
        assert!(log.contains("the PIN is incorrect"), "{log}");
        assert!(!log.contains(WRONG_PIN) && !log.contains(PIN), "a PIN leaked into the log");
        std::fs::write(&config_path, &good_config).expect("restore config");

        // The HSM is lost (its token deleted): node 3 starts, stays sealed, and the recovery
        // shares unseal it; the others keep serving.
        for entry in std::fs::read_dir(hsm_dir.path().join("node3/tokens")).expect("token dir") {
            std::fs::remove_dir_all(entry.expect("entry").path()).expect("delete token");
        }
        cluster.spawn(2);
        cluster.wait_http(2).await;
        wait_for("node 3 reports the lost HSM", Duration::from_secs(30), || {
            let log = cluster.log(2);
            async move { log.contains("the HSM cannot be used; starting sealed").then_some(()) }
        })
        .await;
        let sealed = status(&cluster, 2).await;
        assert_eq!(
            (sealed["sealed"].clone(), sealed["type"].clone(), sealed["recovery_seal"].clone()),
            (json!(true), json!("pkcs11"), json!(true)),
            "{sealed}"
        );
        let (code, reply) = cluster
            .call(2, "PUT", "sys/unseal", Some(json!({"key": recovery[0]})), None)
            .await;
        assert_eq!((code, reply["sealed"].clone(), reply["progress"].clone()), (200, json!(true), json!(1)));
        let (code, reply) = cluster
            .call(2, "PUT", "sys/unseal", Some(json!({"key": recovery[2]})), None)
            .await;
        assert_eq!((code, reply["sealed"].clone()), (200, json!(false)), "{reply}");
        assert_eq!(read_secret(&cluster, 2).await, json!({"k": "v1"}));
        let log = (0..3).map(|index| cluster.log(index)).collect::<String>();
        assert!(!log.contains(PIN), "the PIN leaked into a log");
    })
    .await;
}

/// Appends (or, with `None`, removes) the `[seal.pkcs11]` section of node `index`'s config.
fn set_seal_section(cluster: &TestCluster, index: usize, section: Option<&str>) {
    let path = cluster.config_path(index);
    let text = std::fs::read_to_string(path).expect("read config");
    let base = text
        .split("\n[seal.pkcs11]")
        .next()
        .expect("config")
        .to_string();
    let text = match section {
        Some(section) => format!("{base}{section}"),
        None => base,
    };
    std::fs::write(path, text).expect("write config");
}

async fn unseal_with_shares(
    cluster: &TestCluster,
    index: usize,
    keys: &[String],
    migrate: bool,
) -> Value {
    let mut last = Value::Null;
    for key in keys {
        let (code, reply) = cluster
            .call(
                index,
                "PUT",
                "sys/unseal",
                Some(json!({"key": key, "migrate": migrate})),
                None,
            )
            .await;
        assert_eq!(code, 200, "node {}: {reply}", index + 1);
        last = reply;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seal_migrates_from_shamir_to_pkcs11_and_back() {
    assert!(
        softhsm_available(),
        "softhsm2 is not installed: run scripts/setup.sh"
    );
    bounded(Duration::from_secs(400), async {
        let hsm_dir = tempfile::tempdir().expect("hsm dir");
        make_hsm(hsm_dir.path());
        let pin_file = hsm_dir.path().join("pin");
        std::fs::write(&pin_file, PIN).expect("pin file");
        let seal = format!(
            "\n[seal.pkcs11]\nlib = \"{SOFTHSM_LIB}\"\ntoken_label = \"{TOKEN}\"\npin_file = \"{}\"\nkey_label = \"{KEY_LABEL}\"\n",
            pin_file.display()
        );
        // A Shamir cluster whose processes can reach the HSM once configured to.
        let confs = hsm_per_node(hsm_dir.path(), 3);
        let mut cluster =
            TestCluster::start_with_node_env(3, Tuning::default(), "", hsm_env(&confs)).await;
        cluster.init(0).await;
        for index in 0..3 {
            cluster.unseal(index).await;
        }
        let (code, body) = cluster
            .root(0, "POST", "secret/data/hsm", Some(json!({"data": {"k": "v1"}})))
            .await;
        assert_eq!(code, 200, "{body}");
        let keys = cluster.keys.clone();

        // migrate on a node with nothing to migrate is refused and changes nothing.
        for index in 0..3 {
            cluster.stop(index).await;
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
        }
        let (code, reply) = cluster
            .call(0, "PUT", "sys/unseal", Some(json!({"key": keys[0], "migrate": true})), None)
            .await;
        assert_eq!(code, 400, "{reply}");
        assert!(reply["errors"][0].as_str().unwrap_or("").contains("no seal migration pending"), "{reply}");
        assert_eq!(status(&cluster, 0).await["progress"], 0);

        // Shamir -> PKCS#11: every node gets [seal.pkcs11] and restarts; they are sealed and
        // report the pending migration; the shares with migrate on one node switch the cluster,
        // and every other node then unseals itself.
        for index in 0..3 {
            cluster.stop(index).await;
            set_seal_section(&cluster, index, Some(&seal));
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
            let pending = status(&cluster, index).await;
            assert_eq!(
                (pending["sealed"].clone(), pending["type"].clone(), pending["migration"].clone()),
                (json!(true), json!("shamir"), json!(true)),
                "{pending}"
            );
        }
        let done = unseal_with_shares(&cluster, 0, &keys[..3], true).await;
        assert_eq!(done["sealed"], false, "{done}");
        assert_eq!((done["type"].clone(), done["recovery_seal"].clone()), (json!("pkcs11"), json!(true)));
        for index in 1..3 {
            wait_unsealed(&cluster, index).await;
        }
        for index in 0..3 {
            cluster.kill(index);
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
            wait_unsealed(&cluster, index).await;
            assert_eq!(status(&cluster, index).await["migration"], false);
        }
        assert_eq!(read_secret(&cluster, 2).await, json!({"k": "v1"}));

        // PKCS#11 -> Shamir: the section is removed; the former recovery shares with migrate
        // switch back, and the others unseal with the same shares as unseal shares.
        for index in 0..3 {
            cluster.stop(index).await;
            set_seal_section(&cluster, index, None);
            cluster.spawn(index);
        }
        for index in 0..3 {
            cluster.wait_http(index).await;
            let pending = status(&cluster, index).await;
            assert_eq!(
                (pending["sealed"].clone(), pending["type"].clone(), pending["migration"].clone()),
                (json!(true), json!("pkcs11"), json!(true)),
                "{pending}"
            );
        }
        let done = unseal_with_shares(&cluster, 1, &keys[2..5], true).await;
        assert_eq!((done["sealed"].clone(), done["type"].clone()), (json!(false), json!("shamir")), "{done}");
        for index in [0, 2] {
            let this = &cluster;
            wait_for("the migration replicated", Duration::from_secs(30), || async move {
                let body = status(this, index).await;
                (body["type"] == "shamir").then_some(())
            })
            .await;
            let done = unseal_with_shares(&cluster, index, &keys[..3], false).await;
            assert_eq!(done["sealed"], false, "{done}");
        }
        assert_eq!(read_secret(&cluster, 0).await, json!({"k": "v1"}));
    })
    .await;
}
