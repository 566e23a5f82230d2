//! Cluster membership through the API, in Vault's `sys/storage/raft/*` shapes (all need `sudo`):
//!
//! - `GET sys/storage/raft/configuration`: `{"config": {"index", "servers": [{"node_id",
//!   "address", "leader", "protocol_version", "voter"}]}}`, this node's view after the request's
//!   read point (so at least the committed membership). `address` is the cluster address.
//! - `POST sys/storage/raft/remove-peer {"server_id": "3"}` (Vault's): removes the node from the
//!   membership through the leader; 204. Unknown ids, the leader itself and the last voter are
//!   refused with 400.
//! - `POST sys/storage/raft/add-peer {"server_id": "3", "address": "<cluster addr>",
//!   "api_addr": "<http addr>"}` (Strongroom's; Vault's nodes join with `sys/storage/raft/join`
//!   on the joining node instead, but ours know each other from their config): adds the node as
//!   a learner, waits until it has caught up, then makes it a voter; 204. `address` and
//!   `api_addr` default to the node's `[[peers]]` entry in this node's config. Send it to a
//!   member: a removed node serves no linearizable request.
//!
//! The change is made after the request is authorized and before its audit record is committed;
//! if that commit fails the answer is an error although the change stands.

use serde_json::Value;
use serde_json::json;
use strongroom_raft::NodeId;
use strongroom_raft::NodeInfo;
use strongroom_raft::node::membership::MembershipChange;

use super::Core;
use super::CoreError;
use super::request::ClientRequest;
use super::txn::TxnBuilder;
use crate::logical::LogicalError;
use crate::logical::Operation;
use crate::logical::Response;

/// The protocol version Vault reports for its raft servers.
const PROTOCOL_VERSION: &str = "3";

impl Core {
    /// Serves `sys/storage/raft/*`; `None` for other paths. Changes are only staged in `txn`.
    pub(super) fn raft_api(
        &self,
        request: &ClientRequest,
        txn: &mut TxnBuilder,
    ) -> Option<Result<Response, CoreError>> {
        let rest = request.path.strip_prefix("sys/storage/raft/")?;
        let write = matches!(request.operation, Operation::Update | Operation::Create);
        Some(match rest {
            "configuration" if request.operation == Operation::Read => Ok(self.configuration()),
            "remove-peer" if write => parse_remove(&request.data).map(|change| {
                txn.stage_membership(change);
                Response::no_content()
            }),
            "add-peer" if write => self.parse_add(&request.data).map(|change| {
                txn.stage_membership(change);
                Response::no_content()
            }),
            "configuration" | "remove-peer" | "add-peer" => {
                Err(CoreError::Logical(LogicalError::UnsupportedOperation))
            }
            _ => Err(CoreError::Logical(LogicalError::UnsupportedPath)),
        })
    }

    /// Makes a staged membership change (from any node, through the leader).
    pub(super) async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<Response, CoreError> {
        self.node.change_membership(change).await?;
        Ok(Response::no_content())
    }

    fn configuration(&self) -> Response {
        let configuration = self.node.configuration();
        let servers: Vec<Value> = configuration
            .servers
            .iter()
            .map(|server| {
                json!({
                    "node_id": server.id.to_string(),
                    "address": server.info.cluster_addr,
                    "leader": server.leader,
                    "protocol_version": PROTOCOL_VERSION,
                    "voter": server.voter,
                })
            })
            .collect();
        Response::from_value(json!({
            "config": {"index": configuration.index, "servers": servers},
        }))
    }

    fn parse_add(
        &self,
        data: &serde_json::Map<String, Value>,
    ) -> Result<MembershipChange, CoreError> {
        only_fields(data, &["server_id", "address", "api_addr"])?;
        let id = server_id(data)?;
        let configured = self.node.initial_member(id);
        let address = |field: &str, configured: Option<&String>| -> Result<String, CoreError> {
            match data.get(field) {
                Some(Value::String(text)) => check_address(field, text),
                Some(_) => Err(invalid(format!("{field} must be a string (host:port)"))),
                None => configured.cloned().ok_or_else(|| {
                    invalid(format!(
                        "server {id} is not in this node's [[peers]] config; give its {field}"
                    ))
                }),
            }
        };
        let info = NodeInfo {
            cluster_addr: address("address", configured.map(|info| &info.cluster_addr))?,
            api_addr: address("api_addr", configured.map(|info| &info.api_addr))?,
        };
        Ok(MembershipChange::Add(id, info))
    }
}

fn parse_remove(data: &serde_json::Map<String, Value>) -> Result<MembershipChange, CoreError> {
    only_fields(data, &["server_id"])?;
    Ok(MembershipChange::Remove(server_id(data)?))
}

fn invalid(message: String) -> CoreError {
    CoreError::InvalidRequest(message)
}

fn only_fields(data: &serde_json::Map<String, Value>, known: &[&str]) -> Result<(), CoreError> {
    match data.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(invalid(format!(
            "unknown field {key:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `server_id`: a node id, as a string (Vault's type) or a JSON integer.
fn server_id(data: &serde_json::Map<String, Value>) -> Result<NodeId, CoreError> {
    let id = match data.get("server_id") {
        None => return Err(invalid("missing server_id".into())),
        Some(Value::String(text)) => text.trim().parse::<NodeId>().ok(),
        Some(Value::Number(number)) => number.as_u64(),
        Some(_) => None,
    };
    id.filter(|id| *id > 0)
        .ok_or_else(|| invalid("server_id must be a node id (a positive integer)".into()))
}

/// A `host:port` address with a non-empty host and a port in 1..=65535.
fn check_address(field: &str, text: &str) -> Result<String, CoreError> {
    let valid = text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && !host.contains('/')
            && port.parse::<u16>().is_ok_and(|port| port > 0)
    });
    if valid {
        Ok(text.to_string())
    } else {
        Err(invalid(format!("{field} must be host:port, not {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(value: Value) -> serde_json::Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    #[test]
    fn server_ids() {
        assert_eq!(server_id(&data(json!({"server_id": "3"}))).ok(), Some(3));
        assert_eq!(server_id(&data(json!({"server_id": 4}))).ok(), Some(4));
        for bad in [
            json!({}),
            json!({"server_id": "node3"}),
            json!({"server_id": "0"}),
            json!({"server_id": -1}),
            json!({"server_id": 1.5}),
            json!({"server_id": true}),
            json!({"server_id": ""}),
        ] {
            assert!(
                matches!(
                    server_id(&data(bad.clone())),
                    Err(CoreError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn remove_bodies() {
        assert_eq!(
            parse_remove(&data(json!({"server_id": "2"}))).ok(),
            Some(MembershipChange::Remove(2))
        );
        assert!(parse_remove(&data(json!({"server_id": "2", "force": true}))).is_err());
    }

    #[test]
    fn addresses() {
        assert!(check_address("address", "10.0.0.3:8201").is_ok());
        assert!(check_address("address", "node-3.local:8201").is_ok());
        assert!(check_address("address", "[::1]:8201").is_ok());
        for bad in [
            "",
            "10.0.0.3",
            ":8201",
            "10.0.0.3:0",
            "10.0.0.3:70000",
            "http://x:1",
            "a b:1",
        ] {
            assert!(check_address("address", bad).is_err(), "{bad}");
        }
    }
}
