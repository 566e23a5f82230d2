//! Integration tests: real `strongroom` processes on free ports, driven over HTTP.
//!
//! One test binary; at most two clusters run at once (see `fixture::Slot`). Each test is bounded
//! by a timeout and its processes die with it.

mod fixture;
mod t100_rekey;
mod t101_pgp;
mod t102_pkcs11;
mod t105_rotate;
mod t10_seal;
mod t20_replication;
mod t25_mounts;
mod t26_kv_versions;
mod t27_vaultrs;
mod t28_kv_list;
mod t29_kv_cas_race;
mod t30_failover;
mod t32_tokens_policies;
mod t35_auth_methods;
mod t40_at_rest;
mod t41_membership;
mod t50_snapshot;
mod t60_bad_input;
mod t61_kv_bad_input;
mod t70_dev;
mod t80_grpc;
mod t90_transit;
mod t94_audit_init;
mod t95_audit;
mod t96_audit_tamper;
mod t97_audit_socket;
mod t98_audit_retention;
mod t99_audit_syslog;

use std::future::Future;
use std::time::Duration;

/// Runs a test body with an overall time limit.
pub async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    if tokio::time::timeout(limit, body).await.is_err() {
        panic!("test exceeded its {limit:?} limit");
    }
}
