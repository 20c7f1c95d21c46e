//! A fake DNS server for the device's name resolution (SPEC §1 `net.dns`, §3 step 1):
//! UDP and TCP on one port, scripted answers per name (A and AAAA addresses in a given
//! order) and faults per name (NXDOMAIN, SERVFAIL, REFUSED, silence, a delay, a
//! truncated UDP answer), and a record of every query. The messages are hickory-proto's
//! codec; this module only decides what to answer.
//!
//! - A name matches case-insensitively, with or without its trailing dot. A name the
//!   script does not list is answered NXDOMAIN; a listed name asked for another type
//!   (MX, TXT, …) gets an empty answer (NOERROR, no records).
//! - A `delay_ms` is device time, divided by the time scale as the other servers'
//!   `delay` faults are; the answer (or the fault) follows it.
//! - `truncate` answers over UDP with the TC bit and no records, so that the client
//!   asks again over TCP, where the whole answer is served. A UDP answer larger than the
//!   client's limit (512 bytes, or its EDNS payload size) is truncated the same way.
//! - The server answers queries only (QR = 0): an opcode other than QUERY gets
//!   NOTIMP, a message that is not DNS FORMERR (when it has an ID to answer to).
//!
//! ```toml
//! [dns]
//! [[dns.names]]
//! name = "mx.hil.test"
//! addresses = ["::1", "127.0.0.1"]     # AAAA then A, each in this order
//! [[dns.names]]
//! name = "slow.hil.test"
//! addresses = ["127.0.0.1"]
//! delay_ms = 3000
//! fault = "truncate"                   # or nxdomain, servfail, refused, silence
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{JoinHandle, JoinSet};

/// Queries kept in the record at most; later ones are counted, not kept.
pub const MAX_RECORDED: usize = 10_000;
/// The TTL of the records served when the script gives none.
pub const DEFAULT_TTL: u32 = 60;
/// How long a TCP connection may stay idle before the server closes it (real time).
const TCP_IDLE: Duration = Duration::from_secs(30);
/// The largest UDP answer a client without EDNS takes (RFC 1035 §4.2.1).
const UDP_LIMIT: usize = 512;
/// The EDNS payload size the server announces.
const EDNS_PAYLOAD: u16 = 1232;

/// A fault the script sets on a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsFault {
    /// Answer NXDOMAIN (the name does not exist).
    Nxdomain,
    /// Answer SERVFAIL.
    Servfail,
    /// Answer REFUSED.
    Refused,
    /// Answer nothing at all, on either transport.
    Silence,
    /// Over UDP answer with the TC bit and no records; over TCP the whole answer.
    Truncate,
}

/// What the server says about one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSpec {
    /// The name, case-insensitive, the trailing dot optional.
    pub name: String,
    /// The addresses: an A query is answered with the IPv4 ones, an AAAA query with
    /// the IPv6 ones, each in this order.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// A fault instead of (or, for `truncate`, on top of) the answer.
    #[serde(default)]
    pub fault: Option<DnsFault>,
    /// Wait this long (device ms, divided by the time scale) before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

impl NameSpec {
    /// A name answered with `addresses`, no fault.
    pub fn addresses(name: &str, addresses: &[IpAddr]) -> NameSpec {
        NameSpec {
            name: name.into(),
            addresses: addresses.to_vec(),
            fault: None,
            delay_ms: 0,
        }
    }

    /// A name answered with `fault`.
    pub fn fault(name: &str, fault: DnsFault) -> NameSpec {
        NameSpec {
            name: name.into(),
            addresses: Vec::new(),
            fault: Some(fault),
            delay_ms: 0,
        }
    }
}

/// The script of the fake DNS server: the `[dns]` part of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    #[serde(default)]
    pub names: Vec<NameSpec>,
    /// The TTL of every record served, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    DEFAULT_TTL
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            names: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

/// Why a DNS script cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsConfigError {
    #[error("[dns] names[{index}]: {name:?} is not a domain name: {why}")]
    BadName {
        index: usize,
        name: String,
        why: String,
    },
    #[error("[dns] names[{index}]: {name:?} is listed twice (names match case-insensitively, with or without the trailing dot)")]
    Twice { index: usize, name: String },
}

/// A name as the table keys it: lower case, no trailing dot.
fn key_of(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl DnsConfig {
    /// Checks the script: every name a domain name, none listed twice.
    pub fn check(&self) -> Result<(), DnsConfigError> {
        self.table().map(|_| ())
    }

    fn table(&self) -> Result<Table, DnsConfigError> {
        let mut names = HashMap::new();
        for (index, n) in self.names.iter().enumerate() {
            let bad = |why: String| DnsConfigError::BadName {
                index,
                name: n.name.clone(),
                why,
            };
            if n.name.is_empty() || n.name == "." {
                return Err(bad("empty".into()));
            }
            Name::from_ascii(&n.name).map_err(|e| bad(e.to_string()))?;
            if names.insert(key_of(&n.name), n.clone()).is_some() {
                return Err(DnsConfigError::Twice {
                    index,
                    name: n.name.clone(),
                });
            }
        }
        Ok(Table {
            names,
            ttl: self.ttl,
        })
    }
}

/// The script, keyed for lookup.
#[derive(Debug, Default)]
struct Table {
    names: HashMap<String, NameSpec>,
    ttl: u32,
}

/// How a query came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What the server gave a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Given {
    /// NOERROR with these addresses (none: the name exists, without this type).
    Addresses {
        addresses: Vec<IpAddr>,
    },
    Nxdomain,
    Servfail,
    Refused,
    /// No answer at all.
    Silence,
    /// TC set, no records (UDP).
    Truncated,
    /// The message was not a DNS query the server could read (FORMERR when it had an
    /// ID to answer to).
    Formerr,
    /// An opcode other than QUERY (NOTIMP).
    Notimp,
    /// A message with the QR bit set (an answer, not a query): ignored.
    Ignored,
}

impl std::fmt::Display for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Given::Addresses { addresses } if addresses.is_empty() => f.write_str("no records"),
            Given::Addresses { addresses } => {
                let all: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
                f.write_str(&all.join(", "))
            }
            Given::Nxdomain => f.write_str("NXDOMAIN"),
            Given::Servfail => f.write_str("SERVFAIL"),
            Given::Refused => f.write_str("REFUSED"),
            Given::Silence => f.write_str("no answer (silence)"),
            Given::Truncated => f.write_str("truncated (TC)"),
            Given::Formerr => f.write_str("FORMERR"),
            Given::Notimp => f.write_str("NOTIMP"),
            Given::Ignored => f.write_str("ignored (not a query)"),
        }
    }
}

/// One query the server received, and what it gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQuery {
    /// The name as asked (its case kept, with its trailing dot); empty when the
    /// message could not be read.
    pub name: String,
    /// `A`, `AAAA`, `MX`, … (empty when the message could not be read).
    pub qtype: String,
    pub transport: Transport,
    /// The client's address.
    pub from: SocketAddr,
    pub given: Given,
    /// The delay before the answer (device ms).
    pub delay_ms: u64,
}

/// `udp A mx.hil.test. from 127.0.0.1:5353: 127.0.0.1` (a transcript line).
impl std::fmt::Display for DnsQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} from {}: {}",
            self.transport.name(),
            self.qtype,
            self.name,
            self.from,
            self.given
        )?;
        if self.delay_ms > 0 {
            write!(f, " after {} ms", self.delay_ms)?;
        }
        Ok(())
    }
}

/// What to send back for one message.
#[derive(Debug)]
struct Reply {
    /// The answer's bytes (None: say nothing).
    wire: Option<Vec<u8>>,
    delay_ms: u64,
    name: String,
    qtype: String,
    given: Given,
}

impl Reply {
    fn silent(given: Given) -> Reply {
        Reply {
            wire: None,
            delay_ms: 0,
            name: String::new(),
            qtype: String::new(),
            given,
        }
    }
}

/// A header-only answer with `code` to a message whose ID is `raw`'s first two
/// bytes, if it has them and is not itself an answer.
fn header_only(raw: &[u8], code: ResponseCode, given: Given) -> Reply {
    let (Some(hi), Some(lo), Some(flags)) = (raw.first(), raw.get(1), raw.get(2)) else {
        return Reply::silent(Given::Ignored);
    };
    if flags & 0x80 != 0 {
        return Reply::silent(Given::Ignored);
    }
    let id = u16::from_be_bytes([*hi, *lo]);
    let wire = Message::error_msg(id, OpCode::Query, code).to_vec().ok();
    Reply {
        wire,
        ..Reply::silent(given)
    }
}

/// The answer to `raw` (one DNS message) under `table`, over `transport`.
fn respond(table: &Table, raw: &[u8], transport: Transport) -> Reply {
    let Ok(req) = Message::from_vec(raw) else {
        return header_only(raw, ResponseCode::FormErr, Given::Formerr);
    };
    if req.metadata.message_type != MessageType::Query {
        return Reply::silent(Given::Ignored);
    }
    if req.metadata.op_code != OpCode::Query {
        return header_only(raw, ResponseCode::NotImp, Given::Notimp);
    }
    let [query] = req.queries.as_slice() else {
        return header_only(raw, ResponseCode::FormErr, Given::Formerr);
    };
    let name = query.name().to_ascii();
    let qtype = query.query_type();
    let spec = table.names.get(&key_of(&name));
    let (code, given) = match spec {
        None => (ResponseCode::NXDomain, Given::Nxdomain),
        Some(s) => match s.fault {
            Some(DnsFault::Nxdomain) => (ResponseCode::NXDomain, Given::Nxdomain),
            Some(DnsFault::Servfail) => (ResponseCode::ServFail, Given::Servfail),
            Some(DnsFault::Refused) => (ResponseCode::Refused, Given::Refused),
            Some(DnsFault::Silence) => (ResponseCode::NoError, Given::Silence),
            Some(DnsFault::Truncate) if transport == Transport::Udp => {
                (ResponseCode::NoError, Given::Truncated)
            }
            Some(DnsFault::Truncate) | None => (
                ResponseCode::NoError,
                Given::Addresses {
                    addresses: of_type(&s.addresses, qtype),
                },
            ),
        },
    };
    let mut reply = Reply {
        wire: None,
        delay_ms: spec.map_or(0, |s| s.delay_ms),
        name,
        qtype: qtype.to_string(),
        given,
    };
    if reply.given == Given::Silence {
        return reply;
    }
    let mut msg = answer(&req, query, code, &reply.given, table.ttl);
    if reply.given == Given::Truncated {
        msg = msg.truncate();
    }
    let mut wire = msg.to_vec().ok();
    // A UDP answer longer than the client takes is cut to its header and question.
    let limit = req
        .edns
        .as_ref()
        .map_or(UDP_LIMIT, |e| usize::from(e.max_payload()).max(UDP_LIMIT));
    if transport == Transport::Udp && wire.as_ref().is_some_and(|w| w.len() > limit) {
        wire = msg.truncate().to_vec().ok();
        reply.given = Given::Truncated;
    }
    reply.wire = wire;
    reply
}

/// The addresses of `addresses` an answer of type `qtype` carries, in order.
fn of_type(addresses: &[IpAddr], qtype: RecordType) -> Vec<IpAddr> {
    addresses
        .iter()
        .copied()
        .filter(|a| match qtype {
            RecordType::A => a.is_ipv4(),
            RecordType::AAAA => a.is_ipv6(),
            _ => false,
        })
        .collect()
}

/// The response message to `req`'s `query`.
fn answer(req: &Message, query: &Query, code: ResponseCode, given: &Given, ttl: u32) -> Message {
    let mut msg = Message::response(req.metadata.id, OpCode::Query);
    msg.metadata.response_code = code;
    msg.metadata.authoritative = true;
    msg.metadata.recursion_desired = req.metadata.recursion_desired;
    msg.metadata.recursion_available = true;
    msg.metadata.checking_disabled = req.metadata.checking_disabled;
    msg.add_query(query.clone());
    if let Given::Addresses { addresses } = given {
        for a in addresses {
            let data = match a {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            msg.add_answer(Record::from_rdata(query.name().clone(), ttl, data));
        }
    }
    if req.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        msg.set_edns(edns);
    }
    msg
}

/// Why the DNS server did not start.
#[derive(Debug, thiserror::Error)]
pub enum DnsStartError {
    #[error(transparent)]
    Config(#[from] DnsConfigError),
    #[error("DNS server: cannot listen on {bind} ({transport}): {source}", transport = .transport.name())]
    Listen {
        bind: SocketAddr,
        transport: Transport,
        source: std::io::Error,
    },
}

/// What the listeners share: the script, the record and the time scale.
struct Shared {
    table: RwLock<Arc<Table>>,
    record: Mutex<Log>,
    time_scale: f64,
}

/// The queries kept, and how many more came past [`MAX_RECORDED`].
#[derive(Default)]
struct Log {
    queries: Vec<DnsQuery>,
    dropped: u64,
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        Arc::clone(&self.table.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn scaled(&self, device_ms: u64) -> Duration {
        Duration::from_secs_f64(device_ms as f64 / 1000.0 / self.time_scale.max(1e-6))
    }

    /// Answers `raw`, notes it, and says what to send after how long.
    fn handle(
        &self,
        raw: &[u8],
        transport: Transport,
        from: SocketAddr,
    ) -> (Option<Vec<u8>>, Duration) {
        let reply = respond(&self.table(), raw, transport);
        let mut record = self.record.lock().unwrap_or_else(|p| p.into_inner());
        if record.queries.len() < MAX_RECORDED {
            record.queries.push(DnsQuery {
                name: reply.name,
                qtype: reply.qtype,
                transport,
                from,
                given: reply.given,
                delay_ms: reply.delay_ms,
            });
        } else {
            record.dropped += 1;
        }
        (reply.wire, self.scaled(reply.delay_ms))
    }
}

/// A running fake DNS server: UDP and TCP on one port. Dropping it stops both.
pub struct DnsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds UDP and TCP on the same port of `bind` (port 0: a free port both are free on).
async fn bind_both(bind: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsStartError> {
    let err = |transport, source| DnsStartError::Listen {
        bind,
        transport,
        source,
    };
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(bind)
            .await
            .map_err(|e| err(Transport::Udp, e))?;
        let at = udp.local_addr().map_err(|e| err(Transport::Udp, e))?;
        match TcpListener::bind(at).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // The free UDP port is taken on TCP: try another, unless it was asked for.
            Err(e) if bind.port() == 0 && e.kind() == std::io::ErrorKind::AddrInUse => {
                last = Some(e)
            }
            Err(e) => return Err(err(Transport::Tcp, e)),
        }
    }
    Err(err(
        Transport::Tcp,
        last.unwrap_or_else(|| std::io::Error::other("no port free on both UDP and TCP")),
    ))
}

impl DnsServer {
    /// Starts the server on `bind` (port 0: any port free on both UDP and TCP), serving
    /// `config`; delays are divided by `time_scale`.
    pub async fn start(
        bind: SocketAddr,
        config: &DnsConfig,
        time_scale: f64,
    ) -> Result<DnsServer, DnsStartError> {
        let table = config.table()?;
        let (udp, tcp) = bind_both(bind).await?;
        let addr = udp.local_addr().map_err(|source| DnsStartError::Listen {
            bind,
            transport: Transport::Udp,
            source,
        })?;
        let shared = Arc::new(Shared {
            table: RwLock::new(Arc::new(table)),
            record: Mutex::new(Log::default()),
            time_scale,
        });
        let tasks = vec![
            tokio::spawn(serve_udp(Arc::new(udp), Arc::clone(&shared))),
            tokio::spawn(serve_tcp(tcp, Arc::clone(&shared))),
        ];
        Ok(DnsServer {
            addr,
            shared,
            tasks,
        })
    }

    /// The address (UDP and TCP) to point a client at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the script (a new case); queries already answered stay in the record.
    pub fn set_config(&self, config: &DnsConfig) -> Result<(), DnsConfigError> {
        let table = Arc::new(config.table()?);
        *self.shared.table.write().unwrap_or_else(|p| p.into_inner()) = table;
        Ok(())
    }

    /// The queries received since the last take, oldest first, and empties the record.
    pub fn take(&self) -> Vec<DnsQuery> {
        let mut r = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        r.dropped = 0;
        std::mem::take(&mut r.queries)
    }

    /// The queries received since the last take, without taking them.
    pub fn queries(&self) -> Vec<DnsQuery> {
        let r = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        r.queries.clone()
    }

    /// How many queries came past [`MAX_RECORDED`] since the last take (not kept).
    pub fn dropped(&self) -> u64 {
        let r = self.shared.record.lock().unwrap_or_else(|p| p.into_inner());
        r.dropped
    }
}

async fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    // Answers wait their delay here; dropping the set (the server stops) ends them.
    let mut pending = JoinSet::new();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            // An error of one datagram (an ICMP message reported late): go on.
            Err(_) => continue,
        };
        while pending.try_join_next().is_some() {}
        let (wire, delay) = shared.handle(buf.get(..n).unwrap_or_default(), Transport::Udp, from);
        let Some(wire) = wire else { continue };
        let sock = Arc::clone(&sock);
        pending.spawn(async move {
            tokio::time::sleep(delay).await;
            // A client gone is no error of the server's.
            let _ = sock.send_to(&wire, from).await;
        });
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        while conns.try_join_next().is_some() {}
        conns.spawn(serve_conn(stream, from, Arc::clone(&shared)));
    }
}

/// One TCP connection: length-prefixed messages (RFC 1035 §4.2.2), answered in turn,
/// until the client closes or stays idle for [`TCP_IDLE`].
async fn serve_conn(mut stream: TcpStream, from: SocketAddr, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let (wire, delay) = shared.handle(&msg, Transport::Tcp, from);
        let Some(wire) = wire else { continue };
        tokio::time::sleep(delay).await;
        let Ok(n) = u16::try_from(wire.len()) else {
            return;
        };
        let mut out = n.to_be_bytes().to_vec();
        out.extend_from_slice(&wire);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: Vec<NameSpec>) -> Table {
        DnsConfig { names, ttl: 30 }.table().expect("valid")
    }

    fn query(name: &str, t: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
        m.to_vec().expect("encode")
    }

    fn decoded(r: &Reply) -> Message {
        Message::from_vec(r.wire.as_ref().expect("an answer")).expect("decodes")
    }

    #[test]
    fn names_match_without_case_or_trailing_dot() {
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        let t = table(vec![NameSpec::addresses("Mx.Hil.Test.", &[v6, v4])]);
        for name in ["mx.hil.test", "MX.HIL.TEST.", "mx.HIL.test."] {
            let r = respond(&t, &query(name, RecordType::A), Transport::Udp);
            let m = decoded(&r);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
            assert_eq!(m.answers.len(), 1);
            assert_eq!(
                r.given,
                Given::Addresses {
                    addresses: vec![v4]
                }
            );
            assert!(m.metadata.recursion_desired && m.metadata.authoritative);
        }
        let r = respond(&t, &query("mx.hil.test", RecordType::AAAA), Transport::Tcp);
        assert_eq!(
            r.given,
            Given::Addresses {
                addresses: vec![v6]
            }
        );
        let r = respond(&t, &query("mx.hil.test", RecordType::MX), Transport::Udp);
        assert_eq!(r.given, Given::Addresses { addresses: vec![] });
        let r = respond(&t, &query("other.hil.test", RecordType::A), Transport::Udp);
        assert_eq!(r.given, Given::Nxdomain);
        assert_eq!(decoded(&r).metadata.response_code, ResponseCode::NXDomain);
    }

    #[test]
    fn junk_is_answered_formerr_or_ignored_and_never_panics() {
        let t = table(vec![]);
        let r = respond(&t, &[0x12, 0x34, 0x01, 0x00, 0xff], Transport::Udp);
        assert_eq!(r.given, Given::Formerr);
        let m = decoded(&r);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(respond(&t, &[], Transport::Udp).given, Given::Ignored);
        assert!(respond(&t, &[1], Transport::Tcp).wire.is_none());
        // An answer is not answered.
        let mut answer = query("a.test", RecordType::A);
        answer[2] |= 0x80;
        assert_eq!(respond(&t, &answer, Transport::Udp).given, Given::Ignored);
        // Any bytes at all: no panic.
        let mut x: u32 = 7;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len % 90)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = respond(&t, &bytes, Transport::Udp);
        }
    }

    #[test]
    fn a_bad_script_is_refused_naming_the_name() {
        let bad = DnsConfig {
            names: vec![NameSpec::addresses("a..b", &[])],
            ttl: 1,
        };
        assert!(bad.check().unwrap_err().to_string().contains("\"a..b\""));
        let twice = DnsConfig {
            names: vec![
                NameSpec::addresses("a.test", &[]),
                NameSpec::addresses("A.test.", &[]),
            ],
            ttl: 1,
        };
        assert!(matches!(
            twice.check(),
            Err(DnsConfigError::Twice { index: 1, .. })
        ));
        let empty = DnsConfig {
            names: vec![NameSpec::addresses("", &[])],
            ttl: 1,
        };
        assert!(empty.check().is_err());
    }

    #[test]
    fn the_script_reads_from_toml() {
        let text = "names = [{ name = \"a.test\", addresses = [\"::1\", \"127.0.0.1\"] },\n\
                    { name = \"b.test\", fault = \"servfail\", delay_ms = 10 }]\n";
        let c: DnsConfig = toml::from_str(text).expect("parses");
        assert_eq!(c.ttl, DEFAULT_TTL);
        assert_eq!(c.names[1].fault, Some(DnsFault::Servfail));
        assert_eq!(c.names[1].delay_ms, 10);
        assert!(toml::from_str::<DnsConfig>("names = [{ name = \"a\", colour = 1 }]").is_err());
        assert!(
            toml::from_str::<DnsConfig>("names = [{ name = \"a\", fault = \"lost\" }]").is_err()
        );
    }
}
