//! The device's name resolution, shared by every connection it makes (SMTP, POP3,
//! OCSP, CRL), in this order (SPEC §3 step 1):
//!
//! 1. the `--resolve` entries;
//! 2. IP literals (an IPv6 `%zone` named or numbered);
//! 3. `localhost` (and names under `.localhost`): 127.0.0.1, then ::1, without asking
//!    (RFC 6761 §6.3);
//! 4. any other name through the DNS servers of `net.dns` ([`crate::dns`]): AAAA
//!    addresses first, then A, each in the order the server gave them.
//!
//! There is no system resolver: a device has only the servers it is given.
//!
//! It knows nothing of who asks, so the SMTP layer (`net`) and the HTTP client of the
//! revocation check (`http`) both stand on it without knowing each other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::dns::{self, DnsError};

/// How the device finds a server's addresses: what it was started with and the job's
/// settings.
#[derive(Debug, Clone)]
pub struct Names {
    /// Names resolved without asking (`--resolve`), lower case.
    pub fixed: Vec<(String, IpAddr)>,
    /// The DNS servers (`net.dns`), in order.
    pub dns: Vec<IpAddr>,
    /// The port they are asked on (`--dns-port`; 53).
    pub dns_port: u16,
    /// The bound on each DNS query (the job's timeout).
    pub timeout: Duration,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            fixed: Vec::new(),
            dns: Vec::new(),
            dns_port: dns::DNS_PORT,
            timeout: Duration::from_secs(60),
        }
    }
}

impl Names {
    /// Only the `--resolve` entries (and literals, and localhost); no DNS server.
    pub fn fixed(fixed: &[(String, IpAddr)]) -> Names {
        Names {
            fixed: fixed.to_vec(),
            ..Names::default()
        }
    }
}

/// Why a server name gives no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("no network interface {0:?}")]
    NoInterface(String),
    #[error("cannot resolve {host:?}: {source}")]
    Dns { host: String, source: DnsError },
}

/// A server's addresses, and how they were found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub addrs: Vec<SocketAddr>,
    /// Asked of the DNS servers (SPEC §3 step 1: each address is then tried in turn).
    pub by_dns: bool,
}

impl Resolved {
    fn given(addrs: Vec<SocketAddr>) -> Resolved {
        Resolved {
            addrs,
            by_dns: false,
        }
    }
}

/// Resolves a server name (host name, IPv4, or IPv6 with optional `%zone`).
pub async fn resolve(server: &str, port: u16, names: &Names) -> Result<Resolved, ResolveError> {
    if let Some((_, ip)) = names
        .fixed
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(server))
    {
        return Ok(Resolved::given(vec![SocketAddr::new(*ip, port)]));
    }
    if let Some((addr, zone)) = server.split_once('%') {
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| ResolveError::NotIpv6(server.into()))?;
        let scope = match zone.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                interface_index(zone).ok_or_else(|| ResolveError::NoInterface(zone.into()))?
            }
        };
        return Ok(Resolved::given(vec![SocketAddr::V6(SocketAddrV6::new(
            ip, port, 0, scope,
        ))]));
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(Resolved::given(vec![SocketAddr::new(ip, port)]));
    }
    if is_localhost(server) {
        let loopback = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        return Ok(Resolved::given(
            loopback
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect(),
        ));
    }
    match dns::lookup(server, &names.dns, names.dns_port, names.timeout).await {
        Ok(ips) => Ok(Resolved {
            addrs: ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            by_dns: true,
        }),
        Err(source) => Err(ResolveError::Dns {
            host: server.into(),
            source,
        }),
    }
}

/// `localhost` or a name under it, with or without the trailing dot (RFC 6761 §6.3).
fn is_localhost(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    n == "localhost" || n.ends_with(".localhost")
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn literals_fixed_names_and_localhost_ask_no_dns() {
        let names = Names::fixed(&[("mx.hil.test".into(), [127, 0, 0, 9].into())]);
        let r = run(resolve("MX.hil.test", 25, &names)).expect("fixed");
        assert_eq!(r.addrs, ["127.0.0.9:25".parse().expect("addr")]);
        assert!(!r.by_dns);
        let r = run(resolve("::1", 25, &names)).expect("literal");
        assert_eq!(r.addrs, ["[::1]:25".parse().expect("addr")]);
        let r = run(resolve("Localhost.", 25, &names)).expect("localhost");
        assert_eq!(r.addrs.len(), 2);
        assert_eq!(r.addrs[0], "127.0.0.1:25".parse().expect("addr"));
        assert!(!r.by_dns);
    }

    #[test]
    fn a_name_without_dns_servers_is_said_so() {
        let e = run(resolve("host.example.com", 25, &Names::default())).expect_err("no DNS");
        assert_eq!(
            e.to_string(),
            "cannot resolve \"host.example.com\": no DNS server configured (net.dns is empty)"
        );
    }
}
