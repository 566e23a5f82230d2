//! strongroom-jepsen: a Jepsen-style fault-injection harness for Strongroom, in Rust.
//!
//! It starts a real cluster (`strongroom server` processes, each in its own network namespace
//! inside a sandbox), runs concurrent clients against every node, injects faults (kill, pause,
//! partitions, packet loss, clock skew, seal, membership changes, power failures that lose
//! unsynced writes), records every operation as Jepsen does (`invoke` then `ok`/`fail`/`info`),
//! and checks the history: register version order and linearizability, set membership, audit
//! completeness, leaks, liveness.
//!
//! Modules: [`cli`] (arguments), [`run`] (a test run, phase by phase), [`cluster`] (node
//! processes and the API), [`net`] (sandbox, namespaces, partitions), [`nemesis`] (faults),
//! [`workload`] (generators and clients), [`history`] (events), [`checker`] (verdicts),
//! [`checks`] (which checkers, and `check DIR`), [`report`] (results, summary, plot), [`rng`].

pub mod checker;
pub mod checks;
pub mod cli;
pub mod cluster;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod rng;
pub mod run;
pub mod workload;
