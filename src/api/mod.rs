//! The edges: the Vault-compatible HTTP API. They parse and render; they never decide
//! authorization (the core does).

pub mod http;
