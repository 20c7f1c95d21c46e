//! The thin tokio layer under the SMTP client: resolve the server address, connect,
//! move bytes, and bound the connect and every wait for a reply by the timeout
//! (SPEC §3 steps 1–2).

use std::net::IpAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::resolve::{resolve, Names};
use crate::revocation;
use crate::smtp_client::{
    Action, Client, Envelope, Outcome, RcptResult, ReplyReader, Step, TlsMode,
};
use crate::stage;
use crate::verify::{Checks, DeviceVerifier};

/// What the TLS layer needs: the checks that are on, the device clock, the external
/// certificate store, and whether revocation fails soft (a firmware variant).
#[derive(Debug, Clone)]
pub struct TlsSetup {
    pub checks: Checks,
    pub now_unix: i64,
    pub store: std::sync::Arc<Vec<Vec<u8>>>,
    pub soft_fail_revocation: bool,
    /// Where revocation is asked: OCSP, the CRL, or both (a firmware may lack one).
    pub sources: revocation::Sources,
}

/// A connection before or after TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }
    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(b).await,
            Stream::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
        }
    }
    async fn shutdown(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        }
    }
}

/// Runs the TLS handshake on `tcp`, the checks of `setup` applied to the certificate.
async fn handshake(
    tcp: TcpStream,
    server: &str,
    setup: &TlsSetup,
    timeout: Duration,
    names: &Names,
) -> Result<Stream, Outcome> {
    let _stage = stage::enter("tls_handshake", "the TLS handshake");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = std::sync::Arc::new(DeviceVerifier::new(
        setup.checks,
        server,
        setup.now_unix,
        std::sync::Arc::clone(&setup.store),
        std::sync::Arc::clone(&provider),
    ));
    let failure = std::sync::Arc::clone(&verifier.failure);
    let seen = std::sync::Arc::clone(&verifier.seen);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("tls_handshake", format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Printers send the server name when it is a host name; an IP literal gets none.
    let name = match server.split('%').next().unwrap_or(server).parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(server.to_string()).map_err(|e| {
            failed(
                "tls_handshake",
                format!("{server:?} as a TLS server name: {e}"),
            )
        })?,
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => {
            if setup.checks.revocation {
                let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
                revocation::check(
                    &seen,
                    setup.now_unix,
                    timeout,
                    setup.soft_fail_revocation,
                    setup.sources,
                    names,
                )
                .await
                .map_err(|f| failed(f.class, f.detail))?;
            }
            Ok(Stream::Tls(Box::new(tls)))
        }
        Ok(Err(e)) => {
            let checked = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
            Err(match checked {
                Some(f) => failed(f.class, f.detail),
                None => failed("tls_handshake", format!("TLS handshake failed: {e}")),
            })
        }
        Err(_) => Err(failed(
            "timeout",
            format!("no TLS handshake within {}", secs(timeout)),
        )),
    }
}

/// The result of one SMTP session.
#[derive(Debug, Clone)]
pub struct SessionResult {
    pub outcome: Outcome,
    pub recipients: Vec<RcptResult>,
    /// The transaction the session ended in (0: the envelope's `message`).
    pub transaction: usize,
}

fn failed(class: &'static str, detail: String) -> Outcome {
    Outcome::Failed { class, detail }
}

/// Connects to the server: to its one address (a literal, a `--resolve` entry), or to
/// the first of its addresses that answers within `timeout` each. A name resolved
/// through DNS tries every address in turn (SPEC §3 step 1) and fails with `connect`,
/// naming each address's failure, when none connected; an address given directly
/// fails with `timeout` when its connect runs out of time (§3 step 2).
pub async fn connect(
    server: &str,
    port: u16,
    timeout: Duration,
    names: &Names,
) -> Result<TcpStream, Outcome> {
    let _stage = stage::enter("connect", "connecting");
    let resolved = resolve(server, port, names)
        .await
        .map_err(|e| failed("connect", e.to_string()))?;
    let mut tried = Vec::new();
    for addr in &resolved.addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => tried.push(format!("{addr}: {e}")),
            Err(_) if !resolved.by_dns => {
                return Err(failed(
                    "timeout",
                    format!("connect to {addr}: no answer within {}", secs(timeout)),
                ))
            }
            Err(_) => tried.push(format!("{addr}: no answer within {}", secs(timeout))),
        }
    }
    if resolved.by_dns {
        return Err(failed(
            "connect",
            format!(
                "no address of {server} connected ({} from DNS): {}",
                resolved.addrs.len(),
                tried.join("; ")
            ),
        ));
    }
    Err(failed(
        "connect",
        format!("connect to {}", tried.pop().unwrap_or_default()),
    ))
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs one SMTP session over plain TCP.
pub async fn deliver(
    server: &str,
    port: u16,
    timeout: Duration,
    env: Envelope,
    tls: TlsSetup,
    names: &Names,
) -> SessionResult {
    let mode = env.tls;
    let mut client = Client::new(env);
    let outcome = match connect(server, port, timeout, names).await {
        Ok(tcp) if mode == TlsMode::Smtps => {
            match handshake(tcp, server, &tls, timeout, names).await {
                Ok(stream) => run(stream, &mut client, timeout, server, &tls, names).await,
                Err(o) => o,
            }
        }
        Ok(tcp) => {
            run(
                Stream::Plain(tcp),
                &mut client,
                timeout,
                server,
                &tls,
                names,
            )
            .await
        }
        Err(o) => o,
    };
    SessionResult {
        outcome,
        recipients: client.recipients().to_vec(),
        transaction: client.transaction(),
    }
}

async fn run(
    mut stream: Stream,
    client: &mut Client,
    timeout: Duration,
    server: &str,
    tls: &TlsSetup,
    names: &Names,
) -> Outcome {
    let _stage = stage::enter("rejected", "the SMTP session");
    let mut reader = ReplyReader::default();
    let mut pending = std::collections::VecDeque::new();
    let mut buf = vec![0u8; 16 * 1024];
    // The timeout bounds each wait for a whole reply, however it trickles in.
    let mut deadline = tokio::time::Instant::now() + timeout;
    loop {
        let reply = match pending.pop_front() {
            Some(r) => r,
            None => {
                let at_quit = client.step() == Step::Quit;
                let step = client.step().name();
                let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
                // The message was accepted before QUIT: silence or a hang-up at QUIT
                // does not undo the delivery (only an explicit refusal does).
                if at_quit && matches!(read, Err(_) | Ok(Ok(0)) | Ok(Err(_))) {
                    return Outcome::Delivered;
                }
                let n = match read {
                    Err(_) => {
                        return failed(
                            "timeout",
                            format!("no reply to {step} within {}", secs(timeout)),
                        )
                    }
                    Ok(Err(e)) => return failed("connect", format!("reading the reply to {step}: {e}")),
                    Ok(Ok(0)) => {
                        return failed(
                            "connect",
                            format!("server closed the connection while the device waited for the reply to {step}"),
                        )
                    }
                    Ok(Ok(n)) => n,
                };
                match reader.push(&buf[..n]) {
                    Ok(replies) => pending.extend(replies),
                    Err(e) => return failed("rejected", format!("{step}: {e}")),
                }
                continue;
            }
        };
        let mut action = client.on_reply(reply);
        if action == Action::StartTls {
            let Stream::Plain(tcp) = stream else {
                return failed("tls_handshake", "STARTTLS inside TLS".into());
            };
            if !pending.is_empty() || reader.is_mid_reply() {
                // Bytes after the 220 in plaintext would be read as if protected.
                return failed(
                    "tls_handshake",
                    "the server sent data after its 220 to STARTTLS".into(),
                );
            }
            stream = match handshake(tcp, server, tls, timeout, names).await {
                Ok(s) => s,
                Err(o) => return o,
            };
            action = client.tls_established();
        }
        match action {
            Action::StartTls => return failed("tls_handshake", "STARTTLS twice".into()),
            Action::Send(bytes) => {
                let step = client.step().name();
                // A large message may take long to send; only a stall is a timeout.
                for chunk in bytes.chunks(64 * 1024) {
                    match tokio::time::timeout(timeout, stream.write_all(chunk)).await {
                        Err(_) => {
                            return failed(
                                "timeout",
                                format!(
                                    "sending {step}: the server took nothing for {}",
                                    secs(timeout)
                                ),
                            )
                        }
                        Ok(Err(e)) => return failed("connect", format!("sending {step}: {e}")),
                        Ok(Ok(())) => {}
                    }
                }
                deadline = tokio::time::Instant::now() + timeout;
            }
            Action::Finish(bytes, outcome) => {
                if !bytes.is_empty() {
                    // A courtesy QUIT after a failure: its fate does not change the outcome.
                    let _ = tokio::time::timeout(timeout, stream.write_all(&bytes)).await;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                return outcome;
            }
        }
    }
}

/// How to reach the POP3 server for POP before SMTP (SPEC §3.6).
#[derive(Debug, Clone)]
pub struct PopTarget {
    pub server: String,
    pub port: u16,
    /// POP3S: TLS from the first byte.
    pub implicit_tls: bool,
    pub plan: crate::pop_client::PopPlan,
    /// The certificate checks on the POP server's certificate (SPEC §3.5: the same
    /// five as for SMTP, the name against `pop.server`); `None`, a planted old bug,
    /// accepts any certificate.
    pub tls: Option<TlsSetup>,
}

/// Logs in to the POP3 server and quits; every wait bounded by `timeout`. POP3 over
/// TLS (POP3S or STLS) checks the server's certificate as the SMTP client does
/// (SPEC §3.5); a failed check fails the job with the check's class.
pub async fn pop_before_smtp(
    target: PopTarget,
    timeout: Duration,
    names: &Names,
) -> Result<(), Outcome> {
    use crate::pop_client::{PopAction, PopClient};
    let _stage = stage::enter("pop_auth", "POP before SMTP");
    let tcp = connect(&target.server, target.port, timeout, names).await?;
    let open = target.tls.clone().unwrap_or_else(|| TlsSetup {
        checks: Checks::default(),
        now_unix: 0,
        store: std::sync::Arc::new(Vec::new()),
        soft_fail_revocation: false,
        sources: revocation::Sources::default(),
    });
    let mut stream = if target.implicit_tls {
        handshake(tcp, &target.server, &open, timeout, names).await?
    } else {
        Stream::Plain(tcp)
    };
    let mut client = PopClient::new(target.plan);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One status line.
        let line = loop {
            if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buf.drain(..=pos).collect();
                break String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
            }
            if buf.len() > 4096 {
                return Err(failed(
                    "pop_auth",
                    "a POP3 reply line longer than 4096 bytes".into(),
                ));
            }
            match tokio::time::timeout(timeout, stream.read(&mut chunk)).await {
                Err(_) => {
                    return Err(failed(
                        "timeout",
                        format!("POP3: no reply within {}", secs(timeout)),
                    ))
                }
                Ok(Ok(0)) => {
                    return Err(failed(
                        "connect",
                        "the POP3 server closed the connection".into(),
                    ))
                }
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(failed("connect", format!("POP3: {e}"))),
            }
        };
        let mut action = client.on_line(&line);
        loop {
            match action {
                PopAction::Send(bytes) => {
                    match tokio::time::timeout(timeout, stream.write_all(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(failed("connect", format!("POP3: {e}"))),
                        Err(_) => {
                            return Err(failed("timeout", "POP3: the server took nothing".into()))
                        }
                    }
                    break;
                }
                PopAction::StartTls => {
                    let Stream::Plain(tcp) = stream else {
                        return Err(failed("tls_handshake", "STLS inside TLS".into()));
                    };
                    if !buf.is_empty() {
                        return Err(failed(
                            "tls_handshake",
                            "the POP3 server sent data after +OK to STLS".into(),
                        ));
                    }
                    stream = handshake(tcp, &target.server, &open, timeout, names).await?;
                    action = client.tls_established();
                }
                PopAction::Done => {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                    return Ok(());
                }
                PopAction::Fail { class, detail } => {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
                    return Err(failed(class, format!("POP before SMTP: {detail}")));
                }
            }
        }
    }
}
