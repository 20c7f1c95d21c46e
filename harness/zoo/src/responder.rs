//! The zoo's live revocation services over HTTP: an OCSP responder (`POST /ocsp`, and
//! `GET /ocsp/BASE64` per RFC 6960 appendix A) and a CRL server (`GET /crl/CA.crl`),
//! with scripted faults: down (connection refused), slow, HTTP 500, a malformed body, a
//! stale CRL, a wrong signer. Every request is recorded, refused ones included.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use rcgen::{Issuer, SerialNumber};
use serde::{Deserialize, Serialize};
use time::Month;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::keys::{KeyError, KeyKind, UnknownKeyKind, ZooKey};
use super::ocsp::{self, CertState, OcspIssuer};
use super::zoo::{at, crl_params, Zoo};

/// A fault of the revocation services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationFault {
    None,
    /// Nothing listens: connections are refused.
    Down,
    /// Every answer comes after this long (device ms; past any device timeout by default).
    Slow {
        ms: u64,
    },
    /// Every request gets HTTP 500.
    Http500,
    /// HTTP 200 with a body that is neither an OCSP response nor a CRL.
    Malformed,
    /// CRLs whose nextUpdate has passed.
    StaleCrl,
    /// OCSP responses and CRLs signed by a key that is not the issuer's.
    WrongSigner,
}

/// A revocation fault `hil responder --fault` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault {0:?}: one of none, down, slow, http500, malformed, stale_crl, wrong_signer")]
pub struct UnknownFault(pub String);

/// Why the revocation services did not start (or listen again).
#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    /// The zoo's manifest names a key algorithm there is none of.
    #[error(transparent)]
    KeyKind(#[from] UnknownKeyKind),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("rogue CA: {0}")]
    RogueCa(rcgen::Error),
    #[error("forged CRL of {label}: {source}")]
    ForgedCrl { label: String, source: rcgen::Error },
    #[error("a responder that starts down needs a port to come up on later")]
    DownNeedsPort,
    #[error("the revocation responder cannot listen on {bind}: {source}")]
    Listen {
        bind: SocketAddr,
        source: std::io::Error,
    },
    /// The listening socket has no local address (the system refused to say).
    #[error("{0}")]
    LocalAddr(std::io::Error),
    #[error("the revocation responder cannot listen again on {addr}: {source}")]
    ListenAgain {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl RevocationFault {
    pub fn parse(s: &str) -> Result<RevocationFault, UnknownFault> {
        Ok(match s {
            "none" => RevocationFault::None,
            "down" => RevocationFault::Down,
            "slow" => RevocationFault::Slow { ms: 400_000 },
            "http500" => RevocationFault::Http500,
            "malformed" => RevocationFault::Malformed,
            "stale_crl" => RevocationFault::StaleCrl,
            "wrong_signer" => RevocationFault::WrongSigner,
            other => return Err(UnknownFault(other.to_string())),
        })
    }
}

/// One request as the services saw it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub peer: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub what: String,
}

struct Shared {
    zoo: Zoo,
    fault: Mutex<RevocationFault>,
    log: Mutex<Vec<RequestRecord>>,
    time_scale: f64,
    /// The wrong-signer CRLs, per CA label, and the key that signs wrongly.
    forged_crls: Vec<(String, Vec<u8>)>,
    rogue: Rogue,
}

impl Shared {
    fn fault(&self) -> RevocationFault {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn log(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The running services.
pub struct Responder {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Most requests remembered.
const MAX_LOG: usize = 10_000;
/// Largest request head and body read.
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 64 * 1024;

/// A CA that is in no zoo file and issues nothing: the `wrong_signer` fault signs with it.
struct Rogue {
    key: ZooKey,
    der: Vec<u8>,
}

fn rogue(zoo: &Zoo) -> Result<Rogue, ResponderError> {
    let kind = KeyKind::parse(&zoo.manifest.key)?;
    let key = ZooKey::generate(kind, zoo.manifest.seed, "rogue responder")?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "hil rogue responder");
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.not_before = at(2024, Month::January, 1);
    p.not_after = at(2049, Month::December, 31);
    p.serial_number = Some(SerialNumber::from(7u64));
    let cert = p.self_signed(&key).map_err(ResponderError::RogueCa)?;
    Ok(Rogue {
        key,
        der: cert.der().to_vec(),
    })
}

/// CRLs of each CA signed with the rogue key (for `wrong_signer`).
fn forge_crls(zoo: &Zoo, forger: &Rogue) -> Result<Vec<(String, Vec<u8>)>, ResponderError> {
    let mut out = Vec::new();
    for ca in &zoo.cas {
        let issuer = Issuer::from_params(&ca.params, &forger.key);
        let crl = crl_params(
            &ca.revoked,
            at(2025, Month::January, 1),
            at(2046, Month::January, 1),
            2,
        )
        .signed_by(&issuer)
        .map_err(|source| ResponderError::ForgedCrl {
            label: ca.label.clone(),
            source,
        })?;
        out.push((ca.label.clone(), crl.der().to_vec()));
    }
    Ok(out)
}

impl Responder {
    /// Serves `zoo` on `bind`.
    pub async fn start(
        bind: SocketAddr,
        zoo: Zoo,
        time_scale: f64,
    ) -> Result<Responder, ResponderError> {
        Self::start_with(bind, zoo, time_scale, RevocationFault::None).await
    }

    /// Serves `zoo` on `bind` with `fault` from the start (`down`: nothing listens, and
    /// `bind` must name a port).
    pub async fn start_with(
        bind: SocketAddr,
        zoo: Zoo,
        time_scale: f64,
        fault: RevocationFault,
    ) -> Result<Responder, ResponderError> {
        let rogue = rogue(&zoo)?;
        let forged_crls = forge_crls(&zoo, &rogue)?;
        let shared = Arc::new(Shared {
            zoo,
            fault: Mutex::new(fault),
            log: Mutex::new(Vec::new()),
            time_scale: time_scale.max(1e-6),
            forged_crls,
            rogue,
        });
        if fault == RevocationFault::Down {
            if bind.port() == 0 {
                return Err(ResponderError::DownNeedsPort);
            }
            return Ok(Responder {
                shared,
                addr: bind,
                task: Mutex::new(None),
            });
        }
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|source| ResponderError::Listen { bind, source })?;
        let addr = listener.local_addr().map_err(ResponderError::LocalAddr)?;
        let task = tokio::spawn(accept(listener, Arc::clone(&shared)));
        Ok(Responder {
            shared,
            addr,
            task: Mutex::new(Some(task)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the fault. `down` stops listening; any other fault listens again on
    /// the same address.
    pub async fn set_fault(&self, fault: RevocationFault) -> Result<(), ResponderError> {
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
        let running = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = running {
            t.abort();
            let _ = t.await;
        }
        if fault != RevocationFault::Down {
            let listener = TcpListener::bind(self.addr).await.map_err(|source| {
                ResponderError::ListenAgain {
                    addr: self.addr,
                    source,
                }
            })?;
            let task = tokio::spawn(accept(listener, Arc::clone(&self.shared)));
            *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        }
        Ok(())
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.log().clone()
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((s, peer)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { serve(s, peer, shared).await });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Why a request was not read; its text is the answer's body and the record's `what`.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("request head too long")]
    HeadTooLong,
    #[error("request timed out")]
    HeadTimedOut,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("connection closed before the request ended")]
    Closed,
    #[error("411: send the body with Content-Length, not chunked")]
    Chunked,
    #[error("body of {0} bytes is too large")]
    BodyTooLarge(usize),
    #[error("request body timed out")]
    BodyTimedOut,
    #[error("the request took longer than 30 s")]
    TooSlow,
}

impl BadRequest {
    /// The HTTP status it is answered with.
    fn status(&self) -> u16 {
        match self {
            BadRequest::Chunked => 411,
            _ => 400,
        }
    }
}

/// Reads one HTTP/1.x request: method, path, body.
async fn read_request(s: &mut TcpStream) -> Result<(String, String, Vec<u8>), BadRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(BadRequest::HeadTooLong);
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .map_err(|_| BadRequest::HeadTimedOut)??;
        if n == 0 {
            return Err(BadRequest::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(&str, &str)> = lines.filter_map(|l| l.split_once(':')).collect();
    if headers
        .iter()
        .any(|(k, _)| k.trim().eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err(BadRequest::Chunked);
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(BadRequest::BodyTooLarge(length));
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .map_err(|_| BadRequest::BodyTimedOut)??;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok((method, path, body))
}

fn state_of(zoo: &Zoo, issuer: usize, serial: &[u8]) -> CertState {
    let Some(ca) = zoo.cas.get(issuer) else {
        return CertState::Unknown;
    };
    let hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    match zoo
        .manifest
        .cert
        .iter()
        .find(|c| c.issuer == ca.label && c.serial == hex)
        .map(|c| c.ocsp_status.as_str())
    {
        Some("good") => CertState::Good,
        Some("revoked") => CertState::Revoked {
            at: at(2025, Month::January, 1),
        },
        _ => CertState::Unknown,
    }
}

async fn serve(mut s: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let fault = shared.fault();
    // The whole request within 30 s, however slowly it trickles in.
    let read = tokio::time::timeout(Duration::from_secs(30), read_request(&mut s)).await;
    let (method, path, body) = match read {
        Ok(Ok(r)) => r,
        other => {
            let bad = match other {
                Ok(Err(e)) => e,
                _ => BadRequest::TooSlow,
            };
            let (status, why) = (bad.status(), bad.to_string());
            record(&shared, peer, "?", "?", status, &why);
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                respond(&mut s, status, "text/plain", why.as_bytes()),
            )
            .await;
            return;
        }
    };
    if let RevocationFault::Slow { ms } = fault {
        tokio::time::sleep(Duration::from_secs_f64(
            ms as f64 / 1000.0 / shared.time_scale,
        ))
        .await;
    }
    let (status, ctype, payload, what) = answer(&shared, fault, &method, &path, &body);
    record(&shared, peer, &method, &path, status, &what);
    let _ = tokio::time::timeout(
        Duration::from_secs(30),
        respond(&mut s, status, ctype, &payload),
    )
    .await;
}

fn record(shared: &Shared, peer: SocketAddr, method: &str, path: &str, status: u16, what: &str) {
    let mut log = shared.log();
    if log.len() >= MAX_LOG {
        log.remove(0);
    }
    log.push(RequestRecord {
        peer: peer.to_string(),
        method: method.to_string(),
        path: path.to_string(),
        status,
        what: what.to_string(),
    });
}

fn answer(
    shared: &Shared,
    fault: RevocationFault,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, &'static str, Vec<u8>, String) {
    const OCSP: &str = "application/ocsp-response";
    const CRL: &str = "application/pkix-crl";
    if fault == RevocationFault::Http500 {
        return (
            500,
            "text/plain",
            b"internal error (scripted)".to_vec(),
            "http 500 (scripted)".into(),
        );
    }
    let zoo = &shared.zoo;
    let ocsp_request = match (method, path) {
        ("POST", "/ocsp") => Some(body.to_vec()),
        ("GET", p) if p.starts_with("/ocsp/") => {
            let enc = percent_decode(&p["/ocsp/".len()..]);
            base64::engine::general_purpose::STANDARD
                .decode(enc.as_bytes())
                .ok()
        }
        _ => None,
    };
    if let Some(req) = ocsp_request {
        if fault == RevocationFault::Malformed {
            return (
                200,
                OCSP,
                b"this is not an OCSP response".to_vec(),
                "malformed OCSP (scripted)".into(),
            );
        }
        let issuers: Vec<OcspIssuer<'_>> = zoo
            .cas
            .iter()
            .map(|c| OcspIssuer {
                cert_der: &c.der,
                key: &c.key,
            })
            .collect();
        let forger = Some(OcspIssuer {
            cert_der: &shared.rogue.der,
            key: &shared.rogue.key,
        });
        let signer = if fault == RevocationFault::WrongSigner {
            forger.as_ref()
        } else {
            None
        };
        let state = |i: usize, serial: &[u8]| state_of(zoo, i, serial);
        // Fixed times, like the CRLs': answers do not depend on anyone's clock.
        let resp = ocsp::respond(&req, &issuers, &state, signer, at(2025, Month::January, 1));
        return (
            200,
            OCSP,
            resp,
            format!(
                "OCSP response{}",
                if signer.is_some() {
                    " (wrong signer)"
                } else {
                    ""
                }
            ),
        );
    }
    if method == "GET" {
        if let Some(name) = path
            .strip_prefix("/crl/")
            .and_then(|n| n.strip_suffix(".crl"))
        {
            if fault == RevocationFault::Malformed {
                return (
                    200,
                    CRL,
                    b"this is not a CRL".to_vec(),
                    "malformed CRL (scripted)".into(),
                );
            }
            if fault == RevocationFault::WrongSigner {
                if let Some((_, der)) = shared.forged_crls.iter().find(|(l, _)| l == name) {
                    return (
                        200,
                        CRL,
                        der.clone(),
                        format!("CRL of {name} (wrong signer)"),
                    );
                }
            }
            let file = if fault == RevocationFault::StaleCrl {
                format!("{name}-stale.crl")
            } else {
                format!("{name}.crl")
            };
            if let Some(der) = zoo.files.get(&file) {
                return (200, CRL, der.clone(), format!("CRL {file}"));
            }
        }
    }
    (404, "text/plain", b"not found".to_vec(), "not found".into())
}

fn percent_decode(s: &str) -> String {
    let hexval = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn respond(s: &mut TcpStream, status: u16, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        411 => "Length Required",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.shutdown().await
}
