//! Comparing what was observed (the device's answers, the server's record) with what
//! the oracle expects. Each mismatch is one sentence; no mismatch is a pass.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

use crate::device::{JobEnd, JobReport, TriggerAnswer};
use crate::outcome::{Mismatch, MismatchKind as K, Mismatches};
use hil_mail::pop3_server::Pop3Connection;
use hil_mail::smtp::Received;
use hil_mail::smtp_server::Observations;
use hil_oracle::model::Key;
use hil_oracle::oracle::{Delivery, Expected, PopExpect, Prediction};

/// Everything one case saw.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub trigger: TriggerAnswer,
    pub end: Option<JobEnd>,
    pub report: Option<JobReport>,
    pub server: Observations,
    /// The POP3 server's connections.
    pub pop: Vec<Pop3Connection>,
    /// Wall time from the trigger to the job's end event.
    pub elapsed_ms: u64,
    /// The device refused the case's `apply`: its class and detail.
    pub apply_refused: Option<(String, String)>,
    /// After a refused `apply`: a key it tried to change, and the value `get` reads.
    pub after_refusal: Option<(Key, String)>,
    /// A password or token `get` showed in clear after the apply (SPEC §6: they are
    /// write-only).
    pub secret_shown: Option<Key>,
    /// The file behind a download URL in the mail, fetched from the device.
    #[serde(skip)]
    pub downloaded: Option<Result<Vec<u8>, DownloadError>>,
}

/// Why the file behind a download URL could not be fetched; each names the URL
/// (shared, so that an [`Observed`] can be cloned).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DownloadError {
    #[error("{0}: not an http:// URL")]
    NotHttp(String),
    /// Resolving, connecting, sending or reading failed.
    #[error("{url}: {source}")]
    Io {
        url: String,
        source: std::sync::Arc<std::io::Error>,
    },
    #[error("{0}: no address")]
    NoAddress(String),
    /// The socket's read timeout cannot be set.
    #[error("{0}")]
    Timeout(#[source] std::sync::Arc<std::io::Error>),
    #[error("{0}: no HTTP header end")]
    NoHeaderEnd(String),
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: String },
}

/// The download URL in a mail's text (SPEC §4's URL modes), if any.
pub fn download_url(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let start = text.find("http://")?;
    let url: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '"')
        .collect();
    Some(url)
}

/// A bounded HTTP/1.0 GET of an `http://HOST:PORT/PATH` URL; the body on a 200.
pub fn http_get(url: &str, timeout: std::time::Duration) -> Result<Vec<u8>, DownloadError> {
    use std::io::{Read, Write};
    use std::sync::Arc;
    let io = |e: std::io::Error| DownloadError::Io {
        url: url.to_string(),
        source: Arc::new(e),
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| DownloadError::NotHttp(url.to_string()))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(io)?
        .next()
        .ok_or_else(|| DownloadError::NoAddress(url.to_string()))?;
    let mut c = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    c.set_read_timeout(Some(timeout))
        .map_err(|e| DownloadError::Timeout(Arc::new(e)))?;
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").as_bytes())
        .map_err(io)?;
    let mut buf = Vec::new();
    c.take(64 * 1024 * 1024).read_to_end(&mut buf).map_err(io)?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| DownloadError::NoHeaderEnd(url.to_string()))?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(DownloadError::Status {
            url: url.to_string(),
            status: status.to_string(),
        });
    }
    Ok(buf[end + 4..].to_vec())
}

/// Every way `obs` differs from the whole prediction: the outcome, the POP session,
/// the refused settings.
pub fn compare_all(p: &Prediction, obs: &Observed, judging: &Judging) -> Vec<Mismatch> {
    let mut bad = Mismatches::default();
    if let Expected::SettingsRefused { key } = &p.outcome {
        match &obs.apply_refused {
            Some((class, detail)) => {
                if class != "config" {
                    bad.add(
                        K::ApplyRefusedClass,
                        format!("the apply was refused with {class}, expected config"),
                    );
                }
                let name = judging.profile.map_or(key.as_str(), |p| p.device_key(*key));
                if !detail.contains(name) {
                    bad.add(
                        K::RefusalKey,
                        format!("the refusal {detail:?} does not name {name}"),
                    );
                }
            }
            None => bad.add(
                K::Outcome,
                format!("expected the apply refused for {key}, the device took it"),
            ),
        }
        if let Some((k, v)) = &obs.after_refusal {
            let default = k.default_value();
            if v != default {
                bad.add(K::PartlyStored, format!(
                    "after the refused apply {k} is {v:?}, not its default {default:?}: part of the apply was stored"
                ));
            }
        }
        return bad.0;
    }
    if let Some((class, detail)) = &obs.apply_refused {
        bad.add(
            K::Outcome,
            format!("the device refused the case's settings: {class} {detail}"),
        );
        return bad.0;
    }
    if let Some(k) = obs.secret_shown {
        bad.add(
            K::SecretShown,
            format!("get {k} shows the value set in clear (SPEC §6: passwords and tokens are write-only, shown as ***)"),
        );
    }
    bad.0.extend(compare(&p.outcome, obs, judging));
    pop(p.pop.as_ref(), &obs.pop, &mut bad);
    if let Some(pe) = p.pop.as_ref().filter(|pe| pe.login_ok) {
        pop_wait(pe, obs, judging, &mut bad);
    }
    if let (Expected::Delivered(d), Some(kb)) = (&p.outcome, p_url(&p.outcome)) {
        let _ = d;
        match &obs.downloaded {
            None => bad.add(K::Download, "no download URL in the mail".into()),
            Some(Err(e)) => bad.add(
                K::Download,
                format!("the download URL does not serve the file: {e}"),
            ),
            Some(Ok(body)) if judging.synthetic_scan && *body != expected_scan_bytes(kb) => bad
                .add(
                    K::Download,
                    format!(
                        "the downloaded file has {} bytes and differs from the scan ({} KB)",
                        body.len(),
                        kb
                    ),
                ),
            Some(Ok(_)) => {}
        }
    }
    bad.0
}

/// What the device answered to the trigger and how the job ended, in words:
/// `job 5 failed with cert_name (detail)`, `the trigger refused with disabled`.
pub fn answer_words(t: &TriggerAnswer, end: Option<&JobEnd>) -> String {
    match (t, end) {
        (TriggerAnswer::Refused { class, detail }, _) => {
            format!("the trigger refused with {class} ({detail})")
        }
        (TriggerAnswer::Job(n), Some(JobEnd::Done)) => format!("job {n} done"),
        (TriggerAnswer::Job(n), Some(JobEnd::Failed { class, detail })) => {
            format!("job {n} failed with {class} ({detail})")
        }
        (TriggerAnswer::Job(n), None) => format!("job {n} started and never ended"),
    }
}

/// `<a@x>, <b@y>`, or `none`.
fn angle_list<S: AsRef<str>>(v: &[S]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|a| format!("<{}>", a.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn p_url(e: &Expected) -> Option<u32> {
    match e {
        Expected::Delivered(d) => d.url,
        _ => None,
    }
}

fn pop(exp: Option<&PopExpect>, conns: &[Pop3Connection], bad: &mut Mismatches) {
    let Some(p) = exp else {
        if !conns.is_empty() {
            bad.add(
                K::PopConnections,
                format!(
                    "POP before SMTP is off, yet the device made {} POP3 connection(s)",
                    conns.len()
                ),
            );
        }
        return;
    };
    let [c] = conns else {
        bad.add(
            K::PopConnections,
            format!(
                "expected one POP3 connection before SMTP, saw {}",
                conns.len()
            ),
        );
        return;
    };
    // TLS is up at the end unless a fault of the server cut it short.
    let tls_ok = p.tls_up.is_none_or(|up| c.tls.is_some() == up);
    let listener_ok = match p.tls {
        "pop3s" => c.listener == "tls" && tls_ok,
        "stls" => c.listener == "starttls" && tls_ok,
        _ => c.listener == "plain" && c.tls.is_none(),
    };
    if !listener_ok {
        bad.add(
            K::PopTls,
            format!(
                "POP3 with pop.tls={} went to the {} listener (TLS {})",
                p.tls,
                c.listener,
                if c.tls.is_some() { "on" } else { "off" }
            ),
        );
    }
    let used_apop = c.transcript.iter().any(|e| e.text.starts_with("APOP"));
    let used_user = c.transcript.iter().any(|e| e.text.starts_with("USER"));
    if !p.reaches_login {
        // A fault of the server ended the session before the login.
        if used_apop || used_user {
            bad.add(
                K::PopMethod,
                "the POP3 session should have ended before the login, yet the device sent one"
                    .into(),
            );
        }
    } else if (p.method == "APOP") != used_apop {
        bad.add(
            K::PopMethod,
            format!(
                "expected a POP3 login with {}, the transcript shows {}",
                p.method,
                if used_apop { "APOP" } else { "USER/PASS" }
            ),
        );
    }
    if p.login_ok == c.logins.is_empty() {
        bad.add(
            K::PopLogin,
            format!(
                "the POP3 login should {}succeed",
                if p.login_ok { "" } else { "not " }
            ),
        );
    }
}

/// SPEC §3.6: the device waits `pop_before_smtp.wait` after the POP session before
/// it connects for SMTP. Measured on the servers' shared clock, from the POP
/// session's last line to the first SMTP connection's first line: both stamps can
/// only make the gap longer than the device's own wait, so the lower bound needs no
/// slack beyond 5 % (a device timer's tick) and 1 ms (the stamps' resolution); the
/// upper bound allows 50 % + 3 s, as for timeouts (a device may resolve names or
/// load its TLS stack in between).
fn pop_wait(p: &PopExpect, obs: &Observed, judging: &Judging, bad: &mut Mismatches) {
    let [c] = obs.pop.as_slice() else {
        return;
    };
    let (Some(pop_end), Some(smtp_start)) = (
        c.transcript.last().map(|e| e.t_ms),
        obs.server
            .connections
            .iter()
            .filter_map(|c| c.transcript.first().map(|e| e.t_ms))
            .min(),
    ) else {
        return;
    };
    let want = p.wait_ms as f64 / judging.time_scale.max(1e-6);
    let got = smtp_start.saturating_sub(pop_end) as f64;
    if got < want * 0.95 - 1.0 || got > want * 1.5 + 3000.0 {
        bad.add(
            K::PopWait,
            format!(
                "the device connected for SMTP {got:.0} ms after the POP session; pop_before_smtp.wait is {} s ({want:.0} ms at this time scale)",
                p.wait_ms / 1000
            ),
        );
    }
}

/// What the comparison needs to know about the device and the run.
#[derive(Debug, Clone, Copy)]
pub struct Judging<'a> {
    /// The device's time runs this many times faster than wall time (1 on hardware).
    pub time_scale: f64,
    /// The device's scan attachment follows the simulator's rule (byte `i` is
    /// `i mod 251`), so it can be checked byte for byte.
    pub synthetic_scan: bool,
    /// The device's profile, for its names of the settings (a refusal names the key
    /// as the device calls it); `None`: SPEC's names.
    pub profile: Option<&'a crate::device::Profile>,
}

/// The scan attachment a device sends for `size_kb` KB: byte `i` is `i mod 251`
/// (docs/device-mail.md).
pub fn expected_scan_bytes(size_kb: u32) -> Vec<u8> {
    (0..size_kb as usize * 1024)
        .map(|i| (i % 251) as u8)
        .collect()
}

/// Lists every way `obs` differs from `exp`.
pub fn compare(exp: &Expected, obs: &Observed, judging: &Judging) -> Vec<Mismatch> {
    let mut bad = Mismatches::default();
    let conns = obs.server.connections.len();
    match exp {
        Expected::SettingsRefused { key } => bad.add(
            K::Outcome,
            format!("expected the apply refused for {key}, the device took it"),
        ),
        Expected::Refused { class } => {
            match &obs.trigger {
                TriggerAnswer::Refused { class: c, .. } if c == class => {}
                other => bad.add(
                    K::Outcome,
                    format!(
                        "expected the trigger refused with {class}, got {}",
                        answer_words(other, None)
                    ),
                ),
            }
            if conns != 0 {
                bad.add(
                    K::Connections,
                    format!("expected no connection, saw {conns}"),
                );
            }
        }
        Expected::Failed {
            class,
            connects,
            stored,
            detail,
            wait_ms,
        } => {
            match (&obs.trigger, &obs.end) {
                (
                    TriggerAnswer::Job(_),
                    Some(JobEnd::Failed {
                        class: c,
                        detail: d,
                    }),
                ) if c == class => {
                    if let Some(want) = detail {
                        if !d.contains(want.as_str()) {
                            bad.add(
                                K::ErrorDetail,
                                format!(
                                    "the error detail {d:?} does not carry the server's {want}"
                                ),
                            );
                        }
                    }
                }
                (t, e) => bad.add(
                    K::Outcome,
                    format!(
                        "expected the job to fail with {class}, got {}",
                        answer_words(t, e.as_ref())
                    ),
                ),
            }
            if let Some(w) = wait_ms {
                // The device must wait its whole timeout, and not much longer.
                let want = *w as f64 / judging.time_scale.max(1e-6);
                let got = obs.elapsed_ms as f64;
                if got < want * 0.95 - 20.0 || got > want * 1.5 + 3000.0 {
                    bad.add(
                        K::WaitTime,
                        format!(
                            "the device gave up after {got:.0} ms; its timeout is {want:.0} ms"
                        ),
                    );
                }
            }
            if !connects && conns != 0 {
                bad.add(
                    K::Connections,
                    format!("expected no connection, saw {conns}"),
                );
            }
            if *connects && obs.server.connections.is_empty() && !matches!(class, &"connect") {
                bad.add(
                    K::Connections,
                    "expected a connection to the server, saw none".into(),
                );
            }
            let n = obs.server.messages.len();
            if *stored && n != 1 {
                bad.add(
                    K::StoredMessages,
                    format!("expected the server to hold 1 message, it holds {n}"),
                );
            }
            if !*stored && n != 0 {
                bad.add(
                    K::StoredMessages,
                    format!("expected no message at the server, it holds {n}"),
                );
            }
        }
        Expected::Delivered(d) => delivered(d, obs, judging, &mut bad),
    }
    bad.0
}

fn delivered(d: &Delivery, obs: &Observed, judging: &Judging, bad: &mut Mismatches) {
    match (&obs.trigger, &obs.end) {
        (TriggerAnswer::Job(_), Some(JobEnd::Done)) => {}
        (t, e) => bad.add(
            K::Outcome,
            format!("expected the job done, got {}", answer_words(t, e.as_ref())),
        ),
    }
    let msgs = &obs.server.messages;
    let conns = &obs.server.connections;
    if let Some(max) = d.fragmented {
        fragments(d, max, obs, judging, bad);
    } else {
        if conns.len() != 1 {
            bad.add(
                K::Connections,
                format!("expected exactly 1 connection, saw {}", conns.len()),
            );
        }
        let [m] = msgs.as_slice() else {
            bad.add(
                K::StoredMessages,
                format!(
                    "expected exactly 1 message at the server, it holds {}",
                    msgs.len()
                ),
            );
            return;
        };
        envelope(d, m, bad);
        content(d, m, judging, bad);
    }
    for c in conns {
        let tls_ok = match d.tls {
            "smtps" => c.listener == "tls" && c.tls.is_some(),
            "starttls" => c.tls.is_some() && c.transcript.iter().any(|e| e.text == "STARTTLS"),
            _ => c.tls.is_none(),
        };
        if !tls_ok {
            bad.add(
                K::Tls,
                format!(
                    "connection {}: expected TLS {}, the {} listener saw TLS {}",
                    c.id,
                    d.tls,
                    c.listener,
                    if c.tls.is_some() { "on" } else { "off" }
                ),
            );
        }
        let used = c
            .auth
            .iter()
            .rev()
            .find(|a| a.ok)
            .map(|a| a.mechanism.to_ascii_uppercase());
        match (d.auth, used) {
            (Some(want), Some(got)) if got == want => {}
            (None, None) => {}
            (want, got) => bad.add(
                K::Auth,
                format!(
                    "connection {}: expected AUTH {}, saw {}",
                    c.id,
                    want.unwrap_or("none"),
                    got.unwrap_or_else(|| "none".into())
                ),
            ),
        }
    }
    if let Some(r) = &obs.report {
        for addr in &d.refused {
            if !r
                .recipients
                .iter()
                .any(|v| &v.address == addr && !v.accepted)
            {
                bad.add(
                    K::RecipientReport,
                    format!("the device did not report {addr} as rejected"),
                );
            }
        }
        for addr in &d.accepted {
            if r.recipients
                .iter()
                .any(|v| &v.address == addr && !v.accepted)
            {
                bad.add(
                    K::RecipientReport,
                    format!("the device reported {addr} rejected, the server accepted it"),
                );
            }
        }
    } else if !d.refused.is_empty() {
        bad.add(
            K::RecipientReport,
            "no job report to check the refused recipients in".into(),
        );
    }
}

/// SPEC §4: N message/partial fragments, each its own transaction, each at most the
/// split size (`max` bytes), reassembling into the whole message.
fn fragments(d: &Delivery, max: u64, obs: &Observed, judging: &Judging, bad: &mut Mismatches) {
    let msgs = &obs.server.messages;
    let conns = &obs.server.connections;
    if msgs.len() < 2 {
        bad.add(
            K::Fragments,
            format!(
                "expected the message split into fragments, the server holds {} message(s)",
                msgs.len()
            ),
        );
    }
    // Each fragment is its own transaction, on one connection or several.
    if conns.is_empty() || conns.len() > msgs.len() {
        bad.add(
            K::Fragments,
            format!(
                "{} fragments came over {} connections; expected 1 to {} (each fragment its own transaction)",
                msgs.len(),
                conns.len(),
                msgs.len()
            ),
        );
    }
    fragment_subjects(msgs, bad);
    for (i, m) in msgs.iter().enumerate() {
        if m.data.len() as u64 > max {
            bad.add(
                K::Fragments,
                format!(
                    "fragment {} has {} bytes, over the split size ({max} bytes)",
                    i + 1,
                    m.data.len()
                ),
            );
        }
        envelope(d, m, bad);
    }
    let [whole] = obs.server.reassembled.as_slice() else {
        bad.add(
            K::Fragments,
            format!(
                "the fragments reassemble into {} message(s), expected 1",
                obs.server.reassembled.len()
            ),
        );
        return;
    };
    let m = Received {
        data: whole.data.clone(),
        ..msgs.first().cloned().unwrap_or_else(empty_received)
    };
    content(d, &m, judging, bad);
}

/// SPEC §4: each fragment's Subject starts with `[n/N]`, `n` its `number` and `N` its
/// `total` (RFC 2046 §5.2.2's parameters of `message/partial`).
fn fragment_subjects(msgs: &[Received], bad: &mut Mismatches) {
    for (i, m) in msgs.iter().enumerate() {
        let Some(parsed) = MessageParser::default().parse_headers(&m.data) else {
            bad.add(
                K::Fragments,
                format!("fragment {}: its headers cannot be parsed", i + 1),
            );
            continue;
        };
        let param = |name: &str| {
            parsed
                .content_type()
                .and_then(|ct| ct.attribute(name))
                .map(str::to_string)
        };
        let (Some(n), Some(total)) = (param("number"), param("total")) else {
            bad.add(
                K::Fragments,
                format!(
                    "fragment {}: no number and total in its Content-Type",
                    i + 1
                ),
            );
            continue;
        };
        let want = format!("[{n}/{total}]");
        let subject = parsed.subject().unwrap_or("");
        if !subject.starts_with(&want) {
            bad.add(
                K::Fragments,
                format!(
                    "fragment {n} of {total}: its Subject {subject:?} does not start with {want}"
                ),
            );
        }
    }
}

/// The verdict on a case: the differences from the prediction — or, where SPEC lets
/// the firmware choose and the device took another allowed way, from that
/// alternative — and the latitude choices the device was seen to make.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub mismatches: Vec<Mismatch>,
    /// `expired intermediate: refused under expiry`, `fragments: over one connection`.
    pub chose: Vec<String>,
    /// The outcome judged against: the prediction's, or the alternative the device
    /// matched.
    pub expected: Expected,
}

/// Judges `obs` against the prediction and each alternative SPEC allows (the first
/// that matches wins); with none matching, the differences from the prediction.
pub fn judge(p: &Prediction, obs: &Observed, judging: &Judging) -> Judgement {
    let first = compare_all(p, obs, judging);
    let words = |c: &[hil_oracle::oracle::Choice]| c.iter().map(|c| c.to_string()).collect();
    if first.is_empty() {
        let mut chose: Vec<String> = words(&p.choices);
        chose.extend(observed_choices(&p.outcome, obs));
        return Judgement {
            mismatches: first,
            chose,
            expected: p.outcome.clone(),
        };
    }
    for alt in &p.alternatives {
        let q = Prediction {
            outcome: alt.outcome.clone(),
            pop: alt.pop.clone(),
            findings: p.findings.clone(),
            choices: alt.choices.clone(),
            alternatives: Vec::new(),
            reach: p.reach,
        };
        if compare_all(&q, obs, judging).is_empty() {
            let mut chose: Vec<String> = words(&alt.choices);
            chose.extend(observed_choices(&alt.outcome, obs));
            return Judgement {
                mismatches: Vec::new(),
                chose,
                expected: alt.outcome.clone(),
            };
        }
    }
    Judgement {
        mismatches: first,
        chose: Vec::new(),
        expected: p.outcome.clone(),
    }
}

/// The choices SPEC leaves open that the verdict sees in the server's record rather
/// than in the outcome: how fragments were spread over connections.
fn observed_choices(exp: &Expected, obs: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if let Expected::Delivered(d) = exp {
        if d.fragmented.is_some() {
            let (n, c) = (obs.server.messages.len(), obs.server.connections.len());
            out.push(match c {
                1 => format!("fragments: {n} over one connection"),
                c if c == n => format!("fragments: {n}, a connection each"),
                c => format!("fragments: {n} over {c} connections"),
            });
        }
    }
    out
}

fn empty_received() -> Received {
    Received {
        connection: 0,
        helo: String::new(),
        greeted_with: String::new(),
        tls: false,
        auth_user: None,
        mail_from: String::new(),
        size_param: None,
        recipients: Vec::new(),
        data: Vec::new(),
        bare_lf: 0,
        long_lines: 0,
        mime: None,
    }
}

fn envelope(d: &Delivery, m: &Received, bad: &mut Mismatches) {
    if m.mail_from != d.mail_from {
        bad.add(
            K::MailFrom,
            format!("MAIL FROM <{}>, expected <{}>", m.mail_from, d.mail_from),
        );
    }
    if m.recipients != d.accepted {
        bad.add(
            K::RcptTo,
            format!(
                "RCPT TO {}, expected {}",
                angle_list(&m.recipients),
                angle_list(&d.accepted)
            ),
        );
    }
    if m.greeted_with != d.greeted_with {
        bad.add(
            K::Greeting,
            format!(
                "greeted with {}, expected {}",
                m.greeted_with, d.greeted_with
            ),
        );
    }
    match (d.size_param, m.size_param) {
        (true, Some(n)) if n != m.data.len() => bad.add(
            K::SizeParam,
            format!("SIZE={n} but the message has {} bytes", m.data.len()),
        ),
        (true, None) => bad.add(
            K::SizeParam,
            "the server offered SIZE, MAIL FROM has no SIZE=".into(),
        ),
        (false, Some(n)) => bad.add(
            K::SizeParam,
            format!("SIZE={n} sent though the server did not offer SIZE"),
        ),
        _ => {}
    }
    if m.bare_lf != 0 {
        bad.add(K::BareLf, format!("{} bare LF in DATA", m.bare_lf));
    }
    if m.long_lines != 0 {
        bad.add(
            K::LongLines,
            format!("{} lines over 998 octets in DATA", m.long_lines),
        );
    }
}

fn content(d: &Delivery, m: &Received, judging: &Judging, bad: &mut Mismatches) {
    let Some(msg) = MessageParser::default().parse(&m.data) else {
        bad.add(K::Mime, "the message does not parse as MIME".into());
        return;
    };
    let from = msg.from().and_then(|a| a.first()).and_then(|a| a.address());
    if from != Some(d.header_from.as_str()) {
        bad.add(
            K::HeaderFrom,
            format!(
                "header From {}, expected <{}>",
                from.map_or_else(|| "missing".to_string(), |f| format!("<{f}>")),
                d.header_from
            ),
        );
    }
    let to: Vec<&str> = msg
        .to()
        .map(|a| a.iter().filter_map(|x| x.address()).collect())
        .unwrap_or_default();
    if to != d.to.iter().map(String::as_str).collect::<Vec<_>>() {
        bad.add(
            K::HeaderTo,
            format!(
                "header To {}, expected {}",
                angle_list(&to),
                angle_list(&d.to)
            ),
        );
    }
    // RFC 5322 requires Date (and From, checked above).
    if msg.date().is_none() {
        bad.add(K::Date, "no Date header".into());
    }
    let attachments: Vec<_> = msg.attachments().collect();
    match d.attachment_kb {
        Some(kb) => {
            let want = expected_scan_bytes(kb);
            match attachments.as_slice() {
                [a] if !judging.synthetic_scan => {
                    // A real scan's content is unknown: it must be there.
                    if a.contents().is_empty() && kb > 0 {
                        bad.add(K::Attachment, "the scan attachment is empty".into());
                    }
                }
                [a] => {
                    if a.contents() != want.as_slice() {
                        let got = a.contents();
                        let first = got.iter().zip(&want).position(|(x, y)| x != y);
                        bad.add(
                            K::Attachment,
                            format!(
                                "attachment differs: {} bytes, expected {}; {}",
                                got.len(),
                                want.len(),
                                first.map_or_else(
                                    || "one is a prefix of the other".to_string(),
                                    |i| format!("first difference at byte {i}")
                                )
                            ),
                        );
                    }
                    if a.attachment_name().is_none() {
                        bad.add(K::AttachmentName, "the attachment has no file name".into());
                    }
                }
                other => bad.add(
                    K::Attachment,
                    format!("expected 1 attachment, found {}", other.len()),
                ),
            }
        }
        None => {
            if !attachments.is_empty() {
                bad.add(
                    K::Attachment,
                    format!("expected no attachment, found {}", attachments.len()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict judges with the oracle's prediction; it lives in `hil`, which links
    /// the simulated device (for `hil sim`), so the compiler cannot keep it away from
    /// `mfp_sim`: this test does.
    #[test]
    fn verdict_does_not_use_the_simulator() {
        let path = ["mfp", "_sim::"].concat();
        let import = ["use ", "mfp", "_sim"].concat();
        let src = include_str!("verdict.rs");
        assert!(
            !src.contains(&path) && !src.contains(&import),
            "verdict.rs must not call into the simulator"
        );
    }

    fn failed_after(detail: &str, elapsed_ms: u64) -> Observed {
        Observed {
            trigger: TriggerAnswer::Job(1),
            end: Some(JobEnd::Failed {
                class: "rejected".into(),
                detail: detail.into(),
            }),
            report: None,
            server: Observations::default(),
            pop: Vec::new(),
            elapsed_ms,
            apply_refused: None,
            after_refusal: None,
            secret_shown: None,
            downloaded: None,
        }
    }

    const JUDGING: Judging = Judging {
        time_scale: 10.0,
        synthetic_scan: true,
        profile: None,
    };

    fn expected(detail: Option<&str>, wait_ms: Option<u64>) -> Expected {
        Expected::Failed {
            class: "rejected",
            connects: false,
            stored: false,
            detail: detail.map(str::to_string),
            wait_ms,
        }
    }

    #[test]
    fn the_servers_code_must_be_in_the_detail() {
        let exp = expected(Some("451"), None);
        assert!(compare(
            &exp,
            &failed_after("MAIL FROM 451 4.3.0 try later", 5),
            &JUDGING
        )
        .is_empty());
        let bad = compare(&exp, &failed_after("MAIL FROM refused", 5), &JUDGING);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].text.contains("451"));
        assert_eq!(bad[0].kind, K::ErrorDetail);
    }

    #[test]
    fn a_timeout_must_take_the_timeout() {
        // 30 s of device time at scale 10 is 3 s of wall time.
        let exp = expected(None, Some(30_000));
        assert!(compare(&exp, &failed_after("x", 3_050), &JUDGING).is_empty());
        assert_eq!(compare(&exp, &failed_after("x", 1_000), &JUDGING).len(), 1);
        assert_eq!(compare(&exp, &failed_after("x", 30_000), &JUDGING).len(), 1);
    }
}
