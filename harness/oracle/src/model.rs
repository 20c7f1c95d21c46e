//! The harness's own reading of SPEC §1–§2: the settings' names (`Key`) and the
//! certificate checks (`Check`), setting defaults and input rules, secret keys, and
//! what a case asks of the device. The oracle works from this, never from `mfp_sim`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dim::Dim;
use crate::named::named;
use hil_mail::smtp::{ListenerKind, SmtpConfig};

named! {
    /// A setting: SPEC §1's keys, the POP settings of its note, and the XOAUTH2 token
    /// (docs/oracle.md). The names are the ones the console, device profiles (the left
    /// side of `[keys]`), scenarios and reports use; `str::parse` is the one way from
    /// text to a key and refuses any other name ([`UnknownKey`]). `net.dns` is SPEC's
    /// network setting (§1), the DNS servers the device resolves host names through.
    pub enum Key / UnknownKey {
        EmailEnabled = "email.enabled",
        EmailScan = "email.scan",
        EmailNotify = "email.notify",
        EmailCounter = "email.counter",
        SmtpServer = "smtp.server",
        SmtpTls = "smtp.tls",
        SmtpPort = "smtp.port",
        SmtpSslPort = "smtp.ssl_port",
        SmtpVerifyExpiry = "smtp.verify.expiry",
        SmtpVerifyCn = "smtp.verify.cn",
        SmtpVerifyKeyUsage = "smtp.verify.key_usage",
        SmtpVerifyChain = "smtp.verify.chain",
        SmtpVerifyRevocation = "smtp.verify.revocation",
        SmtpTimeout = "smtp.timeout",
        AdminAddress = "admin.address",
        DeviceAddress = "device.address",
        PopBeforeSmtpEnabled = "pop_before_smtp.enabled",
        PopBeforeSmtpWait = "pop_before_smtp.wait",
        SmtpAuthEnabled = "smtp.auth.enabled",
        SmtpAuthMethods = "smtp.auth.methods",
        SmtpAuthUser = "smtp.auth.user",
        SmtpAuthPassword = "smtp.auth.password",
        SmtpAuthRealm = "smtp.auth.realm",
        SmtpAuthSource = "smtp.auth.source",
        EnvelopeFromMode = "envelope_from.mode",
        EnvelopeFromAddress = "envelope_from.address",
        LoadMode = "load.mode",
        LoadSplitSize = "load.split_size",
        LoadMaxSize = "load.max_size",
        LoadServerCapacity = "load.server_capacity",
        PopServer = "pop.server",
        PopTls = "pop.tls",
        PopPort = "pop.port",
        PopSslPort = "pop.ssl_port",
        PopApop = "pop.apop",
        PopUser = "pop.user",
        PopPassword = "pop.password",
        SmtpAuthToken = "smtp.auth.token",
        NetDns = "net.dns",
    }
}

/// A name that is not a setting: what parsing a key from a profile, a scenario or a
/// command line answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a setting (SPEC §1)")]
pub struct UnknownKey(pub String);

impl Key {
    /// Whether the key holds a credential: never shown unmasked in anything we write.
    pub fn is_secret(self) -> bool {
        SECRET_KEYS.contains(&self)
    }

    /// The factory default (SPEC §1); `smtp.auth.methods`' is the reference device's
    /// (a firmware's own is [`DeviceFacts::default_methods_value`]).
    pub fn default_value(self) -> &'static str {
        DEFAULTS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, v)| *v)
    }
}

named! {
    /// The certificate checks of SPEC §3.5, in its order, each switched on by its
    /// `smtp.verify.*` flag; the names the zoo's manifest gives their verdicts under.
    pub enum Check / UnknownCheck {
        Expiry = "expiry",
        Cn = "cn",
        KeyUsage = "key_usage",
        Chain = "chain",
        Revocation = "revocation",
    }
}

/// A name that is not a certificate check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a certificate check (SPEC §3.5)")]
pub struct UnknownCheck(pub String);

impl Check {
    /// The setting that switches the check on.
    pub const fn flag(self) -> Key {
        match self {
            Check::Expiry => Key::SmtpVerifyExpiry,
            Check::Cn => Key::SmtpVerifyCn,
            Check::KeyUsage => Key::SmtpVerifyKeyUsage,
            Check::Chain => Key::SmtpVerifyChain,
            Check::Revocation => Key::SmtpVerifyRevocation,
        }
    }
}

/// Factory defaults of every key (SPEC §1).
pub const DEFAULTS: &[(Key, &str)] = &[
    (Key::EmailEnabled, "on"),
    (Key::EmailScan, "on"),
    (Key::EmailNotify, "on"),
    (Key::EmailCounter, "on"),
    (Key::SmtpServer, ""),
    (Key::SmtpTls, "none"),
    (Key::SmtpPort, "25"),
    (Key::SmtpSslPort, "465"),
    (Key::SmtpTimeout, "60"),
    (Key::AdminAddress, ""),
    (Key::DeviceAddress, ""),
    (Key::PopBeforeSmtpEnabled, "off"),
    (Key::SmtpAuthEnabled, "off"),
    (Key::SmtpAuthSource, "configured"),
    (Key::EnvelopeFromMode, "admin"),
    (Key::EnvelopeFromAddress, ""),
    (Key::LoadMode, "none"),
    (Key::LoadSplitSize, "1024"),
    (Key::LoadMaxSize, "unlimited"),
    (Key::LoadServerCapacity, "10240"),
    (Key::SmtpVerifyExpiry, "on"),
    (Key::SmtpVerifyCn, "off"),
    (Key::SmtpVerifyKeyUsage, "off"),
    (Key::SmtpVerifyChain, "off"),
    (Key::SmtpVerifyRevocation, "off"),
    (Key::SmtpAuthMethods, "digest-md5,cram-md5,login,plain"),
    (Key::SmtpAuthUser, ""),
    (Key::SmtpAuthPassword, ""),
    (Key::SmtpAuthToken, ""),
    (Key::SmtpAuthRealm, ""),
    (Key::PopBeforeSmtpWait, "5"),
    (Key::PopServer, ""),
    (Key::PopTls, "none"),
    (Key::PopPort, "110"),
    (Key::PopSslPort, "995"),
    (Key::PopApop, "off"),
    (Key::PopUser, ""),
    (Key::PopPassword, ""),
    (Key::NetDns, ""),
];

/// The account of the harness's POP3 server (POP before SMTP).
pub const POP_USER: &str = "scanner@hil.test";
pub const POP_PASSWORD: &str = "pop-Pass-1";

/// The harness's fake POP3 server: one account, [`POP_USER`] with [`POP_PASSWORD`],
/// APOP offered, no faults.
pub fn pop_server() -> hil_mail::pop3::Pop3Config {
    hil_mail::pop3::Pop3Config {
        accounts: vec![hil_mail::pop3::PopAccount {
            user: POP_USER.into(),
            password: POP_PASSWORD.into(),
        }],
        ..Default::default()
    }
}

/// Keys whose values are credentials: never shown unmasked in anything we write.
pub const SECRET_KEYS: &[Key] = &[Key::SmtpAuthPassword, Key::SmtpAuthToken, Key::PopPassword];

/// A device user a case registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSpec {
    pub name: String,
    pub password: String,
    /// Empty when the user has no e-mail address.
    pub address: String,
}

/// What the case asks the device to send (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TriggerSpec {
    Scan {
        to: Vec<String>,
        size_kb: u32,
        user: Option<String>,
    },
    Alert(String),
    Counter,
}

impl TriggerSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            TriggerSpec::Scan { .. } => "scan",
            TriggerSpec::Alert(_) => "alert",
            TriggerSpec::Counter => "counter",
        }
    }
}

/// Where the device is pointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Target {
    /// The fake SMTP server, configured with the case's scenario.
    FakeServer,
    /// A port where nothing listens.
    ClosedPort,
    /// A port whose TCP connects never complete (SYNs dropped): SPEC §3.2's connect
    /// timeout.
    SilentPort,
}

/// One case: settings, device state, a server scenario and a trigger.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// A stable name: `group/what`.
    pub id: String,
    /// The matrix section (or case group) the case belongs to.
    pub section: String,
    /// The case's value of each matrix dimension, for reports (secrets masked).
    pub dims: BTreeMap<Dim, String>,
    /// Settings applied after `reset`, on top of the server address and port.
    pub settings: Vec<(Key, String)>,
    pub users: Vec<UserSpec>,
    pub notify: Vec<String>,
    pub trigger: TriggerSpec,
    pub server: SmtpConfig,
    /// The fake POP3 server for POP before SMTP: the harness's account
    /// ([`pop_server`]) and the case's scripted POP faults.
    pub pop: hil_mail::pop3::Pop3Config,
    pub target: Target,
    /// The listener the device is pointed at (its port is `smtp.port`, or
    /// `smtp.ssl_port` with `smtp.tls = smtps`).
    pub listener: ListenerKind,
    /// The zoo certificate a TLS listener presents.
    pub cert: Option<CertFacts>,
    /// Import the zoo's root into the device's external store first.
    pub import_ca: bool,
}

/// What the oracle knows of a zoo certificate: the facts in `certs/manifest.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertFacts {
    pub name: String,
    #[serde(default)]
    pub subject_cn: Option<String>,
    #[serde(default)]
    pub san: Vec<String>,
    /// The verdict of each flag alone (`accept` or an error class); `cn` is for the
    /// manifest's `server_address` and not used: the oracle matches names itself.
    pub expect: BTreeMap<String, String>,
    /// The certificate's OCSP responder (AIA), if it names one.
    #[serde(default)]
    pub ocsp_url: Option<String>,
    /// Its CRL distribution point, if it names one.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// What the responder says of it: `good`, `revoked`, `unknown`, `none`.
    #[serde(default)]
    pub ocsp_status: Option<String>,
    /// Whether the CRL lists it.
    #[serde(default)]
    pub crl_listed: bool,
    /// The CA that issued it (a `[ca.NAME]` of the manifest).
    #[serde(default)]
    pub issuer: Option<String>,
    /// When that CA's own certificate expires (RFC 3339), filled in from the
    /// manifest's CA table when the zoo is loaded.
    #[serde(default)]
    pub issuer_not_after: Option<String>,
}

impl CertFacts {
    /// Whether the CA that issued it is past its notAfter now: an expired intermediate
    /// in the presented chain, which SPEC §3.5's expiry check may fail or ignore.
    pub fn issuer_expired(&self) -> bool {
        use time::format_description::well_known::Rfc3339;
        self.issuer_not_after
            .as_deref()
            .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
            .is_some_and(|t| t < time::OffsetDateTime::now_utc())
    }
}

/// SPEC §3.5 revocation for a firmware that asks only some sources: OCSP first (if
/// it asks OCSP), then the CRL (if it fetches CRLs); neither answering is
/// `cert_revocation_unknown`. With both, this is the manifest's verdict.
pub fn revocation_by(cert: &CertFacts, ocsp: bool, crl: bool) -> &'static str {
    if ocsp && cert.ocsp_url.is_some() {
        match cert.ocsp_status.as_deref() {
            Some("good") => return "accept",
            Some("revoked") => return "cert_revoked",
            _ => {}
        }
    }
    if crl && cert.crl_url.is_some() {
        return if cert.crl_listed {
            "cert_revoked"
        } else {
            "accept"
        };
    }
    "cert_revocation_unknown"
}

/// What one certificate check alone makes of `cert` for a device told `server`:
/// `accept` or the error class (SPEC §3.5).
pub fn cert_check(cert: &CertFacts, check: Check, server: &str) -> String {
    if check == Check::Cn {
        return if name_matches(cert, server, false) {
            "accept".into()
        } else {
            "cert_name".into()
        };
    }
    cert.expect
        .get(check.as_str())
        .cloned()
        .unwrap_or_else(|| "accept".into())
}

/// SPEC §3.5 cn: the server address as typed against the subject CN, or a SAN entry of
/// the same kind (DNS for a host name, IP for a literal); a wildcard stands for one
/// left-most label. With `cn_only` (a variant) only the CN counts.
pub fn name_matches(cert: &CertFacts, server: &str, cn_only: bool) -> bool {
    let server = server.split('%').next().unwrap_or(server);
    let ip: Option<std::net::IpAddr> = server.parse().ok();
    let host_match = |pattern: &str| -> bool {
        let p = pattern.to_ascii_lowercase();
        let h = server.to_ascii_lowercase();
        match p.strip_prefix("*.") {
            Some(rest) => match h.split_once('.') {
                Some((first, tail)) => !first.is_empty() && tail == rest,
                None => false,
            },
            None => p == h,
        }
    };
    let cn_ok = cert.subject_cn.as_deref().is_some_and(|cn| match ip {
        Some(a) => cn.parse::<std::net::IpAddr>().ok() == Some(a),
        None => host_match(cn),
    });
    if cn_ok || cn_only {
        return cn_ok;
    }
    cert.san.iter().any(|s| match (ip, s.split_once(':')) {
        (Some(a), Some(("IP", v))) => v.parse::<std::net::IpAddr>().ok() == Some(a),
        (None, Some(("DNS", v))) => host_match(v),
        _ => false,
    })
}

/// Why a value breaks SPEC §1's input rules: the rule, in words (the text a
/// refusal names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    #[error("on or off")]
    NotOnOff,
    /// A value of a feature the firmware lacks (the profile's `unsupported`).
    #[error("not supported by this firmware (it lacks {0})")]
    Unsupported(&'static str),
    #[error("a number from {min} to {max}")]
    OutOfRange { min: u64, max: u64 },
    #[error("one of {}", .0.join(", "))]
    NotAChoice(&'static [&'static str]),
    #[error("an e-mail address (local@domain, RFC 5321) of at most 320 half-width characters, no spaces")]
    NotAnAddress,
    /// Too long, or a character the rule leaves out (not half-width, a quote).
    #[error("at most {max} characters")]
    BadText { max: usize },
    #[error("a host name, an IPv4 address or an IPv6 address (with %zone)")]
    NotAHost,
    #[error("{0} is not a mechanism the device implements")]
    NotImplemented(String),
    #[error("a set names {0} once")]
    Twice(String),
    #[error("IP addresses (IPv4 or IPv6, no %zone) separated by commas without spaces, or empty")]
    NotAnAddressList,
}

/// SPEC §1's input rules, the harness's reading: `Err(rule)` when the reference device
/// must refuse `value` for `key`.
pub fn validate(key: Key, value: &str) -> Result<(), InvalidValue> {
    validate_for(&DeviceFacts::default(), key, value)
}

/// SPEC §1's input rules for a device with `facts` (its profile's ranges where SPEC
/// marks †, and the AUTH mechanisms it implements).
pub fn validate_for(facts: &DeviceFacts, key: Key, value: &str) -> Result<(), InvalidValue> {
    if let Some(feature) = facts.lacks(key, value) {
        return Err(InvalidValue::Unsupported(feature));
    }
    let ipv6 = || {
        let addr = value.split('%').next().unwrap_or(value);
        addr.parse::<std::net::Ipv6Addr>().is_ok()
    };
    if matches!(key, Key::SmtpServer | Key::PopServer)
        && facts.unsupported.iter().any(|u| u == "ipv6")
        && ipv6()
    {
        return Err(InvalidValue::Unsupported("ipv6"));
    }
    use Key::*;
    match key {
        EmailEnabled | EmailScan | EmailNotify | EmailCounter | PopApop | PopBeforeSmtpEnabled
        | SmtpAuthEnabled | SmtpVerifyExpiry | SmtpVerifyCn | SmtpVerifyKeyUsage
        | SmtpVerifyChain | SmtpVerifyRevocation => boolean(value),
        SmtpTls => choice(value, &["none", "smtps", "starttls"]),
        PopTls => choice(value, &["none", "pop3s", "stls"]),
        SmtpAuthSource => choice(value, &["configured", "device_user"]),
        EnvelopeFromMode => choice(value, &["admin", "specified"]),
        LoadMode => choice(
            value,
            &[
                "none",
                "split",
                "abort_over_limit",
                "url_over_limit",
                "url_always",
            ],
        ),
        LoadMaxSize => choice(value, &["unlimited", "limited"]),
        SmtpPort | SmtpSslPort | PopPort | PopSslPort => number(value, 1, 65535),
        SmtpTimeout | PopBeforeSmtpWait | LoadSplitSize | LoadServerCapacity => {
            let r = facts.range(key);
            number(value, r.min, r.max)
        }
        AdminAddress | DeviceAddress | EnvelopeFromAddress => address(value),
        SmtpAuthUser | PopUser => text(value, 64, false, ""),
        SmtpAuthPassword | PopPassword => text(value, 64, true, "\""),
        SmtpAuthToken => text(value, 2048, true, "\""),
        SmtpAuthRealm => text(value, 253, true, ""),
        SmtpServer | PopServer => host(value),
        SmtpAuthMethods => methods(facts, value),
        NetDns => dns_servers(value),
    }
}

/// `net.dns` (SPEC §1: "comma list of IP addresses, default empty"): nothing, or
/// addresses joined by single commas, each an IPv4 dotted quad or an IPv6 address as
/// written bare (no brackets, port or zone).
fn dns_servers(v: &str) -> Result<(), InvalidValue> {
    let is_ip = |a: &str| {
        a.parse::<std::net::Ipv4Addr>().is_ok() || a.parse::<std::net::Ipv6Addr>().is_ok()
    };
    if v.is_empty() || v.split(',').all(is_ip) {
        Ok(())
    } else {
        Err(InvalidValue::NotAnAddressList)
    }
}

/// Printable ASCII (SPEC §1's half-width characters).
fn printable(v: &str) -> bool {
    v.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

fn boolean(value: &str) -> Result<(), InvalidValue> {
    match value {
        "on" | "off" => Ok(()),
        _ => Err(InvalidValue::NotOnOff),
    }
}

/// A decimal number in `lo..=hi` (no sign).
fn number(value: &str, lo: u64, hi: u64) -> Result<(), InvalidValue> {
    match value.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) && !value.starts_with('+') => Ok(()),
        _ => Err(InvalidValue::OutOfRange { min: lo, max: hi }),
    }
}

fn choice(value: &str, words: &'static [&'static str]) -> Result<(), InvalidValue> {
    if words.contains(&value) {
        Ok(())
    } else {
        Err(InvalidValue::NotAChoice(words))
    }
}

/// An RFC 5321 address of at most 320 half-width characters, or empty: a local part
/// of 1–64 characters without specials or empty dot-atoms, `@`, and a domain of at most
/// 255 characters that is a host name or a bracketed address literal (`[1.2.3.4]`,
/// `[IPv6:…]`; a bare IP address is not a domain).
fn address(value: &str) -> Result<(), InvalidValue> {
    if value.is_empty() {
        return Ok(());
    }
    if value.chars().count() > 320 || !printable(value) || value.contains(' ') {
        return Err(InvalidValue::NotAnAddress);
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(InvalidValue::NotAnAddress);
    };
    let local_ok = (1..=64).contains(&local.len())
        && !local.contains(['@', '<', '>', '(', ')', ',', ';', ':', '\\', '"', '[', ']'])
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = match domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        Some(lit) => match lit.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => lit.parse::<std::net::Ipv4Addr>().is_ok(),
        },
        None => host_name(domain, 255),
    };
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(InvalidValue::NotAnAddress)
    }
}

/// At most `max` characters, none of `forbid`: half-width (printable ASCII) only with
/// `half`, else full- or half-width characters, which a control character or a line or
/// paragraph separator is not.
fn text(value: &str, max: usize, half: bool, forbid: &str) -> Result<(), InvalidValue> {
    let not_a_character = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if value.chars().count() > max
        || (half && !printable(value))
        || value.chars().any(not_a_character)
        || value.chars().any(|c| forbid.contains(c))
    {
        Err(InvalidValue::BadText { max })
    } else {
        Ok(())
    }
}

/// `smtp.auth.methods`: `none`, or a set of mechanisms the device implements, each
/// named once.
fn methods(facts: &DeviceFacts, value: &str) -> Result<(), InvalidValue> {
    if value == "none" {
        return Ok(());
    }
    let mut seen: Vec<&str> = Vec::new();
    for m in value.split(',') {
        if !facts.mechanisms.iter().any(|x| x == m) {
            return Err(InvalidValue::NotImplemented(m.to_string()));
        }
        if seen.contains(&m) {
            return Err(InvalidValue::Twice(m.to_string()));
        }
        seen.push(m);
    }
    Ok(())
}

/// The mechanisms the reference device implements (gss-spnego needs a Kerberos realm,
/// ntlm is not implemented): what `smtp.auth.methods` may name.
pub const DEVICE_MECHANISMS: &[&str] = &["xoauth2", "digest-md5", "cram-md5", "login", "plain"];
/// `smtp.auth.methods` by default: every implemented mechanism; xoauth2, an
/// extension, only when named (docs/oracle.md).
pub const DEFAULT_METHODS: &[&str] = &["digest-md5", "cram-md5", "login", "plain"];
/// Every AUTH mechanism SPEC §1 names for `smtp.auth.methods`, in SPEC §3.7's
/// preference order (xoauth2 first of all).
pub const SPEC_MECHANISMS: &[&str] = &[
    "xoauth2",
    "gss-spnego",
    "ntlm",
    "digest-md5",
    "cram-md5",
    "login",
    "plain",
];

/// A numeric setting's range, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

/// The settings whose ranges SPEC marks † (a device profile may override them): key,
/// SPEC's range, and the type's own range (what any firmware's range must lie in).
pub const RANGED: &[(Key, Range, Range)] = &[
    (
        Key::SmtpTimeout,
        Range { min: 30, max: 300 },
        // seconds; a timeout of 0 never waits, a day is longer than any job
        Range {
            min: 1,
            max: 86_400,
        },
    ),
    (
        Key::PopBeforeSmtpWait,
        Range { min: 0, max: 60 },
        Range {
            min: 0,
            max: 86_400,
        },
    ),
    (
        Key::LoadSplitSize,
        Range {
            min: 100,
            max: 15_000,
        },
        // KB; a fragment holds at least one KB, at most 4 GB
        Range {
            min: 1,
            max: 4_194_304,
        },
    ),
    (
        Key::LoadServerCapacity,
        Range {
            min: 1,
            max: 102_400,
        },
        Range {
            min: 1,
            max: 4_194_304,
        },
    ),
];

/// What the harness must know of one firmware beyond SPEC: the variants it follows,
/// its ranges where SPEC marks †, the AUTH mechanisms it implements and its default
/// `smtp.auth.methods`. From the device profile; the default is the reference device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceFacts {
    pub variants: Vec<String>,
    /// By key, for each key of [`RANGED`].
    pub ranges: BTreeMap<Key, Range>,
    /// In SPEC §3.7's order.
    pub mechanisms: Vec<String>,
    /// The factory default of `smtp.auth.methods`, in SPEC §3.7's order.
    pub default_methods: Vec<String>,
    /// Features of [`FEATURES`] the firmware does not implement: their settings'
    /// values are expected refused, and the matrix tests them only that way.
    pub unsupported: Vec<String>,
}

impl Default for DeviceFacts {
    fn default() -> Self {
        DeviceFacts {
            variants: Vec::new(),
            ranges: RANGED.iter().map(|(k, r, _)| (*k, *r)).collect(),
            mechanisms: DEVICE_MECHANISMS.iter().map(|s| s.to_string()).collect(),
            default_methods: DEFAULT_METHODS.iter().map(|s| s.to_string()).collect(),
            unsupported: Vec::new(),
        }
    }
}

/// Features of SPEC a firmware may lack, each the setting values that need it. A
/// profile names the ones its firmware lacks in `unsupported`; the device is then
/// expected to refuse those values when set (nothing stored), and the matrix keeps
/// one refusal case per value instead of testing them.
pub const FEATURES: &[(&str, &[(Key, &str)])] = &[
    ("pop-before-smtp", &[(Key::PopBeforeSmtpEnabled, "on")]),
    ("apop", &[(Key::PopApop, "on")]),
    ("pop3s", &[(Key::PopTls, "pop3s")]),
    ("stls", &[(Key::PopTls, "stls")]),
    ("smtps", &[(Key::SmtpTls, "smtps")]),
    ("starttls", &[(Key::SmtpTls, "starttls")]),
    ("split", &[(Key::LoadMode, "split")]),
    ("abort-over-limit", &[(Key::LoadMode, "abort_over_limit")]),
    ("url-over-limit", &[(Key::LoadMode, "url_over_limit")]),
    ("url-always", &[(Key::LoadMode, "url_always")]),
    (
        "load-reduction",
        &[
            (Key::LoadMode, "split"),
            (Key::LoadMode, "abort_over_limit"),
            (Key::LoadMode, "url_over_limit"),
            (Key::LoadMode, "url_always"),
        ],
    ),
    ("check-cn", &[(Key::SmtpVerifyCn, "on")]),
    ("check-key-usage", &[(Key::SmtpVerifyKeyUsage, "on")]),
    ("check-chain", &[(Key::SmtpVerifyChain, "on")]),
    ("check-revocation", &[(Key::SmtpVerifyRevocation, "on")]),
    // How revocation is checked (no setting): the CRL only, or OCSP only.
    ("ocsp", &[]),
    ("crl", &[]),
    // IPv6 server addresses (`smtp.server`, `pop.server` as IPv6 literals).
    ("ipv6", &[]),
    // The certificate checks one by one; without it, one switch turns them all on or
    // off together (the matrix sets the five flags alike).
    ("separate-cert-checks", &[]),
    ("device-user", &[(Key::SmtpAuthSource, "device_user")]),
    (
        "envelope-from-specified",
        &[(Key::EnvelopeFromMode, "specified")],
    ),
];

impl DeviceFacts {
    /// Whether the firmware lacks `feature` (a word of [`FEATURES`]).
    pub fn lacks_feature(&self, feature: &str) -> bool {
        self.unsupported.iter().any(|u| u == feature)
    }

    /// The feature `key` set to `value` needs, if the firmware lacks it.
    pub fn lacks(&self, key: Key, value: &str) -> Option<&'static str> {
        FEATURES
            .iter()
            .filter(|(f, _)| self.unsupported.iter().any(|u| u == f))
            .find(|(_, kv)| kv.iter().any(|(k, v)| *k == key && *v == value))
            .map(|(f, _)| *f)
    }

    /// The reference device following `variants`.
    pub fn with_variants(variants: &[String]) -> Self {
        DeviceFacts {
            variants: variants.to_vec(),
            ..DeviceFacts::default()
        }
    }

    /// The device's range of a key of [`RANGED`] (SPEC's when the key is unknown).
    pub fn range(&self, key: Key) -> Range {
        self.ranges
            .get(&key)
            .copied()
            .or_else(|| {
                RANGED
                    .iter()
                    .find(|(k, _, _)| *k == key)
                    .map(|(_, r, _)| *r)
            })
            .unwrap_or(Range { min: 0, max: 0 })
    }

    /// The factory default of `smtp.auth.methods` in SPEC §1's value syntax.
    pub fn default_methods_value(&self) -> String {
        if self.default_methods.is_empty() {
            "none".into()
        } else {
            self.default_methods.join(",")
        }
    }
}

/// A host name (RFC 1123, at most 253 characters), an IPv4 address or an IPv6 address
/// with an optional `%zone`, or empty.
fn host(v: &str) -> Result<(), InvalidValue> {
    let rule = || Err(InvalidValue::NotAHost);
    if v.is_empty() {
        return Ok(());
    }
    if v.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let (addr, zone) = match v.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (v, None),
    };
    if addr.parse::<std::net::Ipv6Addr>().is_ok() {
        return match zone {
            Some(z)
                if z.is_empty()
                    || !z
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') =>
            {
                rule()
            }
            _ => Ok(()),
        };
    }
    if zone.is_none() && host_name(v, 253) {
        Ok(())
    } else {
        rule()
    }
}

/// An RFC 1123 host name of at most `max` characters (the trailing dot of a fully
/// qualified name counted): labels of 1–63 letters, digits and hyphens, no hyphen at
/// either end, at most one trailing dot, and a last label that is not all digits (RFC
/// 1123 §2.1, RFC 3696 §2: so `1.2.3`, `999.1.1.1` and `12345` are not host names).
fn host_name(v: &str, max: usize) -> bool {
    if v.len() > max {
        return false;
    }
    let name = v.strip_suffix('.').unwrap_or(v);
    let labels_ok = name.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    let numeric_last = name
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !numeric_last
}

/// Settings as the device holds them after a case's `apply`: defaults plus changes.
#[derive(Debug, Clone, Default)]
pub struct SettingView {
    values: BTreeMap<Key, String>,
}

impl SettingView {
    /// Defaults, then each pair in order.
    pub fn from_pairs(pairs: &[(Key, String)]) -> Self {
        Self::from_pairs_for(&DeviceFacts::default(), pairs)
    }

    /// The defaults of a device with `facts`, then each pair in order.
    pub fn from_pairs_for(facts: &DeviceFacts, pairs: &[(Key, String)]) -> Self {
        let mut values: BTreeMap<Key, String> =
            DEFAULTS.iter().map(|(k, v)| (*k, v.to_string())).collect();
        values.insert(Key::SmtpAuthMethods, facts.default_methods_value());
        for (k, v) in pairs {
            values.insert(*k, v.clone());
        }
        SettingView { values }
    }

    pub fn get(&self, key: Key) -> &str {
        self.values.get(&key).map(String::as_str).unwrap_or("")
    }

    pub fn on(&self, key: Key) -> bool {
        self.get(key) == "on"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(ocsp: Option<&str>, crl: Option<bool>) -> CertFacts {
        CertFacts {
            name: "c".into(),
            subject_cn: None,
            san: Vec::new(),
            expect: BTreeMap::new(),
            ocsp_url: ocsp.map(|_| "http://r/ocsp".into()),
            crl_url: crl.map(|_| "http://r/crl".into()),
            ocsp_status: ocsp.map(str::to_string),
            crl_listed: crl.unwrap_or(false),
            issuer: None,
            issuer_not_after: None,
        }
    }

    #[test]
    fn revocation_by_the_sources_a_firmware_asks() {
        // Revoked in the CRL only: both and CRL-only find it, OCSP-only cannot.
        let c = cert(None, Some(true));
        assert_eq!(revocation_by(&c, true, true), "cert_revoked");
        assert_eq!(revocation_by(&c, false, true), "cert_revoked");
        assert_eq!(revocation_by(&c, true, false), "cert_revocation_unknown");
        // OCSP unknown, CRL clean: the fallback accepts, OCSP alone cannot tell.
        let c = cert(Some("unknown"), Some(false));
        assert_eq!(revocation_by(&c, true, true), "accept");
        assert_eq!(revocation_by(&c, true, false), "cert_revocation_unknown");
        // Revoked by OCSP, not listed: OCSP finds it first; the CRL alone does not.
        let c = cert(Some("revoked"), Some(false));
        assert_eq!(revocation_by(&c, true, true), "cert_revoked");
        assert_eq!(revocation_by(&c, false, true), "accept");
    }

    #[test]
    fn net_dns_is_a_comma_list_of_ip_addresses() {
        for ok in [
            "",
            "192.0.2.53",
            "::1,127.0.0.1",
            "2001:DB8::53,192.0.2.53,192.0.2.53",
        ] {
            assert_eq!(validate(Key::NetDns, ok), Ok(()), "{ok:?}");
        }
        for bad in [
            ",",
            "1.2.3.4,",
            "1.2.3.4, 5.6.7.8",
            "1.2.3",
            "fe80::1%eth0",
            "[::1]",
            "ns.example",
        ] {
            assert_eq!(
                validate(Key::NetDns, bad),
                Err(InvalidValue::NotAnAddressList),
                "{bad:?}"
            );
        }
        assert_eq!(Key::NetDns.default_value(), "");
    }

    #[test]
    fn every_key_has_one_default_and_parses_back() {
        for k in Key::ALL {
            assert_eq!(DEFAULTS.iter().filter(|(d, _)| d == k).count(), 1, "{k}");
            assert_eq!(k.as_str().parse::<Key>(), Ok(*k));
        }
        assert_eq!(DEFAULTS.len(), Key::ALL.len());
        let e = "smtp.tsl".parse::<Key>().expect_err("not a key");
        assert_eq!(e.to_string(), "\"smtp.tsl\" is not a setting (SPEC §1)");
    }

    #[test]
    fn keys_read_as_their_names() {
        assert_eq!(format!("{:?}", Key::SmtpTls), "\"smtp.tls\"");
        assert_eq!(Key::SmtpTls.to_string(), "smtp.tls");
        // Ordered by name, as string keys were.
        let mut by_name: Vec<Key> = Key::ALL.to_vec();
        by_name.sort();
        let mut names: Vec<&str> = Key::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            by_name.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            names
        );
    }

    #[test]
    fn refusals_name_the_rule() {
        let f = DeviceFacts::default();
        let rule = |k, v| validate_for(&f, k, v).map_err(|e| e.to_string());
        assert_eq!(rule(Key::EmailScan, "yes"), Err("on or off".into()));
        assert_eq!(
            rule(Key::SmtpTimeout, "29"),
            Err("a number from 30 to 300".into())
        );
        assert_eq!(
            rule(Key::SmtpTls, "ssl"),
            Err("one of none, smtps, starttls".into())
        );
        assert_eq!(
            rule(Key::SmtpAuthMethods, "ntlm"),
            Err("ntlm is not a mechanism the device implements".into())
        );
        assert_eq!(
            rule(Key::SmtpAuthPassword, "a\"b"),
            Err("at most 64 characters".into())
        );
        assert_eq!(
            rule(Key::SmtpServer, "mx.hil.test:25"),
            Err("a host name, an IPv4 address or an IPv6 address (with %zone)".into())
        );
        assert!(rule(Key::DeviceAddress, "with space@hil.test").is_err());
        assert_eq!(rule(Key::PopTls, "stls"), Ok(()));
        assert_eq!(
            rule(Key::SmtpAuthMethods, "plain,plain"),
            Err("a set names plain once".into())
        );
    }

    #[test]
    fn hosts_and_addresses_by_spec() {
        fn ok(k: Key, v: &str) -> bool {
            validate(k, v).is_ok()
        }
        for bad in [
            "999.1.1.1",
            "1.2.3",
            "12345",
            "a.123",
            "1.2.3.4.",
            "a..",
            "01.2.3.4",
        ] {
            assert!(!ok(Key::SmtpServer, bad), "{bad}");
        }
        for good in [
            "1.2.3.4",
            "mx.hil.test",
            "mx.hil.test.",
            "123.example",
            "::1%lo",
        ] {
            assert!(ok(Key::SmtpServer, good), "{good}");
        }
        for bad in ["a@::1", "a@1.2.3.4", "a@[::1]", "a@[IPv6:::1%lo]", "a@b..c"] {
            assert!(!ok(Key::DeviceAddress, bad), "{bad}");
        }
        for good in ["a@[IPv6:::1]", "a@[1.2.3.4]", "a.b@hil.test"] {
            assert!(ok(Key::DeviceAddress, good), "{good}");
        }
        // 64 + 1 + 255 = 320: the longest address; a 255-character domain is longer
        // than a host name may be.
        let domain = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(domain.len(), 255);
        let longest = format!("{}@{domain}", "l".repeat(64));
        assert!(ok(Key::DeviceAddress, &longest));
        assert!(!ok(Key::SmtpServer, &domain));
        assert!(!ok(
            Key::DeviceAddress,
            &format!("{}@{domain}", "l".repeat(65))
        ));
        assert!(!ok(Key::DeviceAddress, &format!("l@{domain}a")));
        assert!(!ok(Key::SmtpAuthUser, "a\nb"));
        assert!(ok(Key::SmtpAuthUser, "ユーザー"));
    }
}
