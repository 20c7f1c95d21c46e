//! The setting matrix (issue 6 items 2–4): the dimensions of a case — device settings
//! from SPEC §1, server-side choices from the scenario library and the certificate
//! zoo — with boundary and invalid values, the sections they vary in, the don't-care
//! reduction that makes "every combination" mean every behaviourally distinct one,
//! and t-way covering arrays over the whole model.
//!
//! **Relevance.** Each dimension says, for a row, whether its value can change the
//! outcome; if not it collapses to its base value (the first) and the row notes why.
//! A dimension's relevance looks only at dimensions before it, so enumerating in order
//! never yields two rows that differ only in a don't-care.
//!
//! **Sections.** Exhaustive mode enumerates, per section, every relevant combination of
//! the section's dimensions, every other dimension at its base value. The sections
//! follow the session: gating and addresses, TLS and certificates, AUTH, POP before
//! SMTP, load reduction, server faults and the scenario library. Interactions across
//! sections are what the covering arrays (`--matrix pairwise`, `3-way`, `4-way`) are
//! for: they run over every dimension at once. Pairwise and 3-way are masking-aware
//! (`masking`): a tuple counts as covered only by a row in which each of its
//! dimensions is relevant, which the relevance rules above decide.
//!
//! **Invalid values** (PICT's `~`) appear at most once per case, and alone: the device
//! refuses the whole `apply`, so nothing else can matter.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::covering;
use crate::masking;
pub use crate::masking::Coverage;
use crate::model::{self, Case, CertFacts, Check, DeviceFacts, Key, Range, Target, TriggerSpec};
use hil_mail::faults::{Action, Fault, When};
use hil_mail::sasl::{Account, Mechanism};
use hil_mail::scenario::Scenario;
use hil_mail::smtp::{ListenerKind, RecipientRule, SmtpConfig, Step};

pub use crate::dim::{Dim, UnknownDim};

/// One value of a dimension.
#[derive(Debug, Clone)]
pub struct Val {
    pub name: String,
    /// Refused by the device when set (PICT's `~`).
    pub invalid: bool,
}

/// A row seen by the relevance functions: values by dimension.
pub struct Get<'a> {
    dims: &'a [Dimension],
    row: &'a [usize],
    ctx: &'a Ctx,
    /// The dimensions read so far, one bit each (`Dim::index`): what an answer
    /// depended on, so that the masking-aware search (`masking`) can tell an answer
    /// about a partly chosen row that no later choice can change.
    read: Cell<u64>,
    /// The dimensions read since the last gate (`why!`) let the row through: what a
    /// "does not matter" answer depends on (every row that agrees on them gets one).
    explained: Cell<u64>,
}

impl Get<'_> {
    /// The value of dimension `d`.
    pub fn v(&self, d: Dim) -> &str {
        let i = d.index();
        self.read.set(self.read.get() | 1 << i);
        self.explained.set(self.explained.get() | 1 << i);
        self.dims[i].values[self.row[i]].name.as_str()
    }

    /// A gate let the row through (`why!`).
    fn gate_passed(&self) {
        self.explained.set(0);
    }

    /// Whether `d` has the value `value`, which must be one of `d`'s values (checked in
    /// debug builds: a misspelt value would silently never match).
    pub fn is(&self, d: Dim, value: &str) -> bool {
        debug_assert!(
            self.dims[d.index()].declares(value),
            "{d} has no value {value:?}"
        );
        self.v(d) == value
    }

    /// Whether `d` has one of `values` (each checked as by [`Get::is`]).
    pub fn is_any(&self, d: Dim, values: &[&str]) -> bool {
        values.iter().any(|v| self.is(d, v))
    }
}

/// `None` when the dimension matters in the row; else why it does not.
type Relevance = fn(&Get) -> Option<&'static str>;

/// A dimension of the model; its first value is the base value.
pub struct Dimension {
    pub name: Dim,
    pub values: Vec<Val>,
    pub doc: &'static str,
    pub relevant: Relevance,
}

impl Dimension {
    /// Whether `value` is one of the dimension's values (valid or not).
    pub fn declares(&self, value: &str) -> bool {
        self.values.iter().any(|v| v.name == value)
    }

    /// Whether `val` (one of this dimension's values) is `value`, which must be one of
    /// them too (checked in debug builds, as by [`Get::is`]).
    fn is(&self, val: &Val, value: &str) -> bool {
        debug_assert!(self.declares(value), "{} has no value {value:?}", self.name);
        val.name == value
    }
}

/// A value of `server.fault`: a built-in fault or a scenario from the library.
#[derive(Debug, Clone)]
pub struct ServerFault {
    pub doc: String,
    /// The server as the fault or scenario sets it up.
    pub smtp: SmtpConfig,
    /// The listener kind a scenario names (it replaces `server.listener`).
    pub listener: Option<ListenerKind>,
    /// The device ends up waiting for an answer that never comes (the timeout matters).
    pub waits: bool,
    /// Where the device is pointed: the fake server, or a port that refuses or
    /// never answers a connect.
    pub target: Target,
}

/// A value of `server.pop_fault`: a built-in POP3 fault or the POP3 part of a
/// scenario from the library (its faults and APOP behaviour; the account stays the
/// harness's).
#[derive(Debug, Clone)]
pub struct PopFault {
    pub doc: String,
    pub pop: hil_mail::pop3::Pop3Config,
    /// The device ends up waiting for an answer that never comes.
    pub waits: bool,
}

impl ServerFault {
    /// Whether it scripts something beyond the server's configuration (faults or
    /// policies), which the server's record shows when met; the others (other
    /// extensions, AUTH offers, a closed or silent port) leave no such trace.
    pub fn scripted(&self) -> bool {
        self.target == Target::FakeServer && scripted(&self.smtp)
    }
}

/// What relevance and case building need besides the row.
pub struct Ctx {
    /// The zoo's server certificates by name (`certs/manifest.toml`).
    pub certs: BTreeMap<String, CertFacts>,
    pub faults: BTreeMap<String, ServerFault>,
    pub pop_faults: BTreeMap<String, PopFault>,
    /// The firmware variants the device profile declares.
    pub variants: Vec<String>,
    /// What the profile says of the firmware: its ranges and AUTH mechanisms (the
    /// boundary and invalid values come from them).
    pub facts: DeviceFacts,
    /// Scenario files left out of `server.fault`, and why.
    pub excluded: Vec<(String, String)>,
}

/// A section: a name, what it covers, the dimensions that vary in it.
pub struct Section {
    pub name: &'static str,
    pub doc: &'static str,
    pub dims: Vec<Dim>,
    /// Dimensions whose values the section takes only some of.
    pub only: Vec<(Dim, &'static [&'static str])>,
}

/// The model.
pub struct Matrix {
    /// In the model's order: `dims[d.index()]` is dimension `d`.
    pub dims: Vec<Dimension>,
    pub sections: Vec<Section>,
    pub ctx: Ctx,
}

/// A row: one value index per dimension, in model order, and its section.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub section: String,
    pub values: Vec<usize>,
}

/// A covering array as run: its cases (the array's rows, then one refusal case per
/// invalid value) and, when masking-aware, what it covers.
#[derive(Debug, Clone)]
pub struct CoveringArray {
    pub rows: Vec<Row>,
    /// `None` for the plain 4-way array.
    pub coverage: Option<Coverage>,
}

/// Why a model cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The zoo's manifest cannot be read.
    #[error("{}: {source}", path.display())]
    ReadManifest {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The zoo's manifest is not what the oracle reads.
    #[error("{}: {message}", path.display())]
    ParseManifest { path: PathBuf, message: String },
    /// The scenario library cannot be loaded (the loader's own words).
    #[error("{0}")]
    Scenarios(String),
    #[error("the certificate zoo has no `valid` certificate")]
    NoValidCertificate,
}

/// Why a text is not the id of a row of the model (`Matrix::parse_id`); each names
/// the id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{id}: not SECTION/DIM=VALUE,…")]
    NotAnId { id: String },
    #[error("{id}: no section {section:?}")]
    NoSection { id: String, section: String },
    #[error("{id}: {part:?} is not DIM=VALUE")]
    NotDimValue { id: String, part: String },
    #[error("{id}: no dimension {name:?}")]
    NoDimension { id: String, name: String },
    #[error("{id}: {dim} has no value {value:?}")]
    NoValue { id: String, dim: Dim, value: String },
    #[error("{id}: not in the canonical order {canonical}")]
    NotCanonical { id: String, canonical: String },
}

fn vals(names: &[&str]) -> Vec<Val> {
    names
        .iter()
        .map(|n| match n.strip_prefix('~') {
            Some(bad) => Val {
                name: bad.to_string(),
                invalid: true,
            },
            None => Val {
                name: n.to_string(),
                invalid: false,
            },
        })
        .collect()
}

// ---- The model's constants: what the device is given for each value. ----

pub const SERVER_IP: &str = "127.0.0.1";
pub const AUTH_USER: &str = "printer@hil.test";
pub const AUTH_PASSWORD: &str = "s3cret-Pass";
pub const AUTH_TOKEN: &str = "ya29.hil-token";
pub use model::{POP_PASSWORD, POP_USER};
/// The realm the server offers and the account requires for DIGEST-MD5.
pub const REALM: &str = "hil.test";
/// SPEC §3.7's preference order, xoauth2 first of all.
pub const MECHANISM_ORDER: &[&str] = &[
    "xoauth2",
    "gss-spnego",
    "ntlm",
    "digest-md5",
    "cram-md5",
    "login",
    "plain",
];

// ---- Relevance: whether a dimension can change the outcome of a row. ----

/// Returns the reason from the enclosing relevance function when `$f($g)` (a
/// relevance answer, a gate) says the dimension does not matter. When the gate lets
/// the row through, what it read no longer explains a "does not matter" answered
/// after it: had the gate stopped the row, the answer would be "does not matter"
/// too. `Get` forgets those reads for its explanation (see `Get::explained`). So a
/// function that uses `why!` (a gate: `sending`, `addressed`, `auth_on`…) must only be
/// called through `why!` or as a rule's whole answer: called in the middle of a rule,
/// it would make the rule forget what it read before the call, and the masking-aware
/// search would take some pairs for untestable (the masking tests would catch that).
macro_rules! why {
    ($f:ident($g:ident)) => {
        if let Some(w) = $f($g) {
            return Some(w);
        }
        $g.gate_passed();
    };
}

fn is_scan(g: &Get) -> bool {
    g.is_any(
        Dim::Trigger,
        &["scan", "scan_user", "scan_guest", "scan_unknown"],
    )
}

/// The trigger gets past the switches (SPEC §2).
fn gated(g: &Get) -> Option<&'static str> {
    if g.is(Dim::Trigger, "scan_unknown") {
        return Some("a scan as an unknown user is refused before anything else");
    }
    if g.is(Dim::EmailEnabled, "off") {
        return Some("email.enabled=off: nothing is sent");
    }
    let switch = if g.is(Dim::Trigger, "alert") {
        Dim::EmailNotify
    } else if g.is(Dim::Trigger, "counter") {
        Dim::EmailCounter
    } else {
        Dim::EmailScan
    };
    if g.is(switch, "off") {
        return Some("the mail kind's switch is off: nothing is sent");
    }
    None
}

/// The job gets to the network: recipients, a server and a header From.
fn sending(g: &Get) -> Option<&'static str> {
    why!(gated(g));
    if !is_scan(g) && g.is(Dim::Notify, "none") {
        return Some("no notification address: the job fails before connecting");
    }
    if !g.is(Dim::SmtpServer, "ipv4") {
        return Some("smtp.server is not usable: the job fails before connecting");
    }
    if !g.is(Dim::Trigger, "scan_user") && g.is(Dim::DeviceAddress, "empty") {
        return Some("no header From: the job fails before connecting");
    }
    None
}

fn user_address_is_envelope(g: &Get) -> bool {
    g.is(Dim::SmtpAuthEnabled, "on")
        && g.is(Dim::SmtpAuthSource, "device_user")
        && g.is(Dim::Trigger, "scan_user")
}

/// The job has its addresses and connects.
fn addressed(g: &Get) -> Option<&'static str> {
    why!(sending(g));
    if user_address_is_envelope(g) {
        return None;
    }
    let empty = if g.is(Dim::EnvelopeFromMode, "specified") {
        g.is(Dim::EnvelopeFromAddress, "empty")
    } else {
        g.is(Dim::AdminAddress, "empty")
    };
    if empty {
        return Some("no envelope sender: the job fails before connecting");
    }
    None
}

/// The device and the server agree on TLS: a handshake with the zoo certificate.
fn handshake(g: &Get) -> bool {
    let listener = listener_of(g);
    let agreed = (g.is(Dim::SmtpTls, "smtps") && listener == ListenerKind::Tls)
        || (g.is(Dim::SmtpTls, "starttls") && listener == ListenerKind::Starttls);
    agreed && !g.is(Dim::ServerListener, "starttls_refused")
}

fn listener_of(g: &Get) -> ListenerKind {
    if let Some(k) = g
        .ctx
        .faults
        .get(g.v(Dim::ServerFault))
        .and_then(|f| f.listener)
    {
        return k;
    }
    named_listener(g).unwrap_or_else(|| matching(g))
}

/// The listener `server.listener` names (`None`: the matching one).
fn named_listener(g: &Get) -> Option<ListenerKind> {
    if g.is_any(Dim::ServerListener, &["starttls", "starttls_refused"]) {
        Some(ListenerKind::Starttls)
    } else if g.is(Dim::ServerListener, "tls") {
        Some(ListenerKind::Tls)
    } else if g.is(Dim::ServerListener, "plain") {
        Some(ListenerKind::Plain)
    } else {
        None
    }
}

/// The listener the row's TLS mode expects.
fn matching(g: &Get) -> ListenerKind {
    if g.is(Dim::SmtpTls, "smtps") {
        ListenerKind::Tls
    } else if g.is(Dim::SmtpTls, "starttls") {
        ListenerKind::Starttls
    } else {
        ListenerKind::Plain
    }
}

fn check_matters(g: &Get, check: Check) -> Option<&'static str> {
    why!(addressed(g));
    if !handshake(g) {
        return Some("no TLS handshake with a server certificate");
    }
    let Some(cert) = g.ctx.certs.get(g.v(Dim::ServerCert)) else {
        return Some("no such certificate");
    };
    let facts = &g.ctx.facts;
    if facts.lacks_feature("separate-cert-checks") {
        // One switch for every check: `smtp.verify.expiry` stands for it, and it
        // matters when any check fails the certificate.
        if check != Check::Expiry {
            return Some("one switch for every check (the firmware lacks separate-cert-checks): follows smtp.verify.expiry");
        }
        return Check::ALL
            .iter()
            .all(|c| check_passes(cert, *c, facts))
            .then_some("the certificate passes every check (one switch for all)");
    }
    check_passes(cert, check, facts)
        .then_some("the certificate passes this check (also under the cn-only variant)")
}

/// Whether `check` accepts `cert` under every reading the harness knows: SPEC's, the
/// variants' (cn-only), and the firmware's revocation sources.
fn check_passes(cert: &CertFacts, check: Check, facts: &DeviceFacts) -> bool {
    let verdict = if check == Check::Revocation
        && (facts.lacks_feature("ocsp") || facts.lacks_feature("crl"))
    {
        model::revocation_by(
            cert,
            !facts.lacks_feature("ocsp"),
            !facts.lacks_feature("crl"),
        )
        .to_string()
    } else {
        model::cert_check(cert, check, SERVER_IP)
    };
    verdict == "accept" && (check != Check::Cn || model::name_matches(cert, SERVER_IP, true))
}

/// The AUTH mechanism the device picks: SPEC §3.7's order ∩ enabled ∩ offered.
pub fn chosen_mechanism(enabled: &[&str], offered: &[Mechanism]) -> Option<&'static str> {
    MECHANISM_ORDER
        .iter()
        .copied()
        .find(|m| enabled.contains(m) && offered.iter().any(|o| o.name().eq_ignore_ascii_case(m)))
}

/// The mechanisms the row's `smtp.auth.methods` enables.
fn methods_of<'a>(g: &'a Get) -> Vec<&'a str> {
    if g.is(Dim::SmtpAuthMethods, "default") {
        g.ctx
            .facts
            .default_methods
            .iter()
            .map(String::as_str)
            .collect()
    } else if g.is(Dim::SmtpAuthMethods, "none") {
        Vec::new()
    } else {
        g.v(Dim::SmtpAuthMethods).split(',').collect()
    }
}

/// The mechanisms the row's server offers (`server.auth`).
fn offer_of(g: &Get) -> Vec<Mechanism> {
    use Mechanism::*;
    if g.is(Dim::ServerAuth, "plain_login") {
        vec![Plain, Login]
    } else if g.is(Dim::ServerAuth, "cram_digest") {
        vec![CramMd5, DigestMd5]
    } else if g.is(Dim::ServerAuth, "xoauth2") {
        vec![Xoauth2]
    } else if g.is(Dim::ServerAuth, "all") {
        Mechanism::ALL.to_vec()
    } else {
        Vec::new()
    }
}

fn auth_on(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if !g.is(Dim::SmtpAuthEnabled, "on") {
        return Some("smtp.auth.enabled=off: the device never authenticates");
    }
    None
}

fn chosen(g: &Get) -> Option<&'static str> {
    chosen_mechanism(&methods_of(g), &offer_of(g))
}

fn pop_on(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if !g.is(Dim::PopBeforeSmtpEnabled, "on") {
        return Some("POP before SMTP is off");
    }
    None
}

fn load_limited(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if !g.is_any(Dim::LoadMode, &["abort_over_limit", "url_over_limit"]) {
        return Some("only the over-limit modes look at load.max_size");
    }
    None
}

fn always(_: &Get) -> Option<&'static str> {
    None
}

fn never(_: &Get) -> Option<&'static str> {
    Some("only its invalid values are tried (the harness sets the ports)")
}

// ---- Values the device's facts decide. ----

/// A ranged setting's values (SPEC §1 †, the firmware's range from its profile): the
/// default (moved into the range if outside it), the lower bound (at least `low_from`
/// when the range allows), the upper bound, and as invalid values the numbers just
/// outside (below only when there is a number below: 0 has none).
fn range_values(default: u64, r: Range, low_from: u64) -> Vec<Val> {
    let base = default.clamp(r.min, r.max);
    let low = if low_from <= r.max {
        r.min.max(low_from)
    } else {
        r.min
    };
    let mut out: Vec<Val> = Vec::new();
    for (n, invalid) in [
        (Some(base), false),
        (Some(low), false),
        (Some(r.max), false),
        (r.min.checked_sub(1), true),
        (r.max.checked_add(1), true),
    ] {
        let Some(n) = n else { continue };
        let name = n.to_string();
        if !out.iter().any(|v| v.name == name) {
            out.push(Val { name, invalid });
        }
    }
    out
}

/// The values of the dimension of a ranged setting `key` for a firmware with `facts`.
fn ranged_values(key: Key, facts: &DeviceFacts) -> Vec<Val> {
    let default = key.default_value().parse().unwrap_or(0);
    // 1 KB of capacity is left out (the dimension's doc says why).
    let low_from = if key == Key::LoadServerCapacity {
        100
    } else {
        0
    };
    range_values(default, facts.range(key), low_from)
}

/// `smtp.auth.methods`' values for a firmware: the default, each implemented mechanism
/// alone (least preferred first), two together, `none`, and as invalid values each
/// mechanism of SPEC the firmware does not implement, and a name that is none.
fn methods_values(facts: &DeviceFacts) -> Vec<Val> {
    let has = |m: &str| facts.mechanisms.iter().any(|x| x == m);
    let mut names: Vec<String> = vec!["default".into()];
    let implemented: Vec<&str> = model::SPEC_MECHANISMS
        .iter()
        .rev()
        .copied()
        .filter(|m| has(m))
        .collect();
    names.extend(implemented.iter().map(|m| m.to_string()));
    if has("plain") && has("cram-md5") {
        names.push("plain,cram-md5".into());
    } else if implemented.len() >= 2 {
        names.push(format!("{},{}", implemented[0], implemented[1]));
    }
    names.push("none".into());
    let mut out = vals(&names.iter().map(String::as_str).collect::<Vec<_>>());
    for m in model::SPEC_MECHANISMS.iter().filter(|m| !has(m)) {
        out.push(Val {
            name: m.to_string(),
            invalid: true,
        });
    }
    out.push(Val {
        name: "kerberos".into(),
        invalid: true,
    });
    // A name twice is not a set (SPEC §1 value syntax).
    if let Some(m) = implemented.first() {
        out.push(Val {
            name: format!("{m},{m}"),
            invalid: true,
        });
    }
    out
}

/// Names whose values the matrix fills in when it is built (from the zoo, the fault
/// catalogue, the device's facts).
fn filled_later(name: Dim, doc: &'static str, relevant: Relevance) -> Dimension {
    Dimension {
        name,
        values: Vec::new(),
        doc,
        relevant,
    }
}

fn dim(name: Dim, values: &[&str], doc: &'static str, relevant: Relevance) -> Dimension {
    Dimension {
        name,
        values: vals(values),
        doc,
        relevant,
    }
}

// ---- The dimensions, by family; `dims` puts them in the model's order. ----

/// The dimensions in the model's (dependency) order, `Dim`'s: a dimension's relevance
/// looks only at dimensions before it.
fn dims() -> Vec<Dimension> {
    let mut all = [
        switch_dims(),
        address_dims(),
        tls_dims(),
        auth_dims(),
        pop_dims(),
        load_dims(),
        server_dims(),
        port_dims(),
        later_dims(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    all.sort_by_key(|d| d.name.index());
    all
}

/// SPEC §2: what is sent, and the switches that let it be sent.
fn switch_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::Trigger,
            &["scan", "scan_user", "scan_guest", "scan_unknown", "alert", "counter"],
            "what is sent: a scan (anonymous, as a user with an address, as a user without one, as an unknown user), an alert, a counter",
            always,
        ),
        dim(Dim::EmailEnabled, &["on", "off", "~yes"], "the master switch", |g| {
            g.is(Dim::Trigger, "scan_unknown")
                .then_some("a scan as an unknown user is refused before the switches")
        }),
        dim(Dim::EmailScan, &["on", "off"], "the scan switch", |g| {
            if !is_scan(g) || g.is(Dim::Trigger, "scan_unknown") {
                return Some("not a scan");
            }
            g.is(Dim::EmailEnabled, "off")
                .then_some("email.enabled=off: nothing is sent")
        }),
        dim(Dim::EmailNotify, &["on", "off"], "the alert switch", |g| {
            if !g.is(Dim::Trigger, "alert") {
                return Some("not an alert");
            }
            g.is(Dim::EmailEnabled, "off")
                .then_some("email.enabled=off: nothing is sent")
        }),
        dim(Dim::EmailCounter, &["on", "off"], "the counter switch", |g| {
            if !g.is(Dim::Trigger, "counter") {
                return Some("not a counter mail");
            }
            g.is(Dim::EmailEnabled, "off")
                .then_some("email.enabled=off: nothing is sent")
        }),
    ]
}

/// SPEC §2 and §3.8: recipients, the server address, header From and envelope sender.
fn address_dims() -> Vec<Dimension> {
    vec![
        dim(Dim::Notify, &["one", "two", "none"], "registered notification addresses", |g| {
            why!(gated(g));
            is_scan(g).then_some("a scan goes to its own recipients")
        }),
        dim(Dim::Recipients, &["one", "three", "mixed"], "a scan's recipients: one, three the server takes, or mixed (the faults section's): the addresses the server's rules refuse between two it takes, so a refused recipient is reported while the rest still get the mail", |g| {
            why!(gated(g));
            (!is_scan(g)).then_some("notifications go to the notification addresses")
        }),
        dim(
            Dim::SmtpServer,
            &["ipv4", "empty", "~http://mx.hil.test/", "~mx.hil.test:25", "~mx .hil.test", "~a..b", "~999.1.1.1", "~1.2.3", "~12345"],
            "the server address: the harness's address (ipv4 names it; --bind or --server-address decides it, IPv6 too), empty, or refused forms",
            |g| {
                why!(gated(g));
                (!is_scan(g) && g.is(Dim::Notify, "none"))
                    .then_some("no notification address: the job fails first")
            },
        ),
        dim(
            Dim::DeviceAddress,
            &["set", "empty", "longest", "~with space", "~over320", "~a@::1"],
            "the device's address (header From of notifications and anonymous scans); longest is the longest SPEC allows (64 + 1 + 255 characters); an IPv6 literal must be bracketed",
            |g| {
                why!(gated(g));
                if !is_scan(g) && g.is(Dim::Notify, "none") {
                    return Some("no notification address: the job fails first");
                }
                if !g.is(Dim::SmtpServer, "ipv4") {
                    return Some("smtp.server is not usable: the job fails first");
                }
                g.is(Dim::Trigger, "scan_user")
                    .then_some("the job user's address is the header From")
            },
        ),
        dim(
            Dim::EnvelopeFromMode,
            &["admin", "specified", "~custom"],
            "the envelope sender's source",
            |g| {
                why!(sending(g));
                user_address_is_envelope(g).then_some(
                    "device_user credentials: the job user's address is the envelope sender",
                )
            },
        ),
        dim(
            Dim::EnvelopeFromAddress,
            &["set", "empty", "longest", "~with space", "~over320"],
            "the specified envelope sender; longest is the longest SPEC allows (64 + 1 + 255 characters)",
            |g| {
                why!(sending(g));
                if user_address_is_envelope(g) {
                    return Some("the job user's address is the envelope sender");
                }
                (!g.is(Dim::EnvelopeFromMode, "specified")).then_some("envelope_from.mode=admin")
            },
        ),
        dim(
            Dim::AdminAddress,
            &["set", "empty", "longest", "~with space", "~over320"],
            "the administrator's address (the default envelope sender); longest is the longest SPEC allows (64 + 1 + 255 characters)",
            |g| {
                why!(sending(g));
                if user_address_is_envelope(g) {
                    return Some("the job user's address is the envelope sender");
                }
                (!g.is(Dim::EnvelopeFromMode, "admin")).then_some("envelope_from.mode=specified")
            },
        ),
    ]
}

/// SPEC §3.1, §3.4, §3.5: the TLS mode, the listener and certificate the server
/// presents, and the five checks.
fn tls_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::SmtpTls,
            &["none", "smtps", "starttls", "~ssl"],
            "the TLS mode",
            addressed,
        ),
        dim(
            Dim::ServerListener,
            &["matching", "plain", "starttls", "tls", "starttls_refused"],
            "the listener the device is pointed at: the one its TLS mode expects, or plain, offering STARTTLS, implicit TLS, offering STARTTLS but answering it 454",
            |g| {
                why!(addressed(g));
                g.ctx
                    .faults
                    .get(g.v(Dim::ServerFault))
                    .and_then(|f| f.listener)
                    .map(|_| "the scenario names its listener")
            },
        ),
        filled_later(
            Dim::ServerCert, // from the zoo
            "the certificate the TLS listener presents (the zoo)",
            |g| {
                why!(addressed(g));
                (!handshake(g)).then_some("no TLS handshake")
            },
        ),
        dim(
            Dim::SmtpVerifyExpiry,
            &["on", "off"],
            "certificate check: validity dates",
            |g| check_matters(g, Check::Expiry),
        ),
        dim(
            Dim::SmtpVerifyCn,
            &["off", "on"],
            "certificate check: name",
            |g| check_matters(g, Check::Cn),
        ),
        dim(
            Dim::SmtpVerifyKeyUsage,
            &["off", "on"],
            "certificate check: key usage",
            |g| check_matters(g, Check::KeyUsage),
        ),
        dim(
            Dim::SmtpVerifyChain,
            &["off", "on"],
            "certificate check: chain to the external store",
            |g| check_matters(g, Check::Chain),
        ),
        dim(
            Dim::SmtpVerifyRevocation,
            &["off", "on"],
            "certificate check: OCSP, then CRL",
            |g| check_matters(g, Check::Revocation),
        ),
    ]
}

/// SPEC §3.7: AUTH on the device's side and the server's.
fn auth_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::SmtpAuthEnabled,
            &["off", "on", "~1"],
            "SMTP AUTH",
            sending,
        ),
        dim(
            Dim::SmtpAuthSource,
            &["configured", "device_user", "~user"],
            "whose credentials: the configured ones or the job user's",
            |g| {
                why!(sending(g));
                if !g.is(Dim::SmtpAuthEnabled, "on") {
                    return Some("smtp.auth.enabled=off");
                }
                (!g.is_any(Dim::Trigger, &["scan_user", "scan_guest"]))
                    .then_some("the job has no user: configured credentials are used")
            },
        ),
        filled_later(
            Dim::SmtpAuthMethods, // from the device's facts (its profile)
            "the enabled AUTH mechanisms (default: all the device implements)",
            auth_on,
        ),
        dim(
            Dim::ServerAuth,
            &["plain_login", "none", "cram_digest", "xoauth2", "all"],
            "the mechanisms the server offers",
            |g| {
                why!(auth_on(g));
                g.ctx
                    .faults
                    .get(g.v(Dim::ServerFault))
                    .is_some_and(|f| !f.smtp.auth.is_empty())
                    .then_some("the scenario sets the server's AUTH")
            },
        ),
        dim(
            Dim::ServerAuthBeforeTls,
            &["yes", "no"],
            "whether a STARTTLS listener offers AUTH before TLS",
            |g| {
                why!(auth_on(g));
                (listener_of(g) != ListenerKind::Starttls).then_some("not a STARTTLS listener")
            },
        ),
        dim(
            Dim::ServerRequireAuth,
            &["off", "on"],
            "the server demands AUTH before MAIL (530)",
            |g| {
                why!(addressed(g));
                let falls_back = g.ctx.variants.iter().any(|v| v == "send-without-auth");
                (g.is(Dim::SmtpAuthEnabled, "on") && !falls_back)
                    .then_some("the device authenticates or fails before MAIL")
            },
        ),
        dim(
            Dim::SmtpAuthPassword,
            &["right", "wrong", "max64", "~over64", "~with\"quote"],
            "the credentials (password, and the XOAUTH2 token) match the server's account or not",
            |g| {
                why!(auth_on(g));
                chosen(g)
                    .is_none()
                    .then_some("no mechanism in common: no credentials are sent")
            },
        ),
        dim(
            Dim::SmtpAuthRealm,
            &["empty", "set", "~over253"],
            "the DIGEST-MD5 realm (empty: the server's)",
            |g| {
                why!(auth_on(g));
                (chosen(g) != Some("digest-md5")).then_some("DIGEST-MD5 is not the mechanism used")
            },
        ),
    ]
}

/// SPEC §3.6: POP before SMTP, and a server that relays only after a POP login.
fn pop_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::PopBeforeSmtpEnabled,
            &["off", "on"],
            "POP before SMTP",
            addressed,
        ),
        dim(
            Dim::PopTls,
            &["none", "pop3s", "stls", "~starttls"],
            "POP3 TLS mode",
            pop_on,
        ),
        dim(
            Dim::PopApop,
            &["off", "on"],
            "APOP instead of USER/PASS",
            pop_on,
        ),
        dim(
            Dim::PopPassword,
            &["right", "wrong", "~with\"quote"],
            "the POP password matches the account or not",
            pop_on,
        ),
        filled_later(
            Dim::PopBeforeSmtpWait, // from the device's facts (its profile)
            "seconds between the POP login and the SMTP connection",
            |g| {
                why!(pop_on(g));
                (!g.is(Dim::PopPassword, "right")).then_some("the POP login fails: no SMTP")
            },
        ),
        filled_later(
            Dim::ServerPopFault, // from the catalogue
            "the POP3 server's behaviour: well-behaved, a built-in POP fault, or the POP3 part of a scenario",
            pop_on,
        ),
        dim(
            Dim::ServerPopWindow,
            &["off", "30"],
            "the SMTP server relays only for a POP login within 30 s (554 otherwise)",
            |g| {
                why!(addressed(g));
                (g.is(Dim::PopBeforeSmtpEnabled, "on") && !g.is(Dim::PopPassword, "right"))
                    .then_some("the POP login fails: no SMTP")
            },
        ),
    ]
}

/// SPEC §4: load reduction, the scan's size and the server's own limit.
fn load_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::LoadMode,
            &["none", "split", "abort_over_limit", "url_over_limit", "url_always", "~compress"],
            "server load reduction",
            addressed,
        ),
        filled_later(
            Dim::LoadSplitSize, // from the device's facts (its profile)
            "KB per fragment",
            |g| {
                why!(addressed(g));
                (!g.is(Dim::LoadMode, "split")).then_some("load.mode is not split")
            },
        ),
        dim(
            Dim::LoadMaxSize,
            &["unlimited", "limited", "~none"],
            "whether load.server_capacity applies",
            load_limited,
        ),
        filled_later(
            Dim::LoadServerCapacity, // from the device's facts (its profile)
            "KB the server takes (1 KB, the lower bound, is left out: the device's own headers and text are unknown to the oracle within 4 KB, so no message is surely over or under it)",
            |g| {
                why!(load_limited(g));
                (!g.is(Dim::LoadMaxSize, "limited")).then_some("load.max_size=unlimited")
            },
        ),
        dim(Dim::ScanSizeKb, &["4", "300"], "the scan's size", |g| {
            why!(addressed(g));
            (!is_scan(g)).then_some("not a scan")
        }),
        dim(
            Dim::ServerSizeLimit,
            &["none", "200kb"],
            "the server's message size limit (SIZE 204800, 552 beyond)",
            addressed,
        ),
    ]
}

/// SPEC §3.2, §3.3, §3.9, §3.10: how the server behaves, and how long the device
/// waits for it.
fn server_dims() -> Vec<Dimension> {
    vec![
        filled_later(
            Dim::ServerFault, // from the catalogue
            "the server's behaviour: well-behaved, a built-in fault, or a scenario from scenarios/",
            addressed,
        ),
        filled_later(
            Dim::SmtpTimeout, // from the device's facts (its profile)
            "seconds the device waits",
            |g| {
                why!(addressed(g));
                // A hang in the TLS handshake makes only a TLS session wait.
                let waits = g.ctx.faults.get(g.v(Dim::ServerFault)).is_some_and(|f| {
                    let tls_only = !f.smtp.faults.is_empty()
                        && f.smtp.faults.iter().all(|x| x.step == Step::TlsHandshake);
                    f.waits && !(tls_only && g.is(Dim::SmtpTls, "none"))
                }) || (listener_of(g) == ListenerKind::Tls
                    && !g.is(Dim::SmtpTls, "smtps"))
                    || (g.is(Dim::PopBeforeSmtpEnabled, "on")
                        && g.ctx
                            .pop_faults
                            .get(g.v(Dim::ServerPopFault))
                            .is_some_and(|f| f.waits));
                (!waits).then_some("nothing makes the device wait")
            },
        ),
    ]
}

/// Settings the harness itself sets (the ports) or leaves alone (the AUTH user): only
/// their invalid values are tried.
fn port_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::SmtpPort,
            &["harness", "~0", "~65536"],
            "the SMTP port (the harness sets its listener's)",
            never,
        ),
        dim(
            Dim::SmtpSslPort,
            &["harness", "~0", "~x"],
            "the SMTPS port (the harness sets its listener's)",
            never,
        ),
        dim(
            Dim::SmtpAuthUser,
            &["right", "~over64"],
            "the AUTH user",
            never,
        ),
    ]
}

/// Dimensions added after the model's first order (appended, so that every older
/// dimension keeps its place): the alert raised, the POP server's address, user and
/// ports.
fn later_dims() -> Vec<Dimension> {
    vec![
        dim(
            Dim::AlertKind,
            &["paper_jam", "paper_empty", "toner_out", "maintenance", "output_tray_full", "service_call", "job_error"],
            "the alert raised (SPEC §2: every kind goes to the notification addresses, From device.address)",
            |g| {
                why!(sending(g));
                (!g.is(Dim::Trigger, "alert")).then_some("not an alert")
            },
        ),
        dim(
            Dim::PopServer,
            &["harness", "empty", "~999.1.1.1", "~pop.hil.test:110"],
            "the POP server's address: the harness's, empty (the job fails with config), or refused forms",
            pop_on,
        ),
        dim(
            Dim::PopUser,
            &["right", "wrong", "~over64"],
            "the POP user: the account's, or one the server does not know (pop_auth)",
            |g| {
                why!(pop_on(g));
                (!g.is(Dim::PopServer, "harness")).then_some("no POP server: the job fails first")
            },
        ),
        dim(
            Dim::PopPort,
            &["harness", "~0", "~65536"],
            "the POP3 port (the harness sets its listener's)",
            never,
        ),
        dim(
            Dim::PopSslPort,
            &["harness", "~0", "~x"],
            "the POP3S port (the harness sets its listener's)",
            never,
        ),
    ]
}

/// The sections of exhaustive mode; a section varies its dimensions in the order
/// listed (the order of its rows).
fn sections() -> Vec<Section> {
    vec![
        Section {
            name: "delivery",
            doc: "SPEC §2 and §3.8: the switches, recipients, the server address, header From and envelope sender (with device_user credentials)",
            dims: vec![Dim::Trigger, Dim::EmailEnabled, Dim::EmailScan, Dim::EmailNotify, Dim::EmailCounter, Dim::Notify, Dim::Recipients, Dim::SmtpServer, Dim::DeviceAddress, Dim::SmtpAuthEnabled, Dim::SmtpAuthSource, Dim::EnvelopeFromMode, Dim::EnvelopeFromAddress, Dim::AdminAddress],
            only: vec![(Dim::Recipients, &["one", "three"])],
        },
        Section {
            name: "tls",
            doc: "SPEC §3.1, §3.4, §3.5: TLS mode × listener × every zoo certificate × the checks it fails",
            dims: vec![Dim::SmtpTls, Dim::ServerListener, Dim::ServerCert, Dim::SmtpVerifyExpiry, Dim::SmtpVerifyCn, Dim::SmtpVerifyKeyUsage, Dim::SmtpVerifyChain, Dim::SmtpVerifyRevocation],
            only: vec![],
        },
        Section {
            name: "auth",
            doc: "SPEC §3.7: mechanisms enabled × offered, credentials, realm, source, the 530 without AUTH",
            dims: vec![Dim::Trigger, Dim::SmtpAuthEnabled, Dim::SmtpAuthSource, Dim::SmtpAuthMethods, Dim::ServerAuth, Dim::ServerRequireAuth, Dim::SmtpAuthPassword, Dim::SmtpAuthRealm],
            only: vec![(Dim::Trigger, &["scan", "scan_user", "scan_guest"])],
        },
        Section {
            name: "auth_tls",
            doc: "SPEC §3.4 and §3.7 together: AUTH offered before or only after STARTTLS, credentials over plaintext",
            dims: vec![Dim::SmtpTls, Dim::ServerListener, Dim::SmtpAuthEnabled, Dim::ServerAuthBeforeTls],
            only: vec![],
        },
        Section {
            name: "pop",
            doc: "SPEC §3.6: POP before SMTP over each POP TLS mode, login method, password, wait, and a server that relays only after a POP login",
            dims: vec![Dim::PopBeforeSmtpEnabled, Dim::PopTls, Dim::PopApop, Dim::PopPassword, Dim::PopBeforeSmtpWait, Dim::ServerPopWindow],
            only: vec![],
        },
        Section {
            name: "timeouts_tls",
            doc: "SPEC §3.2: a TLS handshake the server never answers × smtp.timeout's bounds and default",
            dims: vec![Dim::SmtpTls, Dim::ServerFault, Dim::SmtpTimeout],
            only: vec![(Dim::SmtpTls, &["smtps"]), (Dim::ServerFault, &["hang-tls_handshake"])],
        },
        Section {
            name: "pop_faults",
            doc: "SPEC §3.6, §3.2: built-in POP3 faults and the library's POP3 scenarios × POP TLS mode × login method",
            dims: vec![Dim::PopBeforeSmtpEnabled, Dim::PopTls, Dim::PopApop, Dim::ServerPopFault],
            only: vec![(Dim::PopBeforeSmtpEnabled, &["on"])],
        },
        Section {
            name: "pop_timeouts",
            doc: "SPEC §3.2: each POP3 fault that makes the device wait × smtp.timeout's bounds and default",
            dims: vec![Dim::PopBeforeSmtpEnabled, Dim::ServerPopFault, Dim::SmtpTimeout],
            only: vec![(Dim::PopBeforeSmtpEnabled, &["on"])],
        },
        Section {
            name: "pop_tls",
            doc: "SPEC §3.5 last sentence: POP over TLS applies the five checks to the POP server's certificate (the case's zoo certificate, which the SMTP server shows too) — each certificate × the checks it fails × pop3s and stls",
            dims: vec![Dim::SmtpTls, Dim::ServerCert, Dim::SmtpVerifyExpiry, Dim::SmtpVerifyCn, Dim::SmtpVerifyKeyUsage, Dim::SmtpVerifyChain, Dim::SmtpVerifyRevocation, Dim::PopBeforeSmtpEnabled, Dim::PopTls],
            only: vec![(Dim::SmtpTls, &["smtps"]), (Dim::PopBeforeSmtpEnabled, &["on"]), (Dim::PopTls, &["pop3s", "stls"])],
        },
        Section {
            name: "pop_login",
            doc: "SPEC §3.6 and §1: the POP server's address and user, over each login method",
            dims: vec![Dim::PopBeforeSmtpEnabled, Dim::PopApop, Dim::PopServer, Dim::PopUser],
            only: vec![(Dim::PopBeforeSmtpEnabled, &["on"])],
        },
        Section {
            name: "alerts",
            doc: "SPEC §2: every alert kind, to one and to two notification addresses",
            dims: vec![Dim::Trigger, Dim::Notify, Dim::AlertKind],
            only: vec![(Dim::Trigger, &["alert"]), (Dim::Notify, &["one", "two"])],
        },
        Section {
            name: "load",
            doc: "SPEC §4: each load-reduction mode × sizes and limits × the server's own size limit",
            dims: vec![Dim::Trigger, Dim::LoadMode, Dim::LoadSplitSize, Dim::LoadMaxSize, Dim::LoadServerCapacity, Dim::ScanSizeKb, Dim::ServerSizeLimit],
            only: vec![(Dim::Trigger, &["scan", "alert"])],
        },
        Section {
            name: "faults",
            doc: "SPEC §3.3, §3.9, §3.10: built-in faults and the scenario library × TLS mode × AUTH on or off",
            dims: vec![Dim::Recipients, Dim::ServerFault, Dim::SmtpTls, Dim::SmtpAuthEnabled],
            only: vec![(Dim::Recipients, &["mixed"])],
        },
        Section {
            name: "timeouts",
            doc: "SPEC §3.2: every fault that makes the device wait × smtp.timeout's bounds and default",
            dims: vec![Dim::ServerFault, Dim::SmtpTimeout],
            only: vec![],
        },
    ]
}

// ---- The catalogue of server faults. ----

fn fault(step: Step, nth: Option<u32>, action: Action) -> Fault<Step> {
    Fault {
        step,
        when: When {
            nth,
            probability: None,
        },
        action,
    }
}

fn reply(code: u16, text: &str) -> Action {
    Action::Reply {
        code,
        text: text.into(),
    }
}

/// Does a fault make the device wait its timeout (whatever it is)?
fn waits(a: &Action) -> bool {
    matches!(a, Action::Hang | Action::HalfLine | Action::Delay { .. })
}

fn builtin_faults() -> BTreeMap<String, ServerFault> {
    let mut m = BTreeMap::new();
    let mut add = |name: &str, doc: &str, f: Vec<Fault<Step>>, ext: Option<Vec<&str>>| {
        let mut smtp = SmtpConfig::default();
        if let Some(e) = ext {
            smtp.extensions = e.into_iter().map(str::to_string).collect();
        }
        let w = f.iter().any(|x| waits(&x.action));
        smtp.faults = f;
        m.insert(
            name.to_string(),
            ServerFault {
                doc: doc.to_string(),
                smtp,
                listener: None,
                waits: w,
                target: Target::FakeServer,
            },
        );
    };
    add("none", "a well-behaved server", vec![], None);
    add(
        "hang-tls_handshake",
        "reads the ClientHello and never answers (SPEC §3.2: the handshake times out)",
        vec![fault(Step::TlsHandshake, None, Action::Hang)],
        None,
    );
    let steps = crate::cases::STEP_REPLIES;
    for (step, c4, t4, c5, t5) in steps {
        for (code, text) in [(c4, t4), (c5, t5)] {
            add(
                &format!("{}-{code}", step.name()),
                &format!("{code} at {}", step.name()),
                vec![fault(*step, None, reply(*code, text))],
                None,
            );
        }
    }
    for code in [500u16, 502] {
        add(
            &format!("ehlo-{code}-helo"),
            "EHLO unknown: HELO, no extensions",
            vec![fault(
                Step::Ehlo,
                None,
                reply(code, "5.5.2 Command unrecognized"),
            )],
            None,
        );
    }
    add(
        "ehlo-502-helo-501",
        "EHLO and HELO refused",
        vec![
            fault(Step::Ehlo, None, reply(502, "5.5.1 no")),
            fault(Step::Helo, None, reply(501, "5.5.4 Syntax error")),
        ],
        None,
    );
    add(
        "rcpt2-450",
        "the second RCPT deferred once",
        vec![fault(Step::Rcpt, Some(2), reply(450, "4.2.0 Mailbox busy"))],
        None,
    );
    add(
        "extensions-none",
        "EHLO with no extensions",
        vec![],
        Some(vec![]),
    );
    add(
        "extensions-size-0",
        "SIZE 0 (no limit)",
        vec![],
        Some(vec!["SIZE 0", "8BITMIME"]),
    );
    for step in [Step::Greeting, Step::Ehlo, Step::EndOfData, Step::Quit] {
        add(
            &format!("hang-{}", step.name()),
            "never answers",
            vec![fault(step, None, Action::Hang)],
            None,
        );
    }
    for step in [Step::Greeting, Step::Mail, Step::Quit] {
        add(
            &format!("drop-{}", step.name()),
            "hangs up",
            vec![fault(step, None, Action::Drop)],
            None,
        );
    }
    add(
        "starttls-tls-abort",
        "the TLS handshake cut off",
        vec![fault(Step::TlsHandshake, None, Action::AbortTls)],
        None,
    );
    add(
        "rcpt-530",
        "530 to every RCPT: a server that wants AUTH first (SPEC §3.7: auth_required with AUTH off)",
        vec![fault(
            Step::Rcpt,
            None,
            reply(530, "5.7.0 Authentication required"),
        )],
        None,
    );
    add(
        "recipient-refused",
        "one recipient refused by policy",
        vec![],
        None,
    );
    add(
        "auth-334-malformed",
        "AUTH offered (LOGIN, PLAIN), its challenge not base64 (RFC 4954 §4: the device cancels, auth_failed)",
        vec![fault(Step::Auth, None, reply(334, "not base64!"))],
        None,
    );
    target_faults(&mut m);
    if let Some(f) = m.get_mut("auth-334-malformed") {
        f.smtp.auth = vec![Mechanism::Login, Mechanism::Plain];
        f.smtp.accounts = vec![Account {
            user: AUTH_USER.into(),
            password: AUTH_PASSWORD.into(),
            realm: None,
            token: None,
        }];
    }
    if let Some(f) = m.get_mut("recipient-refused") {
        f.smtp.policy.recipients = vec![RecipientRule {
            address: "b@hil.test".into(),
            code: 550,
            text: "5.1.1 <b@hil.test>: Recipient address rejected: User unknown".into(),
        }];
    }
    m
}

/// The settings a case is predicted with when no runner gives the server's address:
/// the servers on 127.0.0.1 (the POP one too), then the case's own.
fn nominal_pairs(case: &Case) -> Vec<(Key, String)> {
    let mut pairs = vec![
        (Key::SmtpServer, "127.0.0.1".to_string()),
        (Key::PopServer, "127.0.0.1".to_string()),
    ];
    pairs.extend(case.settings.iter().cloned());
    pairs
}

/// Whether a server has a script beyond its configuration: faults or policies.
fn scripted(c: &SmtpConfig) -> bool {
    let p = &c.policy;
    !c.faults.is_empty()
        || p.require_auth
        || p.max_size.is_some()
        || p.refuse_bare_lf
        || !p.recipients.is_empty()
        || p.pop_before_smtp_window_s.is_some()
}

/// The built-in values of `server.fault` that point the device at another target
/// than the fake server: a closed port, and one whose connects are never answered.
fn target_faults(m: &mut BTreeMap<String, ServerFault>) {
    for (name, doc, target, waits) in [
        (
            "nothing-listening",
            "a closed port: the connect is refused (connect)",
            Target::ClosedPort,
            false,
        ),
        (
            "connect-silent",
            "a port whose connects are never answered (SPEC §3.2: the connect times out)",
            Target::SilentPort,
            true,
        ),
    ] {
        m.insert(
            name.to_string(),
            ServerFault {
                doc: doc.into(),
                smtp: SmtpConfig::default(),
                listener: None,
                waits,
                target,
            },
        );
    }
}

/// Why the oracle cannot model a scenario file (it is then left out), if so.
fn unmodelled(s: &Scenario) -> Option<String> {
    let Some(smtp) = &s.smtp else {
        return Some(if s.pop3.is_some() {
            "POP3 only (a server.pop_fault value when it scripts faults or APOP)".into()
        } else {
            "no [smtp] part".into()
        });
    };
    if s.pop3.is_some() {
        return Some("it has a [pop3] part (the pop section runs its own POP server)".into());
    }
    if smtp.faults.iter().any(|f| f.when.probability.is_some()) {
        return Some("a probabilistic fault".into());
    }
    if smtp
        .faults
        .iter()
        .any(|f| matches!(f.action, Action::Throttle { .. }))
    {
        return Some("a throttled answer (how long it takes depends on the line's length)".into());
    }
    if smtp.auth_accept.is_some() {
        return Some("auth_accept (mechanisms offered but refused)".into());
    }
    if smtp.listeners.len() != 1 {
        return Some("more than one listener".into());
    }
    if let Some(l) = smtp.listeners.first() {
        if l.role.is_some() {
            return Some("a listener with a role (the harness decides the ports)".into());
        }
        if let Some(c) = &l.cert {
            if *c != hil_mail::tls::CertSpec::Zoo("valid".into()) {
                return Some("a certificate other than the zoo's `valid`".into());
            }
        }
    }
    None
}

/// The case's POP3 server: the harness's account, with the row's POP fault.
fn pop_of(g: &Get) -> hil_mail::pop3::Pop3Config {
    let mut pop = model::pop_server();
    if let Some(f) = g.ctx.pop_faults.get(g.v(Dim::ServerPopFault)) {
        pop.faults = f.pop.faults.clone();
        pop.apop = f.pop.apop;
        pop.refuse_apop = f.pop.refuse_apop;
    }
    pop
}

/// The built-in POP3 faults: silence, a hang-up, refusals and junk at each step
/// before the login completes, and a server without APOP.
fn builtin_pop_faults() -> BTreeMap<String, PopFault> {
    use hil_mail::pop3::Pop3Step as P;
    let mut m = BTreeMap::new();
    let mut add = |name: &str, doc: &str, faults: Vec<Fault<P>>, apop: bool| {
        let waits = faults.iter().any(|f| waits(&f.action));
        let mut pop = hil_mail::pop3::Pop3Config {
            faults,
            apop,
            ..Default::default()
        };
        pop.accounts.clear();
        m.insert(
            name.to_string(),
            PopFault {
                doc: doc.into(),
                pop,
                waits,
            },
        );
    };
    let at = |step: P, action: Action| Fault {
        step,
        when: When {
            nth: None,
            probability: None,
        },
        action,
    };
    let line = |t: &str| Action::Line { text: t.into() };
    add("none", "a well-behaved POP3 server", vec![], true);
    add(
        "pop-hang-greeting",
        "never greets",
        vec![at(P::Greeting, Action::Hang)],
        true,
    );
    add(
        "pop-hang-pass",
        "never answers PASS",
        vec![at(P::Pass, Action::Hang)],
        true,
    );
    add(
        "pop-hang-apop",
        "never answers APOP",
        vec![at(P::Apop, Action::Hang)],
        true,
    );
    add(
        "pop-drop-user",
        "hangs up at USER",
        vec![at(P::User, Action::Drop)],
        true,
    );
    add(
        "pop-err-greeting",
        "-ERR as its greeting",
        vec![at(P::Greeting, line("-ERR busy"))],
        true,
    );
    add(
        "pop-garbage-pass",
        "junk for PASS's answer",
        vec![at(P::Pass, Action::Garbage)],
        true,
    );
    add(
        "pop-stls-refused",
        "refuses STLS",
        vec![at(P::Stls, line("-ERR not now"))],
        true,
    );
    add(
        "pop-tls-abort",
        "cuts the TLS handshake off",
        vec![at(P::TlsHandshake, Action::AbortTls)],
        true,
    );
    add(
        "pop-hang-tls",
        "never answers the ClientHello (the handshake times out)",
        vec![at(P::TlsHandshake, Action::Hang)],
        true,
    );
    add(
        "pop-no-apop",
        "no APOP timestamp in the greeting",
        vec![],
        false,
    );
    m
}

/// The POP3 part of each scenario that has one and no SMTP part, as `server.pop_fault`
/// values (`scenario:NAME`): its faults and APOP behaviour (its accounts, listeners
/// and mailbox stay the harness's).
fn scenario_pop_faults(dir: &Path) -> Result<BTreeMap<String, PopFault>, BuildError> {
    let library = Scenario::load_dir(dir).map_err(|e| BuildError::Scenarios(e.to_string()))?;
    let mut m = BTreeMap::new();
    for s in library {
        let (None, Some(p)) = (&s.smtp, &s.pop3) else {
            continue;
        };
        // Probabilistic faults cannot be predicted; a part that scripts nothing
        // (listeners only) is what `pop.tls` already varies.
        if p.faults.iter().any(|f| f.when.probability.is_some())
            || (p.faults.is_empty() && p.apop && !p.refuse_apop)
        {
            continue;
        }
        let waits = p.faults.iter().any(|f| waits(&f.action));
        m.insert(
            format!("scenario:{}", s.name),
            PopFault {
                doc: s.description.clone(),
                pop: p.clone(),
                waits,
            },
        );
    }
    Ok(m)
}

/// Server faults by name, and the scenario files left out with why.
type Catalogue = (BTreeMap<String, ServerFault>, Vec<(String, String)>);

fn scenario_faults(dir: &Path) -> Result<Catalogue, BuildError> {
    let mut m = BTreeMap::new();
    let mut excluded = Vec::new();
    let library = Scenario::load_dir(dir).map_err(|e| BuildError::Scenarios(e.to_string()))?;
    for s in library {
        if let Some(why) = unmodelled(&s) {
            excluded.push((s.name.clone(), why));
            continue;
        }
        let Some(smtp) = s.smtp.clone() else { continue };
        let kind = smtp
            .listeners
            .first()
            .map(|l| l.kind)
            .unwrap_or(ListenerKind::Plain);
        let w = smtp.faults.iter().any(|x| waits(&x.action));
        m.insert(
            format!("scenario:{}", s.name),
            ServerFault {
                doc: s.description.clone(),
                smtp,
                listener: (kind != ListenerKind::Plain).then_some(kind),
                waits: w,
                target: Target::FakeServer,
            },
        );
    }
    Ok((m, excluded))
}

/// The zoo's server certificates, from `manifest.toml`.
pub fn load_certs(dir: &Path) -> Result<BTreeMap<String, CertFacts>, BuildError> {
    #[derive(Deserialize)]
    struct M {
        #[serde(default)]
        ca: BTreeMap<String, Ca>,
        cert: Vec<CertFacts>,
    }
    #[derive(Deserialize)]
    struct Ca {
        #[serde(default)]
        not_after: Option<String>,
    }
    let path = dir.join("manifest.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(source) => return Err(BuildError::ReadManifest { path, source }),
    };
    let m: M = match toml::from_str(&text) {
        Ok(m) => m,
        Err(e) => {
            return Err(BuildError::ParseManifest {
                path,
                message: e.message().to_string(),
            })
        }
    };
    let ca = m.ca;
    Ok(m.cert
        .into_iter()
        .map(|mut c| {
            c.issuer_not_after = c
                .issuer
                .as_ref()
                .and_then(|i| ca.get(i))
                .and_then(|ca| ca.not_after.clone());
            (c.name.clone(), c)
        })
        .collect())
}

impl Matrix {
    /// The model for a zoo (`certs`), a scenario library and the profile's variants.
    pub fn build(
        certs: &Path,
        scenarios: &Path,
        facts: &DeviceFacts,
    ) -> Result<Matrix, BuildError> {
        let certs = load_certs(certs)?;
        let mut faults = builtin_faults();
        let (sf, excluded) = scenario_faults(scenarios)?;
        faults.extend(sf);
        let mut pop_faults = builtin_pop_faults();
        pop_faults.extend(scenario_pop_faults(scenarios)?);
        let mut dims = dims();
        debug_assert!(
            dims.iter().map(|d| d.name).eq(Dim::ALL.iter().copied()),
            "every dimension once, in Dim's order"
        );
        for d in &mut dims {
            if let Some(values) = filled_values(d.name, &certs, &faults, &pop_faults, facts) {
                d.values = values;
            }
            mark_unsupported(d, facts);
        }
        if !certs.contains_key("valid") {
            return Err(BuildError::NoValidCertificate);
        }
        Ok(Matrix {
            dims,
            sections: sections(),
            ctx: Ctx {
                certs,
                faults,
                pop_faults,
                variants: facts.variants.clone(),
                facts: facts.clone(),
                excluded,
            },
        })
    }

    /// A row (one value index per dimension) as the relevance rules see it.
    pub fn view<'a>(&'a self, row: &'a [usize]) -> Get<'a> {
        Get {
            dims: &self.dims,
            row,
            ctx: &self.ctx,
            read: Cell::new(0),
            explained: Cell::new(0),
        }
    }

    /// Why dimension `i` does not matter in `row` (`None`: it matters).
    pub fn collapsed(&self, row: &[usize], i: usize) -> Option<&'static str> {
        (self.dims[i].relevant)(&self.view(row))
    }

    /// [`Matrix::collapsed`] as the masking-aware search (`masking`) needs it: whether
    /// dimension `i` does not matter in `row`, the dimensions the answer read (a bit
    /// per `Dim::index`: the answer holds for every row that agrees with `row` on
    /// them), and for "does not matter" the fewer dimensions that explain it (every
    /// row that agrees on those gets "does not matter" too, maybe for another reason).
    pub(crate) fn collapsed_reading(&self, row: &[usize], i: usize) -> (bool, u64, u64) {
        let g = self.view(row);
        let collapsed = (self.dims[i].relevant)(&g).is_some();
        (collapsed, g.read.get(), g.explained.get())
    }

    /// Whether [`Matrix::normalise`] rewrites `row`'s `server.listener` to `matching`
    /// (it names the listener the TLS mode expects), and the dimensions that read.
    pub(crate) fn listener_renamed_reading(&self, row: &[usize]) -> (bool, u64) {
        let g = self.view(row);
        let renamed = explicit_listener(&g) == Some(matching(&g));
        (renamed, g.read.get())
    }

    /// Every dimension that does not matter set to its base value, in order.
    pub fn normalise(&self, row: &mut [usize]) {
        let listener = Dim::ServerListener.index();
        for i in 0..self.dims.len() {
            if self.collapsed(row, i).is_some() {
                row[i] = 0;
            }
            // The listener the TLS mode expects, named explicitly, is `matching`.
            if i == listener {
                let g = self.view(row);
                if explicit_listener(&g) == Some(matching(&g)) {
                    row[i] = 0;
                }
            }
        }
    }

    /// Exhaustive mode: each section's relevant combinations, then one case per
    /// invalid value.
    pub fn exhaustive(&self) -> Vec<Row> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for s in &self.sections {
            let idx: Vec<usize> = s.dims.iter().map(|d| d.index()).collect();
            let mut row = vec![0usize; self.dims.len()];
            self.enumerate(s, &idx, 0, &mut row, &mut |r| {
                if seen.insert(r.to_vec()) {
                    out.push(Row {
                        section: s.name.to_string(),
                        values: r.to_vec(),
                    });
                }
            });
        }
        for r in self.invalid_rows() {
            if seen.insert(r.values.clone()) {
                out.push(r);
            }
        }
        out
    }

    fn enumerate(
        &self,
        sec: &Section,
        idx: &[usize],
        k: usize,
        row: &mut Vec<usize>,
        emit: &mut dyn FnMut(&[usize]),
    ) {
        if k == idx.len() {
            let mut r = row.clone();
            self.normalise(&mut r);
            emit(&r);
            return;
        }
        let i = idx[k];
        if self.collapsed(row, i).is_some() {
            row[i] = 0;
            return self.enumerate(sec, idx, k + 1, row, emit);
        }
        let only = sec
            .only
            .iter()
            .find(|(d, _)| *d == self.dims[i].name)
            .map(|(_, v)| *v);
        for (j, val) in self.dims[i].values.iter().enumerate() {
            if val.invalid || only.is_some_and(|o| !o.contains(&val.name.as_str())) {
                continue;
            }
            row[i] = j;
            self.enumerate(sec, idx, k + 1, row, emit);
        }
        row[i] = 0;
    }

    /// One row per invalid value, everything else at base.
    pub fn invalid_rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        for (i, d) in self.dims.iter().enumerate() {
            for (j, val) in d.values.iter().enumerate() {
                if val.invalid {
                    let mut values = vec![0usize; self.dims.len()];
                    values[i] = j;
                    out.push(Row {
                        section: "invalid".into(),
                        values,
                    });
                }
            }
        }
        out
    }

    /// The valid values of dimension `i`, as indexes into its value list.
    pub fn valid_values(&self, i: usize) -> Vec<usize> {
        let v: Vec<usize> = (0..self.dims[i].values.len())
            .filter(|j| !self.dims[i].values[*j].invalid)
            .collect();
        if v.is_empty() {
            vec![0]
        } else {
            v
        }
    }

    /// The covering-array model: every dimension with its valid values (an invalid
    /// value is refused whatever the rest, so it gets one case of its own).
    pub fn covering_model(&self) -> covering::Model {
        covering::Model::new(
            self.dims
                .iter()
                .enumerate()
                .map(|(i, d)| covering::Param::new(d.name.as_str(), self.valid_values(i).len()))
                .collect(),
        )
    }

    /// The covering array `--matrix pairwise`, `3-way` and `4-way` run (seeded), then
    /// one case per invalid value: for t = 2 and 3 masking-aware (`masking`: every
    /// testable t-tuple in a row where each of its dimensions matters), for t = 4 the
    /// plain array ([`Matrix::plain_covering`]), masking-aware 4-way being out of reach
    /// on the project's model.
    pub fn covering(&self, t: usize, seed: u64) -> Result<Vec<Row>, covering::CoveringError> {
        Ok(self.covering_array(t, seed)?.rows)
    }

    /// [`Matrix::covering`]'s rows and, for t = 2 and 3, what they cover (the plain
    /// array's figures, [`Matrix::plain_coverage`], left to the caller: they cost a
    /// plain generation).
    pub fn covering_array(
        &self,
        t: usize,
        seed: u64,
    ) -> Result<CoveringArray, covering::CoveringError> {
        if t == 4 {
            return Ok(CoveringArray {
                rows: self.plain_covering(t, seed)?,
                coverage: None,
            });
        }
        let (rows, mut coverage) = masking::generate(self, t, seed)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for values in rows {
            if seen.insert(values.clone()) {
                out.push(Row {
                    section: format!("{t}-way"),
                    values,
                });
            }
        }
        let array = out.len();
        for r in self.invalid_rows() {
            if seen.insert(r.values.clone()) {
                out.push(r);
            }
        }
        coverage.refusals = out.len() - array;
        Ok(CoveringArray {
            rows: out,
            coverage: Some(coverage),
        })
    }

    /// The plain t-way covering array over every dimension's valid values (seeded),
    /// each row then reduced (don't-cares at base, duplicates dropped), then one case
    /// per invalid value: what `--matrix pairwise` ran before issue 16, and 4-way still.
    /// Normalising loses the tuples whose dimensions a row's earlier values mask.
    pub fn plain_covering(&self, t: usize, seed: u64) -> Result<Vec<Row>, covering::CoveringError> {
        let mut out = self.plain_rows(t, seed)?.1;
        let mut seen: BTreeSet<Vec<usize>> = out.iter().map(|r| r.values.clone()).collect();
        for r in self.invalid_rows() {
            if seen.insert(r.values.clone()) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The plain array's size before normalising, and its distinct normalised rows.
    fn plain_rows(
        &self,
        t: usize,
        seed: u64,
    ) -> Result<(usize, Vec<Row>), covering::CoveringError> {
        let model = self.covering_model();
        let valid: Vec<Vec<usize>> = (0..self.dims.len()).map(|i| self.valid_values(i)).collect();
        let rows = covering::generate(&model, t, seed)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in &rows {
            let mut r: Vec<usize> = r.iter().enumerate().map(|(i, j)| valid[i][*j]).collect();
            self.normalise(&mut r);
            if seen.insert(r.clone()) {
                out.push(Row {
                    section: format!("{t}-way"),
                    values: r,
                });
            }
        }
        Ok((rows.len(), out))
    }

    /// The plain t-way array's figures beside a masking-aware one's: its rows, its
    /// cases after normalisation, and how many testable t-tuples those still test
    /// (t = 2 or 3).
    pub fn plain_coverage(
        &self,
        t: usize,
        seed: u64,
    ) -> Result<masking::PlainCoverage, covering::CoveringError> {
        let (rows, normalised) = self.plain_rows(t, seed)?;
        Ok(masking::PlainCoverage {
            rows,
            normalised: normalised.len(),
            covered: self.held_tuples(t, &normalised)?,
        })
    }

    /// How many t-tuples of valid values (t = 2 or 3) `rows` hold with every dimension
    /// relevant: each such tuple is testable, so this is the testable tuples the rows
    /// cover. Rows with an invalid value (refusal cases) hold none.
    pub fn held_tuples(&self, t: usize, rows: &[Row]) -> Result<usize, covering::CoveringError> {
        let rows: Vec<Vec<usize>> = rows
            .iter()
            .filter(|r| {
                r.values
                    .iter()
                    .enumerate()
                    .all(|(i, j)| !self.dims[i].values[*j].invalid)
            })
            .map(|r| r.values.clone())
            .collect();
        masking::held_by(self, t, &rows)
    }

    /// The full product's size (every value of every dimension), as a float.
    pub fn full_size(&self) -> f64 {
        self.dims
            .iter()
            .map(|d| d.values.len().max(1) as f64)
            .product()
    }

    /// The case id of a row: its section and its non-base values.
    pub fn id(&self, row: &Row) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .zip(&row.values)
            .filter(|(_, j)| **j != 0)
            .map(|(d, j)| format!("{}={}", d.name, d.values[*j].name))
            .collect();
        if parts.is_empty() {
            format!("{}/base", row.section)
        } else {
            format!("{}/{}", row.section, parts.join(","))
        }
    }

    /// The row a case id names (`section/dim=value,…`, the values not named at base):
    /// what `hil run --case ID` runs. A value may itself hold commas
    /// (`smtp.auth.methods=plain,cram-md5`).
    pub fn parse_id(&self, id: &str) -> Result<Row, IdError> {
        let (section, rest) = id
            .split_once('/')
            .ok_or_else(|| IdError::NotAnId { id: id.to_string() })?;
        let known = self.sections.iter().any(|s| s.name == section)
            || section == "invalid"
            || section == "fuzz"
            || section.ends_with("-way");
        if !known {
            return Err(IdError::NoSection {
                id: id.to_string(),
                section: section.to_string(),
            });
        }
        let mut values = vec![0usize; self.dims.len()];
        if rest != "base" {
            for p in id_parts(rest) {
                let (d, j) = self.parse_part(id, &p)?;
                values[d.index()] = j;
            }
        }
        let row = Row {
            section: section.to_string(),
            values,
        };
        let canonical = self.id(&row);
        if canonical != id {
            return Err(IdError::NotCanonical {
                id: id.to_string(),
                canonical,
            });
        }
        Ok(row)
    }

    /// One `DIM=VALUE` of id `id`: the dimension and the value's index.
    fn parse_part(&self, id: &str, part: &str) -> Result<(Dim, usize), IdError> {
        let (name, value) = part.split_once('=').ok_or_else(|| IdError::NotDimValue {
            id: id.to_string(),
            part: part.to_string(),
        })?;
        let d: Dim = name.parse().map_err(|_| IdError::NoDimension {
            id: id.to_string(),
            name: name.to_string(),
        })?;
        let j = self.dims[d.index()]
            .values
            .iter()
            .position(|v| v.name == value)
            .ok_or_else(|| IdError::NoValue {
                id: id.to_string(),
                dim: d,
                value: value.to_string(),
            })?;
        Ok((d, j))
    }

    /// Every value of a row by dimension.
    pub fn dims_of(&self, row: &Row) -> BTreeMap<Dim, String> {
        self.dims
            .iter()
            .zip(&row.values)
            .map(|(d, j)| (d.name, d.values[*j].name.clone()))
            .collect()
    }

    /// The case a row stands for.
    /// The `server.fault` values among `rows` (built-in faults and scenarios, not
    /// the well-behaved server) that no case of `rows` meets, as the oracle walks
    /// them: the fault's step is never reached, or its policy never applied — a
    /// value whose cases would pass whatever the device did with the fault. A value
    /// with no fault and no policy (other extensions, AUTH offers, a greeting) is met
    /// when the device is greeted. Each with why.
    pub fn never_met(&self, rows: &[Row]) -> Vec<(String, &'static str)> {
        let mut out = self.never_met_pop(rows);
        let fi = Dim::ServerFault.index();
        let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
        for r in rows {
            let name = self.dims[fi].values[r.values[fi]].name.as_str();
            if name == "none" || self.dims[fi].values[r.values[fi]].invalid {
                continue;
            }
            if seen.get(name).copied().unwrap_or(false) {
                continue;
            }
            let Some(f) = self.ctx.faults.get(name) else {
                continue;
            };
            let case = self.case(r);
            let pairs = nominal_pairs(&case);
            let met = crate::oracle::predict_pairs(&case, &pairs, &self.ctx.facts).is_ok_and(|p| {
                if f.target != Target::FakeServer {
                    p.reach.target
                } else if scripted(&f.smtp) {
                    p.reach.scripted
                } else {
                    p.reach.greeted
                }
            });
            *seen.entry(name).or_default() |= met;
        }
        out.extend(seen.into_iter().filter(|(_, met)| !met).map(|(name, _)| {
            let why = if self.ctx.faults.get(name).is_some_and(|f| scripted(&f.smtp)) {
                "no case reaches its scripted step or policy"
            } else {
                "no case gets as far as the server's greeting"
            };
            (name.to_string(), why)
        }));
        out
    }

    /// [`Matrix::never_met`] for `server.pop_fault`: values whose POP3 fault (or APOP
    /// behaviour) no case of `rows` meets. Named `server.pop_fault=VALUE`.
    fn never_met_pop(&self, rows: &[Row]) -> Vec<(String, &'static str)> {
        let pi = Dim::ServerPopFault.index();
        let mut seen: BTreeMap<&str, bool> = BTreeMap::new();
        for r in rows {
            let v = &self.dims[pi].values[r.values[pi]];
            if v.name == "none" || seen.get(v.name.as_str()).copied().unwrap_or(false) {
                continue;
            }
            let case = self.case(r);
            let pairs = nominal_pairs(&case);
            let met = crate::oracle::predict_pairs(&case, &pairs, &self.ctx.facts)
                .is_ok_and(|p| p.reach.pop_scripted);
            *seen.entry(v.name.as_str()).or_default() |= met;
        }
        seen.into_iter()
            .filter(|(_, met)| !met)
            .map(|(name, _)| {
                (
                    format!("server.pop_fault={name}"),
                    "no case reaches its scripted POP3 step",
                )
            })
            .collect()
    }

    pub fn case(&self, row: &Row) -> Case {
        build_case(self, row)
    }

    /// What `hil matrix` prints: per dimension, its values and why it collapsed; per
    /// section, its size; the full product and the reduced count.
    pub fn explain(&self, rows: &[Row]) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{} dimensions; full product {:.3e} combinations\n\n",
            self.dims.len(),
            self.full_size()
        ));
        let mut per_section: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rows {
            *per_section.entry(r.section.as_str()).or_default() += 1;
        }
        s.push_str("sections:\n");
        for sec in &self.sections {
            s.push_str(&format!(
                "  {:<9} {:>5} cases  {}\n            varies: {}\n",
                sec.name,
                per_section.get(sec.name).copied().unwrap_or(0),
                sec.doc,
                sec.dims
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (name, n) in &per_section {
            if !self.sections.iter().any(|x| x.name == *name) {
                s.push_str(&format!("  {name:<9} {n:>5} cases\n"));
            }
        }
        s.push_str("\ndimensions (values, ~ invalid; why a dimension collapsed to its base value, in how many rows):\n");
        for (i, d) in self.dims.iter().enumerate() {
            let values: Vec<String> = d
                .values
                .iter()
                .map(|v| {
                    if v.invalid {
                        format!("~{}", v.name)
                    } else {
                        v.name.clone()
                    }
                })
                .collect();
            let shown = if values.len() > 12 {
                format!("{} … ({} values)", values[..12].join(" "), values.len())
            } else {
                values.join(" ")
            };
            s.push_str(&format!("  {}: {}\n      {}\n", d.name, d.doc, shown));
            let mut why: BTreeMap<&str, usize> = BTreeMap::new();
            let mut varied = BTreeSet::new();
            for r in rows {
                match self.collapsed(&r.values, i) {
                    Some(w) if r.section != "invalid" => *why.entry(w).or_default() += 1,
                    _ => {
                        varied.insert(r.values[i]);
                    }
                }
            }
            s.push_str(&format!("      takes {} distinct values\n", varied.len()));
            for (w, n) in why {
                s.push_str(&format!("      collapsed in {n} rows: {w}\n"));
            }
        }
        if !self.ctx.excluded.is_empty() {
            s.push_str("\nscenario files not in server.fault:\n");
            for (n, w) in &self.ctx.excluded {
                s.push_str(&format!("  {n}: {w}\n"));
            }
        }
        s.push_str(&format!(
            "\nfull product {:.3e}, reduced {} cases\n",
            self.full_size(),
            rows.len()
        ));
        s
    }
}

/// A case id's `DIM=VALUE` parts; a token without `=` continues the value before it
/// (`smtp.auth.methods=plain,cram-md5`).
fn id_parts(rest: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for tok in rest.split(',') {
        match (tok.contains('='), parts.last_mut()) {
            (false, Some(last)) => {
                last.push(',');
                last.push_str(tok);
            }
            _ => parts.push(tok.to_string()),
        }
    }
    parts
}

/// The values of a dimension the model fills in when it is built: the zoo's
/// certificates and the fault catalogue (base value first), and the values the
/// device's facts decide. `None` for a dimension whose values are fixed.
fn filled_values(
    name: Dim,
    certs: &BTreeMap<String, CertFacts>,
    faults: &BTreeMap<String, ServerFault>,
    pop_faults: &BTreeMap<String, PopFault>,
    facts: &DeviceFacts,
) -> Option<Vec<Val>> {
    let base_first = |names: Vec<&String>, base: &str| {
        let mut names: Vec<String> = names.into_iter().cloned().collect();
        names.sort_by_key(|n| (n != base, n.clone()));
        names
            .into_iter()
            .map(|name| Val {
                name,
                invalid: false,
            })
            .collect()
    };
    Some(match name {
        Dim::ServerCert => base_first(certs.keys().collect(), "valid"),
        Dim::ServerFault => base_first(faults.keys().collect(), "none"),
        Dim::ServerPopFault => base_first(pop_faults.keys().collect(), "none"),
        Dim::SmtpAuthMethods => methods_values(facts),
        Dim::SmtpTimeout => ranged_values(Key::SmtpTimeout, facts),
        Dim::PopBeforeSmtpWait => ranged_values(Key::PopBeforeSmtpWait, facts),
        Dim::LoadSplitSize => ranged_values(Key::LoadSplitSize, facts),
        Dim::LoadServerCapacity => ranged_values(Key::LoadServerCapacity, facts),
        _ => return None,
    })
}

/// A value of a setting's dimension that needs a feature the firmware lacks is an
/// invalid value: tested once, alone, to be refused, and in no other case.
fn mark_unsupported(d: &mut Dimension, facts: &DeviceFacts) {
    let Ok(key) = d.name.as_str().parse::<Key>() else {
        return;
    };
    for v in &mut d.values {
        if facts.lacks(key, &v.name).is_some() {
            v.invalid = true;
        }
    }
}

/// The values of the matrix that the firmware's facts make refusal cases only
/// (features it lacks), as `(dimension, value, feature)`.
pub fn unsupported_values(m: &Matrix) -> Vec<(Dim, String, &'static str)> {
    let mut out = Vec::new();
    for d in &m.dims {
        let Ok(key) = d.name.as_str().parse::<Key>() else {
            continue;
        };
        for v in &d.values {
            if let Some(f) = m.ctx.facts.lacks(key, &v.name) {
                out.push((d.name, v.name.clone(), f));
            }
        }
    }
    out
}

/// The listener `server.listener` names explicitly (`matching` and
/// `starttls_refused` name none).
fn explicit_listener(g: &Get) -> Option<ListenerKind> {
    if g.is(Dim::ServerListener, "plain") {
        Some(ListenerKind::Plain)
    } else if g.is(Dim::ServerListener, "starttls") {
        Some(ListenerKind::Starttls)
    } else if g.is(Dim::ServerListener, "tls") {
        Some(ListenerKind::Tls)
    } else {
        None
    }
}

// ---- From a row to a case. ----

/// A 320-character address (the longest `device.address` SPEC allows).
fn address_of_len(n: usize) -> String {
    let domain = "@hil.test";
    format!("{}{domain}", "d".repeat(n.saturating_sub(domain.len())))
}

/// The setting a dimension of the same name stands for, when the dimension's values
/// are given to the device as they are.
fn verbatim_key(d: Dim) -> Option<Key> {
    Some(match d {
        Dim::EmailEnabled => Key::EmailEnabled,
        Dim::EmailScan => Key::EmailScan,
        Dim::EmailNotify => Key::EmailNotify,
        Dim::EmailCounter => Key::EmailCounter,
        Dim::SmtpTls => Key::SmtpTls,
        Dim::PopTls => Key::PopTls,
        Dim::PopApop => Key::PopApop,
        Dim::PopBeforeSmtpEnabled => Key::PopBeforeSmtpEnabled,
        Dim::LoadMode => Key::LoadMode,
        Dim::LoadSplitSize => Key::LoadSplitSize,
        Dim::LoadMaxSize => Key::LoadMaxSize,
        Dim::LoadServerCapacity => Key::LoadServerCapacity,
        Dim::SmtpTimeout => Key::SmtpTimeout,
        Dim::PopBeforeSmtpWait => Key::PopBeforeSmtpWait,
        Dim::SmtpAuthEnabled => Key::SmtpAuthEnabled,
        Dim::SmtpAuthSource => Key::SmtpAuthSource,
        Dim::EnvelopeFromMode => Key::EnvelopeFromMode,
        Dim::SmtpVerifyExpiry => Key::SmtpVerifyExpiry,
        Dim::SmtpVerifyCn => Key::SmtpVerifyCn,
        Dim::SmtpVerifyKeyUsage => Key::SmtpVerifyKeyUsage,
        Dim::SmtpVerifyChain => Key::SmtpVerifyChain,
        Dim::SmtpVerifyRevocation => Key::SmtpVerifyRevocation,
        _ => return None,
    })
}

/// The settings a dimension's value stands for (none for server-side dimensions).
fn setting_of(d: &Dimension, val: &Val) -> Vec<(Key, String)> {
    let raw = val.name.as_str();
    let is = |value: &str| d.is(val, value);
    let set_or_empty = |set: &str| {
        if is("set") {
            set.to_string()
        } else {
            String::new()
        }
    };
    if let Some(key) = verbatim_key(d.name) {
        return vec![(key, raw.to_string())];
    }
    match d.name {
        Dim::SmtpServer if is("ipv4") => vec![],
        Dim::SmtpServer if is("empty") => vec![(Key::SmtpServer, String::new())],
        Dim::SmtpServer => vec![(Key::SmtpServer, raw.to_string())],
        Dim::DeviceAddress => vec![(Key::DeviceAddress, device_address(d, val))],
        Dim::EnvelopeFromAddress if is("set") || is("empty") => {
            vec![(Key::EnvelopeFromAddress, set_or_empty("bounces@hil.test"))]
        }
        Dim::EnvelopeFromAddress => vec![(Key::EnvelopeFromAddress, device_address(d, val))],
        Dim::AdminAddress if is("set") || is("empty") => {
            vec![(Key::AdminAddress, set_or_empty(crate::cases::ADMIN))]
        }
        Dim::AdminAddress => vec![(Key::AdminAddress, device_address(d, val))],
        Dim::SmtpAuthMethods if is("default") => vec![],
        Dim::SmtpAuthMethods => vec![(Key::SmtpAuthMethods, raw.to_string())],
        Dim::SmtpAuthPassword => auth_credentials(d, val),
        Dim::SmtpAuthRealm if is("set") => vec![(Key::SmtpAuthRealm, REALM.into())],
        Dim::SmtpAuthRealm if is("over253") => vec![(Key::SmtpAuthRealm, "r".repeat(254))],
        Dim::PopPassword => pop_credentials(d, val),
        Dim::SmtpPort if val.invalid => vec![(Key::SmtpPort, raw.to_string())],
        Dim::SmtpSslPort if val.invalid => vec![(Key::SmtpSslPort, raw.to_string())],
        Dim::SmtpAuthUser if val.invalid => vec![(Key::SmtpAuthUser, "u".repeat(65))],
        Dim::PopServer if is("harness") => vec![],
        Dim::PopServer if is("empty") => vec![(Key::PopServer, String::new())],
        Dim::PopServer => vec![(Key::PopServer, raw.to_string())],
        Dim::PopUser if is("wrong") => vec![(Key::PopUser, "nobody@hil.test".into())],
        Dim::PopUser if val.invalid => vec![(Key::PopUser, "u".repeat(65))],
        Dim::PopPort if val.invalid => vec![(Key::PopPort, raw.to_string())],
        Dim::PopSslPort if val.invalid => vec![(Key::PopSslPort, raw.to_string())],
        _ => vec![],
    }
}

/// An address for a value of `device.address`, `admin.address` or
/// `envelope_from.address`'s dimension (`set` and `empty` are the device's own).
fn device_address(d: &Dimension, val: &Val) -> String {
    if d.is(val, "set") {
        crate::cases::DEVICE.to_string()
    } else if d.is(val, "empty") {
        String::new()
    } else if d.is(val, "longest") {
        // SPEC §1: ≤320 characters, local part ≤64, domain ≤255 (labels ≤63).
        format!(
            "{}@{}.{}.{}.{}",
            "d".repeat(64),
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "e".repeat(63)
        )
    } else if d.is(val, "over320") {
        address_of_len(321)
    } else {
        val.name.clone()
    }
}

/// The AUTH user, password and XOAUTH2 token for a value of `smtp.auth.password`.
fn auth_credentials(d: &Dimension, val: &Val) -> Vec<(Key, String)> {
    let (pw, token) = if d.is(val, "right") {
        (AUTH_PASSWORD.to_string(), AUTH_TOKEN.to_string())
    } else if d.is(val, "max64") {
        ("p".repeat(64), AUTH_TOKEN.to_string())
    } else if d.is(val, "over64") {
        ("p".repeat(65), AUTH_TOKEN.to_string())
    } else if d.is(val, "wrong") {
        ("Wrong-Pass-9".into(), "ya29.wrong".into())
    } else {
        (val.name.clone(), AUTH_TOKEN.to_string())
    };
    vec![
        (Key::SmtpAuthUser, AUTH_USER.to_string()),
        (Key::SmtpAuthPassword, pw),
        (Key::SmtpAuthToken, token),
    ]
}

/// The POP user and password for a value of `pop.password`.
fn pop_credentials(d: &Dimension, val: &Val) -> Vec<(Key, String)> {
    let password = if d.is(val, "right") {
        POP_PASSWORD.to_string()
    } else if d.is(val, "wrong") {
        "Wrong-Pop-9".to_string()
    } else {
        val.name.clone()
    };
    vec![
        (Key::PopUser, POP_USER.to_string()),
        (Key::PopPassword, password),
    ]
}

/// `mixed` recipients against a server: every address its recipient rules name (a
/// wildcard `*@domain` as `x@domain`) between two it takes, so that a rule refusing
/// some fires while the mail still goes to the rest; three plain ones when it has
/// no rules (a fault on the second or third RCPT fires).
fn mixed_recipients(fault: Option<&ServerFault>) -> Vec<String> {
    let rules = fault.map_or(&[][..], |f| f.smtp.policy.recipients.as_slice());
    let mut to = vec!["a@hil.test".to_string()];
    for r in rules {
        let addr = match r.address.strip_prefix("*@") {
            Some(domain) => format!("x@{domain}"),
            None => r.address.clone(),
        };
        if !to.contains(&addr) {
            to.push(addr);
        }
    }
    if to.len() == 1 {
        to.push("b@hil.test".into());
    }
    to.push("c@hil.test".into());
    to
}

/// What the row sends: its trigger, with the scan's recipients and size.
fn trigger_of(g: &Get) -> TriggerSpec {
    let to: Vec<String> = if g.is(Dim::Recipients, "three") {
        ["a@hil.test", "b@hil.test", "c@hil.test"]
            .map(String::from)
            .to_vec()
    } else if g.is(Dim::Recipients, "mixed") {
        mixed_recipients(g.ctx.faults.get(g.v(Dim::ServerFault)))
    } else {
        vec!["alice@hil.test".into()]
    };
    let size_kb = g.v(Dim::ScanSizeKb).parse().unwrap_or(4);
    let scan = |user: Option<&str>| TriggerSpec::Scan {
        to: to.clone(),
        size_kb,
        user: user.map(str::to_string),
    };
    if g.is(Dim::Trigger, "scan_user") {
        scan(Some("taro"))
    } else if g.is(Dim::Trigger, "scan_guest") {
        scan(Some("guest"))
    } else if g.is(Dim::Trigger, "scan_unknown") {
        scan(Some("nobody"))
    } else if g.is(Dim::Trigger, "alert") {
        TriggerSpec::Alert(g.v(Dim::AlertKind).to_string())
    } else if g.is(Dim::Trigger, "counter") {
        TriggerSpec::Counter
    } else {
        scan(None)
    }
}

/// The notification addresses the row registers.
fn notify_of(g: &Get) -> Vec<String> {
    if g.is(Dim::Notify, "two") {
        vec!["ops@hil.test".into(), "b@hil.test".into()]
    } else if g.is(Dim::Notify, "none") {
        vec![]
    } else {
        vec!["ops@hil.test".into()]
    }
}

/// The accounts of the fake server when no scenario sets its AUTH: the configured
/// user's (in the DIGEST-MD5 realm, with an XOAUTH2 token) and the two device users'.
fn harness_accounts() -> Vec<Account> {
    vec![
        Account {
            user: AUTH_USER.into(),
            password: AUTH_PASSWORD.into(),
            realm: Some(REALM.into()),
            token: Some(AUTH_TOKEN.into()),
        },
        Account {
            user: "taro".into(),
            password: "taro-pass-1".into(),
            realm: None,
            token: Some(AUTH_TOKEN.into()),
        },
        Account {
            user: "guest".into(),
            password: "guest-pass-1".into(),
            realm: None,
            token: None,
        },
    ]
}

/// The fake SMTP server of the row: the fault's or scenario's, with the row's AUTH
/// offer and accounts (unless the scenario sets its own) and policies.
fn server_of(g: &Get, f: Option<&ServerFault>) -> SmtpConfig {
    let mut server = f.map(|f| f.smtp.clone()).unwrap_or_default();
    let scenario_auth = f.is_some_and(|f| !f.smtp.auth.is_empty());
    if !scenario_auth {
        server.auth = offer_of(g);
        // Two realms, the account's second: an empty smtp.auth.realm takes the first.
        server.realms = vec!["corp.hil.test".into(), REALM.into()];
        server.accounts = harness_accounts();
    }
    server.auth_before_tls = !g.is(Dim::ServerAuthBeforeTls, "no");
    if g.is(Dim::ServerRequireAuth, "on") {
        server.policy.require_auth = true;
    }
    if g.is(Dim::ServerPopWindow, "30") {
        server.policy.pop_before_smtp_window_s = Some(30);
    }
    if g.is(Dim::ServerSizeLimit, "200kb") {
        server.policy.max_size = Some(200 * 1024);
        server.extensions = vec!["SIZE 204800".into(), "8BITMIME".into()];
    }
    if g.is(Dim::ServerListener, "starttls_refused") {
        server.faults.push(fault(
            Step::Starttls,
            None,
            reply(454, "4.7.0 TLS not available due to local problem"),
        ));
    }
    server
}

fn build_case(m: &Matrix, row: &Row) -> Case {
    let g = m.view(&row.values);
    let mut settings: Vec<(Key, String)> = m
        .dims
        .iter()
        .zip(&row.values)
        .flat_map(|(d, j)| setting_of(d, &d.values[*j]))
        .collect();
    if m.ctx.facts.lacks_feature("separate-cert-checks") {
        // One switch: every check takes `smtp.verify.expiry`'s value.
        let all = g.v(Dim::SmtpVerifyExpiry).to_string();
        for (k, v) in &mut settings {
            if Check::ALL.iter().any(|c| c.flag() == *k) {
                *v = all.clone();
            }
        }
    }
    let f = m.ctx.faults.get(g.v(Dim::ServerFault));
    let listener = listener_of(&g);
    let cert_name = if f.and_then(|f| f.listener).is_some() {
        "valid"
    } else {
        g.v(Dim::ServerCert)
    };
    let cert = (listener != ListenerKind::Plain)
        .then(|| m.ctx.certs.get(cert_name).cloned())
        .flatten();
    Case {
        id: m.id(row),
        section: row.section.clone(),
        dims: m.dims_of(row),
        settings,
        users: crate::cases::users(),
        notify: notify_of(&g),
        trigger: trigger_of(&g),
        server: server_of(&g, f),
        pop: pop_of(&g),
        target: f.map_or(Target::FakeServer, |f| f.target),
        listener,
        import_ca: cert.is_some(),
        cert,
    }
}

impl Row {
    /// The value of dimension `d` in this row.
    pub fn get<'a>(&self, m: &'a Matrix, d: Dim) -> &'a str {
        let i = d.index();
        m.dims[i].values[self.values[i]].name.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> Matrix {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Matrix::build(
            &root.join("certs"),
            &root.join("scenarios"),
            &DeviceFacts::default(),
        )
        .expect("model")
    }

    fn values_of(m: &Matrix, dim: Dim) -> Vec<String> {
        m.dims[dim.index()]
            .values
            .iter()
            .map(|v| {
                if v.invalid {
                    format!("~{}", v.name)
                } else {
                    v.name.clone()
                }
            })
            .collect()
    }

    #[test]
    fn the_reference_facts_give_specs_values() {
        let m = matrix();
        let want: &[(Dim, &[&str])] = &[
            (Dim::SmtpTimeout, &["60", "30", "300", "~29", "~301"]),
            (Dim::PopBeforeSmtpWait, &["5", "0", "60", "~61"]),
            (
                Dim::LoadSplitSize,
                &["1024", "100", "15000", "~99", "~15001"],
            ),
            (
                Dim::LoadServerCapacity,
                &["10240", "100", "102400", "~0", "~102401"],
            ),
            (
                Dim::SmtpAuthMethods,
                &[
                    "default",
                    "plain",
                    "login",
                    "cram-md5",
                    "digest-md5",
                    "xoauth2",
                    "plain,cram-md5",
                    "none",
                    "~gss-spnego",
                    "~ntlm",
                    "~kerberos",
                    "~plain,plain",
                ],
            ),
        ];
        for (dim, values) in want {
            assert_eq!(values_of(&m, *dim), *values, "{dim}");
        }
    }

    #[test]
    fn a_firmwares_facts_change_the_values() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut facts = DeviceFacts::default();
        facts
            .ranges
            .insert(Key::SmtpTimeout, Range { min: 10, max: 600 });
        facts
            .ranges
            .insert(Key::PopBeforeSmtpWait, Range { min: 10, max: 20 });
        facts
            .ranges
            .insert(Key::LoadServerCapacity, Range { min: 1, max: 50 });
        facts.mechanisms = vec!["ntlm".into(), "login".into(), "plain".into()];
        facts.default_methods = vec!["login".into()];
        let m = Matrix::build(&root.join("certs"), &root.join("scenarios"), &facts).expect("model");
        assert_eq!(
            values_of(&m, Dim::SmtpTimeout),
            ["60", "10", "600", "~9", "~601"]
        );
        // The default moved into the range.
        assert_eq!(
            values_of(&m, Dim::PopBeforeSmtpWait),
            ["10", "20", "~9", "~21"]
        );
        assert_eq!(
            values_of(&m, Dim::LoadServerCapacity),
            ["50", "1", "~0", "~51"]
        );
        assert_eq!(
            values_of(&m, Dim::SmtpAuthMethods),
            [
                "default",
                "plain",
                "login",
                "ntlm",
                "plain,login",
                "none",
                "~xoauth2",
                "~gss-spnego",
                "~digest-md5",
                "~cram-md5",
                "~kerberos",
                "~plain,plain"
            ]
        );
        // The default takes the firmware's default methods.
        let base = vec![0; m.dims.len()];
        assert_eq!(methods_of(&m.view(&base)), ["login"]);
        for r in m.exhaustive() {
            assert_eq!(m.parse_id(&m.id(&r)).expect("parses"), r);
        }
    }

    #[test]
    fn features_a_firmware_lacks_are_refusal_cases_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let facts = DeviceFacts {
            unsupported: vec![
                "pop-before-smtp".into(),
                "load-reduction".into(),
                "check-revocation".into(),
            ],
            ..DeviceFacts::default()
        };
        let m = Matrix::build(&root.join("certs"), &root.join("scenarios"), &facts).expect("model");
        assert_eq!(values_of(&m, Dim::PopBeforeSmtpEnabled), ["off", "~on"]);
        assert_eq!(
            values_of(&m, Dim::LoadMode),
            [
                "none",
                "~split",
                "~abort_over_limit",
                "~url_over_limit",
                "~url_always",
                "~compress"
            ]
        );
        let dropped = unsupported_values(&m);
        assert_eq!(dropped.len(), 6, "{dropped:?}");
        // Each unsupported value: exactly one case (alone, expected refused), in the
        // exhaustive matrix and in a pairwise array; none elsewhere.
        let pairwise = m.covering(2, 1).expect("pairwise");
        for rows in [m.exhaustive(), pairwise] {
            for (d, v, _) in &dropped {
                let with: Vec<String> = rows
                    .iter()
                    .filter(|r| m.dims[d.index()].values[r.values[d.index()]].name == *v)
                    .map(|r| m.id(r))
                    .collect();
                assert_eq!(with.len(), 1, "{d:?}={v}: {with:?}");
                let case =
                    m.case(&rows[rows.iter().position(|r| m.id(r) == with[0]).expect("row")]);
                let pairs: Vec<(Key, String)> = case.settings.clone();
                let p = crate::oracle::predict_pairs(&case, &pairs, &facts).expect("predicts");
                assert!(
                    matches!(p.outcome, crate::oracle::Expected::SettingsRefused { .. }),
                    "{d:?}={v}: {:?}",
                    p.outcome
                );
            }
        }
        assert!(model::validate_for(&facts, Key::SmtpVerifyRevocation, "on").is_err());
        assert!(model::validate_for(&facts, Key::SmtpVerifyRevocation, "off").is_ok());
    }

    #[test]
    fn exhaustive_rows_are_distinct_and_normalised() {
        let m = matrix();
        let rows = m.exhaustive();
        let ids: BTreeSet<String> = rows.iter().map(|r| m.id(r)).collect();
        assert_eq!(ids.len(), rows.len(), "ids are unique");
        for r in &rows {
            let mut n = r.values.clone();
            if r.section != "invalid" {
                m.normalise(&mut n);
                assert_eq!(n, r.values, "{}", m.id(r));
            }
            let invalid = r
                .values
                .iter()
                .enumerate()
                .filter(|(i, j)| m.dims[*i].values[**j].invalid)
                .count();
            assert!(invalid <= 1, "{}", m.id(r));
        }
        assert!(rows.len() > 300 && rows.len() < 5000, "{}", rows.len());
        assert!(m.full_size() > 1e15);
    }

    #[test]
    fn dont_cares_collapse() {
        let m = matrix();
        let rows = m.exhaustive();
        let tls = Dim::SmtpTls.index();
        let cn = Dim::SmtpVerifyCn.index();
        let realm = Dim::SmtpAuthRealm.index();
        let split = Dim::LoadSplitSize.index();
        for r in rows.iter().filter(|r| r.section != "invalid") {
            if m.dims[tls].values[r.values[tls]].name == "none" {
                assert_eq!(r.values[cn], 0, "verify flags without TLS: {}", m.id(r));
            }
            if r.values[split] != 0 {
                assert_eq!(r.get(&m, Dim::LoadMode), "split");
            }
            if r.values[realm] != 0 {
                let g = m.view(&r.values);
                assert_eq!(
                    chosen_mechanism(&methods_of(&g), &offer_of(&g)),
                    Some("digest-md5")
                );
            }
        }
        let text = m.explain(&rows);
        assert!(text.contains("collapsed in"), "{text}");
    }

    #[test]
    fn ids_parse_back_into_their_rows() {
        let m = matrix();
        for r in m.exhaustive() {
            let id = m.id(&r);
            assert_eq!(m.parse_id(&id).expect("parses"), r, "{id}");
        }
        let no_section = m.parse_id("nope/base").expect_err("no such section");
        assert!(matches!(no_section, IdError::NoSection { .. }));
        assert_eq!(no_section.to_string(), "nope/base: no section \"nope\"");
        let no_value = m.parse_id("tls/smtp.tls=bogus").expect_err("no such value");
        assert_eq!(
            no_value.to_string(),
            "tls/smtp.tls=bogus: smtp.tls has no value \"bogus\""
        );
        let no_dim = m
            .parse_id("tls/smtp.tsl=none")
            .expect_err("no such dimension");
        assert_eq!(
            no_dim.to_string(),
            "tls/smtp.tsl=none: no dimension \"smtp.tsl\""
        );
    }

    #[test]
    fn the_pairwise_array_of_the_model_covers_every_pair() {
        let m = matrix();
        let model = m.covering_model();
        let raw = covering::generate(&model, 2, 1).expect("pairwise");
        let (missing, bad) = covering::verify(&model, 2, &raw);
        assert!(missing.is_empty() && bad.is_empty(), "{missing:?} {bad:?}");
    }

    #[test]
    fn covering_rows_keep_invalid_values_alone() {
        let (m, rows) = pairwise();
        assert!(rows.len() > m.invalid_rows().len() + 50, "{}", rows.len());
        for r in rows {
            let invalid = r
                .values
                .iter()
                .enumerate()
                .filter(|(i, j)| m.dims[*i].values[**j].invalid)
                .count();
            assert!(invalid <= 1);
        }
    }

    #[test]
    fn dimensions_follow_dims_order() {
        let m = matrix();
        let names: Vec<Dim> = m.dims.iter().map(|d| d.name).collect();
        assert_eq!(names, Dim::ALL);
        for s in &m.sections {
            for (d, values) in &s.only {
                for v in *values {
                    assert!(m.dims[d.index()].declares(v), "{}: {d}={v}", s.name);
                }
            }
        }
    }

    /// The model and its pairwise rows, computed once for the tests that need them.
    fn pairwise() -> &'static (Matrix, Vec<Row>) {
        static PAIRWISE: std::sync::OnceLock<(Matrix, Vec<Row>)> = std::sync::OnceLock::new();
        PAIRWISE.get_or_init(|| {
            let m = matrix();
            let rows = m.covering(2, 1).expect("pairwise");
            (m, rows)
        })
    }

    /// Every relevance rule and every case built, over every row of the exhaustive
    /// matrix (for SPEC's device and one that sends without AUTH) and of a pairwise
    /// array: in a debug build each comparison of a value with a literal checks that
    /// the literal is one of the dimension's values.
    #[test]
    fn every_rule_reads_declared_values() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let fallback = DeviceFacts::with_variants(&["send-without-auth".into()]);
        let fallback =
            Matrix::build(&root.join("certs"), &root.join("scenarios"), &fallback).expect("model");
        let (m, pairwise) = pairwise();
        let runs = [
            (m, m.exhaustive()),
            (&fallback, fallback.exhaustive()),
            (m, pairwise.clone()),
        ];
        for (m, rows) in &runs {
            for r in rows {
                for i in 0..m.dims.len() {
                    let _ = m.collapsed(&r.values, i);
                }
                let case = m.case(r);
                assert_eq!(case.dims.len(), m.dims.len());
            }
        }
    }
}
