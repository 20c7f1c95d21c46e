//! The oracle: what a correct device does for a case, read from SPEC §2, §3 (steps
//! 1–3, 8–10) and §5. It is a second, independent reading of the contract: it never
//! calls into `mfp_sim`, so a misreading in the simulator cannot agree with itself.
//!
//! Where SPEC is silent, the choices are written down in `docs/oracle.md`.

use serde::Serialize;

use crate::faults::Action;
use crate::model::{Case, SettingView, Target, TriggerSpec};
use crate::smtp::{SmtpConfig, Step};

/// A delivery a correct device makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The MAIL FROM address (SPEC §3.8).
    pub mail_from: String,
    /// The header From (SPEC §2).
    pub header_from: String,
    /// Every recipient the job names: the To header.
    pub to: Vec<String>,
    /// Recipients the server accepted: the RCPT TOs that stick.
    pub accepted: Vec<String>,
    /// Recipients the server refused; the device reports each.
    pub refused: Vec<String>,
    /// EHLO, or HELO after a 500–504 to EHLO.
    pub greeted_with: &'static str,
    /// Whether MAIL FROM carries `SIZE=` (the server advertised SIZE in EHLO).
    pub size_param: bool,
    /// The scan attachment's size in KB, for a scan.
    pub attachment_kb: Option<u32>,
}

/// The outcome a correct device produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Expected {
    /// The trigger is refused at once (a scan with its switch off).
    Refused {
        class: &'static str,
    },
    /// The job fails with `class`; `connects` says whether a connection is made,
    /// `stored` whether the server got the message before the failure.
    /// `detail` is text the device's error detail must contain (the server's code);
    /// `wait_ms` how long (device ms) the device waits before failing (a timeout).
    Failed {
        class: &'static str,
        connects: bool,
        stored: bool,
        detail: Option<String>,
        wait_ms: Option<u64>,
    },
    Delivered(Delivery),
}

fn fail(class: &'static str, connects: bool) -> Expected {
    Expected::Failed {
        class,
        connects,
        stored: false,
        detail: None,
        wait_ms: None,
    }
}

/// How a scripted fault fails the job.
struct Failure {
    class: &'static str,
    /// The reply code the device must report.
    code: Option<u16>,
    /// The device gives up after its timeout.
    waits: bool,
}

impl Failure {
    fn expected(self, timeout_ms: u64) -> Expected {
        Expected::Failed {
            class: self.class,
            connects: true,
            stored: false,
            detail: self.code.map(|c| c.to_string()),
            wait_ms: self.waits.then_some(timeout_ms),
        }
    }
}

/// What a fault does to a device waiting for a reply whose success class is
/// `ok_class`, with `timeout_ms` of patience: `None` when the step goes on.
fn fault_effect(f: &Action, ok_class: u16, timeout_ms: u64) -> Option<Failure> {
    let by_code = |code: u16| {
        if code / 100 == ok_class && code != 421 {
            None
        } else {
            Some(Failure {
                class: "rejected",
                code: Some(code),
                waits: false,
            })
        }
    };
    let plain = |class, waits| {
        Some(Failure {
            class,
            code: None,
            waits,
        })
    };
    match f {
        Action::Hang | Action::HalfLine => plain("timeout", true),
        Action::Drop | Action::AbortTls => plain("connect", false),
        Action::Delay { ms } if *ms >= timeout_ms => plain("timeout", true),
        Action::Delay { .. } | Action::Throttle { .. } => None,
        Action::Garbage => plain("rejected", false),
        Action::Reply { code, .. } => by_code(*code),
        // A raw line is a reply if it starts with a code; anything else is not SMTP.
        Action::Line { text } => match text.get(..3).and_then(|c| c.parse::<u16>().ok()) {
            Some(code) => by_code(code),
            None => plain("rejected", false),
        },
    }
}

/// The expected outcome of `case` when the device holds `settings`.
pub fn expect(case: &Case, settings: &SettingView) -> Expected {
    let s = settings;
    // SPEC §2: the master switch and the switch of the mail kind.
    let (switch, is_scan) = match &case.trigger {
        TriggerSpec::Scan { .. } => ("email.scan", true),
        TriggerSpec::Alert(_) => ("email.notify", false),
        TriggerSpec::Counter => ("email.counter", false),
    };
    // A scan as a user the device does not know cannot start (docs/oracle.md).
    if let TriggerSpec::Scan { user: Some(u), .. } = &case.trigger {
        if !case.users.iter().any(|x| &x.name == u) {
            return Expected::Refused { class: "config" };
        }
    }
    if !s.on("email.enabled") || !s.on(switch) {
        return if is_scan {
            Expected::Refused { class: "disabled" }
        } else {
            fail("disabled", false)
        };
    }
    // SPEC §2: alerts and counters go to the notification addresses.
    let to: Vec<String> = match &case.trigger {
        TriggerSpec::Scan { to, .. } => to.clone(),
        _ => case.notify.clone(),
    };
    if to.is_empty() {
        return fail("config", false);
    }
    if s.get("smtp.server").is_empty() {
        return fail("config", false);
    }
    // SPEC §2: the header From.
    let user = match &case.trigger {
        TriggerSpec::Scan { user: Some(u), .. } => case.users.iter().find(|x| &x.name == u),
        _ => None,
    };
    let header_from = match user {
        Some(u) if !u.address.is_empty() => u.address.clone(),
        _ => s.get("device.address").to_string(),
    };
    if header_from.is_empty() {
        return fail("config", false);
    }
    // SPEC §3.8: the envelope sender.
    let mut mail_from = if s.get("envelope_from.mode") == "specified" {
        s.get("envelope_from.address").to_string()
    } else {
        s.get("admin.address").to_string()
    };
    if s.on("smtp.auth.enabled") && s.get("smtp.auth.source") == "device_user" {
        if let Some(u) = user.filter(|u| !u.address.is_empty()) {
            mail_from = u.address.clone();
        }
    }
    if mail_from.is_empty() {
        return fail("config", false);
    }
    if case.target == Target::ClosedPort {
        return fail("connect", true);
    }
    let timeout_ms = s.get("smtp.timeout").parse::<u64>().unwrap_or(60) * 1000;
    walk(
        &case.server,
        timeout_ms,
        mail_from,
        header_from,
        to,
        &case.trigger,
    )
}

/// Walks the SMTP conversation against the server scenario (SPEC §3 steps 3, 8–10).
fn walk(
    cfg: &SmtpConfig,
    timeout_ms: u64,
    mail_from: String,
    header_from: String,
    to: Vec<String>,
    trigger: &TriggerSpec,
) -> Expected {
    let at = |step: Step, n: u32| cfg.fault_at(step, n);
    if let Some(x) = at(Step::Greeting, 1).and_then(|f| fault_effect(f, 2, timeout_ms)) {
        return x.expected(timeout_ms);
    }
    let mut greeted_with = "EHLO";
    let mut extensions: &[String] = &cfg.extensions;
    if let Some(f) = at(Step::Ehlo, 1) {
        match f {
            Action::Reply { code, .. } if (500..=504).contains(code) => {
                greeted_with = "HELO";
                extensions = &[];
                if let Some(x) = at(Step::Helo, 1).and_then(|f| fault_effect(f, 2, timeout_ms)) {
                    return x.expected(timeout_ms);
                }
            }
            f => {
                if let Some(x) = fault_effect(f, 2, timeout_ms) {
                    return x.expected(timeout_ms);
                }
            }
        }
    }
    let size_param = extensions.iter().any(|e| {
        e.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case("SIZE"))
    });
    if let Some(x) = at(Step::Mail, 1).and_then(|f| fault_effect(f, 2, timeout_ms)) {
        return x.expected(timeout_ms);
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    let mut first_refusal = None;
    for (i, r) in to.iter().enumerate() {
        match at(Step::Rcpt, i as u32 + 1) {
            Some(Action::Reply { code, .. }) if code / 100 != 2 && *code != 421 => {
                refused.push(r.clone());
                first_refusal.get_or_insert(*code);
                continue;
            }
            Some(f) => {
                if let Some(x) = fault_effect(f, 2, timeout_ms) {
                    return x.expected(timeout_ms);
                }
            }
            None => {}
        }
        match cfg.rule_for(r) {
            Some(rule) if rule.code / 100 != 2 || rule.code == 421 => {
                let x = Failure {
                    class: "rejected",
                    code: Some(rule.code),
                    waits: false,
                };
                if rule.code == 421 {
                    return x.expected(timeout_ms);
                }
                refused.push(r.clone());
                first_refusal.get_or_insert(rule.code);
            }
            _ => accepted.push(r.clone()),
        }
    }
    if accepted.is_empty() {
        let x = Failure {
            class: "rejected",
            code: first_refusal,
            waits: false,
        };
        return x.expected(timeout_ms);
    }
    if let Some(x) = at(Step::Data, 1).and_then(|f| fault_effect(f, 3, timeout_ms)) {
        return x.expected(timeout_ms);
    }
    if let Some(x) = at(Step::EndOfData, 1).and_then(|f| fault_effect(f, 2, timeout_ms)) {
        return x.expected(timeout_ms);
    }
    // The message is with the server now. An explicit refusal of QUIT fails the job
    // (SPEC §3.10: any step); silence or a hang-up at QUIT does not undo delivery.
    if let Some(Action::Reply { code, .. }) = at(Step::Quit, 1) {
        if code / 100 != 2 {
            return Expected::Failed {
                class: "rejected",
                connects: true,
                stored: true,
                detail: Some(code.to_string()),
                wait_ms: None,
            };
        }
    }
    Expected::Delivered(Delivery {
        mail_from,
        header_from,
        to,
        accepted,
        refused,
        greeted_with,
        size_param,
        attachment_kb: match trigger {
            TriggerSpec::Scan { size_kb, .. } => Some(*size_kb),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Fault, When};
    use crate::model::UserSpec;

    fn case(trigger: TriggerSpec, settings: &[(&str, &str)]) -> (Case, SettingView) {
        let mut pairs = vec![
            ("smtp.server".to_string(), "127.0.0.1".to_string()),
            ("admin.address".into(), "admin@hil.test".into()),
            ("device.address".into(), "mfp@hil.test".into()),
        ];
        pairs.extend(settings.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let c = Case {
            id: "t".into(),
            section: "t".into(),
            dims: Default::default(),
            settings: vec![],
            users: vec![UserSpec {
                name: "taro".into(),
                password: "pw".into(),
                address: "taro@hil.test".into(),
            }],
            notify: vec!["ops@hil.test".into()],
            trigger,
            server: SmtpConfig::default(),
            target: Target::FakeServer,
        };
        (c, SettingView::from_pairs(&pairs))
    }

    fn scan(user: Option<&str>) -> TriggerSpec {
        TriggerSpec::Scan {
            to: vec!["a@hil.test".into()],
            size_kb: 1,
            user: user.map(str::to_string),
        }
    }

    #[test]
    fn switches_gate_each_kind() {
        let (c, s) = case(scan(None), &[("email.scan", "off")]);
        assert_eq!(expect(&c, &s), Expected::Refused { class: "disabled" });
        let (c, s) = case(TriggerSpec::Counter, &[("email.enabled", "off")]);
        assert_eq!(expect(&c, &s), fail("disabled", false));
        let (c, s) = case(TriggerSpec::Counter, &[("email.scan", "off")]);
        assert!(matches!(expect(&c, &s), Expected::Delivered(_)));
    }

    #[test]
    fn from_and_envelope_rules() {
        let (c, s) = case(
            scan(Some("taro")),
            &[
                ("envelope_from.mode", "specified"),
                ("envelope_from.address", "env@hil.test"),
            ],
        );
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.header_from, "taro@hil.test");
        assert_eq!(d.mail_from, "env@hil.test");
        let (c, s) = case(TriggerSpec::Alert("paper_jam".into()), &[]);
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.header_from, "mfp@hil.test");
        assert_eq!(d.mail_from, "admin@hil.test");
        assert_eq!(d.to, vec!["ops@hil.test"]);
    }

    #[test]
    fn helo_fallback_drops_size() {
        let (mut c, s) = case(scan(None), &[]);
        c.server.faults.push(Fault {
            step: Step::Ehlo,
            when: When {
                nth: None,
                probability: None,
            },
            action: Action::Reply {
                code: 502,
                text: "no".into(),
            },
        });
        let Expected::Delivered(d) = expect(&c, &s) else {
            panic!()
        };
        assert_eq!(d.greeted_with, "HELO");
        assert!(!d.size_param);
    }

    #[test]
    fn oracle_does_not_use_the_simulator() {
        // Any use of the simulator crate needs its path or an import of it.
        let path = ["mfp", "_sim::"].concat();
        let import = ["use ", "mfp", "_sim"].concat();
        for (name, src) in [
            ("oracle.rs", include_str!("oracle.rs")),
            ("model.rs", include_str!("model.rs")),
            ("verdict.rs", include_str!("verdict.rs")),
        ] {
            assert!(
                !src.contains(&path) && !src.contains(&import),
                "{name} must not call into the simulator"
            );
        }
    }
}
