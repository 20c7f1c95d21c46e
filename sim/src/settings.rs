//! The settings model: every key of SPEC §1 with its type, range, default and
//! character rules, and a store that changes only when a whole change is valid.
//!
//! Values are kept in their canonical console form (SPEC "Value syntax"), so what
//! `get` answers can be set back unchanged; typed accessors read them for the jobs.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::text::quote;

/// AUTH mechanisms in the device's order of preference (SPEC §3.7), xoauth2 aside.
pub const MECHANISM_ORDER: &[&str] = &[
    "gss-spnego",
    "ntlm",
    "digest-md5",
    "cram-md5",
    "login",
    "plain",
];

/// Mechanisms this simulated firmware implements; the others are refused when set.
pub const IMPLEMENTED_MECHANISMS: &[&str] =
    &["digest-md5", "cram-md5", "login", "plain", "xoauth2"];

/// The type and rule of one key.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// A decimal integer within `min..=max`.
    Int {
        min: u64,
        max: u64,
    },
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
    /// A host name, an IPv4 address or an IPv6 address with optional `%zone`; or empty.
    Host,
    /// An e-mail address of at most `max` half-width characters; or empty.
    Email {
        max: usize,
    },
    /// Free text of at most `max` characters; `half_width` allows printable ASCII only;
    /// `forbid` lists characters that are refused.
    Text {
        max: usize,
        half_width: bool,
        forbid: &'static str,
    },
    /// A set of AUTH mechanism names, comma-separated, `none` for the empty set.
    Mechanisms,
    /// IP addresses (IPv4, IPv6 without a zone), comma-separated without spaces; or
    /// empty (`net.dns`).
    Addresses,
}

/// Declares [`Key`] with its console text, in the order `show` lists the keys, and
/// with it [`Key::ALL`] and [`Key::as_str`], so that the three can never disagree.
macro_rules! keys {
    ($($(#[$doc:meta])* $key:ident = $text:literal,)*) => {
        /// A setting the device knows: every key of SPEC §1, the POP keys and the
        /// XOAUTH2 token. Code names a setting by this enum, so a misspelt key does
        /// not compile; the console's text becomes a `Key` in one place,
        /// [`Key::parse`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Key {
            $($(#[$doc])* $key,)*
        }

        impl Key {
            /// Every key, in the order `show` lists them.
            pub const ALL: &'static [Key] = &[$(Key::$key,)*];

            /// The key as the console, device profiles and reports write it
            /// (`smtp.auth.methods`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Key::$key => $text,)*
                }
            }
        }
    };
}

keys! {
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
    /// The XOAUTH2 bearer token (an extension of SPEC §1).
    SmtpAuthToken = "smtp.auth.token",
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
    /// The DNS servers (SPEC §1, from the network settings).
    NetDns = "net.dns",
}

/// The rule an unknown key breaks.
const UNKNOWN_KEY: &str = "unknown key (see `show` for the keys)";

/// A key the device does not know, as the console gave it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {}", UNKNOWN_KEY)]
pub struct UnknownKey {
    pub key: String,
}

impl Key {
    /// The key the console's text names: the one place where text becomes a key.
    pub fn parse(text: &str) -> Result<Key, UnknownKey> {
        Key::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| UnknownKey { key: text.into() })
    }

    /// The key's type, rule, default and secrecy.
    pub fn def(self) -> &'static KeyDef {
        // SCHEMA is built from ALL, which lists the keys in declaration order.
        &SCHEMA[self as usize]
    }

    /// The type, rule, default and secrecy of each key (SPEC §1).
    const fn define(self) -> KeyDef {
        use Key::*;
        match self {
            EmailEnabled | EmailScan | EmailNotify | EmailCounter => def(self, Kind::Bool, "on"),
            SmtpServer | PopServer => def(self, Kind::Host, ""),
            SmtpTls => def(self, Kind::Choice(&["none", "smtps", "starttls"]), "none"),
            SmtpPort => def(self, PORT, "25"),
            SmtpSslPort => def(self, PORT, "465"),
            SmtpVerifyExpiry => def(self, Kind::Bool, "on"),
            SmtpVerifyCn | SmtpVerifyKeyUsage | SmtpVerifyChain | SmtpVerifyRevocation => {
                def(self, Kind::Bool, "off")
            }
            SmtpTimeout => def(self, Kind::Int { min: 30, max: 300 }, "60"),
            AdminAddress | DeviceAddress | EnvelopeFromAddress => def(self, ADDRESS, ""),
            PopBeforeSmtpEnabled | SmtpAuthEnabled | PopApop => def(self, Kind::Bool, "off"),
            PopBeforeSmtpWait => def(self, Kind::Int { min: 0, max: 60 }, "5"),
            SmtpAuthMethods => def(self, Kind::Mechanisms, "digest-md5,cram-md5,login,plain"),
            SmtpAuthUser | PopUser => def(self, USER, ""),
            SmtpAuthPassword | PopPassword => secret(self, PASSWORD),
            SmtpAuthToken => secret(
                self,
                Kind::Text {
                    max: 2048,
                    half_width: true,
                    forbid: "\"",
                },
            ),
            SmtpAuthRealm => def(
                self,
                Kind::Text {
                    max: 253,
                    half_width: true,
                    forbid: "",
                },
                "",
            ),
            SmtpAuthSource => def(
                self,
                Kind::Choice(&["configured", "device_user"]),
                "configured",
            ),
            EnvelopeFromMode => def(self, Kind::Choice(&["admin", "specified"]), "admin"),
            LoadMode => def(
                self,
                Kind::Choice(&[
                    "none",
                    "split",
                    "abort_over_limit",
                    "url_over_limit",
                    "url_always",
                ]),
                "none",
            ),
            LoadSplitSize => def(
                self,
                Kind::Int {
                    min: 100,
                    max: 15000,
                },
                "1024",
            ),
            LoadMaxSize => def(self, Kind::Choice(&["unlimited", "limited"]), "unlimited"),
            LoadServerCapacity => def(
                self,
                Kind::Int {
                    min: 1,
                    max: 102400,
                },
                "10240",
            ),
            PopTls => def(self, Kind::Choice(&["none", "pop3s", "stls"]), "none"),
            PopPort => def(self, PORT, "110"),
            NetDns => def(self, Kind::Addresses, ""),
            PopSslPort => def(self, PORT, "995"),
        }
    }
}

/// `smtp.auth.methods`: the key as the console writes it.
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Key {
    type Err = UnknownKey;

    fn from_str(text: &str) -> Result<Key, UnknownKey> {
        Key::parse(text)
    }
}

/// How a console shows a secret's value (SPEC §6: passwords and tokens are
/// write-only).
pub const SECRET_SHOWN: &str = "***";

/// One setting: its console key, type, factory default and whether it is a secret.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    /// The key as the console writes it ([`Key::as_str`]).
    pub key: &'static str,
    /// The key itself.
    pub id: Key,
    pub kind: Kind,
    pub default: &'static str,
    pub secret: bool,
}

const fn def(key: Key, kind: Kind, default: &'static str) -> KeyDef {
    KeyDef {
        key: key.as_str(),
        id: key,
        kind,
        default,
        secret: false,
    }
}

const fn secret(key: Key, kind: Kind) -> KeyDef {
    KeyDef {
        key: key.as_str(),
        id: key,
        kind,
        default: "",
        secret: true,
    }
}

const PORT: Kind = Kind::Int { min: 1, max: 65535 };
const ADDRESS: Kind = Kind::Email { max: 320 };
const USER: Kind = Kind::Text {
    max: 64,
    half_width: false,
    forbid: "",
};
const PASSWORD: Kind = Kind::Text {
    max: 64,
    half_width: true,
    forbid: "\"",
};

/// The number of keys.
const KEYS: usize = Key::ALL.len();

/// [`SCHEMA`]'s array: each key's definition, at the key's index.
const DEFINITIONS: [KeyDef; KEYS] = {
    let mut out = [def(Key::EmailEnabled, Kind::Bool, ""); KEYS];
    let mut i = 0;
    while i < KEYS {
        out[i] = Key::ALL[i].define();
        i += 1;
    }
    out
};

/// Every key of SPEC §1, the POP keys included, in the order `show` lists them.
pub const SCHEMA: &[KeyDef] = &DEFINITIONS;

/// Looks a key up in the schema by its console text.
pub fn lookup(key: &str) -> Option<&'static KeyDef> {
    Key::parse(key).ok().map(Key::def)
}

/// A refused value: the key, the value as given and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The key as given (an unknown key too).
    pub key: String,
    pub value: String,
    pub rule: String,
    /// Whether the value is a secret, never to be shown.
    pub secret: bool,
}

impl Refusal {
    fn new(key: Key, value: &str, rule: impl Into<String>) -> Refusal {
        Refusal {
            key: key.as_str().to_string(),
            value: value.to_string(),
            rule: rule.into(),
            secret: key.def().secret,
        }
    }

    fn unknown(e: UnknownKey, value: &str) -> Refusal {
        Refusal {
            key: e.key,
            value: value.to_string(),
            rule: UNKNOWN_KEY.to_string(),
            secret: false,
        }
    }

    /// The refused value as a console shows it: quoted, or `*** (N characters)` for a
    /// secret.
    pub fn shown_value(&self) -> String {
        if self.secret {
            format!("*** ({} characters)", self.value.chars().count())
        } else {
            quote(&self.value)
        }
    }
}

/// `KEY: VALUE refused: RULE`, the value as [`Refusal::shown_value`] shows it.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} refused: {}",
            self.key,
            self.shown_value(),
            self.rule
        )
    }
}

impl std::error::Error for Refusal {}

/// A change refused as a whole: every refusal, in the order the keys were given.
/// Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub Vec<Refusal>);

/// The refusals joined by `; `, then `; nothing changed` (the reference dialect's
/// `ERR config` detail).
impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.0 {
            write!(f, "{r}; ")?;
        }
        f.write_str("nothing changed")
    }
}

impl std::error::Error for Refused {}

/// Planted input behaviours (`--quirk`, see `options::Quirks`): what the settings
/// accept and show when they are on. All off is SPEC's behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputQuirks {
    /// An e-mail address of at most 253 characters (SPEC §1: 320, domain ≤255).
    pub address_max_253: bool,
    /// All-numeric servers that are no IPv4 address (`999.1.1.1`, `1.2.3`,
    /// `12345`), an unbracketed IPv6 address as an e-mail domain, and a mechanism
    /// listed twice are accepted.
    pub lenient: bool,
    /// Passwords and the token are shown in clear.
    pub password_shown: bool,
}

/// Checks `value` against the rule of `key`; answers the canonical form.
pub fn validate(key: Key, value: &str) -> Result<String, Refusal> {
    validate_with(key, value, InputQuirks::default())
}

/// [`validate`] on a device planted with `quirks`.
pub fn validate_with(key: Key, value: &str, quirks: InputQuirks) -> Result<String, Refusal> {
    let d = key.def();
    let r = |rule: String| Refusal::new(key, value, rule);
    match d.kind {
        Kind::Bool => match value {
            "on" | "off" => Ok(value.to_string()),
            _ => Err(r("must be on or off".into())),
        },
        Kind::Int { min, max } => {
            let rule = format!("must be a decimal integer from {min} to {max}");
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(r(rule));
            }
            match value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
                _ => Err(r(rule)),
            }
        }
        Kind::Choice(words) => {
            if words.contains(&value) {
                Ok(value.to_string())
            } else {
                Err(r(format!("must be one of {}", words.join(", "))))
            }
        }
        Kind::Host => {
            if value.is_empty() {
                return Ok(String::new());
            }
            check_host_with(value, quirks.lenient)
                .map(|_| value.to_string())
                .map_err(|e| r(e.to_string()))
        }
        Kind::Email { max } => {
            if value.is_empty() {
                return Ok(String::new());
            }
            check_email_with(value, max, quirks)
                .map(|_| value.to_string())
                .map_err(|e| r(e.to_string()))
        }
        Kind::Text {
            max,
            half_width,
            forbid,
        } => {
            let n = value.chars().count();
            if n > max {
                return Err(r(format!("at most {max} characters (got {n})")));
            }
            // A secret's characters are never named in a refusal.
            let found = |c: char| {
                if d.secret {
                    String::new()
                } else {
                    format!(", found {c:?}")
                }
            };
            if half_width {
                if let Some(c) = value.chars().find(|c| !(' '..='~').contains(c)) {
                    return Err(r(format!(
                        "half-width (printable ASCII) characters only{}",
                        found(c)
                    )));
                }
            } else if let Some(c) = value
                .chars()
                .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            {
                return Err(r(format!("control characters are not allowed{}", found(c))));
            }
            if let Some(c) = value.chars().find(|c| forbid.contains(*c)) {
                return Err(r(format!("the character {c:?} is not allowed")));
            }
            Ok(value.to_string())
        }
        Kind::Mechanisms => {
            canonical_mechanisms(value, quirks.lenient).map_err(|e| r(e.to_string()))
        }
        Kind::Addresses => check_addresses(value)
            .map(|_| value.to_string())
            .map_err(|e| r(e.to_string())),
    }
}

/// Why a list of DNS server addresses is refused; it reads after "must be".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressListError {
    #[error(
        "a comma-separated list of IP addresses without spaces, or empty; an empty entry found"
    )]
    EmptyEntry,
    #[error("a comma-separated list of IP addresses (IPv4 or IPv6, no %zone, no spaces), or empty; {0:?} is not an IP address")]
    NotAnAddress(String),
}

/// `net.dns`: empty, or IPv4 and IPv6 addresses (no zone, no brackets, no port)
/// separated by commas without spaces. The servers, in the order the device asks them.
pub fn check_addresses(value: &str) -> Result<Vec<std::net::IpAddr>, AddressListError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|entry| {
            if entry.is_empty() {
                return Err(AddressListError::EmptyEntry);
            }
            entry
                .parse::<std::net::IpAddr>()
                .map_err(|_| AddressListError::NotAnAddress(entry.into()))
        })
        .collect()
}

/// Why a set of AUTH mechanisms is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MechanismError {
    #[error(
        "unknown mechanism {0:?}; a comma-separated set of {words} (no spaces), or none",
        words = MECHANISM_WORDS.join(", ")
    )]
    Unknown(String),
    #[error("mechanism {name} cannot be enabled: {why}")]
    NotImplemented { name: String, why: &'static str },
    #[error("mechanism {0} is listed twice")]
    Twice(String),
}

/// Every mechanism word of `smtp.auth.methods`, in the order a canonical set lists
/// them: xoauth2 first of all when enabled (SPEC §3.7), then [`MECHANISM_ORDER`].
const MECHANISM_WORDS: &[&str] = &[
    "xoauth2",
    "gss-spnego",
    "ntlm",
    "digest-md5",
    "cram-md5",
    "login",
    "plain",
];

/// The canonical set; `lenient` (a planted bug) lets a name come twice.
fn canonical_mechanisms(value: &str, lenient: bool) -> Result<String, MechanismError> {
    if value == "none" {
        return Ok("none".into());
    }
    let mut chosen: Vec<&str> = Vec::new();
    for name in value.split(',') {
        if !MECHANISM_WORDS.contains(&name) {
            return Err(MechanismError::Unknown(name.into()));
        }
        if !IMPLEMENTED_MECHANISMS.contains(&name) {
            let why = match name {
                "gss-spnego" => "it needs a Kerberos realm, which this device does not have",
                _ => "this firmware does not implement it",
            };
            return Err(MechanismError::NotImplemented {
                name: name.into(),
                why,
            });
        }
        if chosen.contains(&name) && !lenient {
            return Err(MechanismError::Twice(name.into()));
        }
        chosen.push(name);
    }
    let ordered: Vec<&str> = MECHANISM_WORDS
        .iter()
        .copied()
        .filter(|m| chosen.contains(m))
        .collect();
    Ok(ordered.join(","))
}

/// The rule of `smtp.server`, the start of every [`HostError`].
const HOST_RULE: &str = "must be a host name (RFC 1123, at most 253 characters), an IPv4 address or an IPv6 address with optional %zone";

/// Why a value is not one of the three address forms of `smtp.server` (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("{rule}; {addr:?} is not an IPv6 address", rule = HOST_RULE)]
    NotIpv6 { addr: String },
    #[error("{rule}; the zone {zone:?} is not an interface name or index", rule = HOST_RULE)]
    BadZone { zone: String },
    #[error("{rule}; {value:?} looks like an IPv4 address but is not one", rule = HOST_RULE)]
    NotIpv4 { value: String },
    #[error("{rule}; {0}", rule = HOST_RULE)]
    Name(HostnameError),
}

/// Why a value is not a host name (RFC 1123).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostnameError {
    #[error("{got} characters is longer than {max}")]
    TooLong { got: usize, max: usize },
    #[error("it has an empty label")]
    EmptyLabel,
    #[error("the label {0:?} is longer than 63 characters")]
    LongLabel(String),
    #[error("the character {0:?} is not allowed in a host name")]
    BadCharacter(char),
    #[error("the label {0:?} starts or ends with '-'")]
    Hyphen(String),
    #[error("the last label {0:?} is all digits (RFC 1123 §2.1)")]
    NumericLast(String),
}

/// Checks the three address forms of `smtp.server` (SPEC §1).
pub fn check_host(value: &str) -> Result<(), HostError> {
    check_host_with(value, false)
}

/// [`check_host`]; `lenient` (a planted bug) takes an all-numeric value that is no
/// IPv4 address (`999.1.1.1`, `1.2.3`, `12345`) as a host name.
pub fn check_host_with(value: &str, lenient: bool) -> Result<(), HostError> {
    if value.contains(':') {
        let (addr, zone) = match value.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (value, None),
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(HostError::NotIpv6 { addr: addr.into() });
        }
        if let Some(z) = zone {
            if z.is_empty()
                || !z
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(HostError::BadZone { zone: z.into() });
            }
        }
        return Ok(());
    }
    let labels: Vec<&str> = value.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        if lenient {
            return Ok(());
        }
        return value
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| HostError::NotIpv4 {
                value: value.into(),
            });
    }
    check_hostname(value, 253).map_err(HostError::Name)
}

/// A host name of at most `max` characters (253; an e-mail domain may have 255,
/// SPEC §1), labels of at most 63.
fn check_hostname(value: &str, max: usize) -> Result<(), HostnameError> {
    if value.len() > max {
        return Err(HostnameError::TooLong {
            got: value.len(),
            max,
        });
    }
    let trimmed = value.strip_suffix('.').unwrap_or(value);
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(HostnameError::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(HostnameError::LongLabel(label.into()));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(HostnameError::BadCharacter(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostnameError::Hyphen(label.into()));
        }
    }
    match trimmed.rsplit('.').next() {
        Some(last) if last.bytes().all(|b| b.is_ascii_digit()) => {
            Err(HostnameError::NumericLast(last.into()))
        }
        _ => Ok(()),
    }
}

/// What an e-mail address must be and a value is not; it reads after "must be"
/// (`ADDRESS must be an e-mail address local@domain (no '@' found)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("an e-mail address of at most {max} characters (got {got})")]
    TooLong { max: usize, got: usize },
    #[error("an e-mail address of half-width characters without spaces, found {0:?}")]
    NotHalfWidth(char),
    #[error("an e-mail address local@domain (no '@' found)")]
    NoAt,
    #[error("an e-mail address whose local part has 1 to 64 characters")]
    LocalLength,
    #[error("an e-mail address whose local part has no special characters")]
    LocalSpecial,
    #[error("an e-mail address whose local part has no empty dot-separated atom")]
    LocalEmptyAtom,
    #[error("an e-mail address whose domain literal {0} is an IP address")]
    BadLiteral(String),
    #[error("an e-mail address whose domain is a host name: {0}")]
    Domain(HostnameError),
}

/// An e-mail address: `local@domain`, printable ASCII without spaces, at most `max`
/// characters, the local part at most 64, the domain a host name of at most 255
/// characters (labels ≤63) or an address literal (SPEC §1).
pub fn check_email(value: &str, max: usize) -> Result<(), AddressError> {
    check_email_with(value, max, InputQuirks::default())
}

/// [`check_email`] on a device planted with `quirks`: `address_max_253` limits the
/// whole address to 253 characters, `lenient` takes an unbracketed IPv6 address as
/// the domain.
pub fn check_email_with(value: &str, max: usize, quirks: InputQuirks) -> Result<(), AddressError> {
    let max = if quirks.address_max_253 {
        max.min(253)
    } else {
        max
    };
    let n = value.chars().count();
    if n > max {
        return Err(AddressError::TooLong { max, got: n });
    }
    if let Some(c) = value.chars().find(|c| !('!'..='~').contains(c)) {
        return Err(AddressError::NotHalfWidth(c));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err(AddressError::NoAt);
    };
    if local.is_empty() || local.len() > 64 {
        return Err(AddressError::LocalLength);
    }
    if local.contains('@')
        || local.contains(['<', '>', '(', ')', ',', ';', ':', '\\', '"', '[', ']'])
    {
        return Err(AddressError::LocalSpecial);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::LocalEmptyAtom);
    }
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = match lit.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => lit.parse::<Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(())
        } else {
            Err(AddressError::BadLiteral(domain.into()))
        };
    }
    if quirks.lenient && domain.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    check_hostname(domain, 255).map_err(AddressError::Domain)
}

/// The stored settings, always valid; changed only through [`Settings::set`],
/// [`Settings::apply`] and [`Settings::apply_text`], which change everything asked or
/// nothing.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Each key's canonical value, at the key's index.
    values: Vec<String>,
    /// Setting values this firmware does not support (`--without`): refused.
    lacks: Vec<(Key, &'static str)>,
    /// IPv6 server addresses are refused (`--without ipv6`).
    no_ipv6: bool,
    /// One switch for every certificate check (`--without separate-cert-checks`):
    /// setting any `smtp.verify.*` sets all five.
    one_check_switch: bool,
    /// Planted input behaviours (`--quirk`).
    quirks: InputQuirks,
}

/// The certificate check flags (SPEC §3.5).
const CHECK_KEYS: [Key; 5] = [
    Key::SmtpVerifyExpiry,
    Key::SmtpVerifyCn,
    Key::SmtpVerifyKeyUsage,
    Key::SmtpVerifyChain,
    Key::SmtpVerifyRevocation,
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: SCHEMA.iter().map(|d| d.default.to_string()).collect(),
            lacks: Vec::new(),
            no_ipv6: false,
            one_check_switch: false,
            quirks: InputQuirks::default(),
        }
    }
}

impl Settings {
    /// The canonical value of `key`, as `get` answers it.
    pub fn get(&self, key: Key) -> &str {
        self.values
            .get(key as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Factory settings of a firmware that lacks the `(key, value)` settings in
    /// `lacks` (they are refused when set).
    pub fn with_lacks(
        lacks: Vec<(Key, &'static str)>,
        no_ipv6: bool,
        one_check_switch: bool,
    ) -> Settings {
        let mut s = Settings {
            lacks,
            no_ipv6,
            one_check_switch,
            ..Settings::default()
        };
        if one_check_switch {
            // The one switch's factory setting: on (the expiry check's default).
            let on = s.get(Key::SmtpVerifyExpiry).to_string();
            s.store(vec![(Key::SmtpVerifyExpiry, on)]);
        }
        s
    }

    /// These settings on a device planted with `quirks`.
    pub fn with_quirks(self, quirks: InputQuirks) -> Settings {
        Settings { quirks, ..self }
    }

    /// The planted input behaviours these settings follow.
    pub fn quirks(&self) -> InputQuirks {
        self.quirks
    }

    /// [`validate`], and refused if this firmware lacks the feature.
    fn check(&self, key: Key, value: &str) -> Result<String, Refusal> {
        let v = validate_with(key, value, self.quirks)?;
        if self.lacks.iter().any(|(k, lv)| *k == key && *lv == v) {
            return Err(Refusal::new(key, value, "not supported by this firmware"));
        }
        let ipv6 = v
            .split('%')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        if self.no_ipv6 && matches!(key, Key::SmtpServer | Key::PopServer) && ipv6 {
            return Err(Refusal::new(
                key,
                value,
                "IPv6 addresses are not supported by this firmware",
            ));
        }
        Ok(v)
    }

    /// Sets one key; on refusal nothing changes.
    pub fn set(&mut self, key: Key, value: &str) -> Result<(), Refusal> {
        let v = self.check(key, value)?;
        self.store(vec![(key, v)]);
        Ok(())
    }

    /// Sets every pair or, if any is refused, none; answers every refusal.
    pub fn apply(&mut self, pairs: &[(Key, &str)]) -> Result<(), Refused> {
        let checked: Vec<_> = pairs
            .iter()
            .map(|(k, v)| self.check(*k, v).map(|c| (*k, c)))
            .collect();
        self.apply_all(checked.into_iter())
    }

    /// [`Settings::apply`] for keys as the console's text gives them: an unknown key
    /// is refused like a bad value, in its place among the others.
    pub fn apply_text(&mut self, pairs: &[(&str, &str)]) -> Result<(), Refused> {
        let checked: Vec<_> = pairs
            .iter()
            .map(|(k, v)| match Key::parse(k) {
                Ok(key) => self.check(key, v).map(|c| (key, c)),
                Err(e) => Err(Refusal::unknown(e, v)),
            })
            .collect();
        self.apply_all(checked.into_iter())
    }

    /// Stores every checked value, or none if any was refused.
    fn apply_all(
        &mut self,
        checked: impl Iterator<Item = Result<(Key, String), Refusal>>,
    ) -> Result<(), Refused> {
        let mut staged = Vec::new();
        let mut refused = Vec::new();
        for c in checked {
            match c {
                Ok(kv) => staged.push(kv),
                Err(e) => refused.push(e),
            }
        }
        if !refused.is_empty() {
            return Err(Refused(refused));
        }
        self.store(staged);
        Ok(())
    }

    fn store(&mut self, checked: Vec<(Key, String)>) {
        for (key, value) in checked {
            let keys: &[Key] = if self.one_check_switch && CHECK_KEYS.contains(&key) {
                &CHECK_KEYS
            } else {
                std::slice::from_ref(&key)
            };
            for k in keys {
                if let Some(slot) = self.values.get_mut(*k as usize) {
                    *slot = value.clone();
                }
            }
        }
    }

    /// What a console shows of `key`'s value (`get`, `show`, in every dialect): a
    /// secret (a password, the XOAUTH2 token) is write-only and shows as `***`, set
    /// or not (SPEC §6); any other value as it is.
    pub fn shown(&self, key: Key) -> String {
        if key.def().secret && !self.quirks.password_shown {
            SECRET_SHOWN.to_string()
        } else {
            self.get(key).to_string()
        }
    }

    /// Every key and what a console shows of its value ([`Settings::shown`]), in
    /// schema order.
    pub fn show(&self) -> Vec<(Key, String)> {
        SCHEMA.iter().map(|d| (d.id, self.shown(d.id))).collect()
    }

    /// A boolean key's value.
    pub fn flag(&self, key: Key) -> bool {
        self.get(key) == "on"
    }

    /// A numeric key's value (0 for a non-numeric key, which the schema prevents).
    pub fn number(&self, key: Key) -> u64 {
        self.get(key).parse().unwrap_or(0)
    }

    /// A text key's value.
    pub fn text(&self, key: Key) -> &str {
        self.get(key)
    }

    /// The DNS servers (`net.dns`), in order (the schema keeps the value valid).
    pub fn dns_servers(&self) -> Vec<std::net::IpAddr> {
        check_addresses(self.get(Key::NetDns)).unwrap_or_default()
    }

    /// The enabled AUTH mechanisms, in preference order (xoauth2 first when enabled).
    pub fn mechanisms(&self) -> Vec<&str> {
        match self.get(Key::SmtpAuthMethods) {
            "none" => Vec::new(),
            v => v.split(',').collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_canonical() {
        for d in SCHEMA {
            assert_eq!(
                validate(d.id, d.default).as_deref(),
                Ok(d.default),
                "{}",
                d.key
            );
        }
    }

    #[test]
    fn dns_servers_are_a_comma_list_of_ip_addresses() {
        for ok in [
            "",
            "127.0.0.1",
            "::1",
            "192.0.2.53,2001:db8::53",
            "2001:DB8::53,10.0.0.1,10.0.0.1",
            "::ffff:192.0.2.1",
        ] {
            assert_eq!(validate(Key::NetDns, ok).as_deref(), Ok(ok), "{ok:?}");
        }
        for bad in [
            ",",
            "1.2.3.4,",
            ",1.2.3.4",
            "1.2.3.4,,5.6.7.8",
            "1.2.3.4, 5.6.7.8",
            " 1.2.3.4",
            "1.2.3",
            "01.2.3.4",
            "256.1.1.1",
            "fe80::1%eth0",
            "[::1]",
            "1.2.3.4:53",
            "dns.example.com",
            "1.2.3.4;5.6.7.8",
        ] {
            let e = validate(Key::NetDns, bad).expect_err(bad);
            assert_eq!(e.key, "net.dns");
            assert!(e.rule.contains("IP addresses"), "{bad:?}: {}", e.rule);
        }
        let mut s = Settings::default();
        assert!(s.dns_servers().is_empty(), "empty by default");
        s.set(Key::NetDns, "::1,127.0.0.1").expect("valid");
        assert_eq!(
            s.dns_servers(),
            [
                "::1".parse::<std::net::IpAddr>().expect("ip"),
                [127, 0, 0, 1].into()
            ]
        );
    }

    #[test]
    fn keys_parse_from_their_text_and_index_the_schema() {
        assert_eq!(Key::ALL.len(), SCHEMA.len());
        for (i, k) in Key::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k}");
            assert_eq!(k.def().id, *k);
            assert_eq!(k.def().key, k.as_str());
            assert_eq!(Key::parse(k.as_str()), Ok(*k));
            assert_eq!(k.as_str().parse::<Key>(), Ok(*k));
        }
        assert_eq!(
            Key::parse("smtp.prot").unwrap_err().to_string(),
            "smtp.prot: unknown key (see `show` for the keys)"
        );
        assert!(lookup("pop.password").is_some_and(|d| d.secret));
        assert!(lookup("SMTP.PORT").is_none());
    }

    #[test]
    fn apply_is_all_or_nothing() {
        let mut s = Settings::default();
        let Refused(err) = s
            .apply(&[
                (Key::SmtpPort, "2525"),
                (Key::SmtpTimeout, "29"),
                (Key::EmailScan, "maybe"),
            ])
            .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].key, "smtp.timeout");
        assert_eq!(err[1].key, "email.scan");
        assert_eq!(s.get(Key::SmtpPort), "25");
        s.apply(&[(Key::SmtpPort, "2525"), (Key::SmtpTimeout, "30")])
            .unwrap();
        assert_eq!(s.get(Key::SmtpPort), "2525");
        assert_eq!(s.get(Key::SmtpTimeout), "30");
        // Keys as the console gives them: an unknown one is refused in its place.
        let Refused(err) = s
            .apply_text(&[("smtp.port", "26"), ("smtp.nope", "1"), ("smtp.port", "0")])
            .unwrap_err();
        let keys: Vec<&str> = err.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["smtp.nope", "smtp.port"]);
        assert_eq!(
            err[0].to_string(),
            "smtp.nope: 1 refused: unknown key (see `show` for the keys)"
        );
        assert_eq!(s.get(Key::SmtpPort), "2525");
        s.apply_text(&[("smtp.port", "26")]).unwrap();
        assert_eq!(s.get(Key::SmtpPort), "26");
    }

    #[test]
    fn host_forms() {
        for ok in [
            "host.example.com",
            "192.168.1.1",
            "fe80::220:6bff:fe10:2f16",
            "fe80::1%eth0",
            "::1",
            "localhost",
            "a-b.c",
        ] {
            assert!(check_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "smtp://host",
            "host:25",
            "a b",
            "a..b",
            "-a.b",
            "999.1.1.1",
            "fe80::1%",
            "1.2.3",
            "a.123",
            "1.2.3.4.",
            "héllo",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mechanisms_are_canonical_and_refused_when_unimplemented() {
        assert_eq!(
            validate(Key::SmtpAuthMethods, "plain,cram-md5").unwrap(),
            "cram-md5,plain"
        );
        assert_eq!(validate(Key::SmtpAuthMethods, "none").unwrap(), "none");
        assert!(validate(Key::SmtpAuthMethods, "gss-spnego")
            .unwrap_err()
            .rule
            .contains("Kerberos"));
        assert!(validate(Key::SmtpAuthMethods, "plain,plain").is_err());
        assert!(validate(Key::SmtpAuthMethods, "plain, login").is_err());
        assert!(validate(Key::SmtpAuthMethods, "").is_err());
    }

    #[test]
    fn mechanism_words_are_xoauth2_then_the_order_of_preference() {
        assert_eq!(MECHANISM_WORDS[0], "xoauth2");
        assert_eq!(&MECHANISM_WORDS[1..], MECHANISM_ORDER);
    }

    #[test]
    fn lengths_count_characters() {
        let sixty_four = "ユ".repeat(64);
        assert!(validate(Key::SmtpAuthUser, &sixty_four).is_ok());
        assert!(validate(Key::SmtpAuthUser, &"ユ".repeat(65)).is_err());
        assert!(validate(Key::SmtpAuthPassword, "ユ").is_err());
        assert!(validate(Key::SmtpAuthPassword, "a\"b").is_err());
    }
}
