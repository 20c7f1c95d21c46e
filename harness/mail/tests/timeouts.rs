//! Making a client time out, over real sockets on loopback:
//! - a TCP connect: [`SilentPort`], whose connects never complete (measured here);
//! - a TLS handshake: the `hang` fault at `tls_handshake`, where the server reads the
//!   ClientHello and never answers, on SMTPS, STARTTLS, POP3S and STLS; the same
//!   listener without the fault fails the handshake at once (this client trusts no
//!   certificate), so the wait is the fault's.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hil_mail::scenario::Scenario;
use hil_mail::serve::{self, Running};
use hil_mail::silent::SilentPort;
use hil_mail::smtp::ListenerKind;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a client here waits for a connect or a handshake.
const LIMIT: Duration = Duration::from_millis(1500);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_connect_to_a_silent_port_times_out() {
    let rt = runtime();
    rt.block_on(async {
        let port = SilentPort::open("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("a silent port");
        // Several clients at once, each waiting its whole limit: none is refused.
        let mut waits = Vec::new();
        for _ in 0..3 {
            let addr = port.addr();
            waits.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = tokio::time::timeout(LIMIT, TcpStream::connect(addr)).await;
                (r.is_err(), t.elapsed())
            }));
        }
        for w in waits {
            let (timed_out, took) = w.await.expect("task");
            assert!(timed_out, "the connect completed or failed after {took:?}");
            assert!(took >= LIMIT, "{took:?}");
        }
        // A blocking client's own connect timeout, as a device's would be.
        let addr = port.addr();
        let (r, took) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let r = std::net::TcpStream::connect_timeout(&addr, LIMIT);
            (r.map(|_| ()).map_err(|e| e.kind()), t.elapsed())
        })
        .await
        .expect("task");
        assert_eq!(r, Err(std::io::ErrorKind::TimedOut), "after {took:?}");
        eprintln!(
            "connect to {addr} ({} queued): timed out after {took:?} (limit {LIMIT:?})",
            port.queued()
        );
    });
}

#[test]
fn a_silent_port_on_ipv6_loopback_too() {
    let rt = runtime();
    rt.block_on(async {
        let bind: SocketAddr = "[::1]:0".parse().expect("addr");
        if std::net::TcpListener::bind(bind).is_err() {
            eprintln!("no IPv6 loopback here: not tested");
            return;
        }
        let port = SilentPort::open(bind).await.expect("a silent port");
        let r = tokio::time::timeout(LIMIT, TcpStream::connect(port.addr())).await;
        assert!(r.is_err(), "the connect did not hang: {r:?}");
    });
}

fn start(rt: &tokio::runtime::Runtime, toml: &str) -> Running {
    let scenario = Scenario::parse(Path::new("timeouts.toml"), toml).expect("scenario");
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs");
    rt.block_on(serve::start(
        &scenario,
        &hil_mail::netaddr::BindAddr::loopback(),
        &certs,
        1.0,
    ))
    .expect("servers")
}

/// A scenario with SMTP and POP3 listeners of every TLS kind, with or without the
/// hang at the handshake.
fn scenario(hang: bool) -> String {
    let fault = |server: &str| {
        if hang {
            format!("[[{server}.faults]]\nstep = \"tls_handshake\"\naction = \"hang\"\n")
        } else {
            String::new()
        }
    };
    format!(
        r#"
[smtp]
idle_timeout_s = 30
[[smtp.listeners]]
kind = "tls"
cert = "valid"
[[smtp.listeners]]
kind = "starttls"
cert = "valid"
{smtp}
[pop3]
accounts = [{{ user = "printer", password = "pop-Pass-1" }}]
idle_timeout_s = 30
[[pop3.listeners]]
kind = "tls"
cert = "valid"
[[pop3.listeners]]
kind = "starttls"
cert = "valid"
{pop3}
[[check]]
steps = [{{ expect = "tls_fails" }}]
"#,
        smtp = fault("smtp"),
        pop3 = fault("pop3"),
    )
}

/// Reads one answer (a whole multi-line SMTP reply); its first line.
async fn answer(r: &mut BufReader<TcpStream>) -> String {
    let mut first = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(LIMIT, r.read_line(&mut line))
            .await
            .expect("an answer in time")
            .expect("read");
        if first.is_empty() {
            first = line.trim_end().to_string();
        }
        if n == 0 || line.as_bytes().get(3) != Some(&b'-') {
            return first;
        }
    }
}

/// Connects to `addr` and, for a STARTTLS/STLS listener, asks for TLS in plaintext.
async fn before_tls(addr: SocketAddr, kind: ListenerKind, pop: bool) -> TcpStream {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    if kind != ListenerKind::Starttls {
        return tcp;
    }
    let mut r = BufReader::new(tcp);
    let greeting = answer(&mut r).await;
    let asks: &[&str] = if pop {
        &["STLS"]
    } else {
        &["EHLO me", "STARTTLS"]
    };
    let mut last = greeting;
    for a in asks {
        r.get_mut()
            .write_all(format!("{a}\r\n").as_bytes())
            .await
            .expect("write");
        last = answer(&mut r).await;
    }
    assert!(last.starts_with("220") || last.starts_with("+OK"), "{last}");
    r.into_inner()
}

/// The TLS handshake of a client that trusts no certificate: `None` if it did not end
/// within [`LIMIT`], else whether it succeeded; and how long it took.
async fn handshake(tcp: TcpStream) -> (Option<bool>, Duration) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("mx.hil.test").expect("name");
    let t = Instant::now();
    let r = tokio::time::timeout(LIMIT, connector.connect(name, tcp)).await;
    (r.ok().map(|r| r.is_ok()), t.elapsed())
}

#[test]
fn a_tls_handshake_hangs_on_every_tls_listener_with_the_hang_fault() {
    let rt = runtime();
    for hang in [true, false] {
        let run = start(&rt, &scenario(hang));
        let listeners: Vec<(bool, ListenerKind, SocketAddr)> = run
            .smtp_endpoints()
            .into_iter()
            .map(|(k, a)| (false, k, a))
            .chain(run.pop3_endpoints().into_iter().map(|(k, a)| (true, k, a)))
            .collect();
        assert_eq!(listeners.len(), 4);
        // All at once: the hung ones wait their limit together.
        let tries: Vec<_> = listeners
            .into_iter()
            .map(|(pop, kind, addr)| {
                rt.spawn(async move {
                    let tcp = before_tls(addr, kind, pop).await;
                    (pop, kind, handshake(tcp).await)
                })
            })
            .collect();
        for t in tries {
            let (pop, kind, (ended, took)) = rt.block_on(t).expect("task");
            let server = if pop { "POP3" } else { "SMTP" };
            let what = format!("{server} {} (hang: {hang})", kind.name());
            if hang {
                assert_eq!(ended, None, "{what}: the handshake ended after {took:?}");
                assert!(took >= LIMIT, "{what}: {took:?}");
            } else {
                // Refused by this client (no trusted root), and at once.
                assert_eq!(ended, Some(false), "{what}");
                assert!(took < LIMIT / 2, "{what}: {took:?}");
            }
        }
        let smtp = run.take_smtp(Duration::from_secs(10)).connections;
        let pop = run.pop3.as_ref().expect("pop3");
        assert!(pop.wait_idle(Duration::from_secs(10)));
        let pop = pop.take();
        let fired: Vec<String> = smtp
            .iter()
            .flat_map(|c| &c.fired_faults)
            .chain(pop.iter().flat_map(|c| &c.fired_faults))
            .map(|f| format!("{} {} {}", f.step, f.occurrence, f.action))
            .collect();
        let want = if hang { 4 } else { 0 };
        assert_eq!(fired.len(), want, "{fired:?}");
        assert!(
            fired.iter().all(|f| f == "tls_handshake 1 hang"),
            "{fired:?}"
        );
    }
}
