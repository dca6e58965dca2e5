//! Who the client is behind reverse proxies: `X-Forwarded-For` is believed only as far as the
//! configured trusted proxies reach, so a client cannot pick its own address (and with it a
//! fresh rate-limit budget) by sending the header itself.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Whether `ip` is one of the configured trusted proxies (`Config::trusted_proxies`).
pub fn is_trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client's address: the socket's peer, unless that peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` address that is not a trusted proxy (every hop to its right was
/// added by a proxy we trust). When every hop is trusted, the left-most one; an unparsable hop
/// stops the walk at the last address known to be real.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &[IpNet]) -> Option<IpAddr> {
    let mut client = peer?.to_canonical();
    if !is_trusted(client, proxies) {
        return Some(client);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client, proxies) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let spoofed = headers(&["1.2.3.4"]);
        // Not from a proxy: the header is the client's own claim.
        assert_eq!(client_ip(ip("8.8.8.8"), &spoofed, &proxies), ip("8.8.8.8"));
        assert_eq!(client_ip(ip("8.8.8.8"), &spoofed, &[]), ip("8.8.8.8"));
        // From a proxy: the right-most untrusted hop, whatever the client prepended.
        let chain = headers(&["1.2.3.4, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &chain, &proxies),
            ip("203.0.113.7")
        );
        // Every hop trusted: the left-most.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&["10.1.1.1, 10.0.0.2"]), &proxies),
            ip("10.1.1.1")
        );
        // Garbage stops the walk at the last real address.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&["1.2.3.4, nonsense"]), &proxies),
            ip("10.0.0.1")
        );
        // IPv4-mapped peers count as their IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &headers(&["198.51.100.1"]), &proxies),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(None, &chain, &proxies), None);
    }
}
