//! The gRPC service other nodes call: Raft RPCs (handed to openraft), snapshot reception (streamed
//! into a partial file, then installed), and the follower's `Propose` and `ReadIndex` calls, which
//! this node answers only while it is the leader (and only for callers in its membership), and
//! `ChangeMembership` (see [`crate::node::membership`]).
//!
//! This service must be reachable only by cluster members.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;

use super::pb;
use super::pb::raft_service_server::RaftService;
use crate::codec;
use crate::node::RaftNode;
use crate::node::membership;
use crate::snapshot::SnapshotFile;
use crate::types::Txn;
use crate::types::TypeConfig;
use crate::types::typ::LogId;
use crate::types::typ::StoredMembership;
use crate::types::typ::Vote;

/// The tonic service implementation.
pub struct RaftGrpc {
    node: Arc<RaftNode>,
}

impl RaftGrpc {
    pub(crate) fn new(node: Arc<RaftNode>) -> Self {
        RaftGrpc { node }
    }
}

fn decode<T: DeserializeOwned>(payload: &pb::Payload) -> Result<T, Status> {
    codec::decode(&payload.data)
        .map_err(|err| Status::invalid_argument(format!("undecodable message: {err}")))
}

fn reply<T: Serialize>(value: &T) -> Response<pb::Payload> {
    Response::new(pb::Payload {
        data: codec::encode(value),
    })
}

fn fatal(err: impl std::fmt::Display) -> Status {
    Status::internal(format!("raft node failure: {err}"))
}

type PayloadStream = Pin<Box<dyn Stream<Item = Result<pb::Payload, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    async fn vote(&self, request: Request<pb::Payload>) -> Result<Response<pb::Payload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.node.raft().vote(rpc).await.map_err(fatal)?;
        Ok(reply(&response))
    }

    async fn pre_vote(
        &self,
        request: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.node.raft().pre_vote(rpc).await.map_err(fatal)?;
        Ok(reply(&response))
    }

    async fn append_entries(
        &self,
        request: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self.node.raft().append_entries(rpc).await.map_err(fatal)?;
        Ok(reply(&response))
    }

    type StreamAppendStream = PayloadStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<pb::Payload>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        // An undecodable request ends the input stream; openraft then sees the stream close.
        let input = request
            .into_inner()
            .take_while(|item| futures::future::ready(item.is_ok()))
            .filter_map(|item| async move {
                let payload = item.ok()?;
                match codec::decode::<openraft::raft::AppendEntriesRequest<TypeConfig>>(
                    &payload.data,
                ) {
                    Ok(rpc) => Some(rpc),
                    Err(err) => {
                        tracing::warn!(error = %err, "dropping undecodable append request");
                        None
                    }
                }
            });
        let output = self
            .node
            .raft()
            .stream_append(Box::pin(input))
            .map(|result| match result {
                Ok(result) => Ok(pb::Payload {
                    data: codec::encode(&result),
                }),
                Err(err) => Err(fatal(err)),
            });
        Ok(Response::new(Box::pin(output)))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::Payload>, Status> {
        let mut chunks = request.into_inner();
        let first = chunks
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let Some(pb::snapshot_chunk::Kind::Meta(meta_bytes)) = first.kind else {
            return Err(Status::invalid_argument(
                "the first snapshot chunk must carry the meta",
            ));
        };
        let (vote, last_log_id, membership): (Vote, Option<LogId>, StoredMembership) =
            codec::decode(&meta_bytes).map_err(|err| {
                Status::invalid_argument(format!("undecodable snapshot meta: {err}"))
            })?;

        let path = self.node.snapshot_dirs().new_partial_path();
        let mut file =
            std::fs::File::create(&path).map_err(|err| Status::internal(err.to_string()))?;
        let received = async {
            while let Some(chunk) = chunks.next().await {
                match chunk?.kind {
                    Some(pb::snapshot_chunk::Kind::Data(bytes)) => file
                        .write_all(&bytes)
                        .map_err(|err| Status::internal(err.to_string()))?,
                    _ => {
                        return Err(Status::invalid_argument(
                            "only data chunks may follow the meta chunk",
                        ));
                    }
                }
            }
            file.sync_all()
                .map_err(|err| Status::internal(err.to_string()))
        };
        if let Err(status) = received.await {
            let _ = std::fs::remove_file(&path);
            return Err(status);
        }
        let snapshot_file =
            SnapshotFile::open(path).map_err(|err| Status::internal(err.to_string()))?;
        let snapshot = openraft::alias::SnapshotOf::<TypeConfig, SnapshotFile> {
            meta: crate::snapshot::meta_of(last_log_id, membership),
            snapshot: snapshot_file,
        };
        let response = self
            .node
            .raft()
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(fatal)?;
        Ok(reply(&response))
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::Payload>,
    ) -> Result<Response<pb::Payload>, Status> {
        let rpc = decode(request.get_ref())?;
        let response = self
            .node
            .raft()
            .handle_transfer_leader(rpc)
            .await
            .map_err(fatal)?;
        Ok(reply(&response))
    }

    async fn propose(
        &self,
        request: Request<pb::ProposeRequest>,
    ) -> Result<Response<pb::ProposeResponse>, Status> {
        let txn: Txn = codec::decode(&request.get_ref().txn)
            .map_err(|err| Status::invalid_argument(format!("undecodable transaction: {err}")))?;
        if let Some(message) = self.refuse_caller(request.get_ref().from) {
            return Ok(Response::new(pb::ProposeResponse {
                result: Some(pb::propose_response::Result::NotMember(message)),
                index: 0,
            }));
        }
        let response = match self.node.propose_as_leader(txn).await {
            Ok(Some(committed)) => pb::ProposeResponse {
                result: Some(pb::propose_response::Result::Outcome(codec::encode(
                    &committed.outcome,
                ))),
                index: committed.index,
            },
            Ok(None) => pb::ProposeResponse {
                result: Some(pb::propose_response::Result::NotLeader(
                    self.node.status().leader.map_or(0, |(id, _)| id),
                )),
                index: 0,
            },
            Err(err) => return Err(Status::unavailable(err.to_string())),
        };
        Ok(Response::new(response))
    }

    async fn read_index(
        &self,
        request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        if let Some(message) = self.refuse_caller(request.get_ref().from) {
            return Ok(Response::new(pb::ReadIndexResponse {
                result: Some(pb::read_index_response::Result::NotMember(message)),
            }));
        }
        let result = match self.node.read_index_as_leader().await {
            Ok(Some(index)) => pb::read_index_response::Result::Index(index),
            Ok(None) => pb::read_index_response::Result::NotLeader(
                self.node.status().leader.map_or(0, |(id, _)| id),
            ),
            Err(err) => return Err(Status::unavailable(err.to_string())),
        };
        Ok(Response::new(pb::ReadIndexResponse {
            result: Some(result),
        }))
    }

    async fn change_membership(
        &self,
        request: Request<pb::MembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let change =
            membership::change_from_request(request.get_ref()).map_err(Status::invalid_argument)?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let result = self
            .node
            .change_membership_as_leader(&change, deadline)
            .await;
        Ok(Response::new(membership::response_of(&self.node, result)))
    }
}

impl RaftGrpc {
    /// Why a `Propose` or `ReadIndex` from node `from` is refused: it is not in this node's
    /// membership (removed, and unaware of it). `from == 0`: the caller did not say.
    fn refuse_caller(&self, from: u64) -> Option<String> {
        (from != 0 && !self.node.is_member(from)).then(|| {
            format!(
                "node {from} is not in the membership of leader {}",
                self.node.id()
            )
        })
    }
}
