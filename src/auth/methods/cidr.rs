//! CIDR blocks for credential bounds (`secret_id_bound_cidrs`, `cidr_list`, `token_bound_cidrs`):
//! parsing (a bare address is a /32 or /128 block), membership of a client address, and the
//! "is a subset of" check Vault applies when a secret ID narrows its role's blocks.

use std::fmt;
use std::net::IpAddr;

use crate::logical::LogicalError;

/// One IPv4 or IPv6 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address. Host bits may be set (`10.0.0.5/8` means
    /// `10.0.0.0/8`), as Go's `ParseCIDR` allows.
    pub fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => {
                if prefix.is_empty() || !prefix.bytes().all(|byte| byte.is_ascii_digit()) {
                    return None;
                }
                (address, Some(prefix.parse::<u8>().ok()?))
            }
            None => (text, None),
        };
        let address: IpAddr = address.parse().ok()?;
        let max = max_prefix(address);
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        Some(Cidr {
            network: mask(address, prefix),
            prefix,
        })
    }

    /// Whether `address` lies in this block. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        same_family(self.network, address) && mask(address, self.prefix) == self.network
    }

    /// Whether every address of `self` lies in `outer`.
    pub fn within(&self, outer: &Cidr) -> bool {
        outer.prefix <= self.prefix && outer.contains(self.network)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    matches!(
        (a, b),
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
    )
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

/// Parses a list of blocks, normalizing each to `network/prefix`; `name` labels errors.
pub fn parse_list(items: &[String], name: &str) -> Result<Vec<String>, LogicalError> {
    items
        .iter()
        .map(|item| {
            Cidr::parse(item)
                .map(|cidr| cidr.to_string())
                .ok_or_else(|| {
                    LogicalError::invalid(format!("{name}: invalid CIDR block {item:?}"))
                })
        })
        .collect()
}

/// Whether `remote` (the client's address) is allowed by `blocks`: always when `blocks` is empty;
/// never when the address is unknown or unparsable and `blocks` is not empty.
pub fn allows(blocks: &[String], remote: Option<&str>) -> bool {
    if blocks.is_empty() {
        return true;
    }
    let Some(address) = remote.and_then(|text| text.trim().parse::<IpAddr>().ok()) else {
        return false;
    };
    blocks
        .iter()
        .filter_map(|block| Cidr::parse(block))
        .any(|block| block.contains(address))
}

/// Whether each of `inner` lies within some block of `outer` (any `inner` when `outer` is empty).
pub fn subset(inner: &[String], outer: &[String]) -> bool {
    if outer.is_empty() {
        return true;
    }
    let outer: Vec<Cidr> = outer
        .iter()
        .filter_map(|block| Cidr::parse(block))
        .collect();
    inner.iter().all(|block| {
        Cidr::parse(block).is_some_and(|inner| outer.iter().any(|outer| inner.within(outer)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn parses_and_normalizes_blocks() {
        assert_eq!(
            Cidr::parse("10.1.2.3/8").map(|c| c.to_string()),
            Some("10.0.0.0/8".into())
        );
        assert_eq!(
            Cidr::parse("127.0.0.1").map(|c| c.to_string()),
            Some("127.0.0.1/32".into())
        );
        assert_eq!(
            Cidr::parse("::1").map(|c| c.to_string()),
            Some("::1/128".into())
        );
        assert_eq!(
            Cidr::parse("0.0.0.0/0").map(|c| c.to_string()),
            Some("0.0.0.0/0".into())
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "a.b.c.d",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "::/129",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse_list(&list(&["10.0.0.0/8", "nope"]), "cidr_list").is_err());
    }

    #[test]
    fn membership_and_unknown_addresses() {
        let blocks = list(&["10.0.0.0/8", "::1/128"]);
        assert!(allows(&blocks, Some("10.200.0.1")));
        assert!(allows(&blocks, Some("::1")));
        assert!(
            allows(&blocks, Some("::ffff:10.0.0.1")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!allows(&blocks, Some("11.0.0.1")));
        assert!(!allows(&blocks, None));
        assert!(!allows(&blocks, Some("garbage")));
        assert!(allows(&[], None));
        assert!(allows(&list(&["0.0.0.0/0"]), Some("192.168.1.1")));
    }

    #[test]
    fn subsets() {
        let role = list(&["10.0.0.0/8", "192.168.0.0/16"]);
        assert!(subset(&list(&["10.1.0.0/16", "192.168.3.4/32"]), &role));
        assert!(!subset(&list(&["10.0.0.0/7"]), &role));
        assert!(!subset(&list(&["172.16.0.0/12"]), &role));
        assert!(subset(&list(&["1.2.3.4/32"]), &[]));
        assert!(subset(&[], &role));
    }
}
