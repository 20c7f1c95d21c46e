//! Every scenario in `scenarios/` is started and its checks are run against it by a
//! client that is not ours: raw sockets (and rustls for TLS), a line at a time,
//! asserting the scripted replies, delays, drops, hangs, garbage and TLS aborts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hil_mail::scenario::{Check, CheckStep, Proto, Scenario};
use hil_mail::serve::{self, Running};

/// Scenario delays run this many times faster than written.
const SCALE: f64 = 20.0;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref(),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(b),
            Conn::Tls(s) => s.write_all(b).and_then(|_| s.flush()),
        }
    }
}

fn tls_client(tcp: TcpStream) -> Result<Conn, String> {
    let config = hil_mail::tls::danger::client_config_accepting_any(rustls::DEFAULT_VERSIONS)
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut tcp = tcp;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// What came back for one step.
#[derive(Debug)]
enum Got {
    Reply(String),
    Closed,
    Silence,
    Partial(String),
    Garbage(Vec<u8>),
}

struct Probe {
    conn: Conn,
    buf: Vec<u8>,
    proto: Proto,
}

fn is_reply_start(b: u8, proto: Proto) -> bool {
    match proto {
        Proto::Smtp => b.is_ascii_digit(),
        Proto::Pop3 => b == b'+' || b == b'-',
    }
}

impl Probe {
    /// Reads one reply (SMTP: up to the line `NNN text`; POP3: the status line, and
    /// for `multi` the lines up to `.`), or says what else happened within `wait`.
    fn read_reply(&mut self, wait: Duration, multi: bool) -> Got {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(first) = self.buf.first() {
                if !is_reply_start(*first, self.proto) {
                    return Got::Garbage(std::mem::take(&mut self.buf));
                }
            }
            if let Some(done) = self.complete(multi) {
                let text: Vec<u8> = self.buf.drain(..done).collect();
                return Got::Reply(String::from_utf8_lossy(&text).to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return if self.buf.is_empty() {
                    Got::Silence
                } else {
                    Got::Partial(String::from_utf8_lossy(&self.buf).to_string())
                };
            }
            let _ = self
                .conn
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let mut chunk = [0u8; 8192];
            match self.conn.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Got::Closed,
            }
        }
    }

    /// The length of the first complete reply in the buffer.
    fn complete(&self, multi: bool) -> Option<usize> {
        let text = &self.buf;
        let mut start = 0;
        while let Some(pos) = text[start..].iter().position(|b| *b == b'\n') {
            let line = &text[start..start + pos + 1];
            let end = start + pos + 1;
            match self.proto {
                Proto::Smtp => {
                    if line.len() < 4 || line[3] != b'-' {
                        return Some(end);
                    }
                }
                Proto::Pop3 => {
                    let first = start == 0;
                    if first && (!multi || line.starts_with(b"-ERR")) {
                        return Some(end);
                    }
                    if !first && (line == b".\r\n" || line == b".\n") {
                        return Some(end);
                    }
                }
            }
            start = end;
        }
        None
    }
}

fn connect(addr: SocketAddr, tls: bool) -> Result<Conn, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    if tls {
        tls_client(tcp)
    } else {
        Ok(Conn::Plain(tcp))
    }
}

fn pop_multi(cmd: &str) -> bool {
    let mut w = cmd.split_whitespace();
    let verb = w.next().unwrap_or("").to_ascii_uppercase();
    let arg = w.next();
    matches!(verb.as_str(), "CAPA" | "RETR")
        || (matches!(verb.as_str(), "LIST" | "UIDL") && arg.is_none())
}

fn pop_login(run: &Running, scenario: &Scenario, user: &str) -> Result<(), String> {
    let pop = scenario.pop3.as_ref().ok_or("no pop3 section")?;
    let password = pop
        .accounts
        .iter()
        .find(|a| a.user == user)
        .map(|a| a.password.clone())
        .ok_or_else(|| format!("no POP3 account {user}"))?;
    let (kind, addr) = run
        .pop3_endpoints()
        .first()
        .copied()
        .ok_or("no POP3 listener")?;
    let conn = connect(addr, kind == hil_mail::smtp::ListenerKind::Tls)?;
    let mut p = Probe {
        conn,
        buf: Vec::new(),
        proto: Proto::Pop3,
    };
    let wait = Duration::from_secs(5);
    for line in [
        None,
        Some(format!("USER {user}")),
        Some(format!("PASS {password}")),
        Some("QUIT".into()),
    ] {
        if let Some(l) = line {
            p.conn
                .write_all(format!("{l}\r\n").as_bytes())
                .map_err(|e| e.to_string())?;
        }
        match p.read_reply(wait, false) {
            Got::Reply(r) if r.starts_with("+OK") => {}
            other => return Err(format!("POP3 login as {user}: {other:?}")),
        }
    }
    Ok(())
}

fn run_check(run: &Running, scenario: &Scenario, check: &Check) -> Result<(), String> {
    let endpoints = match check.server {
        Proto::Smtp => run.smtp_endpoints(),
        Proto::Pop3 => run.pop3_endpoints(),
    };
    let (kind, addr) = endpoints
        .iter()
        .find(|(k, _)| check.listener.is_none_or(|l| l == *k))
        .copied()
        .ok_or("no such listener")?;
    let tls = check
        .tls
        .unwrap_or(kind == hil_mail::smtp::ListenerKind::Tls);
    let first_fails_tls =
        check.steps.first().and_then(|s| s.expect.as_deref()) == Some("tls_fails");
    if let Some(user) = check.steps.first().and_then(|s| s.pop_login.clone()) {
        pop_login(run, scenario, &user)?;
    }
    let conn = match connect(addr, tls) {
        Ok(c) => c,
        Err(e) if first_fails_tls && tls => {
            return Ok(()).map(|_: ()| eprintln!("  tls fails as scripted: {e}"))
        }
        Err(e) => return Err(e),
    };
    if first_fails_tls && tls {
        return Err("the TLS handshake completed, the scenario says it fails".into());
    }
    let mut p = Probe {
        conn,
        buf: Vec::new(),
        proto: check.server,
    };
    for (i, step) in check.steps.iter().enumerate() {
        let at = format!("step {i}");
        if i > 0 {
            if let Some(user) = &step.pop_login {
                pop_login(run, scenario, user)?;
            }
        }
        let multi = step.send.as_deref().is_some_and(pop_multi) && check.server == Proto::Pop3;
        let started = Instant::now();
        send(&mut p, step).map_err(|e| format!("{at}: send: {e}"))?;
        let Some(expect) = step.expect.as_deref() else {
            continue;
        };
        let wait = Duration::from_secs_f64(step.wait_ms.unwrap_or(1000) as f64 / 1000.0 / SCALE)
            .max(Duration::from_millis(150));
        let patient = Duration::from_secs(10);
        let got = match expect {
            "silence" | "partial" => p.read_reply(wait, multi),
            _ => p.read_reply(patient, multi),
        };
        let took = started.elapsed();
        match (expect, &got) {
            ("closed", Got::Closed) | ("silence", Got::Silence) => {}
            ("garbage", Got::Garbage(b)) if !b.is_empty() => {}
            ("partial", Got::Partial(t)) if !t.is_empty() && !t.ends_with('\n') => {}
            ("tls_fails", Got::Reply(r)) if step.starttls => {
                let spare = Conn::Plain(p.conn.tcp().try_clone().map_err(|e| e.to_string())?);
                let conn = std::mem::replace(&mut p.conn, spare);
                let Conn::Plain(tcp) = conn else {
                    return Err(format!("{at}: TLS inside TLS"));
                };
                if !(r.starts_with("220") || r.starts_with("+OK")) {
                    return Err(format!("{at}: expected a go-ahead for TLS, got {r:?}"));
                }
                if tls_client(tcp).is_ok() {
                    return Err(format!(
                        "{at}: the TLS handshake completed, the scenario says it fails"
                    ));
                }
                return Ok(());
            }
            (prefix, Got::Reply(r))
                if !["closed", "silence", "garbage", "partial", "tls_fails"].contains(&prefix) =>
            {
                let last = match check.server {
                    Proto::Smtp => r.trim_end().lines().last().unwrap_or(""),
                    Proto::Pop3 => r.lines().next().unwrap_or(""),
                };
                if !last.starts_with(prefix) {
                    return Err(format!("{at}: expected {prefix:?}, got {r:?}"));
                }
            }
            _ => return Err(format!("{at}: expected {expect}, got {got:?}")),
        }
        if let Got::Reply(r) = &got {
            if let Some(c) = &step.contains {
                if !r.contains(c.as_str()) {
                    return Err(format!("{at}: reply {r:?} lacks {c:?}"));
                }
            }
            if let Some(c) = &step.lacks {
                if r.contains(c.as_str()) {
                    return Err(format!("{at}: reply {r:?} contains {c:?}"));
                }
            }
        }
        if let Some(min) = step.min_ms {
            let want = Duration::from_secs_f64(min as f64 / 1000.0 / SCALE);
            if took < want {
                return Err(format!(
                    "{at}: answered in {took:?}, the scenario delays it {want:?}"
                ));
            }
        }
        if step.starttls {
            let spare = Conn::Plain(p.conn.tcp().try_clone().map_err(|e| e.to_string())?);
            let conn = std::mem::replace(&mut p.conn, spare);
            let Conn::Plain(tcp) = conn else {
                return Err(format!("{at}: TLS inside TLS"));
            };
            p.conn = tls_client(tcp).map_err(|e| format!("{at}: {e}"))?;
        }
    }
    Ok(())
}

fn send(p: &mut Probe, step: &CheckStep) -> std::io::Result<()> {
    if let Some(l) = &step.send {
        p.conn.write_all(format!("{l}\r\n").as_bytes())?;
    }
    if let Some(raw) = &step.send_raw {
        p.conn.write_all(raw.as_bytes())?;
    }
    if let Some(n) = step.send_body {
        let mut body = Vec::with_capacity(n + 8);
        while body.len() < n {
            let line_len = (n - body.len()).clamp(1, 78);
            body.extend(std::iter::repeat_n(b'x', line_len.saturating_sub(2).max(1)));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        p.conn.write_all(&body)?;
    }
    Ok(())
}

#[test]
fn every_scenario_does_what_its_checks_say() {
    let scenarios = Scenario::load_dir(&scenarios_dir()).expect("the scenario library loads");
    assert!(scenarios.len() >= 25, "only {} scenarios", scenarios.len());
    // The committed certificate zoo (certs/) serves the scenarios' certificates.
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs");
    for name in scenarios.iter().flat_map(serve::cert_names) {
        assert!(
            certs.join(format!("{name}.crt")).exists(),
            "no certs/{name}.crt"
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    let mut checks = 0;
    for s in &scenarios {
        assert!(
            !s.check.is_empty(),
            "{}: a scenario without checks is not exercised",
            s.name
        );
        let run = rt
            .block_on(serve::start(
                s,
                &hil_mail::netaddr::BindAddr::loopback(),
                &certs,
                SCALE,
            ))
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        for c in &s.check {
            checks += 1;
            if let Err(e) = run_check(&run, s, c) {
                failures.push(format!("{} / {}: {e}", s.name, c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checks} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
