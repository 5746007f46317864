//! Where a token request comes from, for the per-address rate limit.
//!
//! The address is the TCP peer's (axum's `ConnectInfo`, present when the
//! service is served with `into_make_service_with_connect_info`). Headers
//! are believed only from a configured trusted proxy: when the peer is one,
//! `X-Forwarded-For` is read from the right (the entry that proxy appended)
//! and the first address that is not itself a trusted proxy is the client.
//! Everything left of it was written by the client and is ignored, so a
//! client cannot choose its own rate-limit key. Without trusted proxies the
//! header is ignored altogether.
//!
//! IPv6 addresses are limited by /64, the block one subscriber gets, so an
//! attacker cannot mint a fresh key per request from its own prefix.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The TCP peer of a request, if the server recorded it.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        // axum's own extractor also sees `MockConnectInfo` (tests).
        Ok(Self(
            ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
                .await
                .ok()
                .map(|ConnectInfo(addr)| addr),
        ))
    }
}

/// An address block in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one
/// address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(net.to_bits()), self.prefix, 32)
                    == masked(u128::from(ip.to_bits()), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(net.to_bits(), self.prefix, 128) == masked(ip.to_bits(), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit number.
fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits >> (width - prefix)
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr = canonical(
            addr.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{s} is not an IP address or CIDR block"))?,
        );
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("{s}: the prefix length must be 0 to {width}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The key a source address is rate limited by: the IPv4 address, the /64
/// of an IPv6 one, or one shared key when the address is unknown (a service
/// not served with connect info: then all requests share one budget, which
/// still bounds the work).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddrKey {
    V4(u32),
    V6Prefix(u64),
    Unknown,
}

impl AddrKey {
    pub(crate) fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(canonical) {
            Some(IpAddr::V4(v4)) => Self::V4(v4.to_bits()),
            // The upper 64 bits: the shift leaves exactly 64 significant bits.
            Some(IpAddr::V6(v6)) => Self::V6Prefix((v6.to_bits() >> 64) as u64),
            None => Self::Unknown,
        }
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy,
/// the nearest untrusted hop of `X-Forwarded-For`.
pub(crate) fn client_address(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(peer) {
        return Some(peer);
    }
    // Several header lines are one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that does not parse was not written by a proxy we trust
        // (they write addresses): stop at the last one that did.
        let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    Some(client)
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.7`, what a dual-stack socket reports)
/// as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40_000))
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12:3456::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "nonsense", "10.0.0.0/x", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(net.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(
            client_address(peer("203.0.113.5"), &headers, &[]),
            ip("203.0.113.5")
        );
        let proxies = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(peer("203.0.113.5"), &headers, &proxies),
            ip("203.0.113.5"),
            "a client outside the proxy range cannot pick its key"
        );
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers, &proxies),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_nearest_untrusted_hop_wins_over_what_the_client_wrote() {
        let proxies = nets(&["10.0.0.0/8"]);
        // The client sent "1.2.3.4, 5.6.7.8"; nginx appended the real peer;
        // an inner proxy appended nginx's address.
        let headers = forwarded(&["1.2.3.4, 5.6.7.8", "198.51.100.1, 10.0.0.3"]);
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers, &proxies),
            ip("198.51.100.1")
        );
        // Garbage before a trusted hop: the last hop we could read.
        let headers = forwarded(&["not-an-ip, 10.0.0.3"]);
        assert_eq!(
            client_address(peer("10.0.0.2"), &headers, &proxies),
            ip("10.0.0.3")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(peer("10.0.0.2"), &HeaderMap::new(), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(client_address(None, &HeaderMap::new(), &proxies), None);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a = AddrKey::of(ip("2001:db8:1:2::1"));
        let b = AddrKey::of(ip("2001:db8:1:2:ffff::9"));
        let c = AddrKey::of(ip("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            AddrKey::of(ip("::ffff:192.0.2.7")),
            AddrKey::of(ip("192.0.2.7"))
        );
        assert_eq!(AddrKey::of(None), AddrKey::Unknown);
    }
}
