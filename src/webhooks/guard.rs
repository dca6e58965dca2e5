//! The SSRF guard: a webhook URL may only lead to a public address on an allowed port, unless
//! the operator allow-lists the network. The URL's name is resolved here, every address it
//! resolves to is checked, and the delivery connects to exactly those addresses (reqwest's
//! per-name override), so a second lookup cannot swap in another address (DNS rebinding).
//! Redirects are never followed (see `deliver`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;

use crate::config::Config;

/// Turns a host name into addresses. The system resolver in production; tests map names to
/// addresses of their choosing without a DNS server.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    /// # Errors
    /// When the name does not resolve.
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, port))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// Where webhooks may go.
#[derive(Clone)]
pub struct Guard {
    allow: Vec<IpNet>,
    ports: Vec<u16>,
    resolver: Arc<dyn Resolve>,
}

/// A URL checked: connect to `addrs` (all allowed) when asked for `host`.
#[derive(Clone, Debug)]
pub struct Destination {
    pub url: Url,
    /// The name to pin to `addrs`, when the URL names a host rather than an address.
    pub host: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

impl Guard {
    /// The guard the configuration describes, resolving with the system resolver.
    pub fn of(config: &Config) -> Self {
        Self::new(
            config.webhook_allow_cidrs.clone(),
            config.webhook_ports.clone(),
            Arc::new(SystemResolver),
        )
    }

    pub fn new(allow: Vec<IpNet>, ports: Vec<u16>, resolver: Arc<dyn Resolve>) -> Self {
        Self {
            allow,
            ports,
            resolver,
        }
    }

    /// Checks the URL's form only: scheme, port, host (no lookup).
    ///
    /// # Errors
    /// A message saying what is wrong, meant for the `url` field.
    pub fn parse(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must use http or https".into());
        }
        if url.host().is_none() {
            return Err("has no host".into());
        }
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.ports.contains(&port) {
            return Err(format!(
                "uses port {port}; webhooks may use ports {:?} (RAMPART_WEBHOOK_PORTS)",
                self.ports
            ));
        }
        Ok(url)
    }

    /// Parses the URL, resolves its host and checks every address.
    ///
    /// # Errors
    /// A message saying why the URL is refused, meant for the `url` field.
    pub async fn check(&self, raw: &str) -> Result<Destination, String> {
        let url = self.parse(raw)?;
        let port = url.port_or_known_default().unwrap_or(0);
        let (host, ips) = match url.host() {
            Some(url::Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)]),
            Some(url::Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)]),
            Some(url::Host::Domain(name)) => {
                let ips = self
                    .resolver
                    .resolve(name, port)
                    .await
                    .map_err(|e| format!("host {name:?} does not resolve: {e}"))?;
                if ips.is_empty() {
                    return Err(format!("host {name:?} does not resolve"));
                }
                (Some(name.to_string()), ips)
            }
            None => return Err("has no host".into()),
        };
        for ip in &ips {
            if let Some(kind) = forbidden(*ip) {
                if !self.allow.iter().any(|net| net.contains(ip)) {
                    return Err(format!(
                        "leads to {ip}, {kind}; webhooks reach only public addresses unless \
                         the operator allows the network (RAMPART_WEBHOOK_ALLOW_CIDRS)"
                    ));
                }
            }
        }
        Ok(Destination {
            url,
            host,
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        })
    }
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_net(ip: Ipv4Addr, base: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(base)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const NETS: &[([u8; 4], u32, &str)] = &[
        ([169, 254, 169, 254], 32, "a cloud metadata address"),
        ([0, 0, 0, 0], 8, "an unspecified address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([100, 64, 0, 0], 10, "a shared (CGNAT) address"),
        ([192, 0, 0, 0], 24, "a reserved address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    NETS.iter()
        .find(|(base, prefix, _)| in_net(ip, *base, *prefix))
        .map(|(_, _, kind)| *kind)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if s[0..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some("an IPv4-mapped address");
    }
    if s[0..6] == [0, 0, 0, 0, 0, 0] {
        return Some("an IPv4-compatible address");
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        return Some("a NAT64 address");
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("a unique-local address"),
        x if x & 0xffc0 == 0xfe80 => Some("a link-local address"),
        x if x & 0xffc0 == 0xfec0 => Some("a site-local address"),
        x if x & 0xff00 == 0xff00 => Some("a multicast address"),
        0x2001 if s[1] == 0x0db8 => Some("a documentation address"),
        0x2001 if s[1] == 0 => Some("a Teredo address"),
        0x2002 => Some("a 6to4 address"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Names mapped to addresses, as a DNS server would answer.
    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    #[async_trait::async_trait]
    impl Resolve for Table {
        async fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
            self.0
                .get(host)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))
        }
    }

    const REFUSED: &[&str] = &[
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.254",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "ff02::1",
    ];
    const PUBLIC: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "192.169.0.1",
        "2606:4700:4700::1111",
    ];

    fn guard(allow: &[&str]) -> Guard {
        let mut names: HashMap<&'static str, Vec<IpAddr>> = HashMap::new();
        for ip in REFUSED.iter().chain(PUBLIC) {
            let name: &'static str =
                Box::leak(format!("h{}.example", ip.replace([':', '.'], "-")).into_boxed_str());
            names.insert(name, vec![ip.parse().unwrap()]);
        }
        names.insert(
            "mixed.example",
            vec!["8.8.8.8".parse().unwrap(), "10.0.0.1".parse().unwrap()],
        );
        Guard::new(
            allow.iter().map(|n| n.parse().unwrap()).collect(),
            vec![80, 443],
            Arc::new(Table(names)),
        )
    }

    fn literal(ip: &str) -> String {
        if ip.contains(':') {
            format!("https://[{ip}]/hook")
        } else {
            format!("https://{ip}/hook")
        }
    }

    fn named(ip: &str) -> String {
        format!("https://h{}.example/hook", ip.replace([':', '.'], "-"))
    }

    #[tokio::test]
    async fn non_public_addresses_are_refused_as_literals_and_behind_names() {
        let g = guard(&[]);
        for ip in REFUSED {
            for url in [literal(ip), named(ip)] {
                let err = g.check(&url).await.expect_err(&url);
                assert!(err.contains("leads to"), "{url}: {err}");
            }
        }
        for ip in PUBLIC {
            for url in [literal(ip), named(ip)] {
                let dest = g.check(&url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
                assert_eq!(dest.addrs[0].ip(), ip.parse::<IpAddr>().unwrap());
            }
        }
    }

    #[tokio::test]
    async fn a_name_with_one_private_address_among_public_ones_is_refused() {
        let err = guard(&[])
            .check("https://mixed.example/")
            .await
            .unwrap_err();
        assert!(err.contains("10.0.0.1"), "{err}");
    }

    #[tokio::test]
    async fn the_resolved_addresses_are_pinned_to_the_name() {
        let dest = guard(&[]).check(&named("8.8.8.8")).await.unwrap();
        assert_eq!(dest.host.as_deref(), Some("h8-8-8-8.example"));
        assert_eq!(
            dest.addrs,
            vec!["8.8.8.8:443".parse::<SocketAddr>().unwrap()]
        );
        let dest = guard(&[]).check("http://8.8.8.8/").await.unwrap();
        assert_eq!(dest.host, None);
        assert_eq!(
            dest.addrs,
            vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
        );
    }

    #[tokio::test]
    async fn an_allow_listed_network_is_reachable_and_only_it() {
        let g = guard(&["127.0.0.0/8", "fd00:ec2::254/128"]);
        assert!(g.check("http://127.0.0.1/").await.is_ok());
        assert!(g.check(&named("127.1.2.3")).await.is_ok());
        assert!(g.check("https://[fd00:ec2::254]/").await.is_ok());
        assert!(g.check("http://10.1.2.3/").await.is_err());
        assert!(g.check("http://169.254.169.254/").await.is_err());
    }

    #[tokio::test]
    async fn schemes_ports_and_unknown_names_are_refused() {
        let g = guard(&[]);
        for url in [
            "ftp://8.8.8.8/",
            "file:///etc/passwd",
            "gopher://8.8.8.8/",
            "https://8.8.8.8:8443/",
            "http://8.8.8.8:22/",
            "not a url",
            "https://nowhere.example/",
        ] {
            assert!(g.check(url).await.is_err(), "{url}");
        }
        assert!(g.check("http://8.8.8.8:443/").await.is_ok());
    }

    #[tokio::test]
    async fn localhost_resolved_by_the_system_is_refused() {
        let g = Guard::new(Vec::new(), vec![80, 443], Arc::new(SystemResolver));
        let err = g.check("http://localhost/hook").await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }
}
