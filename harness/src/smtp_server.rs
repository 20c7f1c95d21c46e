//! The fake SMTP server's tokio layer: accept connections, run a [`Session`] per
//! connection, and record every connection's transcript and every message into
//! shared [`Observations`] as they happen, so a hung or dropped session is still seen.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::smtp::{Dir, Entry, Output, Received, ServerConfig, Session};

/// One connection as the server saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Connection {
    pub id: u64,
    pub peer: String,
    pub transcript: Vec<Entry>,
    pub ended: bool,
}

/// Everything seen since the last [`SmtpServer::take`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Observations {
    pub connections: Vec<Connection>,
    pub messages: Vec<Received>,
}

struct Shared {
    config: RwLock<Arc<ServerConfig>>,
    obs: Mutex<Observations>,
    next_id: Mutex<u64>,
    epoch: Instant,
}

impl Shared {
    fn obs(&self) -> MutexGuard<'_, Observations> {
        self.obs.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn record(&self, id: u64, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut o = self.obs();
        if let Some(c) = o.connections.iter_mut().find(|c| c.id == id) {
            c.transcript.extend(entries);
        }
    }
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// A running fake SMTP server.
#[derive(Clone)]
pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SmtpServer {
    /// Binds `bind` (port 0 for any free port) and serves until the runtime ends.
    pub async fn start(bind: SocketAddr, config: ServerConfig) -> std::io::Result<SmtpServer> {
        let listener = TcpListener::bind(bind).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("fake SMTP server cannot listen on {bind}: {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: RwLock::new(Arc::new(config)),
            obs: Mutex::new(Observations::default()),
            next_id: Mutex::new(1),
            epoch: Instant::now(),
        });
        let s = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let s = Arc::clone(&s);
                        tokio::spawn(async move { serve(stream, peer, s).await });
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Ok(SmtpServer { addr, shared })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the behaviour for connections opened from now on.
    pub fn set_config(&self, config: ServerConfig) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Takes what was observed so far, leaving the record empty.
    pub fn take(&self) -> Observations {
        std::mem::take(&mut *self.shared.obs())
    }

    /// A copy of what was observed so far.
    pub fn snapshot(&self) -> Observations {
        self.shared.obs().clone()
    }

    /// Waits until every connection has ended, for at most `limit`; answers whether
    /// they all had.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.shared.obs().connections.iter().all(|c| c.ended) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let id = {
        let mut n = shared.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = *n;
        *n += 1;
        id
    };
    let config = Arc::clone(&shared.config.read().unwrap_or_else(|p| p.into_inner()));
    shared.obs().connections.push(Connection {
        id,
        peer: peer.to_string(),
        transcript: vec![Entry {
            t_ms: shared.now_ms(),
            dir: Dir::Note,
            text: format!("connection from {peer}"),
        }],
        ended: false,
    });
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(config, id);
    let mut outputs = session.start(shared.now_ms());
    let mut buf = vec![0u8; 64 * 1024];
    let mut hung = false;
    let end_note = 'conn: loop {
        shared.record(id, session.take_transcript());
        for o in outputs.drain(..) {
            match o {
                Output::Send(bytes) => {
                    if let Err(e) = stream.write_all(&bytes).await {
                        break 'conn format!("write failed: {e}");
                    }
                }
                Output::Close => {
                    let _ = stream.shutdown().await;
                    break 'conn "closed by server".to_string();
                }
                Output::Hang => hung = true,
                Output::Message(m) => shared.obs().messages.push(*m),
            }
        }
        let n = match stream.read(&mut buf).await {
            Ok(0) => break 'conn "closed by client".to_string(),
            Ok(n) => n,
            Err(e) => break 'conn format!("read failed: {e}"),
        };
        if hung {
            continue;
        }
        outputs = session.feed(shared.now_ms(), &buf[..n]);
    };
    shared.record(id, session.take_transcript());
    let mut o = shared.obs();
    if let Some(c) = o.connections.iter_mut().find(|c| c.id == id) {
        c.transcript.push(Entry {
            t_ms: shared.now_ms(),
            dir: Dir::Note,
            text: end_note,
        });
        c.ended = true;
    }
}
