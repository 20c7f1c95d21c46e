//! What the fake SMTP server records, over real sockets and real TLS: the TLS
//! version, cipher and certificate; the AUTH mechanism with credentials redacted;
//! `message/partial` fragments sent in separate transactions, reassembled.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use hil_mail::scenario::Scenario;
use hil_mail::serve;

fn certs(dir: &Path) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "valid.hil.test");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::write(dir.join("valid.crt"), cert.pem()).expect("crt");
    std::fs::write(dir.join("valid.key"), key.serialize_pem()).expect("key");
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(addr: std::net::SocketAddr) -> BufReader<Tls> {
    let config = hil_mail::tls::danger::client_config_accepting_any(&[&rustls::version::TLS12])
        .expect("config");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(config, name).expect("client");
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    BufReader::new(rustls::StreamOwned::new(conn, tcp))
}

fn reply<R: BufRead>(r: &mut R) -> String {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        assert!(
            r.read_line(&mut l).expect("reply") > 0,
            "closed after {all:?}"
        );
        all.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] != b'-' {
            return all;
        }
    }
}

fn say<W: Write + BufRead>(c: &mut W, line: &str) -> String {
    c.write_all(line.as_bytes()).expect("write");
    c.flush().expect("flush");
    reply(c)
}

struct Io(BufReader<Tls>);

impl Write for Io {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.get_mut().flush()
    }
}

impl std::io::Read for Io {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.0, b)
    }
}

impl BufRead for Io {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.0.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.0.consume(n)
    }
}

const SCENARIO: &str = r#"
[smtp]
auth = ["plain"]
accounts = [{ user = "printer", password = "s3cret-Pass" }]
[[smtp.listeners]]
kind = "tls"
cert = "valid"
[[check]]
steps = [{ expect = "220" }]
"#;

#[test]
fn tls_facts_auth_and_reassembled_fragments_are_recorded() {
    let dir = std::env::temp_dir().join(format!("hil-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    certs(&dir);
    let scenario = Scenario::parse(Path::new("server.toml"), SCENARIO).expect("scenario");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let run = rt
        .block_on(serve::start(
            &scenario,
            &hil_mail::netaddr::BindAddr::loopback(),
            &dir,
            1.0,
        ))
        .expect("servers");
    let Some(server) = run.smtp.clone() else {
        panic!("no SMTP server")
    };
    let addr = run.smtp_endpoints()[0].1;
    let fragments = [
        "From: mfp@hil.test\r\nTo: a@hil.test\r\nSubject: [1/2] Scan\r\nMIME-Version: 1.0\r\nContent-Type: message/partial; id=\"f1@mfp\"; number=1; total=2\r\n\r\nSubject: Scan\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nfirst half\r\n",
        "From: mfp@hil.test\r\nTo: a@hil.test\r\nSubject: [2/2] Scan\r\nMIME-Version: 1.0\r\nContent-Type: message/partial; id=\"f1@mfp\"; number=2; total=2\r\n\r\nsecond half\r\n",
    ];
    for (i, f) in fragments.iter().enumerate() {
        let mut c = Io(tls_connect(addr));
        assert!(reply(&mut c).starts_with("220"));
        assert!(say(&mut c, "EHLO probe\r\n").starts_with("250"));
        assert!(say(&mut c, "AUTH PLAIN AHByaW50ZXIAczNjcmV0LVBhc3M=\r\n").starts_with("235"));
        assert!(say(&mut c, "MAIL FROM:<mfp@hil.test>\r\n").starts_with("250"));
        assert!(say(&mut c, "RCPT TO:<a@hil.test>\r\n").starts_with("250"));
        assert!(say(&mut c, "DATA\r\n").starts_with("354"));
        assert!(
            say(&mut c, &format!("{f}.\r\n")).starts_with("250"),
            "fragment {i}"
        );
        assert!(say(&mut c, "QUIT\r\n").starts_with("221"));
    }
    assert!(server.wait_idle(Duration::from_secs(5)));
    let obs = server.take();
    assert_eq!(obs.connections.len(), 2);
    for c in &obs.connections {
        let tls = c.tls.as_ref().expect("TLS facts");
        assert_eq!(tls.version, "TLSv1_2");
        assert!(tls.cipher.contains("TLS_ECDHE"), "{}", tls.cipher);
        assert_eq!(tls.certificate, "valid");
        assert!(c
            .transcript
            .iter()
            .any(|e| e.text.starts_with("TLS established: TLSv1_2")));
        assert_eq!(c.auth.len(), 1);
        assert_eq!(c.auth[0].mechanism, "PLAIN");
        assert!(c.auth[0].ok);
        let all: String = c.transcript.iter().map(|e| e.text.as_str()).collect();
        assert!(all.contains("AUTH PLAIN [redacted]"));
        assert!(
            !all.contains("AHByaW50") && !all.contains("s3cret"),
            "credentials in {all}"
        );
    }
    assert_eq!(obs.messages.len(), 2);
    let [whole] = obs.reassembled.as_slice() else {
        panic!("{} reassembled", obs.reassembled.len())
    };
    assert_eq!(whole.id, "f1@mfp");
    assert_eq!(
        String::from_utf8_lossy(&whole.data),
        "From: mfp@hil.test\r\nTo: a@hil.test\r\nSubject: Scan\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nfirst half\r\nsecond half\r\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hil serve`'s way: every finished connection is streamed out with its messages
/// and kept no longer, no message bytes are kept at all, and its JSON line says what
/// `serde_json::json!` of the records said before it was serialised directly.
#[test]
fn a_streamed_connection_comes_out_whole_and_the_server_keeps_nothing_of_it() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(hil_mail::smtp_server::SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            hil_mail::smtp::SmtpConfig::default(),
        ))
        .expect("server");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    server.on_finished(tx);
    let tcp = TcpStream::connect(server.addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut c = BufReader::new(tcp);
    let mut say = |line: &str| {
        c.get_mut().write_all(line.as_bytes()).expect("write");
        reply(&mut c)
    };
    assert!(say("").starts_with("220"));
    assert!(say("EHLO probe\r\n").starts_with("250"));
    let big = format!("{}\r\n", "x".repeat(1200));
    for (subject, body) in [("one", "hello\r\n"), ("two", big.as_str())] {
        assert!(say("MAIL FROM:<mfp@hil.test>\r\n").starts_with("250"));
        assert!(say("RCPT TO:<a@hil.test>\r\n").starts_with("250"));
        assert!(say("DATA\r\n").starts_with("354"));
        let msg = format!("Subject: {subject}\r\nTo: a@hil.test\r\n\r\n{body}bare\nlf\r\n.\r\n");
        assert!(say(&msg).starts_with("250"));
    }
    assert!(say("QUIT\r\n").starts_with("221"));
    let (conn, msgs) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), rx.recv()).await })
        .expect("in time")
        .expect("a finished connection");
    assert!(conn.ended);
    assert!(conn.transcript.iter().any(|e| e.text == "QUIT"));
    let subjects: Vec<_> = msgs
        .iter()
        .map(|m| m.mime.as_ref().and_then(|x| x.subject.clone()))
        .collect();
    assert_eq!(subjects, [Some("one".into()), Some("two".into())]);
    assert!(msgs
        .iter()
        .all(|m| m.data.is_empty() && m.connection == conn.id));
    assert_eq!(
        msgs.iter()
            .map(|m| (m.bare_lf, m.long_lines))
            .collect::<Vec<_>>(),
        [(1, 0), (1, 1)]
    );
    let kept = server.snapshot();
    assert!(kept.connections.is_empty() && kept.messages.is_empty());
    let line = hil::serve_cmd::Line::smtp(&conn, &msgs)
        .to_json()
        .expect("json");
    assert!(!line.contains('\n'));
    let before = serde_json::json!({ "server": "smtp", "connection": conn, "messages": msgs });
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&line).expect("parses"),
        before
    );
}

/// A message far larger than the read buffer (which grows once a read fills it)
/// arrives byte for byte, dot-stuffing undone, with a transaction pipelined after it.
#[test]
fn a_large_message_arrives_byte_for_byte() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = rt
        .block_on(hil_mail::smtp_server::SmtpServer::start(
            "127.0.0.1:0".parse().expect("addr"),
            hil_mail::smtp::SmtpConfig::default(),
        ))
        .expect("server");
    let mut body = Vec::new();
    for i in 0..20_000u32 {
        // Some lines start with a dot; one line runs over 998 octets.
        let line = if i % 7 == 0 {
            format!(".{i}")
        } else {
            format!("line {i}")
        };
        body.extend_from_slice(line.as_bytes());
        body.extend_from_slice(if i == 9_999 { &[b'y'; 1000][..] } else { b"" });
        body.extend_from_slice(b"\r\n");
    }
    let mut stuffed = Vec::new();
    for line in body.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    let tcp = TcpStream::connect(server.addr()).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut c = BufReader::new(tcp);
    assert!(reply(&mut c).starts_with("220"));
    let mut all = b"EHLO probe\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n".to_vec();
    c.get_mut().write_all(&all).expect("write");
    for want in ["250", "250", "250", "354"] {
        assert!(reply(&mut c).starts_with(want));
    }
    all = stuffed;
    all.extend_from_slice(
        b".\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nsmall\r\n.\r\nQUIT\r\n",
    );
    c.get_mut().write_all(&all).expect("write");
    for want in ["250", "250", "250", "354", "250", "221"] {
        assert!(reply(&mut c).starts_with(want));
    }
    assert!(server.wait_idle(Duration::from_secs(10)));
    let obs = server.take();
    let [big, small] = obs.messages.as_slice() else {
        panic!("{} messages", obs.messages.len())
    };
    assert!(body.len() > 200_000);
    assert!(big.data == body, "the large message differs");
    assert_eq!((big.bare_lf, big.long_lines), (0, 1));
    assert_eq!(small.data, b"small\r\n");
}
