//! The share-holder ceremonies from the command line, in the style of Vault's CLI:
//!
//! - `strongroom operator rekey --init|--status|--cancel|[--verify] [KEY]` over `sys/rekey/*`;
//! - `strongroom operator generate-root --init|--status|--cancel|--generate-otp|--decode|[KEY]`
//!   over `sys/generate-root/*`;
//! - `strongroom operator unseal --all [--key-file FILE]`: finds every node of the cluster
//!   (`sys/cluster-members`), asks for each share once (hidden prompt, or one per line from the
//!   file, `-` for stdin) and submits it to every sealed node, printing each node's progress;
//!   unsealed nodes are skipped, unreachable ones reported.
//!
//! A ceremony's progress lives on the node it was started on: use the same `--address` for every
//! step. Shares are read from the argument, a hidden prompt, or stdin, and never logged.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::client::{Client, ClientError};
use super::output::{Format, cell, json as pretty, kv_table};

/// Exit code when some node is still sealed or could not be reached after `unseal --all`.
pub const EXIT_INCOMPLETE: u8 = 2;

/// Time allowed per node request during `unseal --all` (an unreachable node must not stall it).
const NODE_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `operator rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// A share of the current unseal key (of the new one with --verify). Prompted for (hidden)
    /// when omitted.
    #[arg(value_name = "KEY", conflicts_with_all = ["init", "cancel", "status"])]
    pub key: Option<String>,
    /// Start a rekey with --key-shares and --key-threshold.
    #[arg(long, conflicts_with_all = ["cancel", "status"])]
    pub init: bool,
    /// Cancel the rekey in progress (the current shares stay valid).
    #[arg(long, conflicts_with = "status")]
    pub cancel: bool,
    /// Show the rekey progress.
    #[arg(long)]
    pub status: bool,
    /// Number of new shares (with --init).
    #[arg(long, short = 'n', default_value_t = 5)]
    pub key_shares: u32,
    /// Number of new shares needed to unseal (with --init).
    #[arg(long, short = 't', default_value_t = 3)]
    pub key_threshold: u32,
    /// With --init: require the new shares to be proven before they replace the old ones.
    /// Otherwise: submit a NEW share to the verification step.
    #[arg(long)]
    pub verify: bool,
    /// With --init: encrypt each new share to its holder's OpenPGP public key (comma-separated
    /// key files, armored or binary, one per new share, in order).
    #[arg(long, value_delimiter = ',', value_name = "FILES", requires = "init")]
    pub pgp_keys: Vec<PathBuf>,
    /// The operation's nonce (read from the status when omitted).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Arguments of `operator generate-root`.
#[derive(Debug, Args)]
pub struct GenerateRootArgs {
    /// A share of the unseal key. Prompted for (hidden) when omitted.
    #[arg(value_name = "KEY", conflicts_with_all = ["init", "cancel", "status", "generate_otp", "decode"])]
    pub key: Option<String>,
    /// Start a root token generation (with --otp, or the server generates the OTP).
    #[arg(long, conflicts_with_all = ["cancel", "status", "generate_otp", "decode"])]
    pub init: bool,
    /// Cancel the attempt in progress.
    #[arg(long, conflicts_with_all = ["status", "generate_otp", "decode"])]
    pub cancel: bool,
    /// Show the attempt's progress.
    #[arg(long, conflicts_with_all = ["generate_otp", "decode"])]
    pub status: bool,
    /// Print a fresh OTP of the length the server expects.
    #[arg(long, conflicts_with = "decode")]
    pub generate_otp: bool,
    /// Decode an encoded token with --otp and print the token.
    #[arg(long, value_name = "ENCODED", requires = "otp")]
    pub decode: Option<String>,
    /// The one-time pad (with --init or --decode).
    #[arg(long)]
    pub otp: Option<String>,
    /// With --init: encrypt the new root token to this OpenPGP public key file instead of an
    /// OTP (`base64 -d | gpg -dq` on the encoded token gives the token).
    #[arg(long, value_name = "FILE", requires = "init", conflicts_with = "otp")]
    pub pgp_key: Option<PathBuf>,
    /// The attempt's nonce (read from the status when omitted).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Runs `operator rekey`.
pub async fn rekey(client: &Client, a: RekeyArgs) -> anyhow::Result<ExitCode> {
    if a.init {
        let mut body = json!({
            "secret_shares": a.key_shares,
            "secret_threshold": a.key_threshold,
            "require_verification": a.verify,
        });
        if !a.pgp_keys.is_empty() {
            body["pgp_keys"] = json!(read_pgp_keys(&a.pgp_keys)?);
        }
        let status = expect(
            client.put("sys/rekey/init", &body).await,
            "initializing rekey",
        )?;
        show(a.format, &status, render_rekey_status(&status, false));
        return Ok(ExitCode::SUCCESS);
    }
    if a.cancel {
        client
            .delete("sys/rekey/init")
            .await
            .context("Error canceling rekey")?;
        println!("Success! Canceled rekeying (if it was started)");
        return Ok(ExitCode::SUCCESS);
    }
    let status = expect(client.get("sys/rekey/init").await, "reading rekey status")?;
    if a.status {
        show(a.format, &status, render_rekey_status(&status, false));
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        status.get("started").and_then(Value::as_bool) == Some(true),
        "No rekey is in progress. Start one with --init."
    );
    let (path, nonce) = if a.verify {
        let verify = expect(client.get("sys/rekey/verify").await, "reading verification")?;
        let nonce = a
            .nonce
            .or_else(|| text(&verify, "nonce"))
            .unwrap_or_default();
        ("sys/rekey/verify", nonce)
    } else {
        let nonce = a
            .nonce
            .or_else(|| text(&status, "nonce"))
            .unwrap_or_default();
        ("sys/rekey/update", nonce)
    };
    let key = match a.key {
        Some(key) => Zeroizing::new(key),
        None => read_share("Unseal Key (will be hidden): ")?,
    };
    let body = json!({"key": key.as_str(), "nonce": nonce});
    let resp = expect(client.put(path, &body).await, "submitting the key")?;
    let complete = resp.get("complete").and_then(Value::as_bool) == Some(true);
    let table = if !complete {
        render_rekey_status(&resp, a.verify)
    } else if a.verify {
        format!(
            "Success! Rekey verification complete. The new unseal keys are in effect on every \
             node (verification nonce {}).\n",
            text(&resp, "nonce").unwrap_or_default()
        )
    } else {
        render_rekey_keys(&resp)
    };
    show(a.format, &resp, table);
    Ok(ExitCode::SUCCESS)
}

/// Runs `operator generate-root`.
pub async fn generate_root(client: &Client, a: GenerateRootArgs) -> anyhow::Result<ExitCode> {
    if let Some(encoded) = &a.decode {
        let otp = a.otp.as_deref().unwrap_or_default();
        let token = crate::crypto::otp::decode(encoded, otp).context("Error decoding the token")?;
        match a.format {
            Format::Json => print!("{}", pretty(&json!({"token": token.as_str()}))),
            Format::Table => println!("{}", token.as_str()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.cancel {
        client
            .delete("sys/generate-root/attempt")
            .await
            .context("Error canceling root token generation")?;
        println!("Success! Root token generation canceled (if it was started)");
        return Ok(ExitCode::SUCCESS);
    }
    if a.init {
        let body = match (&a.otp, &a.pgp_key) {
            (Some(otp), _) => json!({"otp": otp}),
            (None, Some(path)) => json!({"pgp_key": read_pgp_keys(std::slice::from_ref(path))?[0]}),
            (None, None) => json!({}),
        };
        let status = expect(
            client.put("sys/generate-root/attempt", &body).await,
            "initializing root generation",
        )?;
        show(a.format, &status, render_root_status(&status));
        return Ok(ExitCode::SUCCESS);
    }
    let status = expect(
        client.get("sys/generate-root/attempt").await,
        "reading root generation status",
    )?;
    if a.generate_otp {
        let length = status
            .get("otp_length")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .context("the server did not say how long the OTP must be")?;
        println!("{}", crate::crypto::otp::generate(length).as_str());
        return Ok(ExitCode::SUCCESS);
    }
    if a.status {
        show(a.format, &status, render_root_status(&status));
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        status.get("started").and_then(Value::as_bool) == Some(true),
        "No root generation is in progress. Start one with --init."
    );
    let nonce = a
        .nonce
        .or_else(|| text(&status, "nonce"))
        .unwrap_or_default();
    let key = match a.key {
        Some(key) => Zeroizing::new(key),
        None => read_share("Unseal Key (will be hidden): ")?,
    };
    let body = json!({"key": key.as_str(), "nonce": nonce});
    let resp = expect(
        client.put("sys/generate-root/update", &body).await,
        "submitting the key",
    )?;
    show(a.format, &resp, render_root_status(&resp));
    Ok(ExitCode::SUCCESS)
}

/// Reads OpenPGP public key files (armored, binary, or already base64) into Vault's API form,
/// the base64 of each binary key, checking each one first. `keybase:<user>` is refused.
pub fn read_pgp_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    paths
        .iter()
        .map(|path| {
            anyhow::ensure!(
                !path.to_string_lossy().starts_with("keybase:"),
                "keybase users are not supported: give a public key file"
            );
            let key = crate::crypto::pgp::read_key_file(path)
                .with_context(|| format!("cannot use PGP key file {}", path.display()))?;
            key.to_base64()
                .with_context(|| format!("cannot encode PGP key file {}", path.display()))
        })
        .collect()
}

/// One node of the cluster as `unseal --all` sees it.
struct Node {
    id: String,
    address: String,
    client: Client,
    /// `None`: unreachable; `Some(true)`: sealed.
    sealed: Option<bool>,
}

/// Runs `operator unseal --all`.
pub async fn unseal_all(client: &Client, key_file: Option<&str>) -> anyhow::Result<ExitCode> {
    let members = expect(
        client.get("sys/cluster-members").await,
        "listing the cluster's nodes",
    )?;
    let mut nodes = cluster_nodes(client.address(), &members)?;
    anyhow::ensure!(!nodes.is_empty(), "the server listed no cluster members");
    let mut threshold = 0u64;
    for node in &mut nodes {
        match node.client.get("sys/seal-status").await {
            Ok(Some(status)) => {
                let sealed = status.get("sealed").and_then(Value::as_bool) != Some(false);
                node.sealed = Some(sealed);
                if sealed {
                    threshold = threshold.max(status.get("t").and_then(Value::as_u64).unwrap_or(0));
                    println!(
                        "node {} ({}): sealed, progress {}/{}",
                        node.id,
                        node.address,
                        status.get("progress").map(cell).unwrap_or_default(),
                        status.get("t").map(cell).unwrap_or_default()
                    );
                } else {
                    println!(
                        "node {} ({}): already unsealed, skipped",
                        node.id, node.address
                    );
                }
            }
            Ok(None) | Err(_) => println!("node {} ({}): unreachable", node.id, node.address),
        }
    }
    let mut shares = ShareSource::open(key_file)?;
    let mut asked = 0u64;
    while nodes.iter().any(|n| n.sealed == Some(true)) {
        asked += 1;
        let prompt = format!("Unseal Key {asked} (of at least {threshold}, will be hidden): ");
        let Some(share) = shares.next(&prompt)? else {
            println!("no more shares");
            break;
        };
        for node in nodes.iter_mut().filter(|n| n.sealed == Some(true)) {
            let body = json!({"key": share.as_str()});
            match node.client.put("sys/unseal", &body).await {
                Ok(Some(status)) => {
                    let sealed = status.get("sealed").and_then(Value::as_bool) != Some(false);
                    node.sealed = Some(sealed);
                    if sealed {
                        println!(
                            "node {} ({}): progress {}/{}",
                            node.id,
                            node.address,
                            status.get("progress").map(cell).unwrap_or_default(),
                            status.get("t").map(cell).unwrap_or_default()
                        );
                    } else {
                        println!("node {} ({}): unsealed", node.id, node.address);
                    }
                }
                Ok(None) => println!("node {} ({}): empty response", node.id, node.address),
                Err(err @ ClientError::Api { .. }) => {
                    println!(
                        "node {} ({}): share refused: {}",
                        node.id,
                        node.address,
                        one_line(&err)
                    );
                }
                Err(err) => {
                    node.sealed = None;
                    println!(
                        "node {} ({}): unreachable: {}",
                        node.id,
                        node.address,
                        one_line(&err)
                    );
                }
            }
        }
        if asked >= 255 {
            break;
        }
    }
    let sealed = nodes.iter().filter(|n| n.sealed == Some(true)).count();
    let unreachable = nodes.iter().filter(|n| n.sealed.is_none()).count();
    println!(
        "{} of {} nodes unsealed; {sealed} still sealed, {unreachable} unreachable",
        nodes.len() - sealed - unreachable,
        nodes.len()
    );
    Ok(if sealed == 0 && unreachable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    })
}

/// The nodes listed by `sys/cluster-members`, addressed with the scheme the operator used.
fn cluster_nodes(base: &str, members: &Value) -> anyhow::Result<Vec<Node>> {
    let scheme = if base.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let list = members
        .get("members")
        .and_then(Value::as_array)
        .context("unexpected sys/cluster-members response")?;
    list.iter()
        .map(|member| {
            let api = text(member, "api_addr").context("a member without an api_addr")?;
            let host = api.split_once("://").map_or(api.as_str(), |(_, rest)| rest);
            let address = format!("{scheme}://{host}");
            Ok(Node {
                id: member.get("node_id").map(cell).unwrap_or_default(),
                client: Client::with_timeout(&address, None, NODE_TIMEOUT)?,
                address,
                sealed: None,
            })
        })
        .collect()
}

/// Where `unseal --all` reads shares: a hidden prompt, or lines of a file or stdin.
enum ShareSource {
    Prompt,
    Lines(Box<dyn BufRead>),
}

impl ShareSource {
    fn open(key_file: Option<&str>) -> anyhow::Result<ShareSource> {
        Ok(match key_file {
            Some("-") => ShareSource::Lines(Box::new(std::io::BufReader::new(std::io::stdin()))),
            Some(path) => ShareSource::Lines(Box::new(std::io::BufReader::new(
                std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?,
            ))),
            None if std::io::stdin().is_terminal() => ShareSource::Prompt,
            None => ShareSource::Lines(Box::new(std::io::BufReader::new(std::io::stdin()))),
        })
    }

    /// The next share, `None` at the end of the input.
    fn next(&mut self, prompt: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        match self {
            ShareSource::Prompt => {
                let key = Zeroizing::new(
                    rpassword::prompt_password(prompt).context("cannot read the unseal key")?,
                );
                let key = Zeroizing::new(key.trim().to_string());
                Ok((!key.is_empty()).then_some(key))
            }
            ShareSource::Lines(reader) => loop {
                let mut line = Zeroizing::new(String::new());
                if reader
                    .read_line(&mut line)
                    .context("cannot read the key file")?
                    == 0
                {
                    return Ok(None);
                }
                let key = line.trim();
                if !key.is_empty() {
                    return Ok(Some(Zeroizing::new(key.to_string())));
                }
            },
        }
    }
}

/// Reads one share: a hidden prompt on a terminal, otherwise one line of stdin.
fn read_share(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    let key = if std::io::stdin().is_terminal() {
        Zeroizing::new(rpassword::prompt_password(prompt).context("cannot read the key")?)
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the key from stdin")?;
        line
    };
    let key = Zeroizing::new(key.trim().to_string());
    anyhow::ensure!(!key.is_empty(), "no key given");
    Ok(key)
}

fn expect(result: Result<Option<Value>, ClientError>, what: &str) -> anyhow::Result<Value> {
    result
        .with_context(|| format!("Error {what}"))?
        .with_context(|| format!("Error {what}: empty response"))
}

fn show(format: Format, value: &Value, table: String) {
    match format {
        Format::Json => print!("{}", pretty(value)),
        Format::Table => print!("{table}"),
    }
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn one_line(err: &ClientError) -> String {
    err.to_string().replace("\n\n* ", " ").replace('\n', " ")
}

fn rows(value: &Value, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter_map(|(label, key)| match value.get(*key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(v) => Some((label.to_string(), cell(v))),
        })
        .collect()
}

/// The rekey (or verification) status table.
pub fn render_rekey_status(status: &Value, verification: bool) -> String {
    let mut out = rows(
        status,
        &[
            ("Nonce", "nonce"),
            ("Started", "started"),
            ("New Shares", "n"),
            ("New Threshold", "t"),
            ("Verification Required", "verification_required"),
            ("Verification Nonce", "verification_nonce"),
        ],
    );
    let required = status
        .get(if verification { "t" } else { "required" })
        .map(cell)
        .unwrap_or_else(|| "?".into());
    if let Some(progress) = status.get("progress") {
        let label = if verification {
            "Verification Progress"
        } else {
            "Rekey Progress"
        };
        out.insert(
            2.min(out.len()),
            (label.into(), format!("{}/{required}", cell(progress))),
        );
    }
    kv_table(&out)
}

/// The new shares of a completed rekey, with Vault's reminder (and, for PGP-encrypted shares,
/// each holder key's fingerprint, as Vault prints them).
pub fn render_rekey_keys(resp: &Value) -> String {
    let mut out = String::new();
    let keys = resp
        .get("keys_base64")
        .or_else(|| resp.get("keys"))
        .and_then(Value::as_array);
    let fingerprints = resp.get("pgp_fingerprints").and_then(Value::as_array);
    let count = keys.map_or(0, Vec::len);
    for (i, key) in keys.into_iter().flatten().enumerate() {
        match fingerprints.and_then(|f| f.get(i)) {
            Some(fingerprint) => out.push_str(&format!(
                "Key {} fingerprint: {}; value: {}\n",
                i + 1,
                cell(fingerprint),
                cell(key)
            )),
            None => out.push_str(&format!("Key {}: {}\n", i + 1, cell(key))),
        }
    }
    out.push_str(&format!(
        "\nOperation nonce: {}\n\n",
        text(resp, "nonce").unwrap_or_default()
    ));
    if let Some(nonce) = text(resp, "verification_nonce") {
        out.push_str(&format!(
            "Rekey verification nonce: {nonce}\n\nThe old unseal keys are still valid. Submit a \
             threshold of the {count} new keys with `strongroom operator rekey --verify` to \
             replace them.\n"
        ));
    } else {
        out.push_str(&format!(
            "Vault unseal keys rekeyed with {count} key shares. Please securely distribute the \
             key shares printed above. The old keys no longer unseal any node.\n"
        ));
    }
    out
}

/// The generate-root status table (and the encoded token once complete).
pub fn render_root_status(status: &Value) -> String {
    let mut out = rows(
        status,
        &[
            ("Nonce", "nonce"),
            ("Started", "started"),
            ("Complete", "complete"),
            ("Encoded Token", "encoded_token"),
            ("PGP Fingerprint", "pgp_fingerprint"),
            ("OTP", "otp"),
            ("OTP Length", "otp_length"),
        ],
    );
    if let Some(progress) = status.get("progress") {
        let required = status
            .get("required")
            .map(cell)
            .unwrap_or_else(|| "?".into());
        out.insert(
            2.min(out.len()),
            ("Progress".into(), format!("{}/{required}", cell(progress))),
        );
    }
    kv_table(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_use_the_operators_scheme() {
        let members = json!({"members": [
            {"node_id": 1, "api_addr": "http://127.0.0.1:8200"},
            {"node_id": 2, "api_addr": "http://127.0.0.1:8300"},
        ]});
        let nodes = cluster_nodes("https://10.0.0.1:8200/", &members).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].address, "https://127.0.0.1:8300");
        assert_eq!(nodes[0].id, "1");
        assert!(cluster_nodes("http://x:1/", &json!({})).is_err());
    }

    #[test]
    fn key_file_lines_skip_blanks_and_end() {
        let mut source =
            ShareSource::Lines(Box::new(std::io::Cursor::new(b"aa\n\n  bb  \n".to_vec())));
        assert_eq!(source.next("").unwrap().unwrap().as_str(), "aa");
        assert_eq!(source.next("").unwrap().unwrap().as_str(), "bb");
        assert!(source.next("").unwrap().is_none());
    }

    #[test]
    fn renders_rekey_keys_and_status() {
        let resp = json!({"nonce": "n-1", "complete": true, "keys": ["aa", "bb"],
            "keys_base64": ["qg==", "uw=="], "verification_nonce": "v-1"});
        let out = render_rekey_keys(&resp);
        assert!(out.starts_with("Key 1: qg==\nKey 2: uw==\n"), "{out}");
        assert!(out.contains("Rekey verification nonce: v-1"));
        let status = json!({"nonce": "n-1", "started": true, "t": 4, "n": 7, "progress": 1,
            "required": 3, "verification_required": true});
        let out = render_rekey_status(&status, false);
        assert_eq!(row(&out, "Rekey Progress"), Some("1/3"), "{out}");
        assert_eq!(row(&out, "New Shares"), Some("7"), "{out}");
        let root = json!({"nonce": "n-2", "started": true, "progress": 3, "required": 3,
            "complete": true, "encoded_token": "WEdB", "otp": "", "otp_length": 0});
        let out = render_root_status(&root);
        assert_eq!(row(&out, "Encoded Token"), Some("WEdB"), "{out}");
        assert_eq!(row(&out, "Progress"), Some("3/3"), "{out}");
        assert_eq!(row(&out, "OTP"), None, "an empty OTP is not shown: {out}");
    }

    #[test]
    fn pgp_encrypted_rekey_keys_show_their_fingerprints() {
        let resp = json!({"nonce": "n-1", "complete": true, "keys": ["aa", "bb"],
            "keys_base64": ["qg==", "uw=="], "pgp_fingerprints": ["f1", "f2"]});
        let out = render_rekey_keys(&resp);
        assert!(
            out.starts_with(
                "Key 1 fingerprint: f1; value: qg==\nKey 2 fingerprint: f2; value: uw==\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn pgp_key_files_become_vaults_base64() {
        let (secret, public_b64) = crate::crypto::pgp::test_keys::generate(true);
        let armored = pgp::composed::SignedPublicKey::from(secret)
            .to_armored_string(Default::default())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holder.asc");
        std::fs::write(&path, armored).unwrap();
        assert_eq!(read_pgp_keys(&[path]).unwrap(), [public_b64]);
        let missing = read_pgp_keys(&[dir.path().join("missing.asc")]).unwrap_err();
        assert!(
            format!("{missing:#}").contains("missing.asc"),
            "{missing:#}"
        );
        assert!(read_pgp_keys(&[PathBuf::from("keybase:jeff")]).is_err());
    }

    /// The value of the table row whose key is `key`.
    fn row<'a>(table: &'a str, key: &str) -> Option<&'a str> {
        table.lines().find_map(|l| {
            let rest = l.strip_prefix(key)?;
            rest.starts_with("    ").then(|| rest.trim())
        })
    }
}
