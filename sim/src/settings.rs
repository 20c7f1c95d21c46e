//! The settings model: every key of SPEC §1 with its type, range, default and
//! character rules, and a store that changes only when a whole change is valid.
//!
//! Values are kept in their canonical console form (SPEC "Value syntax"), so what
//! `get` answers can be set back unchanged; typed accessors read them for the jobs.

use std::collections::BTreeMap;
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
}

/// One setting: its console key, type, factory default and whether it is a secret.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub key: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub secret: bool,
}

const fn def(key: &'static str, kind: Kind, default: &'static str) -> KeyDef {
    KeyDef {
        key,
        kind,
        default,
        secret: false,
    }
}

const fn secret(key: &'static str, kind: Kind) -> KeyDef {
    KeyDef {
        key,
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

/// Every key of SPEC §1, the POP keys included, in the order `show` lists them.
pub const SCHEMA: &[KeyDef] = &[
    def("email.enabled", Kind::Bool, "on"),
    def("email.scan", Kind::Bool, "on"),
    def("email.notify", Kind::Bool, "on"),
    def("email.counter", Kind::Bool, "on"),
    def("smtp.server", Kind::Host, ""),
    def(
        "smtp.tls",
        Kind::Choice(&["none", "smtps", "starttls"]),
        "none",
    ),
    def("smtp.port", PORT, "25"),
    def("smtp.ssl_port", PORT, "465"),
    def("smtp.verify.expiry", Kind::Bool, "on"),
    def("smtp.verify.cn", Kind::Bool, "off"),
    def("smtp.verify.key_usage", Kind::Bool, "off"),
    def("smtp.verify.chain", Kind::Bool, "off"),
    def("smtp.verify.revocation", Kind::Bool, "off"),
    def("smtp.timeout", Kind::Int { min: 30, max: 300 }, "60"),
    def("admin.address", ADDRESS, ""),
    def("device.address", ADDRESS, ""),
    def("pop_before_smtp.enabled", Kind::Bool, "off"),
    def("pop_before_smtp.wait", Kind::Int { min: 0, max: 60 }, "5"),
    def("smtp.auth.enabled", Kind::Bool, "off"),
    def(
        "smtp.auth.methods",
        Kind::Mechanisms,
        "digest-md5,cram-md5,login,plain",
    ),
    def("smtp.auth.user", USER, ""),
    secret("smtp.auth.password", PASSWORD),
    KeyDef {
        key: "smtp.auth.token",
        kind: Kind::Text {
            max: 2048,
            half_width: true,
            forbid: "\"",
        },
        default: "",
        secret: true,
    },
    def(
        "smtp.auth.realm",
        Kind::Text {
            max: 253,
            half_width: true,
            forbid: "",
        },
        "",
    ),
    def(
        "smtp.auth.source",
        Kind::Choice(&["configured", "device_user"]),
        "configured",
    ),
    def(
        "envelope_from.mode",
        Kind::Choice(&["admin", "specified"]),
        "admin",
    ),
    def("envelope_from.address", ADDRESS, ""),
    def(
        "load.mode",
        Kind::Choice(&[
            "none",
            "split",
            "abort_over_limit",
            "url_over_limit",
            "url_always",
        ]),
        "none",
    ),
    def(
        "load.split_size",
        Kind::Int {
            min: 100,
            max: 15000,
        },
        "1024",
    ),
    def(
        "load.max_size",
        Kind::Choice(&["unlimited", "limited"]),
        "unlimited",
    ),
    def(
        "load.server_capacity",
        Kind::Int {
            min: 1,
            max: 102400,
        },
        "10240",
    ),
    def("pop.server", Kind::Host, ""),
    def("pop.tls", Kind::Choice(&["none", "pop3s", "stls"]), "none"),
    def("pop.port", PORT, "110"),
    def("pop.ssl_port", PORT, "995"),
    def("pop.apop", Kind::Bool, "off"),
    def("pop.user", USER, ""),
    secret("pop.password", PASSWORD),
];

/// Looks a key up in the schema.
pub fn lookup(key: &str) -> Option<&'static KeyDef> {
    SCHEMA.iter().find(|d| d.key == key)
}

/// A refused value: the key, the value as given and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub key: String,
    pub value: String,
    pub rule: String,
}

impl Refusal {
    /// The refused value as a console shows it: quoted, or `*** (N characters)` for a
    /// secret.
    pub fn shown_value(&self) -> String {
        if lookup(&self.key).is_some_and(|d| d.secret) {
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

fn refuse(key: &str, value: &str, rule: impl Into<String>) -> Refusal {
    Refusal {
        key: key.to_string(),
        value: value.to_string(),
        rule: rule.into(),
    }
}

/// Checks `value` against the rule of `key`; answers the canonical form.
pub fn validate(key: &str, value: &str) -> Result<String, Refusal> {
    let Some(d) = lookup(key) else {
        return Err(refuse(key, value, "unknown key (see `show` for the keys)"));
    };
    let r = |rule: String| refuse(key, value, rule);
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
            check_host(value).map(|_| value.to_string()).map_err(r)
        }
        Kind::Email { max } => {
            if value.is_empty() {
                return Ok(String::new());
            }
            check_email(value, max)
                .map(|_| value.to_string())
                .map_err(r)
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
        Kind::Mechanisms => canonical_mechanisms(value).map_err(r),
    }
}

fn canonical_mechanisms(value: &str) -> Result<String, String> {
    if value == "none" {
        return Ok("none".into());
    }
    // xoauth2 comes first of all when enabled (SPEC §3.7).
    let all: Vec<&str> = std::iter::once("xoauth2")
        .chain(MECHANISM_ORDER.iter().copied())
        .collect();
    let mut chosen: Vec<&str> = Vec::new();
    for name in value.split(',') {
        if !all.contains(&name) {
            return Err(format!(
                "unknown mechanism {name:?}; a comma-separated set of {} (no spaces), or none",
                all.join(", ")
            ));
        }
        if !IMPLEMENTED_MECHANISMS.contains(&name) {
            let why = match name {
                "gss-spnego" => "it needs a Kerberos realm, which this device does not have",
                _ => "this firmware does not implement it",
            };
            return Err(format!("mechanism {name} cannot be enabled: {why}"));
        }
        if chosen.contains(&name) {
            return Err(format!("mechanism {name} is listed twice"));
        }
        chosen.push(name);
    }
    let ordered: Vec<&str> = all.into_iter().filter(|m| chosen.contains(m)).collect();
    Ok(ordered.join(","))
}

/// Checks the three address forms of `smtp.server` (SPEC §1).
pub fn check_host(value: &str) -> Result<(), String> {
    const RULE: &str =
        "must be a host name (RFC 1123, at most 253 characters), an IPv4 address or an IPv6 address with optional %zone";
    if value.contains(':') {
        let (addr, zone) = match value.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (value, None),
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{RULE}; {addr:?} is not an IPv6 address"));
        }
        if let Some(z) = zone {
            if z.is_empty()
                || !z
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(format!(
                    "{RULE}; the zone {z:?} is not an interface name or index"
                ));
            }
        }
        return Ok(());
    }
    let labels: Vec<&str> = value.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return value
            .parse::<Ipv4Addr>()
            .map(|_| ())
            .map_err(|_| format!("{RULE}; {value:?} looks like an IPv4 address but is not one"));
    }
    check_hostname(value).map_err(|why| format!("{RULE}; {why}"))
}

fn check_hostname(value: &str) -> Result<(), String> {
    if value.len() > 253 {
        return Err(format!("{} characters is longer than 253", value.len()));
    }
    let trimmed = value.strip_suffix('.').unwrap_or(value);
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err("it has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("the character {c:?} is not allowed in a host name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with '-'"));
        }
    }
    Ok(())
}

/// An e-mail address: `local@domain`, printable ASCII without spaces, at most `max`
/// characters, the domain a host name or an address literal.
pub fn check_email(value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!(
            "an e-mail address of at most {max} characters (got {n})"
        ));
    }
    if let Some(c) = value.chars().find(|c| !('!'..='~').contains(c)) {
        return Err(format!(
            "an e-mail address of half-width characters without spaces, found {c:?}"
        ));
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("an e-mail address local@domain (no '@' found)".into());
    };
    if local.is_empty() || local.len() > 64 {
        return Err("an e-mail address whose local part has 1 to 64 characters".into());
    }
    if local.contains('@')
        || local.contains(['<', '>', '(', ')', ',', ';', ':', '\\', '"', '[', ']'])
    {
        return Err("an e-mail address whose local part has no special characters".into());
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("an e-mail address whose local part has no empty dot-separated atom".into());
    }
    if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = match lit.strip_prefix("IPv6:") {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => lit.parse::<Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(())
        } else {
            Err(format!(
                "an e-mail address whose domain literal {domain} is an IP address"
            ))
        };
    }
    check_hostname(domain)
        .map_err(|why| format!("an e-mail address whose domain is a host name: {why}"))
}

/// The stored settings, always valid; changed only through [`Settings::set`] and
/// [`Settings::apply`], which change everything asked or nothing.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: SCHEMA
                .iter()
                .map(|d| (d.key, d.default.to_string()))
                .collect(),
        }
    }
}

impl Settings {
    /// The canonical value of `key`, or `None` for an unknown key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Sets one key; on refusal nothing changes.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), Refusal> {
        self.apply(&[(key, value)]).map_err(|mut v| v.remove(0))
    }

    /// Sets every pair or, if any is refused, none; answers every refusal.
    pub fn apply(&mut self, pairs: &[(&str, &str)]) -> Result<(), Vec<Refusal>> {
        let mut staged = Vec::with_capacity(pairs.len());
        let mut refused = Vec::new();
        for (key, value) in pairs {
            match validate(key, value) {
                Ok(v) => staged.push((*key, v)),
                Err(e) => refused.push(e),
            }
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        for (key, value) in staged {
            if let Some(slot) = self.values.get_mut(key) {
                *slot = value;
            }
        }
        Ok(())
    }

    /// Every key and value in schema order, secrets masked as `***` when set.
    pub fn show(&self) -> Vec<(&'static str, String)> {
        SCHEMA
            .iter()
            .map(|d| {
                let v = self.values.get(d.key).cloned().unwrap_or_default();
                let shown = if d.secret && !v.is_empty() {
                    "***".to_string()
                } else {
                    v
                };
                (d.key, shown)
            })
            .collect()
    }

    fn raw(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    /// A boolean key's value.
    pub fn flag(&self, key: &str) -> bool {
        self.raw(key) == "on"
    }

    /// A numeric key's value (0 for a non-numeric key, which the schema prevents).
    pub fn number(&self, key: &str) -> u64 {
        self.raw(key).parse().unwrap_or(0)
    }

    /// A text key's value.
    pub fn text(&self, key: &str) -> &str {
        self.raw(key)
    }

    /// The enabled AUTH mechanisms, in preference order (xoauth2 first when enabled).
    pub fn mechanisms(&self) -> Vec<&str> {
        match self.raw("smtp.auth.methods") {
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
                validate(d.key, d.default).as_deref(),
                Ok(d.default),
                "{}",
                d.key
            );
        }
    }

    #[test]
    fn apply_is_all_or_nothing() {
        let mut s = Settings::default();
        let err = s
            .apply(&[
                ("smtp.port", "2525"),
                ("smtp.timeout", "29"),
                ("email.scan", "maybe"),
            ])
            .unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].key, "smtp.timeout");
        assert_eq!(err[1].key, "email.scan");
        assert_eq!(s.get("smtp.port"), Some("25"));
        s.apply(&[("smtp.port", "2525"), ("smtp.timeout", "30")])
            .unwrap();
        assert_eq!(s.get("smtp.port"), Some("2525"));
        assert_eq!(s.get("smtp.timeout"), Some("30"));
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
            "héllo",
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mechanisms_are_canonical_and_refused_when_unimplemented() {
        assert_eq!(
            validate("smtp.auth.methods", "plain,cram-md5").unwrap(),
            "cram-md5,plain"
        );
        assert_eq!(validate("smtp.auth.methods", "none").unwrap(), "none");
        assert!(validate("smtp.auth.methods", "gss-spnego")
            .unwrap_err()
            .rule
            .contains("Kerberos"));
        assert!(validate("smtp.auth.methods", "plain,plain").is_err());
        assert!(validate("smtp.auth.methods", "plain, login").is_err());
        assert!(validate("smtp.auth.methods", "").is_err());
    }

    #[test]
    fn lengths_count_characters() {
        let sixty_four = "ユ".repeat(64);
        assert!(validate("smtp.auth.user", &sixty_four).is_ok());
        assert!(validate("smtp.auth.user", &"ユ".repeat(65)).is_err());
        assert!(validate("smtp.auth.password", "ユ").is_err());
        assert!(validate("smtp.auth.password", "a\"b").is_err());
    }
}
