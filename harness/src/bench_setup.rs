//! `hil bench-setup`: what to enter on a device so it reaches the harness, and a check
//! that it does. The harness address is looked up among this machine's interfaces;
//! the zoo is checked against it; then either the device is driven over its console
//! through three probe cases (SMTP, POP before SMTP, a TLS case whose revocation check
//! fetches from the responder), or, with no console, the harness waits for the
//! device's own test mail.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::runner::{DeviceChoice, RunOptions, Runner};
use hil_mail::netaddr::{local_addresses, neighbour, network, BindAddr, LocalAddr};
use hil_zoo::responder_addr;

/// What `hil bench-setup` was asked.
#[derive(Debug, Clone)]
pub struct BenchSetupOptions {
    pub bind: BindAddr,
    pub server_address: Option<String>,
    /// The zoo the runs will use (`--certs`).
    pub certs: PathBuf,
    pub scenarios: PathBuf,
    /// The device to drive; `None`: wait for the device's own test mail.
    pub device: Option<DeviceChoice>,
    pub profile: Option<PathBuf>,
    /// The plain SMTP and POP3 ports to listen on for a check by hand (0: any).
    pub smtp_port: u16,
    pub pop_port: u16,
    /// How long to wait for a device's own test mail (no `--device`).
    pub wait: Duration,
    pub time_scale: f64,
    pub reconnect_wait: Duration,
}

/// Why `hil bench-setup` could not check the bench: the harness address, the
/// profile, the matrix or zoo, or the device's console (each said as for `hil run`).
#[derive(Debug, thiserror::Error)]
pub enum BenchSetupError {
    /// `--bind` is on no interface of this machine: the ones it has (not loopback).
    #[error(
        "--bind {bind}: no interface of this machine has {}; give one it has ({}), or add it first (ip addr add {}/24 dev IFACE)",
        bind.ip(),
        if have.is_empty() { "none but loopback".to_string() } else { have.join(", ") },
        bind.ip()
    )]
    NoInterface { bind: BindAddr, have: Vec<String> },
    #[error("--bind {0} listens on every address: say which one the device should use with --server-address")]
    AnyAddress(BindAddr),
    #[error(transparent)]
    Profile(#[from] crate::device::profile::ProfileError),
    #[error(transparent)]
    Matrix(#[from] hil_oracle::matrix::BuildError),
    #[error(transparent)]
    Zoo(#[from] hil_zoo::LoadError),
    #[error(transparent)]
    Id(#[from] hil_oracle::matrix::IdError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the zoo's responder on {} cannot start: {source}", .addr.ip())]
    Responder {
        addr: std::net::SocketAddr,
        source: Box<hil_zoo::served::ServeError>,
    },
    #[error("cannot reach the device's console: {0}")]
    Runner(#[source] crate::runner::StartError),
    #[error("SMTP listener on {bind}: {source}")]
    SmtpListener {
        bind: std::net::SocketAddr,
        source: hil_mail::netio::ListenError,
    },
    #[error("POP3 listener on {bind}: {source}")]
    PopListener {
        bind: std::net::SocketAddr,
        source: hil_mail::netio::ListenError,
    },
}

/// One line of the check: what, and whether it passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

fn check(what: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        what: what.into(),
        ok,
        detail: detail.into(),
    }
}

/// The interface that holds `bind`, or why none does.
fn interface_of(bind: &BindAddr, all: &[LocalAddr]) -> Result<Option<LocalAddr>, BenchSetupError> {
    if bind.is_unspecified() {
        return Ok(None);
    }
    all.iter()
        .find(|a| a.ip == bind.ip())
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            let have = all
                .iter()
                .filter(|a| !a.ip.is_loopback())
                .map(|a| format!("{}/{} on {}", a.ip, a.prefix, a.interface))
                .collect();
            BenchSetupError::NoInterface {
                bind: bind.clone(),
                have,
            }
        })
}

/// The `smtp.server` value the device gets.
fn server_address(o: &BindAddr, given: &Option<String>) -> Result<String, BenchSetupError> {
    match given {
        Some(a) => Ok(a.clone()),
        None if o.is_unspecified() => Err(BenchSetupError::AnyAddress(o.clone())),
        None => Ok(o.to_string()),
    }
}

/// Whether the zoo's certificates name `server` and its responder listens where the
/// device can reach it (on the bind address).
fn zoo_checks(
    o: &BenchSetupOptions,
    server: &str,
    all: &[LocalAddr],
    out: &mut Vec<String>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let opts = match hil_zoo::options_of(&o.certs) {
        Ok(z) => z,
        Err(e) => {
            checks.push(check("certificate zoo", false, e.to_string()));
            return checks;
        }
    };
    let bare = server.split('%').next().unwrap_or(server);
    let named = opts.hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(bare)
            || matches!((h.parse::<IpAddr>(), bare.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
    });
    let remake = format!(
        "hil certs --out bench-certs --host {bare} --responder http://{}:8099",
        BindAddr::from(o.bind.ip()).url_host()
    );
    checks.push(check(
        "certificates name the server address",
        named,
        if named {
            format!("{} names {bare}", o.certs.display())
        } else {
            format!(
                "{} names {} only: TLS cases with the cn check will fail; make a zoo for the bench: {remake}",
                o.certs.display(),
                opts.hosts.join(", ")
            )
        },
    ));
    let iface_of = |ip: IpAddr| all.iter().find(|a| a.ip == ip).map(|a| a.interface.clone());
    let reachable = match responder_addr(&opts.responder).map(|a| a.ip()) {
        // The bind address itself, another address of the same interface, or
        // loopback for a device on this machine.
        Some(ip) => {
            ip == o.bind.ip()
                || (ip.is_loopback() && o.bind.ip().is_loopback())
                || (iface_of(ip).is_some() && iface_of(ip) == iface_of(o.bind.ip()))
        }
        None => false,
    };
    checks.push(check(
        RESPONDER_CHECK,
        reachable,
        if reachable {
            format!("OCSP and CRL at {}", opts.responder)
        } else {
            format!(
                "the zoo's OCSP/CRL URLs point at {}, which the device cannot reach at {}; make a zoo for the bench: {remake}",
                opts.responder, o.bind
            )
        },
    ));
    out.push(format!("  certificates   {} (--certs)", o.certs.display()));
    out.push(format!(
        "  responder      {}/ocsp, {}/crl/…",
        opts.responder, opts.responder
    ));
    checks
}

/// Prints the set-up and runs the checks; answers whether every check passed.
pub fn run(o: &BenchSetupOptions, say: &mut dyn FnMut(&str)) -> Result<bool, BenchSetupError> {
    let all = local_addresses();
    let iface = interface_of(&o.bind, &all)?;
    let server = server_address(&o.bind, &o.server_address)?;
    say(&format!(
        "hil bench-setup: the harness listens on {}",
        o.bind
    ));
    match &iface {
        Some(i) => say(&format!(
            "  interface      {} ({}/{})",
            i.interface, i.ip, i.prefix
        )),
        None => say("  interface      every interface (--bind is the any-address)"),
    }
    let mut checks = Vec::new();
    if o.bind.ip().is_loopback() {
        say("  note           loopback: only a device on this machine (the simulator) reaches it;");
        say("                 give --bind the address of the interface facing a real device");
    }
    say("");
    say("On the device, enter once (its network settings):");
    match &iface {
        Some(i) if i.prefix < 127 && !i.ip.is_loopback() => {
            let eg = neighbour(i.ip, i.prefix)
                .map(|n| format!(", e.g. {n}"))
                .unwrap_or_default();
            let what = if i.ip.is_ipv4() {
                format!(
                    "an address in {}/{} other than {}{eg}, netmask {}",
                    network(i.ip, i.prefix),
                    i.prefix,
                    i.ip,
                    netmask_v4(i.prefix)
                )
            } else {
                format!(
                    "an address in {}/{} other than {}{eg} (or its link-local address)",
                    network(i.ip, i.prefix),
                    i.prefix,
                    i.ip
                )
            };
            say(&format!("  IP address     {what}"));
            say("  gateway, DNS   none needed: the servers are given as addresses");
        }
        _ => say("  IP address     one that reaches the harness address"),
    }
    say("  clock          the current time (the certificate checks use it)");
    say("");
    say("The harness sets the rest over the console before every case:");
    say(&format!("  smtp.server    {server}"));
    say(&format!("  pop.server     {server}"));
    say("  smtp.port, smtp.ssl_port, pop.port, pop.ssl_port: ports of this run's listeners");
    let mut lines = Vec::new();
    checks.extend(zoo_checks(o, &server, &all, &mut lines));
    for l in &lines {
        say(l);
    }
    say("");

    let probe_checks = match &o.device {
        Some(device) => {
            let responder_ok = checks.iter().any(|c| c.what == RESPONDER_CHECK && c.ok);
            probe_device(o, device.clone(), responder_ok, &server, say)?
        }
        None => wait_for_device(o, &server, say)?,
    };
    checks.extend(probe_checks);

    say("");
    say("Checks:");
    for c in &checks {
        say(&format!(
            "  [{}] {}: {}",
            if c.ok { " ok " } else { "FAIL" },
            c.what,
            c.detail
        ));
    }
    Ok(checks.iter().all(|c| c.ok))
}

fn netmask_v4(prefix: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(hil_mail::netaddr::mask_v4(prefix))
}

const RESPONDER_CHECK: &str = "responder reachable by the device";

/// The probe cases: an id of the setting matrix and what it shows reached.
/// What a probe case must show reached the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Smtp,
    Pop,
    /// SMTP over TLS, and the responder asked when `ocsp`.
    Tls {
        ocsp: bool,
    },
}

/// The probe cases for a firmware: SMTP; POP before SMTP unless it lacks it; TLS
/// (STARTTLS, else SMTPS, whichever it has) with an OCSP check unless it lacks
/// revocation checking.
fn probes(facts: &hil_oracle::model::DeviceFacts) -> Vec<(String, String, Reach)> {
    use hil_oracle::model::Key;
    let has = |k: Key, v: &str| facts.lacks(k, v).is_none();
    let mut out = vec![("delivery/base".to_string(), "SMTP".to_string(), Reach::Smtp)];
    if has(Key::PopBeforeSmtpEnabled, "on") {
        out.push((
            "pop/pop_before_smtp.enabled=on".into(),
            "POP3 (POP before SMTP)".into(),
            Reach::Pop,
        ));
    }
    let mode = ["starttls", "smtps"]
        .into_iter()
        .find(|m| has(Key::SmtpTls, m));
    if let Some(mode) = mode {
        let name = if mode == "starttls" {
            "STARTTLS"
        } else {
            "SMTPS"
        };
        let ocsp = has(Key::SmtpVerifyRevocation, "on");
        out.push(if ocsp {
            (
                format!("tls/smtp.tls={mode},smtp.verify.revocation=on"),
                format!("{name} and the OCSP responder"),
                Reach::Tls { ocsp: true },
            )
        } else {
            (
                format!("tls/smtp.tls={mode}"),
                name.to_string(),
                Reach::Tls { ocsp: false },
            )
        });
    }
    out
}

/// Drives the device through the probe cases and reports what reached the harness.
fn probe_device(
    o: &BenchSetupOptions,
    device: DeviceChoice,
    responder_ok: bool,
    server: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Check>, BenchSetupError> {
    let facts = match &o.profile {
        Some(p) => crate::device::Profile::load(p)?.facts,
        None => hil_oracle::model::DeviceFacts::default(),
    };
    let m = hil_oracle::matrix::Matrix::build(&o.certs, &o.scenarios, &facts)?;
    let zoo_ok = hil_zoo::options_of(&o.certs)
        .ok()
        .and_then(|z| responder_addr(&z.responder))
        .filter(|_| responder_ok);
    // The responder, kept to see the device's requests.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(BenchSetupError::Runtime)?;
    // On a free port of the zoo's responder host, the zoo re-signed to point there (as
    // `hil run` does): a bench check beside a run does not collide with it.
    let served = match zoo_ok {
        Some(mut addr) => {
            addr.set_port(0);
            Some(
                rt.block_on(hil_zoo::served::serve(
                    &o.certs,
                    Some(addr),
                    &hil_zoo::served::default_cache(),
                    1.0,
                    hil_zoo::responder::RevocationFault::None,
                ))
                .map_err(|e| BenchSetupError::Responder {
                    addr,
                    source: Box::new(e),
                })?,
            )
        }
        None => None,
    };
    let certs = served
        .as_ref()
        .map_or_else(|| o.certs.clone(), |s| s.dir.clone());
    let responder = served.map(|s| s.responder);
    say("Checking that the device reaches the harness (three probe cases):");
    let mut runner = Runner::start(RunOptions {
        device,
        profile: o.profile.clone(),
        bind: o.bind.clone(),
        smtp_port: 0,
        default_ports: false,
        server_address: Some(server.to_string()),
        filter: None,
        verbose: false,
        device_time_scale: o.time_scale,
        certs: Some(certs),
        plant: Vec::new(),
        sim_exe: None,
        reconnect_wait: o.reconnect_wait,
        capture: None,
    })
    .map_err(BenchSetupError::Runner)?;
    let mut checks = Vec::new();
    for (id, what, reach) in probes(&facts) {
        let (id, what) = (id.as_str(), what.as_str());
        if reach == (Reach::Tls { ocsp: true }) && responder.is_none() {
            checks.push(check(
                what,
                false,
                "not probed: the zoo's responder is not on the harness address (see above)",
            ));
            continue;
        }
        let row = m.parse_id(id)?;
        let case = m.case(&row);
        let before = responder.as_ref().map(|r| r.requests().len()).unwrap_or(0);
        let r = runner.run_case(&case);
        let obs = r.observed.as_ref();
        let smtp_peers: Vec<String> = obs
            .map(|o| {
                o.server
                    .connections
                    .iter()
                    .map(|c| c.peer.clone())
                    .collect()
            })
            .unwrap_or_default();
        let pop_peers: Vec<String> = obs
            .map(|o| o.pop.iter().map(|c| c.peer.clone()).collect())
            .unwrap_or_default();
        let ocsp: Vec<String> = responder
            .as_ref()
            .map(|rs| {
                rs.requests()
                    .into_iter()
                    .skip(before)
                    .map(|q| format!("{} {} from {}", q.method, q.path, q.peer))
                    .collect()
            })
            .unwrap_or_default();
        let (reached, seen) = match reach {
            Reach::Pop => (!pop_peers.is_empty(), pop_peers.join(", ")),
            Reach::Tls { ocsp: true } => (
                !smtp_peers.is_empty() && !ocsp.is_empty(),
                format!(
                    "SMTP from {}; responder: {}",
                    smtp_peers.join(", "),
                    ocsp.join(", ")
                ),
            ),
            Reach::Tls { ocsp: false } | Reach::Smtp => {
                (!smtp_peers.is_empty(), smtp_peers.join(", "))
            }
        };
        let detail = if reached && r.passed {
            format!("reached ({seen}); case {id} passed")
        } else if reached {
            format!(
                "reached ({seen}), but case {id} did not pass: {}",
                r.harness_error
                    .clone()
                    .unwrap_or_else(|| crate::outcome::texts(&r.mismatches).join("; "))
            )
        } else {
            format!(
                "nothing reached the harness in case {id}: {}",
                r.harness_error
                    .clone()
                    .or_else(|| r.mismatches.first().map(|m| m.text.clone()))
                    .unwrap_or_else(|| "no connection".into())
            )
        };
        say(&format!("  {what}: {detail}"));
        checks.push(check(what, reached && r.passed, detail));
    }
    crate::pool::CaseRunner::shutdown(Box::new(runner));
    drop(responder);
    Ok(checks)
}

/// With no console: listens on plain SMTP and POP3 ports and waits for the device's
/// own test mail.
fn wait_for_device(
    o: &BenchSetupOptions,
    server: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Check>, BenchSetupError> {
    use hil_mail::pop3::Pop3Config;
    use hil_mail::pop3_server::{Pop3Listen, Pop3Server};
    use hil_mail::pop_window::PopLogins;
    use hil_mail::smtp::SmtpConfig;
    use hil_mail::smtp_server::{Listen, ListenerKind, ServerOptions, SmtpServer};
    use std::sync::Arc;
    if o.wait.is_zero() {
        say("No --device and --wait 0: nothing to check from the device's side.");
        return Ok(Vec::new());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(BenchSetupError::Runtime)?;
    let logins = Arc::new(PopLogins::new(1.0));
    let smtp = rt
        .block_on(SmtpServer::start_with(
            vec![Listen {
                kind: ListenerKind::Plain,
                bind: o.bind.socket(o.smtp_port),
                identity: None,
            }],
            SmtpConfig::default(),
            ServerOptions {
                time_scale: 1.0,
                pop_logins: Arc::clone(&logins),
                epoch: None,
                max_kept_bytes: hil_mail::smtp_server::MAX_KEPT_BYTES,
            },
        ))
        .map_err(|source| BenchSetupError::SmtpListener {
            bind: o.bind.socket(o.smtp_port),
            source,
        })?;
    let pop = rt
        .block_on(Pop3Server::start(
            vec![Pop3Listen {
                kind: ListenerKind::Plain,
                bind: o.bind.socket(o.pop_port),
                identity: None,
            }],
            Pop3Config::default(),
            1.0,
            Arc::clone(&logins),
        ))
        .map_err(|source| BenchSetupError::PopListener {
            bind: o.bind.socket(o.pop_port),
            source,
        })?;
    let pop_port = pop.listeners().first().map(|(_, a)| a.port()).unwrap_or(0);
    say("No --device: check by hand. On the device, set");
    say(&format!("  smtp.server    {server}"));
    say(&format!("  smtp.port      {}", smtp.addr().port()));
    say("  smtp.tls       none, smtp.auth.enabled off");
    say(&format!(
        "  (POP: pop.server {server}, pop.port {pop_port}, if you try POP before SMTP)"
    ));
    say(&format!(
        "and send a test mail (an alert, the counter, a scan) within {} s.",
        o.wait.as_secs()
    ));
    let deadline = Instant::now() + o.wait;
    let mut smtp_seen = Vec::new();
    let mut pop_seen = Vec::new();
    while Instant::now() < deadline && smtp_seen.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        let obs = smtp.take();
        for c in &obs.connections {
            let ehlo = c
                .transcript
                .iter()
                .find_map(|e| {
                    let t = e.text.trim_end();
                    let up = t.to_ascii_uppercase();
                    (up.starts_with("EHLO ") || up.starts_with("HELO ")).then(|| t.to_string())
                })
                .unwrap_or_else(|| "no EHLO".into());
            smtp_seen.push(format!(
                "{} ({ehlo}; {} message(s))",
                c.peer,
                obs.messages.len()
            ));
        }
        for c in pop.take() {
            pop_seen.push(c.peer);
        }
    }
    let mut checks = vec![check(
        "SMTP",
        !smtp_seen.is_empty(),
        if smtp_seen.is_empty() {
            format!(
                "no connection to {} within {} s: check the device's address, netmask and cable, and that no firewall drops port {}",
                smtp.addr(),
                o.wait.as_secs(),
                smtp.addr().port()
            )
        } else {
            format!("reached from {}", smtp_seen.join(", "))
        },
    )];
    if !pop_seen.is_empty() {
        checks.push(check(
            "POP3",
            true,
            format!("reached from {}", pop_seen.join(", ")),
        ));
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_not_on_this_machine_is_named() {
        let all = local_addresses();
        let e = interface_of(&"192.0.2.77".parse().unwrap(), &all)
            .unwrap_err()
            .to_string();
        assert!(e.contains("192.0.2.77"), "{e}");
        assert!(e.contains("no interface of this machine"), "{e}");
        let lo = interface_of(&BindAddr::loopback(), &all).unwrap();
        assert_eq!(lo.map(|l| l.interface), Some("lo".to_string()));
    }

    #[test]
    fn networks_print() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network(ip("192.168.10.7"), 24), ip("192.168.10.0"));
        assert_eq!(netmask_v4(24).to_string(), "255.255.255.0");
        assert_eq!(network(ip("fd77::1"), 64), ip("fd77::"));
    }
}
