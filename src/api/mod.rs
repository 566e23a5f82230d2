//! The edges: the Vault-compatible HTTP API and the client gRPC API. They parse and render; they
//! never decide authorization (the core does).

pub mod grpc;
pub mod http;
pub mod input;
