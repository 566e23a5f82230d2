//! The transit checker. Every decrypt of a ciphertext an acknowledged encrypt returned must
//! give back that encrypt's plaintext (`wrong-plaintext` otherwise), or be refused with the
//! documented "too old" error, which is justified only if a `min_decryption_version` above the
//! ciphertext's version had been sent before the decrypt completed (`unjustified-too-old`).
//! Any other definite refusal is `decrypt-refused` (a ciphertext the key's version does not
//! know yet shows up here: a node answered from key state older than the ciphertext).
//! Against real time: a decrypt that succeeds although a minimum above its version was
//! acknowledged before it began read stale key config (`stale-min-version`), and an encrypt
//! that uses a version older than one an acknowledged rotate had reported before it began used
//! a stale key (`stale-encrypt-version`). Indeterminate and sealed-node answers say nothing.

use std::collections::HashMap;

use serde_json::json;

use super::Anomaly;
use super::CheckResult;
use super::Validity;
use crate::history::Completed;
use crate::history::F;
use crate::history::Op;
use crate::history::OpType;
use crate::history::pair;

/// The text of the documented refusal of a ciphertext below `min_decryption_version`.
pub const TOO_OLD: &str = "too old";

/// Runs the transit checker.
pub fn check(ops: &[Op]) -> CheckResult {
    let paired = pair(ops);
    let of =
        |f: F| -> Vec<&Completed<'_>> { paired.iter().filter(|op| op.invoke.f == f).collect() };
    let encrypts = of(F::Encrypt);
    let decrypts = of(F::Decrypt);
    let rotates = of(F::Rotate);
    let configs = of(F::KeyConfig);
    let mut made: HashMap<&str, &Completed<'_>> = HashMap::new();
    for encrypt in encrypts.iter().filter(|e| e.kind() == OpType::Ok) {
        if let Some(ciphertext) = encrypt.done.and_then(|d| d.ciphertext.as_deref()) {
            made.insert(ciphertext, encrypt);
        }
    }
    // (completed at, version) of acknowledged rotates and minimums.
    let acked = |list: &[&Completed<'_>], version: fn(&Completed<'_>) -> Option<u64>| {
        let mut acked: Vec<(u64, u64)> = list
            .iter()
            .filter(|op| op.kind() == OpType::Ok)
            .filter_map(|op| Some((op.end(), version(op)?)))
            .collect();
        acked.sort_unstable();
        acked
    };
    let rotated = acked(&rotates, |op| op.done?.version);
    let minimums = acked(&configs, |op| op.invoke.version);
    let highest_before = |acked: &[(u64, u64)], time: u64| {
        acked
            .iter()
            .take_while(|(end, _)| *end < time)
            .map(|(_, version)| *version)
            .max()
    };
    let mut anomalies = Vec::new();
    for encrypt in encrypts.iter().filter(|e| e.kind() == OpType::Ok) {
        let (Some(version), Some(rotated_to)) = (
            encrypt.done.and_then(|d| d.version),
            highest_before(&rotated, encrypt.start()),
        ) else {
            continue;
        };
        if version < rotated_to {
            anomalies.push(Anomaly::new(
                "stale-encrypt-version",
                None,
                vec![encrypt.last_index()],
                format!(
                    "encrypt used key version {version} after a rotate to version {rotated_to} had been acknowledged"
                ),
            ));
        }
    }
    let mut counts = HashMap::<&str, u64>::new();
    for decrypt in &decrypts {
        let Some(ciphertext) = decrypt.invoke.ciphertext.as_deref() else {
            continue;
        };
        let Some(encrypt) = made.get(ciphertext) else {
            anomalies.push(Anomaly::new(
                "unknown-ciphertext",
                None,
                vec![decrypt.invoke.index],
                "decrypt of a ciphertext no acknowledged encrypt returned (harness bug)".into(),
            ));
            continue;
        };
        let version = decrypt.invoke.version.unwrap_or(0);
        let witnesses = vec![encrypt.last_index(), decrypt.last_index()];
        let Some(done) = decrypt.done else { continue };
        match done.kind {
            OpType::Ok => {
                *counts.entry("decrypted").or_default() += 1;
                if done.value != encrypt.invoke.value {
                    anomalies.push(Anomaly::new(
                        "wrong-plaintext",
                        None,
                        witnesses.clone(),
                        format!(
                            "decrypt on node {} returned {:?}, but the ciphertext was made from {:?}",
                            done.node, done.value, encrypt.invoke.value
                        ),
                    ));
                }
                if let Some(minimum) = highest_before(&minimums, decrypt.start())
                    && version < minimum
                {
                    anomalies.push(Anomaly::new(
                        "stale-min-version",
                        None,
                        witnesses,
                        format!(
                            "node {} decrypted a version {version} ciphertext after min_decryption_version {minimum} had been acknowledged",
                            done.node
                        ),
                    ));
                }
            }
            OpType::Fail if matches!(done.status, Some(400..=499)) => {
                let error = done.error.clone().unwrap_or_default();
                if error.contains(TOO_OLD) {
                    *counts.entry("refused_too_old").or_default() += 1;
                    let justified = configs.iter().any(|config| {
                        config.kind() != OpType::Fail
                            && config.start() < decrypt.end()
                            && config.invoke.version.is_some_and(|m| m > version)
                    });
                    if !justified {
                        anomalies.push(Anomaly::new(
                            "unjustified-too-old",
                            None,
                            witnesses,
                            format!(
                                "node {} refused a version {version} ciphertext as too old, but no min_decryption_version above {version} had been sent",
                                done.node
                            ),
                        ));
                    }
                } else {
                    anomalies.push(Anomaly::new(
                        "decrypt-refused",
                        None,
                        witnesses,
                        format!(
                            "node {} refused an acknowledged ciphertext (version {version}): {error}",
                            done.node
                        ),
                    ));
                }
            }
            _ => *counts.entry("undecided").or_default() += 1,
        }
    }
    let ok = |list: &[&Completed<'_>]| list.iter().filter(|op| op.kind() == OpType::Ok).count();
    let finals = decrypts
        .iter()
        .filter(|d| d.invoke.phase == "final" && d.kind() == OpType::Ok)
        .count();
    let stats = json!({
        "encrypts": encrypts.len(),
        "encrypts_ok": ok(&encrypts),
        "decrypts": decrypts.len(),
        "decrypts_ok": counts.get("decrypted").copied().unwrap_or(0),
        "refused_too_old": counts.get("refused_too_old").copied().unwrap_or(0),
        "undecided": counts.get("undecided").copied().unwrap_or(0),
        "final_decrypts_ok": finals,
        "rotates_ok": ok(&rotates),
        "highest_version": rotated.iter().map(|(_, v)| *v).max().unwrap_or(1),
        "min_decryption_version": minimums.iter().map(|(_, v)| *v).max().unwrap_or(1),
    });
    let decided = ok(&encrypts) > 0 && finals > 0;
    let result = CheckResult::from_anomalies(
        "transit",
        anomalies,
        stats,
        if decided {
            Validity::Valid
        } else {
            Validity::Unknown
        },
    );
    if decided {
        result
    } else {
        result.with_note("no acknowledged encrypt, or no final decrypt succeeded")
    }
}
