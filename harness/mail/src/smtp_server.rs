//! The fake SMTP server's tokio layer: listeners (plain, STARTTLS, implicit TLS),
//! a [`Session`] per connection, the IO side of faults (delay, throttle, hang, TLS
//! aborts), idle timeouts, and the live record of every connection and message in
//! [`Observations`], so a hung or dropped session is still seen.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedSender;

use crate::faults::{Action, FiredFault};
use crate::netio::{self, ListenError, Server, ServerStream};
use crate::partial::{Assembler, Reassembled};
use crate::pop_window::PopLogins;
pub use crate::smtp::ListenerKind;
use crate::smtp::{
    AuthRecord, Entry, Output, Received, Session, SessionEnv, SmtpConfig, Step, GARBAGE,
};
use crate::tls::{Identity, TlsFacts};
use crate::transcript::Cap;

/// A listener to open.
#[derive(Debug, Clone)]
pub struct Listen {
    pub kind: ListenerKind,
    pub bind: SocketAddr,
    /// Required for `starttls` and `tls`.
    pub identity: Option<Identity>,
}

/// One connection as the server saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub id: u64,
    pub peer: String,
    pub listener: String,
    pub transcript: Vec<Entry>,
    pub tls: Option<TlsFacts>,
    pub auth: Vec<AuthRecord>,
    /// The scripted faults that fired on this connection, in order (at most
    /// [`crate::faults::MAX_FIRED`]); recorded as they fire, so a hung connection shows
    /// its fault before it ends.
    #[serde(default)]
    pub fired_faults: Vec<FiredFault>,
    pub ended: bool,
    #[serde(skip)]
    cap: Cap,
}

/// Everything seen since the last [`SmtpServer::take`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observations {
    pub connections: Vec<Connection>,
    pub messages: Vec<Received>,
    /// Messages rebuilt from `message/partial` fragments (RFC 2046 §5.2.2).
    pub reassembled: Vec<Reassembled>,
}

/// Most messages kept between takes. (A connection's transcript is capped by
/// [`crate::transcript::Cap`].)
pub const MAX_MESSAGES: usize = 10_000;

/// The read buffer of a connection, and what it grows to once a read fills it (a
/// message streaming in): small for the many idle sessions, large for DATA, where 8 KiB
/// reads cost a system call and an ACK each.
const READ_BUF: usize = 8 * 1024;
const READ_BUF_BULK: usize = 64 * 1024;

/// Options of the server's IO layer.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Device time runs this many times faster: delays, throttles, idle timeouts.
    pub time_scale: f64,
    /// The POP3 logins, for the POP-before-SMTP policy.
    pub pop_logins: Arc<PopLogins>,
    /// What transcript times count from (`None`: the server's start), so that
    /// several servers and a device's console log share one time line.
    pub epoch: Option<Instant>,
    /// Most message bytes kept between takes (messages and reassembled ones): past
    /// it a message keeps its envelope and MIME summary, not its bytes, and its
    /// transcript says so. A client sending without end costs at most this.
    pub max_kept_bytes: usize,
}

/// The default of [`ServerOptions::max_kept_bytes`].
pub const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            time_scale: 1.0,
            pop_logins: Arc::new(PopLogins::new(1.0)),
            epoch: None,
            max_kept_bytes: MAX_KEPT_BYTES,
        }
    }
}

/// Where finished connections (with their messages) are sent.
pub type FinishedTx = UnboundedSender<(Connection, Vec<Received>)>;

struct Shared {
    config: RwLock<Arc<SmtpConfig>>,
    obs: Mutex<Observations>,
    assembler: Mutex<Assembler>,
    next_id: Mutex<u64>,
    epoch: Instant,
    opts: ServerOptions,
    finished: Mutex<Option<FinishedTx>>,
}

impl Shared {
    fn obs(&self) -> MutexGuard<'_, Observations> {
        self.obs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the bytes of a message (and of the message it completed) that would take
    /// the kept bytes past [`ServerOptions::max_kept_bytes`]; answers what to note.
    fn within_budget(&self, data: &mut Vec<u8>, whole: Option<&mut Reassembled>) -> Vec<String> {
        let o = self.obs();
        let mut kept: usize = o.messages.iter().map(|m| m.data.len()).sum::<usize>()
            + o.reassembled.iter().map(|r| r.data.len()).sum::<usize>();
        drop(o);
        let max = self.opts.max_kept_bytes;
        let mut notes = Vec::new();
        let mut keep = |bytes: &mut Vec<u8>, what: &str| {
            if kept.saturating_add(bytes.len()) > max {
                notes.push(format!(
                    "{what} of {} bytes: its bytes are not kept (the server keeps at most {} MiB \
                     of messages per case); its envelope and MIME summary are",
                    crate::transcript::thousands(bytes.len() as u64),
                    max >> 20
                ));
                *bytes = Vec::new();
            } else {
                kept += bytes.len();
            }
        };
        keep(data, "the message");
        if let Some(r) = whole {
            keep(&mut r.data, "the reassembled message");
        }
        notes
    }
    fn with_conn(&self, id: u64, f: impl FnOnce(&mut Connection)) {
        let mut o = self.obs();
        if let Some(c) = o.connections.iter_mut().find(|c| c.id == id) {
            f(c);
        }
    }
    fn record(&self, id: u64, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        self.with_conn(id, |c| c.cap.push(&mut c.transcript, entries));
    }
    /// Records what the session has not yet given: transcript lines and fired faults.
    fn flush(&self, id: u64, session: &mut Session) {
        self.record(id, session.take_transcript());
        let fired = session.take_fired();
        if !fired.is_empty() {
            self.with_conn(id, |c| c.fired_faults.extend(fired));
        }
    }
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
    fn scaled(&self, device_ms: u64) -> Duration {
        Duration::from_secs_f64(device_ms as f64 / 1000.0 / self.opts.time_scale.max(1e-6))
    }
}

/// A running fake SMTP server with one or more listeners.
#[derive(Clone)]
pub struct SmtpServer {
    shared: Arc<Shared>,
    listeners: Vec<(ListenerKind, SocketAddr)>,
}

impl SmtpServer {
    /// One plain listener on `bind` (port 0 for any free port).
    pub async fn start(bind: SocketAddr, config: SmtpConfig) -> Result<SmtpServer, ListenError> {
        Self::start_with(
            vec![Listen {
                kind: ListenerKind::Plain,
                bind,
                identity: None,
            }],
            config,
            ServerOptions::default(),
        )
        .await
    }

    /// Opens every listener; serves until the runtime ends.
    pub async fn start_with(
        listens: Vec<Listen>,
        config: SmtpConfig,
        opts: ServerOptions,
    ) -> Result<SmtpServer, ListenError> {
        let shared = Arc::new(Shared {
            config: RwLock::new(Arc::new(config)),
            obs: Mutex::new(Observations::default()),
            assembler: Mutex::new(Assembler::default()),
            next_id: Mutex::new(1),
            epoch: opts.epoch.unwrap_or_else(Instant::now),
            opts,
            finished: Mutex::new(None),
        });
        let mut listeners = Vec::new();
        for l in listens {
            let (listener, addr) =
                netio::listen(Server::Smtp, l.kind, l.bind, l.identity.is_some()).await?;
            listeners.push((l.kind, addr));
            let l = Listen { bind: addr, ..l };
            let s = Arc::clone(&shared);
            netio::spawn_accept(listener, move |stream, peer| {
                serve(stream, peer, l.clone(), Arc::clone(&s))
            });
        }
        Ok(SmtpServer { shared, listeners })
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    /// Every listener: kind and address.
    pub fn listeners(&self) -> &[(ListenerKind, SocketAddr)] {
        &self.listeners
    }

    /// The address of the first listener of `kind`.
    pub fn addr_of(&self, kind: ListenerKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// Replaces the behaviour for connections opened from now on.
    pub fn set_config(&self, config: SmtpConfig) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Sends each finished connection (with its messages) to `tx` as it ends, and
    /// keeps it no longer. For connections opened from then on, the server keeps no
    /// message bytes (`Received::data` and `Reassembled::data` are empty, and pending
    /// `message/partial` fragments keep 64 KiB of their body each): a server that
    /// streams its record out runs for days and never serialises them.
    pub fn on_finished(&self, tx: FinishedTx) {
        // Nor whole message/partial fragments: what a streamed record needs of a
        // rebuilt message is its size.
        self.shared
            .assembler
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sizes_only();
        *self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tx);
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
        let mut pause = Duration::from_micros(100);
        loop {
            if self.shared.obs().connections.iter().all(|c| c.ended) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            // Most connections end within a fraction of a millisecond of the job's
            // end: look again soon, then less often.
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

struct Conn {
    id: u64,
    /// Finished connections are streamed out (`on_finished`): keep no message bytes.
    streaming: bool,
    shared: Arc<Shared>,
    throttle: Option<u32>,
}

impl Conn {
    async fn send(&mut self, stream: &mut ServerStream, bytes: &[u8]) -> std::io::Result<()> {
        stream
            .write_all(bytes, self.throttle, self.shared.opts.time_scale)
            .await
    }
}

/// Runs the TLS handshake with its scripted fault; answers the TLS stream or why not.
async fn handshake(
    tcp: TcpStream,
    identity: &Identity,
    session: &mut Session,
    conn: &Conn,
    idle: Duration,
) -> Result<ServerStream, netio::HandshakeError> {
    let fault = session.fault_for(Step::TlsHandshake);
    conn.shared.flush(conn.id, session);
    let shared = Arc::clone(&conn.shared);
    netio::handshake(tcp, identity, fault, idle, move |ms| shared.scaled(ms)).await
}

async fn serve(tcp: TcpStream, peer: SocketAddr, listen: Listen, shared: Arc<Shared>) {
    let id = {
        let mut n = shared.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = *n;
        *n += 1;
        id
    };
    let config = Arc::clone(&shared.config.read().unwrap_or_else(|p| p.into_inner()));
    let idle = shared.scaled(config.idle_timeout_s.saturating_mul(1000));
    shared.obs().connections.push(Connection {
        id,
        peer: peer.to_string(),
        listener: listen.kind.name().to_string(),
        transcript: Vec::new(),
        tls: None,
        auth: Vec::new(),
        fired_faults: Vec::new(),
        ended: false,
        cap: Cap::default(),
    });
    let _ = tcp.set_nodelay(true);
    let pop = Arc::clone(&shared.opts.pop_logins);
    let env = SessionEnv {
        connection: id,
        peer: peer.ip(),
        starttls: listen.kind == ListenerKind::Starttls,
        tls: listen.kind == ListenerKind::Tls,
        pop_login_within: Arc::new(move |ip, w| pop.within(ip, w)),
    };
    let mut session = Session::new(Arc::clone(&config), env);
    session.note(
        shared.now_ms(),
        format!(
            "connection from {peer} on the {} listener {}",
            listen.kind.name(),
            listen.bind
        ),
    );
    let streaming = shared
        .finished
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    let mut conn = Conn {
        id,
        streaming,
        shared: Arc::clone(&shared),
        throttle: None,
    };
    let end_note = run(tcp, &listen, &mut session, &mut conn, idle).await;
    for o in session.finish(shared.now_ms()) {
        if let Output::Auth(rec) = o {
            shared.with_conn(id, |c| c.auth.push(rec));
        }
    }
    session.note(shared.now_ms(), end_note);
    shared.flush(id, &mut session);
    let tx = shared
        .finished
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut o = shared.obs();
    let Some(pos) = o.connections.iter().position(|c| c.id == id) else {
        return;
    };
    let Some(tx) = tx else {
        o.connections[pos].ended = true;
        return;
    };
    // Streamed out: the record keeps nothing of it (hil serve runs for days).
    let mut c = o.connections.remove(pos);
    c.ended = true;
    let (mine, others) = std::mem::take(&mut o.messages)
        .into_iter()
        .partition(|m| m.connection == id);
    o.messages = others;
    drop(o);
    let _ = tx.send((c, mine));
}

async fn run(
    tcp: TcpStream,
    listen: &Listen,
    session: &mut Session,
    conn: &mut Conn,
    idle: Duration,
) -> String {
    let shared = Arc::clone(&conn.shared);
    let mut tcp = tcp;
    let fault = session.fault_for(Step::Connect);
    shared.flush(conn.id, session);
    match fault {
        Some(Action::Delay { ms }) => tokio::time::sleep(shared.scaled(ms)).await,
        Some(Action::Throttle { bytes_per_sec }) => conn.throttle = Some(bytes_per_sec),
        Some(Action::Hang) => return netio::drain(&mut tcp, idle).await.to_string(),
        Some(Action::Garbage) => {
            let _ = tcp.write_all(GARBAGE).await;
            return "closed after garbage (scripted)".into();
        }
        Some(Action::Reply { code, text }) => {
            // A refusal before anything else ("554 no service here"), then close.
            let bytes = session.connect_answer(shared.now_ms(), Some(code), &text);
            let _ = tokio::time::timeout(idle, tcp.write_all(&bytes)).await;
            return format!("answered {code} at connect and closed (scripted)");
        }
        Some(Action::Line { text }) => {
            let bytes = session.connect_answer(shared.now_ms(), None, &text);
            let _ = tokio::time::timeout(idle, tcp.write_all(&bytes)).await;
            return "answered a line at connect and closed (scripted)".into();
        }
        Some(_) => return "dropped at connect (scripted)".into(),
        None => {}
    }
    let mut stream = if listen.kind == ListenerKind::Tls {
        let Some(identity) = &listen.identity else {
            return "no certificate for TLS".into();
        };
        match handshake(tcp, identity, session, conn, idle).await {
            Ok(s) => {
                record_tls(&s, identity, session, conn);
                s
            }
            Err(e) => return e.to_string(),
        }
    } else {
        ServerStream::Plain(tcp)
    };
    let mut outputs = session.start(shared.now_ms());
    let mut buf = vec![0u8; READ_BUF];
    let mut hung = false;
    loop {
        shared.flush(conn.id, session);
        let mut start_tls = false;
        for o in std::mem::take(&mut outputs) {
            match o {
                Output::Send(bytes) => {
                    match tokio::time::timeout(idle, conn.send(&mut stream, &bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return format!("write failed: {e}"),
                        Err(_) => {
                            return "closed: the client read nothing for the idle timeout".into()
                        }
                    }
                }
                Output::Close => {
                    let _ = tokio::time::timeout(idle, stream.shutdown()).await;
                    return "closed by server".into();
                }
                Output::Hang => hung = true,
                Output::Delay(ms) => tokio::time::sleep(shared.scaled(ms)).await,
                Output::Throttle(bps) => conn.throttle = Some(bps),
                Output::StartTls => start_tls = true,
                Output::Message(mut m) => {
                    let (mut whole, dropped) = {
                        let mut a = shared.assembler.lock().unwrap_or_else(|p| p.into_inner());
                        (a.add(conn.id, &m.data), a.take_dropped())
                    };
                    for d in dropped {
                        session.note(shared.now_ms(), d);
                    }
                    if let Some(r) = &whole {
                        session.note(
                            shared.now_ms(),
                            format!(
                                "message/partial {} reassembled from {} fragments",
                                r.id, r.total
                            ),
                        );
                    }
                    if conn.streaming {
                        // Nothing reads the bytes of a streamed record (they are not
                        // serialised): a 1 MB message costs 1 MB only while it arrives.
                        m.data = Vec::new();
                        if let Some(r) = &mut whole {
                            r.data = Vec::new();
                        }
                    }
                    for note in shared.within_budget(&mut m.data, whole.as_mut()) {
                        session.note(shared.now_ms(), note);
                    }
                    let mut o = shared.obs();
                    if o.messages.len() < MAX_MESSAGES {
                        o.messages.push(*m);
                    }
                    if let Some(r) = whole {
                        o.reassembled.push(r);
                    }
                }
                Output::Auth(rec) => shared.with_conn(conn.id, |c| c.auth.push(rec)),
            }
        }
        if start_tls {
            let ServerStream::Plain(tcp) = stream else {
                return "STARTTLS inside TLS".into();
            };
            let Some(identity) = &listen.identity else {
                return "no certificate for STARTTLS".into();
            };
            match handshake(tcp, identity, session, conn, idle).await {
                Ok(s) => {
                    stream = s;
                    record_tls(&stream, identity, session, conn);
                    session.tls_started();
                }
                Err(e) => return e.to_string(),
            }
            shared.flush(conn.id, session);
        }
        let n = match tokio::time::timeout(idle, stream.read(&mut buf)).await {
            Err(_) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
                return "closed after the idle timeout".into();
            }
            Ok(Ok(0)) => return "closed by client".into(),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return format!("read failed: {e}"),
        };
        if hung {
            continue;
        }
        outputs = session.feed(shared.now_ms(), &buf[..n]);
        if n == buf.len() && buf.len() < READ_BUF_BULK {
            // A client streaming a message: fewer, larger reads.
            buf.resize(READ_BUF_BULK, 0);
        }
    }
}

fn record_tls(stream: &ServerStream, identity: &Identity, session: &mut Session, conn: &Conn) {
    if let Some(facts) = stream.tls_facts(identity) {
        session.note(conn.shared.now_ms(), facts.describe());
        conn.shared.with_conn(conn.id, |c| c.tls = Some(facts));
    }
}
