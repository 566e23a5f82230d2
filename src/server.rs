//! The composition root: opens the replicated store, builds the core, and serves the HTTP and gRPC
//! listeners until shutdown. (Being written; the signature below is the contract `cli` calls.)

use crate::config::ServerConfig;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Startup failed.
    #[error("{0}")]
    Startup(String),
}

/// Runs a node with `config` until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let _ = config;
    Err(ServerError::Startup("server is not wired yet".into()))
}
