//! SPEC §1 `net.dns` and §3 step 1 over real sockets: the device (`mfp-sim --console
//! tcp:… --dns-port P`) resolves `smtp.server` through the DNS servers it is given,
//! tries each address in turn, and fails with `connect` saying which when it cannot.
//! The DNS servers are small responders here (hickory-proto's codec, UDP and TCP on
//! one port, on 127.0.0.1 and 127.0.0.2); the SMTP server a small sink.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The device and its console.
struct Sim {
    _child: Kill,
    console: BufReader<TcpStream>,
}

impl Sim {
    /// `mfp-sim --console tcp:127.0.0.1:0 --time-scale 100 --dns-port PORT`: a
    /// 30-second timeout is 0.3 s.
    fn start(dns_port: u16) -> Sim {
        let port = dns_port.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mfp-sim"))
            .args(["--console", "tcp:127.0.0.1:0", "--time-scale", "100"])
            .args(["--dns-port", &port])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mfp-sim");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("first line");
        let addr = first
            .trim()
            .strip_prefix("console: tcp:")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_string();
        let s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Sim {
            _child: Kill(child),
            console: BufReader::new(s),
        }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.console.read_line(&mut l).expect("a console line");
        assert!(n > 0, "the console closed");
        l.trim_end().to_string()
    }

    fn status(&mut self, line: &str) -> String {
        self.console
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        loop {
            let l = self.line();
            if l == "OK" || l.starts_with("ERR ") {
                return l;
            }
        }
    }

    fn ok(&mut self, line: &str) {
        assert_eq!(self.status(line), "OK", "{line}");
    }

    /// Starts a scan and answers its end: `done …` or `failed CLASS DETAIL`.
    fn scan(&mut self) -> String {
        self.console
            .get_mut()
            .write_all(b"scan send a@hil.test 1\r\n")
            .expect("write");
        let mut job = None;
        loop {
            let l = self.line();
            if let Some(id) = l.strip_prefix("JOB ") {
                job = Some(format!("EVENT JOB {id} "));
            }
            if l.starts_with("ERR ") {
                panic!("scan refused: {l}");
            }
            if let Some(end) = job.as_deref().and_then(|p| l.strip_prefix(p)) {
                return end.to_string();
            }
        }
    }

    /// A device mailing to `server` on `port`, its DNS servers `dns`.
    fn mailing(dns_port: u16, server: &str, port: u16, dns: &str) -> Sim {
        let mut sim = Sim::start(dns_port);
        sim.ok(&format!(
            "apply smtp.server={server} smtp.port={port} net.dns={dns} \
             device.address=mfp@hil.test admin.address=admin@hil.test"
        ));
        sim
    }
}

/// What a responder does for one name.
#[derive(Clone)]
enum Says {
    Addresses(Vec<IpAddr>),
    Code(ResponseCode),
    Silence,
    /// TC over UDP, the addresses over TCP.
    Truncated(Vec<IpAddr>),
}

/// The queries a responder saw: (name, type, transport).
type Seen = Arc<Mutex<Vec<(String, String, &'static str)>>>;

fn seen(s: &Seen) -> Vec<(String, String, &'static str)> {
    s.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The answer to `raw` under `script` (None: say nothing).
fn answer(raw: &[u8], script: &[(&str, Says)], tcp: bool, log: &Seen) -> Option<Vec<u8>> {
    let req = Message::from_vec(raw).ok()?;
    let q = req.queries.first()?.clone();
    let name = q.name().to_ascii();
    log.lock().unwrap_or_else(|p| p.into_inner()).push((
        name.clone(),
        q.query_type().to_string(),
        if tcp { "tcp" } else { "udp" },
    ));
    let says = script
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim_end_matches('.')))
        .map(|(_, s)| s.clone())
        .unwrap_or(Says::Code(ResponseCode::NXDomain));
    let mut m = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = req.metadata.recursion_desired;
    m.add_query(q.clone());
    let addresses = match says {
        Says::Silence => return None,
        Says::Code(c) => {
            m.metadata.response_code = c;
            Vec::new()
        }
        Says::Truncated(_) if !tcp => {
            m.metadata.truncation = true;
            Vec::new()
        }
        Says::Truncated(a) | Says::Addresses(a) => a,
    };
    for a in addresses {
        let data = match (a, q.query_type()) {
            (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        m.add_answer(Record::from_rdata(q.name().clone(), 60, data));
    }
    m.to_vec().ok()
}

/// A DNS responder on `ip`, UDP and TCP on one port (`port` 0: a free one).
fn responder(ip: &str, port: u16, script: Vec<(&'static str, Says)>) -> (u16, Seen) {
    let (udp, tcp) = (0..20)
        .find_map(|_| {
            let udp = UdpSocket::bind((ip, port)).ok()?;
            let at = udp.local_addr().ok()?;
            let tcp = TcpListener::bind(at).ok()?;
            Some((udp, tcp))
        })
        .expect("a port free on UDP and TCP");
    let port = udp.local_addr().expect("addr").port();
    let log = Seen::default();
    let script = Arc::new(script);
    {
        let (script, log) = (Arc::clone(&script), Arc::clone(&log));
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = udp.recv_from(&mut buf) {
                if let Some(wire) = answer(&buf[..n], &script, false, &log) {
                    let _ = udp.send_to(&wire, from);
                }
            }
        });
    }
    let keep = Arc::clone(&log);
    std::thread::spawn(move || {
        for conn in tcp.incoming() {
            let Ok(mut conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut len = [0u8; 2];
            if conn.read_exact(&mut len).is_err() {
                continue;
            }
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if conn.read_exact(&mut msg).is_err() {
                continue;
            }
            if let Some(wire) = answer(&msg, &script, true, &keep) {
                let mut out = (wire.len() as u16).to_be_bytes().to_vec();
                out.extend_from_slice(&wire);
                let _ = conn.write_all(&out);
            }
        }
    });
    (port, log)
}

/// A minimal SMTP sink on 127.0.0.1; counts the connections it accepted.
fn smtp_sink() -> (u16, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(Mutex::new(0));
    let keep = Arc::clone(&count);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            *keep.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let mut w = conn.try_clone().expect("clone");
            let mut r = BufReader::new(conn);
            let _ = w.write_all(b"220 sink ESMTP\r\n");
            let mut data = false;
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                let reply: &[u8] = if data {
                    if line.trim_end() == "." {
                        data = false;
                        b"250 queued\r\n"
                    } else {
                        b""
                    }
                } else {
                    match line.get(..4).map(|v| v.to_ascii_uppercase()).as_deref() {
                        Some("DATA") => {
                            data = true;
                            b"354 go on\r\n"
                        }
                        Some("QUIT") => b"221 bye\r\n",
                        _ => b"250 ok\r\n",
                    }
                };
                let _ = w.write_all(reply);
                line.clear();
            }
        }
    });
    (port, count)
}

fn connections(c: &Arc<Mutex<usize>>) -> usize {
    *c.lock().unwrap_or_else(|p| p.into_inner())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

#[test]
fn a_host_name_is_resolved_through_net_dns() {
    let (dns, log) = responder(
        "127.0.0.1",
        0,
        vec![("mx.hil.test", Says::Addresses(vec![ip("127.0.0.1")]))],
    );
    let (smtp, conns) = smtp_sink();
    let mut sim = Sim::mailing(dns, "mx.hil.test", smtp, "127.0.0.1");
    let end = sim.scan();
    assert!(end.starts_with("done"), "{end}");
    assert_eq!(connections(&conns), 1);
    let mut asked: Vec<String> = seen(&log)
        .into_iter()
        .map(|(n, t, via)| format!("{via} {t} {n}"))
        .collect();
    asked.sort();
    assert_eq!(asked, ["udp A mx.hil.test.", "udp AAAA mx.hil.test."]);
}

#[test]
fn every_address_is_tried_in_turn_aaaa_first() {
    // ::1 and 127.0.0.2 refuse (the sink listens on 127.0.0.1 only); 127.0.0.1 takes it.
    let all = vec![ip("::1"), ip("127.0.0.2"), ip("127.0.0.1")];
    let (dns, _) = responder("127.0.0.1", 0, vec![("mx.hil.test", Says::Addresses(all))]);
    let (smtp, conns) = smtp_sink();
    let mut sim = Sim::mailing(dns, "MX.hil.test.", smtp, "127.0.0.1");
    let end = sim.scan();
    assert!(end.starts_with("done"), "{end}");
    assert_eq!(connections(&conns), 1);
    // None connecting: each named, AAAA first.
    let dead = vec![ip("::1"), ip("127.0.0.2"), ip("127.0.0.3")];
    let (dns, _) = responder("127.0.0.1", 0, vec![("mx.hil.test", Says::Addresses(dead))]);
    let mut sim = Sim::mailing(dns, "mx.hil.test", smtp, "127.0.0.1");
    let end = sim.scan();
    assert!(
        end.starts_with("failed connect no address of mx.hil.test connected (3 from DNS): [::1]:"),
        "{end}"
    );
    let at = |s: &str| end.find(s).unwrap_or_else(|| panic!("{s} in {end}"));
    assert!(
        at("[::1]:") < at("127.0.0.2:") && at("127.0.0.2:") < at("127.0.0.3:"),
        "{end}"
    );
    assert_eq!(connections(&conns), 1, "no new connection reached the sink");
}

#[test]
fn a_failing_dns_server_is_passed_over_for_the_next() {
    let (dns, first) = responder(
        "127.0.0.1",
        0,
        vec![("mx.hil.test", Says::Code(ResponseCode::ServFail))],
    );
    let (_, second) = responder(
        "127.0.0.2",
        dns,
        vec![("mx.hil.test", Says::Addresses(vec![ip("127.0.0.1")]))],
    );
    let (smtp, conns) = smtp_sink();
    let mut sim = Sim::mailing(dns, "mx.hil.test", smtp, "127.0.0.1,127.0.0.2");
    let end = sim.scan();
    assert!(end.starts_with("done"), "{end}");
    assert_eq!(connections(&conns), 1);
    assert_eq!(seen(&first).len(), 2, "AAAA and A of the first");
    assert_eq!(seen(&second).len(), 2, "then of the second");
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let (dns, log) = responder(
        "127.0.0.1",
        0,
        vec![("mx.hil.test", Says::Truncated(vec![ip("127.0.0.1")]))],
    );
    let (smtp, conns) = smtp_sink();
    let mut sim = Sim::mailing(dns, "mx.hil.test", smtp, "127.0.0.1");
    let end = sim.scan();
    assert!(end.starts_with("done"), "{end}");
    assert_eq!(connections(&conns), 1);
    let mut via: Vec<String> = seen(&log)
        .into_iter()
        .map(|(_, t, v)| format!("{v} {t}"))
        .collect();
    via.sort();
    assert_eq!(via, ["tcp A", "tcp AAAA", "udp A", "udp AAAA"]);
}

#[test]
fn each_dns_failure_fails_the_job_with_connect_saying_which() {
    let (smtp, conns) = smtp_sink();
    let (dns, _) = responder(
        "127.0.0.1",
        0,
        vec![
            ("gone.hil.test", Says::Code(ResponseCode::NXDomain)),
            ("broken.hil.test", Says::Code(ResponseCode::ServFail)),
            ("private.hil.test", Says::Code(ResponseCode::Refused)),
            ("quiet.hil.test", Says::Silence),
            ("empty.hil.test", Says::Addresses(Vec::new())),
        ],
    );
    for (server, dns_list, says) in [
        (
            "gone.hil.test",
            "127.0.0.1",
            "NXDOMAIN from DNS server 127.0.0.1 (the name does not exist)",
        ),
        (
            "unknown.hil.test",
            "127.0.0.1",
            "NXDOMAIN from DNS server 127.0.0.1 (the name does not exist)",
        ),
        (
            "broken.hil.test",
            "127.0.0.1",
            "DNS server 127.0.0.1: SERVFAIL",
        ),
        (
            "private.hil.test",
            "127.0.0.1",
            "DNS server 127.0.0.1: REFUSED",
        ),
        (
            "quiet.hil.test",
            "127.0.0.1",
            "no answer from any DNS server (127.0.0.1) within 0.6s",
        ),
        (
            "empty.hil.test",
            "127.0.0.1",
            "DNS server 127.0.0.1 knows the name but gives no A or AAAA address",
        ),
        (
            "mx.hil.test",
            "\"\"",
            "no DNS server configured (net.dns is empty)",
        ),
    ] {
        let mut sim = Sim::mailing(dns, server, smtp, dns_list);
        let end = sim.scan();
        let want = format!("failed connect cannot resolve \"{server}\": {says}");
        assert_eq!(end, want, "{server}");
    }
    assert_eq!(connections(&conns), 0, "no connection without an address");
}

#[test]
fn literals_and_localhost_ask_no_dns_server() {
    let (dns, log) = responder("127.0.0.1", 0, vec![]);
    let (smtp, conns) = smtp_sink();
    for server in ["127.0.0.1", "localhost"] {
        let mut sim = Sim::mailing(dns, server, smtp, "127.0.0.1");
        let end = sim.scan();
        assert!(end.starts_with("done"), "{server}: {end}");
    }
    assert_eq!(connections(&conns), 2);
    assert!(seen(&log).is_empty(), "{:?}", seen(&log));
}

#[test]
fn net_dns_is_a_setting_with_its_rule() {
    let mut sim = Sim::start(53);
    assert_eq!(sim.status("get net.dns"), "OK");
    sim.ok("set net.dns 192.0.2.53,2001:db8::53");
    let refused = sim.status("set net.dns dns.example.com");
    assert!(refused.starts_with("ERR config net.dns"), "{refused}");
    assert!(refused.contains("IP addresses"), "{refused}");
}
