//! Starting a scenario's servers: resolve certificates, open every listener of the
//! SMTP and POP3 servers with one shared POP-before-SMTP login record, and list the
//! endpoints (what `hil serve` prints and the checks connect to).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::pop3_server::{Pop3Listen, Pop3Server};
use crate::pop_window::PopLogins;
use crate::scenario::Scenario;
use crate::smtp::{ListenerKind, ListenerSpec};
use crate::smtp_server::{Listen, ServerOptions, SmtpServer};
use crate::tls::{self, Identity};

/// A scenario's running servers.
pub struct Running {
    pub smtp: Option<SmtpServer>,
    pub pop3: Option<Pop3Server>,
    pub logins: Arc<PopLogins>,
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
    what: &str,
) -> Result<Option<Identity>, String> {
    let Some(spec) = &l.cert else { return Ok(None) };
    let (cert, key) = spec.paths(certs_dir, base);
    tls::load(&spec.label(), &cert, &key)
        .map(Some)
        .map_err(|e| format!("{what} {} listener: {e}", l.kind.name()))
}

/// Starts the servers of `s` on `bind`.
pub async fn start(
    s: &Scenario,
    bind: &crate::netaddr::BindAddr,
    certs_dir: &Path,
    time_scale: f64,
) -> Result<Running, String> {
    let logins = Arc::new(PopLogins::new(time_scale));
    let base = s.base_dir();
    let mut endpoints = Vec::new();
    let mut smtp = None;
    if let Some(cfg) = &s.smtp {
        let mut listens = Vec::new();
        for l in &cfg.listeners {
            listens.push(Listen {
                kind: l.kind,
                bind: bind.socket(l.port),
                identity: identity(l, certs_dir, &base, "SMTP")?,
            });
        }
        let server = SmtpServer::start_with(
            listens,
            cfg.clone(),
            ServerOptions {
                time_scale,
                pop_logins: Arc::clone(&logins),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        for ((kind, addr), spec) in server.listeners().iter().zip(&cfg.listeners) {
            endpoints.push(format!(
                "smtp {:<8} {addr}  cert {}  (device smtp.{})",
                kind.name(),
                spec.cert
                    .as_ref()
                    .map(|c| c.label())
                    .unwrap_or_else(|| "-".into()),
                spec.role()
            ));
        }
        smtp = Some(server);
    }
    let mut pop3 = None;
    if let Some(cfg) = &s.pop3 {
        let mut listens = Vec::new();
        for l in &cfg.listeners {
            listens.push(Pop3Listen {
                kind: l.kind,
                bind: bind.socket(l.port),
                identity: identity(l, certs_dir, &base, "POP3")?,
            });
        }
        let server = Pop3Server::start(listens, cfg.clone(), time_scale, Arc::clone(&logins))
            .await
            .map_err(|e| e.to_string())?;
        for ((kind, addr), spec) in server.listeners().iter().zip(&cfg.listeners) {
            endpoints.push(format!(
                "pop3 {:<8} {addr}  cert {}",
                kind.name(),
                spec.cert
                    .as_ref()
                    .map(|c| c.label())
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        pop3 = Some(server);
    }
    Ok(Running {
        smtp,
        pop3,
        logins,
        endpoints,
    })
}
