//! The thin tokio layer under the SMTP client: resolve the server address, connect,
//! move bytes, and bound the connect and every wait for a reply by the timeout
//! (SPEC §3 steps 1–2).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::smtp_client::{Action, Client, Envelope, Outcome, RcptResult, ReplyReader, Step};

/// The result of one SMTP session.
#[derive(Debug, Clone)]
pub struct SessionResult {
    pub outcome: Outcome,
    pub recipients: Vec<RcptResult>,
}

fn failed(class: &'static str, detail: String) -> Outcome {
    Outcome::Failed { class, detail }
}

/// Resolves `smtp.server` (host name, IPv4, or IPv6 with optional `%zone`).
pub async fn resolve(server: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Some((addr, zone)) = server.split_once('%') {
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| format!("{server:?} is not an IPv6 address"))?;
        let scope = match zone.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                interface_index(zone).ok_or_else(|| format!("no network interface {zone:?}"))?
            }
        };
        return Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope))]);
    }
    if let Ok(ip) = server.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::net::lookup_host((server, port)).await {
        Ok(addrs) => {
            let v: Vec<SocketAddr> = addrs.collect();
            if v.is_empty() {
                Err(format!("host {server:?} has no address"))
            } else {
                Ok(v)
            }
        }
        Err(e) => Err(format!("cannot resolve {server:?}: {e}")),
    }
}

fn interface_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Connects to the first address that answers within `timeout`.
pub async fn connect(server: &str, port: u16, timeout: Duration) -> Result<TcpStream, Outcome> {
    let addrs = resolve(server, port)
        .await
        .map_err(|e| failed("connect", e))?;
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = format!("connect to {addr}: {e}"),
            Err(_) => {
                return Err(failed(
                    "timeout",
                    format!("connect to {addr}: no answer within {}", secs(timeout)),
                ))
            }
        }
    }
    Err(failed("connect", last))
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs one SMTP session over plain TCP.
pub async fn deliver(server: &str, port: u16, timeout: Duration, env: Envelope) -> SessionResult {
    let mut client = Client::new(env);
    let outcome = match connect(server, port, timeout).await {
        Ok(stream) => run(stream, &mut client, timeout).await,
        Err(o) => o,
    };
    SessionResult {
        outcome,
        recipients: client.recipients().to_vec(),
    }
}

async fn run<S>(mut stream: S, client: &mut Client, timeout: Duration) -> Outcome
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
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
        match client.on_reply(reply) {
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
