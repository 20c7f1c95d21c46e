//! What the device is started with (`mfp-sim` options): the EHLO host name, the time
//! scale, fixed name resolutions, the DNS port, the firmware variants it follows and the download
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
    /// The port the DNS servers of `net.dns` are asked on (`--dns-port`; 53).
    pub dns_port: u16,
    /// Known firmware variants this device follows (SPEC: *variant*).
    pub variants: Variants,
    /// The download service of the URL load-reduction modes (SPEC §4).
    pub downloads: Option<std::sync::Arc<FileStore>>,
    /// How long a scan stays downloadable, in device seconds.
    pub url_ttl_s: u64,
    /// Features this firmware does not implement (`--without`): their settings'
    /// values are refused when set.
    pub lacks: Lacks,
    /// Planted behaviours (`--quirk`): old bugs and the other side of SPEC latitudes.
    pub quirks: Quirks,
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

/// Behaviours the simulated device can be planted with (`--quirk`), each off by
/// default. They are not SPEC variants: most are old bugs (or planted ones) that the
/// harness's cases must catch; two are the other side of a SPEC latitude, which
/// conforms either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Old bug: with AUTH off, every recipient refused with 530 ends as `rejected`,
    /// not `auth_required` (SPEC §3.7).
    pub rcpt_530_rejected: bool,
    /// Old bug: an e-mail address is refused over 253 characters (SPEC §1 allows 320:
    /// local part ≤64, domain ≤255).
    pub address_max_253: bool,
    /// Old bug: POP over TLS accepts any certificate (SPEC §3.5 applies the five
    /// checks to it).
    pub pop_tls_unchecked: bool,
    /// Old bug: a refused QUIT after the message was accepted fails the job
    /// (SPEC §3.10: delivered).
    pub quit_refusal_fails: bool,
    /// Planted bug: an undecodable 334 challenge to LOGIN or PLAIN is taken as the
    /// normal prompt instead of cancelling with `*` (RFC 4954).
    pub malformed_challenge_ignored: bool,
    /// Latitude (SPEC §3.5 expiry): an expired intermediate in the presented chain
    /// fails the expiry check (by default it is ignored).
    pub expired_intermediate_fails: bool,
    /// Latitude (SPEC §4 split): every fragment over one connection, one transaction
    /// each (by default one connection per fragment).
    pub fragments_one_connection: bool,
    /// Planted bug: fragments' subjects lack the `[n/N]` prefix (SPEC §4).
    pub no_fragment_subject_prefix: bool,
    /// Planted bug: no wait between POP QUIT and the SMTP connection (SPEC §3.6).
    pub pop_wait_ignored: bool,
    /// Planted bug: accepts `999.1.1.1`, `1.2.3`, `12345` as servers, an unbracketed
    /// IPv6 address as an e-mail domain, and a mechanism listed twice (SPEC §1).
    pub lenient_input: bool,
    /// Planted bug: `get` and `show` print passwords in clear (SPEC §6).
    pub password_shown: bool,
    /// Planted bug: a refused recipient fails the whole job, and nobody gets the mail
    /// (SPEC §3.9: reported per recipient, the rest still get it).
    pub refused_recipient_fails: bool,
    /// Planted bug: only the paper-jam alert is sent; the other kinds fail with
    /// `config` (SPEC §2: every alert goes to the notification addresses).
    pub alerts_paper_jam_only: bool,
    /// Planted bug: `smtp.timeout` is ignored, every wait is the default 60 s (SPEC
    /// §3.2: it bounds the connect, the handshake and every reply, POP too).
    pub timeout_ignored: bool,
    /// Planted bug: the SMTP port left at its factory value (25, or 465 for SMTPS)
    /// connects to 587 (SPEC §1's defaults are 25 and 465).
    pub factory_port_587: bool,
}

impl Quirks {
    /// The `--quirk` words.
    pub const NAMES: &'static [&'static str] = &[
        "rcpt-530-rejected",
        "address-max-253",
        "pop-tls-unchecked",
        "quit-refusal-fails",
        "malformed-challenge-ignored",
        "expired-intermediate-fails",
        "fragments-one-connection",
        "no-fragment-subject-prefix",
        "pop-wait-ignored",
        "lenient-input",
        "password-shown",
        "refused-recipient-fails",
        "alerts-paper-jam-only",
        "timeout-ignored",
        "factory-port-587",
    ];

    /// Plants the behaviour a `--quirk` word names.
    pub fn set(&mut self, name: &str) -> Result<(), UnknownQuirk> {
        let flag = match name {
            "rcpt-530-rejected" => &mut self.rcpt_530_rejected,
            "address-max-253" => &mut self.address_max_253,
            "pop-tls-unchecked" => &mut self.pop_tls_unchecked,
            "quit-refusal-fails" => &mut self.quit_refusal_fails,
            "malformed-challenge-ignored" => &mut self.malformed_challenge_ignored,
            "expired-intermediate-fails" => &mut self.expired_intermediate_fails,
            "fragments-one-connection" => &mut self.fragments_one_connection,
            "no-fragment-subject-prefix" => &mut self.no_fragment_subject_prefix,
            "pop-wait-ignored" => &mut self.pop_wait_ignored,
            "lenient-input" => &mut self.lenient_input,
            "password-shown" => &mut self.password_shown,
            "refused-recipient-fails" => &mut self.refused_recipient_fails,
            "alerts-paper-jam-only" => &mut self.alerts_paper_jam_only,
            "timeout-ignored" => &mut self.timeout_ignored,
            "factory-port-587" => &mut self.factory_port_587,
            other => return Err(UnknownQuirk(other.into())),
        };
        *flag = true;
        Ok(())
    }

    /// The quirks that change what settings accept and show.
    pub fn input(&self) -> crate::settings::InputQuirks {
        crate::settings::InputQuirks {
            address_max_253: self.address_max_253,
            lenient: self.lenient_input,
            password_shown: self.password_shown,
        }
    }
}

/// A `--quirk` word the device does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--quirk {0:?}: one of {names}", names = Quirks::NAMES.join(", "))]
pub struct UnknownQuirk(pub String);

impl Default for Options {
    fn default() -> Self {
        Options {
            hostname: "mfp-sim".into(),
            time_scale: 1.0,
            resolve: Vec::new(),
            dns_port: crate::dns::DNS_PORT,
            variants: Variants::default(),
            downloads: None,
            url_ttl_s: 7 * 24 * 3600,
            lacks: Lacks::default(),
            quirks: Quirks::default(),
        }
    }
}
