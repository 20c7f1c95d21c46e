//! The device's name resolution, shared by every connection it makes (SMTP, POP3,
//! OCSP, CRL): the `--resolve` entries first, then IP literals (an IPv6 `%zone` named
//! or numbered), then the system resolver (SPEC §3 step 1).
//!
//! It knows nothing of who asks, so the SMTP layer (`net`) and the HTTP client of the
//! revocation check (`http`) both stand on it without knowing each other.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// Why a server name gives no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0:?} is not an IPv6 address")]
    NotIpv6(String),
    #[error("no network interface {0:?}")]
    NoInterface(String),
    #[error("host {0:?} has no address")]
    NoAddress(String),
    #[error("cannot resolve {host:?}: {source}")]
    Lookup {
        host: String,
        source: std::io::Error,
    },
}

/// Resolves a server name (host name, IPv4, or IPv6 with optional `%zone`).
pub async fn resolve(
    server: &str,
    port: u16,
    fixed: &[(String, IpAddr)],
) -> Result<Vec<SocketAddr>, ResolveError> {
    if let Some((_, ip)) = fixed.iter().find(|(n, _)| n.eq_ignore_ascii_case(server)) {
        return Ok(vec![SocketAddr::new(*ip, port)]);
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
        return Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))]);
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::net::lookup_host((server, port)).await {
        Ok(addrs) => {
            let v: Vec<SocketAddr> = addrs.collect();
            if v.is_empty() {
                Err(ResolveError::NoAddress(server.into()))
            } else {
                Ok(v)
            }
        }
        Err(source) => Err(ResolveError::Lookup {
            host: server.into(),
            source,
        }),
    }
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
