//! `--quirk`: each planted behaviour against SPEC's, over real sockets. The device is
//! `mfp-sim --console tcp:… [--quirk W]`; its SMTP (and POP) server is a small scripted
//! one here, plain or TLS with the certificate zoo of `certs/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// `mfp-sim --console tcp:127.0.0.1:0 --time-scale 100`, planted with `quirks`.
    fn start(quirks: &[&str]) -> Sim {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfp-sim"));
        cmd.args(["--console", "tcp:127.0.0.1:0", "--time-scale", "100"]);
        for q in quirks {
            cmd.args(["--quirk", q]);
        }
        let mut child = cmd
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

    /// Sends a command; answers its data lines and status line (events skipped).
    fn cmd(&mut self, line: &str) -> Vec<String> {
        self.console
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l.starts_with("EVENT ") {
                continue;
            }
            let done = l == "OK" || l.starts_with("ERR ");
            out.push(l);
            if done {
                return out;
            }
        }
    }

    /// The status line of a command.
    fn status(&mut self, line: &str) -> String {
        self.cmd(line).pop().unwrap_or_default()
    }

    fn ok(&mut self, line: &str) {
        let st = self.status(line);
        assert_eq!(st, "OK", "{line}");
    }

    /// Starts a scan to `to` and answers its end: `done` or `failed CLASS DETAIL`.
    fn scan(&mut self, to: &str, kb: u32) -> String {
        let answer = self.cmd(&format!("scan send {to} {kb}"));
        let job = answer
            .iter()
            .find_map(|l| l.strip_prefix("JOB "))
            .unwrap_or_else(|| panic!("scan: {answer:?}"))
            .to_string();
        let prefix = format!("EVENT JOB {job} ");
        loop {
            let l = self.line();
            if let Some(end) = l.strip_prefix(&prefix) {
                return end.to_string();
            }
        }
    }

    /// A device set up to mail through `127.0.0.1:port`.
    fn mailing(quirks: &[&str], port: u16, extra: &[&str]) -> Sim {
        let mut sim = Sim::start(quirks);
        sim.ok("clock set 2030-01-01T00:00:00Z");
        let mut apply = format!(
            "apply smtp.server=127.0.0.1 smtp.port={port} smtp.ssl_port={port} \
             device.address=mfp@hil.test admin.address=admin@hil.test"
        );
        for e in extra {
            apply.push(' ');
            apply.push_str(e);
        }
        sim.ok(&apply);
        sim
    }
}

/// What the scripted SMTP server says where SPEC leaves a choice to the server.
#[derive(Clone, Default)]
struct Script {
    rcpt: Option<&'static str>,
    quit: Option<&'static str>,
    /// The 334 text sent instead of the normal prompt (LOGIN's first, PLAIN's).
    challenge: Option<&'static str>,
    /// Serve TLS from the first byte with this certificate of the zoo.
    tls: Option<&'static str>,
}

/// What the server saw: each connection's commands (not the message lines), when it
/// was accepted, and each message's lines.
#[derive(Default)]
struct Seen {
    connections: Vec<(Instant, Vec<String>)>,
    messages: Vec<Vec<String>>,
}

type Shared = Arc<Mutex<Seen>>;

fn seen(s: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads CRLF lines from a stream that is also written.
struct Lines<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Lines<S> {
    fn read(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=p).collect();
                return Some(
                    String::from_utf8_lossy(&raw)
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                );
            }
            let mut chunk = [0u8; 8192];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    fn say(&mut self, text: &str) {
        let _ = self.s.write_all(text.as_bytes());
        let _ = self.s.flush();
    }
}

fn zoo(name: &str) -> Vec<u8> {
    let path = format!("{}/../certs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A TLS server configuration serving the zoo's certificate `name` (its chain as the
/// file has it).
fn tls_config(name: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let pems = |file: String| -> Vec<Vec<u8>> {
        x509_parser::pem::Pem::iter_from_buffer(&zoo(&file))
            .map(|p| p.expect("PEM").contents)
            .collect()
    };
    let chain: Vec<CertificateDer<'static>> = pems(format!("{name}.crt"))
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key = pems(format!("{name}.key")).remove(0);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate");
    Arc::new(cfg)
}

/// Serves SMTP on a free port by `script` until the test ends.
fn smtp_server(script: Script) -> (u16, Shared) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shared = Shared::default();
    let keep = Arc::clone(&shared);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
            let index = {
                let mut s = seen(&keep);
                s.connections.push((Instant::now(), Vec::new()));
                s.connections.len() - 1
            };
            match script.tls {
                Some(cert) => {
                    let Ok(tls) = rustls::ServerConnection::new(tls_config(cert)) else {
                        continue;
                    };
                    let s = rustls::StreamOwned::new(tls, conn);
                    smtp_session(Lines { s, buf: Vec::new() }, &script, &keep, index);
                }
                None => smtp_session(
                    Lines {
                        s: conn,
                        buf: Vec::new(),
                    },
                    &script,
                    &keep,
                    index,
                ),
            }
        }
    });
    (port, shared)
}

fn smtp_session<S: Read + Write>(mut c: Lines<S>, script: &Script, seen_by: &Shared, i: usize) {
    let note = |l: &str| {
        if let Some(c) = seen(seen_by).connections.get_mut(i) {
            c.1.push(l.to_string());
        }
    };
    c.say("220 fake ESMTP\r\n");
    while let Some(line) = c.read() {
        note(&line);
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            c.say("250-fake\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n");
        } else if upper.starts_with("AUTH LOGIN") {
            c.say(&format!(
                "334 {}\r\n",
                script.challenge.unwrap_or("VXNlcm5hbWU6")
            ));
            let Some(user) = c.read() else { return };
            note(&user);
            if user == "*" {
                c.say("501 cancelled\r\n");
                continue;
            }
            c.say("334 UGFzc3dvcmQ6\r\n");
            let Some(pass) = c.read() else { return };
            note(&pass);
            c.say("235 ok\r\n");
        } else if upper.starts_with("AUTH PLAIN") {
            if let Some(ch) = script.challenge {
                c.say(&format!("334 {ch}\r\n"));
                let Some(answer) = c.read() else { return };
                note(&answer);
                if answer == "*" {
                    c.say("501 cancelled\r\n");
                    continue;
                }
            }
            c.say("235 ok\r\n");
        } else if upper.starts_with("RCPT") {
            c.say(&format!("{}\r\n", script.rcpt.unwrap_or("250 ok")));
        } else if upper == "DATA" {
            c.say("354 go\r\n");
            let mut message = Vec::new();
            while let Some(l) = c.read() {
                if l == "." {
                    break;
                }
                message.push(l);
            }
            seen(seen_by).messages.push(message);
            c.say("250 queued\r\n");
        } else if upper == "QUIT" {
            c.say(&format!("{}\r\n", script.quit.unwrap_or("221 bye")));
            return;
        } else {
            c.say("250 ok\r\n");
        }
    }
}

/// Serves POP3 (USER/PASS/QUIT; POP3S with `tls`) on a free port; answers when each
/// QUIT was answered.
fn pop_server(tls: Option<&'static str>) -> (u16, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let quits = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&quits);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
            match tls {
                Some(cert) => {
                    let Ok(t) = rustls::ServerConnection::new(tls_config(cert)) else {
                        continue;
                    };
                    let s = rustls::StreamOwned::new(t, conn);
                    pop_session(Lines { s, buf: Vec::new() }, &keep);
                }
                None => pop_session(
                    Lines {
                        s: conn,
                        buf: Vec::new(),
                    },
                    &keep,
                ),
            }
        }
    });
    (port, quits)
}

fn pop_session<S: Read + Write>(mut c: Lines<S>, quits: &Mutex<Vec<Instant>>) {
    c.say("+OK POP3 ready\r\n");
    while let Some(line) = c.read() {
        if line.eq_ignore_ascii_case("QUIT") {
            c.say("+OK bye\r\n");
            quits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Instant::now());
            return;
        }
        c.say("+OK\r\n");
    }
}

fn commands(s: &Shared) -> Vec<Vec<String>> {
    seen(s).connections.iter().map(|c| c.1.clone()).collect()
}

#[test]
fn rcpt_530_rejected() {
    let script = Script {
        rcpt: Some("530 5.7.0 Authentication required"),
        ..Script::default()
    };
    let (port, _) = smtp_server(script.clone());
    let mut sim = Sim::mailing(&[], port, &[]);
    let end = sim.scan("a@hil.test,b@hil.test", 1);
    assert!(end.starts_with("failed auth_required RCPT"), "{end}");
    assert!(end.contains("530"), "{end}");

    let (port, _) = smtp_server(script);
    let mut sim = Sim::mailing(&["rcpt-530-rejected"], port, &[]);
    let end = sim.scan("a@hil.test,b@hil.test", 1);
    assert!(end.starts_with("failed rejected "), "{end}");
}

#[test]
fn address_max_253() {
    let label = |c: char| c.to_string().repeat(63);
    let domain = format!(
        "{}.{}.{}.{}",
        label('a'),
        label('b'),
        label('c'),
        label('d')
    );
    assert_eq!(domain.len(), 255);
    let address = format!("{}@{domain}", "l".repeat(64));
    assert_eq!(address.len(), 320);
    let mut sim = Sim::start(&[]);
    for key in ["device.address", "admin.address", "envelope_from.address"] {
        sim.ok(&format!("set {key} {address}"));
        assert_eq!(
            sim.cmd(&format!("get {key}"))[0],
            format!("{key}={address}")
        );
    }
    sim.ok(&format!("notify add {address}"));
    // A label over 63 or a domain over 255 is still refused.
    let long_label = format!("x@{}.com", "y".repeat(64));
    assert!(sim
        .status(&format!("set device.address {long_label}"))
        .starts_with("ERR config"));
    let long_domain = format!("x@{domain}.e");
    assert!(sim
        .status(&format!("set device.address {long_domain}"))
        .starts_with("ERR config"));

    let mut sim = Sim::start(&["address-max-253"]);
    let st = sim.status(&format!("set device.address {address}"));
    assert!(st.starts_with("ERR config device.address"), "{st}");
    assert!(st.contains("at most 253"), "{st}");
    sim.ok(&format!(
        "set device.address {}@{}",
        "l".repeat(64),
        label('a')
    ));
}

#[test]
fn pop_tls_unchecked() {
    // The POP server's certificate expired in 2021; the SMTP server is plain.
    for (quirks, want_done) in [(&[][..], false), (&["pop-tls-unchecked"][..], true)] {
        let (smtp, seen_smtp) = smtp_server(Script::default());
        let (pop, _) = pop_server(Some("expired"));
        let mut sim = Sim::mailing(
            quirks,
            smtp,
            &[
                "pop_before_smtp.enabled=on",
                "pop_before_smtp.wait=0",
                "pop.server=127.0.0.1",
                "pop.tls=pop3s",
                &format!("pop.ssl_port={pop}"),
                "pop.user=u",
                "pop.password=p",
            ],
        );
        let end = sim.scan("a@hil.test", 1);
        if want_done {
            assert_eq!(end, "done", "{quirks:?}");
            assert_eq!(seen(&seen_smtp).connections.len(), 1);
        } else {
            assert!(end.starts_with("failed cert_expired "), "{end}");
            assert!(
                seen(&seen_smtp).connections.is_empty(),
                "an SMTP connection was made"
            );
        }
    }
}

#[test]
fn quit_refusal_fails() {
    let script = Script {
        quit: Some("554 5.0.0 not now"),
        ..Script::default()
    };
    let (port, seen_by) = smtp_server(script.clone());
    let mut sim = Sim::mailing(&[], port, &[]);
    assert_eq!(sim.scan("a@hil.test", 1), "done");
    assert_eq!(seen(&seen_by).messages.len(), 1);

    let (port, _) = smtp_server(script);
    let mut sim = Sim::mailing(&["quit-refusal-fails"], port, &[]);
    let end = sim.scan("a@hil.test", 1);
    assert!(end.starts_with("failed rejected QUIT 554"), "{end}");
}

#[test]
fn malformed_challenge_ignored() {
    for mech in ["login", "plain"] {
        let script = Script {
            challenge: Some("!!not base64!!"),
            ..Script::default()
        };
        let auth = [
            "smtp.auth.enabled=on",
            "smtp.auth.user=printer",
            "smtp.auth.password=pw",
        ];
        let methods = format!("smtp.auth.methods={mech}");
        let mut extra = auth.to_vec();
        extra.push(methods.as_str());

        let (port, seen_by) = smtp_server(script.clone());
        let mut sim = Sim::mailing(&[], port, &extra);
        let end = sim.scan("a@hil.test", 1);
        assert!(end.starts_with("failed auth_failed "), "{mech}: {end}");
        let cmds = commands(&seen_by).concat();
        assert!(
            cmds.iter().any(|c| c == "*"),
            "{mech}: no cancel in {cmds:?}"
        );

        let (port, seen_by) = smtp_server(script);
        let mut sim = Sim::mailing(&["malformed-challenge-ignored"], port, &extra);
        assert_eq!(sim.scan("a@hil.test", 1), "done", "{mech}");
        let cmds = commands(&seen_by).concat();
        assert!(!cmds.iter().any(|c| c == "*"), "{mech}: {cmds:?}");
    }
}

#[test]
fn expired_intermediate_fails() {
    let script = Script {
        tls: Some("expired_intermediate"),
        ..Script::default()
    };
    // Default: only the server certificate's dates count (the expiry check is on).
    let (port, _) = smtp_server(script.clone());
    let mut sim = Sim::mailing(&[], port, &["smtp.tls=smtps", "smtp.verify.expiry=on"]);
    assert_eq!(sim.scan("a@hil.test", 1), "done");

    let (port, _) = smtp_server(script);
    let mut sim = Sim::mailing(
        &["expired-intermediate-fails"],
        port,
        &["smtp.tls=smtps", "smtp.verify.expiry=on"],
    );
    let end = sim.scan("a@hil.test", 1);
    assert!(end.starts_with("failed cert_expired "), "{end}");
    assert!(end.contains("intermediate"), "{end}");
}

/// A scan of 250 KB split at 100 KB: four fragments (base64 makes it 340 KB).
fn split_scan(quirks: &[&str]) -> (String, Shared) {
    let (port, seen_by) = smtp_server(Script::default());
    let mut sim = Sim::mailing(quirks, port, &["load.mode=split", "load.split_size=100"]);
    let end = sim.scan("a@hil.test", 250);
    (end, seen_by)
}

fn subjects(s: &Shared) -> Vec<String> {
    seen(s)
        .messages
        .iter()
        .filter_map(|m| m.iter().find(|l| l.starts_with("Subject: ")).cloned())
        .collect()
}

#[test]
fn fragments_one_connection() {
    let (end, seen_by) = split_scan(&[]);
    assert_eq!(end, "done");
    let cmds = commands(&seen_by);
    assert_eq!(cmds.len(), 4, "one connection per fragment");
    assert_eq!(seen(&seen_by).messages.len(), 4);

    let (end, seen_by) = split_scan(&["fragments-one-connection"]);
    assert_eq!(end, "done");
    let cmds = commands(&seen_by);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let count = |word: &str| cmds[0].iter().filter(|c| c.starts_with(word)).count();
    assert_eq!(
        (
            count("MAIL FROM"),
            count("RCPT TO"),
            count("DATA"),
            count("RSET"),
            count("QUIT")
        ),
        (4, 4, 4, 3, 1),
        "{:?}",
        cmds[0]
    );
    assert_eq!(seen(&seen_by).messages.len(), 4);
}

#[test]
fn no_fragment_subject_prefix() {
    let (end, seen_by) = split_scan(&[]);
    assert_eq!(end, "done");
    let subjects_of = subjects(&seen_by);
    assert_eq!(subjects_of.len(), 4, "{subjects_of:?}");
    for (i, s) in subjects_of.iter().enumerate() {
        assert!(
            s.starts_with(&format!("Subject: [{}/4] Scanned document", i + 1)),
            "{s}"
        );
    }

    let (end, seen_by) = split_scan(&["no-fragment-subject-prefix"]);
    assert_eq!(end, "done");
    let subjects_of = subjects(&seen_by);
    assert_eq!(subjects_of.len(), 4, "{subjects_of:?}");
    for s in &subjects_of {
        assert!(s.starts_with("Subject: Scanned document"), "{s}");
    }
}

#[test]
fn pop_wait_ignored() {
    // 60 s of device time at 100 times: 0.6 s between POP QUIT and the SMTP connect.
    for (quirks, waits) in [(&[][..], true), (&["pop-wait-ignored"][..], false)] {
        let (smtp, seen_smtp) = smtp_server(Script::default());
        let (pop, quits) = pop_server(None);
        let mut sim = Sim::mailing(
            quirks,
            smtp,
            &[
                "pop_before_smtp.enabled=on",
                "pop_before_smtp.wait=60",
                "pop.server=127.0.0.1",
                &format!("pop.port={pop}"),
                "pop.user=u",
                "pop.password=p",
            ],
        );
        assert_eq!(sim.scan("a@hil.test", 1), "done", "{quirks:?}");
        let quit = *quits.lock().expect("quits").first().expect("a POP QUIT");
        let connect = seen(&seen_smtp)
            .connections
            .first()
            .expect("an SMTP connection")
            .0;
        let gap = connect.saturating_duration_since(quit);
        if waits {
            assert!(gap >= Duration::from_millis(550), "{gap:?}");
        } else {
            assert!(gap < Duration::from_millis(300), "{gap:?}");
        }
    }
}

#[test]
fn lenient_input() {
    let bad = [
        "smtp.server 999.1.1.1",
        "smtp.server 1.2.3",
        "smtp.server 12345",
        "pop.server 999.1.1.1",
        "pop.server 1.2.3",
        "pop.server 12345",
        "device.address a@::1",
        "smtp.auth.methods plain,plain",
    ];
    let mut sim = Sim::start(&[]);
    for b in bad {
        let st = sim.status(&format!("set {b}"));
        assert!(st.starts_with("ERR config"), "{b}: {st}");
    }
    sim.ok("set device.address a@[IPv6:::1]");
    let mut sim = Sim::start(&["lenient-input"]);
    for b in bad {
        sim.ok(&format!("set {b}"));
    }
    // Only those forms: other bad values are still refused.
    for b in [
        "smtp.server a..b",
        "device.address a@b:c",
        "smtp.auth.methods plain,nope",
    ] {
        let st = sim.status(&format!("set {b}"));
        assert!(st.starts_with("ERR config"), "{b}: {st}");
    }
}

#[test]
fn password_shown() {
    for (quirks, shown) in [(&[][..], "***"), (&["password-shown"][..], "S3cret")] {
        let mut sim = Sim::start(quirks);
        sim.ok("set smtp.auth.password S3cret");
        sim.ok("set pop.password S3cret");
        assert_eq!(
            sim.cmd("get smtp.auth.password"),
            [format!("smtp.auth.password={shown}"), "OK".into()],
            "{quirks:?}"
        );
        let all = sim.cmd("show");
        assert!(all.contains(&format!("pop.password={shown}")), "{all:?}");
    }
}
