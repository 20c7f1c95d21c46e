//! What the fake SMTP and POP3 servers' tokio layers share: the accept loop, a
//! connection before or after TLS, throttled writes, draining a hung connection, and
//! the TLS handshake with its scripted fault.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::faults::Action;
use crate::smtp::{ListenerKind, GARBAGE};
use crate::tls::Identity;

/// Which fake server a listener belongs to, as its errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Smtp,
    Pop3,
}

impl Server {
    pub fn name(&self) -> &'static str {
        match self {
            Server::Smtp => "SMTP",
            Server::Pop3 => "POP3",
        }
    }
}

/// Why a fake server did not start: a TLS listener without a certificate, or an
/// address it cannot listen on.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The SMTP server's text never named the server (`the tls listener on …`); the
    /// POP3 server's did.
    #[error(
        "the {}{} listener on {bind} needs a certificate",
        match .server { Server::Smtp => "", Server::Pop3 => "POP3 " },
        .kind.name()
    )]
    NeedsCertificate {
        server: Server,
        kind: ListenerKind,
        bind: SocketAddr,
    },
    #[error("fake {} server cannot listen on {bind}: {source}", .server.name())]
    CannotListen {
        server: Server,
        bind: SocketAddr,
        source: std::io::Error,
    },
    /// The listening socket has no local address (the system refused to say).
    #[error("{0}")]
    LocalAddr(std::io::Error),
}

/// Opens the listener of one `kind` of `server` on `bind`, refusing a TLS kind with no
/// certificate; answers it and the address it got (the port, when `bind`'s was 0).
pub async fn listen(
    server: Server,
    kind: ListenerKind,
    bind: SocketAddr,
    has_identity: bool,
) -> Result<(TcpListener, SocketAddr), ListenError> {
    if kind != ListenerKind::Plain && !has_identity {
        return Err(ListenError::NeedsCertificate { server, kind, bind });
    }
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| ListenError::CannotListen {
            server,
            bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(ListenError::LocalAddr)?;
    Ok((listener, addr))
}

/// Accepts connections on `listener` for as long as the runtime runs, each served by
/// `serve` on a task of its own.
pub fn spawn_accept<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    tokio::spawn(serve(stream, peer));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
}

/// A connection before or after TLS.
pub enum ServerStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl ServerStream {
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.read(buf).await,
            ServerStream::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_chunk(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            ServerStream::Plain(s) => s.write_all(b).await,
            ServerStream::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
        }
    }

    /// Writes `b`, at most `throttle` bytes per second of device time when given
    /// (`scale`: device time runs this much faster).
    pub async fn write_all(
        &mut self,
        b: &[u8],
        throttle: Option<u32>,
        scale: f64,
    ) -> std::io::Result<()> {
        let Some(bps) = throttle else {
            return self.write_chunk(b).await;
        };
        let rate = (bps as f64 * scale.max(1e-6)).max(1.0);
        let chunk = ((rate / 10.0) as usize).max(1);
        for c in b.chunks(chunk) {
            self.write_chunk(c).await?;
            tokio::time::sleep(Duration::from_secs_f64(c.len() as f64 / rate)).await;
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = match self {
            ServerStream::Plain(s) => s.shutdown().await,
            ServerStream::Tls(s) => s.shutdown().await,
        };
    }

    /// The TLS facts of the connection, if it is in TLS.
    pub fn tls_facts(&self, identity: &Identity) -> Option<crate::tls::TlsFacts> {
        match self {
            ServerStream::Tls(t) => Some(crate::tls::TlsFacts::of(t.get_ref().1, &identity.label)),
            ServerStream::Plain(_) => None,
        }
    }
}

/// Reads and discards until the client leaves or stays silent for `idle`.
pub async fn drain<S: AsyncRead + Unpin>(s: &mut S, idle: Duration) -> &'static str {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(idle, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return "closed by client",
            Ok(Ok(_)) => {}
            Err(_) => return "closed after the idle timeout",
        }
    }
}

/// Why a connection has no TLS stream: a scripted fault of the `tls_handshake` step, or
/// a handshake that failed or took too long. Its text is the connection's last
/// transcript line.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("TLS handshake aborted (scripted)")]
    Aborted,
    /// `why`: how the hung connection ended (see [`drain`]).
    #[error("TLS handshake hung (scripted); {why}")]
    Hung { why: &'static str },
    #[error("answered the ClientHello with garbage (scripted)")]
    Garbage,
    #[error("TLS handshake dropped (scripted)")]
    Dropped,
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    #[error("TLS handshake timed out")]
    TimedOut,
}

/// Runs the TLS handshake on `tcp` with the scripted `fault` of the `tls_handshake`
/// step (delay, abort mid-handshake, hang, garbage, drop); answers the TLS stream or
/// why there is none. `delay` turns device milliseconds into wall time.
pub async fn handshake(
    tcp: TcpStream,
    identity: &Identity,
    fault: Option<Action>,
    idle: Duration,
    delay: impl Fn(u64) -> Duration,
) -> Result<ServerStream, HandshakeError> {
    let mut tcp = tcp;
    match fault {
        Some(Action::Delay { ms }) => tokio::time::sleep(delay(ms)).await,
        Some(Action::AbortTls) => {
            // Let the ClientHello arrive, then hang up in the middle of the handshake;
            // a client that sends none meets a silent server (until the idle timeout).
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(idle, tcp.read(&mut buf)).await;
            return Err(HandshakeError::Aborted);
        }
        Some(Action::Hang) => {
            let why = drain(&mut tcp, idle).await;
            return Err(HandshakeError::Hung { why });
        }
        Some(Action::Garbage) => {
            let _ = tcp.write_all(GARBAGE).await;
            return Err(HandshakeError::Garbage);
        }
        Some(_) => return Err(HandshakeError::Dropped),
        None => {}
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&identity.config));
    match tokio::time::timeout(idle, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(ServerStream::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(HandshakeError::Failed(e)),
        Err(_) => Err(HandshakeError::TimedOut),
    }
}
