//! The client gRPC API: init, unseal, calls on any node, and errors as gRPC status codes.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use strongroom::api::grpc::pb;
use strongroom::api::grpc::pb::vault_client::VaultClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

async fn client(addr: &str) -> VaultClient<Channel> {
    VaultClient::connect(format!("http://{addr}"))
        .await
        .expect("connect gRPC")
}

fn call(
    operation: pb::Operation,
    path: &str,
    body: Value,
    token: &str,
) -> tonic::Request<pb::CallRequest> {
    let json_body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let mut request = tonic::Request::new(pb::CallRequest {
        operation: operation as i32,
        path: path.to_string(),
        json_body,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-vault-token", token.parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_init_unseal_write_and_read() {
    bounded(Duration::from_secs(180), async {
        let cluster = TestCluster::start(3).await;
        let mut first = client(&cluster.nodes[0].grpc_addr).await;
        let init = wait_for("gRPC init", Duration::from_secs(60), || {
            let mut first = first.clone();
            async move {
                first
                    .init(pb::InitRequest {
                        secret_shares: 3,
                        secret_threshold: 2,
                    })
                    .await
                    .ok()
                    .map(|r| r.into_inner())
            }
        })
        .await;
        assert_eq!(init.keys_base64.len(), 3);
        let token = init.root_token.clone();

        let sealed = first
            .call(call(
                pb::Operation::Read,
                "secret/data/x",
                Value::Null,
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(sealed.code(), Code::Unavailable);

        for node in &cluster.nodes {
            let mut grpc = client(&node.grpc_addr).await;
            let bad = grpc
                .unseal(pb::UnsealRequest {
                    key: "nope".into(),
                    reset: false,
                })
                .await
                .unwrap_err();
            assert_eq!(bad.code(), Code::InvalidArgument);
            let mut status = None;
            for key in &init.keys_base64[1..] {
                status = Some(
                    grpc.unseal(pb::UnsealRequest {
                        key: key.clone(),
                        reset: false,
                    })
                    .await
                    .unwrap()
                    .into_inner(),
                );
            }
            assert!(!status.unwrap().sealed);
        }

        let written = first
            .call(call(
                pb::Operation::Update,
                "secret/data/grpc",
                json!({"data": {"k": "v"}}),
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(written.status, 200);
        let mut third = client(&cluster.nodes[2].grpc_addr).await;
        let read = third
            .call(call(
                pb::Operation::Read,
                "secret/data/grpc",
                Value::Null,
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let data: Value = serde_json::from_slice(&read.json_data).unwrap();
        assert_eq!(data["data"], json!({"k": "v"}));

        let denied = third
            .call(call(
                pb::Operation::Read,
                "secret/data/grpc",
                Value::Null,
                "hvs.nope",
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        let mut malformed = call(
            pb::Operation::Update,
            "secret/data/grpc",
            Value::Null,
            &token,
        );
        malformed.get_mut().json_body = b"{not json".to_vec();
        assert_eq!(
            third.call(malformed).await.unwrap_err().code(),
            Code::InvalidArgument
        );
        let missing = third
            .call(call(
                pb::Operation::Read,
                "secret/data/none",
                Value::Null,
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        let health = third
            .health(pb::HealthRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(health.initialized && !health.sealed);
    })
    .await;
}
