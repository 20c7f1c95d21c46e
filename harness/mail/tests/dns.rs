//! The fake DNS server over real sockets: a stub client built on hickory-proto's
//! codec asks over UDP, and over TCP when the answer comes truncated, as a device's
//! resolver does. Every answer and fault, both transports, and the record.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hil_mail::dns::{DnsConfig, DnsFault, DnsQuery, DnsServer, Given, NameSpec, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a test waits for an answer that should come.
const WAIT: Duration = Duration::from_secs(5);
/// How long a test listens for an answer that should not come.
const QUIET: Duration = Duration::from_millis(300);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP address")
}

fn query(name: &str, t: RecordType, edns: bool) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

/// One query over UDP; None when nothing came within `wait`.
async fn udp(server: SocketAddr, q: &Message, wait: Duration) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(&q.to_vec().expect("encode"), server)
        .await
        .expect("send");
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(wait, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    let m = Message::from_vec(&buf[..n]).expect("a DNS message");
    assert_eq!(m.metadata.id, q.metadata.id, "the answer's ID");
    Some(m)
}

/// One query over TCP; None when nothing came within `wait`.
async fn tcp(server: SocketAddr, q: &Message, wait: Duration) -> Option<Message> {
    let mut s = TcpStream::connect(server).await.expect("connect");
    let wire = q.to_vec().expect("encode");
    let mut out = (wire.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&wire);
    s.write_all(&out).await.expect("send");
    let read = async {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    let buf = tokio::time::timeout(wait, read).await.ok()??;
    let m = Message::from_vec(&buf).expect("a DNS message");
    assert_eq!(m.metadata.id, q.metadata.id, "the answer's ID");
    Some(m)
}

/// A stub resolver's way: UDP, then TCP when the answer is truncated.
async fn ask(server: SocketAddr, q: &Message) -> (Message, Transport) {
    let m = udp(server, q, WAIT).await.expect("an answer over UDP");
    if !m.metadata.truncation {
        return (m, Transport::Udp);
    }
    (
        tcp(server, q, WAIT).await.expect("an answer over TCP"),
        Transport::Tcp,
    )
}

fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

async fn server(names: Vec<NameSpec>, time_scale: f64) -> DnsServer {
    let config = DnsConfig {
        names,
        ..DnsConfig::default()
    };
    DnsServer::start("127.0.0.1:0".parse().expect("addr"), &config, time_scale)
        .await
        .expect("the DNS server starts")
}

#[tokio::test]
async fn addresses_in_their_order_over_udp_and_tcp() {
    let all = [
        ip("2001:db8::2"),
        ip("192.0.2.7"),
        ip("::1"),
        ip("127.0.0.1"),
    ];
    let s = server(vec![NameSpec::addresses("mx.hil.test", &all)], 1.0).await;
    for (name, t, want) in [
        (
            "mx.hil.test",
            RecordType::A,
            vec![ip("192.0.2.7"), ip("127.0.0.1")],
        ),
        (
            "MX.hil.TEST.",
            RecordType::AAAA,
            vec![ip("2001:db8::2"), ip("::1")],
        ),
    ] {
        let q = query(name, t, false);
        let by_udp = udp(s.addr(), &q, WAIT).await.expect("UDP answer");
        let by_tcp = tcp(s.addr(), &q, WAIT).await.expect("TCP answer");
        for m in [&by_udp, &by_tcp] {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(addresses(m), want, "{name} {t}");
            let asked = &m.queries[0];
            assert_eq!(asked.query_type(), t, "the question is echoed");
            assert_eq!(
                asked.name().to_ascii().trim_end_matches('.'),
                name.trim_end_matches('.')
            );
            assert!(m.answers.iter().all(|r| r.ttl == 60));
        }
    }
    // A type the name lacks: NOERROR, no records.
    let m = udp(s.addr(), &query("mx.hil.test", RecordType::MX, true), WAIT)
        .await
        .expect("answer");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(m.edns.is_some(), "an EDNS query gets an OPT record back");
    let record = s.take();
    let lines: Vec<String> = record
        .iter()
        .map(|q| format!("{} {} {}", q.transport.name(), q.qtype, q.given))
        .collect();
    assert_eq!(
        lines,
        [
            "udp A 192.0.2.7, 127.0.0.1",
            "tcp A 192.0.2.7, 127.0.0.1",
            "udp AAAA 2001:db8::2, ::1",
            "tcp AAAA 2001:db8::2, ::1",
            "udp MX no records",
        ]
    );
    assert_eq!(record[2].name, "MX.hil.TEST.", "the name as asked");
    assert!(s.take().is_empty(), "take empties the record");
}

#[tokio::test]
async fn error_answers_on_both_transports() {
    let s = server(
        vec![
            NameSpec::fault("gone.hil.test", DnsFault::Nxdomain),
            NameSpec::fault("broken.hil.test", DnsFault::Servfail),
            NameSpec::fault("private.hil.test", DnsFault::Refused),
        ],
        1.0,
    )
    .await;
    for (name, code, given) in [
        ("unknown.hil.test", ResponseCode::NXDomain, Given::Nxdomain),
        ("gone.hil.test", ResponseCode::NXDomain, Given::Nxdomain),
        ("broken.hil.test", ResponseCode::ServFail, Given::Servfail),
        ("private.hil.test", ResponseCode::Refused, Given::Refused),
    ] {
        let q = query(name, RecordType::A, false);
        for m in [
            udp(s.addr(), &q, WAIT).await.expect("UDP answer"),
            tcp(s.addr(), &q, WAIT).await.expect("TCP answer"),
        ] {
            assert_eq!(m.metadata.response_code, code, "{name}");
            assert!(m.answers.is_empty(), "{name}");
        }
        let seen = s.take();
        assert_eq!(seen.len(), 2, "{name}: {seen:?}");
        assert!(seen.iter().all(|q| q.given == given), "{name}: {seen:?}");
        assert_eq!(seen[0].transport, Transport::Udp);
        assert_eq!(seen[1].transport, Transport::Tcp);
    }
}

#[tokio::test]
async fn silence_answers_nothing_on_either_transport() {
    let s = server(
        vec![NameSpec::fault("quiet.hil.test", DnsFault::Silence)],
        1.0,
    )
    .await;
    let q = query("quiet.hil.test", RecordType::AAAA, false);
    assert!(udp(s.addr(), &q, QUIET).await.is_none());
    assert!(tcp(s.addr(), &q, QUIET).await.is_none());
    let seen: Vec<Given> = s.take().into_iter().map(|q| q.given).collect();
    assert_eq!(seen, [Given::Silence, Given::Silence]);
}

#[tokio::test]
async fn a_delay_is_device_time_over_the_time_scale() {
    let mut slow = NameSpec::addresses("slow.hil.test", &[ip("127.0.0.1")]);
    slow.delay_ms = 4000;
    let mut slow_fail = NameSpec::fault("slowfail.hil.test", DnsFault::Servfail);
    slow_fail.delay_ms = 2000;
    // 4000 device ms at 10× is 400 ms.
    let s = server(vec![slow, slow_fail], 10.0).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let q = query("slow.hil.test", RecordType::A, false);
        let t0 = Instant::now();
        let m = match transport {
            Transport::Udp => udp(s.addr(), &q, WAIT).await,
            Transport::Tcp => tcp(s.addr(), &q, WAIT).await,
        }
        .expect("an answer after the delay");
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(390),
            "{transport:?}: {took:?}"
        );
        assert!(took < Duration::from_secs(3), "{transport:?}: {took:?}");
        assert_eq!(addresses(&m), [ip("127.0.0.1")]);
    }
    let t0 = Instant::now();
    let m = udp(
        s.addr(),
        &query("slowfail.hil.test", RecordType::A, false),
        WAIT,
    )
    .await
    .expect("the fault after the delay");
    assert!(t0.elapsed() >= Duration::from_millis(190));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // A slow name holds up no other: a quick name answers while one waits.
    let waiting = tokio::spawn({
        let addr = s.addr();
        async move { udp(addr, &query("slow.hil.test", RecordType::A, false), WAIT).await }
    });
    let t0 = Instant::now();
    let m = udp(
        s.addr(),
        &query("other.hil.test", RecordType::A, false),
        WAIT,
    )
    .await
    .expect("NXDOMAIN");
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(waiting.await.expect("joined").is_some());
    let record = s.take();
    assert!(record
        .iter()
        .filter(|q| q.name == "slow.hil.test")
        .all(|q| q.delay_ms == 4000));
}

#[tokio::test]
async fn a_truncated_udp_answer_sends_the_client_to_tcp() {
    let all = [ip("::1"), ip("127.0.0.1"), ip("127.0.0.2")];
    let mut spec = NameSpec::addresses("big.hil.test", &all);
    spec.fault = Some(DnsFault::Truncate);
    let s = server(vec![spec], 1.0).await;
    let q = query("big.hil.test", RecordType::A, false);
    let first = udp(s.addr(), &q, WAIT).await.expect("UDP answer");
    assert!(first.metadata.truncation, "TC set");
    assert!(first.answers.is_empty());
    let (m, transport) = ask(s.addr(), &q).await;
    assert_eq!(transport, Transport::Tcp);
    assert!(!m.metadata.truncation);
    assert_eq!(addresses(&m), [ip("127.0.0.1"), ip("127.0.0.2")]);
    let seen: Vec<(Transport, Given)> = s
        .take()
        .into_iter()
        .map(|q| (q.transport, q.given))
        .collect();
    let full = Given::Addresses {
        addresses: vec![ip("127.0.0.1"), ip("127.0.0.2")],
    };
    assert_eq!(
        seen,
        [
            (Transport::Udp, Given::Truncated),
            (Transport::Udp, Given::Truncated),
            (Transport::Tcp, full),
        ]
    );
}

#[tokio::test]
async fn an_answer_too_big_for_udp_is_truncated_too() {
    // 40 AAAA records (28 bytes each, and the name) outgrow 512 bytes.
    let many: Vec<IpAddr> = (1..=40u16)
        .map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
        .collect();
    let s = server(vec![NameSpec::addresses("many.hil.test", &many)], 1.0).await;
    let (m, transport) = ask(s.addr(), &query("many.hil.test", RecordType::AAAA, false)).await;
    assert_eq!(transport, Transport::Tcp);
    assert_eq!(addresses(&m), many);
    // With EDNS the client takes more: the whole answer over UDP.
    let (m, transport) = ask(s.addr(), &query("many.hil.test", RecordType::AAAA, true)).await;
    assert_eq!(transport, Transport::Udp);
    assert_eq!(addresses(&m).len(), 40);
}

#[tokio::test]
async fn a_new_script_per_case_and_junk_on_the_wire() {
    let s = server(
        vec![NameSpec::addresses("a.hil.test", &[ip("127.0.0.1")])],
        1.0,
    )
    .await;
    let q = query("a.hil.test", RecordType::A, false);
    let (m, _) = ask(s.addr(), &q).await;
    assert_eq!(addresses(&m), [ip("127.0.0.1")]);
    s.set_config(&DnsConfig {
        names: vec![NameSpec::fault("a.hil.test", DnsFault::Refused)],
        ..DnsConfig::default()
    })
    .expect("a valid script");
    let (m, _) = ask(s.addr(), &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let bad = DnsConfig {
        names: vec![NameSpec::addresses("x..y", &[])],
        ..DnsConfig::default()
    };
    assert!(s.set_config(&bad).is_err(), "a bad script is refused");
    // Junk: a FORMERR over UDP, and the server still answers after it; over TCP too.
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    sock.send_to(b"\xab\xcd\x01junk", s.addr())
        .await
        .expect("send");
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(WAIT, sock.recv(&mut buf))
        .await
        .expect("an answer to junk")
        .expect("recv");
    let m = Message::from_vec(&buf[..n]).expect("DNS");
    assert_eq!(
        (m.metadata.id, m.metadata.response_code),
        (0xabcd, ResponseCode::FormErr)
    );
    let mut c = TcpStream::connect(s.addr()).await.expect("connect");
    c.write_all(b"\x00\x03abc").await.expect("send");
    let mut len = [0u8; 2];
    tokio::time::timeout(WAIT, c.read_exact(&mut len))
        .await
        .expect("an answer to junk over TCP")
        .expect("read");
    let (m, _) = ask(s.addr(), &q).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let record: Vec<DnsQuery> = s.take();
    assert!(
        record.iter().filter(|q| q.given == Given::Formerr).count() == 2,
        "{record:?}"
    );
}

#[tokio::test]
async fn udp_and_tcp_share_one_port_and_stop_with_the_server() {
    let s = server(vec![], 1.0).await;
    let addr = s.addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert!(tcp(addr, &query("x.test", RecordType::A, false), WAIT)
        .await
        .is_some());
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "TCP closed with the server"
    );
}
