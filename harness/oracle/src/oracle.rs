//! The oracle: what a correct device does for a case, read from SPEC §1–§5. It is a
//! second, independent reading of the contract: it never calls into `mfp_sim`, so a
//! misreading in the simulator cannot agree with itself.
//!
//! It walks the session the way SPEC §3 orders it — input rules, switches, addresses,
//! load reduction, POP before SMTP, connect, TLS and the certificate checks, greeting
//! and EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, QUIT — against the case's server (its
//! listener, certificate, extensions, policies, accounts and scripted faults), and
//! stops at the first step that fails. Firmware variants the profile declares are
//! followed, and reported as findings when they are security risks.
//!
//! Where SPEC is silent, the choices are written down in `docs/oracle.md`.

use serde::Serialize;

use crate::model::{
    self, Case, Check, DeviceFacts, Key, SettingView, Target, TriggerSpec, UserSpec,
};
use hil_mail::faults::Action;
use hil_mail::sasl::Mechanism;
use hil_mail::smtp::{ListenerKind, SmtpConfig, Step};

/// A delivery a correct device makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The MAIL FROM address (SPEC §3.8).
    pub mail_from: String,
    /// The header From (SPEC §2).
    pub header_from: String,
    /// Every recipient the job names: the To header.
    pub to: Vec<String>,
    /// Recipients the server accepted: the RCPT TOs that stick.
    pub accepted: Vec<String>,
    /// Recipients the server refused; the device reports each.
    pub refused: Vec<String>,
    /// EHLO, or HELO after a 500–504 to EHLO.
    pub greeted_with: &'static str,
    /// Whether MAIL FROM carries `SIZE=` (the server advertised SIZE in EHLO).
    pub size_param: bool,
    /// The scan attachment's size in KB, for a scan sent with its attachment.
    pub attachment_kb: Option<u32>,
    /// `none`, `smtps` or `starttls`: how the session was protected.
    pub tls: &'static str,
    /// The AUTH mechanism used (SASL name), if any.
    pub auth: Option<&'static str>,
    /// Sent as `message/partial` fragments, each its own transaction, each at most
    /// this many bytes.
    pub fragmented: Option<u64>,
    /// Sent with a download URL instead of the scan attachment (SPEC §4): the scan's
    /// size in KB, which the URL must serve.
    pub url: Option<u32>,
}

/// The outcome a correct device produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Expected {
    /// The settings are refused (SPEC §1 input rules) with `config`, naming `key`;
    /// nothing is stored.
    SettingsRefused {
        key: Key,
    },
    /// The trigger is refused at once (a scan with its switch off).
    Refused {
        class: &'static str,
    },
    /// The job fails with `class`; `connects` says whether an SMTP connection is made,
    /// `stored` whether the server got the message before the failure.
    /// `detail` is text the device's error detail must contain (the server's code);
    /// `wait_ms` how long (device ms) the device waits before failing (a timeout).
    Failed {
        class: &'static str,
        connects: bool,
        stored: bool,
        detail: Option<String>,
        wait_ms: Option<u64>,
    },
    Delivered(Delivery),
}

/// What POP before SMTP must look like (SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PopExpect {
    /// `none`, `pop3s` or `stls`.
    pub tls: &'static str,
    /// `USER` or `APOP`.
    pub method: &'static str,
    /// Whether the login succeeds.
    pub login_ok: bool,
    /// Whether the device gets as far as sending its login (USER or APOP): not
    /// when a fault of the POP server ends the session first.
    pub reaches_login: bool,
    /// Whether TLS is up when the session ends (`pop3s` and `stls` whose handshake
    /// the server lets finish); `None` when a certificate check ends it (whether
    /// the handshake completed first is the firmware's business).
    pub tls_up: Option<bool>,
    /// Device ms between the POP session's end and the SMTP connection.
    pub wait_ms: u64,
}

/// The oracle's whole answer: the outcome, the POP session before it, and the
/// security findings the device's (declared) behaviour shows. Where SPEC lets the
/// firmware choose (a *latitude*, docs/oracle.md) and the choice changes what
/// happens, `outcome` follows the first choice, named in `choices`, and each other
/// allowed outcome is an [`Alternative`]: a device conforms if it does any of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    pub outcome: Expected,
    pub pop: Option<PopExpect>,
    pub findings: Vec<String>,
    /// The latitude choices `outcome` follows (empty when no latitude matters).
    pub choices: Vec<Choice>,
    /// The other outcomes SPEC allows.
    pub alternatives: Vec<Alternative>,
    /// How far a correct device gets into what the server was scripted to do: what
    /// tells a case whose fault fires from one that never meets it.
    pub reach: Reach,
}

/// What of the server's script the session meets (for the first choice at each
/// latitude).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// A scripted fault's step and occurrence was reached, or a policy of the server
    /// (recipient rules, AUTH required, a size limit, a POP window, bare LF refusal)
    /// was applied to what the device sent.
    pub scripted: bool,
    /// The device got the server's answer to EHLO (or HELO): its extensions and AUTH
    /// offers were seen.
    pub greeted: bool,
    /// A scripted fault of the POP3 server was reached, or its APOP refusal met.
    pub pop_scripted: bool,
    /// The device tried to connect to the case's target (a closed or silent port).
    pub target: bool,
}

/// A choice SPEC leaves to the firmware: which latitude, and what the device did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub latitude: &'static str,
    pub chose: &'static str,
}

impl std::fmt::Display for Choice {
    /// `expired intermediate: refused under expiry`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.latitude, self.chose)
    }
}

/// Another outcome SPEC allows for a case, and the choices that lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alternative {
    pub choices: Vec<Choice>,
    pub outcome: Expected,
    pub pop: Option<PopExpect>,
}

/// The latitudes the walk follows (SPEC §3.5 expiry); each `false` is the first
/// choice. Listed, with their words, in [`LATITUDES`].
#[derive(Debug, Clone, Copy, Default)]
struct Latitude {
    /// An expired intermediate in the presented chain fails the expiry check.
    expired_intermediate_fails: bool,
}

/// A latitude of the walk: its name, the words for its two choices, and how to take
/// the second.
type LatitudePoint = (&'static str, [&'static str; 2], fn(&mut Latitude));

/// Each latitude of the walk.
const LATITUDES: &[LatitudePoint] = &[(
    "expired intermediate",
    ["ignored by the expiry check", "refused under expiry"],
    |l| l.expired_intermediate_fails = true,
)];

fn fail(class: &'static str, connects: bool) -> Expected {
    Expected::Failed {
        class,
        connects,
        stored: false,
        detail: None,
        wait_ms: None,
    }
}

/// How a step fails the job.
struct Failure {
    class: &'static str,
    /// The reply code the device must report.
    code: Option<u16>,
    /// The device gives up after its timeout.
    waits: bool,
}

/// What a fault does to a device waiting for a reply whose success class is
/// `ok_class`, with `timeout_ms` of patience: `None` when the step goes on.
fn fault_effect(f: &Action, ok_class: u16, timeout_ms: u64) -> Option<Failure> {
    let by_code = |code: u16| {
        if code / 100 == ok_class && code != 421 {
            None
        } else {
            Some(Failure {
                class: "rejected",
                code: Some(code),
                waits: false,
            })
        }
    };
    let plain = |class, waits| {
        Some(Failure {
            class,
            code: None,
            waits,
        })
    };
    match f {
        Action::Hang | Action::HalfLine => plain("timeout", true),
        Action::Drop | Action::AbortTls => plain("connect", false),
        Action::Delay { ms } if *ms >= timeout_ms => plain("timeout", true),
        Action::Delay { .. } | Action::Throttle { .. } => None,
        Action::Garbage => plain("rejected", false),
        Action::Reply { code, .. } => by_code(*code),
        // A raw line is a reply if it starts with a code; anything else is not SMTP.
        Action::Line { text } => match text.get(..3).and_then(|c| c.parse::<u16>().ok()) {
            Some(code) => by_code(code),
            None => plain("rejected", false),
        },
    }
}

/// The encoded size of `n` attachment bytes: base64 in 76-character lines.
fn base64_size(n: u64) -> u64 {
    let b64 = n.div_ceil(3) * 4;
    b64 + 2 * b64.div_ceil(76)
}

/// Bounds of a message's size in bytes: its attachment is exact, the device's own
/// headers and text are not (a real device's texts are unknown): 200 B to 4 KiB plus
/// the addresses.
fn size_bounds(attachment: Option<u64>, addresses: usize) -> (u64, u64) {
    let body = attachment.map(base64_size).unwrap_or(0);
    (body + 200, body + 4096 + addresses as u64)
}

/// Why the oracle cannot predict a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unpredictable {
    /// The message's size is known only within bounds (the device's own headers and
    /// text are not), and they straddle a limit.
    #[error("the message ({low}..{high} bytes) is too close to {what} ({limit} bytes) to predict")]
    TooCloseToLimit {
        low: u64,
        high: u64,
        what: &'static str,
        limit: u64,
    },
}

/// Is a message of `bounds` over `limit` bytes? `Err` when the bounds straddle it.
fn over(bounds: (u64, u64), limit: u64, what: &'static str) -> Result<bool, Unpredictable> {
    if bounds.0 > limit {
        Ok(true)
    } else if bounds.1 <= limit {
        Ok(false)
    } else {
        Err(Unpredictable::TooCloseToLimit {
            low: bounds.0,
            high: bounds.1,
            what,
            limit,
        })
    }
}

/// Why the walk through the session stops before a delivery: the job ends with an
/// outcome, or the oracle cannot tell what happens.
enum Stop {
    /// Boxed: an outcome is large, and most steps go on.
    Ends(Box<Expected>),
    Unpredictable(Unpredictable),
}

impl From<Expected> for Stop {
    fn from(e: Expected) -> Stop {
        Stop::Ends(Box::new(e))
    }
}

impl From<Unpredictable> for Stop {
    fn from(u: Unpredictable) -> Stop {
        Stop::Unpredictable(u)
    }
}

/// A step of the walk: it goes on with a `T`, or stops.
type Walked<T> = Result<T, Stop>;

impl Stop {
    /// The outcome the walk stopped at, or why there is none.
    fn outcome(self) -> Result<Expected, Unpredictable> {
        match self {
            Stop::Ends(e) => Ok(*e),
            Stop::Unpredictable(u) => Err(u),
        }
    }
}

/// The credentials the server's accounts accept, SPEC §3.7.
struct Creds {
    user: String,
    password: String,
    token: String,
    realm: String,
}

/// Everything the walk needs besides the server.
struct Walk<'a> {
    cfg: &'a SmtpConfig,
    s: &'a SettingView,
    case: &'a Case,
    facts: &'a DeviceFacts,
    timeout_ms: u64,
    findings: Vec<String>,
    latitude: Latitude,
    /// What of the server's script the walk has met so far.
    reach: std::cell::Cell<Reach>,
}

impl Walk<'_> {
    fn variant(&self, v: &str) -> bool {
        self.facts.variants.iter().any(|x| x == v)
    }

    /// Whether the firmware lacks a feature of [`model::FEATURES`].
    fn lacks(&self, f: &str) -> bool {
        self.facts.unsupported.iter().any(|u| u == f)
    }

    fn at(&self, step: Step, n: u32) -> Option<&Action> {
        let f = self.cfg.fault_at(step, n);
        if f.is_some() {
            self.met();
        }
        f
    }

    /// The walk met a scripted fault or a policy of the server.
    fn met(&self) {
        let mut r = self.reach.get();
        r.scripted = true;
        self.reach.set(r);
    }

    /// A failure as an expected outcome; a 530 with AUTH off is `auth_required`.
    fn failed(&self, x: Failure) -> Expected {
        let class = if x.code == Some(530) && !self.s.on(Key::SmtpAuthEnabled) {
            "auth_required"
        } else {
            x.class
        };
        Expected::Failed {
            class,
            connects: true,
            stored: false,
            detail: x.code.map(|c| c.to_string()),
            wait_ms: x.waits.then_some(self.timeout_ms),
        }
    }

    fn step(&self, step: Step, n: u32, ok_class: u16) -> Option<Expected> {
        self.at(step, n)
            .and_then(|f| fault_effect(f, ok_class, self.timeout_ms))
            .map(|x| self.failed(x))
    }

    /// The `n`th `step` with the server's scripted faults: it goes on, or the job
    /// ends (`ok_class` is the reply class that lets it go on).
    fn pass(&self, step: Step, n: u32, ok_class: u16) -> Walked<()> {
        match self.step(step, n, ok_class) {
            Some(x) => Err(x.into()),
            None => Ok(()),
        }
    }

    fn class_only(&self, class: &'static str) -> Expected {
        fail(class, true)
    }

    /// The device gives up waiting after its timeout.
    fn timeout(&self) -> Expected {
        Expected::Failed {
            class: "timeout",
            connects: true,
            stored: false,
            detail: None,
            wait_ms: Some(self.timeout_ms),
        }
    }
}

/// The expected outcome of `case` when the device holds `settings` (no variants).
pub fn expect(case: &Case, settings: &SettingView) -> Expected {
    match predict(case, settings, &DeviceFacts::default()) {
        Ok(p) => p.outcome,
        Err(_) => fail("config", false),
    }
}

/// The oracle's answer for `case` with the settings the harness applies (`pairs`,
/// in order), for a device with `facts` (from its profile: the variants it follows,
/// its ranges, its AUTH mechanisms and default). `Err` when the case cannot be
/// predicted (a message size too close to a limit).
pub fn predict_pairs(
    case: &Case,
    pairs: &[(Key, String)],
    facts: &DeviceFacts,
) -> Result<Prediction, Unpredictable> {
    // SPEC §1: a value outside its rule refuses the whole apply.
    for (k, v) in pairs {
        if model::validate_for(facts, *k, v).is_err() {
            return Ok(Prediction::only(
                Expected::SettingsRefused { key: *k },
                None,
            ));
        }
    }
    predict(case, &SettingView::from_pairs_for(facts, pairs), facts)
}

/// The expected outcome of `case` when the device holds `settings`, following the
/// firmware's facts its profile declares (its variants, what it lacks): what is
/// decided before any connection (SPEC §2, §4), POP before SMTP (§3.6), then the
/// SMTP session (§3).
pub fn predict(
    case: &Case,
    settings: &SettingView,
    facts: &DeviceFacts,
) -> Result<Prediction, Unpredictable> {
    let mut first = predict_with(case, settings, facts, Latitude::default())?;
    // Each latitude's other choice: an alternative when it changes the outcome.
    for (name, words, take) in LATITUDES {
        let mut lat = Latitude::default();
        take(&mut lat);
        let other = predict_with(case, settings, facts, lat)?;
        if other.outcome != first.outcome || other.pop != first.pop {
            first.choices.push(Choice {
                latitude: name,
                chose: words[0],
            });
            first.alternatives.push(Alternative {
                choices: vec![Choice {
                    latitude: name,
                    chose: words[1],
                }],
                outcome: other.outcome,
                pop: other.pop,
            });
        }
    }
    Ok(first)
}

impl Prediction {
    /// An outcome with no latitude and no findings.
    fn only(outcome: Expected, pop: Option<PopExpect>) -> Prediction {
        Prediction {
            outcome,
            pop,
            findings: Vec::new(),
            choices: Vec::new(),
            alternatives: Vec::new(),
            reach: Reach::default(),
        }
    }
}

/// [`predict`] for one choice at each latitude.
fn predict_with(
    case: &Case,
    settings: &SettingView,
    facts: &DeviceFacts,
    latitude: Latitude,
) -> Result<Prediction, Unpredictable> {
    let s = settings;
    let ends = |outcome, pop| Ok(Prediction::only(outcome, pop));
    let plan = match plan(case, s) {
        Ok(p) => p,
        Err(stop) => return ends(stop.outcome()?, None),
    };
    // SPEC §3.6: POP before SMTP, before any SMTP connection.
    let pop = match pop_expect(s) {
        Ok(p) => p,
        Err(stop) => return ends(stop.outcome()?, None),
    };
    let mut w = Walk {
        cfg: &case.server,
        s,
        case,
        facts,
        timeout_ms: s.get(Key::SmtpTimeout).parse::<u64>().unwrap_or(60) * 1000,
        findings: Vec::new(),
        latitude,
        reach: std::cell::Cell::new(Reach::default()),
    };
    let mut pop = pop;
    let mut pop_met = false;
    if let Some(p) = pop.as_mut() {
        // The POP3 server presents the case's certificate (the zoo's valid one,
        // which passes every check, for a case without one).
        let pop_cert = || cert_failure_for(&w, case.cert.as_ref(), s.get(Key::PopServer));
        let (failure, met) = pop_session(&case.pop, s, p, w.timeout_ms, pop_cert);
        pop_met = met;
        if let Some(f) = failure {
            let mut out = Prediction::only(f, pop);
            out.reach.pop_scripted = pop_met;
            return Ok(out);
        }
    }
    if case.target == Target::ClosedPort {
        let mut out = Prediction::only(fail("connect", true), pop);
        out.reach.pop_scripted = pop_met;
        out.reach.target = true;
        return Ok(out);
    }
    if case.target == Target::SilentPort {
        // SPEC §3.2: smtp.timeout bounds the TCP connect; the server never sees it.
        let timeout_ms = s.get(Key::SmtpTimeout).parse::<u64>().unwrap_or(60) * 1000;
        let timeout = Expected::Failed {
            class: "timeout",
            connects: false,
            stored: false,
            detail: None,
            wait_ms: Some(timeout_ms),
        };
        let mut out = Prediction::only(timeout, pop);
        out.reach.pop_scripted = pop_met;
        out.reach.target = true;
        return Ok(out);
    }
    let pop_login_in_window = pop.as_ref().is_some_and(|p| {
        case.server
            .policy
            .pop_before_smtp_window_s
            .is_some_and(|win| p.wait_ms <= win * 1000)
    });
    let outcome =
        session(&mut w, plan.msg, &plan.creds, pop_login_in_window).or_else(Stop::outcome)?;
    Ok(Prediction {
        findings: w.findings,
        reach: Reach {
            pop_scripted: pop_met,
            ..w.reach.get()
        },
        ..Prediction::only(outcome, pop)
    })
}

/// What the job sends.
struct Message {
    mail_from: String,
    header_from: String,
    to: Vec<String>,
    attachment_kb: Option<u32>,
    size: (u64, u64),
    fragmented: Option<u64>,
    url: Option<u32>,
}

/// What is decided before any connection: the message and the credentials.
struct Plan {
    msg: Message,
    creds: Creds,
}

/// The job's addresses (SPEC §2, §3.8).
struct Addresses<'a> {
    to: Vec<String>,
    /// The job's user, for a scan as a known user.
    user: Option<&'a UserSpec>,
    header_from: String,
    mail_from: String,
    /// The job user's credentials are used for AUTH.
    device_user: bool,
}

/// Everything decided before a connection: the switches, the addresses, what load
/// reduction makes of the message, and the credentials.
fn plan(case: &Case, s: &SettingView) -> Walked<Plan> {
    switches(case, s)?;
    let a = addresses(case, s)?;
    let creds = credentials(s, &a);
    let msg = load_reduction(case, s, a)?;
    Ok(Plan { msg, creds })
}

/// SPEC §2: a scan as a user the device knows, the master switch and the switch of
/// the mail kind.
fn switches(case: &Case, s: &SettingView) -> Walked<()> {
    let (switch, is_scan) = match &case.trigger {
        TriggerSpec::Scan { .. } => (Key::EmailScan, true),
        TriggerSpec::Alert(_) => (Key::EmailNotify, false),
        TriggerSpec::Counter => (Key::EmailCounter, false),
    };
    // A scan as a user the device does not know cannot start (docs/oracle.md).
    if let TriggerSpec::Scan { user: Some(u), .. } = &case.trigger {
        if !case.users.iter().any(|x| &x.name == u) {
            return Err(Expected::Refused { class: "config" }.into());
        }
    }
    if !s.on(Key::EmailEnabled) || !s.on(switch) {
        return Err(if is_scan {
            Expected::Refused { class: "disabled" }
        } else {
            fail("disabled", false)
        }
        .into());
    }
    Ok(())
}

/// SPEC §2 and §3.8: the recipients, the server, the header From and the envelope
/// sender; any of them missing fails the job with `config` before a connection.
fn addresses<'a>(case: &'a Case, s: &SettingView) -> Walked<Addresses<'a>> {
    // SPEC §2: alerts and counters go to the notification addresses.
    let to: Vec<String> = match &case.trigger {
        TriggerSpec::Scan { to, .. } => to.clone(),
        _ => case.notify.clone(),
    };
    if to.is_empty() || s.get(Key::SmtpServer).is_empty() {
        return Err(fail("config", false).into());
    }
    // SPEC §2: the header From.
    let user = match &case.trigger {
        TriggerSpec::Scan { user: Some(u), .. } => case.users.iter().find(|x| &x.name == u),
        _ => None,
    };
    let header_from = match user {
        Some(u) if !u.address.is_empty() => u.address.clone(),
        _ => s.get(Key::DeviceAddress).to_string(),
    };
    if header_from.is_empty() {
        return Err(fail("config", false).into());
    }
    // SPEC §3.8: the envelope sender.
    let device_user = s.on(Key::SmtpAuthEnabled) && s.get(Key::SmtpAuthSource) == "device_user";
    let mut mail_from = if s.get(Key::EnvelopeFromMode) == "specified" {
        s.get(Key::EnvelopeFromAddress).to_string()
    } else {
        s.get(Key::AdminAddress).to_string()
    };
    if device_user {
        if let Some(u) = user.filter(|u| !u.address.is_empty()) {
            mail_from = u.address.clone();
        }
    }
    if mail_from.is_empty() {
        return Err(fail("config", false).into());
    }
    Ok(Addresses {
        to,
        user,
        header_from,
        mail_from,
        device_user,
    })
}

/// SPEC §3.7: the configured credentials, or the job user's with `device_user`.
fn credentials(s: &SettingView, a: &Addresses) -> Creds {
    let configured = Creds {
        user: s.get(Key::SmtpAuthUser).to_string(),
        password: s.get(Key::SmtpAuthPassword).to_string(),
        token: s.get(Key::SmtpAuthToken).to_string(),
        realm: s.get(Key::SmtpAuthRealm).to_string(),
    };
    match a.user {
        Some(u) if a.device_user => Creds {
            user: u.name.clone(),
            password: u.password.clone(),
            ..configured
        },
        _ => configured,
    }
}

/// SPEC §4: what load reduction decides before any connection — sent whole, in
/// fragments, with a URL instead of the attachment, or not at all.
fn load_reduction(case: &Case, s: &SettingView, a: Addresses) -> Walked<Message> {
    let kb = |k: Key| s.get(k).parse::<u64>().unwrap_or(0) * 1024;
    let addresses = a.header_from.len() + a.to.iter().map(String::len).sum::<usize>();
    let scan_kb = match &case.trigger {
        TriggerSpec::Scan { size_kb, .. } => Some(*size_kb),
        _ => None,
    };
    let whole = size_bounds(scan_kb.map(|k| k as u64 * 1024), addresses);
    let limited = s.get(Key::LoadMaxSize) == "limited";
    let over_capacity = || {
        over(
            whole,
            kb(Key::LoadServerCapacity),
            Key::LoadServerCapacity.as_str(),
        )
    };
    let mode = s.get(Key::LoadMode);
    let mut url = false;
    match mode {
        "abort_over_limit" if limited && over_capacity()? => {
            return Err(fail("size_over_limit", false).into());
        }
        "url_over_limit" if limited && over_capacity()? => url = scan_kb.is_some(),
        "url_always" => url = scan_kb.is_some(),
        _ => {}
    }
    let sent = if url {
        size_bounds(None, addresses + 200)
    } else {
        whole
    };
    let split = kb(Key::LoadSplitSize);
    let fragmented =
        (mode == "split" && over(sent, split, Key::LoadSplitSize.as_str())?).then_some(split);
    Ok(Message {
        mail_from: a.mail_from,
        header_from: a.header_from,
        to: a.to,
        attachment_kb: if url { None } else { scan_kb },
        size: sent,
        fragmented,
        url: if url { scan_kb } else { None },
    })
}

/// SPEC §3.6: what POP before SMTP must look like, when it is on; `Err` (`config`)
/// without a POP server.
fn pop_expect(s: &SettingView) -> Walked<Option<PopExpect>> {
    if !s.on(Key::PopBeforeSmtpEnabled) {
        return Ok(None);
    }
    if s.get(Key::PopServer).is_empty() {
        return Err(fail("config", false).into());
    }
    let login_ok =
        s.get(Key::PopUser) == model::POP_USER && s.get(Key::PopPassword) == model::POP_PASSWORD;
    let tls = s.get(Key::PopTls);
    Ok(Some(PopExpect {
        reaches_login: true,
        tls_up: Some(tls == "pop3s" || tls == "stls"),
        tls: match s.get(Key::PopTls) {
            "pop3s" => "pop3s",
            "stls" => "stls",
            _ => "none",
        },
        method: if s.on(Key::PopApop) { "APOP" } else { "USER" },
        login_ok,
        wait_ms: s.get(Key::PopBeforeSmtpWait).parse::<u64>().unwrap_or(5) * 1000,
    }))
}

/// SPEC §3.6 against the case's POP3 server, step by step as the device meets them
/// (connect, TLS for pop3s, greeting, STLS and TLS for stls, the login): the
/// failure its scripted faults or its APOP refusal make, if any, and whether any
/// was met. Updates `p` (login reached, TLS up, login accepted). Classes
/// (docs/oracle.md, "POP before SMTP"): no answer within `smtp.timeout` is
/// `timeout`; a hang-up `connect`; a cut handshake or a refused STLS
/// `tls_handshake`; a `-ERR` or a line that is not POP3 `pop_auth`.
fn pop_session(
    cfg: &hil_mail::pop3::Pop3Config,
    s: &SettingView,
    p: &mut PopExpect,
    timeout_ms: u64,
    cert_check: impl Fn() -> Option<&'static str>,
) -> (Option<Expected>, bool) {
    use hil_mail::pop3::Pop3Step as P;
    let at = |step: P| {
        cfg.faults
            .iter()
            .filter(|f| f.when.probability.is_none())
            .find(|f| f.step == step && f.when.nth.is_none_or(|k| k == 1))
            .map(|f| &f.action)
    };
    let mut steps = vec![P::Connect];
    if p.tls == "pop3s" {
        steps.push(P::TlsHandshake);
    }
    steps.push(P::Greeting);
    if p.tls == "stls" {
        steps.extend([P::Stls, P::TlsHandshake]);
    }
    let login = if p.method == "APOP" {
        vec![P::Apop]
    } else {
        vec![P::User, P::Pass]
    };
    steps.extend(login.iter().copied());
    let fails = |class: &'static str, waits: bool| Expected::Failed {
        class,
        connects: false,
        stored: false,
        detail: None,
        wait_ms: waits.then_some(timeout_ms),
    };
    let mut met = false;
    let mut tls_now = false;
    for step in steps {
        if let Some(a) = at(step) {
            met = true;
            let class = match a {
                Action::Hang | Action::HalfLine => Some(("timeout", true)),
                Action::Delay { ms } if *ms >= timeout_ms => Some(("timeout", true)),
                Action::Delay { .. } | Action::Throttle { .. } => None,
                Action::Drop if step == P::TlsHandshake => Some(("tls_handshake", false)),
                Action::Drop => Some(("connect", false)),
                Action::AbortTls => Some(("tls_handshake", false)),
                Action::Line { text } if text.starts_with("+OK") => None,
                Action::Line { text } if text.starts_with("-ERR") && step == P::Stls => {
                    Some(("tls_handshake", false))
                }
                Action::Line { .. } | Action::Reply { .. } | Action::Garbage => {
                    Some(("pop_auth", false))
                }
            };
            if let Some((class, waits)) = class {
                p.reaches_login = login.contains(&step);
                p.tls_up = Some(tls_now);
                p.login_ok = false;
                return (Some(fails(class, waits)), met);
            }
        }
        if step == P::TlsHandshake {
            // SPEC §3.5: the same checks on the POP server's certificate.
            if let Some(class) = cert_check() {
                p.reaches_login = false;
                p.tls_up = None;
                p.login_ok = false;
                return (Some(fails(class, false)), met);
            }
            tls_now = true;
        }
    }
    // APOP needs the greeting's timestamp, and a server that takes it.
    if p.method == "APOP" && (!cfg.apop || cfg.refuse_apop) {
        // Without a timestamp in the greeting the device cannot even send APOP:
        // it stops there, before any STLS.
        p.reaches_login = cfg.apop;
        if !cfg.apop {
            p.tls_up = Some(p.tls == "pop3s");
        }
        p.login_ok = false;
        return (Some(fails("pop_auth", false)), true);
    }
    let account_ok = cfg
        .accounts
        .iter()
        .any(|a| a.user == s.get(Key::PopUser) && a.password == s.get(Key::PopPassword));
    if !account_ok {
        p.login_ok = false;
        return (Some(fails("pop_auth", false)), met);
    }
    (None, met)
}

/// The TLS handshake with the case's certificate: the first failing check, in SPEC
/// §3.5's order (docs/oracle.md), or `None` when it passes.
fn cert_failure(w: &Walk) -> Option<&'static str> {
    cert_failure_for(w, w.case.cert.as_ref(), w.s.get(Key::SmtpServer))
}

/// [`cert_failure`] for any server's certificate (the POP server's too, SPEC §3.5),
/// checked against `server` as the device was told it.
fn cert_failure_for(
    w: &Walk,
    cert: Option<&model::CertFacts>,
    server: &str,
) -> Option<&'static str> {
    let cert = cert?;
    for &check in Check::ALL {
        if !w.s.on(check.flag()) {
            continue;
        }
        let verdict = if check == Check::Cn && w.variant("cn-only") {
            if model::name_matches(cert, server, true) {
                "accept".to_string()
            } else {
                "cert_name".to_string()
            }
        } else if check == Check::Revocation && (w.lacks("ocsp") || w.lacks("crl")) {
            model::revocation_by(cert, !w.lacks("ocsp"), !w.lacks("crl")).to_string()
        } else if check == Check::Expiry
            && w.latitude.expired_intermediate_fails
            && cert.issuer_expired()
        {
            "cert_expired".to_string()
        } else {
            model::cert_check(cert, check, server)
        };
        if verdict == "cert_revocation_unknown" && w.variant("soft-fail-revocation") {
            continue;
        }
        if verdict != "accept" {
            return Some(match verdict.as_str() {
                "cert_expired" => "cert_expired",
                "cert_name" => "cert_name",
                "cert_key_usage" => "cert_key_usage",
                "cert_chain" => "cert_chain",
                "cert_revoked" => "cert_revoked",
                "cert_revocation_unknown" => "cert_revocation_unknown",
                _ => "tls_handshake",
            });
        }
    }
    None
}

/// The device's TLS mode: `none`, `smtps` or `starttls`.
fn tls_mode(s: &SettingView) -> &'static str {
    match s.get(Key::SmtpTls) {
        "smtps" => "smtps",
        "starttls" => "starttls",
        _ => "none",
    }
}

/// The SMTP session (SPEC §3 steps 1–5, 7–10) against the case's server, step by
/// step; each step goes on or ends the job.
fn session(
    w: &mut Walk,
    msg: Message,
    creds: &Creds,
    pop_login_in_window: bool,
) -> Walked<Expected> {
    let mode = tls_mode(w.s);
    let mut in_tls = connect(w, mode)?;
    let greeting = greet(w)?;
    if mode == "starttls" {
        in_tls = starttls(w, greeting.offers_ext)?;
    }
    let extensions: &[String] = if greeting.offers_ext {
        &w.cfg.extensions
    } else {
        &[]
    };
    let size_param = extensions.iter().any(|e| {
        e.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("SIZE"))
    });
    let authenticated = if w.s.on(Key::SmtpAuthEnabled) {
        authenticate(w, in_tls, greeting.offers_ext, creds)?
    } else {
        None
    };
    mail_from(w, &msg, size_param, authenticated)?;
    let (accepted, refused) = rcpt_to(w, &msg, authenticated, pop_login_in_window)?;
    data(w, &msg, size_param)?;
    Ok(Expected::Delivered(Delivery {
        mail_from: msg.mail_from,
        header_from: msg.header_from,
        to: msg.to,
        accepted,
        refused,
        greeted_with: greeting.with,
        size_param,
        attachment_kb: msg.attachment_kb,
        tls: if in_tls { mode } else { "none" },
        auth: authenticated,
        fragmented: msg.fragmented,
        url: msg.url,
    }))
}

/// Step 1: connect; implicit TLS at once with smtps (the handshake and the
/// certificate checks, step 5). Answers whether the session is now in TLS.
fn connect(w: &Walk, mode: &str) -> Walked<bool> {
    let kind = w.case.listener;
    let t = w.timeout_ms;
    if mode != "smtps" {
        // A scripted answer at connect comes before any TLS, in plaintext.
        w.pass(Step::Connect, 1, 2)?;
        if kind == ListenerKind::Tls {
            // The server waits for a ClientHello, the device for a greeting.
            return Err(w.timeout().into());
        }
        return Ok(false);
    }
    if kind != ListenerKind::Tls {
        // The server's plaintext greeting is not a TLS handshake; a server that
        // says nothing leaves the device waiting.
        let silent = match w.at(Step::Connect, 1).or(w.at(Step::Greeting, 1)) {
            Some(Action::Hang) => true,
            Some(Action::Delay { ms }) => *ms >= t,
            _ => false,
        };
        return Err(if silent {
            w.timeout()
        } else {
            w.class_only("tls_handshake")
        }
        .into());
    }
    match w.at(Step::Connect, 1) {
        Some(Action::Hang) => return Err(w.timeout().into()),
        Some(Action::Delay { ms }) if *ms >= t => return Err(w.timeout().into()),
        Some(Action::Delay { .. }) | None => {}
        Some(_) => return Err(w.class_only("tls_handshake").into()),
    }
    handshake(w)?;
    Ok(true)
}

/// Step 5: the TLS handshake (cut off or not) and the certificate checks.
fn handshake(w: &Walk) -> Walked<()> {
    match w.at(Step::TlsHandshake, 1) {
        Some(Action::AbortTls | Action::Drop) => {
            return Err(w.class_only("tls_handshake").into());
        }
        // SPEC §3.2: smtp.timeout bounds the TLS handshake too.
        Some(Action::Hang | Action::HalfLine) => return Err(w.timeout().into()),
        Some(Action::Delay { ms }) if *ms >= w.timeout_ms => return Err(w.timeout().into()),
        _ => {}
    }
    if let Some(c) = cert_failure(w) {
        return Err(w.class_only(c).into());
    }
    Ok(())
}

/// How the server was greeted.
struct Greeting {
    /// EHLO, or HELO after a 500–504 to EHLO.
    with: &'static str,
    /// Extensions are offered (not after HELO).
    offers_ext: bool,
}

/// Step 3: the greeting, EHLO (HELO after 500–504).
fn greet(w: &Walk) -> Walked<Greeting> {
    w.pass(Step::Greeting, 1, 2)?;
    match w.at(Step::Ehlo, 1) {
        Some(Action::Reply { code, .. }) if (500..=504).contains(code) => {
            w.pass(Step::Helo, 1, 2)?;
            w.reach.set(Reach {
                greeted: true,
                ..w.reach.get()
            });
            Ok(Greeting {
                with: "HELO",
                offers_ext: false,
            })
        }
        _ => {
            w.pass(Step::Ehlo, 1, 2)?;
            w.reach.set(Reach {
                greeted: true,
                ..w.reach.get()
            });
            Ok(Greeting {
                with: "EHLO",
                offers_ext: true,
            })
        }
    }
}

/// Step 4: STARTTLS, the handshake and the second EHLO; a refusal fails the job, or
/// (a variant, a finding) the device goes on in plaintext. Answers whether the
/// session is now in TLS.
fn starttls(w: &mut Walk, offers_ext: bool) -> Walked<bool> {
    let offered = offers_ext && w.case.listener == ListenerKind::Starttls;
    // `Some(code)`: refused (with that reply, or not offered).
    let refusal = if !offered {
        Some(None)
    } else {
        match w.at(Step::Starttls, 1) {
            Some(Action::Reply { code, .. }) if *code != 220 => Some(Some(*code)),
            Some(f) => {
                if let Some(x) = fault_effect(f, 2, w.timeout_ms) {
                    return Err(w.failed(x).into());
                }
                None
            }
            None => None,
        }
    };
    match refusal {
        Some(code) if w.variant("plaintext-after-starttls-failure") => {
            w.findings.push(format!(
                "plaintext downgrade: the STARTTLS step failed ({}) and the device went on without TLS",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "not offered".into())
            ));
            Ok(false)
        }
        Some(code) => Err(Expected::Failed {
            class: "starttls_unavailable",
            connects: true,
            stored: false,
            detail: code.map(|c| c.to_string()),
            wait_ms: None,
        }
        .into()),
        None => {
            handshake(w)?;
            // The EHLO again; only its extensions count.
            w.pass(Step::Ehlo, 2, 2)?;
            Ok(true)
        }
    }
}

/// A failure of an AUTH exchange: a refusal is `auth_failed`.
fn auth_failure(x: Failure) -> Failure {
    Failure {
        class: if x.class == "rejected" {
            "auth_failed"
        } else {
            x.class
        },
        ..x
    }
}

/// Step 7: AUTH with the first mechanism enabled and offered (the server offers its
/// mechanisms in an EHLO, after TLS or before it when it allows). Answers the
/// mechanism used (`None`: the device went on without AUTH, a variant and a finding).
fn authenticate(
    w: &mut Walk,
    in_tls: bool,
    offers_ext: bool,
    creds: &Creds,
) -> Walked<Option<&'static str>> {
    let cfg = w.cfg;
    let offered: Vec<Mechanism> = if offers_ext && (in_tls || cfg.auth_before_tls) {
        cfg.auth.clone()
    } else {
        Vec::new()
    };
    let enabled: Vec<&str> = match w.s.get(Key::SmtpAuthMethods) {
        "none" => Vec::new(),
        v => v.split(',').collect(),
    };
    let Some(mech) = crate::matrix::chosen_mechanism(&enabled, &offered) else {
        if w.variant("send-without-auth") {
            w.findings.push(
                "unauthenticated fallback: no AUTH mechanism in common and the device sent without AUTH".into(),
            );
            return Ok(None);
        }
        return Err(w.class_only("auth_no_mechanism").into());
    };
    let sasl = Mechanism::from_name(mech);
    let name = sasl.map(|m| m.name()).unwrap_or("?");
    auth_exchange(w, sasl, creds)?;
    if !in_tls && matches!(mech, "plain" | "login" | "xoauth2") {
        w.findings.push(format!(
            "credentials over plaintext: AUTH {name} without TLS"
        ));
    }
    Ok(Some(name))
}

/// Step 7's exchange: the AUTH command's answer, then the answer to the credentials
/// (a scripted one, else the server's accounts).
fn auth_exchange(w: &Walk, sasl: Option<Mechanism>, creds: &Creds) -> Walked<()> {
    let t = w.timeout_ms;
    // The AUTH command's own answer (a challenge, or 235 at once). A challenge is
    // base64 (RFC 4954 §4); one that is not cannot be answered: the device cancels
    // the exchange, `auth_failed`.
    if let Some(f) = w.at(Step::Auth, 1) {
        if malformed_challenge(f) {
            return Err(w.class_only("auth_failed").into());
        }
        if let Some(x) = fault_effect(f, 3, t) {
            // A 2xx at once is not a refusal.
            if !matches!(f, Action::Reply { code, .. } if code / 100 == 2) {
                return Err(w.failed(auth_failure(x)).into());
            }
        }
    }
    // A scripted answer to the credentials comes first; else the accounts.
    if let Some(f) = w.at(Step::AuthResult, 1) {
        if let Some(x) = fault_effect(f, 2, t) {
            return Err(w.failed(auth_failure(x)).into());
        }
    } else if !credentials_ok(w.cfg, sasl, creds) {
        return Err(Expected::Failed {
            class: "auth_failed",
            connects: true,
            stored: false,
            detail: Some("535".into()),
            wait_ms: None,
        }
        .into());
    }
    Ok(())
}

/// Whether a scripted answer to AUTH is a 334 challenge whose text is not base64.
fn malformed_challenge(f: &Action) -> bool {
    use base64::Engine;
    let text = match f {
        Action::Reply { code: 334, text } => text.as_str(),
        Action::Line { text } => match text.strip_prefix("334 ") {
            Some(rest) => rest,
            None => return false,
        },
        _ => return false,
    };
    let text = text.trim();
    !text.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_err()
}

/// A refusal with a reply code.
fn rejected(code: Option<u16>) -> Failure {
    Failure {
        class: "rejected",
        code,
        waits: false,
    }
}

/// The longest address the fake server takes in MAIL FROM or RCPT TO (RFC 5321
/// §4.5.3.1.3), though SPEC lets the device hold 320 characters.
const MAX_PATH: usize = 256;

/// Step 8: MAIL FROM — a scripted answer, then the server's policies (AUTH required,
/// its SIZE limit when the device declares the size).
fn mail_from(w: &Walk, msg: &Message, size_param: bool, authenticated: Option<&str>) -> Walked<()> {
    let cfg = w.cfg;
    // The fake server (as Stalwart's parser it uses) refuses a path longer than
    // RFC 5321 §4.5.3.1.3's 256 octets before anything else looks at the command.
    if msg.mail_from.len() > MAX_PATH {
        return Err(w.failed(rejected(Some(500))).into());
    }
    w.pass(Step::Mail, 1, 2)?;
    if cfg.policy.require_auth {
        w.met();
        if authenticated.is_none() {
            return Err(w.failed(rejected(Some(530))).into());
        }
    }
    if let Some(max) = cfg.policy.max_size {
        if size_param && msg.fragmented.is_none() {
            w.met();
        }
        if size_param && msg.fragmented.is_none() && over(msg.size, max, "the server's SIZE limit")?
        {
            return Err(w.failed(rejected(Some(552))).into());
        }
    }
    Ok(())
}

/// Step 9: RCPT TO for each recipient; answers the accepted and the refused ones.
/// None accepted fails the job.
fn rcpt_to(
    w: &Walk,
    msg: &Message,
    authenticated: Option<&str>,
    pop_login_in_window: bool,
) -> Walked<(Vec<String>, Vec<String>)> {
    let cfg = w.cfg;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut first_refusal = None;
    if cfg.policy.pop_before_smtp_window_s.is_some() && authenticated.is_none() {
        w.met();
    }
    let relay_denied = cfg.policy.pop_before_smtp_window_s.is_some()
        && authenticated.is_none()
        && !pop_login_in_window;
    for (i, r) in msg.to.iter().enumerate() {
        match w.at(Step::Rcpt, i as u32 + 1) {
            Some(Action::Reply { code, .. }) if code / 100 != 2 && *code != 421 => {
                refused.push(r.clone());
                first_refusal.get_or_insert(*code);
                continue;
            }
            Some(f) => {
                if let Some(x) = fault_effect(f, 2, w.timeout_ms) {
                    return Err(w.failed(x).into());
                }
            }
            None => {}
        }
        if relay_denied {
            refused.push(r.clone());
            first_refusal.get_or_insert(554);
            continue;
        }
        if cfg.rule_for(r).is_some() {
            w.met();
        }
        match cfg.rule_for(r) {
            Some(rule) if rule.code == 421 => {
                return Err(w.failed(rejected(Some(421))).into());
            }
            Some(rule) if rule.code / 100 != 2 => {
                refused.push(r.clone());
                first_refusal.get_or_insert(rule.code);
            }
            _ => accepted.push(r.clone()),
        }
    }
    if accepted.is_empty() {
        return Err(w.failed(rejected(first_refusal)).into());
    }
    Ok((accepted, refused))
}

/// Step 10: DATA, the end of data (and the server's size limit when the size was not
/// declared), QUIT.
fn data(w: &Walk, msg: &Message, size_param: bool) -> Walked<()> {
    w.pass(Step::Data, 1, 3)?;
    if w.cfg.policy.refuse_bare_lf {
        // The policy looks at every message; a correct device never trips it.
        w.met();
    }
    w.pass(Step::EndOfData, 1, 2)?;
    if let Some(max) = w.cfg.policy.max_size {
        if !size_param && msg.fragmented.is_none() {
            w.met();
        }
        if !size_param
            && msg.fragmented.is_none()
            && over(msg.size, max, "the server's size limit")?
        {
            return Err(w.failed(rejected(Some(552))).into());
        }
    }
    // The message is with the server now: whatever QUIT gets (a refusal, silence,
    // a hang-up) does not undo the delivery (SPEC §3.10). The device still sends
    // QUIT, so a fault there is met.
    let _ = w.at(Step::Quit, 1);
    Ok(())
}

/// Whether the server's accounts take these credentials with this mechanism.
fn credentials_ok(cfg: &SmtpConfig, mech: Option<Mechanism>, c: &Creds) -> bool {
    let Some(mech) = mech else {
        return false;
    };
    cfg.accounts.iter().any(|a| {
        if a.user != c.user {
            return false;
        }
        match mech {
            Mechanism::Xoauth2 => a.token.as_deref() == Some(c.token.as_str()),
            Mechanism::DigestMd5 => {
                // SPEC §3.7: the configured realm, else the (first) offered one.
                let realm = if !c.realm.is_empty() {
                    c.realm.clone()
                } else {
                    cfg.realms.first().cloned().unwrap_or_default()
                };
                let offered_ok = cfg.realms.is_empty() || cfg.realms.contains(&realm);
                a.password == c.password
                    && offered_ok
                    && a.realm.as_ref().is_none_or(|r| *r == realm)
            }
            _ => a.password == c.password,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hil_mail::faults::{Fault, When};

    fn case(trigger: TriggerSpec, settings: &[(Key, &str)]) -> (Case, SettingView) {
        let mut pairs = vec![
            (Key::SmtpServer, "127.0.0.1".to_string()),
            (Key::AdminAddress, "admin@hil.test".into()),
            (Key::DeviceAddress, "mfp@hil.test".into()),
        ];
        pairs.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
        let c = Case {
            id: "t".into(),
            section: "t".into(),
            dims: Default::default(),
            settings: vec![],
            users: vec![UserSpec {
                name: "taro".into(),
                password: "pw".into(),
                address: "taro@hil.test".into(),
            }],
            notify: vec!["ops@hil.test".into()],
            trigger,
            server: SmtpConfig::default(),
            pop: model::pop_server(),
            target: Target::FakeServer,
            listener: hil_mail::smtp::ListenerKind::Plain,
            cert: None,
            import_ca: false,
        };
        (c, SettingView::from_pairs(&pairs))
    }

    fn scan(user: Option<&str>) -> TriggerSpec {
        TriggerSpec::Scan {
            to: vec!["a@hil.test".into()],
            size_kb: 1,
            user: user.map(str::to_string),
        }
    }

    #[test]
    fn switches_gate_each_kind() {
        let (c, s) = case(scan(None), &[(Key::EmailScan, "off")]);
        assert_eq!(expect(&c, &s), Expected::Refused { class: "disabled" });
        let (c, s) = case(TriggerSpec::Counter, &[(Key::EmailEnabled, "off")]);
        assert_eq!(expect(&c, &s), fail("disabled", false));
        let (c, s) = case(TriggerSpec::Counter, &[(Key::EmailScan, "off")]);
        assert!(matches!(expect(&c, &s), Expected::Delivered(_)));
    }

    #[test]
    fn from_and_envelope_rules() {
        let (c, s) = case(
            scan(Some("taro")),
            &[
                (Key::EnvelopeFromMode, "specified"),
                (Key::EnvelopeFromAddress, "env@hil.test"),
            ],
        );
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.header_from, "taro@hil.test");
        assert_eq!(d.mail_from, "env@hil.test");
        let (c, s) = case(TriggerSpec::Alert("paper_jam".into()), &[]);
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.header_from, "mfp@hil.test");
        assert_eq!(d.mail_from, "admin@hil.test");
        assert_eq!(d.to, vec!["ops@hil.test"]);
    }

    #[test]
    fn helo_fallback_drops_size() {
        let (mut c, s) = case(scan(None), &[]);
        c.server.faults.push(Fault {
            step: Step::Ehlo,
            when: When {
                nth: None,
                probability: None,
            },
            action: Action::Reply {
                code: 502,
                text: "no".into(),
            },
        });
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.greeted_with, "HELO");
        assert!(!d.size_param);
    }

    fn fault(step: Step, action: Action) -> Fault<Step> {
        Fault {
            step,
            when: When {
                nth: None,
                probability: None,
            },
            action,
        }
    }

    /// SPEC §3.10: once the end of DATA is accepted, a refused QUIT does not undo
    /// the delivery.
    #[test]
    fn a_refused_quit_after_acceptance_is_delivered() {
        let (mut c, s) = case(scan(None), &[]);
        c.server.faults.push(fault(
            Step::Quit,
            Action::Reply {
                code: 554,
                text: "no".into(),
            },
        ));
        assert!(matches!(expect(&c, &s), Expected::Delivered(_)));
    }

    /// RFC 4954 §4: a 334 whose text is not base64 cannot be answered.
    #[test]
    fn a_malformed_challenge_fails_auth() {
        let (mut c, s) = case(
            scan(None),
            &[
                (Key::SmtpAuthEnabled, "on"),
                (Key::SmtpAuthUser, "u"),
                (Key::SmtpAuthPassword, "p"),
            ],
        );
        c.server.auth = vec![Mechanism::Login];
        c.server.accounts = vec![hil_mail::sasl::Account {
            user: "u".into(),
            password: "p".into(),
            realm: None,
            token: None,
        }];
        assert!(matches!(expect(&c, &s), Expected::Delivered(_)));
        c.server.faults.push(fault(
            Step::Auth,
            Action::Reply {
                code: 334,
                text: "not base64 at all!".into(),
            },
        ));
        assert_eq!(expect(&c, &s), fail("auth_failed", true));
        // A well-formed challenge goes on.
        c.server.faults[0].action = Action::Reply {
            code: 334,
            text: "VXNlcm5hbWU6".into(),
        };
        assert!(matches!(expect(&c, &s), Expected::Delivered(_)));
    }

    /// SPEC §3.5 expiry: an expired intermediate may fail the check or be ignored;
    /// both are predicted, named, the ignoring first.
    #[test]
    fn an_expired_intermediate_is_a_latitude() {
        let (mut c, s) = case(scan(None), &[(Key::SmtpTls, "smtps")]);
        c.listener = ListenerKind::Tls;
        let mut cert = model::CertFacts {
            name: "expired_intermediate".into(),
            subject_cn: Some("localhost".into()),
            san: Vec::new(),
            expect: Default::default(),
            ocsp_url: None,
            crl_url: None,
            ocsp_status: None,
            crl_listed: false,
            issuer: Some("expired-intermediate-ca".into()),
            issuer_not_after: Some("2021-01-01T00:00:00Z".into()),
        };
        c.cert = Some(cert.clone());
        let p = predict(&c, &s, &DeviceFacts::default()).unwrap();
        assert!(matches!(p.outcome, Expected::Delivered(_)));
        assert_eq!(
            p.choices.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            ["expired intermediate: ignored by the expiry check"]
        );
        let [alt] = p.alternatives.as_slice() else {
            panic!("{:?}", p.alternatives)
        };
        assert_eq!(alt.outcome, fail("cert_expired", true));
        assert_eq!(alt.choices[0].chose, "refused under expiry");
        // With the expiry check off, or an issuer still valid, no choice matters.
        let (mut c2, s2) = case(
            scan(None),
            &[(Key::SmtpTls, "smtps"), (Key::SmtpVerifyExpiry, "off")],
        );
        c2.listener = ListenerKind::Tls;
        c2.cert = Some(cert.clone());
        let p = predict(&c2, &s2, &DeviceFacts::default()).unwrap();
        assert!(p.alternatives.is_empty() && p.choices.is_empty());
        cert.issuer_not_after = Some("2049-12-31T00:00:00Z".into());
        c.cert = Some(cert);
        let p = predict(&c, &s, &DeviceFacts::default()).unwrap();
        assert!(p.alternatives.is_empty() && p.choices.is_empty());
    }
}
