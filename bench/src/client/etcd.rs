//! etcd 3.4 through the `etcd-client` crate (tonic underneath, like our gRPC client).

use etcd_client::GetOptions;
use etcd_client::KvClient;

use crate::workload::Op;
use crate::workload::key_name;
use crate::workload::value;

/// Opens `conns` clients (each its own HTTP/2 connection) to the member at `endpoint`.
pub async fn connect(endpoint: &str, conns: usize) -> anyhow::Result<Vec<KvClient>> {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        let client = etcd_client::Client::connect([format!("http://{endpoint}")], None).await?;
        clients.push(client.kv_client());
    }
    Ok(clients)
}

/// One worker's etcd client.
pub struct EtcdClient {
    kv: KvClient,
    value: Vec<u8>,
}

impl EtcdClient {
    /// A worker client on `kv`; `seed` varies the value it writes.
    pub fn new(kv: KvClient, seed: u64) -> Self {
        EtcdClient {
            kv,
            value: value(seed).into_bytes(),
        }
    }

    /// Performs one request (a linearizable get unless `stale`, which maps to serializable).
    pub async fn call(&mut self, op: Op) -> anyhow::Result<()> {
        match op {
            Op::Put { key, .. } => {
                self.kv.put(key_name(key), self.value.clone(), None).await?;
            }
            Op::Get { key, stale } => {
                let options = stale.then(|| GetOptions::new().with_serializable());
                let response = self.kv.get(key_name(key), options).await?;
                if response.kvs().is_empty() {
                    anyhow::bail!("key {} not found", key_name(key));
                }
            }
            Op::Encrypt | Op::Decrypt | Op::Login => {
                anyhow::bail!("etcd has no transit or login counterpart")
            }
        }
        Ok(())
    }
}
