//! Starting a scenario's servers: resolve certificates, open every listener of the
//! SMTP and POP3 servers with one shared POP-before-SMTP login record, and list the
//! endpoints (what `hil serve` prints and the checks connect to).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::dns::{DnsServer, DnsStartError};
use crate::netaddr::BindAddr;
use crate::netio::{ListenError, Server};
use crate::pop3::Pop3Config;
use crate::pop3_server::{Pop3Listen, Pop3Server};
use crate::pop_window::PopLogins;
use crate::scenario::Scenario;
use crate::smtp::{ListenerKind, ListenerSpec, SmtpConfig};
use crate::smtp_server::{Listen, Observations, ServerOptions, SmtpServer};
use crate::tls::{self, Identity, TlsError};

/// A scenario's running servers.
pub struct Running {
    pub smtp: Option<SmtpServer>,
    pub pop3: Option<Pop3Server>,
    pub logins: Arc<PopLogins>,
    /// The fake DNS server, when the scenario has a `[dns]` part.
    pub dns: Option<DnsServer>,
    /// One line per endpoint, for people.
    pub endpoints: Vec<String>,
}

impl Running {
    pub fn smtp_endpoints(&self) -> Vec<(ListenerKind, SocketAddr)> {
        self.smtp
            .as_ref()
            .map(|s| s.listeners().to_vec())
            .unwrap_or_default()
    }
    pub fn pop3_endpoints(&self) -> Vec<(ListenerKind, SocketAddr)> {
        self.pop3
            .as_ref()
            .map(|s| s.listeners().to_vec())
            .unwrap_or_default()
    }

    /// The address of the SMTP server's first listener, if the scenario has one.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp_endpoints().first().map(|(_, a)| *a)
    }

    /// What the SMTP server saw (connections with their transcripts, messages),
    /// taken once every connection has ended or `limit` has passed; empty when the
    /// scenario has no SMTP server.
    pub fn take_smtp(&self, limit: Duration) -> Observations {
        match &self.smtp {
            Some(s) => {
                s.wait_idle(limit);
                s.take()
            }
            None => Observations::default(),
        }
    }
}

/// Why a scenario's servers did not start: a listener's certificate, or a listener.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{} {} listener: {source}", .server.name(), .kind.name())]
    Certificate {
        server: Server,
        kind: ListenerKind,
        source: TlsError,
    },
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Dns(#[from] DnsStartError),
}

/// The zoo certificate names a scenario uses.
pub fn cert_names(s: &Scenario) -> Vec<String> {
    let smtp = s.smtp.iter().flat_map(|x| x.listeners.iter());
    let pop = s.pop3.iter().flat_map(|x| x.listeners.iter());
    smtp.chain(pop)
        .filter_map(|l| match &l.cert {
            Some(tls::CertSpec::Zoo(n)) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn identity(
    l: &ListenerSpec,
    certs_dir: &Path,
    base: &Path,
    server: Server,
) -> Result<Option<Identity>, StartError> {
    let Some(spec) = &l.cert else { return Ok(None) };
    let (cert, key) = spec.paths(certs_dir, base);
    tls::load(&spec.label(), &cert, &key)
        .map(Some)
        .map_err(|source| StartError::Certificate {
            server,
            kind: l.kind,
            source,
        })
}

/// How an endpoint is listed for people: the certificate it shows, or `-`.
fn cert_label(spec: &ListenerSpec) -> String {
    spec.cert
        .as_ref()
        .map(|c| c.label())
        .unwrap_or_else(|| "-".into())
}

/// Starts the servers of `s` on `bind`.
pub async fn start(
    s: &Scenario,
    bind: &BindAddr,
    certs_dir: &Path,
    time_scale: f64,
) -> Result<Running, StartError> {
    let logins = Arc::new(PopLogins::new(time_scale));
    let base = s.base_dir();
    let mut endpoints = Vec::new();
    let mut smtp = None;
    if let Some(cfg) = &s.smtp {
        let opts = ServerOptions {
            time_scale,
            pop_logins: Arc::clone(&logins),
            epoch: None,
            max_kept_bytes: crate::smtp_server::MAX_KEPT_BYTES,
        };
        let server = start_smtp(cfg, bind, certs_dir, &base, opts).await?;
        for ((kind, addr), spec) in server.listeners().iter().zip(&cfg.listeners) {
            endpoints.push(format!(
                "smtp {:<8} {addr}  cert {}  (device smtp.{})",
                kind.name(),
                cert_label(spec),
                spec.role()
            ));
        }
        smtp = Some(server);
    }
    let mut pop3 = None;
    if let Some(cfg) = &s.pop3 {
        let server = start_pop3(cfg, bind, certs_dir, &base, time_scale, &logins).await?;
        for ((kind, addr), spec) in server.listeners().iter().zip(&cfg.listeners) {
            endpoints.push(format!(
                "pop3 {:<8} {addr}  cert {}",
                kind.name(),
                cert_label(spec),
            ));
        }
        pop3 = Some(server);
    }
    let mut dns = None;
    if let Some(cfg) = &s.dns {
        let server = DnsServer::start(bind.socket(0), cfg, time_scale).await?;
        endpoints.push(format!(
            "dns  udp+tcp  {}  (device net.dns, port {})",
            server.addr(),
            server.addr().port()
        ));
        dns = Some(server);
    }
    Ok(Running {
        smtp,
        pop3,
        logins,
        dns,
        endpoints,
    })
}

/// Starts the SMTP server of a scenario: every listener, with its certificate.
async fn start_smtp(
    cfg: &SmtpConfig,
    bind: &BindAddr,
    certs_dir: &Path,
    base: &Path,
    opts: ServerOptions,
) -> Result<SmtpServer, StartError> {
    let mut listens = Vec::new();
    for l in &cfg.listeners {
        listens.push(Listen {
            kind: l.kind,
            bind: bind.socket(l.port),
            identity: identity(l, certs_dir, base, Server::Smtp)?,
        });
    }
    Ok(SmtpServer::start_with(listens, cfg.clone(), opts).await?)
}

/// Starts the POP3 server of a scenario, sharing `logins` with the SMTP server.
async fn start_pop3(
    cfg: &Pop3Config,
    bind: &BindAddr,
    certs_dir: &Path,
    base: &Path,
    time_scale: f64,
    logins: &Arc<PopLogins>,
) -> Result<Pop3Server, StartError> {
    let mut listens = Vec::new();
    for l in &cfg.listeners {
        listens.push(Pop3Listen {
            kind: l.kind,
            bind: bind.socket(l.port),
            identity: identity(l, certs_dir, base, Server::Pop3)?,
        });
    }
    Ok(Pop3Server::start(listens, cfg.clone(), time_scale, Arc::clone(logins)).await?)
}
