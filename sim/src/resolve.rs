//! The device's name resolution, shared by every connection it makes (SMTP, POP3,
//! OCSP, CRL): the `--resolve` entries first, then IP literals (an IPv6 `%zone` named
//! or numbered), then the system resolver (SPEC §3 step 1).
//!
//! It knows nothing of who asks, so the SMTP layer (`net`) and the HTTP client of the
//! revocation check (`http`) both stand on it without knowing each other.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// Resolves `smtp.server` (host name, IPv4, or IPv6 with optional `%zone`).
pub async fn resolve(
    server: &str,
    port: u16,
    fixed: &[(String, IpAddr)],
) -> Result<Vec<SocketAddr>, String> {
    if let Some((_, ip)) = fixed.iter().find(|(n, _)| n.eq_ignore_ascii_case(server)) {
        return Ok(vec![SocketAddr::new(*ip, port)]);
    }
    if let Some((addr, zone)) = server.split_once('%') {
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("{server:?} is not an IPv6 address"))?;
        let scope = match zone.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                interface_index(zone).ok_or_else(|| format!("no network interface {zone:?}"))?
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
                Err(format!("host {server:?} has no address"))
            } else {
                Ok(v)
            }
        }
        Err(e) => Err(format!("cannot resolve {server:?}: {e}")),
    }
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}
