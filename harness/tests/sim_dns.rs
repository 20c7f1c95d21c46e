//! The simulated device resolving `smtp.server` through hil-mail's fake DNS server
//! (SPEC §1 `net.dns`, §3 step 1), over real sockets: `hil sim --dns-port P` with
//! `net.dns=127.0.0.1`, the DNS server and the fake SMTP server on 127.0.0.1, both
//! sides on one time scale. The DNS server's record shows what the device asked.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use hil::device::{Console, JobEnd, TriggerAnswer};
use hil_mail::dns::{DnsConfig, DnsFault, DnsServer, Given, NameSpec, Transport};
use hil_mail::smtp::SmtpConfig;
use hil_mail::smtp_server::SmtpServer;

/// Device time runs this much faster: the default 60 s timeout is 3 s.
const SCALE: f64 = 20.0;

struct Bench {
    _sim: common::Sim,
    con: Console,
    rt: tokio::runtime::Runtime,
    dns: DnsServer,
    smtp: SmtpServer,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn bench() -> Bench {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let loopback = "127.0.0.1:0".parse().expect("addr");
    let dns = rt
        .block_on(DnsServer::start(loopback, &DnsConfig::default(), SCALE))
        .expect("DNS server");
    let smtp = rt
        .block_on(SmtpServer::start(loopback, SmtpConfig::default()))
        .expect("SMTP server");
    let dns_port = dns.addr().port().to_string();
    let (sim, mut con) = common::sim_at(SCALE, &["--dns-port", &dns_port]);
    let smtp_port = smtp.addr().port().to_string();
    let a = con
        .apply(
            &common::pairs(&[
                ("smtp.server", "mx.hil.test"),
                ("smtp.port", &smtp_port),
                ("net.dns", "127.0.0.1"),
                ("admin.address", "admin@hil.test"),
                ("device.address", "mfp@hil.test"),
            ]),
            &[],
        )
        .expect("apply");
    assert_eq!(a.status, hil::device::Status::Ok, "{a:?}");
    Bench {
        _sim: sim,
        con,
        rt,
        dns,
        smtp,
    }
}

impl Bench {
    /// Serves `spec` for the case, sends a scan and answers its end.
    fn scan(&mut self, spec: NameSpec) -> JobEnd {
        let config = DnsConfig {
            names: vec![spec],
            ..DnsConfig::default()
        };
        self.dns.set_config(&config).expect("a valid script");
        let _ = self.dns.take();
        let _ = self.smtp.take();
        let TriggerAnswer::Job(id) = self
            .con
            .trigger("scan", &[("to", "a@hil.test"), ("size_kb", "1")])
            .expect("trigger")
        else {
            panic!("scan refused");
        };
        let end = self
            .con
            .wait_job(id, Duration::from_secs(30))
            .expect("job end");
        assert!(self.smtp.wait_idle(Duration::from_secs(5)));
        end
    }

    /// What the DNS server saw: `udp AAAA mx.hil.test.: …`, sorted (AAAA and A go out
    /// at once).
    fn asked(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .dns
            .take()
            .iter()
            .map(|q| format!("{} {} {}: {}", q.transport.name(), q.qtype, q.name, q.given))
            .collect();
        v.sort();
        v
    }
}

fn failed(end: &JobEnd) -> (&str, &str) {
    match end {
        JobEnd::Done => ("done", ""),
        JobEnd::Failed { class, detail } => (class, detail),
    }
}

#[test]
fn the_device_resolves_and_tries_each_address_in_turn() {
    let mut b = bench();
    // ::1 and 127.0.0.2 refuse (the SMTP server listens on 127.0.0.1 only).
    let all = [ip("127.0.0.2"), ip("::1"), ip("127.0.0.1")];
    let end = b.scan(NameSpec::addresses("mx.hil.test", &all));
    assert_eq!(end, JobEnd::Done);
    assert_eq!(b.smtp.take().messages.len(), 1);
    assert_eq!(
        b.asked(),
        [
            "udp A mx.hil.test.: 127.0.0.2, 127.0.0.1",
            "udp AAAA mx.hil.test.: ::1"
        ]
    );
    // A truncated answer: the device asks again over TCP and delivers.
    let mut spec = NameSpec::addresses("mx.hil.test", &[ip("127.0.0.1")]);
    spec.fault = Some(DnsFault::Truncate);
    assert_eq!(b.scan(spec), JobEnd::Done);
    let record = b.dns.queries();
    let by = |t: Transport| record.iter().filter(|q| q.transport == t).count();
    assert_eq!(
        (by(Transport::Udp), by(Transport::Tcp)),
        (2, 2),
        "{record:?}"
    );
    assert!(record
        .iter()
        .filter(|q| q.transport == Transport::Udp)
        .all(|q| q.given == Given::Truncated));
    // An answer after a delay within the timeout (2 of its 60 device seconds).
    let mut slow = NameSpec::addresses("mx.hil.test", &[ip("127.0.0.1")]);
    slow.delay_ms = 2000;
    assert_eq!(b.scan(slow), JobEnd::Done);
}

#[test]
fn each_dns_fault_fails_the_job_with_connect_saying_which() {
    let mut b = bench();
    let mut late = NameSpec::addresses("mx.hil.test", &[ip("127.0.0.1")]);
    late.delay_ms = 70_000;
    for (spec, says) in [
        (
            NameSpec::fault("mx.hil.test", DnsFault::Nxdomain),
            "NXDOMAIN from DNS server 127.0.0.1",
        ),
        (
            NameSpec::addresses("other.hil.test", &[ip("127.0.0.1")]),
            "NXDOMAIN from DNS server 127.0.0.1",
        ),
        (
            NameSpec::fault("mx.hil.test", DnsFault::Servfail),
            "DNS server 127.0.0.1: SERVFAIL",
        ),
        (
            NameSpec::fault("mx.hil.test", DnsFault::Refused),
            "DNS server 127.0.0.1: REFUSED",
        ),
        (
            NameSpec::fault("mx.hil.test", DnsFault::Silence),
            "no answer from any DNS server (127.0.0.1) within 3.0s",
        ),
        (
            late,
            "no answer from any DNS server (127.0.0.1) within 3.0s",
        ),
        (
            NameSpec::addresses("mx.hil.test", &[]),
            "DNS server 127.0.0.1 knows the name but gives no A or AAAA address",
        ),
    ] {
        let name = format!("{} {:?}", spec.name, spec.fault);
        let end = b.scan(spec);
        let (class, detail) = failed(&end);
        assert_eq!(class, "connect", "{name}: {detail}");
        assert!(detail.contains(says), "{name}: {detail}");
        assert!(detail.contains("mx.hil.test"), "{name}: {detail}");
        assert!(
            b.smtp.take().connections.is_empty(),
            "{name}: no connection"
        );
        let asked = b.asked();
        assert_eq!(asked.len(), 2, "{name}: AAAA and A once each: {asked:?}");
    }
    // No address connecting: each one named.
    let dead = [ip("127.0.0.2"), ip("127.0.0.3")];
    let end = b.scan(NameSpec::addresses("mx.hil.test", &dead));
    let (class, detail) = failed(&end);
    assert_eq!(class, "connect", "{detail}");
    assert!(
        detail.starts_with("no address of mx.hil.test connected (2 from DNS): 127.0.0.2:"),
        "{detail}"
    );
    assert!(detail.contains("; 127.0.0.3:"), "{detail}");
    let _ = &b.rt;
}
