//! A port where a TCP connect never completes, for SPEC §3.2's connect timeout on
//! loopback (where nothing is ever "unreachable": a closed port refuses at once).
//!
//! A listener with the smallest backlog whose accept queue is filled by connections it
//! never accepts: Linux then drops further SYNs (it counts them as listen overflows and
//! answers nothing, unless `net.ipv4.tcp_abort_on_overflow` is set), so a client's
//! `connect` waits, retransmitting its SYN, until its own timeout. [`SilentPort::open`]
//! fills the queue and proves a connect hangs before answering the port.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long a probe connect waits before the queue counts as full: a connect the
/// kernel answers completes on loopback within microseconds.
const PROBE: Duration = Duration::from_millis(200);
/// Most connections the queue is filled with before giving up (Linux queues
/// backlog + 1; a larger kernel minimum still fits).
const MAX_FILLERS: usize = 64;

/// A listening port whose connects never complete, for as long as it lives.
pub struct SilentPort {
    addr: SocketAddr,
    /// Kept open: closing it would make connects refused, not silent.
    _listener: TcpListener,
    /// The connections that fill the accept queue; never accepted.
    fillers: Vec<TcpStream>,
}

/// Why no silent port could be made.
#[derive(Debug, thiserror::Error)]
pub enum SilentPortError {
    #[error("cannot listen on {bind}: {source}")]
    Listen { bind: SocketAddr, source: io::Error },
    #[error("connecting to fill the accept queue of {addr}: {source}")]
    Fill { addr: SocketAddr, source: io::Error },
    /// The kernel kept answering connects (not Linux, or `tcp_abort_on_overflow`).
    #[error("{addr} kept accepting connects after {MAX_FILLERS}: this system does not drop SYNs on a full accept queue")]
    NeverFull { addr: SocketAddr },
}

impl SilentPort {
    /// Opens a silent port on `bind` (port 0: any free port), an IPv4 or IPv6 address
    /// of this machine.
    pub async fn open(bind: SocketAddr) -> Result<SilentPort, SilentPortError> {
        let listen_err = |source| SilentPortError::Listen { bind, source };
        let socket = if bind.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(listen_err)?;
        socket.bind(bind).map_err(listen_err)?;
        let listener = socket.listen(0).map_err(listen_err)?;
        let addr = listener.local_addr().map_err(listen_err)?;
        let mut fillers = Vec::new();
        while fillers.len() < MAX_FILLERS {
            match tokio::time::timeout(PROBE, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(source)) => return Err(SilentPortError::Fill { addr, source }),
                // This connect's SYN went unanswered: the queue is full.
                Err(_) => {
                    return Ok(SilentPort {
                        addr,
                        _listener: listener,
                        fillers,
                    })
                }
            }
        }
        Err(SilentPortError::NeverFull { addr })
    }

    /// The address to point a client at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many never-accepted connections fill its accept queue.
    pub fn queued(&self) -> usize {
        self.fillers.len()
    }
}
