//! The transit checker: wrong plaintexts, refusals with and without a justifying minimum,
//! stale key config and stale encrypt versions are caught; a history with rotations, a raised
//! minimum and indeterminate operations passes; no final decrypt is `unknown`.

use strongroom_jepsen::checker::Validity;
use strongroom_jepsen::checker::transit::TOO_OLD;
use strongroom_jepsen::checker::transit::check;
use strongroom_jepsen::history::F;
use strongroom_jepsen::history::Op;
use strongroom_jepsen::history::OpType;

use crate::support::H;
use crate::support::assert_caught;
use crate::support::assert_valid;

/// How a transit operation ended.
enum End {
    Ok,
    Refused(&'static str),
    Info,
}

fn done(end: End) -> Op {
    let mut done = Op::new(OpType::Ok, F::Control, 0, 1);
    match end {
        End::Ok => done.status = Some(200),
        End::Refused(error) => {
            done.kind = OpType::Fail;
            done.status = Some(400);
            done.error = Some(error.into());
        }
        End::Info => {
            done.kind = OpType::Info;
            done.error = Some("timeout".into());
        }
    }
    done
}

fn encrypt(h: &mut H, start: u64, end: u64, plaintext: &str, version: u64) -> String {
    let ciphertext = format!("vault:v{version}:{plaintext}-sealed");
    let mut invoke = Op::new(OpType::Invoke, F::Encrypt, 1, 1);
    invoke.value = Some(plaintext.into());
    let mut ok = done(End::Ok);
    ok.version = Some(version);
    ok.ciphertext = Some(ciphertext.clone());
    h.push(start, end, invoke, ok);
    ciphertext
}

fn decrypt(
    h: &mut H,
    start: u64,
    end: u64,
    ciphertext: &str,
    end_as: End,
    plaintext: &str,
    phase: &str,
) {
    let mut invoke = Op::new(OpType::Invoke, F::Decrypt, 2, 1);
    invoke.ciphertext = Some(ciphertext.into());
    invoke.version = ciphertext
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split(':').next())
        .and_then(|v| v.parse().ok());
    invoke.phase = phase.into();
    let mut completion = done(end_as);
    if completion.kind == OpType::Ok {
        completion.value = Some(plaintext.into());
    }
    h.push(start, end, invoke, completion);
}

fn rotate(h: &mut H, start: u64, end: u64, to: u64) {
    let mut ok = done(End::Ok);
    ok.version = Some(to);
    h.push(start, end, Op::new(OpType::Invoke, F::Rotate, 3, 1), ok);
}

fn set_min(h: &mut H, start: u64, end: u64, minimum: u64, end_as: End) {
    let mut invoke = Op::new(OpType::Invoke, F::KeyConfig, 3, 1);
    invoke.version = Some(minimum);
    h.push(start, end, invoke, done(end_as));
}

const REFUSED_TOO_OLD: &str = "ciphertext or signature version is disallowed by policy (too old)";

#[test]
fn rotations_minimums_and_indeterminate_operations_pass() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    rotate(&mut h, 11, 20, 2);
    rotate(&mut h, 21, 30, 3);
    let c3 = encrypt(&mut h, 31, 40, "CANARY-3", 3);
    decrypt(&mut h, 41, 50, &c1, End::Ok, "CANARY-1", "main");
    // A minimum whose answer was lost may or may not apply: both outcomes are fine.
    set_min(&mut h, 51, 60, 2, End::Info);
    decrypt(
        &mut h,
        61,
        70,
        &c1,
        End::Refused(REFUSED_TOO_OLD),
        "",
        "main",
    );
    decrypt(&mut h, 62, 71, &c1, End::Ok, "CANARY-1", "main");
    decrypt(&mut h, 72, 80, &c3, End::Info, "", "main");
    decrypt(&mut h, 100, 110, &c3, End::Ok, "CANARY-3", "final");
    let result = check(&h.build());
    assert_valid(&result);
    assert_eq!(result.stats["refused_too_old"], 1);
    assert_eq!(result.stats["highest_version"], 3);
    assert!(REFUSED_TOO_OLD.contains(TOO_OLD));
}

#[test]
fn wrong_plaintext_is_caught() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    encrypt(&mut h, 0, 10, "CANARY-2", 1);
    decrypt(&mut h, 20, 30, &c1, End::Ok, "CANARY-2", "final");
    assert_caught(&check(&h.build()), "wrong-plaintext");
}

#[test]
fn refusal_without_a_minimum_is_caught() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    decrypt(
        &mut h,
        20,
        30,
        &c1,
        End::Refused(REFUSED_TOO_OLD),
        "",
        "main",
    );
    decrypt(&mut h, 40, 50, &c1, End::Ok, "CANARY-1", "final");
    assert_caught(&check(&h.build()), "unjustified-too-old");
}

#[test]
fn refusal_after_a_minimum_at_or_below_the_version_is_caught() {
    let mut h = H::new();
    rotate(&mut h, 0, 5, 2);
    let c2 = encrypt(&mut h, 6, 10, "CANARY-2", 2);
    set_min(&mut h, 11, 15, 2, End::Ok);
    decrypt(
        &mut h,
        20,
        30,
        &c2,
        End::Refused(REFUSED_TOO_OLD),
        "",
        "final",
    );
    assert_caught(&check(&h.build()), "unjustified-too-old");
}

#[test]
fn other_refusals_are_caught() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    decrypt(
        &mut h,
        20,
        30,
        &c1,
        End::Refused("invalid ciphertext: version is too new"),
        "",
        "final",
    );
    assert_caught(&check(&h.build()), "decrypt-refused");
}

#[test]
fn decrypt_allowed_by_stale_key_config_is_caught() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    rotate(&mut h, 11, 20, 2);
    set_min(&mut h, 21, 30, 2, End::Ok);
    decrypt(&mut h, 31, 40, &c1, End::Ok, "CANARY-1", "final");
    assert_caught(&check(&h.build()), "stale-min-version");
}

#[test]
fn encrypt_with_a_key_older_than_an_acknowledged_rotate_is_caught() {
    let mut h = H::new();
    rotate(&mut h, 0, 10, 2);
    let c1 = encrypt(&mut h, 11, 20, "CANARY-1", 1);
    decrypt(&mut h, 30, 40, &c1, End::Ok, "CANARY-1", "final");
    assert_caught(&check(&h.build()), "stale-encrypt-version");
}

#[test]
fn concurrent_rotate_and_encrypt_pass() {
    let mut h = H::new();
    rotate(&mut h, 0, 10, 2);
    let c1 = encrypt(&mut h, 5, 15, "CANARY-1", 1);
    decrypt(&mut h, 30, 40, &c1, End::Ok, "CANARY-1", "final");
    assert_valid(&check(&h.build()));
}

#[test]
fn no_final_decrypt_is_unknown() {
    let mut h = H::new();
    let c1 = encrypt(&mut h, 0, 10, "CANARY-1", 1);
    decrypt(&mut h, 20, 30, &c1, End::Ok, "CANARY-1", "main");
    let result = check(&h.build());
    assert_eq!(result.valid, Validity::Unknown);
}
