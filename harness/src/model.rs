//! The harness's own reading of SPEC §1–§2: setting defaults, secret keys, and what
//! a case asks of the device. The oracle works from this, never from `mfp_sim`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::smtp::SmtpConfig;

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
];

/// Keys whose values are credentials: never shown unmasked in anything we write.
pub const SECRET_KEYS: &[&str] = &["smtp.auth.password", "pop.password"];

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
}

/// Settings as the device holds them after a case's `apply`: defaults plus changes.
#[derive(Debug, Clone, Default)]
pub struct SettingView {
    values: BTreeMap<String, String>,
}

impl SettingView {
    /// Defaults, then each pair in order.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut values: BTreeMap<String, String> = DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
