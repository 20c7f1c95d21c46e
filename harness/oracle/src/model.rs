//! The harness's own reading of SPEC §1–§2: setting defaults, secret keys, and what
//! a case asks of the device. The oracle works from this, never from `mfp_sim`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hil_mail::smtp::{ListenerKind, SmtpConfig};

/// Factory defaults of the keys the oracle reads (SPEC §1).
pub const DEFAULTS: &[(&str, &str)] = &[
    ("email.enabled", "on"),
    ("email.scan", "on"),
    ("email.notify", "on"),
    ("email.counter", "on"),
    ("smtp.server", ""),
    ("smtp.tls", "none"),
    ("smtp.port", "25"),
    ("smtp.ssl_port", "465"),
    ("smtp.timeout", "60"),
    ("admin.address", ""),
    ("device.address", ""),
    ("pop_before_smtp.enabled", "off"),
    ("smtp.auth.enabled", "off"),
    ("smtp.auth.source", "configured"),
    ("envelope_from.mode", "admin"),
    ("envelope_from.address", ""),
    ("load.mode", "none"),
    ("load.split_size", "1024"),
    ("load.max_size", "unlimited"),
    ("load.server_capacity", "10240"),
    ("smtp.verify.expiry", "on"),
    ("smtp.verify.cn", "off"),
    ("smtp.verify.key_usage", "off"),
    ("smtp.verify.chain", "off"),
    ("smtp.verify.revocation", "off"),
    ("smtp.auth.methods", "digest-md5,cram-md5,login,plain"),
    ("smtp.auth.user", ""),
    ("smtp.auth.password", ""),
    ("smtp.auth.token", ""),
    ("smtp.auth.realm", ""),
    ("pop_before_smtp.wait", "5"),
    ("pop.server", ""),
    ("pop.tls", "none"),
    ("pop.port", "110"),
    ("pop.ssl_port", "995"),
    ("pop.apop", "off"),
    ("pop.user", ""),
    ("pop.password", ""),
];

/// The account of the harness's POP3 server (POP before SMTP).
pub const POP_USER: &str = "scanner@hil.test";
pub const POP_PASSWORD: &str = "pop-Pass-1";

/// Keys whose values are credentials: never shown unmasked in anything we write.
pub const SECRET_KEYS: &[&str] = &["smtp.auth.password", "smtp.auth.token", "pop.password"];

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
}

/// One case: settings, device state, a server scenario and a trigger.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    /// A stable name: `group/what`.
    pub id: String,
    /// The matrix section (or case group) the case belongs to.
    pub section: String,
    /// The case's value of each matrix dimension, for reports (secrets masked).
    pub dims: BTreeMap<String, String>,
    /// Settings applied after `reset`, on top of the server address and port.
    pub settings: Vec<(String, String)>,
    pub users: Vec<UserSpec>,
    pub notify: Vec<String>,
    pub trigger: TriggerSpec,
    pub server: SmtpConfig,
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
}

/// What one verification flag alone makes of `cert` for a device told `server`:
/// `accept` or the error class (SPEC §3.5).
pub fn cert_check(cert: &CertFacts, flag: &str, server: &str) -> String {
    if flag == "cn" {
        return if name_matches(cert, server, false) {
            "accept".into()
        } else {
            "cert_name".into()
        };
    }
    cert.expect
        .get(flag)
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

/// SPEC §1's input rules, the harness's reading: `Err(rule)` when the reference device
/// must refuse `value` for `key`.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    validate_for(&DeviceFacts::default(), key, value)
}

/// SPEC §1's input rules for a device with `facts` (its profile's ranges where SPEC
/// marks †, and the AUTH mechanisms it implements).
pub fn validate_for(facts: &DeviceFacts, key: &str, value: &str) -> Result<(), String> {
    let printable = |v: &str| v.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    let boolean = || match value {
        "on" | "off" => Ok(()),
        _ => Err("on or off".to_string()),
    };
    let range = |lo: u64, hi: u64| match value.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) && !value.starts_with('+') => Ok(()),
        _ => Err(format!("a number from {lo} to {hi}")),
    };
    let choice = |words: &[&str]| {
        if words.contains(&value) {
            Ok(())
        } else {
            Err(format!("one of {}", words.join(", ")))
        }
    };
    let address = || {
        let rule = || {
            Err("an e-mail address (local@domain, RFC 5321) of at most 320 half-width characters, no spaces".to_string())
        };
        if value.is_empty() {
            return Ok(());
        }
        if value.chars().count() > 320 || !printable(value) || value.contains(' ') {
            return rule();
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return rule();
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
            None => !domain.is_empty() && !domain.contains('%') && host(domain).is_ok(),
        };
        if local_ok && domain_ok {
            Ok(())
        } else {
            rule()
        }
    };
    let text = |max: usize, half: bool, forbid: &str| {
        if value.chars().count() > max
            || (half && !printable(value))
            || value.chars().any(|c| forbid.contains(c))
        {
            Err(format!("at most {max} characters"))
        } else {
            Ok(())
        }
    };
    match key {
        "email.enabled"
        | "email.scan"
        | "email.notify"
        | "email.counter"
        | "pop.apop"
        | "pop_before_smtp.enabled"
        | "smtp.auth.enabled" => boolean(),
        k if k.starts_with("smtp.verify.") => boolean(),
        "smtp.tls" => choice(&["none", "smtps", "starttls"]),
        "pop.tls" => choice(&["none", "pop3s", "stls"]),
        "smtp.auth.source" => choice(&["configured", "device_user"]),
        "envelope_from.mode" => choice(&["admin", "specified"]),
        "load.mode" => choice(&[
            "none",
            "split",
            "abort_over_limit",
            "url_over_limit",
            "url_always",
        ]),
        "load.max_size" => choice(&["unlimited", "limited"]),
        "smtp.port" | "smtp.ssl_port" | "pop.port" | "pop.ssl_port" => range(1, 65535),
        "smtp.timeout" | "pop_before_smtp.wait" | "load.split_size" | "load.server_capacity" => {
            let r = facts.range(key);
            range(r.min, r.max)
        }
        "admin.address" | "device.address" | "envelope_from.address" => address(),
        "smtp.auth.user" | "pop.user" => text(64, false, ""),
        "smtp.auth.password" | "pop.password" => text(64, true, "\""),
        "smtp.auth.token" => text(2048, true, "\""),
        "smtp.auth.realm" => text(253, true, ""),
        "smtp.server" | "pop.server" => host(value),
        "smtp.auth.methods" => {
            if value == "none" {
                return Ok(());
            }
            for m in value.split(',') {
                if !facts.mechanisms.iter().any(|x| x == m) {
                    return Err(format!("{m} is not a mechanism the device implements"));
                }
            }
            Ok(())
        }
        _ => Err("not a setting".into()),
    }
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
pub const RANGED: &[(&str, Range, Range)] = &[
    (
        "smtp.timeout",
        Range { min: 30, max: 300 },
        // seconds; a timeout of 0 never waits, a day is longer than any job
        Range {
            min: 1,
            max: 86_400,
        },
    ),
    (
        "pop_before_smtp.wait",
        Range { min: 0, max: 60 },
        Range {
            min: 0,
            max: 86_400,
        },
    ),
    (
        "load.split_size",
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
        "load.server_capacity",
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
    pub ranges: BTreeMap<String, Range>,
    /// In SPEC §3.7's order.
    pub mechanisms: Vec<String>,
    /// The factory default of `smtp.auth.methods`, in SPEC §3.7's order.
    pub default_methods: Vec<String>,
}

impl Default for DeviceFacts {
    fn default() -> Self {
        DeviceFacts {
            variants: Vec::new(),
            ranges: RANGED.iter().map(|(k, r, _)| (k.to_string(), *r)).collect(),
            mechanisms: DEVICE_MECHANISMS.iter().map(|s| s.to_string()).collect(),
            default_methods: DEFAULT_METHODS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl DeviceFacts {
    /// The reference device following `variants`.
    pub fn with_variants(variants: &[String]) -> Self {
        DeviceFacts {
            variants: variants.to_vec(),
            ..DeviceFacts::default()
        }
    }

    /// The device's range of a key of [`RANGED`] (SPEC's when the key is unknown).
    pub fn range(&self, key: &str) -> Range {
        self.ranges
            .get(key)
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

fn host(v: &str) -> Result<(), String> {
    let rule = || Err("a host name, an IPv4 address or an IPv6 address (with %zone)".to_string());
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
    if zone.is_some() || v.len() > 253 {
        return rule();
    }
    let labels_ok = v.trim_end_matches('.').split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if labels_ok {
        Ok(())
    } else {
        rule()
    }
}

/// Settings as the device holds them after a case's `apply`: defaults plus changes.
#[derive(Debug, Clone, Default)]
pub struct SettingView {
    values: BTreeMap<String, String>,
}

impl SettingView {
    /// Defaults, then each pair in order.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        Self::from_pairs_for(&DeviceFacts::default(), pairs)
    }

    /// The defaults of a device with `facts`, then each pair in order.
    pub fn from_pairs_for(facts: &DeviceFacts, pairs: &[(String, String)]) -> Self {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        values.insert("smtp.auth.methods".into(), facts.default_methods_value());
        for (k, v) in pairs {
            values.insert(k.clone(), v.clone());
        }
        SettingView { values }
    }

    pub fn get(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or("")
    }

    pub fn on(&self, key: &str) -> bool {
        self.get(key) == "on"
    }
}
