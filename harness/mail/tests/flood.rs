//! Floods of client input against both fake servers, over real sockets, the way
//! `hil serve` runs them (each finished connection streamed out and serialised): the
//! transcript each connection keeps is bounded (head and tail, with a note of what
//! was cut and how much), and the server goes on answering the same client after
//! the flood.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use hil_mail::pop3_server::Pop3Connection;
use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::{Dir, Entry};
use hil_mail::smtp_server::Connection;

const SCENARIO: &str = r#"
[smtp]
idle_timeout_s = 600
[pop3]
idle_timeout_s = 600
accounts = [{ user = "u", password = "p" }]
[[check]]
steps = [{ expect = "220" }]
"#;

/// Lines of a flood and their length: what took `hil serve` to 1.2 GB before.
const LINES: usize = 10_000;
const LINE: usize = 4000;
/// What one connection's serialised record may take at most.
const MAX_RECORD: usize = 3 * 1024 * 1024;

struct Servers {
    _rt: tokio::runtime::Runtime,
    smtp: SocketAddr,
    pop: SocketAddr,
    smtp_done: tokio::sync::mpsc::UnboundedReceiver<(Connection, Vec<hil_mail::smtp::Received>)>,
    pop_done: tokio::sync::mpsc::UnboundedReceiver<Pop3Connection>,
}

fn start() -> Servers {
    let scenario = Scenario::parse(Path::new("flood.toml"), SCENARIO).expect("scenario");
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
            1.0,
        ))
        .expect("servers");
    let (stx, smtp_done) = tokio::sync::mpsc::unbounded_channel();
    let (ptx, pop_done) = tokio::sync::mpsc::unbounded_channel();
    let (Some(s), Some(p)) = (&run.smtp, &run.pop3) else {
        panic!("both servers")
    };
    s.on_finished(stx);
    p.on_finished(ptx);
    Servers {
        smtp: run.smtp_endpoints()[0].1,
        pop: run.pop3_endpoints()[0].1,
        _rt: rt,
        smtp_done,
        pop_done,
    }
}

/// A client whose replies are read (and counted) by a thread of their own, so a
/// flood never blocks on a full socket buffer.
struct Client {
    w: TcpStream,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Client {
    fn open(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        let r = s.try_clone().expect("clone");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Client { w: s, lines }
    }
    fn next(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a reply line")
    }
    /// Skips lines until one starting with `prefix`.
    fn until(&self, prefix: &str) -> String {
        loop {
            let l = self.next();
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }
}

fn flood(c: &mut Client, verb: &str) {
    let mut line = format!("{verb} ").into_bytes();
    line.resize(LINE, b'x');
    line.extend_from_slice(b"\r\n");
    let block: Vec<u8> = line.repeat(100);
    for _ in 0..LINES / 100 {
        c.send(&block);
    }
}

fn cut_note(t: &[Entry]) -> Option<&Entry> {
    t.iter()
        .find(|e| e.dir == Dir::Note && e.text.contains("cut") && e.text.contains("bytes in"))
}

fn check_bounded(what: &str, t: &[Entry], json_len: usize) {
    let texts: usize = t.iter().map(|e| e.text.len()).sum();
    assert!(
        json_len < MAX_RECORD,
        "{what}: the record is {json_len} bytes of JSON ({} lines, {texts} bytes of text)",
        t.len()
    );
    assert!(t.len() <= 20_001, "{what}: {} lines kept", t.len());
    let note = cut_note(t).unwrap_or_else(|| panic!("{what}: no note of what was cut"));
    eprintln!(
        "{what}: {} lines, {json_len} bytes of JSON; {}",
        t.len(),
        note.text
    );
    assert!(
        t.first()
            .is_some_and(|e| e.text.starts_with("connection from")),
        "{what}: the head is kept"
    );
}

#[test]
fn a_pop3_line_flood_keeps_a_bounded_marked_transcript_and_the_session_goes_on() {
    let mut s = start();
    let mut c = Client::open(s.pop);
    assert!(c.next().starts_with("+OK"));
    flood(&mut c, "XFLOOD");
    for _ in 0..LINES {
        assert!(c.next().starts_with("-ERR"));
    }
    // A line with no end, longer than any line kept, then one that ends.
    c.send(&vec![b'y'; 10 * 1024 * 1024]);
    c.send(b"\r\n");
    assert!(c.next().starts_with("-ERR"));
    // The session still serves: log in, STAT, QUIT.
    c.send(b"USER u\r\n");
    assert!(c.next().starts_with("+OK"));
    c.send(b"PASS p\r\n");
    assert!(c.next().starts_with("+OK"));
    c.send(b"STAT\r\n");
    assert!(c.next().starts_with("+OK 1 "));
    c.send(b"QUIT\r\n");
    assert!(c.next().starts_with("+OK"));
    let conn = s.pop_done.blocking_recv().expect("the finished connection");
    let json = serde_json::to_string(&conn).expect("json");
    check_bounded("pop3", &conn.transcript, json.len());
    let t: Vec<&str> = conn.transcript.iter().map(|e| e.text.as_str()).collect();
    assert!(
        t.contains(&"STAT"),
        "the tail is kept: {:?}",
        &t[t.len() - 8..]
    );
    assert!(
        t.iter().any(|l| l.contains("line longer than")),
        "the endless line is noted"
    );
    assert_eq!(conn.logins, ["u (USER/PASS)"]);
}

#[test]
fn an_smtp_flood_of_lines_a_huge_body_and_an_endless_line_stays_bounded() {
    let mut s = start();
    let mut c = Client::open(s.smtp);
    assert!(c.next().starts_with("220"));
    c.send(b"EHLO flood\r\n");
    c.until("250 ");
    flood(&mut c, "NOOP");
    for _ in 0..LINES {
        assert!(c.next().starts_with("250"));
    }
    // A huge DATA body: 20 MB of short lines.
    c.send(b"MAIL FROM:<a@hil.test>\r\nRCPT TO:<b@hil.test>\r\nDATA\r\n");
    c.until("354");
    let body = [b"z".repeat(78).as_slice(), b"\r\n"].concat().repeat(1000);
    for _ in 0..250 {
        c.send(&body);
    }
    c.send(b".\r\n");
    c.until("250 ");
    // A huge line with no newline, then its end.
    c.send(&vec![b'q'; 10 * 1024 * 1024]);
    c.send(b"\r\n");
    assert!(c.next().starts_with("500"));
    // Still served.
    c.send(b"RSET\r\n");
    assert!(c.next().starts_with("250"));
    c.send(b"QUIT\r\n");
    assert!(c.next().starts_with("221"));
    let (conn, msgs) = s
        .smtp_done
        .blocking_recv()
        .expect("the finished connection");
    let json = serde_json::to_string(&conn).expect("json");
    check_bounded("smtp", &conn.transcript, json.len());
    assert_eq!(msgs.len(), 1, "the message is kept");
    let t: Vec<&str> = conn.transcript.iter().map(|e| e.text.as_str()).collect();
    assert!(
        t.contains(&"RSET") && t.contains(&"QUIT"),
        "the tail is kept"
    );
    assert!(t.iter().any(|l| l.starts_with("<message: 20000000 bytes>")));
}

#[test]
fn a_client_leaving_in_the_middle_of_an_endless_line_is_noted() {
    let mut s = start();
    for (addr, pop) in [(s.smtp, false), (s.pop, true)] {
        let mut c = Client::open(addr);
        c.next();
        c.send(&vec![b'e'; 1024 * 1024]);
        c.w.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let t = if pop {
            s.pop_done.blocking_recv().expect("pop3").transcript
        } else {
            s.smtp_done.blocking_recv().expect("smtp").0.transcript
        };
        let texts: Vec<&str> = t.iter().map(|e| e.text.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|l| l.contains("1,048,576 bytes") && l.contains("no end of line")),
            "pop3={pop}: {texts:#?}"
        );
    }
}

/// A client sending message after message (the way `hil run` keeps them, whole, for
/// the verdict): past `max_kept_bytes` a message keeps its envelope but not its
/// bytes, and its transcript says so; the server goes on accepting.
#[test]
fn message_bytes_kept_between_takes_are_bounded() {
    use hil_mail::smtp::{ListenerKind, SmtpConfig};
    use hil_mail::smtp_server::{Listen, ServerOptions, SmtpServer};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind: ListenerKind::Plain,
                bind: "127.0.0.1:0".parse().expect("bind"),
                identity: None,
            }],
            SmtpConfig::default(),
            ServerOptions {
                max_kept_bytes: 1 << 20,
                ..ServerOptions::default()
            },
        ))
        .expect("server");
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    // The last line of a reply.
    let mut reply = || loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("reply");
        if l.len() < 4 || l.as_bytes()[3] != b'-' {
            return l;
        }
    };
    assert!(reply().starts_with("220"));
    s.write_all(b"EHLO flood.test\r\n").expect("ehlo");
    assert!(reply().starts_with("250"));
    let body = format!("{}\r\n", "x".repeat(998)).repeat(600);
    for _ in 0..3 {
        s.write_all(b"MAIL FROM:<a@hil.test>\r\nRCPT TO:<b@hil.test>\r\nDATA\r\n")
            .expect("envelope");
        for want in ["250", "250", "354"] {
            let got = reply();
            assert!(got.starts_with(want), "{got}");
        }
        s.write_all(b"Subject: big\r\n\r\n").expect("header");
        s.write_all(body.as_bytes()).expect("body");
        s.write_all(b".\r\n").expect("end");
        let got = reply();
        assert!(got.starts_with("250"), "{got}");
    }
    s.write_all(b"QUIT\r\n").expect("quit");
    assert!(reply().starts_with("221"));
    assert!(server.wait_idle(Duration::from_secs(10)));
    let o = server.take();
    let sizes: Vec<usize> = o.messages.iter().map(|m| m.data.len()).collect();
    assert_eq!(o.messages.len(), 3, "{sizes:?}");
    assert!(sizes[0] > 600_000, "{sizes:?}");
    assert_eq!(&sizes[1..], [0, 0], "{sizes:?}");
    assert!(o.messages.iter().all(|m| m.recipients == ["b@hil.test"]));
    let notes: Vec<&str> = o.connections[0]
        .transcript
        .iter()
        .filter(|e| e.text.contains("its bytes are not kept"))
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("at most 1 MiB"), "{}", notes[0]);
}
