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
//! for: they run over every dimension at once.
//!
//! **Invalid values** (PICT's `~`) appear at most once per case, and alone: the device
//! refuses the whole `apply`, so nothing else can matter.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::covering;
use crate::model::{self, Case, CertFacts, DeviceFacts, Range, Target, TriggerSpec};
use hil_mail::faults::{Action, Fault, When};
use hil_mail::sasl::{Account, Mechanism};
use hil_mail::scenario::Scenario;
use hil_mail::smtp::{ListenerKind, RecipientRule, SmtpConfig, Step};

/// One value of a dimension.
#[derive(Debug, Clone)]
pub struct Val {
    pub name: String,
    /// Refused by the device when set (PICT's `~`).
    pub invalid: bool,
}

/// A row seen by the relevance functions: values by dimension name.
pub struct Get<'a> {
    dims: &'a [Dim],
    row: &'a [usize],
    ctx: &'a Ctx,
}

impl Get<'_> {
    /// The value of dimension `name`.
    pub fn v(&self, name: &str) -> &str {
        match self.dims.iter().position(|d| d.name == name) {
            Some(i) => self.dims[i].values[self.row[i]].name.as_str(),
            None => "",
        }
    }
}

/// `None` when the dimension matters in the row; else why it does not.
type Relevance = fn(&Get) -> Option<&'static str>;

/// A dimension of the model; its first value is the base value.
pub struct Dim {
    pub name: &'static str,
    pub values: Vec<Val>,
    pub doc: &'static str,
    pub relevant: Relevance,
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
}

/// What relevance and case building need besides the row.
pub struct Ctx {
    /// The zoo's server certificates by name (`certs/manifest.toml`).
    pub certs: BTreeMap<String, CertFacts>,
    pub faults: BTreeMap<String, ServerFault>,
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
    pub dims: Vec<&'static str>,
    /// Dimensions whose values the section takes only some of.
    pub only: Vec<(&'static str, &'static [&'static str])>,
}

/// The model.
pub struct Matrix {
    pub dims: Vec<Dim>,
    pub sections: Vec<Section>,
    pub ctx: Ctx,
}

/// A row: one value index per dimension, in model order, and its section.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub section: String,
    pub values: Vec<usize>,
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

/// Returns the reason from the enclosing relevance function when `$e` (a relevance
/// answer) says the dimension does not matter.
macro_rules! why {
    ($e:expr) => {
        if let Some(w) = $e {
            return Some(w);
        }
    };
}

fn is_scan(g: &Get) -> bool {
    g.v("trigger").starts_with("scan")
}

/// The trigger gets past the switches (SPEC §2).
fn gated(g: &Get) -> Option<&'static str> {
    if g.v("trigger") == "scan_unknown" {
        return Some("a scan as an unknown user is refused before anything else");
    }
    if g.v("email.enabled") == "off" {
        return Some("email.enabled=off: nothing is sent");
    }
    let switch = match g.v("trigger") {
        "alert" => "email.notify",
        "counter" => "email.counter",
        _ => "email.scan",
    };
    if g.v(switch) == "off" {
        return Some("the mail kind's switch is off: nothing is sent");
    }
    None
}

/// The job gets to the network: recipients, a server and a header From.
fn sending(g: &Get) -> Option<&'static str> {
    why!(gated(g));
    if !is_scan(g) && g.v("notify") == "none" {
        return Some("no notification address: the job fails before connecting");
    }
    if g.v("smtp.server") != "ipv4" {
        return Some("smtp.server is not usable: the job fails before connecting");
    }
    if g.v("trigger") != "scan_user" && g.v("device.address") == "empty" {
        return Some("no header From: the job fails before connecting");
    }
    None
}

fn user_address_is_envelope(g: &Get) -> bool {
    g.v("smtp.auth.enabled") == "on"
        && g.v("smtp.auth.source") == "device_user"
        && g.v("trigger") == "scan_user"
}

/// The job has its addresses and connects.
fn addressed(g: &Get) -> Option<&'static str> {
    why!(sending(g));
    if user_address_is_envelope(g) {
        return None;
    }
    let empty = match g.v("envelope_from.mode") {
        "specified" => g.v("envelope_from.address") == "empty",
        _ => g.v("admin.address") == "empty",
    };
    if empty {
        return Some("no envelope sender: the job fails before connecting");
    }
    None
}

/// The device and the server agree on TLS: a handshake with the zoo certificate.
fn handshake(g: &Get) -> bool {
    matches!(
        (g.v("smtp.tls"), listener_of(g)),
        ("smtps", ListenerKind::Tls) | ("starttls", ListenerKind::Starttls)
    ) && g.v("server.listener") != "starttls_refused"
}

fn listener_of(g: &Get) -> ListenerKind {
    if let Some(k) = g
        .ctx
        .faults
        .get(g.v("server.fault"))
        .and_then(|f| f.listener)
    {
        return k;
    }
    match g.v("server.listener") {
        "starttls" | "starttls_refused" => ListenerKind::Starttls,
        "tls" => ListenerKind::Tls,
        "plain" => ListenerKind::Plain,
        _ => matching(g.v("smtp.tls")),
    }
}

/// The listener a TLS mode expects.
fn matching(tls: &str) -> ListenerKind {
    match tls {
        "smtps" => ListenerKind::Tls,
        "starttls" => ListenerKind::Starttls,
        _ => ListenerKind::Plain,
    }
}

fn flag_matters(g: &Get, flag: &str) -> Option<&'static str> {
    why!(addressed(g));
    if !handshake(g) {
        return Some("no TLS handshake with a server certificate");
    }
    let Some(cert) = g.ctx.certs.get(g.v("server.cert")) else {
        return Some("no such certificate");
    };
    // Collapsed only when the check passes under every reading the harness knows:
    // SPEC's, and the variants' (cn-only).
    let passes = model::cert_check(cert, flag, SERVER_IP) == "accept"
        && (flag != "cn" || model::name_matches(cert, SERVER_IP, true));
    if passes {
        return Some("the certificate passes this check (also under the cn-only variant)");
    }
    None
}

/// The AUTH mechanism the device picks: SPEC §3.7's order ∩ enabled ∩ offered.
pub fn chosen_mechanism(enabled: &[&str], offered: &[Mechanism]) -> Option<&'static str> {
    MECHANISM_ORDER
        .iter()
        .copied()
        .find(|m| enabled.contains(m) && offered.iter().any(|o| o.name().eq_ignore_ascii_case(m)))
}

fn methods_of<'a>(value: &'a str, default: &'a [String]) -> Vec<&'a str> {
    match value {
        "default" => default.iter().map(String::as_str).collect(),
        "none" => Vec::new(),
        v => v.split(',').collect(),
    }
}

fn offer_of(value: &str) -> Vec<Mechanism> {
    use Mechanism::*;
    match value {
        "plain_login" => vec![Plain, Login],
        "cram_digest" => vec![CramMd5, DigestMd5],
        "xoauth2" => vec![Xoauth2],
        "all" => Mechanism::ALL.to_vec(),
        _ => Vec::new(),
    }
}

fn auth_on(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if g.v("smtp.auth.enabled") != "on" {
        return Some("smtp.auth.enabled=off: the device never authenticates");
    }
    None
}

fn chosen(g: &Get) -> Option<&'static str> {
    chosen_mechanism(
        &methods_of(g.v("smtp.auth.methods"), &g.ctx.facts.default_methods),
        &offer_of(g.v("server.auth")),
    )
}

fn pop_on(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if g.v("pop_before_smtp.enabled") != "on" {
        return Some("POP before SMTP is off");
    }
    None
}

fn load_limited(g: &Get) -> Option<&'static str> {
    why!(addressed(g));
    if !matches!(g.v("load.mode"), "abort_over_limit" | "url_over_limit") {
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
    out
}

/// The dimensions, in dependency order.
fn dims() -> Vec<Dim> {
    vec![
        Dim {
            name: "trigger",
            values: vals(&["scan", "scan_user", "scan_guest", "scan_unknown", "alert", "counter"]),
            doc: "what is sent: a scan (anonymous, as a user with an address, as a user without one, as an unknown user), an alert, a counter",
            relevant: always,
        },
        Dim {
            name: "email.enabled",
            values: vals(&["on", "off", "~yes"]),
            doc: "the master switch",
            relevant: |g| (g.v("trigger") == "scan_unknown").then_some("a scan as an unknown user is refused before the switches"),
        },
        Dim {
            name: "email.scan",
            values: vals(&["on", "off"]),
            doc: "the scan switch",
            relevant: |g| {
                if !is_scan(g) || g.v("trigger") == "scan_unknown" {
                    return Some("not a scan");
                }
                (g.v("email.enabled") == "off").then_some("email.enabled=off: nothing is sent")
            },
        },
        Dim {
            name: "email.notify",
            values: vals(&["on", "off"]),
            doc: "the alert switch",
            relevant: |g| {
                if g.v("trigger") != "alert" {
                    return Some("not an alert");
                }
                (g.v("email.enabled") == "off").then_some("email.enabled=off: nothing is sent")
            },
        },
        Dim {
            name: "email.counter",
            values: vals(&["on", "off"]),
            doc: "the counter switch",
            relevant: |g| {
                if g.v("trigger") != "counter" {
                    return Some("not a counter mail");
                }
                (g.v("email.enabled") == "off").then_some("email.enabled=off: nothing is sent")
            },
        },
        Dim {
            name: "notify",
            values: vals(&["one", "two", "none"]),
            doc: "registered notification addresses",
            relevant: |g| {
                why!(gated(g));
                is_scan(g).then_some("a scan goes to its own recipients")
            },
        },
        Dim {
            name: "recipients",
            values: vals(&["one", "three"]),
            doc: "a scan's recipients",
            relevant: |g| {
                why!(gated(g));
                (!is_scan(g)).then_some("notifications go to the notification addresses")
            },
        },
        Dim {
            name: "smtp.server",
            values: vals(&["ipv4", "empty", "~http://mx.hil.test/", "~mx.hil.test:25", "~mx .hil.test", "~a..b"]),
            doc: "the server address: the harness's address (ipv4 names it; --bind or --server-address decides it, IPv6 too), empty, or refused forms",
            relevant: |g| {
                why!(gated(g));
                (!is_scan(g) && g.v("notify") == "none").then_some("no notification address: the job fails first")
            },
        },
        Dim {
            name: "device.address",
            values: vals(&["set", "empty", "longest", "~with space", "~over320"]),
            doc: "the device's address (header From of notifications and anonymous scans); longest is the longest RFC 5321 allows (64 + 1 + 253 characters)",
            relevant: |g| {
                why!(gated(g));
                if !is_scan(g) && g.v("notify") == "none" {
                    return Some("no notification address: the job fails first");
                }
                if g.v("smtp.server") != "ipv4" {
                    return Some("smtp.server is not usable: the job fails first");
                }
                (g.v("trigger") == "scan_user").then_some("the job user's address is the header From")
            },
        },
        Dim {
            name: "smtp.auth.enabled",
            values: vals(&["off", "on", "~1"]),
            doc: "SMTP AUTH",
            relevant: sending,
        },
        Dim {
            name: "smtp.auth.source",
            values: vals(&["configured", "device_user", "~user"]),
            doc: "whose credentials: the configured ones or the job user's",
            relevant: |g| {
                why!(sending(g));
                if g.v("smtp.auth.enabled") != "on" {
                    return Some("smtp.auth.enabled=off");
                }
                (!matches!(g.v("trigger"), "scan_user" | "scan_guest")).then_some("the job has no user: configured credentials are used")
            },
        },
        Dim {
            name: "envelope_from.mode",
            values: vals(&["admin", "specified", "~custom"]),
            doc: "the envelope sender's source",
            relevant: |g| {
                why!(sending(g));
                user_address_is_envelope(g).then_some("device_user credentials: the job user's address is the envelope sender")
            },
        },
        Dim {
            name: "envelope_from.address",
            values: vals(&["set", "empty"]),
            doc: "the specified envelope sender",
            relevant: |g| {
                why!(sending(g));
                if user_address_is_envelope(g) {
                    return Some("the job user's address is the envelope sender");
                }
                (g.v("envelope_from.mode") != "specified").then_some("envelope_from.mode=admin")
            },
        },
        Dim {
            name: "admin.address",
            values: vals(&["set", "empty"]),
            doc: "the administrator's address (the default envelope sender)",
            relevant: |g| {
                why!(sending(g));
                if user_address_is_envelope(g) {
                    return Some("the job user's address is the envelope sender");
                }
                (g.v("envelope_from.mode") != "admin").then_some("envelope_from.mode=specified")
            },
        },
        Dim {
            name: "server.fault",
            values: Vec::new(), // filled from the catalogue
            doc: "the server's behaviour: well-behaved, a built-in fault, or a scenario from scenarios/",
            relevant: addressed,
        },
        Dim {
            name: "smtp.tls",
            values: vals(&["none", "smtps", "starttls", "~ssl"]),
            doc: "the TLS mode",
            relevant: addressed,
        },
        Dim {
            name: "server.listener",
            values: vals(&["matching", "plain", "starttls", "tls", "starttls_refused"]),
            doc: "the listener the device is pointed at: the one its TLS mode expects, or plain, offering STARTTLS, implicit TLS, offering STARTTLS but answering it 454",
            relevant: |g| {
                why!(addressed(g));
                g.ctx.faults.get(g.v("server.fault")).and_then(|f| f.listener).map(|_| "the scenario names its listener")
            },
        },
        Dim {
            name: "server.cert",
            values: Vec::new(), // filled from the zoo
            doc: "the certificate the TLS listener presents (the zoo)",
            relevant: |g| {
                why!(addressed(g));
                (!handshake(g)).then_some("no TLS handshake")
            },
        },
        Dim {
            name: "smtp.verify.expiry",
            values: vals(&["on", "off"]),
            doc: "certificate check: validity dates",
            relevant: |g| flag_matters(g, "expiry"),
        },
        Dim {
            name: "smtp.verify.cn",
            values: vals(&["off", "on"]),
            doc: "certificate check: name",
            relevant: |g| flag_matters(g, "cn"),
        },
        Dim {
            name: "smtp.verify.key_usage",
            values: vals(&["off", "on"]),
            doc: "certificate check: key usage",
            relevant: |g| flag_matters(g, "key_usage"),
        },
        Dim {
            name: "smtp.verify.chain",
            values: vals(&["off", "on"]),
            doc: "certificate check: chain to the external store",
            relevant: |g| flag_matters(g, "chain"),
        },
        Dim {
            name: "smtp.verify.revocation",
            values: vals(&["off", "on"]),
            doc: "certificate check: OCSP, then CRL",
            relevant: |g| flag_matters(g, "revocation"),
        },
        Dim {
            name: "smtp.auth.methods",
            values: Vec::new(), // filled from the device's facts (its profile)
            doc: "the enabled AUTH mechanisms (default: all the device implements)",
            relevant: auth_on,
        },
        Dim {
            name: "server.auth",
            values: vals(&["plain_login", "none", "cram_digest", "xoauth2", "all"]),
            doc: "the mechanisms the server offers",
            relevant: |g| {
                why!(auth_on(g));
                g.ctx.faults.get(g.v("server.fault")).is_some_and(|f| !f.smtp.auth.is_empty()).then_some("the scenario sets the server's AUTH")
            },
        },
        Dim {
            name: "server.auth_before_tls",
            values: vals(&["yes", "no"]),
            doc: "whether a STARTTLS listener offers AUTH before TLS",
            relevant: |g| {
                why!(auth_on(g));
                (listener_of(g) != ListenerKind::Starttls).then_some("not a STARTTLS listener")
            },
        },
        Dim {
            name: "server.require_auth",
            values: vals(&["off", "on"]),
            doc: "the server demands AUTH before MAIL (530)",
            relevant: |g| {
                why!(addressed(g));
                if g.v("smtp.auth.enabled") == "on" && !g.ctx.variants.iter().any(|v| v == "send-without-auth") {
                    return Some("the device authenticates or fails before MAIL");
                }
                None
            },
        },
        Dim {
            name: "smtp.auth.password",
            values: vals(&["right", "wrong", "max64", "~over64", "~with\"quote"]),
            doc: "the credentials (password, and the XOAUTH2 token) match the server's account or not",
            relevant: |g| {
                why!(auth_on(g));
                chosen(g).is_none().then_some("no mechanism in common: no credentials are sent")
            },
        },
        Dim {
            name: "smtp.auth.realm",
            values: vals(&["empty", "set", "~over253"]),
            doc: "the DIGEST-MD5 realm (empty: the server's)",
            relevant: |g| {
                why!(auth_on(g));
                (chosen(g) != Some("digest-md5")).then_some("DIGEST-MD5 is not the mechanism used")
            },
        },
        Dim {
            name: "pop_before_smtp.enabled",
            values: vals(&["off", "on"]),
            doc: "POP before SMTP",
            relevant: addressed,
        },
        Dim {
            name: "pop.tls",
            values: vals(&["none", "pop3s", "stls", "~starttls"]),
            doc: "POP3 TLS mode",
            relevant: pop_on,
        },
        Dim {
            name: "pop.apop",
            values: vals(&["off", "on"]),
            doc: "APOP instead of USER/PASS",
            relevant: pop_on,
        },
        Dim {
            name: "pop.password",
            values: vals(&["right", "wrong", "~with\"quote"]),
            doc: "the POP password matches the account or not",
            relevant: pop_on,
        },
        Dim {
            name: "pop_before_smtp.wait",
            values: Vec::new(), // filled from the device's facts (its profile)
            doc: "seconds between the POP login and the SMTP connection",
            relevant: |g| {
                why!(pop_on(g));
                (g.v("pop.password") != "right").then_some("the POP login fails: no SMTP")
            },
        },
        Dim {
            name: "server.pop_window",
            values: vals(&["off", "30"]),
            doc: "the SMTP server relays only for a POP login within 30 s (554 otherwise)",
            relevant: |g| {
                why!(addressed(g));
                (g.v("pop_before_smtp.enabled") == "on" && g.v("pop.password") != "right").then_some("the POP login fails: no SMTP")
            },
        },
        Dim {
            name: "load.mode",
            values: vals(&["none", "split", "abort_over_limit", "url_over_limit", "url_always", "~compress"]),
            doc: "server load reduction",
            relevant: addressed,
        },
        Dim {
            name: "load.split_size",
            values: Vec::new(), // filled from the device's facts (its profile)
            doc: "KB per fragment",
            relevant: |g| {
                why!(addressed(g));
                (g.v("load.mode") != "split").then_some("load.mode is not split")
            },
        },
        Dim {
            name: "load.max_size",
            values: vals(&["unlimited", "limited", "~none"]),
            doc: "whether load.server_capacity applies",
            relevant: load_limited,
        },
        Dim {
            name: "load.server_capacity",
            values: Vec::new(), // filled from the device's facts (its profile)
            doc: "KB the server takes (1 KB, the lower bound, is left out: the device's own headers and text are unknown to the oracle within 4 KB, so no message is surely over or under it)",
            relevant: |g| {
                why!(load_limited(g));
                (g.v("load.max_size") != "limited").then_some("load.max_size=unlimited")
            },
        },
        Dim {
            name: "scan.size_kb",
            values: vals(&["4", "300"]),
            doc: "the scan's size",
            relevant: |g| {
                why!(addressed(g));
                (!is_scan(g)).then_some("not a scan")
            },
        },
        Dim {
            name: "server.size_limit",
            values: vals(&["none", "200kb"]),
            doc: "the server's message size limit (SIZE 204800, 552 beyond)",
            relevant: addressed,
        },
        Dim {
            name: "smtp.timeout",
            values: Vec::new(), // filled from the device's facts (its profile)
            doc: "seconds the device waits",
            relevant: |g| {
                why!(addressed(g));
                let waits = g.ctx.faults.get(g.v("server.fault")).is_some_and(|f| f.waits)
                    || (listener_of(g) == ListenerKind::Tls && g.v("smtp.tls") != "smtps");
                (!waits).then_some("nothing makes the device wait")
            },
        },
        Dim {
            name: "smtp.port",
            values: vals(&["harness", "~0", "~65536"]),
            doc: "the SMTP port (the harness sets its listener's)",
            relevant: never,
        },
        Dim {
            name: "smtp.ssl_port",
            values: vals(&["harness", "~0", "~x"]),
            doc: "the SMTPS port (the harness sets its listener's)",
            relevant: never,
        },
        Dim {
            name: "smtp.auth.user",
            values: vals(&["right", "~over64"]),
            doc: "the AUTH user",
            relevant: never,
        },
    ]
}

fn sections() -> Vec<Section> {
    vec![
        Section {
            name: "delivery",
            doc: "SPEC §2 and §3.8: the switches, recipients, the server address, header From and envelope sender (with device_user credentials)",
            dims: vec![
                "trigger", "email.enabled", "email.scan", "email.notify", "email.counter",
                "notify", "recipients", "smtp.server", "device.address", "smtp.auth.enabled",
                "smtp.auth.source", "envelope_from.mode", "envelope_from.address", "admin.address",
            ],
            only: vec![],
        },
        Section {
            name: "tls",
            doc: "SPEC §3.1, §3.4, §3.5: TLS mode × listener × every zoo certificate × the checks it fails",
            dims: vec![
                "smtp.tls", "server.listener", "server.cert", "smtp.verify.expiry", "smtp.verify.cn",
                "smtp.verify.key_usage", "smtp.verify.chain", "smtp.verify.revocation",
            ],
            only: vec![],
        },
        Section {
            name: "auth",
            doc: "SPEC §3.7: mechanisms enabled × offered, credentials, realm, source, the 530 without AUTH",
            dims: vec![
                "trigger", "smtp.auth.enabled", "smtp.auth.source", "smtp.auth.methods", "server.auth",
                "server.require_auth", "smtp.auth.password", "smtp.auth.realm",
            ],
            only: vec![("trigger", &["scan", "scan_user", "scan_guest"])],
        },
        Section {
            name: "auth_tls",
            doc: "SPEC §3.4 and §3.7 together: AUTH offered before or only after STARTTLS, credentials over plaintext",
            dims: vec!["smtp.tls", "server.listener", "smtp.auth.enabled", "server.auth_before_tls"],
            only: vec![],
        },
        Section {
            name: "pop",
            doc: "SPEC §3.6: POP before SMTP over each POP TLS mode, login method, password, wait, and a server that relays only after a POP login",
            dims: vec![
                "pop_before_smtp.enabled", "pop.tls", "pop.apop", "pop.password", "pop_before_smtp.wait",
                "server.pop_window",
            ],
            only: vec![],
        },
        Section {
            name: "load",
            doc: "SPEC §4: each load-reduction mode × sizes and limits × the server's own size limit",
            dims: vec![
                "trigger", "load.mode", "load.split_size", "load.max_size", "load.server_capacity",
                "scan.size_kb", "server.size_limit",
            ],
            only: vec![("trigger", &["scan", "alert"])],
        },
        Section {
            name: "faults",
            doc: "SPEC §3.3, §3.9, §3.10: built-in faults and the scenario library × TLS mode × AUTH on or off",
            dims: vec!["server.fault", "smtp.tls", "smtp.auth.enabled"],
            only: vec![],
        },
        Section {
            name: "timeouts",
            doc: "SPEC §3.2: every fault that makes the device wait × smtp.timeout's bounds and default",
            dims: vec!["server.fault", "smtp.timeout"],
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
            },
        );
    };
    add("none", "a well-behaved server", vec![], None);
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
        "recipient-refused",
        "one recipient refused by policy",
        vec![],
        None,
    );
    if let Some(f) = m.get_mut("recipient-refused") {
        f.smtp.policy.recipients = vec![RecipientRule {
            address: "b@hil.test".into(),
            code: 550,
            text: "5.1.1 <b@hil.test>: Recipient address rejected: User unknown".into(),
        }];
    }
    m
}

/// Why the oracle cannot model a scenario file (it is then left out), if so.
fn unmodelled(s: &Scenario) -> Option<String> {
    let Some(smtp) = &s.smtp else {
        return Some("no [smtp] part".into());
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

/// Server faults by name, and the scenario files left out with why.
type Catalogue = (BTreeMap<String, ServerFault>, Vec<(String, String)>);

fn scenario_faults(dir: &Path) -> Result<Catalogue, String> {
    let mut m = BTreeMap::new();
    let mut excluded = Vec::new();
    for s in Scenario::load_dir(dir)? {
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
            },
        );
    }
    Ok((m, excluded))
}

/// The zoo's server certificates, from `manifest.toml`.
pub fn load_certs(dir: &Path) -> Result<BTreeMap<String, CertFacts>, String> {
    #[derive(Deserialize)]
    struct M {
        cert: Vec<CertFacts>,
    }
    let path = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m: M = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    Ok(m.cert.into_iter().map(|c| (c.name.clone(), c)).collect())
}

impl Matrix {
    /// The model for a zoo (`certs`), a scenario library and the profile's variants.
    pub fn build(certs: &Path, scenarios: &Path, facts: &DeviceFacts) -> Result<Matrix, String> {
        let certs = load_certs(certs)?;
        let mut faults = builtin_faults();
        let (sf, excluded) = scenario_faults(scenarios)?;
        faults.extend(sf);
        let mut dims = dims();
        for d in &mut dims {
            match d.name {
                "server.cert" => {
                    let mut names: Vec<String> = certs.keys().cloned().collect();
                    // The base value first.
                    names.sort_by_key(|n| (n != "valid", n.clone()));
                    d.values = names
                        .into_iter()
                        .map(|name| Val {
                            name,
                            invalid: false,
                        })
                        .collect();
                }
                "server.fault" => {
                    let mut names: Vec<String> = faults.keys().cloned().collect();
                    names.sort_by_key(|n| (n != "none", n.clone()));
                    d.values = names
                        .into_iter()
                        .map(|name| Val {
                            name,
                            invalid: false,
                        })
                        .collect();
                }
                "smtp.auth.methods" => d.values = methods_values(facts),
                key @ ("smtp.timeout"
                | "pop_before_smtp.wait"
                | "load.split_size"
                | "load.server_capacity") => {
                    let default = model::DEFAULTS
                        .iter()
                        .find(|(k, _)| *k == key)
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    // 1 KB of capacity is left out (the dimension's doc says why).
                    let low_from = if key == "load.server_capacity" {
                        100
                    } else {
                        0
                    };
                    d.values = range_values(default, facts.range(key), low_from);
                }
                _ => {}
            }
        }
        if !certs.contains_key("valid") {
            return Err("the certificate zoo has no `valid` certificate".into());
        }
        Ok(Matrix {
            dims,
            sections: sections(),
            ctx: Ctx {
                certs,
                faults,
                variants: facts.variants.clone(),
                facts: facts.clone(),
                excluded,
            },
        })
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.dims.iter().position(|d| d.name == name)
    }

    /// Why dimension `i` does not matter in `row` (`None`: it matters).
    pub fn collapsed(&self, row: &[usize], i: usize) -> Option<&'static str> {
        let g = Get {
            dims: &self.dims,
            row,
            ctx: &self.ctx,
        };
        (self.dims[i].relevant)(&g)
    }

    /// Every dimension that does not matter set to its base value, in order.
    pub fn normalise(&self, row: &mut [usize]) {
        let tls = self.index("smtp.tls");
        let listener = self.index("server.listener");
        for i in 0..self.dims.len() {
            if self.collapsed(row, i).is_some() {
                row[i] = 0;
            }
            // The listener the TLS mode expects, named explicitly, is `matching`.
            if Some(i) == listener {
                if let Some(t) = tls {
                    let mode = self.dims[t].values[row[t]].name.as_str();
                    let named = match self.dims[i].values[row[i]].name.as_str() {
                        "plain" => Some(ListenerKind::Plain),
                        "starttls" => Some(ListenerKind::Starttls),
                        "tls" => Some(ListenerKind::Tls),
                        _ => None,
                    };
                    if named == Some(matching(mode)) {
                        row[i] = 0;
                    }
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
            let idx: Vec<usize> = s.dims.iter().filter_map(|d| self.index(d)).collect();
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
                .map(|(i, d)| covering::Param::new(d.name, self.valid_values(i).len()))
                .collect(),
        )
    }

    /// A t-way covering array over every dimension's valid values (seeded), each row
    /// then reduced (don't-cares at base, duplicates dropped), then one case per
    /// invalid value.
    pub fn covering(&self, t: usize, seed: u64) -> Result<Vec<Row>, covering::CoveringError> {
        let model = self.covering_model();
        let valid: Vec<Vec<usize>> = (0..self.dims.len()).map(|i| self.valid_values(i)).collect();
        let rows = covering::generate(&model, t, seed)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in rows {
            let mut r: Vec<usize> = r.iter().enumerate().map(|(i, j)| valid[i][*j]).collect();
            self.normalise(&mut r);
            if seen.insert(r.clone()) {
                out.push(Row {
                    section: format!("{t}-way"),
                    values: r,
                });
            }
        }
        for r in self.invalid_rows() {
            if seen.insert(r.values.clone()) {
                out.push(r);
            }
        }
        Ok(out)
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
    pub fn parse_id(&self, id: &str) -> Result<Row, String> {
        let (section, rest) = id
            .split_once('/')
            .ok_or_else(|| format!("{id}: not SECTION/DIM=VALUE,…"))?;
        let known = self.sections.iter().any(|s| s.name == section)
            || section == "invalid"
            || section == "fuzz"
            || section.ends_with("-way");
        if !known {
            return Err(format!("{id}: no section {section:?}"));
        }
        let mut values = vec![0usize; self.dims.len()];
        if rest != "base" {
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
            for p in parts {
                let (name, value) = p
                    .split_once('=')
                    .ok_or_else(|| format!("{id}: {p:?} is not DIM=VALUE"))?;
                let i = self
                    .index(name)
                    .ok_or_else(|| format!("{id}: no dimension {name:?}"))?;
                let j = self.dims[i]
                    .values
                    .iter()
                    .position(|v| v.name == value)
                    .ok_or_else(|| format!("{id}: {name} has no value {value:?}"))?;
                values[i] = j;
            }
        }
        let row = Row {
            section: section.to_string(),
            values,
        };
        if self.id(&row) != id {
            return Err(format!(
                "{id}: not in the canonical order {}",
                self.id(&row)
            ));
        }
        Ok(row)
    }

    /// Every value of a row by dimension name.
    pub fn dims_of(&self, row: &Row) -> BTreeMap<String, String> {
        self.dims
            .iter()
            .zip(&row.values)
            .map(|(d, j)| (d.name.to_string(), d.values[*j].name.clone()))
            .collect()
    }

    /// The case a row stands for.
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
                sec.dims.join(", ")
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

fn pairs(p: &[(&str, String)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A 320-character address (the longest `device.address` SPEC allows).
fn address_of_len(n: usize) -> String {
    let domain = "@hil.test";
    format!("{}{domain}", "d".repeat(n.saturating_sub(domain.len())))
}

/// The settings a dimension's value stands for (none for server-side dimensions).
fn setting_of(dim: &'static str, raw: &str, invalid: bool) -> Vec<(&'static str, String)> {
    let one = |v: String| vec![(dim, v)];
    let addr = |set: &str| {
        if raw == "set" {
            set.to_string()
        } else {
            String::new()
        }
    };
    match dim {
        "email.enabled"
        | "email.scan"
        | "email.notify"
        | "email.counter"
        | "smtp.tls"
        | "pop.tls"
        | "pop.apop"
        | "pop_before_smtp.enabled"
        | "load.mode"
        | "load.split_size"
        | "load.max_size"
        | "load.server_capacity"
        | "smtp.timeout"
        | "pop_before_smtp.wait"
        | "smtp.auth.enabled"
        | "smtp.auth.source"
        | "envelope_from.mode" => one(raw.to_string()),
        d if d.starts_with("smtp.verify.") => one(raw.to_string()),
        "smtp.server" => match raw {
            "ipv4" => vec![],
            "empty" => one(String::new()),
            bad => one(bad.to_string()),
        },
        "device.address" => one(match raw {
            "set" => crate::cases::DEVICE.to_string(),
            "empty" => String::new(),
            "longest" => format!(
                "{}@{}.{}.{}.{}",
                "d".repeat(64),
                "a".repeat(63),
                "b".repeat(63),
                "c".repeat(63),
                "e".repeat(61)
            ),
            "over320" => address_of_len(321),
            other => other.to_string(),
        }),
        "envelope_from.address" => one(addr("bounces@hil.test")),
        "admin.address" => one(addr(crate::cases::ADMIN)),
        "smtp.auth.methods" => match raw {
            "default" => vec![],
            other => one(other.to_string()),
        },
        "smtp.auth.password" => {
            let (pw, token) = match raw {
                "right" => (AUTH_PASSWORD.to_string(), AUTH_TOKEN.to_string()),
                "max64" => ("p".repeat(64), AUTH_TOKEN.to_string()),
                "over64" => ("p".repeat(65), AUTH_TOKEN.to_string()),
                "wrong" => ("Wrong-Pass-9".into(), "ya29.wrong".into()),
                other => (other.to_string(), AUTH_TOKEN.to_string()),
            };
            vec![
                ("smtp.auth.user", AUTH_USER.to_string()),
                ("smtp.auth.password", pw),
                ("smtp.auth.token", token),
            ]
        }
        "smtp.auth.realm" => match raw {
            "set" => one(REALM.into()),
            "over253" => one("r".repeat(254)),
            _ => vec![],
        },
        "pop.password" => vec![
            ("pop.user", POP_USER.to_string()),
            (
                "pop.password",
                match raw {
                    "right" => POP_PASSWORD.into(),
                    "wrong" => "Wrong-Pop-9".into(),
                    other => other.to_string(),
                },
            ),
        ],
        "smtp.port" | "smtp.ssl_port" if invalid => one(raw.to_string()),
        "smtp.auth.user" if invalid => one("u".repeat(65)),
        _ => vec![],
    }
}

fn build_case(m: &Matrix, row: &Row) -> Case {
    let g = Get {
        dims: &m.dims,
        row: &row.values,
        ctx: &m.ctx,
    };
    let id = m.id(row);
    let mut settings: Vec<(String, String)> = Vec::new();
    for (i, d) in m.dims.iter().enumerate() {
        let val = &d.values[row.values[i]];
        settings.extend(
            setting_of(d.name, &val.name, val.invalid)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
    }
    let users = crate::cases::users();
    let to: Vec<String> = match g.v("recipients") {
        "three" => ["a@hil.test", "b@hil.test", "c@hil.test"]
            .map(String::from)
            .to_vec(),
        _ => vec!["alice@hil.test".into()],
    };
    let size_kb = g.v("scan.size_kb").parse().unwrap_or(4);
    let scan = |user: Option<&str>| TriggerSpec::Scan {
        to: to.clone(),
        size_kb,
        user: user.map(str::to_string),
    };
    let trigger = match g.v("trigger") {
        "scan_user" => scan(Some("taro")),
        "scan_guest" => scan(Some("guest")),
        "scan_unknown" => scan(Some("nobody")),
        "alert" => TriggerSpec::Alert("paper_jam".into()),
        "counter" => TriggerSpec::Counter,
        _ => scan(None),
    };
    let notify = match g.v("notify") {
        "two" => vec!["ops@hil.test".into(), "b@hil.test".into()],
        "none" => vec![],
        _ => vec!["ops@hil.test".into()],
    };
    // The server.
    let f = m.ctx.faults.get(g.v("server.fault"));
    let mut server = f.map(|f| f.smtp.clone()).unwrap_or_default();
    let scenario_auth = f.is_some_and(|f| !f.smtp.auth.is_empty());
    if !scenario_auth {
        server.auth = offer_of(g.v("server.auth"));
        // Two realms, the account's second: an empty smtp.auth.realm takes the first.
        server.realms = vec!["corp.hil.test".into(), REALM.into()];
        server.accounts = vec![
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
        ];
    }
    server.auth_before_tls = g.v("server.auth_before_tls") != "no";
    if g.v("server.require_auth") == "on" {
        server.policy.require_auth = true;
    }
    if g.v("server.pop_window") == "30" {
        server.policy.pop_before_smtp_window_s = Some(30);
    }
    if g.v("server.size_limit") == "200kb" {
        server.policy.max_size = Some(200 * 1024);
        server.extensions = vec!["SIZE 204800".into(), "8BITMIME".into()];
    }
    if g.v("server.listener") == "starttls_refused" {
        server.faults.push(fault(
            Step::Starttls,
            None,
            reply(454, "4.7.0 TLS not available due to local problem"),
        ));
    }
    let listener = listener_of(&g);
    let cert_name = if f.and_then(|f| f.listener).is_some() {
        "valid"
    } else {
        g.v("server.cert")
    };
    let cert = (listener != ListenerKind::Plain)
        .then(|| m.ctx.certs.get(cert_name).cloned())
        .flatten();
    let dims = m.dims_of(row);
    Case {
        id,
        section: row.section.clone(),
        dims,
        settings: pairs(
            &settings
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>(),
        ),
        users,
        notify,
        trigger,
        server,
        target: Target::FakeServer,
        listener,
        import_ca: cert.is_some(),
        cert,
    }
}

impl Row {
    /// The value of dimension `name` in this row.
    pub fn get<'a>(&self, m: &'a Matrix, name: &str) -> &'a str {
        match m.index(name) {
            Some(i) => m.dims[i].values[self.values[i]].name.as_str(),
            None => "",
        }
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

    fn values_of(m: &Matrix, dim: &str) -> Vec<String> {
        let i = m.index(dim).expect("dimension");
        m.dims[i]
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
        let want: &[(&str, &[&str])] = &[
            ("smtp.timeout", &["60", "30", "300", "~29", "~301"]),
            ("pop_before_smtp.wait", &["5", "0", "60", "~61"]),
            (
                "load.split_size",
                &["1024", "100", "15000", "~99", "~15001"],
            ),
            (
                "load.server_capacity",
                &["10240", "100", "102400", "~0", "~102401"],
            ),
            (
                "smtp.auth.methods",
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
                ],
            ),
        ];
        for (dim, values) in want {
            assert_eq!(values_of(&m, dim), *values, "{dim}");
        }
    }

    #[test]
    fn a_firmwares_facts_change_the_values() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut facts = DeviceFacts::default();
        facts
            .ranges
            .insert("smtp.timeout".into(), Range { min: 10, max: 600 });
        facts
            .ranges
            .insert("pop_before_smtp.wait".into(), Range { min: 10, max: 20 });
        facts
            .ranges
            .insert("load.server_capacity".into(), Range { min: 1, max: 50 });
        facts.mechanisms = vec!["ntlm".into(), "login".into(), "plain".into()];
        facts.default_methods = vec!["login".into()];
        let m = Matrix::build(&root.join("certs"), &root.join("scenarios"), &facts).expect("model");
        assert_eq!(
            values_of(&m, "smtp.timeout"),
            ["60", "10", "600", "~9", "~601"]
        );
        // The default moved into the range.
        assert_eq!(
            values_of(&m, "pop_before_smtp.wait"),
            ["10", "20", "~9", "~21"]
        );
        assert_eq!(
            values_of(&m, "load.server_capacity"),
            ["50", "1", "~0", "~51"]
        );
        assert_eq!(
            values_of(&m, "smtp.auth.methods"),
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
                "~kerberos"
            ]
        );
        // The default takes the firmware's default methods.
        assert_eq!(
            methods_of("default", &m.ctx.facts.default_methods),
            ["login"]
        );
        for r in m.exhaustive() {
            assert_eq!(m.parse_id(&m.id(&r)).expect("parses"), r);
        }
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
        let tls = m.index("smtp.tls").unwrap_or(0);
        let cn = m.index("smtp.verify.cn").unwrap_or(0);
        let realm = m.index("smtp.auth.realm").unwrap_or(0);
        let split = m.index("load.split_size").unwrap_or(0);
        for r in rows.iter().filter(|r| r.section != "invalid") {
            if m.dims[tls].values[r.values[tls]].name == "none" {
                assert_eq!(r.values[cn], 0, "verify flags without TLS: {}", m.id(r));
            }
            if r.values[split] != 0 {
                assert_eq!(r.get(&m, "load.mode"), "split");
            }
            if r.values[realm] != 0 {
                assert_eq!(
                    chosen_mechanism(
                        &methods_of(r.get(&m, "smtp.auth.methods"), &m.ctx.facts.default_methods),
                        &offer_of(r.get(&m, "server.auth"))
                    ),
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
        assert!(m.parse_id("nope/base").is_err());
        assert!(m.parse_id("tls/smtp.tls=bogus").is_err());
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
        let m = matrix();
        let rows = m.covering(2, 1).expect("pairwise");
        assert!(rows.len() > m.invalid_rows().len() + 50, "{}", rows.len());
        for r in &rows {
            let invalid = r
                .values
                .iter()
                .enumerate()
                .filter(|(i, j)| m.dims[*i].values[**j].invalid)
                .count();
            assert!(invalid <= 1);
        }
    }
}
