//! The workloads: what each request does, how many are in flight, and which node they go to.

use serde::Serialize;

/// Size of every value written, in bytes.
pub const VALUE_BYTES: usize = 256;
/// Keys are drawn from `0..KEY_SPACE` (`bench/00000000` ..).
pub const KEY_SPACE: u64 = 10_000;

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Write `VALUE_BYTES` to a key.
    Put {
        /// The key index.
        key: u64,
        /// Strongroom only: skip the read point before the write (`stale` consistency).
        stale: bool,
    },
    /// Read a key; `stale` = local/serializable read without a read index.
    Get {
        /// The key index.
        key: u64,
        /// Serve from the node's local state.
        stale: bool,
    },
    /// Strongroom only: transit-encrypt [`TRANSIT_PLAINTEXT_BYTES`] with the bench key.
    Encrypt,
    /// Strongroom only: transit-decrypt a ciphertext of that size.
    Decrypt,
    /// Strongroom only: an AppRole login (creates a token through Raft).
    Login,
}

/// Size of the transit workloads' plaintext, in bytes.
pub const TRANSIT_PLAINTEXT_BYTES: usize = 1024;

/// Which member requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The Raft leader.
    Leader,
    /// A follower.
    Follower,
}

/// The request mix of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mix {
    /// Only puts.
    Put,
    /// Only puts sent with Strongroom's `stale` consistency, which skips the read point the
    /// pipeline takes before running a write (diagnostic; etcd does a normal put).
    PutNoReadPoint,
    /// Only linearizable gets.
    LinearizableGet,
    /// Only stale (serializable) gets.
    StaleGet,
    /// 90 % linearizable gets, 10 % puts.
    ReadWrite90,
    /// Only transit encrypts (Strongroom only).
    TransitEncrypt,
    /// Only transit decrypts (Strongroom only).
    TransitDecrypt,
    /// Only AppRole logins (Strongroom only).
    Login,
}

/// One row of the comparison.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Workload {
    /// Short id used in tables and `--only`.
    pub id: &'static str,
    /// Human description.
    pub title: &'static str,
    /// The request mix.
    pub mix: Mix,
    /// Requests in flight.
    pub workers: usize,
    /// Connections they share (gRPC backends; HTTP/1.1 uses one connection per worker).
    pub conns: usize,
    /// Which member they talk to.
    pub target: Target,
}

/// Every workload of the comparison, in report order.
pub const ALL: &[Workload] = &[
    Workload {
        id: "put-seq",
        title: "sequential put, 1 client -> leader",
        mix: Mix::Put,
        workers: 1,
        conns: 1,
        target: Target::Leader,
    },
    Workload {
        id: "put-64",
        title: "put, 64 in flight / 4 conns -> leader",
        mix: Mix::Put,
        workers: 64,
        conns: 4,
        target: Target::Leader,
    },
    Workload {
        id: "put-256",
        title: "put, 256 in flight / 8 conns -> leader",
        mix: Mix::Put,
        workers: 256,
        conns: 8,
        target: Target::Leader,
    },
    Workload {
        id: "get-lin-1",
        title: "linearizable get, 1 client -> follower",
        mix: Mix::LinearizableGet,
        workers: 1,
        conns: 1,
        target: Target::Follower,
    },
    Workload {
        id: "get-lin-64",
        title: "linearizable get, 64 / 4 conns -> follower",
        mix: Mix::LinearizableGet,
        workers: 64,
        conns: 4,
        target: Target::Follower,
    },
    Workload {
        id: "get-lin-256",
        title: "linearizable get, 256 / 8 conns -> follower",
        mix: Mix::LinearizableGet,
        workers: 256,
        conns: 8,
        target: Target::Follower,
    },
    Workload {
        id: "get-stale-1",
        title: "stale (serializable) get, 1 client -> follower",
        mix: Mix::StaleGet,
        workers: 1,
        conns: 1,
        target: Target::Follower,
    },
    Workload {
        id: "get-stale-256",
        title: "stale (serializable) get, 256 / 8 conns -> follower",
        mix: Mix::StaleGet,
        workers: 256,
        conns: 8,
        target: Target::Follower,
    },
    Workload {
        id: "mix-90-10",
        title: "90% linearizable get / 10% put, 64 / 4 conns -> follower",
        mix: Mix::ReadWrite90,
        workers: 64,
        conns: 4,
        target: Target::Follower,
    },
    Workload {
        id: "encrypt-1",
        title: "transit encrypt 1 KiB (aes256-gcm96), 1 client -> follower",
        mix: Mix::TransitEncrypt,
        workers: 1,
        conns: 1,
        target: Target::Follower,
    },
    Workload {
        id: "encrypt-64",
        title: "transit encrypt 1 KiB, 64 / 4 conns -> follower",
        mix: Mix::TransitEncrypt,
        workers: 64,
        conns: 4,
        target: Target::Follower,
    },
    Workload {
        id: "decrypt-64",
        title: "transit decrypt 1 KiB, 64 / 4 conns -> follower",
        mix: Mix::TransitDecrypt,
        workers: 64,
        conns: 4,
        target: Target::Follower,
    },
    Workload {
        id: "login-64",
        title: "AppRole login (a new token each), 64 / 4 conns -> follower",
        mix: Mix::Login,
        workers: 64,
        conns: 4,
        target: Target::Follower,
    },
];

/// Diagnostic workloads, run only when named in `--only`.
pub const DIAGNOSTIC: &[Workload] = &[
    Workload {
        id: "put-seq-stale",
        title: "sequential put without the pipeline's read point (diagnostic)",
        mix: Mix::PutNoReadPoint,
        workers: 1,
        conns: 1,
        target: Target::Leader,
    },
    Workload {
        id: "put-256-stale",
        title: "put, 256 in flight, without the pipeline's read point (diagnostic)",
        mix: Mix::PutNoReadPoint,
        workers: 256,
        conns: 8,
        target: Target::Leader,
    },
];

/// A small, fast, deterministic random source per worker (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Mix {
    /// The next request of this mix.
    pub fn next_op(self, rng: &mut Rng) -> Op {
        let key = rng.next_u64() % KEY_SPACE;
        match self {
            Mix::Put => Op::Put { key, stale: false },
            Mix::PutNoReadPoint => Op::Put { key, stale: true },
            Mix::LinearizableGet => Op::Get { key, stale: false },
            Mix::StaleGet => Op::Get { key, stale: true },
            Mix::ReadWrite90 => {
                if rng.next_u64().is_multiple_of(10) {
                    Op::Put { key, stale: false }
                } else {
                    Op::Get { key, stale: false }
                }
            }
            Mix::TransitEncrypt => Op::Encrypt,
            Mix::TransitDecrypt => Op::Decrypt,
            Mix::Login => Op::Login,
        }
    }

    /// True for mixes etcd has no counterpart of (transit, login): no etcd row, no ratio.
    pub fn strongroom_only(self) -> bool {
        matches!(self, Mix::TransitEncrypt | Mix::TransitDecrypt | Mix::Login)
    }
}

/// The key name of index `key` (`bench/00000042`), shared by every backend.
pub fn key_name(key: u64) -> String {
    format!("bench/{key:08}")
}

/// A `VALUE_BYTES`-long printable value derived from `seed` (JSON-safe, no escaping needed).
pub fn value(seed: u64) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz012345";
    let mut rng = Rng::new(seed);
    (0..VALUE_BYTES)
        .map(|_| char::from(ALPHABET[(rng.next_u64() % 32) as usize]))
        .collect()
}

/// Looks workloads up by id (`None` = all but the diagnostic ones).
pub fn select(only: Option<&[String]>) -> Vec<Workload> {
    match only {
        None => ALL.to_vec(),
        Some(ids) => ALL
            .iter()
            .chain(DIAGNOSTIC)
            .filter(|w| ids.iter().any(|id| id == w.id))
            .copied()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_ratio_and_key_space() {
        let mut rng = Rng::new(7);
        let ops: Vec<Op> = (0..10_000)
            .map(|_| Mix::ReadWrite90.next_op(&mut rng))
            .collect();
        let puts = ops.iter().filter(|op| matches!(op, Op::Put { .. })).count();
        assert!((800..1200).contains(&puts), "puts {puts}");
        assert!(ops.iter().all(|op| match op {
            Op::Put { key, .. } | Op::Get { key, .. } => *key < KEY_SPACE,
            Op::Encrypt | Op::Decrypt | Op::Login => false,
        }));
    }

    #[test]
    fn only_transit_and_login_mixes_skip_etcd() {
        let mut rng = Rng::new(7);
        assert_eq!(Mix::TransitEncrypt.next_op(&mut rng), Op::Encrypt);
        assert_eq!(Mix::Login.next_op(&mut rng), Op::Login);
        let only: Vec<&str> = ALL
            .iter()
            .filter(|w| w.mix.strongroom_only())
            .map(|w| w.id)
            .collect();
        assert_eq!(only, ["encrypt-1", "encrypt-64", "decrypt-64", "login-64"]);
    }

    #[test]
    fn values_and_keys() {
        assert_eq!(value(1).len(), VALUE_BYTES);
        assert_eq!(key_name(42), "bench/00000042");
        assert_eq!(select(Some(&["put-256".to_string()])).len(), 1);
        assert_eq!(select(Some(&["put-seq-stale".to_string()])).len(), 1);
        assert_eq!(select(None).len(), ALL.len());
    }
}
