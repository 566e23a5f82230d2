//! Accepting connections: every listener of a node (the cluster's Raft gRPC, the client gRPC
//! API, the HTTP API) sets TCP_NODELAY on each connection it accepts. Without it, Nagle's
//! algorithm holds the last small write of a response (an HTTP/2 DATA or trailers frame, a short
//! HTTP body) until the peer's delayed ACK, 40 ms on Linux, on every Raft round trip and client
//! call. tonic's `serve_with_incoming` ignores its own nodelay setting and `axum::serve` never
//! sets it, hence these wrappers.

use axum::serve::ListenerExt;
use axum::serve::TapIo;
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tonic::transport::server::TcpIncoming;

/// The accepted-connection stream of a gRPC listener, with TCP_NODELAY on.
pub fn grpc_incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The HTTP API's listener for `axum::serve`, with TCP_NODELAY on. (A concrete type, so that
/// axum's `ConnectInfo<SocketAddr>` works through it.)
pub fn api_listener(listener: TcpListener) -> TapIo<TcpListener, fn(&mut TcpStream)> {
    listener.tap_io(set_nodelay)
}

fn set_nodelay(stream: &mut TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "could not set TCP_NODELAY on an API connection");
    }
}

#[cfg(test)]
mod tests {
    use axum::serve::Listener as _;
    use tokio_stream::StreamExt as _;

    use super::*;

    async fn bound() -> (TcpListener, std::net::SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    #[tokio::test]
    async fn grpc_connections_are_accepted_with_nodelay() {
        let (listener, addr) = bound().await;
        let mut incoming = grpc_incoming(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap());
    }

    #[tokio::test]
    async fn api_connections_are_accepted_with_nodelay() {
        let (listener, addr) = bound().await;
        let mut listener = api_listener(listener);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_plain_listener_accepts_without_nodelay() {
        // The regression these wrappers fix: the default is off.
        let (listener, addr) = bound().await;
        let _client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(!accepted.nodelay().unwrap());
    }
}
