//! What one job does (SPEC §2, §3): decide whether the mail may be sent, who it is
//! from and to, build it, and hand it to the SMTP session.

use std::time::Duration;

use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use crate::clock::device_now;
use crate::mime::{self, Attachment, Mail};
use crate::net;
use crate::options::Options;
use crate::partial;
use crate::pop_client::{PopAuth, PopPlan};
use crate::resolve::Names;
use crate::sasl_client::Credentials;
use crate::settings::{Key, Settings};
use crate::smtp_client::{AuthPlan, ClientQuirks, Envelope, Outcome, RcptResult, TlsMode};
use crate::verify::Checks;

/// What a console command asks the device to send.
#[derive(Debug, Clone)]
pub enum Trigger {
    Scan {
        to: Vec<String>,
        size_kb: u32,
        user: Option<String>,
    },
    Alert(&'static str),
    Counter,
}

/// A registered device user (for `device_user` credentials and the scan From).
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub password: String,
    pub address: String,
}

/// Everything a job needs, copied when it was triggered.
#[derive(Debug, Clone)]
pub struct JobInput {
    pub id: u64,
    pub trigger: Trigger,
    pub settings: Settings,
    pub users: Vec<User>,
    pub notify: Vec<String>,
    pub certs: std::sync::Arc<Vec<Vec<u8>>>,
    pub clock_offset: time::Duration,
}

/// How a job ended.
#[derive(Debug, Clone, Default)]
pub struct JobResult {
    /// `None` when delivered; else the error class of SPEC §5 and the detail.
    pub error: Option<JobError>,
    pub recipients: Vec<RcptResult>,
}

/// Why a job failed or was refused: an error class of SPEC §5 and the detail, as the
/// consoles show them (`ERR class detail`, `EVENT JOB n failed class detail`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class} {detail}")]
pub struct JobError {
    pub class: &'static str,
    pub detail: String,
}

impl JobError {
    pub fn new(class: &'static str, detail: impl Into<String>) -> JobError {
        JobError {
            class,
            detail: detail.into(),
        }
    }
}

fn refuse<T>(class: &'static str, detail: impl Into<String>) -> Result<T, JobError> {
    Err(JobError::new(class, detail))
}

/// The switches for scans (SPEC §2): a scan with them off is refused at once.
pub fn scan_gate(s: &Settings) -> Result<(), JobError> {
    if !s.flag(Key::EmailEnabled) {
        return refuse("disabled", "e-mail sending is off (email.enabled=off)");
    }
    if !s.flag(Key::EmailScan) {
        return refuse("disabled", "scan to e-mail is off (email.scan=off)");
    }
    Ok(())
}

/// Everything one job's SMTP sessions need, decided before any connection.
struct Plan {
    pop: Option<(net::PopTarget, Duration)>,
    /// The message, or its `message/partial` fragments, each its own transaction.
    messages: Vec<Vec<u8>>,
    envelope: Envelope,
    port: u16,
    timeout: Duration,
    tls: net::TlsSetup,
}

/// Decides what a job sends, to whom, from whom and how (SPEC §2–§4), or why it
/// cannot be sent; the checks come in the order that decides which error a job gets.
fn plan(input: &JobInput, opts: &Options) -> Result<Plan, JobError> {
    let s = &input.settings;
    kind_gate(input)?;
    if let Trigger::Alert(kind) = input.trigger {
        if opts.quirks.alerts_paper_jam_only && kind != "paper_jam" {
            return refuse("config", format!("alert {kind}: not sent (planted)"));
        }
    }
    let user = job_user(input);
    let recipients = recipients(input)?;
    if s.text(Key::SmtpServer).is_empty() {
        return refuse("config", "smtp.server is empty");
    }
    let header_from = header_from(s, user)?;
    let mail_from = envelope_sender(s, user)?;
    let now = device_now(input.clock_offset);
    let boundary = input.id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut mail = compose(input, now, header_from, recipients.clone(), &opts.hostname);
    let message = reduce_load(s, opts, &mut mail, now, boundary)?;
    let messages = split_for_server(s, input.id, opts, now, &mail, message)?;
    let timeout = if opts.quirks.timeout_ignored {
        device_seconds(60, opts)
    } else {
        device_seconds(s.number(Key::SmtpTimeout), opts)
    };
    let mode = match s.text(Key::SmtpTls) {
        "smtps" => TlsMode::Smtps,
        "starttls" => TlsMode::Starttls,
        _ => TlsMode::None,
    };
    let port_key = if mode == TlsMode::Smtps {
        Key::SmtpSslPort
    } else {
        Key::SmtpPort
    };
    let tls = tls_setup(input, opts, now);
    let pop = pop_target(s, opts, &tls)?;
    Ok(Plan {
        pop,
        tls,
        envelope: Envelope {
            tls: mode,
            plaintext_fallback: opts.variants.plaintext_after_starttls_failure,
            auth: auth_plan(input, user, opts),
            ehlo_host: opts.hostname.clone(),
            mail_from,
            recipients,
            message: Vec::new(),
            then: Vec::new(),
            quirks: ClientQuirks {
                rcpt_530_rejected: opts.quirks.rcpt_530_rejected,
                quit_refusal_fails: opts.quirks.quit_refusal_fails,
                malformed_challenge_ignored: opts.quirks.malformed_challenge_ignored,
                refused_recipient_fails: opts.quirks.refused_recipient_fails,
            },
        },
        messages,
        port: match s.number(port_key) as u16 {
            // The planted firmware's factory port is 587, whatever `get` says.
            25 | 465 if opts.quirks.factory_port_587 => 587,
            p => p,
        },
        timeout,
    })
}

/// SPEC §2: the master switch and the switch of the job's kind of mail.
fn kind_gate(input: &JobInput) -> Result<(), JobError> {
    let s = &input.settings;
    let (kind_switch, what) = match &input.trigger {
        Trigger::Scan { .. } => (Key::EmailScan, "scan to e-mail"),
        Trigger::Alert(_) => (Key::EmailNotify, "alert notification"),
        Trigger::Counter => (Key::EmailCounter, "total counter notification"),
    };
    if !s.flag(Key::EmailEnabled) {
        return refuse("disabled", "e-mail sending is off (email.enabled=off)");
    }
    if !s.flag(kind_switch) {
        return refuse("disabled", format!("{what} is off ({kind_switch}=off)"));
    }
    Ok(())
}

/// The device user a scan names, if any.
fn job_user(input: &JobInput) -> Option<&User> {
    match &input.trigger {
        Trigger::Scan {
            user: Some(name), ..
        } => input.users.iter().find(|u| &u.name == name),
        _ => None,
    }
}

/// A scan's addresses, or every notification address (SPEC §2: none is `config`).
fn recipients(input: &JobInput) -> Result<Vec<String>, JobError> {
    match &input.trigger {
        Trigger::Scan { to, .. } => Ok(to.clone()),
        _ if input.notify.is_empty() => refuse("config", "no notification address is registered"),
        _ => Ok(input.notify.clone()),
    }
}

/// The header From (SPEC §2): the job user's address, else `device.address`.
fn header_from(s: &Settings, user: Option<&User>) -> Result<String, JobError> {
    let from = match user {
        Some(u) if !u.address.is_empty() => u.address.clone(),
        _ => s.text(Key::DeviceAddress).to_string(),
    };
    if from.is_empty() {
        return refuse("config", "no From address: device.address is empty");
    }
    Ok(from)
}

/// MAIL FROM (SPEC §3.8): `envelope_from.address` when specified, else
/// `admin.address`; with `device_user` credentials the job user's address.
fn envelope_sender(s: &Settings, user: Option<&User>) -> Result<String, JobError> {
    let specified = s.text(Key::EnvelopeFromMode) == "specified";
    let key = if specified {
        Key::EnvelopeFromAddress
    } else {
        Key::AdminAddress
    };
    let mut sender = s.text(key).to_string();
    if s.flag(Key::SmtpAuthEnabled) && s.text(Key::SmtpAuthSource) == "device_user" {
        if let Some(u) = user.filter(|u| !u.address.is_empty()) {
            sender = u.address.clone();
        }
    }
    if sender.is_empty() {
        return refuse("config", format!("no envelope sender: {key} is empty"));
    }
    Ok(sender)
}

/// SPEC §4 on the size of the whole encoded message: refused over the limit
/// (`abort_over_limit`), or the attachment left on the device behind a download URL
/// (`url_over_limit`, `url_always`). Answers the message to send.
fn reduce_load(
    s: &Settings,
    opts: &Options,
    mail: &mut Mail,
    now: OffsetDateTime,
    boundary: u64,
) -> Result<Vec<u8>, JobError> {
    let message = mime::encode(mail, boundary);
    let over = s.text(Key::LoadMaxSize) == "limited"
        && message.len() as u64 > s.number(Key::LoadServerCapacity) * 1024;
    let by_url = match s.text(Key::LoadMode) {
        "abort_over_limit" if over => {
            return refuse(
                "size_over_limit",
                format!(
                    "the message is {} KB, over load.server_capacity={} KB",
                    message.len().div_ceil(1024),
                    s.number(Key::LoadServerCapacity)
                ),
            )
        }
        "url_over_limit" => over,
        "url_always" => true,
        _ => false,
    };
    if !by_url {
        return Ok(message);
    }
    let Some(a) = mail.attachment.take() else {
        return Ok(message);
    };
    let Some(store) = &opts.downloads else {
        return refuse(
            "config",
            "load.mode needs the download service, which is off",
        );
    };
    let ttl = device_seconds(opts.url_ttl_s, opts);
    let until = now + time::Duration::seconds(opts.url_ttl_s as i64);
    let token = format!("{:016x}", boundary ^ now.unix_timestamp() as u64);
    let url = store.put(&token, &a.filename, a.bytes, ttl);
    mail.text.push_str(&format!(
        "\nThe scanned document is not attached. Download it until {}:\n{url}\n",
        until.format(&Rfc2822).unwrap_or_default()
    ));
    Ok(mime::encode(mail, boundary))
}

/// SPEC §4 `split`: a message over `load.split_size` as `message/partial`
/// fragments; any other message whole.
fn split_for_server(
    s: &Settings,
    job: u64,
    opts: &Options,
    now: OffsetDateTime,
    mail: &Mail,
    message: Vec<u8>,
) -> Result<Vec<Vec<u8>>, JobError> {
    let limit = match s.text(Key::LoadMode) {
        "split" => s.number(Key::LoadSplitSize) as usize * 1024,
        _ => return Ok(vec![message]),
    };
    if message.len() <= limit {
        return Ok(vec![message]);
    }
    let host = &opts.hostname;
    let stamp = now.unix_timestamp();
    let id = format!("{job}.{stamp}@{host}");
    let mid = |n: u32| format!("<{stamp}.{job}.part{n}@{host}>");
    match partial::split(
        &message,
        limit,
        &id,
        &mail.from,
        &mail.to.join(", "),
        &mail.subject,
        &now.format(&Rfc2822).unwrap_or_default(),
        &mid,
        !opts.quirks.no_fragment_subject_prefix,
    ) {
        Ok(frags) => Ok(frags.into_iter().map(|f| f.bytes).collect()),
        Err(e) => refuse("config", format!("load.mode=split: {e}")),
    }
}

/// POP before SMTP (SPEC §3.6), when it is on: where to log in, with the SMTP
/// session's certificate checks (`tls`, SPEC §3.5), and how long to wait after it.
fn pop_target(
    s: &Settings,
    opts: &Options,
    tls: &net::TlsSetup,
) -> Result<Option<(net::PopTarget, Duration)>, JobError> {
    if !s.flag(Key::PopBeforeSmtpEnabled) {
        return Ok(None);
    }
    if s.text(Key::PopServer).is_empty() {
        return refuse(
            "config",
            "pop_before_smtp.enabled is on but pop.server is empty",
        );
    }
    let implicit_tls = s.text(Key::PopTls) == "pop3s";
    let port_key = if implicit_tls {
        Key::PopSslPort
    } else {
        Key::PopPort
    };
    let target = net::PopTarget {
        server: s.text(Key::PopServer).to_string(),
        port: s.number(port_key) as u16,
        implicit_tls,
        plan: PopPlan {
            user: s.text(Key::PopUser).to_string(),
            password: s.text(Key::PopPassword).to_string(),
            auth: if s.flag(Key::PopApop) {
                PopAuth::Apop
            } else {
                PopAuth::UserPass
            },
            stls: s.text(Key::PopTls) == "stls",
        },
        tls: (!opts.quirks.pop_tls_unchecked).then(|| tls.clone()),
    };
    let wait = if opts.quirks.pop_wait_ignored {
        Duration::ZERO
    } else {
        device_seconds(s.number(Key::PopBeforeSmtpWait), opts)
    };
    Ok(Some((target, wait)))
}

/// The certificate checks that are on (SPEC §3.5), with the device clock and store.
fn tls_setup(input: &JobInput, opts: &Options, now: OffsetDateTime) -> net::TlsSetup {
    let s = &input.settings;
    net::TlsSetup {
        checks: Checks {
            expiry: s.flag(Key::SmtpVerifyExpiry),
            cn: s.flag(Key::SmtpVerifyCn),
            key_usage: s.flag(Key::SmtpVerifyKeyUsage),
            chain: s.flag(Key::SmtpVerifyChain),
            revocation: s.flag(Key::SmtpVerifyRevocation),
            cn_only: opts.variants.cn_only,
            expired_intermediate: opts.quirks.expired_intermediate_fails,
        },
        now_unix: now.unix_timestamp(),
        store: std::sync::Arc::clone(&input.certs),
        soft_fail_revocation: opts.variants.soft_fail_revocation,
        sources: crate::revocation::Sources {
            ocsp: !opts.lacks.0.contains(&"ocsp"),
            crl: !opts.lacks.0.contains(&"crl"),
        },
    }
}

/// `seconds` of device time as wall time: device time runs `--time-scale` times
/// faster.
fn device_seconds(seconds: u64, opts: &Options) -> Duration {
    Duration::from_secs_f64(seconds as f64 / opts.time_scale.max(1e-6))
}

/// What AUTH needs (SPEC §3.7), when it is on.
fn auth_plan(input: &JobInput, user: Option<&User>, opts: &Options) -> Option<AuthPlan> {
    let s = &input.settings;
    if !s.flag(Key::SmtpAuthEnabled) {
        return None;
    }
    let configured = Credentials {
        user: s.text(Key::SmtpAuthUser).to_string(),
        password: s.text(Key::SmtpAuthPassword).to_string(),
        realm: s.text(Key::SmtpAuthRealm).to_string(),
        token: s.text(Key::SmtpAuthToken).to_string(),
    };
    // device_user: the job user's login; notifications have no user and use the
    // configured credentials.
    let creds = match (s.text(Key::SmtpAuthSource), user) {
        ("device_user", Some(u)) => Credentials {
            user: u.name.clone(),
            password: u.password.clone(),
            ..configured
        },
        _ => configured,
    };
    Some(AuthPlan {
        enabled: s.mechanisms().into_iter().map(str::to_string).collect(),
        creds,
        service_host: s.text(Key::SmtpServer).to_string(),
        cnonce_seed: input.id,
        send_without_auth: opts.variants.send_without_auth,
    })
}

fn compose(
    input: &JobInput,
    now: OffsetDateTime,
    from: String,
    to: Vec<String>,
    host: &str,
) -> Mail {
    let date = now.format(&Rfc2822).unwrap_or_default();
    let message_id = format!("<{}.{}@{}>", now.unix_timestamp(), input.id, host);
    let (subject, text, attachment) = match &input.trigger {
        Trigger::Scan { size_kb, .. } => (
            format!("Scanned document (job {})", input.id),
            format!(
                "A document was scanned on {host} and is attached.\n\nPages: 1\nSize: {size_kb} KB\n"
            ),
            Some(Attachment {
                filename: format!("scan{:05}.bin", input.id),
                content_type: "application/octet-stream".into(),
                bytes: mime::scan_bytes(*size_kb),
            }),
        ),
        Trigger::Alert(kind) => (
            format!("[{host}] Alert: {kind}"),
            format!(
                "The device {host} reports: {kind}\n.\nThis line follows a line holding a single dot.\n"
            ),
            None,
        ),
        Trigger::Counter => (
            format!("[{host}] Total counter"),
            format!(
                "Total counter report for {host}\n\n.total: 12345\n..color: 2345\n...mono: 10000\n"
            ),
            None,
        ),
    };
    Mail {
        from,
        to,
        subject,
        date,
        message_id,
        text,
        attachment,
    }
}

/// Runs one job to its end.
pub async fn run(input: JobInput, opts: &Options) -> JobResult {
    // Unit tests of the job worker make a job panic with this alert kind.
    #[cfg(test)]
    if matches!(input.trigger, Trigger::Alert("test: panic")) {
        panic!("a planted panic (test)");
    }
    let plan = match plan(&input, opts) {
        Ok(p) => p,
        Err(e) => {
            return JobResult {
                error: Some(e),
                recipients: Vec::new(),
            }
        }
    };
    let server = input.settings.text(Key::SmtpServer).to_string();
    // Every name the job connects to is resolved alike: `--resolve`, then `net.dns`.
    let names = Names {
        fixed: opts.resolve.clone(),
        dns: input.settings.dns_servers(),
        dns_port: opts.dns_port,
        timeout: plan.timeout,
    };
    // SPEC §3.6: POP before SMTP first; a POP failure makes no SMTP connection.
    if let Some((target, wait)) = plan.pop {
        if let Err(Outcome::Failed { class, detail }) =
            net::pop_before_smtp(target, plan.timeout, &names).await
        {
            return JobResult {
                error: Some(JobError::new(class, detail)),
                recipients: Vec::new(),
            };
        }
        tokio::time::sleep(wait).await;
    }
    let total = plan.messages.len();
    let mut recipients = Vec::new();
    // One connection per message (SPEC §4 lets fragments share one: a quirk).
    let sessions: Vec<Vec<Vec<u8>>> = if opts.quirks.fragments_one_connection {
        vec![plan.messages]
    } else {
        plan.messages.into_iter().map(|m| vec![m]).collect()
    };
    let mut first = 0;
    for messages in sessions {
        let mut messages = messages.into_iter();
        let Some(message) = messages.next() else {
            continue;
        };
        let envelope = Envelope {
            message,
            then: messages.collect(),
            ..plan.envelope.clone()
        };
        let count = 1 + envelope.then.len();
        let r = net::deliver(
            &server,
            plan.port,
            plan.timeout,
            envelope,
            plan.tls.clone(),
            &names,
        )
        .await;
        if first == 0 {
            recipients = r.recipients;
        }
        let at = first + r.transaction;
        first += count;
        if let Outcome::Failed { class, detail } = r.outcome {
            let detail = if total > 1 {
                format!("fragment {} of {total}: {detail}", at + 1)
            } else {
                detail
            };
            return JobResult {
                error: Some(JobError::new(class, detail)),
                recipients,
            };
        }
    }
    JobResult {
        error: None,
        recipients,
    }
}
