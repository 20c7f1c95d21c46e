//! What the device is started with (`mfp-sim` options): the EHLO host name, the time
//! scale, fixed name resolutions, the firmware variants it follows and the download
//! service. The device holds them and every job reads them, so they live below both.

use crate::files::FileStore;
use crate::settings::Key;

/// Options fixed when the device starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The host name sent in EHLO/HELO.
    pub hostname: String,
    /// Device time runs this many times faster for timeouts and waits (1 on hardware).
    pub time_scale: f64,
    /// Names resolved without the resolver (`--resolve`).
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// Known firmware variants this device follows (SPEC: *variant*).
    pub variants: Variants,
    /// The download service of the URL load-reduction modes (SPEC §4).
    pub downloads: Option<std::sync::Arc<FileStore>>,
    /// How long a scan stays downloadable, in device seconds.
    pub url_ttl_s: u64,
    /// Features this firmware does not implement (`--without`): their settings'
    /// values are refused when set.
    pub lacks: Lacks,
}

/// Features of SPEC a firmware may lack (`--without`), each the setting values it
/// then refuses ("not supported by this firmware").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lacks(pub Vec<&'static str>);

impl Lacks {
    /// The `--without` words and the `(key, value)` settings each makes unsupported.
    pub const FEATURES: &'static [(&'static str, &'static [(Key, &'static str)])] = &[
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
        // How revocation is checked, not a setting: OCSP only (no CRL) or the CRL
        // only (no OCSP).
        ("ocsp", &[]),
        ("crl", &[]),
        // IPv6 literals in smtp.server and pop.server are refused.
        ("ipv6", &[]),
        // One switch for every certificate check: setting one sets all five.
        ("separate-cert-checks", &[]),
        ("device-user", &[(Key::SmtpAuthSource, "device_user")]),
        (
            "envelope-from-specified",
            &[(Key::EnvelopeFromMode, "specified")],
        ),
    ];

    /// Lacks the feature a `--without` word names.
    pub fn add(&mut self, word: &str) -> Result<(), UnknownFeature> {
        let Some((w, _)) = Lacks::FEATURES.iter().find(|(w, _)| *w == word) else {
            return Err(UnknownFeature(word.into()));
        };
        if !self.0.contains(w) {
            self.0.push(w);
        }
        Ok(())
    }

    /// Whether `key` set to `value` needs a feature this firmware lacks.
    pub fn refuses(&self, key: Key, value: &str) -> bool {
        Lacks::FEATURES
            .iter()
            .filter(|(w, _)| self.0.contains(w))
            .any(|(_, kv)| kv.iter().any(|(k, v)| *k == key && *v == value))
    }
}

/// A `--without` word the device does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--without {0:?}: one of {names}", names = Lacks::FEATURES.iter().map(|(w, _)| *w).collect::<Vec<_>>().join(", "))]
pub struct UnknownFeature(pub String);

/// The firmware variants of SPEC the simulated device can follow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Variants {
    /// Goes on in plaintext when STARTTLS is not offered or refused (SPEC §3.4).
    pub plaintext_after_starttls_failure: bool,
    /// Sends without AUTH when no mechanism is in common (SPEC §3.7).
    pub send_without_auth: bool,
    /// Checks the name against the CN only, never the SAN (SPEC §3.5).
    pub cn_only: bool,
    /// Accepts the certificate when neither OCSP nor the CRL answers (SPEC §3.5).
    pub soft_fail_revocation: bool,
}

impl Variants {
    /// The `--variant` words.
    pub const NAMES: &'static [&'static str] = &[
        "plaintext-after-starttls-failure",
        "send-without-auth",
        "cn-only",
        "soft-fail-revocation",
    ];

    /// Follows the variant a `--variant` word names.
    pub fn set(&mut self, name: &str) -> Result<(), UnknownVariant> {
        match name {
            "plaintext-after-starttls-failure" => self.plaintext_after_starttls_failure = true,
            "send-without-auth" => self.send_without_auth = true,
            "cn-only" => self.cn_only = true,
            "soft-fail-revocation" => self.soft_fail_revocation = true,
            other => return Err(UnknownVariant(other.into())),
        }
        Ok(())
    }
}

/// A `--variant` word the device does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--variant {0:?}: one of {names}", names = Variants::NAMES.join(", "))]
pub struct UnknownVariant(pub String);

impl Default for Options {
    fn default() -> Self {
        Options {
            hostname: "mfp-sim".into(),
            time_scale: 1.0,
            resolve: Vec::new(),
            variants: Variants::default(),
            downloads: None,
            url_ttl_s: 7 * 24 * 3600,
            lacks: Lacks::default(),
        }
    }
}
