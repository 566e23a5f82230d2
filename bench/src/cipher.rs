//! The raw cipher next to the transit rows: AES-256-GCM (the `aes-gcm` crate the transit engine
//! uses for `aes256-gcm96`) sealing and opening 1 KiB on one thread, with a fresh key schedule
//! and a fresh 96-bit nonce per message, as the engine does per request. No network, no Raft,
//! no audit: the ceiling the HTTP rows are compared with.

use std::hint::black_box;
use std::time::Duration;
use std::time::Instant;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::Aead;
use aes_gcm::aead::KeyInit;
use serde::Deserialize;
use serde::Serialize;

use crate::workload::TRANSIT_PLAINTEXT_BYTES;

/// How long each direction is measured.
const WINDOW: Duration = Duration::from_secs(2);

/// Single-thread AES-256-GCM speed on 1 KiB messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CipherResult {
    /// Message size in bytes.
    pub bytes: usize,
    /// Seals per second.
    pub seal_ops_per_sec: f64,
    /// Opens per second.
    pub open_ops_per_sec: f64,
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_be_bytes());
    nonce
}

/// Runs `step` repeatedly for [`WINDOW`]; returns calls per second.
fn rate(mut step: impl FnMut(u64) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let began = Instant::now();
    let mut calls = 0u64;
    while began.elapsed() < WINDOW {
        for _ in 0..64 {
            step(calls)?;
            calls += 1;
        }
    }
    Ok(calls as f64 / began.elapsed().as_secs_f64())
}

/// Measures sealing and opening.
pub fn measure() -> anyhow::Result<CipherResult> {
    let key = [7u8; 32];
    let plaintext = vec![0x5au8; TRANSIT_PLAINTEXT_BYTES];
    let failed = |_| anyhow::anyhow!("AES-GCM failed");
    let seal_ops_per_sec = rate(|n| {
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| anyhow::anyhow!("key length"))?;
        let sealed = cipher
            .encrypt(&nonce(n).into(), plaintext.as_slice())
            .map_err(failed)?;
        black_box(sealed);
        Ok(())
    })?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| anyhow::anyhow!("key length"))?;
    let sealed = cipher
        .encrypt(&nonce(0).into(), plaintext.as_slice())
        .map_err(failed)?;
    let open_ops_per_sec = rate(|_| {
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| anyhow::anyhow!("key length"))?;
        let opened = cipher
            .decrypt(&nonce(0).into(), sealed.as_slice())
            .map_err(failed)?;
        black_box(opened);
        Ok(())
    })?;
    Ok(CipherResult {
        bytes: TRANSIT_PLAINTEXT_BYTES,
        seal_ops_per_sec,
        open_ops_per_sec,
    })
}
