//! The test device's vocabulary: every name and word it shows in place of SPEC's,
//! and the translation both ways.
//!
//! It exists so that a harness reaching the engine through this console must map
//! every key, value, error class, alert kind, job state and recipient verdict back
//! to SPEC's through its profile, as it would for a real prototype. Each table is
//! one-to-one, so nothing the engine reports is lost in translation. With `--words`
//! off every word is SPEC's own.

use mfp_sim::settings::{self, Kind};

/// SPEC key → the device's parameter name. No name is a substring of another, so
/// that a refusal naming one key never seems to name a second.
pub const KEYS: &[(&str, &str)] = &[
    ("email.enabled", "email-sending"),
    ("email.scan", "scan-to-email"),
    ("email.notify", "alert-email"),
    ("email.counter", "counter-email"),
    ("smtp.server", "smtp-server"),
    ("smtp.tls", "smtp-security"),
    ("smtp.port", "smtp-port"),
    ("smtp.ssl_port", "smtps-port"),
    ("smtp.verify.expiry", "cert-check-expiry"),
    ("smtp.verify.cn", "cert-check-name"),
    ("smtp.verify.key_usage", "cert-check-usage"),
    ("smtp.verify.chain", "cert-check-chain"),
    ("smtp.verify.revocation", "cert-check-revocation"),
    ("smtp.timeout", "smtp-timeout"),
    ("admin.address", "admin-email"),
    ("device.address", "device-email"),
    ("pop_before_smtp.enabled", "pop-before-smtp"),
    ("pop_before_smtp.wait", "pop-wait-time"),
    ("smtp.auth.enabled", "smtp-auth"),
    ("smtp.auth.methods", "auth-mechanisms"),
    ("smtp.auth.user", "auth-user"),
    ("smtp.auth.password", "auth-password"),
    ("smtp.auth.token", "auth-token"),
    ("smtp.auth.realm", "auth-realm"),
    ("smtp.auth.source", "auth-credentials"),
    ("envelope_from.mode", "envelope-sender-mode"),
    ("envelope_from.address", "envelope-sender-address"),
    ("load.mode", "large-mail"),
    ("load.split_size", "split-size"),
    ("load.max_size", "size-limit"),
    ("load.server_capacity", "server-capacity"),
    ("pop.server", "pop-server"),
    ("pop.tls", "pop-security"),
    ("pop.port", "pop-port"),
    ("pop.ssl_port", "pops-port"),
    ("pop.apop", "pop-apop"),
    ("pop.user", "pop-user"),
    ("pop.password", "pop-password"),
    ("net.dns", "dns-servers"),
];

/// The device's boolean words: SPEC `on`, `off`.
pub const BOOL_WORDS: [(&str, &str); 2] = [("on", "enable"), ("off", "disable")];

/// SPEC key → its SPEC choice words with the device's word for each.
pub const CHOICES: &[(&str, &[(&str, &str)])] = &[
    (
        "smtp.tls",
        &[
            ("none", "plain"),
            ("smtps", "tls"),
            ("starttls", "starttls"),
        ],
    ),
    (
        "pop.tls",
        &[("none", "plain"), ("pop3s", "tls"), ("stls", "starttls")],
    ),
    (
        "load.mode",
        &[
            ("none", "off"),
            ("split", "fragment"),
            ("abort_over_limit", "reject-oversize"),
            ("url_over_limit", "link-oversize"),
            ("url_always", "link-always"),
        ],
    ),
    (
        "load.max_size",
        &[("unlimited", "no-limit"), ("limited", "capped")],
    ),
    (
        "smtp.auth.source",
        &[("configured", "static"), ("device_user", "login-user")],
    ),
    (
        "envelope_from.mode",
        &[("admin", "administrator"), ("specified", "custom")],
    ),
];

/// SPEC §5 error class → the device's class.
pub const CLASSES: &[(&str, &str)] = &[
    ("disabled", "SERVICE-DISABLED"),
    ("config", "CONFIG-ERROR"),
    ("connect", "CONNECT-FAIL"),
    ("timeout", "TIMED-OUT"),
    ("tls_handshake", "TLS-HANDSHAKE-FAIL"),
    ("starttls_unavailable", "NO-STARTTLS"),
    ("cert_expired", "TLS-CERT-EXPIRED"),
    ("cert_name", "TLS-CERT-NAME-MISMATCH"),
    ("cert_key_usage", "TLS-CERT-BAD-USAGE"),
    ("cert_chain", "TLS-CERT-UNTRUSTED"),
    ("cert_revoked", "TLS-CERT-REVOKED"),
    ("cert_revocation_unknown", "TLS-CERT-REVOCATION-UNKNOWN"),
    ("pop_auth", "POP-LOGIN-FAIL"),
    ("auth_no_mechanism", "AUTH-NO-MECHANISM"),
    ("auth_failed", "AUTH-FAIL"),
    ("auth_required", "AUTH-REQUIRED"),
    ("rejected", "SERVER-REJECT"),
    ("size_over_limit", "MAIL-TOO-LARGE"),
];

/// SPEC alert kind → the device's word.
pub const ALERTS: &[(&str, &str)] = &[
    ("paper_empty", "no-paper"),
    ("paper_jam", "paper-jam"),
    ("toner_out", "toner-empty"),
    ("maintenance", "service-due"),
    ("output_tray_full", "output-full"),
    ("service_call", "call-service"),
    ("job_error", "job-fault"),
];

/// SPEC job state → the device's word.
pub const STATES: &[(&str, &str)] = &[
    ("queued", "pending"),
    ("running", "sending"),
    ("done", "sent"),
    ("failed", "aborted"),
];

/// The recipient verdicts: SPEC's `accepted` and `rejected` → the device's words.
pub const VERDICTS: [(&str, &str); 2] = [("accepted", "delivered"), ("rejected", "bounced")];

/// Which vocabulary a console speaks: the device's own (`--words`) or SPEC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    own: bool,
}

fn forward<'a>(table: &'a [(&'a str, &'a str)], spec: &str) -> Option<&'a str> {
    table.iter().find(|(s, _)| *s == spec).map(|(_, d)| *d)
}

fn backward<'a>(table: &'a [(&'a str, &'a str)], dev: &str) -> Option<&'a str> {
    table.iter().find(|(_, d)| *d == dev).map(|(s, _)| *s)
}

/// Whether `after` (the text after a key) goes on with more of a key name: a
/// letter, digit or `_`, or a `.` followed by one (a sentence's full stop does not).
fn continues_key(after: &str) -> bool {
    let mut c = after.chars();
    match c.next() {
        Some(x) if x.is_ascii_alphanumeric() || x == '_' => true,
        Some('.') => c.next().is_some_and(|y| y.is_ascii_alphanumeric()),
        _ => false,
    }
}

fn choices(spec_key: &str) -> Option<&'static [(&'static str, &'static str)]> {
    CHOICES
        .iter()
        .find(|(k, _)| *k == spec_key)
        .map(|(_, words)| *words)
}

impl Words {
    /// The device's own words (`--words`), or SPEC's.
    pub fn new(own: bool) -> Words {
        Words { own }
    }

    /// The device's name of a SPEC key (a key without one is shown as it is).
    pub fn key_out(&self, spec_key: &str) -> String {
        if self.own {
            forward(KEYS, spec_key).unwrap_or(spec_key).to_string()
        } else {
            spec_key.to_string()
        }
    }

    /// The SPEC key behind a name typed on the console, if the engine knows it.
    pub fn key_in(&self, name: &str) -> Option<&'static str> {
        let spec = if self.own {
            backward(KEYS, name)?
        } else {
            name
        };
        settings::lookup(spec).map(|d| d.key)
    }

    /// The device's word for a SPEC value of `spec_key`.
    pub fn value_out(&self, spec_key: &str, value: &str) -> String {
        if !self.own {
            return value.to_string();
        }
        let table: &[(&str, &str)] = match settings::lookup(spec_key).map(|d| d.kind) {
            Some(Kind::Bool) => &BOOL_WORDS,
            _ => choices(spec_key).unwrap_or(&[]),
        };
        forward(table, value).unwrap_or(value).to_string()
    }

    /// The SPEC value behind a value typed for `spec_key`; for a boolean or choice
    /// key a word that is not the device's is refused with the rule in its words.
    pub fn value_in(&self, spec_key: &str, value: &str) -> Result<String, String> {
        if !self.own {
            return Ok(value.to_string());
        }
        let table: &[(&str, &str)] = match settings::lookup(spec_key).map(|d| d.kind) {
            Some(Kind::Bool) => &BOOL_WORDS,
            _ => match choices(spec_key) {
                Some(t) => t,
                None => return Ok(value.to_string()),
            },
        };
        backward(table, value).map(str::to_string).ok_or_else(|| {
            let words: Vec<&str> = table.iter().map(|(_, d)| *d).collect();
            match words.as_slice() {
                [a, b] => format!("must be {a} or {b}"),
                _ => format!("must be one of {}", words.join(", ")),
            }
        })
    }

    /// The device's error class for a SPEC §5 class (an unknown class is shown
    /// upper case with `-`, so that it is never lost).
    pub fn class_out(&self, class: &str) -> String {
        if !self.own {
            return class.to_string();
        }
        match forward(CLASSES, class) {
            Some(c) => c.to_string(),
            None => class.to_ascii_uppercase().replace('_', "-"),
        }
    }

    /// A detail the device itself wrote (classes `config` and `disabled`, never a
    /// server's text) with each SPEC key in it, and a `key=value` after it, in the
    /// device's words: `(email.scan=off)` becomes `(scan-to-email=disable)`.
    pub fn detail_out(&self, class: &str, detail: &str) -> String {
        if !self.own || !matches!(class, "config" | "disabled") {
            return detail.to_string();
        }
        let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
        let mut out = String::new();
        let mut rest = detail;
        while !rest.is_empty() {
            // The earliest key standing alone, the longest one at a tie.
            let mut best: Option<(usize, &str, &str)> = None;
            for (spec, dev) in KEYS {
                let mut from = 0;
                while let Some(i) = rest[from..].find(spec).map(|i| i + from) {
                    let before = rest[..i].chars().next_back();
                    let alone =
                        !before.is_some_and(is_key_char) && !continues_key(&rest[i + spec.len()..]);
                    if alone {
                        if best.is_none_or(|(b, s, _)| i < b || (i == b && spec.len() > s.len())) {
                            best = Some((i, spec, dev));
                        }
                        break;
                    }
                    from = i + spec.len();
                }
            }
            let Some((i, spec, dev)) = best else {
                out.push_str(rest);
                break;
            };
            out.push_str(&rest[..i]);
            out.push_str(dev);
            rest = &rest[i + spec.len()..];
            if let Some(after) = rest.strip_prefix('=') {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                out.push('=');
                out.push_str(&self.value_out(spec, &after[..end]));
                rest = &after[end..];
            }
        }
        out
    }

    /// The SPEC alert kind behind a word typed on the console.
    pub fn alert_in(&self, word: &str) -> Option<&'static str> {
        if self.own {
            backward(ALERTS, word)
        } else {
            ALERTS.iter().map(|(s, _)| *s).find(|s| *s == word)
        }
    }

    /// The alert words this console takes, in SPEC's order.
    pub fn alert_words(&self) -> Vec<&'static str> {
        ALERTS
            .iter()
            .map(|(s, d)| if self.own { *d } else { *s })
            .collect()
    }

    /// The device's word for a SPEC job state (`queued`, `running`, `done`, `failed`).
    pub fn state_out(&self, state: &str) -> String {
        if self.own {
            forward(STATES, state).unwrap_or(state).to_string()
        } else {
            state.to_string()
        }
    }

    /// The device's verdict word for a recipient the server accepted or not.
    pub fn verdict_out(&self, accepted: bool) -> &'static str {
        let (spec, dev) = VERDICTS[if accepted { 0 } else { 1 }];
        if self.own {
            dev
        } else {
            spec
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfp_sim::settings::SCHEMA;

    fn one_to_one(table: &[(&str, &str)]) {
        for (i, (s, d)) in table.iter().enumerate() {
            for (s2, d2) in &table[i + 1..] {
                assert_ne!(s, s2, "SPEC word {s} twice");
                assert_ne!(d, d2, "device word {d} twice");
            }
        }
    }

    #[test]
    fn every_engine_key_has_a_name_and_no_name_is_inside_another() {
        for d in SCHEMA {
            assert!(
                forward(KEYS, d.key).is_some(),
                "{} has no device name",
                d.key
            );
        }
        one_to_one(KEYS);
        for (_, a) in KEYS {
            for (_, b) in KEYS {
                assert!(a == b || !a.contains(b), "{b} is inside {a}");
            }
            assert!(settings::lookup(a).is_none(), "{a} is a SPEC key");
        }
    }

    #[test]
    fn every_choice_and_class_maps_one_to_one() {
        for (key, words) in CHOICES {
            one_to_one(words);
            match settings::lookup(key).map(|d| d.kind) {
                Some(Kind::Choice(spec)) => {
                    let mine: Vec<&str> = words.iter().map(|(s, _)| *s).collect();
                    assert_eq!(mine, spec.to_vec(), "{key}");
                }
                other => panic!("{key} is not a choice: {other:?}"),
            }
        }
        one_to_one(CLASSES);
        assert_eq!(CLASSES.len(), 18);
        one_to_one(ALERTS);
        let kinds: Vec<&str> = ALERTS.iter().map(|(s, _)| *s).collect();
        assert_eq!(kinds, mfp_sim::console::ALERT_KINDS.to_vec());
        one_to_one(STATES);
    }

    #[test]
    fn values_round_trip_and_foreign_words_are_refused() {
        let w = Words::new(true);
        for d in SCHEMA {
            let shown = w.value_out(d.key, d.default);
            assert_eq!(
                w.value_in(d.key, &shown).as_deref(),
                Ok(d.default),
                "{}",
                d.key
            );
        }
        assert_eq!(
            w.value_in("email.scan", "on").unwrap_err(),
            "must be enable or disable"
        );
        assert!(w
            .value_in("smtp.tls", "smtps")
            .unwrap_err()
            .contains("plain, tls, starttls"));
        assert_eq!(w.value_in("smtp.port", "2525").as_deref(), Ok("2525"));
        assert_eq!(
            Words::new(false).value_in("email.scan", "on").as_deref(),
            Ok("on")
        );
        assert_eq!(w.key_in("smtp-port"), Some("smtp.port"));
        assert_eq!(w.key_in("smtp.port"), None);
        assert_eq!(Words::new(false).key_in("smtp.port"), Some("smtp.port"));
        assert_eq!(w.class_out("auth_failed"), "AUTH-FAIL");
        assert_eq!(w.class_out("new_class"), "NEW-CLASS");
        assert_eq!(w.alert_in("no-paper"), Some("paper_empty"));
        assert_eq!(
            w.detail_out("disabled", "scan to e-mail is off (email.scan=off)"),
            "scan to e-mail is off (scan-to-email=disable)"
        );
        assert_eq!(
            w.detail_out(
                "config",
                "no envelope sender: admin.address is empty; smtp.auth.user."
            ),
            "no envelope sender: admin-email is empty; auth-user."
        );
        assert_eq!(
            w.detail_out("config", "xsmtp.port smtp.portx smtp.port.y"),
            "xsmtp.port smtp.portx smtp.port.y"
        );
        assert_eq!(
            w.detail_out("rejected", "550 smtp.server is empty"),
            "550 smtp.server is empty"
        );
        assert_eq!(
            Words::new(false).alert_in("paper_empty"),
            Some("paper_empty")
        );
    }
}
