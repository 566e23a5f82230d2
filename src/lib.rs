//! Strongroom: a distributed, replicated secrets vault with a Vault-compatible API.
//!
//! Layers (an arrow means "may use"):
//!
//! ```text
//! api/http (Vault-compatible JSON)   api/grpc (tonic)   cli (clap, talks HTTP)
//!             \                         /
//!              core: the request pipeline (seal state, token -> ACL -> route -> audit)
//!             /        |          |          \
//!        auth/      policy/    audit/     engines/{kv}   <- see only `logical` + a storage view
//!             \        |          |          /
//!              barrier: the only code that holds data keys (AES-256-GCM-SIV, AAD = storage key)
//!                      |
//!              seal: the only code that holds the unseal key; Shamir split/combine
//!                      |
//!              strongroom-raft: a replicated, revisioned, transactional KV of opaque bytes
//! ```
//!
//! `crypto` holds stateless primitives (AEAD, randomness) shared by `barrier` and `seal`; it keeps no
//! key material of its own.

pub mod api;
pub mod audit;
pub mod auth;
pub mod barrier;
pub mod cli;
pub mod config;
pub mod core;
pub mod crypto;
pub mod engines;
pub mod listeners;
pub mod logical;
pub mod policy;
pub mod seal;
pub mod server;
