//! Cross-path behaviour through the engine with an in-memory view: routing, every key type end to
//! end, and the periodic pass (auto-rotation exactly once per period, the rotation policy's
//! notify-before-expiry event and rotate-before-expiry).

use serde_json::json;

use super::Transit;
use super::test_util::*;
use crate::logical::Backend;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::testing::MemoryStorage;
use crate::logical::time;

#[test]
fn unknown_paths_and_operations() {
    let mut storage = MemoryStorage::default();
    assert!(matches!(
        call(&mut storage, Operation::Read, "nothing/here", json!({})),
        Err(LogicalError::UnsupportedPath)
    ));
    assert!(matches!(
        call(&mut storage, Operation::Delete, "encrypt/k", json!({})),
        Err(LogicalError::UnsupportedOperation)
    ));
    assert!(matches!(
        call(&mut storage, Operation::Read, "sign/k/a/b", json!({})),
        Err(LogicalError::UnsupportedOperation)
    ));
    let empty = call(&mut storage, Operation::List, "keys/", json!({})).unwrap();
    assert_eq!(empty.status, Some(404));
    post_err(&mut storage, "encrypt/..", json!({"plaintext": ""}));
}

#[test]
fn every_key_type_does_what_it_supports() {
    let mut storage = MemoryStorage::default();
    for kind in [
        "aes128-gcm96",
        "aes256-gcm96",
        "chacha20-poly1305",
        "aes256-gcm-siv",
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "rsa-2048",
        "rsa-3072",
        "hmac",
    ] {
        let read = post(&mut storage, &format!("keys/{kind}"), json!({"type": kind}));
        if read["supports_encryption"] == true {
            let sealed = post(
                &mut storage,
                &format!("encrypt/{kind}"),
                json!({"plaintext": b64(b"p")}),
            );
            let opened = post(
                &mut storage,
                &format!("decrypt/{kind}"),
                json!({"ciphertext": sealed["ciphertext"]}),
            );
            assert_eq!(unb64(&opened["plaintext"]), b"p", "{kind}");
        } else {
            post_err(
                &mut storage,
                &format!("encrypt/{kind}"),
                json!({"plaintext": b64(b"p")}),
            );
        }
        if read["supports_signing"] == true {
            let signed = post(
                &mut storage,
                &format!("sign/{kind}"),
                json!({"input": b64(b"m")}),
            );
            let valid = post(
                &mut storage,
                &format!("verify/{kind}"),
                json!({"input": b64(b"m"), "signature": signed["signature"]}),
            );
            assert_eq!(valid["valid"], true, "{kind}");
        } else {
            post_err(
                &mut storage,
                &format!("sign/{kind}"),
                json!({"input": b64(b"m")}),
            );
        }
        let mac = post(
            &mut storage,
            &format!("hmac/{kind}"),
            json!({"input": b64(b"m")}),
        );
        let valid = post(
            &mut storage,
            &format!("verify/{kind}"),
            json!({"input": b64(b"m"), "hmac": mac["hmac"]}),
        );
        assert_eq!(valid["valid"], true, "{kind}");
    }
}

#[test]
fn rsa_4096_signs_and_encrypts() {
    let mut storage = MemoryStorage::default();
    post(&mut storage, "keys/big", json!({"type": "rsa-4096"}));
    let signed = post(
        &mut storage,
        "sign/big",
        json!({"input": b64(b"m"), "signature_algorithm": "pkcs1v15"}),
    );
    let valid = post(
        &mut storage,
        "verify/big",
        json!({"input": b64(b"m"), "signature": signed["signature"], "signature_algorithm": "pkcs1v15"}),
    );
    assert_eq!(valid["valid"], true);
}

#[test]
fn auto_rotation_happens_once_per_period() {
    let mut storage = MemoryStorage::default();
    let start = time::now_nanos();
    call_at(
        &mut storage,
        start,
        Operation::Update,
        "keys/k",
        json!({"auto_rotate_period": "1h"}),
    )
    .unwrap();
    let start_secs = start / 1_000_000_000;
    Transit.periodic(&mut storage, start_secs + 3_599).unwrap();
    assert_eq!(get(&mut storage, "keys/k")["latest_version"], 1);
    Transit.periodic(&mut storage, start_secs + 3_600).unwrap();
    assert_eq!(get(&mut storage, "keys/k")["latest_version"], 2);
    // A second pass in the same period (another leader, a retry) does nothing.
    let before = snapshot(&mut storage);
    Transit.periodic(&mut storage, start_secs + 3_601).unwrap();
    Transit.periodic(&mut storage, start_secs + 7_199).unwrap();
    assert_eq!(snapshot(&mut storage), before);
    // Long downtime: one rotation, not one per missed period.
    Transit
        .periodic(&mut storage, start_secs + 10 * 3_600)
        .unwrap();
    assert_eq!(get(&mut storage, "keys/k")["latest_version"], 3);
    let events = get(&mut storage, "events");
    let kinds: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("rotated"), json!("rotated")]);
    // Turning the period off removes the key from the schedule.
    post(
        &mut storage,
        "keys/k/config",
        json!({"auto_rotate_period": 0}),
    );
    Transit
        .periodic(&mut storage, start_secs + 100 * 3_600)
        .unwrap();
    assert_eq!(get(&mut storage, "keys/k")["latest_version"], 3);
}

#[test]
fn rotation_policy_notifies_once_then_rotates_before_expiry() {
    let mut storage = MemoryStorage::default();
    let start = time::now_nanos();
    call_at(&mut storage, start, Operation::Update, "keys/k", json!({})).unwrap();
    post(
        &mut storage,
        "keys/k/rotation-policy",
        json!({"expires_in": "10h", "notify_before_expiry": "3h", "rotate_before_expiry": "1h"}),
    );
    let s = start / 1_000_000_000;
    Transit.periodic(&mut storage, s + 6 * 3_600).unwrap();
    assert!(
        get(&mut storage, "events")["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    Transit.periodic(&mut storage, s + 7 * 3_600).unwrap();
    Transit.periodic(&mut storage, s + 8 * 3_600).unwrap();
    let events = get(&mut storage, "events")["events"].clone();
    assert_eq!(
        events.as_array().unwrap().len(),
        1,
        "notified exactly once: {events}"
    );
    assert_eq!(events[0]["type"], "near_expiry");
    assert_eq!(events[0]["version"], 1);
    Transit.periodic(&mut storage, s + 9 * 3_600).unwrap();
    let key = get(&mut storage, "keys/k");
    assert_eq!(key["latest_version"], 2);
    let events = get(&mut storage, "events")["events"].clone();
    assert_eq!(events[1]["type"], "rotated");
    let since = call(&mut storage, Operation::Read, "events", json!({"since": 1})).unwrap();
    assert_eq!(data(&since)["events"].as_array().unwrap().len(), 1);
}

#[test]
fn an_expired_version_no_longer_encrypts_but_still_decrypts() {
    let mut storage = MemoryStorage::default();
    let start = time::now_nanos();
    call_at(&mut storage, start, Operation::Update, "keys/k", json!({})).unwrap();
    post(
        &mut storage,
        "keys/k/rotation-policy",
        json!({"expires_in": "1h"}),
    );
    let sealed = post(&mut storage, "encrypt/k", json!({"plaintext": b64(b"x")}));
    let later = start + 3_601 * 1_000_000_000;
    let refused = call_at(
        &mut storage,
        later,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": b64(b"x")}),
    );
    assert!(
        matches!(refused, Err(LogicalError::InvalidRequest(message)) if message.contains("expired"))
    );
    let opened = call_at(
        &mut storage,
        later,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": sealed["ciphertext"]}),
    );
    assert!(opened.is_ok());
    let rotated = call_at(
        &mut storage,
        later,
        Operation::Update,
        "keys/k/rotate",
        json!({}),
    )
    .unwrap();
    assert_eq!(data(&rotated)["latest_version"], 2);
    assert!(
        call_at(
            &mut storage,
            later,
            Operation::Update,
            "encrypt/k",
            json!({"plaintext": b64(b"x")})
        )
        .is_ok()
    );
}
