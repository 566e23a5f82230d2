//! The openraft network client: each Raft RPC becomes a gRPC call carrying codec-encoded openraft
//! messages. Appends use one bidirectional stream per replication session (pipelined); snapshots
//! are streamed in chunks read from the snapshot file.

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use futures::Stream;
use futures::StreamExt;
use openraft::AnyError;
use openraft::OptionalSend;
use openraft::RaftNetworkFactory;
use openraft::RaftNetworkV2;
use openraft::base::BoxFuture;
use openraft::base::BoxStream;
use openraft::error::NetworkError;
use openraft::error::RPCError;
use openraft::error::ReplicationClosed;
use openraft::error::StreamingError;
use openraft::error::Unreachable;
use openraft::network::Backoff;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::StreamAppendResult;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use super::ChannelPool;
use super::SNAPSHOT_CHUNK_BYTES;
use super::pb;
use crate::codec;
use crate::snapshot::SnapshotFile;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::TypeConfig;
use crate::types::typ::SnapshotMeta;
use crate::types::typ::Vote;

type Client = pb::raft_service_client::RaftServiceClient<Channel>;
type RpcError = RPCError<TypeConfig>;

/// Creates a [`Connection`] per target node for openraft.
#[derive(Clone)]
pub struct NetworkFactory {
    pool: ChannelPool,
}

impl NetworkFactory {
    /// A factory that draws channels from `pool`.
    pub fn new(pool: ChannelPool) -> Self {
        NetworkFactory { pool }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Connection {
        Connection {
            target,
            addr: node.cluster_addr.clone(),
            pool: self.pool.clone(),
        }
    }
}

/// openraft's view of one peer.
pub struct Connection {
    target: NodeId,
    addr: String,
    pool: ChannelPool,
}

impl Connection {
    fn client(&self) -> Result<Client, RpcError> {
        self.pool
            .client(&self.addr)
            .map_err(|err| RPCError::Unreachable(Unreachable::new(&err)))
    }

    /// Awaits a unary call within the RPC's deadline and decodes the reply.
    async fn finish<T: DeserializeOwned>(
        &self,
        option: &RPCOption,
        call: impl Future<Output = Result<tonic::Response<pb::Payload>, tonic::Status>>,
    ) -> Result<T, RpcError> {
        let response = tokio::time::timeout(option.hard_ttl(), call)
            .await
            .map_err(|_| self.timeout(option))?
            .map_err(status_error)?;
        decode_payload(response.get_ref())
    }

    fn timeout(&self, option: &RPCOption) -> RpcError {
        let message = format!(
            "rpc to node {} timed out after {:?}",
            self.target,
            option.hard_ttl()
        );
        RPCError::Network(NetworkError::new(&AnyError::error(message)))
    }
}

fn payload<T: Serialize>(value: &T) -> pb::Payload {
    pb::Payload {
        data: codec::encode(value),
    }
}

fn decode_payload<T: DeserializeOwned>(payload: &pb::Payload) -> Result<T, RpcError> {
    codec::decode(&payload.data).map_err(|err| RPCError::Network(NetworkError::new(&err)))
}

/// Maps a gRPC failure to openraft's error: connection-level failures are "unreachable" (back
/// off), others are network errors (retry).
fn status_error(status: tonic::Status) -> RpcError {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcError> {
        let mut client = self.client()?;
        self.finish(&option, client.append_entries(payload(&rpc)))
            .await
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RpcError>>, RpcError>,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let mut client = self.client()?;
            let requests = input.map(|request| payload(&request));
            let responses = client
                .stream_append(requests)
                .await
                .map_err(status_error)?
                .into_inner();
            let results = responses.map(|item| {
                let response = item.map_err(status_error)?;
                decode_payload::<StreamAppendResult<TypeConfig>>(&response)
            });
            Ok(Box::pin(results) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        let mut client = self.client()?;
        self.finish(&option, client.vote(payload(&rpc))).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        let mut client = self.client()?;
        self.finish(&option, client.pre_vote(payload(&rpc))).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: openraft::alias::SnapshotOf<TypeConfig, SnapshotFile>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(|_| {
            StreamingError::Unreachable(Unreachable::new(&AnyError::error(
                "cannot create a channel to the peer",
            )))
        })?;
        let chunks = snapshot_chunks(vote, snapshot.meta, snapshot.snapshot);
        let send = client.install_snapshot(chunks);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            response = send => {
                let response = response.map_err(|status| StreamingError::Network(NetworkError::new(&status)))?;
                codec::decode(&response.get_ref().data)
                    .map_err(|err| StreamingError::Network(NetworkError::new(&err)))
            }
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RpcError> {
        let mut client = self.client()?;
        self.finish(&option, client.transfer_leader(payload(&req)))
            .await
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(200))))
    }
}

/// The chunk stream of one snapshot: the meta chunk, then the file in fixed-size pieces read with
/// positioned reads (the file handle may be shared with other streams).
fn snapshot_chunks(
    vote: Vote,
    meta: SnapshotMeta,
    file: SnapshotFile,
) -> impl Stream<Item = pb::SnapshotChunk> + Send + 'static {
    let first = pb::SnapshotChunk {
        kind: Some(pb::snapshot_chunk::Kind::Meta(codec::encode(&(
            vote,
            meta.last_log_id,
            meta.last_membership,
        )))),
    };
    let data = futures::stream::unfold((file, 0u64), |(file, offset)| async move {
        let mut buf = vec![0u8; SNAPSHOT_CHUNK_BYTES];
        match file.file.read_at(&mut buf, offset) {
            Ok(0) => None,
            Ok(read) => {
                buf.truncate(read);
                let chunk = pb::SnapshotChunk {
                    kind: Some(pb::snapshot_chunk::Kind::Data(buf)),
                };
                Some((chunk, (file, offset + read as u64)))
            }
            Err(err) => {
                // Ending the stream early makes the receiver's integrity check fail; log why.
                tracing::warn!(path = %file.path.display(), error = %err, "reading snapshot file failed");
                None
            }
        }
    });
    futures::stream::iter([first]).chain(data)
}
