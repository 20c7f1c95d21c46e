//! The fake POP3 server's tokio layer: listeners (plain, STLS, POP3S), a
//! [`Pop3Session`] per connection, the IO side of faults, idle timeouts, and the
//! record of connections and logins (the POP-before-SMTP window).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::faults::{Action, FiredFault};
use crate::netio::{self, ListenError, Server, ServerStream};
use crate::pop3::{Pop3Config, Pop3Output, Pop3Session, Pop3Step};
use crate::pop_window::PopLogins;
use crate::smtp::{AuthRecord, Entry, ListenerKind};
use crate::tls::{Identity, TlsFacts};
use crate::transcript::Cap;

/// A listener to open.
#[derive(Debug, Clone)]
pub struct Pop3Listen {
    pub kind: ListenerKind,
    pub bind: SocketAddr,
    pub identity: Option<Identity>,
}

/// One POP3 connection as the server saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Pop3Connection {
    pub id: u64,
    pub peer: String,
    pub listener: String,
    pub transcript: Vec<Entry>,
    pub tls: Option<TlsFacts>,
    pub logins: Vec<String>,
    /// Every login attempt (USER/PASS, APOP, AUTH), failed and abandoned ones too.
    pub auth: Vec<AuthRecord>,
    /// The scripted faults that fired on this connection, in order (at most
    /// [`crate::faults::MAX_FIRED`]); recorded as they fire.
    #[serde(default)]
    pub fired_faults: Vec<FiredFault>,
    pub ended: bool,
    #[serde(skip)]
    cap: Cap,
}

struct Shared {
    config: std::sync::RwLock<Arc<Pop3Config>>,
    conns: Mutex<Vec<Pop3Connection>>,
    next_id: Mutex<u64>,
    epoch: Instant,
    time_scale: f64,
    logins: Arc<PopLogins>,
    finished: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Pop3Connection>>>,
}

impl Shared {
    fn conns(&self) -> MutexGuard<'_, Vec<Pop3Connection>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn with_conn(&self, id: u64, f: impl FnOnce(&mut Pop3Connection)) {
        if let Some(c) = self.conns().iter_mut().find(|c| c.id == id) {
            f(c);
        }
    }
    fn record(&self, id: u64, entries: Vec<Entry>) {
        if !entries.is_empty() {
            self.with_conn(id, |c| c.cap.push(&mut c.transcript, entries));
        }
    }
    /// Records what the session has not yet given: transcript lines and fired faults.
    fn flush(&self, id: u64, session: &mut Pop3Session) {
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
        Duration::from_secs_f64(device_ms as f64 / 1000.0 / self.time_scale.max(1e-6))
    }
}

/// A running fake POP3 server.
#[derive(Clone)]
pub struct Pop3Server {
    shared: Arc<Shared>,
    listeners: Vec<(ListenerKind, SocketAddr)>,
}

impl Pop3Server {
    /// Opens every listener; serves until the runtime ends.
    pub async fn start(
        listens: Vec<Pop3Listen>,
        config: Pop3Config,
        time_scale: f64,
        logins: Arc<PopLogins>,
    ) -> Result<Pop3Server, ListenError> {
        Pop3Server::start_at(listens, config, time_scale, logins, Instant::now()).await
    }

    /// [`Pop3Server::start`], with transcript times counted from `epoch` (shared
    /// with the SMTP server and a device's console log).
    pub async fn start_at(
        listens: Vec<Pop3Listen>,
        config: Pop3Config,
        time_scale: f64,
        logins: Arc<PopLogins>,
        epoch: Instant,
    ) -> Result<Pop3Server, ListenError> {
        let shared = Arc::new(Shared {
            config: std::sync::RwLock::new(Arc::new(config)),
            conns: Mutex::new(Vec::new()),
            next_id: Mutex::new(1),
            epoch,
            time_scale,
            logins,
            finished: Mutex::new(None),
        });
        let mut listeners = Vec::new();
        for l in listens {
            let (listener, addr) =
                netio::listen(Server::Pop3, l.kind, l.bind, l.identity.is_some()).await?;
            listeners.push((l.kind, addr));
            let l = Pop3Listen { bind: addr, ..l };
            let s = Arc::clone(&shared);
            netio::spawn_accept(listener, move |stream, peer| {
                serve(stream, peer, l.clone(), Arc::clone(&s))
            });
        }
        Ok(Pop3Server { shared, listeners })
    }

    /// The configuration for connections accepted from now on (a case's faults and
    /// APOP behaviour); connections already open keep theirs.
    pub fn set_config(&self, config: Pop3Config) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    pub fn listeners(&self) -> &[(ListenerKind, SocketAddr)] {
        &self.listeners
    }

    /// Sends each finished connection to `tx` as it ends.
    pub fn on_finished(&self, tx: tokio::sync::mpsc::UnboundedSender<Pop3Connection>) {
        *self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tx);
    }

    /// Takes the connections recorded so far.
    pub fn take(&self) -> Vec<Pop3Connection> {
        std::mem::take(&mut *self.shared.conns())
    }

    /// Waits until every connection has ended, for at most `limit`; answers whether
    /// they all had.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_micros(100);
        loop {
            if self.shared.conns().iter().all(|c| c.ended) {
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

async fn tls_accept(
    tcp: TcpStream,
    identity: &Identity,
    session: &mut Pop3Session,
    shared: &Arc<Shared>,
    idle: Duration,
) -> Result<ServerStream, netio::HandshakeError> {
    let fault = session.fault_for(Pop3Step::TlsHandshake);
    shared.flush(session.connection(), session);
    let shared = Arc::clone(shared);
    netio::handshake(tcp, identity, fault, idle, move |ms| shared.scaled(ms)).await
}

fn tls_note(
    stream: &ServerStream,
    identity: &Identity,
    shared: &Shared,
    id: u64,
    session: &mut Pop3Session,
) {
    if let Some(facts) = stream.tls_facts(identity) {
        session.note(shared.now_ms(), facts.describe());
        shared.with_conn(id, |c| c.tls = Some(facts));
    }
}

async fn serve(tcp: TcpStream, peer: SocketAddr, listen: Pop3Listen, shared: Arc<Shared>) {
    let id = {
        let mut n = shared.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = *n;
        *n += 1;
        id
    };
    shared.conns().push(Pop3Connection {
        id,
        peer: peer.to_string(),
        listener: listen.kind.name().to_string(),
        transcript: Vec::new(),
        tls: None,
        logins: Vec::new(),
        auth: Vec::new(),
        fired_faults: Vec::new(),
        ended: false,
        cap: Cap::default(),
    });
    let current = Arc::clone(&shared.config.read().unwrap_or_else(|p| p.into_inner()));
    let idle = shared.scaled(current.idle_timeout_s.saturating_mul(1000));
    let config = if listen.kind == ListenerKind::Starttls {
        Arc::new(Pop3Config {
            stls: true,
            ..(*current).clone()
        })
    } else {
        current
    };
    let mut session = Pop3Session::new(config, id);
    session.note(
        shared.now_ms(),
        format!(
            "connection from {peer} on the {} listener {}",
            listen.kind.name(),
            listen.bind
        ),
    );
    let end = run(tcp, peer, &listen, &mut session, &shared, id, idle).await;
    session.finish(shared.now_ms());
    session.note(shared.now_ms(), end);
    shared.flush(id, &mut session);
    let mut done = None;
    shared.with_conn(id, |c| {
        c.ended = true;
        done = Some(c.clone());
    });
    let tx = shared
        .finished
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let (Some(tx), Some(c)) = (tx, done) {
        // Streamed out: the record keeps nothing of it.
        shared.conns().retain(|x| x.id != id);
        let _ = tx.send(c);
    }
}

async fn run(
    tcp: TcpStream,
    peer: SocketAddr,
    listen: &Pop3Listen,
    session: &mut Pop3Session,
    shared: &Arc<Shared>,
    id: u64,
    idle: Duration,
) -> String {
    let mut tcp = tcp;
    let mut throttle = None;
    let fault = session.fault_for(Pop3Step::Connect);
    shared.flush(id, session);
    match fault {
        Some(Action::Delay { ms }) => tokio::time::sleep(shared.scaled(ms)).await,
        Some(Action::Throttle { bytes_per_sec }) => throttle = Some(bytes_per_sec),
        Some(Action::Hang) => return netio::drain(&mut tcp, idle).await.to_string(),
        Some(Action::Garbage) => {
            let _ = tcp.write_all(crate::smtp::GARBAGE).await;
            return "closed after garbage (scripted)".into();
        }
        Some(Action::Reply { text, .. } | Action::Line { text }) => {
            let bytes = session.connect_answer(shared.now_ms(), &text);
            let _ = tokio::time::timeout(idle, tcp.write_all(&bytes)).await;
            return "answered a line at connect and closed (scripted)".into();
        }
        Some(_) => return "dropped at connect (scripted)".into(),
        None => {}
    }
    let mut stream = match (&listen.identity, listen.kind) {
        (Some(identity), ListenerKind::Tls) => {
            match tls_accept(tcp, identity, session, shared, idle).await {
                Ok(s) => {
                    tls_note(&s, identity, shared, id, session);
                    s
                }
                Err(e) => return e.to_string(),
            }
        }
        _ => ServerStream::Plain(tcp),
    };
    let mut outputs = session.start(shared.now_ms());
    let mut hung = false;
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        shared.flush(id, session);
        let mut start_tls = false;
        for o in std::mem::take(&mut outputs) {
            match o {
                Pop3Output::Send(b) => {
                    let write = stream.write_all(&b, throttle, shared.time_scale);
                    match tokio::time::timeout(idle, write).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return format!("write failed: {e}"),
                        Err(_) => {
                            return "closed: the client read nothing for the idle timeout".into()
                        }
                    }
                }
                Pop3Output::Close => {
                    let _ = tokio::time::timeout(idle, stream.shutdown()).await;
                    return "closed by server".into();
                }
                Pop3Output::Hang => hung = true,
                Pop3Output::Delay(ms) => tokio::time::sleep(shared.scaled(ms)).await,
                Pop3Output::Throttle(bps) => throttle = Some(bps),
                Pop3Output::StartTls => start_tls = true,
                Pop3Output::Attempt(rec) => shared.with_conn(id, |c| c.auth.push(rec)),
                Pop3Output::Login { user, method } => {
                    shared.logins.record(peer.ip(), &user, method);
                    shared.with_conn(id, |c| c.logins.push(format!("{user} ({method})")));
                }
            }
        }
        if start_tls {
            let (ServerStream::Plain(tcp), Some(identity)) = (stream, &listen.identity) else {
                return "STLS without a certificate, or inside TLS".into();
            };
            stream = match tls_accept(tcp, identity, session, shared, idle).await {
                Ok(s) => s,
                Err(e) => return e.to_string(),
            };
            tls_note(&stream, identity, shared, id, session);
            session.tls_started();
            shared.flush(id, session);
        }
        if hung {
            return match &mut stream {
                ServerStream::Plain(s) => netio::drain(s, idle).await.to_string(),
                ServerStream::Tls(s) => netio::drain(s.as_mut(), idle).await.to_string(),
            };
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
        outputs = session.feed(shared.now_ms(), &buf[..n]);
    }
}
