//! The composition root: starts the replicated store node, builds the core, and serves the
//! cluster gRPC port (Raft, Propose, ReadIndex) and the HTTP API until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use strongroom_raft::NodeConfig;
use strongroom_raft::NodeInfo;
use strongroom_raft::RaftNode;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServerConfig;
use crate::core::Core;
use crate::core::NodeAddresses;

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The store node failed to start.
    #[error(transparent)]
    Store(#[from] strongroom_raft::StoreError),
    /// The HSM (`[seal.pkcs11]`) cannot be used: a startup error that names the cause (never
    /// the PIN).
    #[error("HSM seal: {0}")]
    Hsm(String),
    /// A listener failed while serving.
    #[error("{listener} listener failed: {message}")]
    Serve {
        /// Which listener.
        listener: &'static str,
        /// What happened.
        message: String,
    },
}

/// Switches that break the vault's guarantees on purpose, for the fault-injection harness to prove
/// that its checkers notice. Settable only from builds with the `jepsen-unsafe` feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnsafeOptions {
    /// Serve every read from local state, without a read index.
    pub local_reads: bool,
    /// Never fsync the Raft log or the state machine.
    pub no_fsync: bool,
}

fn node_config(config: &ServerConfig, unsafe_options: UnsafeOptions) -> NodeConfig {
    let initial_members: BTreeMap<u64, NodeInfo> = config
        .peers
        .iter()
        .map(|peer| {
            (
                peer.id,
                NodeInfo {
                    api_addr: peer.api_addr.clone(),
                    cluster_addr: peer.cluster_addr.clone(),
                },
            )
        })
        .collect();
    NodeConfig {
        id: config.node_id,
        data_dir: config.data_dir.clone(),
        initial_members,
        heartbeat_interval_ms: config.raft.heartbeat_interval_ms,
        election_timeout_min_ms: config.raft.election_timeout_min_ms,
        election_timeout_max_ms: config.raft.election_timeout_max_ms,
        snapshot_logs_since_last: config.raft.snapshot_logs_since_last,
        // A percentage of at most i64::MAX (validated): precision is irrelevant.
        snapshot_log_bytes_ratio: config.raft.snapshot_min_log_percent as f64 / 100.0,
        max_in_snapshot_log_to_keep: config.raft.max_in_snapshot_log_to_keep,
        purge_batch_size: config.raft.purge_batch_size,
        unsafe_skip_fsync: unsafe_options.no_fsync,
    }
}

async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Runs a node with `config` until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    run_with(config, UnsafeOptions::default()).await
}

/// [`run`] with the testing-only unsafe switches.
pub async fn run_with(
    config: ServerConfig,
    unsafe_options: UnsafeOptions,
) -> Result<(), ServerError> {
    if unsafe_options.local_reads || unsafe_options.no_fsync {
        tracing::warn!(
            ?unsafe_options,
            "UNSAFE TESTING SWITCHES ARE ON: this node breaks its guarantees on purpose"
        );
    }
    // Bind first: a port conflict is reported before anything else starts.
    let cluster_listener = bind(&config.cluster_addr).await?;
    let api_listener = bind(&config.api_addr).await?;
    let grpc_listener = match &config.grpc_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let node = RaftNode::start(node_config(&config, unsafe_options)).await?;
    let core = Core::new(
        node.clone(),
        NodeAddresses {
            api_addr: config.api_addr.clone(),
            cluster_addr: config.cluster_addr.clone(),
        },
        unsafe_options.local_reads,
    );
    if let Err(err) = setup_hsm(&config, &core) {
        node.shutdown().await;
        return Err(err);
    }
    core.start_background();
    let (stop_tx, stop_rx) = watch::channel(false);
    core.start_audit_sinks(&config.audit.sink, &config.data_dir, stop_rx.clone());
    core.start_audit_retention(config.audit.retention(), stop_rx.clone());

    let cluster = spawn_grpc(
        "cluster",
        tonic::transport::Server::builder().add_service(node.grpc_service()),
        cluster_listener,
        stop_rx.clone(),
    );
    let client_grpc = grpc_listener.map(|listener| {
        let router = tonic::transport::Server::builder()
            .add_service(crate::api::grpc::service(core.clone()));
        spawn_grpc("grpc", router, listener, stop_rx.clone())
    });
    let http = {
        let mut stop = stop_rx.clone();
        let app = crate::api::http::router(core.clone(), config.max_request_bytes)
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(crate::listeners::api_listener(api_listener), app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await
                .map_err(|err| ServerError::Serve {
                    listener: "api",
                    message: err.to_string(),
                })
        })
    };
    tracing::info!(
        node_id = config.node_id,
        api_addr = %config.api_addr,
        cluster_addr = %config.cluster_addr,
        grpc_addr = config.grpc_addr.as_deref().unwrap_or("off"),
        "strongroom node started (sealed)"
    );

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // Graceful shutdown waits for open connections; peers and clients keep theirs open, so the
    // wait is bounded.
    let mut results = vec![drain(cluster).await, drain(http).await];
    if let Some(client_grpc) = client_grpc {
        results.push(drain(client_grpc).await);
    }
    node.shutdown().await;
    for result in results {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(join) => {
                return Err(ServerError::Serve {
                    listener: "task",
                    message: join.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Opens this node's HSM if `[seal.pkcs11]` is configured and starts auto-unseal.
///
/// A missing library, a wrong PIN or an unreadable PIN source stop the node. A token or key that
/// cannot be found stops it too, unless the cluster already keeps its unseal key wrapped by the
/// HSM: then the HSM was lost, and the node starts sealed so that recovery shares can unseal it.
fn setup_hsm(config: &ServerConfig, core: &std::sync::Arc<Core>) -> Result<(), ServerError> {
    use crate::core::auto_unseal::HsmSetup;
    let Some(pkcs11) = &config.seal.pkcs11 else {
        return Ok(());
    };
    let settings = pkcs11
        .settings()
        .map_err(|err| ServerError::Hsm(err.to_string()))?;
    let hsm_sealed = core
        .is_hsm_sealed()
        .map_err(|err| ServerError::Hsm(err.to_string()))?;
    match crate::seal::pkcs11::Hsm::open(&settings) {
        Ok(hsm) => {
            tracing::info!(key_label = %settings.key_label, "HSM opened (PKCS#11); auto-unseal on");
            core.set_hsm(HsmSetup::Ready(std::sync::Arc::new(hsm)));
            core.start_auto_unseal();
            Ok(())
        }
        Err(err) if hsm_sealed && !err.is_configuration_error() => {
            tracing::error!(error = %err, "the HSM cannot be used; starting sealed: submit recovery shares to sys/unseal to unseal this node");
            core.set_hsm(HsmSetup::Unavailable(err.to_string()));
            Ok(())
        }
        Err(err) => Err(ServerError::Hsm(err.to_string())),
    }
}

type ListenerTask = tokio::task::JoinHandle<Result<(), ServerError>>;

/// Serves a tonic router on `listener` until `stop` turns true.
fn spawn_grpc(
    name: &'static str,
    router: tonic::transport::server::Router,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> ListenerTask {
    let incoming = crate::listeners::grpc_incoming(listener);
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            })
            .await
            .map_err(|err| ServerError::Serve {
                listener: name,
                message: err.to_string(),
            })
    })
}

/// How long listeners may take to finish in-flight requests at shutdown.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits for a listener task to finish, aborting it after [`DRAIN_TIMEOUT`].
async fn drain(mut task: ListenerTask) -> Result<Result<(), ServerError>, tokio::task::JoinError> {
    match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
        Ok(result) => result,
        Err(_) => {
            task.abort();
            Ok(Ok(()))
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
