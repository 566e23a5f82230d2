//! Node-to-node transport over tonic: the generated protobuf code, a pool of lazily connected
//! channels (one per peer address, with HTTP/2 keepalive so a healed partition is noticed), the
//! openraft client side ([`client`]) and the gRPC service ([`server`]).
//!
//! Raft messages cross the wire as codec-encoded bytes inside `Payload` messages (see
//! `proto/raft.proto` for why).

pub mod client;
pub mod server;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tonic::transport::Channel;
use tonic::transport::Endpoint;

/// The generated protobuf and tonic code for `proto/raft.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("strongroom.raft.v1");
}

/// Largest gRPC message accepted or sent (a batch of appended entries can be large).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Size of the chunks a snapshot file is streamed in.
pub(crate) const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Lazily connected channels to peers, shared by every client of this node.
#[derive(Clone, Default)]
pub struct ChannelPool {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl ChannelPool {
    /// The channel to `addr` (`host:port`), created on first use. Creating it does not connect.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(4))
            .keep_alive_while_idle(true)
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// A Raft service client for the node at `addr`.
    pub fn client(
        &self,
        addr: &str,
    ) -> Result<pb::raft_service_client::RaftServiceClient<Channel>, tonic::transport::Error> {
        Ok(
            pb::raft_service_client::RaftServiceClient::new(self.get(addr)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }
}
