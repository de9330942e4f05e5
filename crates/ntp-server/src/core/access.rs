//! Access control: CIDR networks ([`IpNet`]) and an allow/deny [`AccessList`].
//!
//! Addresses are canonicalised first: an IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 client)
//! is treated as the IPv4 address, so IPv4 rules cover clients that reach us
//! over a dual-stack socket. A network written in the mapped range with a
//! prefix of at least 96 (`::ffff:192.0.2.0/120`) is stored as the IPv4
//! network it denotes (`192.0.2.0/24`).
//!
//! The decision: a client on the deny list is refused; otherwise, if the allow
//! list is empty every client is allowed, else only clients on it. **Deny
//! wins** over allow.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a string is not a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpNetParseError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("{0:?} is not an ip address")]
    InvalidAddress(String),
    /// The part after `/` is not a decimal number.
    #[error("{0:?} is not a prefix length")]
    InvalidPrefix(String),
    /// The prefix length is longer than the address (32 for IPv4, 128 for IPv6).
    #[error("prefix length {len} is longer than the {max} bits of the address")]
    PrefixTooLong {
        /// The prefix length given.
        len: u8,
        /// The address length in bits.
        max: u8,
    },
}

/// An IP network in CIDR notation: an address and a prefix length.
///
/// Host bits are cleared on construction (`192.0.2.7/24` is `192.0.2.0/24`),
/// as most tools accept such input. A bare address is a /32 or /128 network.
///
/// ```
/// use ntp_server::core::IpNet;
///
/// let net: IpNet = "192.0.2.0/24".parse()?;
/// assert!(net.contains("192.0.2.200".parse()?));
/// assert!(net.contains("::ffff:192.0.2.1".parse()?)); // IPv4-mapped IPv6
/// assert!(!net.contains("198.51.100.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IpNet {
    addr: IpAddr,
    prefix_len: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix_len` bits; host bits are cleared and
    /// an IPv4-mapped IPv6 network with a prefix of at least 96 becomes IPv4.
    ///
    /// # Errors
    /// [`IpNetParseError::PrefixTooLong`] if `prefix_len` exceeds the address
    /// length.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, IpNetParseError> {
        let (addr, prefix_len) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if (96..=128).contains(&prefix_len) => (IpAddr::V4(v4), prefix_len - 96),
                _ => (addr, prefix_len),
            },
            IpAddr::V4(_) => (addr, prefix_len),
        };
        let max = max_prefix(addr);
        if prefix_len > max {
            return Err(IpNetParseError::PrefixTooLong {
                len: prefix_len,
                max,
            });
        }
        Ok(Self {
            addr: mask(addr, prefix_len),
            prefix_len,
        })
    }

    /// The network containing only `addr` (/32 or /128; a mapped address
    /// becomes an IPv4 /32).
    pub fn host(addr: IpAddr) -> Self {
        let addr = canonical(addr);
        Self {
            addr,
            prefix_len: max_prefix(addr),
        }
    }

    /// The network address (host bits zero).
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `addr` is in this network. IPv4-mapped IPv6 addresses are
    /// matched as IPv4; otherwise IPv4 never matches an IPv6 network or the
    /// reverse.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        match (self.addr, addr) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(addr, self.prefix_len) == self.addr
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    /// Parses `"192.0.2.0/24"`, `"2001:db8::/32"` or a bare address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr_part, prefix_part) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_part
            .parse()
            .map_err(|_| IpNetParseError::InvalidAddress(addr_part.to_owned()))?;
        let Some(prefix_part) = prefix_part else {
            return Ok(Self::host(addr));
        };
        // Digits only: `u8::from_str` would also take a leading `+`.
        if prefix_part.is_empty() || !prefix_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IpNetParseError::InvalidPrefix(prefix_part.to_owned()));
        }
        let prefix_len: u8 = match prefix_part.parse() {
            Ok(len) => len,
            Err(_) => {
                return Err(IpNetParseError::PrefixTooLong {
                    len: u8::MAX,
                    max: max_prefix(addr),
                });
            }
        };
        Self::new(addr, prefix_len)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl serde::Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What to do with a client the access lists refuse (ntpd-rs's
/// `action = "deny" | "ignore"`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenyAction {
    /// Send nothing (the default: no reply traffic to spoofed sources).
    #[default]
    Ignore,
    /// Answer with a Kiss-o'-Death DENY (RFC 5905 §7.4), telling the client
    /// to stop.
    Deny,
}

/// Allow and deny lists of networks. Deny wins; an empty allow list allows
/// every client not denied.
///
/// Lookups are a linear scan, which is fast for the handful of networks a
/// server configuration holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessList {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl AccessList {
    /// A list from the allowed and denied networks.
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Self { allow, deny }
    }

    /// Whether `addr` may be answered: not on the deny list, and on the allow
    /// list unless that is empty.
    pub fn allows(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        if self.deny.iter().any(|net| net.contains(addr)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(addr))
    }
}

/// `addr`, with an IPv4-mapped IPv6 address turned into IPv4.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

const fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with all but the first `prefix_len` bits cleared (`prefix_len` is at
/// most the address length; larger values keep every bit).
fn mask(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32)));
            IpAddr::V4(Ipv4Addr::from(bits & kept.unwrap_or(0)))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128)));
            IpAddr::V6(Ipv6Addr::from(bits & kept.unwrap_or(0)))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn parses_v4_v6_and_bare_addresses() {
        assert_eq!(net("192.0.2.0/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("192.0.2.77/24").to_string(), "192.0.2.0/24");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("2001:db8:1:2::5/48").to_string(), "2001:db8:1::/48");
        assert_eq!(net("192.0.2.1").to_string(), "192.0.2.1/32");
        assert_eq!(net("2001:db8::1").to_string(), "2001:db8::1/128");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("::/0").to_string(), "::/0");
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn v4_mapped_networks_and_addresses_are_ipv4() {
        assert_eq!(net("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(net("::ffff:192.0.2.9").to_string(), "192.0.2.9/32");
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.9")));
        assert!(net("::ffff:192.0.2.0/120").contains(ip("192.0.2.9")));
        // A mapped prefix shorter than 96 stays IPv6 and holds no IPv4 client.
        assert!(!net("::ffff:0:0/95").contains(ip("192.0.2.9")));
        assert!(!net("::/0").contains(ip("192.0.2.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("0.0.0.0/0").contains(ip("::ffff:8.8.8.8")));
    }

    #[test]
    fn typed_parse_errors() {
        assert_eq!(
            "192.0.2.0/33".parse::<IpNet>(),
            Err(IpNetParseError::PrefixTooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "2001:db8::/129".parse::<IpNet>(),
            Err(IpNetParseError::PrefixTooLong { len: 129, max: 128 })
        );
        assert_eq!(
            "2001:db8::/300".parse::<IpNet>(),
            Err(IpNetParseError::PrefixTooLong { len: 255, max: 128 })
        );
        for bad in [
            "192.0.2.0/",
            "192.0.2.0/+8",
            "192.0.2.0/-1",
            "192.0.2.0/x",
            "1.2.3.4/8/8",
        ] {
            assert!(
                matches!(bad.parse::<IpNet>(), Err(IpNetParseError::InvalidPrefix(_))),
                "{bad}"
            );
        }
        for bad in [
            "",
            "example.com",
            "192.0.2/24",
            "300.0.0.0/8",
            "/8",
            "2001:db8:::/32",
        ] {
            assert!(
                matches!(
                    bad.parse::<IpNet>(),
                    Err(IpNetParseError::InvalidAddress(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn contains_respects_the_prefix() {
        let n = net("192.0.2.0/25");
        assert!(n.contains(ip("192.0.2.0")));
        assert!(n.contains(ip("192.0.2.127")));
        assert!(!n.contains(ip("192.0.2.128")));
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(net("2001:db8::1").contains(ip("2001:db8::1")));
        assert!(!net("2001:db8::1").contains(ip("2001:db8::2")));
    }

    #[test]
    fn deny_wins_and_empty_allow_allows_all() {
        let open = AccessList::default();
        assert!(open.allows(ip("203.0.113.1")));
        assert!(open.allows(ip("2001:db8::1")));

        let list = AccessList::new(
            vec![net("192.0.2.0/24"), net("2001:db8::/32")],
            vec![net("192.0.2.128/25"), net("2001:db8:bad::/48")],
        );
        assert!(list.allows(ip("192.0.2.1")));
        assert!(list.allows(ip("::ffff:192.0.2.1")));
        assert!(!list.allows(ip("192.0.2.200")), "deny wins over allow");
        assert!(!list.allows(ip("::ffff:192.0.2.200")));
        assert!(!list.allows(ip("198.51.100.1")), "not on the allow list");
        assert!(list.allows(ip("2001:db8:1::1")));
        assert!(!list.allows(ip("2001:db8:bad::1")));

        let deny_only = AccessList::new(vec![], vec![net("10.0.0.0/8")]);
        assert!(!deny_only.allows(ip("10.1.2.3")));
        assert!(deny_only.allows(ip("11.1.2.3")));
    }

    #[test]
    fn serde_round_trip() {
        #[derive(serde::Deserialize)]
        struct T {
            nets: Vec<IpNet>,
            action: DenyAction,
        }
        let t: T = toml::from_str(
            r#"nets = ["192.0.2.0/24", "::1"]
action = "deny""#,
        )
        .unwrap();
        assert_eq!(t.nets, vec![net("192.0.2.0/24"), net("::1/128")]);
        assert_eq!(t.action, DenyAction::Deny);
        assert!(
            toml::from_str::<T>(
                r#"nets = ["192.0.2.0/40"]
action = "deny""#
            )
            .is_err()
        );
    }
}
