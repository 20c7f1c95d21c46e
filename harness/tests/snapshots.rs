//! Regression snapshots: every scenario in `scenarios/` run once against the simulated
//! device (reference profile), the device set up from the scenario alone
//! ([`device_settings`]). What is snapshotted (`tests/snapshots/NAME.snap`, NAME the
//! file stem): the settings applied, the SMTP and POP3 transcripts the servers recorded
//! (every connection in order, direction and text, no timestamps), the messages they
//! kept (envelope and headers), and the device's result (the job's end and its report,
//! recipient by recipient). [`normalise`] hides what varies from run to run.
//!
//! Workflow: `cargo test -p hil --test snapshots`; on a change, `cargo insta review`
//! (or `INSTA_UPDATE=always cargo test -p hil --test snapshots`) and review the diff.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use hil::device::{JobEnd, Status, TriggerAnswer};
use hil_mail::faults::Action;
use hil_mail::scenario::Scenario;
use hil_mail::serve;
use hil_mail::smtp::{Dir, Entry, ListenerKind};
use regex::Regex;

/// Device time runs this many times faster: the default 60 s `smtp.timeout` is 1.2 s,
/// a 20 s scripted delay 0.4 s.
const SCALE: f64 = 50.0;
/// The scan every scenario gets: these recipients (one a rule of
/// `recipients-refused` refuses by address, one by domain), this size.
const RECIPIENTS: &str = "a@hil.test,gone@hil.test,x@blocked.hil.test";
const SIZE_KB: &str = "3";
/// Settings whose values are secrets: masked in the console log and the snapshot.
const SECRET_KEYS: [&str; 3] = ["smtp.auth.password", "smtp.auth.token", "pop.password"];
/// How many scenarios run at once (each a `hil sim` process and its servers; they
/// mostly wait on timeouts).
const PARALLEL: usize = 6;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Every scenario file, by file stem, in name order.
fn scenarios() -> Vec<(String, Scenario)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_string();
            (stem, Scenario::load(&p).expect("scenario loads"))
        })
        .collect()
}

fn set(pairs: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    pairs.push((key.to_string(), value.into()));
}

/// How the device is set up for a scenario: derived from the scenario alone (and the
/// ports its servers got), the same way every run.
///
/// - Notification addresses: `admin.address=admin@hil.test`,
///   `device.address=mfp@hil.test`; `smtp.server=127.0.0.1`, `smtp.timeout` left at
///   its default (60 s, which the scenarios are written against).
/// - SMTP: the scenario's first SMTP listener. Its port goes to the setting its `role`
///   names (`smtp.ssl_port` for a `tls` listener, `smtp.port` otherwise, unless the
///   role says else), and `smtp.tls` is the mode that uses that setting: `smtps` for
///   `smtp.ssl_port`; for `smtp.port`, `starttls` when the listener speaks TLS
///   (`starttls` or `tls`) and `none` when it is plain. Without a role this is: `tls`
///   → smtps, `starttls` → starttls, `plain` → none. A scenario with no SMTP part
///   gets `smtp.port=1` (closed): the job ends at the SMTP connect, after the POP
///   session.
/// - Verification: every `smtp.verify.*` flag off except `expiry` (no revocation, so
///   no OCSP responder); the zoo's `certs/root.crt` is imported first.
/// - AUTH, when the SMTP part offers any mechanism: on, with its first account's
///   user, password, realm (DIGEST-MD5) and token; with a token, `xoauth2` is put
///   first in `smtp.auth.methods` (else the default list).
/// - POP before SMTP, when the scenario has a POP3 part: on, `pop.server=127.0.0.1`,
///   its first POP3 listener (`tls` → `pop.tls=pop3s` on `pop.ssl_port`, `starttls`
///   → `stls` on `pop.port`, `plain` → `none` on `pop.port`), its first account.
///   `pop.apop` is off (the default: USER/PASS, which a `pass` fault needs) except
///   for a server that refuses APOP (`refuse_apop`), which is there to be tried with
///   it. `pop_before_smtp.wait` stays at its default.
///
/// The job is one scan of `SIZE_KB` KB to `RECIPIENTS`.
fn device_settings(
    s: &Scenario,
    smtp: &[(ListenerKind, SocketAddr)],
    pop: &[(ListenerKind, SocketAddr)],
) -> Vec<(String, String)> {
    let mut p = Vec::new();
    set(&mut p, "admin.address", "admin@hil.test");
    set(&mut p, "device.address", "mfp@hil.test");
    set(&mut p, "smtp.server", "127.0.0.1");
    match (&s.smtp, smtp.first()) {
        (Some(cfg), Some((kind, addr))) => {
            let spec = &cfg.listeners[0];
            let port_key = format!("smtp.{}", spec.role());
            let mode = match (port_key.as_str(), kind) {
                ("smtp.ssl_port", _) => "smtps",
                (_, ListenerKind::Plain) => "none",
                _ => "starttls",
            };
            set(&mut p, "smtp.tls", mode);
            set(&mut p, &port_key, addr.port().to_string());
            if !cfg.auth.is_empty() {
                let a = cfg.accounts.first().expect("AUTH offered: an account");
                set(&mut p, "smtp.auth.enabled", "on");
                set(&mut p, "smtp.auth.user", a.user.clone());
                set(&mut p, "smtp.auth.password", a.password.clone());
                if let Some(realm) = &a.realm {
                    set(&mut p, "smtp.auth.realm", realm.clone());
                }
                if let Some(token) = &a.token {
                    set(&mut p, "smtp.auth.token", token.clone());
                    set(
                        &mut p,
                        "smtp.auth.methods",
                        "xoauth2,digest-md5,cram-md5,login,plain",
                    );
                }
            }
        }
        _ => {
            set(&mut p, "smtp.tls", "none");
            set(&mut p, "smtp.port", "1");
        }
    }
    set(&mut p, "smtp.verify.expiry", "on");
    for flag in ["cn", "key_usage", "chain", "revocation"] {
        set(&mut p, &format!("smtp.verify.{flag}"), "off");
    }
    if let (Some(cfg), Some((kind, addr))) = (&s.pop3, pop.first()) {
        let (tls, port_key) = match kind {
            ListenerKind::Tls => ("pop3s", "pop.ssl_port"),
            ListenerKind::Starttls => ("stls", "pop.port"),
            ListenerKind::Plain => ("none", "pop.port"),
        };
        let a = cfg.accounts.first().expect("a POP3 part: an account");
        set(&mut p, "pop_before_smtp.enabled", "on");
        set(&mut p, "pop.server", "127.0.0.1");
        set(&mut p, "pop.tls", tls);
        set(&mut p, port_key, addr.port().to_string());
        set(
            &mut p,
            "pop.apop",
            if cfg.refuse_apop { "on" } else { "off" },
        );
        set(&mut p, "pop.user", a.user.clone());
        set(&mut p, "pop.password", a.password.clone());
    }
    p
}

/// The passwords and tokens a scenario holds: none may reach a snapshot.
fn secrets(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    for a in s.smtp.iter().flat_map(|c| &c.accounts) {
        out.push(a.password.clone());
        out.extend(a.token.clone());
    }
    for a in s.pop3.iter().flat_map(|c| &c.accounts) {
        out.push(a.password.clone());
    }
    out.retain(|x| !x.is_empty());
    out
}

/// Control characters escaped, so that one entry stays one line.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A client line that is no text: TLS bytes (a ClientHello sent to a plaintext
/// port), cut into "lines" wherever its random bytes hold an LF.
fn binary(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || c == '\u{fffd}')
}

/// A connection's transcript, one entry a line. Once the client has sent bytes that
/// are no text, the rest of what it sends and the server's same answer to each piece
/// are folded into one line: how many pieces there are depends on the TLS randoms.
fn transcript(out: &mut String, entries: &[Entry]) {
    let mut folding = false;
    let mut answer: Option<&str> = None;
    for e in entries {
        let who = match e.dir {
            Dir::C => "C:",
            Dir::S => "S:",
            Dir::Note => "~~",
        };
        if folding && e.dir == Dir::C {
            continue;
        }
        if folding && e.dir == Dir::S {
            match answer {
                Some(a) if a == e.text => continue,
                Some(_) => {}
                None => answer = Some(&e.text),
            }
        }
        if e.dir == Dir::C && binary(&e.text) {
            folding = true;
            out.push_str("  C: [bytes that are no text (TLS?); the rest the client sent, and the server's repeated answer, folded]\n");
            continue;
        }
        out.push_str(&format!("  {who} {}\n", printable(&e.text)));
    }
}

/// Runs the scenario once and describes what happened, before normalisation.
fn observe(s: &Scenario) -> String {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let running = rt
        .block_on(serve::start(
            s,
            &hil_mail::netaddr::BindAddr::loopback(),
            &root().join("certs"),
            SCALE,
        ))
        .expect("the scenario's servers start");
    let pairs = device_settings(s, &running.smtp_endpoints(), &running.pop3_endpoints());
    let (sim, mut con) = common::sim_at(SCALE, &[]);
    let root_pem = std::fs::read_to_string(root().join("certs/root.crt")).expect("root.crt");
    let imported = con.import_cert(&root_pem).expect("cert import");
    assert_eq!(imported.status, Status::Ok, "cert import");
    let applied = con
        .apply(&common::keyed(&pairs), &common::keys(&SECRET_KEYS))
        .expect("apply");
    assert_eq!(applied.status, Status::Ok, "apply {pairs:?}");

    let mut out = String::new();
    out.push_str("device settings:\n");
    for (k, v) in &pairs {
        let v = if SECRET_KEYS.contains(&k.as_str()) {
            "***"
        } else {
            v
        };
        out.push_str(&format!("  {k}={v}\n"));
    }
    out.push_str(&format!("job: scan {RECIPIENTS} {SIZE_KB} KB\n"));
    match con
        .trigger("scan", &[("to", RECIPIENTS), ("size_kb", SIZE_KB)])
        .expect("trigger")
    {
        TriggerAnswer::Refused { class, detail } => {
            out.push_str(&format!("  refused: {class} {detail}\n"));
        }
        TriggerAnswer::Job(id) => {
            match con.wait_job(id, Duration::from_secs(30)).expect("job end") {
                JobEnd::Done => out.push_str("  end: done\n"),
                JobEnd::Failed { class, detail } => {
                    out.push_str(&format!("  end: failed {class} {detail}\n"))
                }
            }
            let r = con.job_report(id).expect("job report");
            out.push_str(&format!(
                "  report: {} {} {}\n",
                r.state,
                r.class.as_deref().unwrap_or("-"),
                r.detail.as_deref().unwrap_or("-")
            ));
            for v in &r.recipients {
                let verdict = if v.accepted { "accepted" } else { "rejected" };
                out.push_str(&format!("  RCPT {} {verdict} {}\n", v.address, v.detail));
            }
        }
    }
    let log: String = con.take_log().iter().map(|l| l.text.clone()).collect();
    for secret in secrets(s) {
        assert!(!log.contains(&secret), "a secret in the console log");
    }
    drop(sim);

    if let Some(server) = &running.pop3 {
        assert!(server.wait_idle(Duration::from_secs(10)), "POP3 still busy");
        for c in server.take() {
            out.push_str(&format!(
                "pop3 connection {} ({} listener):\n",
                c.id, c.listener
            ));
            transcript(&mut out, &c.transcript);
        }
    }
    if let Some(server) = &running.smtp {
        assert!(server.wait_idle(Duration::from_secs(10)), "SMTP still busy");
        let obs = server.take();
        for c in &obs.connections {
            out.push_str(&format!(
                "smtp connection {} ({} listener):\n",
                c.id, c.listener
            ));
            transcript(&mut out, &c.transcript);
            for a in &c.auth {
                out.push_str(&format!(
                    "  auth {} user={} ok={} {}\n",
                    a.mechanism,
                    a.user.as_deref().unwrap_or("-"),
                    a.ok,
                    a.detail
                ));
            }
        }
        for m in &obs.messages {
            out.push_str(&format!(
                "message on connection {}: {} {}, tls={}, auth={}, MAIL FROM:<{}> SIZE={}, RCPT {}; {} bytes, {} bare LF, {} long lines\n",
                m.connection,
                m.greeted_with,
                m.helo,
                m.tls,
                m.auth_user.as_deref().unwrap_or("-"),
                m.mail_from,
                m.size_param.map_or("-".into(), |n| n.to_string()),
                m.recipients.join(","),
                m.data.len(),
                m.bare_lf,
                m.long_lines,
            ));
            let text = String::from_utf8_lossy(&m.data);
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            for l in head.split("\r\n") {
                out.push_str(&format!("  | {l}\n"));
            }
            if let Some(mime) = &m.mime {
                for part in &mime.parts {
                    out.push_str(&format!(
                        "  part {} {} {} bytes\n",
                        part.content_type,
                        part.filename.as_deref().unwrap_or("-"),
                        part.size
                    ));
                }
            }
        }
    }
    drop(running);
    rt.shutdown_timeout(Duration::from_secs(1));
    out
}

/// A SASL challenge (the text after `334 `) as it reads, with the parts that change
/// every run (nonces, CRAM-MD5 timestamps, DIGEST-MD5 `rspauth`) hidden. Text that is
/// not base64 of printable text is hidden whole.
fn challenge(b64: &str) -> String {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|t| t.chars().all(|c| !c.is_control()));
    let Some(text) = decoded else {
        return "[challenge]".into();
    };
    let nonce = Regex::new(r#"(nonce|rspauth)=("[^"]*"|[^,]*)"#).expect("re");
    let text = nonce.replace_all(&text, "$1=[nonce]");
    let cram = Regex::new(r"^<[^<>@]*@").expect("re");
    let text = cram.replace(&text, "<[nonce]@");
    format!("[base64 of] {text}")
}

/// Hides what changes from run to run; keeps everything else (cipher suites included).
/// - dates: RFC 2822 (`Date:` headers) → `[date]`, RFC 3339 → `[time]`;
/// - `Message-ID: <…>` → `<[message-id]>`; MIME boundaries `=_mfp_…` → `=_mfp_[boundary]`;
/// - ports: after an address (`127.0.0.1:N`, `[::1]:N`, `localhost:N`), any `:NNNNN`,
///   and `…port=NNNNN` in the settings → `[port]`;
/// - the APOP timestamp in a POP3 greeting → `<[apop-timestamp]>`;
/// - SASL challenges (`334 …`) decoded, nonces hidden ([`challenge`]);
/// - `message/partial` ids → `[partial-id]`; download URLs on the loopback →
///   `[download-url]`;
/// - a client that left: `closed by client` however the server noticed (end of
///   stream; a reset at a read; EPIPE or a reset at a write: which is a race);
/// - control characters escaped, trailing blanks cut.
fn normalise(raw: &str) -> String {
    let rules: [(&str, &str); 11] = [
        (
            r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}(?::\d{2})? (?:[+-]\d{4}|[A-Z]{1,3})",
            "[date]",
        ),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
            "[time]",
        ),
        (r"(?i)(message-id:\s*)<[^>\s]*>", "$1<[message-id]>"),
        (r"=_mfp_[0-9A-Za-z]+", "=_mfp_[boundary]"),
        (
            r"https?://(?:127\.0\.0\.1|localhost|\[::1\])[^\s>]*",
            "[download-url]",
        ),
        (
            r#"(?i)(message/partial;[^\n]*?\bid=)("[^"]*"|[^;\s]+)"#,
            "$1[partial-id]",
        ),
        (
            r"((?:\d{1,3}\.){3}\d{1,3}|\]|localhost):\d{1,5}\b",
            "$1:[port]",
        ),
        (r":\d{5}\b", ":[port]"),
        (r"(port=)\d{5}\b", "${1}[port]"),
        (r"(S: \+OK .*)<[^<>\s]+@[^<>\s]+>", "$1<[apop-timestamp]>"),
        (
            r"(?m)^(  ~~ )(?:read|write) failed: (?:Broken pipe|Connection reset by peer) \(os error \d+\)$",
            "${1}closed by client",
        ),
    ];
    let mut text = raw.to_string();
    for (re, to) in rules {
        text = Regex::new(re)
            .expect("filter")
            .replace_all(&text, to)
            .into_owned();
    }
    let sasl = Regex::new(r"(?m)^(  S: 334 )(\S+)$").expect("re");
    let text = sasl.replace_all(&text, |c: &regex::Captures| {
        format!("{}{}", &c[1], challenge(&c[2]))
    });
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(printable(line).trim_end());
        out.push('\n');
    }
    out
}

/// One scenario's snapshot text: its description, then what was observed, normalised;
/// asserts no secret of the scenario is in it.
fn snapshot_text(name: &str, s: &Scenario) -> String {
    let text = format!(
        "scenario: {name}\n{}\n{}",
        s.description,
        normalise(&observe(s))
    );
    for secret in secrets(s) {
        assert!(
            !text.contains(&secret),
            "{name}: a password in the snapshot"
        );
    }
    text
}

/// Runs every scenario, `PARALLEL` at a time; answers each one's snapshot text (or
/// its panic message), in the order given.
fn run_all(list: &[(String, Scenario)]) -> Vec<(String, Result<String, String>)> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, Result<String, String>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL.min(list.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((name, s)) = list.get(i) else {
                            return mine;
                        };
                        let run = std::panic::AssertUnwindSafe(|| snapshot_text(name, s));
                        let r = std::panic::catch_unwind(run).map_err(|e| {
                            e.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panicked".into())
                        });
                        mine.push((i, r));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    assert_eq!(done.len(), list.len(), "every scenario ran");
    list.iter()
        .zip(done)
        .map(|((name, _), (_, r))| (name.clone(), r))
        .collect()
}

fn insta_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings
}

#[test]
fn every_scenario_matches_its_snapshot() {
    let list = scenarios();
    assert!(!list.is_empty(), "no scenarios");
    let mut failed = Vec::new();
    for (name, result) in run_all(&list) {
        let text = match result {
            Ok(t) => t,
            Err(e) => {
                failed.push(format!("{name}: the run failed: {e}"));
                continue;
            }
        };
        // Each snapshot is asserted on its own so one mismatch does not hide the next.
        let assert = std::panic::AssertUnwindSafe(|| {
            insta_settings().bind(|| insta::assert_snapshot!(name.as_str(), text))
        });
        if std::panic::catch_unwind(assert).is_err() {
            failed.push(format!("{name}: differs from its snapshot"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The committed snapshot `NAME.snap`'s content (after insta's header).
fn committed(name: &str) -> String {
    let path = snapshot_dir().join(format!("{name}.snap"));
    let file = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("\r\n", "\n");
    let body = file
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(_, body)| body)
        .unwrap_or_else(|| panic!("{}: no insta header", path.display()));
    body.trim_end().to_string()
}

/// The "done when" of the snapshots: one reply text changed in one scenario (in
/// memory) makes exactly that scenario's snapshot differ from the committed ones, and
/// every other one still matches. Nothing is written.
#[test]
fn one_changed_reply_fails_exactly_its_snapshot() {
    const CHANGED: &str = "greylisting-451";
    let mut list = scenarios();
    let (_, s) = list
        .iter_mut()
        .find(|(n, _)| n == CHANGED)
        .expect("the scenario to change");
    let smtp = s.smtp.as_mut().expect("an SMTP part");
    let changed = smtp
        .faults
        .iter_mut()
        .find_map(|f| match &mut f.action {
            Action::Reply { text, .. } => Some(text),
            _ => None,
        })
        .expect("a scripted reply");
    *changed = changed.replace("Greylisted", "Greylisted for a while");
    let mut differ = BTreeSet::new();
    let mut failed = Vec::new();
    for (name, result) in run_all(&list) {
        match result {
            Ok(text) if text.trim_end() != committed(&name) => {
                if name != CHANGED {
                    let want = committed(&name);
                    let first = text
                        .lines()
                        .zip(want.lines())
                        .find(|(a, b)| a != b)
                        .map_or("(a line more or less)".into(), |(a, b)| {
                            format!("now {a:?}, committed {b:?}")
                        });
                    failed.push(format!("{name} differs: {first}"));
                }
                differ.insert(name);
            }
            Ok(_) => {}
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    assert_eq!(
        differ,
        BTreeSet::from([CHANGED.to_string()]),
        "exactly the changed scenario's snapshot differs\n{}",
        failed.join("\n")
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn normalise_hides_what_varies_and_keeps_the_rest() {
    let raw = "\
  ~~ connection from 127.0.0.1:54321 on the tls listener 127.0.0.1:40001
  ~~ TLS established: TLSv1_3 TLS13_AES_256_GCM_SHA384, certificate valid, SNI none
  S: +OK pop.hil.test ready <1234.5678@pop.hil.test>
  S: 334 PDEyMzQ1LjY3ODlAbXguaGlsLnRlc3Q+
  S: 334 VXNlcm5hbWU6
  | Date: Fri, 27 Nov 2026 09:01:02 +0000
  | Message-ID: <1795770062.1@127.0.0.1>
  | Content-Type: multipart/mixed; boundary=\"=_mfp_9e3779b97f4a7c15\"
  end: failed timeout 127.0.0.1:41234: no reply in 60 s at 2026-11-27T00:00:00.000Z
  ~~ write failed: Connection reset by peer (os error 104)
  ~~ read failed: Connection reset by peer (os error 104)
  smtp.port=41234
";
    let want = "\
  ~~ connection from 127.0.0.1:[port] on the tls listener 127.0.0.1:[port]
  ~~ TLS established: TLSv1_3 TLS13_AES_256_GCM_SHA384, certificate valid, SNI none
  S: +OK pop.hil.test ready <[apop-timestamp]>
  S: 334 [base64 of] <[nonce]@mx.hil.test>
  S: 334 [base64 of] Username:
  | Date: [date]
  | Message-ID: <[message-id]>
  | Content-Type: multipart/mixed; boundary=\"=_mfp_[boundary]\"
  end: failed timeout 127.0.0.1:[port]: no reply in 60 s at [time]
  ~~ closed by client
  ~~ closed by client
  smtp.port=[port]
";
    assert_eq!(normalise(raw), want);
}
