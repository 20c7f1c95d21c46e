//! The first set of cases `hil run` checks (SPEC §2, §3 steps 1–3 and 8–10): the four
//! switches × the three mail kinds, both envelope-from modes, device and admin
//! addresses, refused recipients, a 4xx and a 5xx reply at each SMTP step, servers
//! that never answer or hang up, and nothing listening.

use crate::model::{Case, Key, Target, TriggerSpec, UserSpec};
use hil_mail::faults::{Action, Fault, When};
use hil_mail::smtp::{RecipientRule, SmtpConfig, Step};

pub const ADMIN: &str = "admin@hil.test";
pub const DEVICE: &str = "mfp@hil.test";
pub const NOTIFY: &str = "ops@hil.test";

fn pairs(p: &[(Key, &str)]) -> Vec<(Key, String)> {
    p.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// A case with the common settings: admin and device addresses, one notification
/// address, one user with and one without an address.
/// The device users every case registers: one with an address, one without.
pub fn users() -> Vec<UserSpec> {
    vec![
        UserSpec {
            name: "taro".into(),
            password: "taro-pass-1".into(),
            address: "taro@hil.test".into(),
        },
        UserSpec {
            name: "guest".into(),
            password: "guest-pass-1".into(),
            address: String::new(),
        },
    ]
}

fn base(id: String, trigger: TriggerSpec) -> Case {
    Case {
        section: id.split('/').next().unwrap_or("").to_string(),
        dims: Default::default(),
        id,
        settings: pairs(&[(Key::AdminAddress, ADMIN), (Key::DeviceAddress, DEVICE)]),
        users: users(),
        notify: vec![NOTIFY.into()],
        trigger,
        server: SmtpConfig::default(),
        pop: crate::model::pop_server(),
        target: Target::FakeServer,
        listener: hil_mail::smtp::ListenerKind::Plain,
        cert: None,
        import_ca: false,
    }
}

fn scan_to(to: &[&str], size_kb: u32, user: Option<&str>) -> TriggerSpec {
    TriggerSpec::Scan {
        to: to.iter().map(|s| s.to_string()).collect(),
        size_kb,
        user: user.map(str::to_string),
    }
}

fn scan() -> TriggerSpec {
    scan_to(&["alice@hil.test"], 4, None)
}

fn kinds() -> Vec<TriggerSpec> {
    vec![
        scan(),
        TriggerSpec::Alert("paper_jam".into()),
        TriggerSpec::Counter,
    ]
}

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

fn reply(step: Step, code: u16, text: &str) -> Fault<Step> {
    fault(
        step,
        None,
        Action::Reply {
            code,
            text: text.into(),
        },
    )
}

fn with_fault(mut c: Case, f: Fault<Step>) -> Case {
    c.server.faults.push(f);
    c
}

/// A 4xx and a 5xx reply (code, text) at each SMTP step: the classic set and the
/// matrix's built-in faults both use them.
pub const STEP_REPLIES: &[(Step, u16, &str, u16, &str)] = &[
    (
        Step::Greeting,
        421,
        "4.3.2 Service not available",
        554,
        "5.3.2 No SMTP service here",
    ),
    (
        Step::Ehlo,
        421,
        "4.3.2 Shutting down",
        550,
        "5.7.1 Access denied",
    ),
    (
        Step::Mail,
        451,
        "4.3.0 Temporary failure",
        553,
        "5.1.8 Sender address rejected",
    ),
    (
        Step::Rcpt,
        450,
        "4.2.1 Try again later",
        550,
        "5.7.1 Relaying denied",
    ),
    (
        Step::Data,
        451,
        "4.3.0 Try again",
        554,
        "5.5.1 No valid recipients",
    ),
    (
        Step::EndOfData,
        452,
        "4.3.1 Insufficient system storage",
        552,
        "5.3.4 Message size exceeds fixed limit",
    ),
    (
        Step::Quit,
        421,
        "4.4.2 Timeout",
        500,
        "5.5.1 Command unrecognized",
    ),
];

/// Every case of the first set, in a stable order.
pub fn first_set() -> Vec<Case> {
    [
        switch_cases(),
        envelope_cases(),
        header_from_cases(),
        recipient_cases(),
        step_reply_cases(),
        extension_and_size_cases(),
        unreachable_cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// SPEC §2: the four switches × the three mail kinds.
fn switch_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for bits in 0..16u8 {
        let on = |b: u8| if bits & (1 << b) != 0 { "off" } else { "on" };
        let sw = [
            (Key::EmailEnabled, on(3)),
            (Key::EmailScan, on(2)),
            (Key::EmailNotify, on(1)),
            (Key::EmailCounter, on(0)),
        ];
        let label: Vec<String> = sw
            .iter()
            .map(|(k, v)| format!("{}={v}", k.as_str().trim_start_matches("email.")))
            .collect();
        for t in kinds() {
            let mut c = base(format!("switches/{}/{}", label.join(","), t.kind()), t);
            c.settings.extend(pairs(&sw));
            v.push(c);
        }
    }
    v
}

/// SPEC §3.8: the envelope-from modes and the addresses they need (and the device
/// address the header From needs), for each mail kind.
fn envelope_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for t in kinds() {
        let k = t.kind();
        let mut c = base(format!("envelope/admin/{k}"), t.clone());
        c.settings
            .extend(pairs(&[(Key::EnvelopeFromMode, "admin")]));
        v.push(c);
        let mut c = base(format!("envelope/specified/{k}"), t.clone());
        c.settings.extend(pairs(&[
            (Key::EnvelopeFromMode, "specified"),
            (Key::EnvelopeFromAddress, "bounces@hil.test"),
        ]));
        v.push(c);
        let mut c = base(format!("envelope/specified-empty/{k}"), t.clone());
        c.settings
            .extend(pairs(&[(Key::EnvelopeFromMode, "specified")]));
        v.push(c);
        let mut c = base(format!("envelope/admin-empty/{k}"), t.clone());
        c.settings.extend(pairs(&[(Key::AdminAddress, "")]));
        v.push(c);
        let mut c = base(format!("from/device-address-empty/{k}"), t);
        c.settings.extend(pairs(&[(Key::DeviceAddress, "")]));
        v.push(c);
    }
    v
}

/// SPEC §2: the header From of a scan: the job user's address, else the device
/// address; a scan as an unknown user.
fn header_from_cases() -> Vec<Case> {
    let mut v = vec![
        base(
            "from/scan-user-with-address".into(),
            scan_to(&["alice@hil.test"], 2, Some("taro")),
        ),
        base(
            "from/scan-user-without-address".into(),
            scan_to(&["alice@hil.test"], 2, Some("guest")),
        ),
    ];
    let mut c = base(
        "from/scan-user-address-device-empty".into(),
        scan_to(&["alice@hil.test"], 2, Some("taro")),
    );
    c.settings.extend(pairs(&[(Key::DeviceAddress, "")]));
    v.push(c);
    v.push(base(
        "from/scan-unknown-user".into(),
        scan_to(&["alice@hil.test"], 2, Some("nobody")),
    ));
    v
}

/// SPEC §3.9: recipients refused (some, all, a notification address, once), and no
/// notification address at all.
fn recipient_cases() -> Vec<Case> {
    let refuse = |addrs: &[&str]| -> Vec<RecipientRule> {
        addrs
            .iter()
            .map(|a| RecipientRule {
                address: a.to_string(),
                code: 550,
                text: "5.1.1 <".to_string() + a + ">: Recipient address rejected: User unknown",
            })
            .collect()
    };
    let three = ["a@hil.test", "b@hil.test", "c@hil.test"];
    let mut v = Vec::new();
    let mut c = base(
        "recipients/one-of-three-refused".into(),
        scan_to(&three, 1, None),
    );
    c.server.policy.recipients = refuse(&["b@hil.test"]);
    v.push(c);
    let mut c = base(
        "recipients/two-of-three-refused".into(),
        scan_to(&three, 1, None),
    );
    c.server.policy.recipients = refuse(&["a@hil.test", "c@hil.test"]);
    v.push(c);
    let mut c = base("recipients/all-refused".into(), scan_to(&three, 1, None));
    c.server.policy.recipients = refuse(&three);
    v.push(c);
    let mut c = base(
        "recipients/one-notify-address-refused".into(),
        TriggerSpec::Alert("toner_out".into()),
    );
    c.notify = vec![NOTIFY.into(), "gone@hil.test".into()];
    c.server.policy.recipients = refuse(&["gone@hil.test"]);
    v.push(c);
    let mut c = base(
        "recipients/second-rcpt-450-once".into(),
        scan_to(&three, 1, None),
    );
    c.server.faults.push(fault(
        Step::Rcpt,
        Some(2),
        Action::Reply {
            code: 450,
            text: "4.2.0 Mailbox busy".into(),
        },
    ));
    v.push(c);
    let mut c = base("recipients/none-registered".into(), TriggerSpec::Counter);
    c.notify.clear();
    v.push(c);
    v
}

/// SPEC §3.3 and §3.10: a 4xx and a 5xx at each step; EHLO refused as unknown (HELO
/// once, then no extensions), and HELO refused too.
fn step_reply_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (step, c4, t4, c5, t5) in STEP_REPLIES {
        for (code, text) in [(c4, t4), (c5, t5)] {
            let c = base(format!("steps/{}-{code}", step.name()), scan());
            v.push(with_fault(c, reply(*step, *code, text)));
        }
    }
    for code in [500u16, 502] {
        let c = base(format!("steps/ehlo-{code}-helo-fallback"), scan());
        v.push(with_fault(
            c,
            reply(Step::Ehlo, code, "5.5.2 Command unrecognized"),
        ));
    }
    let c = with_fault(
        base("steps/ehlo-502-helo-501".into(), scan()),
        reply(Step::Ehlo, 502, "5.5.1 no"),
    );
    v.push(with_fault(c, reply(Step::Helo, 501, "5.5.4 Syntax error")));
    v
}

/// SPEC §3.8: SIZE offered (as "no limit") or no extensions at all; attachment sizes.
fn extension_and_size_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut c = base("extensions/size-0".into(), scan());
    c.server.extensions = vec!["SIZE 0".into(), "8BITMIME".into()];
    v.push(c);
    let mut c = base("extensions/none".into(), scan());
    c.server.extensions = vec![];
    v.push(c);
    for kb in [0u32, 1, 300] {
        v.push(base(
            format!("scan/size-{kb}kb"),
            scan_to(&["alice@hil.test"], kb, None),
        ));
    }
    v
}

/// SPEC §3.1, §3.2 and §2: servers that never answer, hang up, or are not there, and
/// no server address.
fn unreachable_cases() -> Vec<Case> {
    let mut v = Vec::new();
    let short = pairs(&[(Key::SmtpTimeout, "30")]);
    for step in [Step::Greeting, Step::Ehlo, Step::EndOfData, Step::Quit] {
        let mut c = base(format!("timeout/hang-at-{}", step.name()), scan());
        c.settings.extend(short.clone());
        v.push(with_fault(c, fault(step, None, Action::Hang)));
    }
    for step in [Step::Greeting, Step::Mail, Step::Quit] {
        let c = base(format!("drop/at-{}", step.name()), scan());
        v.push(with_fault(c, fault(step, None, Action::Drop)));
    }
    let mut c = base("connect/nothing-listening".into(), scan());
    c.target = Target::ClosedPort;
    v.push(c);
    let mut c = base("config/empty-server".into(), scan());
    c.settings.extend(pairs(&[(Key::SmtpServer, "")]));
    v.push(c);
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique() {
        let cases = super::first_set();
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(n > 90, "{n}");
    }
}
