//! The address the fake servers listen on (`--bind`): IPv4, IPv6, or an IPv6
//! link-local address with its zone (`fe80::1%eth0`), which names the interface the
//! address is on and cannot be left out.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::str::FromStr;

/// A listening address, with the zone of a link-local IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAddr {
    ip: IpAddr,
    /// The interface index of the zone (0: none).
    scope_id: u32,
    /// The zone as the user wrote it (an interface name or a number).
    zone: Option<String>,
}

/// Whether `ip` is an IPv6 link-local unicast address (fe80::/10), which needs a zone.
pub fn is_link_local(ip: &Ipv6Addr) -> bool {
    (ip.segments()[0] & 0xffc0) == 0xfe80
}

/// The index of the network interface `name`, if there is one.
pub fn interface_index(name: &str) -> Option<u32> {
    // Linux and the BSDs list interfaces under /sys or answer if_nametoindex; the
    // sysfs file needs no unsafe code.
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    text.trim().parse().ok().filter(|i| *i != 0)
}

impl BindAddr {
    /// The IPv4 loopback address, 127.0.0.1.
    pub fn loopback() -> BindAddr {
        BindAddr::from(IpAddr::from([127, 0, 0, 1]))
    }

    /// The address without its zone.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The zone of a link-local address, as written.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    /// Whether this is the any-address (0.0.0.0 or ::).
    pub fn is_unspecified(&self) -> bool {
        self.ip.is_unspecified()
    }

    /// The socket address for `port`, with the zone's interface for a link-local one.
    pub fn socket(&self, port: u16) -> SocketAddr {
        match self.ip {
            IpAddr::V4(_) => SocketAddr::new(self.ip, port),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, self.scope_id)),
        }
    }

    /// How the address is written in a URL's host part (`[::1]`, `127.0.0.1`).
    pub fn url_host(&self) -> String {
        match self.ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match self.scope_id {
                0 => format!("[{v6}]"),
                // RFC 6874: the zone's % is written %25.
                _ => format!("[{v6}%25{}]", self.zone.as_deref().unwrap_or("")),
            },
        }
    }
}

impl From<IpAddr> for BindAddr {
    fn from(ip: IpAddr) -> BindAddr {
        BindAddr {
            ip,
            scope_id: 0,
            zone: None,
        }
    }
}

impl fmt::Display for BindAddr {
    /// As `smtp.server` takes it: `192.0.2.1`, `2001:db8::1`, `fe80::1%eth0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.zone {
            Some(z) => write!(f, "{}%{z}", self.ip),
            None => write!(f, "{}", self.ip),
        }
    }
}

/// Why a `--bind` address does not parse; each names the input and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindAddrError {
    #[error("{input:?} is not an IPv4 or IPv6 address (a link-local IPv6 address takes its zone: fe80::1%eth0)")]
    NotAnAddress { input: String },
    #[error("{input:?}: only an IPv6 link-local address takes a %zone")]
    ZoneOnIpv4 { input: String },
    #[error(
        "{input:?}: {ip} is not link-local (fe80::/10); only link-local addresses take a %zone"
    )]
    ZoneNotLinkLocal { input: String, ip: Ipv6Addr },
    #[error("{input:?}: the zone after % is empty")]
    EmptyZone { input: String },
    #[error("{input:?}: this machine has no network interface {zone:?} (see `ip link`)")]
    NoInterface { input: String, zone: String },
    #[error("{input:?} is link-local: name the interface it is on, e.g. {ip}%eth0")]
    ZoneMissing { input: String, ip: Ipv6Addr },
}

impl FromStr for BindAddr {
    type Err = BindAddrError;

    /// `127.0.0.1`, `::1`, `[::1]`, `fe80::1%eth0`, `fe80::1%3`.
    fn from_str(s: &str) -> Result<BindAddr, BindAddrError> {
        let input = || s.to_string();
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        let (addr, zone) = match bare.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (bare, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| BindAddrError::NotAnAddress { input: input() })?;
        match (ip, zone) {
            (IpAddr::V4(_), Some(_)) => Err(BindAddrError::ZoneOnIpv4 { input: input() }),
            (IpAddr::V6(v6), Some(z)) => {
                if !is_link_local(&v6) {
                    return Err(BindAddrError::ZoneNotLinkLocal {
                        input: input(),
                        ip: v6,
                    });
                }
                if z.is_empty() {
                    return Err(BindAddrError::EmptyZone { input: input() });
                }
                let scope_id = match z.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => interface_index(z).ok_or_else(|| BindAddrError::NoInterface {
                        input: input(),
                        zone: z.to_string(),
                    })?,
                };
                Ok(BindAddr {
                    ip,
                    scope_id,
                    zone: Some(z.to_string()),
                })
            }
            (IpAddr::V6(v6), None) if is_link_local(&v6) => Err(BindAddrError::ZoneMissing {
                input: input(),
                ip: v6,
            }),
            (ip, None) => Ok(BindAddr::from(ip)),
        }
    }
}

/// One address of one of this machine's network interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    pub interface: String,
    pub ip: IpAddr,
    pub prefix: u8,
}

/// Every address of this machine's interfaces (getifaddrs), IPv4 and IPv6.
pub fn local_addresses() -> Vec<LocalAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs; every
    // pointer read is checked for null and only read while the list is alive.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut p = head;
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let family = i32::from((*ifa.ifa_addr).sa_family);
            let (ip, prefix) = if family == libc::AF_INET {
                let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                let ip = IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes());
                let prefix = if ifa.ifa_netmask.is_null() {
                    32
                } else {
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                    u32::from_be(m.sin_addr.s_addr).count_ones() as u8
                };
                (ip, prefix)
            } else if family == libc::AF_INET6 {
                let a = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                let ip = IpAddr::from(a.sin6_addr.s6_addr);
                let prefix = if ifa.ifa_netmask.is_null() {
                    128
                } else {
                    let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in6);
                    m.sin6_addr
                        .s6_addr
                        .iter()
                        .map(|b| b.count_ones())
                        .sum::<u32>() as u8
                };
                (ip, prefix)
            } else {
                continue;
            };
            out.push(LocalAddr {
                interface: name,
                ip,
                prefix,
            });
        }
        libc::freeifaddrs(head);
    }
    out
}

/// The netmask of a `prefix`-bit IPv4 network, as a number.
pub fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// The network address of `ip` in its `prefix`-bit network.
pub fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v) => IpAddr::from(std::net::Ipv4Addr::from(u32::from(v) & mask_v4(prefix))),
        IpAddr::V6(v) => IpAddr::from(Ipv6Addr::from(u128::from(v) & mask_v6(prefix))),
    }
}

/// Whether `a` and `b` are in the same `prefix`-bit network.
pub fn same_network(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    a.is_ipv4() == b.is_ipv4() && network(a, prefix) == network(b, prefix)
}

/// A neighbour of `ip` in its `prefix`-bit network for a device to take: the next
/// address up, else the one below (an example for the bench, not a lease).
pub fn neighbour(ip: IpAddr, prefix: u8) -> Option<IpAddr> {
    let candidates: Vec<IpAddr> = match ip {
        IpAddr::V4(v) => {
            let n = u32::from(v);
            [n.checked_add(1), n.checked_sub(1)]
                .into_iter()
                .flatten()
                .map(|x| IpAddr::from(std::net::Ipv4Addr::from(x)))
                .collect()
        }
        IpAddr::V6(v) => {
            let n = u128::from(v);
            [n.checked_add(1), n.checked_sub(1)]
                .into_iter()
                .flatten()
                .map(|x| IpAddr::from(Ipv6Addr::from(x)))
                .collect()
        }
    };
    candidates.into_iter().find(|c| {
        same_network(*c, ip, prefix)
            && match c {
                // Not the network or broadcast address of an IPv4 network.
                IpAddr::V4(v4) if prefix < 31 => {
                    let host = u32::from(*v4) & !mask_v4(prefix);
                    host != 0 && host != !mask_v4(prefix)
                }
                _ => true,
            }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print() {
        let a: BindAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(a.to_string(), "127.0.0.1");
        assert_eq!(a.socket(25).to_string(), "127.0.0.1:25");
        let b: BindAddr = "[::1]".parse().unwrap();
        assert_eq!(b.to_string(), "::1");
        assert_eq!(b.socket(25).to_string(), "[::1]:25");
        assert_eq!(b.url_host(), "[::1]");
        let lo = interface_index("lo").expect("lo exists");
        let c: BindAddr = "fe80::1%lo".parse().unwrap();
        assert_eq!(c.to_string(), "fe80::1%lo");
        assert_eq!(c.zone(), Some("lo"));
        assert_eq!(c.socket(25).to_string(), format!("[fe80::1%{lo}]:25"));
        assert_eq!(c.url_host(), "[fe80::1%25lo]");
        let d: BindAddr = "fe80::1%7".parse().unwrap();
        assert_eq!(d.socket(1).to_string(), "[fe80::1%7]:1");
    }

    #[test]
    fn local_addresses_include_loopback() {
        let all = local_addresses();
        assert!(
            all.iter().any(|a| a.interface == "lo"
                && a.ip == IpAddr::from([127, 0, 0, 1])
                && a.prefix == 8),
            "{all:?}"
        );
    }

    #[test]
    fn networks_and_neighbours() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_network(ip("192.168.10.1"), ip("192.168.10.200"), 24));
        assert!(!same_network(ip("192.168.10.1"), ip("192.168.11.1"), 24));
        assert!(same_network(ip("fd77::1"), ip("fd77::2"), 64));
        assert!(!same_network(ip("fd77::1"), ip("10.0.0.1"), 0));
        assert_eq!(neighbour(ip("192.168.10.1"), 24), Some(ip("192.168.10.2")));
        assert_eq!(
            neighbour(ip("192.168.10.254"), 24),
            Some(ip("192.168.10.253"))
        );
        assert_eq!(neighbour(ip("fd77::1"), 64), Some(ip("fd77::2")));
        assert_eq!(neighbour(ip("10.0.0.1"), 32), None);
    }

    #[test]
    fn errors_name_the_input_and_the_rule() {
        for (input, says) in [
            ("localhost", "not an IPv4 or IPv6 address"),
            ("fe80::1", "name the interface"),
            ("fe80::1%", "zone after % is empty"),
            (
                "fe80::1%no-such-if0",
                "no network interface \"no-such-if0\"",
            ),
            ("2001:db8::1%lo", "not link-local"),
            ("10.0.0.1%lo", "only an IPv6 link-local"),
        ] {
            let e = input.parse::<BindAddr>().unwrap_err().to_string();
            assert!(e.contains(input), "{e}");
            assert!(e.contains(says), "{input}: {e}");
        }
    }
}
