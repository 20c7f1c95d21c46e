//! The device's DNS stub resolver (SPEC §1 `net.dns`, §3 step 1): a host name is asked
//! of the DNS servers in `net.dns`, in their order, AAAA and A at once, each query over
//! UDP and again over TCP when the answer comes truncated, each bounded by the job's
//! timeout. The messages are hickory-proto's codec.
//!
//! A server that answers both queries (NOERROR or NXDOMAIN) decides: its addresses,
//! AAAA first, then A, each in the order given; NXDOMAIN; or no address at all. A
//! server that fails either query (no answer, SERVFAIL, REFUSED, any other code, an
//! answer that is no DNS) is passed over for the next one; when every one failed, the
//! error names each server and what it did.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The port DNS servers listen on (`--dns-port` changes it, for tests).
pub const DNS_PORT: u16 = 53;

/// What one server did with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// NOERROR, with the addresses of the type asked for (perhaps none).
    Addresses(Vec<IpAddr>),
    NxDomain,
    /// Any other response code (SERVFAIL, REFUSED, …).
    Code(String),
    /// Nothing within the timeout.
    Silence,
    /// No DNS answer to this query: a socket error, or bytes that are not one.
    Broken(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Addresses(a) if a.is_empty() => f.write_str("no address"),
            Answer::Addresses(a) => {
                let all: Vec<String> = a.iter().map(|x| x.to_string()).collect();
                f.write_str(&all.join(", "))
            }
            Answer::NxDomain => f.write_str("NXDOMAIN"),
            Answer::Code(c) => f.write_str(c),
            Answer::Silence => f.write_str("no answer"),
            Answer::Broken(why) => f.write_str(why),
        }
    }
}

/// Why a name gives no address to connect to. Each reads after "cannot resolve NAME: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("no DNS server configured (net.dns is empty)")]
    NoServer,
    #[error("{0:?} is not a domain name")]
    BadName(String),
    #[error("NXDOMAIN from DNS server {server} (the name does not exist)")]
    NxDomain { server: IpAddr },
    #[error("DNS server {server} knows the name but gives no A or AAAA address")]
    NoAddress { server: IpAddr },
    #[error("no answer from any DNS server ({}) within {}", list(.servers), secs(*.timeout))]
    Silence {
        servers: Vec<IpAddr>,
        timeout: Duration,
    },
    /// Every server failed, at least one with an error answer: each named.
    #[error("{}", failures(.0))]
    Failed(Vec<(IpAddr, String)>),
}

fn list(servers: &[IpAddr]) -> String {
    let all: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
    all.join(", ")
}

fn failures(f: &[(IpAddr, String)]) -> String {
    let all: Vec<String> = f
        .iter()
        .map(|(s, what)| format!("DNS server {s}: {what}"))
        .collect();
    all.join("; ")
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The addresses of `host` from the first of `servers` (on `port`) that answers:
/// AAAA first, then A.
pub async fn lookup(
    host: &str,
    servers: &[IpAddr],
    port: u16,
    timeout: Duration,
) -> Result<Vec<IpAddr>, DnsError> {
    if servers.is_empty() {
        return Err(DnsError::NoServer);
    }
    let fqdn = if host.ends_with('.') {
        host.to_string()
    } else {
        format!("{host}.")
    };
    let name = Name::from_ascii(&fqdn).map_err(|_| DnsError::BadName(host.into()))?;
    let mut failed = Vec::new();
    for &server in servers {
        let at = SocketAddr::new(server, port);
        let (v6, v4) = tokio::join!(
            ask(at, &name, RecordType::AAAA, timeout),
            ask(at, &name, RecordType::A, timeout)
        );
        match (v6, v4) {
            (Answer::Addresses(mut v6), Answer::Addresses(v4)) => {
                v6.extend(v4);
                return if v6.is_empty() {
                    Err(DnsError::NoAddress { server })
                } else {
                    Ok(v6)
                };
            }
            (Answer::NxDomain, _) | (_, Answer::NxDomain) => {
                return Err(DnsError::NxDomain { server })
            }
            (Answer::Silence, Answer::Silence) => failed.push((server, None)),
            (a, b) => {
                // The one that went wrong (AAAA's when both did).
                let what = match (&a, &b) {
                    (Answer::Addresses(_), _) => format!("A: {b}"),
                    (_, Answer::Addresses(_)) => format!("AAAA: {a}"),
                    _ if a == b => a.to_string(),
                    _ => format!("AAAA: {a}, A: {b}"),
                };
                failed.push((server, Some(what)));
            }
        }
    }
    if failed.iter().all(|(_, what)| what.is_none()) {
        return Err(DnsError::Silence {
            servers: servers.to_vec(),
            timeout,
        });
    }
    Err(DnsError::Failed(
        failed
            .into_iter()
            .map(|(s, what)| {
                let what = what.unwrap_or_else(|| format!("no answer within {}", secs(timeout)));
                (s, what)
            })
            .collect(),
    ))
}

/// One query of `server`: over UDP, then over TCP when the answer is truncated; each
/// within `timeout`.
pub async fn ask(server: SocketAddr, name: &Name, qtype: RecordType, timeout: Duration) -> Answer {
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(name.clone(), qtype));
    let Ok(wire) = q.to_vec() else {
        return Answer::Broken(format!("cannot encode a query for {name}"));
    };
    let reply = match tokio::time::timeout(timeout, over_udp(server, &q, &wire)).await {
        Err(_) => return Answer::Silence,
        Ok(Err(why)) => return Answer::Broken(why),
        Ok(Ok(m)) => m,
    };
    let reply = if reply.metadata.truncation {
        match tokio::time::timeout(timeout, over_tcp(server, &q, &wire)).await {
            Err(_) => return Answer::Silence,
            Ok(Err(why)) => return Answer::Broken(format!("over TCP: {why}")),
            Ok(Ok(m)) => m,
        }
    } else {
        reply
    };
    read_answer(&reply, qtype)
}

/// What an answer says for a query of `qtype`.
fn read_answer(m: &Message, qtype: RecordType) -> Answer {
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Answer::NxDomain,
        ResponseCode::ServFail => return Answer::Code("SERVFAIL".into()),
        ResponseCode::Refused => return Answer::Code("REFUSED".into()),
        ResponseCode::FormErr => return Answer::Code("FORMERR".into()),
        ResponseCode::NotImp => return Answer::Code("NOTIMP".into()),
        other => return Answer::Code(format!("response code {}", u16::from(other))),
    }
    if m.metadata.truncation {
        return Answer::Broken("truncated over TCP".into());
    }
    // Every address of the type asked for, CNAME targets' too, in the order given.
    let addresses = m
        .answers
        .iter()
        .filter_map(|r| match (&r.data, qtype) {
            (RData::A(a), RecordType::A) => Some(IpAddr::V4(a.0)),
            (RData::AAAA(a), RecordType::AAAA) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    Answer::Addresses(addresses)
}

/// Whether `m` answers `q`: its ID, an answer, the same question.
fn answers(m: &Message, q: &Message) -> bool {
    m.metadata.id == q.metadata.id
        && m.metadata.message_type == MessageType::Response
        && (m.queries.is_empty() || m.queries == q.queries)
}

/// The answer over UDP; datagrams that do not answer this query are skipped.
async fn over_udp(server: SocketAddr, q: &Message, wire: &[u8]) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("UDP: {e}"))?;
    sock.connect(server)
        .await
        .map_err(|e| format!("UDP: {e}"))?;
    sock.send(wire).await.map_err(|e| format!("UDP: {e}"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).await.map_err(|e| format!("UDP: {e}"))?;
        match Message::from_vec(buf.get(..n).unwrap_or_default()) {
            Ok(m) if answers(&m, q) => return Ok(m),
            // Not an answer to this query (late, forged, or junk): wait on.
            _ => continue,
        }
    }
}

/// The answer over TCP (RFC 1035 §4.2.2: a two-byte length before each message).
async fn over_tcp(server: SocketAddr, q: &Message, wire: &[u8]) -> Result<Message, String> {
    let mut s = TcpStream::connect(server)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let len = u16::try_from(wire.len()).map_err(|_| "a query over 64 KiB".to_string())?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(wire);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    loop {
        let mut len = [0u8; 2];
        s.read_exact(&mut len)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        match Message::from_vec(&buf) {
            Ok(m) if answers(&m, q) => return Ok(m),
            Ok(_) => continue,
            Err(e) => return Err(format!("not a DNS answer: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_which() {
        let a: IpAddr = [192, 0, 2, 53].into();
        let b: IpAddr = "2001:db8::53".parse().expect("ip");
        let t = Duration::from_secs(6);
        assert_eq!(
            DnsError::NoServer.to_string(),
            "no DNS server configured (net.dns is empty)"
        );
        assert_eq!(
            DnsError::Silence {
                servers: vec![a, b],
                timeout: t
            }
            .to_string(),
            "no answer from any DNS server (192.0.2.53, 2001:db8::53) within 6.0s"
        );
        assert_eq!(
            DnsError::Failed(vec![
                (a, "SERVFAIL".into()),
                (b, "no answer within 6.0s".into())
            ])
            .to_string(),
            "DNS server 192.0.2.53: SERVFAIL; DNS server 2001:db8::53: no answer within 6.0s"
        );
        assert!(DnsError::NxDomain { server: a }
            .to_string()
            .starts_with("NXDOMAIN"));
    }

    #[test]
    fn an_answer_is_read_for_its_type_only() {
        let mut m = Message::response(1, hickory_proto::op::OpCode::Query);
        let name = Name::from_ascii("a.test.").expect("name");
        for data in [
            RData::A(hickory_proto::rr::rdata::A([127, 0, 0, 1].into())),
            RData::AAAA(hickory_proto::rr::rdata::AAAA(
                std::net::Ipv6Addr::LOCALHOST,
            )),
        ] {
            m.add_answer(hickory_proto::rr::Record::from_rdata(name.clone(), 5, data));
        }
        assert_eq!(
            read_answer(&m, RecordType::A),
            Answer::Addresses(vec![[127, 0, 0, 1].into()])
        );
        m.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(
            read_answer(&m, RecordType::A),
            Answer::Code("SERVFAIL".into())
        );
    }
}
