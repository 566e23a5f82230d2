//! `sys/init` is audited (issue 7, completeness). On a 3-node cluster:
//! - a refused init before the cluster exists (threshold above shares) is answered 400 with no
//!   request id and leaves no record (there is no key to make one with);
//! - the successful init's record is the journal's first, in the shape of every other record:
//!   the request id answered in the header, operation, path, remote address, node id, the share
//!   counts, status 200, and no response data;
//! - a second init on a sealed node is 400 "Vault is already initialized" without a request id,
//!   and is recorded (status 400) when that node unseals;
//! - a second init on an unsealed node is 400 with a request id and adds exactly one record
//!   (status 400, the error, that id); a refused init with a PGP key list records the keys
//!   HMAC'd, as `sys/audit-hash` computes them;
//! - no share (hex or base64) and no root token appears in any node's journal (byte search of
//!   `sys/audit/log`), and the chain verifies.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;

use crate::bounded;
use crate::fixture::TestCluster;
use crate::fixture::wait_for;

const REQUEST_ID_HEADER: &str = "x-strongroom-request-id";
const PGP_CANARY: &str = "not-a-pgp-key-canary-3f9e";

/// A `PUT sys/init` to node `index`: (status, request id header, body).
async fn put_init(
    cluster: &TestCluster,
    index: usize,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let url = format!("{}/v1/sys/init", cluster.nodes[index].url());
    match cluster.http.put(url).json(body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let request_id = response
                .headers()
                .get(REQUEST_ID_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            let text = response.text().await.unwrap_or_default();
            (
                status,
                request_id,
                serde_json::from_str(&text).unwrap_or(Value::Null),
            )
        }
        Err(err) => (0, None, json!({ "transport_error": err.to_string() })),
    }
}

/// Node `index`'s journal through `sys/audit/log`, up to its head when asked (reading it adds
/// records): the raw answers and the records.
async fn journal(cluster: &TestCluster, index: usize) -> (Vec<u8>, Vec<Value>) {
    let (status, body) = cluster
        .root(
            index,
            "GET",
            "sys/audit/log?limit=1&from=18446744073709551615",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let head = body["data"]["head"]["seq"].as_u64().expect("head");
    let mut raw = Vec::new();
    let mut records = Vec::new();
    let mut from = 1;
    while from <= head {
        let url = format!(
            "{}/v1/sys/audit/log?from={from}&limit=1000",
            cluster.nodes[index].url()
        );
        let response = cluster
            .http
            .get(url)
            .header("X-Vault-Token", &cluster.root_token)
            .send()
            .await
            .expect("audit log");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("audit log body").to_vec();
        assert_eq!(
            status,
            200,
            "node {} audit log: {}",
            index + 1,
            String::from_utf8_lossy(&bytes),
        );
        let body: Value = serde_json::from_slice(&bytes).expect("audit log JSON");
        raw.extend(bytes);
        let page = body["data"]["records"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            !page.is_empty(),
            "node {} journal ends before {head}",
            index + 1
        );
        for entry in page {
            from = entry["seq"].as_u64().expect("seq") + 1;
            records.push(entry["record"].clone());
        }
    }
    (raw, records)
}

fn init_records(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .filter(|record| record["request"]["path"] == "sys/init")
        .cloned()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_attempts_leave_one_record_each_without_shares_or_root_token() {
    bounded(Duration::from_secs(240), async {
        let mut cluster = TestCluster::start(3).await;

        // Refused before the cluster exists: answered, not recorded.
        let bad = json!({"secret_shares": 1, "secret_threshold": 3});
        let (status, request_id, body) = put_init(&cluster, 0, &bad).await;
        assert_eq!((status, request_id), (400, None), "{body}");
        assert!(body["errors"].is_array(), "{body}");

        let init_body = json!({"secret_shares": 5, "secret_threshold": 3});
        let this = &cluster;
        let (init_id, answer) = wait_for("sys/init", Duration::from_secs(60), || {
            let body = init_body.clone();
            async move {
                let (status, request_id, value) = put_init(this, 0, &body).await;
                (status == 200).then(|| (request_id.expect("init answers its request id"), value))
            }
        })
        .await;
        cluster.root_token = answer["root_token"]
            .as_str()
            .expect("root_token")
            .to_string();
        cluster.keys = answer["keys_base64"]
            .as_array()
            .expect("keys_base64")
            .iter()
            .map(|key| key.as_str().expect("key").to_string())
            .collect();
        let hex_keys: Vec<String> = answer["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|key| key.as_str().expect("key").to_string())
            .collect();
        assert_eq!((cluster.keys.len(), hex_keys.len()), (5, 5));

        // A second init on a sealed node that knows the cluster is initialized.
        let this = &cluster;
        wait_for(
            "node 2 sees the init",
            Duration::from_secs(30),
            || async move {
                let (_, value) = this.call(1, "GET", "sys/init", None, None).await;
                (value["initialized"] == true).then_some(())
            },
        )
        .await;
        let (status, request_id, body) = put_init(&cluster, 1, &init_body).await;
        assert_eq!(
            (status, request_id, body),
            (
                400,
                None,
                json!({"errors": ["Vault is already initialized"]})
            ),
            "a sealed node cannot record before answering"
        );

        for index in 0..3 {
            cluster.unseal(index).await;
        }

        let (_, records) = journal(&cluster, 2).await;
        let first = &records[0];
        assert_eq!(first["type"], "response", "{first}");
        assert_eq!(first["request"]["id"], init_id.as_str(), "{first}");
        assert_eq!(first["request"]["operation"], "update", "{first}");
        assert_eq!(first["request"]["path"], "sys/init", "{first}");
        assert_eq!(first["request"]["remote_address"], "127.0.0.1", "{first}");
        assert_eq!(first["request"]["node_id"], 1, "{first}");
        assert_eq!(
            first["request"]["data"],
            json!({"secret_shares": 5, "secret_threshold": 3}),
            "{first}"
        );
        assert_eq!(first["response"]["status"], 200, "{first}");
        assert_eq!(
            first["response"]["data"],
            Value::Null,
            "no shares, no token: {first}"
        );
        assert_eq!(first["error"], "", "{first}");
        assert!(first["time"].as_str().is_some_and(|time| !time.is_empty()));

        let before = init_records(&records);
        assert_eq!(
            before.len(),
            2,
            "the init and the sealed node's attempt, recorded at its unseal: {before:?}"
        );
        let held = &before[1];
        assert_eq!(
            (
                held["request"]["node_id"].as_u64(),
                held["response"]["status"].as_u64(),
                held["error"].as_str(),
                held["request"]["remote_address"].as_str(),
            ),
            (
                Some(2),
                Some(400),
                Some("Vault is already initialized"),
                Some("127.0.0.1")
            ),
            "{held}"
        );

        // A second init on an unsealed node: recorded before it is answered.
        let (status, request_id, body) = put_init(&cluster, 2, &init_body).await;
        assert_eq!(
            (status, body),
            (400, json!({"errors": ["Vault is already initialized"]}))
        );
        let request_id = request_id.expect("an unsealed node answers the record's request id");
        let (_, records) = journal(&cluster, 0).await;
        let after = init_records(&records);
        assert_eq!(after.len(), before.len() + 1, "exactly one more: {after:?}");
        let refused = after.last().expect("a record");
        assert_eq!(refused["request"]["id"], request_id.as_str(), "{refused}");
        assert_eq!(refused["type"], "response", "{refused}");
        assert_eq!(refused["request"]["node_id"], 3, "{refused}");
        assert_eq!(
            refused["request"]["remote_address"], "127.0.0.1",
            "{refused}"
        );
        assert_eq!(refused["request"]["data"], init_body, "{refused}");
        assert_eq!(refused["response"]["status"], 400, "{refused}");
        assert_eq!(
            refused["error"], "Vault is already initialized",
            "{refused}"
        );
        let with_id = records
            .iter()
            .filter(|record| record["request"]["id"] == request_id.as_str())
            .count();
        assert_eq!(with_id, 1, "one record per request");

        // A refused init naming PGP keys records them HMAC'd.
        let pgp_body = json!({"secret_shares": 5, "secret_threshold": 3, "pgp_keys": [PGP_CANARY]});
        let (status, request_id, body) = put_init(&cluster, 1, &pgp_body).await;
        assert_eq!(status, 400, "{body}");
        let request_id = request_id.expect("recorded");
        let (_, records) = journal(&cluster, 1).await;
        let record = records
            .iter()
            .find(|record| record["request"]["id"] == request_id.as_str())
            .expect("the PGP attempt's record");
        let (status, hash) = cluster
            .root(
                1,
                "PUT",
                "sys/audit-hash/file",
                Some(json!({"input": PGP_CANARY})),
            )
            .await;
        assert_eq!(status, 200, "{hash}");
        assert_eq!(
            record["request"]["data"]["pgp_keys"][0], hash["data"]["hash"],
            "{record}"
        );
        assert_eq!(record["request"]["data"]["secret_shares"], 5, "{record}");
        assert_eq!(record["response"]["status"], 400, "{record}");

        // No share, no root token, no PGP canary in any node's journal; the chain verifies.
        for index in 0..3 {
            let (raw, _) = journal(&cluster, index).await;
            assert!(
                contains(&raw, "sys/init"),
                "the search reads the records' text"
            );
            assert!(
                !contains(&raw, &cluster.root_token),
                "node {}: root token in the journal",
                index + 1
            );
            for key in cluster.keys.iter().chain(&hex_keys) {
                assert!(
                    !contains(&raw, key),
                    "node {}: a share in the journal",
                    index + 1
                );
            }
            assert!(!contains(&raw, PGP_CANARY), "node {}", index + 1);
            let (status, verify) = cluster.root(index, "GET", "sys/audit/verify", None).await;
            assert_eq!(
                (status, verify["data"]["valid"].clone()),
                (200, json!(true)),
                "node {}: {verify}",
                index + 1
            );
        }
    })
    .await;
}
