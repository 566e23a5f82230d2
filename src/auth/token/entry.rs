//! A token's stored record and its lifetime rules.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;

/// A token's stored record. It never holds the token itself, only its keyed hash.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    /// Hex of the keyed hash of the token (the lookup key).
    pub id_hash: String,
    /// A second, non-secret handle for the token.
    pub accessor: String,
    /// Policies attached to the token.
    pub policies: Vec<String>,
    /// Human-readable name (`root`, `token-ci`, `userpass-alice`).
    pub display_name: String,
    /// The path that created it (`auth/token/create`, `auth/userpass/login/alice`).
    pub path: String,
    /// Free-form metadata.
    pub meta: BTreeMap<String, String>,
    /// Creation time, seconds since the epoch.
    pub creation_time: u64,
    /// The TTL the token was created with, in seconds (0: no expiry).
    pub ttl: u64,
    /// When the token expires, seconds since the epoch (0: never).
    pub expire_at: u64,
    /// A cap renewal can never pass, seconds since the epoch (0: none).
    pub max_expire_at: u64,
    /// The explicit max TTL it was created with, in seconds (0: none).
    pub explicit_max_ttl: u64,
    /// A periodic token's period, in seconds (0: not periodic).
    pub period: u64,
    /// Remaining uses (0: unlimited).
    pub num_uses: u32,
    /// The hash of the parent token (`None`: an orphan).
    pub parent: Option<String>,
    /// Whether the token may be renewed.
    pub renewable: bool,
    /// CIDR blocks the token may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// The token role it was created under, if any.
    pub role: Option<String>,
    /// When it was last renewed (0: never), seconds since the epoch.
    pub last_renewal_time: u64,
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("display_name", &self.display_name)
            .field("expire_at", &self.expire_at)
            .finish_non_exhaustive()
    }
}

impl TokenEntry {
    /// Whether the token has expired at `now` (seconds since the epoch).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at > 0 && self.expire_at <= now
    }

    /// Whether the token carries the root policy.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|policy| policy == "root")
    }

    /// Seconds left before expiry at `now` (0 for tokens that never expire).
    pub fn ttl_left(&self, now: u64) -> u64 {
        if self.expire_at == 0 {
            0
        } else {
            self.expire_at.saturating_sub(now)
        }
    }

    /// Whether `address` is within the token's CIDR bounds (always, when it has none).
    pub fn allows_address(&self, address: Option<&str>) -> bool {
        if self.bound_cidrs.is_empty() {
            return true;
        }
        let Some(ip) = address.and_then(|text| text.parse::<std::net::IpAddr>().ok()) else {
            return false;
        };
        self.bound_cidrs
            .iter()
            .any(|cidr| match cidr.parse::<ipnet::IpNet>() {
                Ok(net) => net.contains(&ip),
                Err(_) => cidr
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|single| single == ip),
            })
    }

    /// The expiry after renewing at `now` with `increment` seconds (0: the token's own TTL;
    /// periodic tokens always renew by their period), capped by `max_expire_at`. `None` when the token cannot be renewed.
    pub fn renewed_expiry(&self, now: u64, increment: u64) -> Option<u64> {
        if !self.renewable || self.expire_at == 0 {
            return None;
        }
        let step = if self.period > 0 {
            self.period
        } else if increment > 0 {
            // Vault grants the increment asked for, capped only by the max TTL below.
            increment
        } else {
            self.ttl
        };
        let mut expiry = now.saturating_add(step);
        if self.max_expire_at > 0 {
            expiry = expiry.min(self.max_expire_at);
        }
        Some(expiry)
    }
}
