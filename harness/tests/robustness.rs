//! Abuse of both fake servers at once: 10,000-byte lines, binary junk, commands out
//! of order, 1,000 idle connections each, a client sending one byte a second, an
//! oversized message. Meanwhile a well-behaved client must still be served, memory
//! must stay bounded, and idle connections must be closed after the idle timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::ListenerKind;

/// Device time runs this much faster: the 30 s idle timeout is 3 s here.
const SCALE: f64 = 10.0;
const IDLE: usize = 1000;

const SCENARIO: &str = r#"
[smtp]
idle_timeout_s = 30
policy = { max_size = 1048576 }
[pop3]
idle_timeout_s = 30
accounts = [{ user = "u", password = "p" }]
[[check]]
steps = [{ expect = "220" }]
"#;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to and read from a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < 8192 {
            lim.rlim_cur = lim.rlim_max.min(8192);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn open(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            w: s.try_clone().expect("clone"),
            r: BufReader::new(s),
        }
    }
    /// Reads one reply: SMTP up to `NNN text`, POP3 one status line.
    fn reply(&mut self, pop: bool) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            let n = self.r.read_line(&mut l).expect("a reply");
            assert!(n > 0, "connection closed; so far {all:?}");
            all.push_str(&l);
            if pop || l.len() < 4 || l.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }
    fn cmd(&mut self, line: &[u8], pop: bool) -> String {
        self.w.write_all(line).expect("write");
        self.reply(pop)
    }
}

fn well_behaved_smtp(addr: SocketAddr) {
    let mut c = Client::open(addr);
    assert!(c.reply(false).starts_with("220"));
    assert!(c.cmd(b"EHLO good\r\n", false).starts_with("250"));
    assert!(c
        .cmd(b"MAIL FROM:<a@hil.test>\r\n", false)
        .starts_with("250"));
    assert!(c.cmd(b"RCPT TO:<b@hil.test>\r\n", false).starts_with("250"));
    assert!(c.cmd(b"DATA\r\n", false).starts_with("354"));
    assert!(c
        .cmd(b"Subject: ok\r\n\r\nfine\r\n.\r\n", false)
        .starts_with("250"));
    assert!(c.cmd(b"QUIT\r\n", false).starts_with("221"));
}

fn well_behaved_pop(addr: SocketAddr) {
    let mut c = Client::open(addr);
    assert!(c.reply(true).starts_with("+OK"));
    assert!(c.cmd(b"USER u\r\n", true).starts_with("+OK"));
    assert!(c.cmd(b"PASS p\r\n", true).starts_with("+OK"));
    assert!(c.cmd(b"STAT\r\n", true).starts_with("+OK 1 "));
    assert!(c.cmd(b"QUIT\r\n", true).starts_with("+OK"));
}

#[test]
fn both_servers_survive_abuse_and_keep_serving() {
    raise_fd_limit();
    let scenario = Scenario::parse(Path::new("robustness.toml"), SCENARIO).expect("scenario");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let run = rt
        .block_on(serve::start(
            &scenario,
            &hil_mail::netaddr::BindAddr::loopback(),
            Path::new("."),
            SCALE,
        ))
        .expect("servers");
    let smtp = run.smtp_endpoints()[0].1;
    let pop = run.pop3_endpoints()[0].1;
    assert_eq!(run.smtp_endpoints()[0].0, ListenerKind::Plain);
    well_behaved_smtp(smtp);
    well_behaved_pop(pop);
    let rss_before = rss_kib();

    // A client that sends one byte a second.
    let slow = std::thread::spawn(move || {
        let mut c = Client::open(smtp);
        assert!(c.reply(false).starts_with("220"));
        for b in b"NOOP\r\n" {
            c.w.write_all(&[*b]).expect("write a byte");
            std::thread::sleep(Duration::from_secs(1));
        }
        assert!(
            c.reply(false).starts_with("250"),
            "the slow client is answered"
        );
    });

    // 1,000 idle connections to each server.
    let idle: Vec<TcpStream> = (0..IDLE)
        .flat_map(|_| {
            [
                TcpStream::connect(smtp).expect("idle smtp"),
                TcpStream::connect(pop).expect("idle pop"),
            ]
        })
        .collect();

    // Long lines, junk, commands out of order, on both.
    for (addr, pop_proto) in [(smtp, false), (pop, true)] {
        let mut c = Client::open(addr);
        c.reply(pop_proto);
        let mut long = vec![b'A'; 10_000];
        long.extend_from_slice(b"\r\n");
        let r = c.cmd(&long, pop_proto);
        assert!(r.starts_with('5') || r.starts_with("-ERR"), "{r}");
        let r = c.cmd(b"\x00\xff\xfe\x01junk\x80\r\n", pop_proto);
        assert!(r.starts_with('5') || r.starts_with("-ERR"), "{r}");
        let out_of_order: &[&[u8]] = if pop_proto {
            &[b"RETR 1\r\n", b"PASS p\r\n", b"DELE 1\r\n"]
        } else {
            &[b"DATA\r\n", b"RCPT TO:<a@b>\r\n", b"MAIL FROM:<a@b>\r\n"]
        };
        for cmd in &out_of_order[..2] {
            let r = c.cmd(cmd, pop_proto);
            assert!(r.starts_with('5') || r.starts_with("-ERR"), "{r}");
        }
    }

    // An oversized message is refused without being kept.
    let mut c = Client::open(smtp);
    c.reply(false);
    c.cmd(b"EHLO big\r\n", false);
    c.cmd(b"MAIL FROM:<a@hil.test>\r\n", false);
    c.cmd(b"RCPT TO:<b@hil.test>\r\n", false);
    assert!(c.cmd(b"DATA\r\n", false).starts_with("354"));
    let line = [b"x".repeat(998).as_slice(), b"\r\n"].concat();
    for _ in 0..(8 * 1024 * 1024 / line.len()) {
        c.w.write_all(&line).expect("write");
    }
    assert!(c.cmd(b".\r\n", false).starts_with("552"));

    // Through all of it, a well-behaved client is served.
    well_behaved_smtp(smtp);
    well_behaved_pop(pop);
    let rss_during = rss_kib();
    slow.join().expect("slow client");

    // Idle connections are closed after the idle timeout (30 s device time).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut closed = 0;
    for mut s in idle {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(10));
        s.set_read_timeout(Some(left)).expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue, // the greeting
                Err(_) => break,
            }
        }
    }
    assert_eq!(closed, 2 * IDLE, "idle connections closed by the servers");
    well_behaved_smtp(smtp);
    let growth_mib = rss_during.saturating_sub(rss_before) / 1024;
    eprintln!(
        "robustness: RSS {rss_before} KiB before, {rss_during} KiB under abuse (+{growth_mib} MiB)"
    );
    assert!(
        growth_mib < 128,
        "memory grew by {growth_mib} MiB under abuse"
    );
}
