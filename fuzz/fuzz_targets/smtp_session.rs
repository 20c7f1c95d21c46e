//! The fake SMTP server's session (`hil_mail::smtp::Session`) fed arbitrary client bytes.
//!
//! Input: one flags byte, then the client's byte stream.
//! - bit 0: the listener offers STARTTLS; bit 1: implicit TLS (when bit 0 is clear);
//! - bit 2: AUTH is required before MAIL, and offered only after TLS;
//! - bit 3: POP before SMTP is on and the client has logged in;
//! - bit 4: scripted faults and a 512-byte size limit;
//! - bits 5-7: how the stream is cut into reads: 0 one line per read, 1 all at once,
//!   n a read of 3n bytes.
//!
//! A STARTTLS answered with `StartTls` is taken as a handshake that succeeded.
#![no_main]

use std::net::IpAddr;
use std::sync::Arc;

use hil_mail::faults::{Action, Fault, When};
use hil_mail::sasl::{Account, Mechanism};
use hil_mail::smtp::{Output, Policy, RecipientRule, Session, SessionEnv, SmtpConfig, Step};
use libfuzzer_sys::fuzz_target;

fn fault(step: Step, nth: Option<u32>, probability: Option<f64>, action: Action) -> Fault<Step> {
    Fault {
        step,
        when: When { nth, probability },
        action,
    }
}

fn config(flags: u8) -> SmtpConfig {
    let faults = if flags & 0x10 != 0 {
        vec![
            fault(
                Step::Ehlo,
                Some(2),
                None,
                Action::Reply {
                    code: 250,
                    text: "override\nSIZE 1".into(),
                },
            ),
            fault(Step::Helo, Some(2), None, Action::Hang),
            fault(Step::Mail, Some(3), None, Action::HalfLine),
            fault(
                Step::Rcpt,
                Some(2),
                None,
                Action::Reply {
                    code: 450,
                    text: "4.2.0 busy\nagain".into(),
                },
            ),
            fault(
                Step::Rcpt,
                None,
                Some(0.3),
                Action::Reply {
                    code: 451,
                    text: "4.7.1 greylisted".into(),
                },
            ),
            fault(
                Step::Data,
                Some(2),
                None,
                Action::Line {
                    text: "250 not what you expect".into(),
                },
            ),
            fault(
                Step::EndOfData,
                Some(2),
                None,
                Action::Reply {
                    code: 421,
                    text: "4.3.2 bye".into(),
                },
            ),
            fault(Step::Auth, Some(3), None, Action::Garbage),
            fault(
                Step::AuthResult,
                Some(2),
                None,
                Action::Reply {
                    code: 535,
                    text: "5.7.8 no".into(),
                },
            ),
            fault(
                Step::Starttls,
                Some(2),
                None,
                Action::Reply {
                    code: 454,
                    text: "4.7.0 TLS not available".into(),
                },
            ),
            fault(Step::Quit, None, None, Action::Delay { ms: 10 }),
            fault(
                Step::Greeting,
                Some(2),
                None,
                Action::Throttle { bytes_per_sec: 10 },
            ),
        ]
    } else {
        Vec::new()
    };
    SmtpConfig {
        hostname: "mx.hil.test".into(),
        auth: Mechanism::ALL.to_vec(),
        auth_before_tls: flags & 0x04 == 0,
        realms: vec!["hil.test".into(), "other.test".into()],
        accounts: vec![
            Account {
                user: "printer".into(),
                password: "s3cret-Pass".into(),
                realm: None,
                token: Some("ya29.token".into()),
            },
            Account {
                user: "scan".into(),
                password: "pw".into(),
                realm: Some("hil.test".into()),
                token: None,
            },
        ],
        policy: Policy {
            require_auth: flags & 0x04 != 0,
            max_size: (flags & 0x10 != 0).then_some(512),
            refuse_bare_lf: flags & 0x01 != 0,
            recipients: vec![
                RecipientRule {
                    address: "nobody@hil.test".into(),
                    code: 550,
                    text: "5.1.1 unknown".into(),
                },
                RecipientRule {
                    address: "*@full.test".into(),
                    code: 452,
                    text: "4.2.2 full".into(),
                },
                RecipientRule {
                    address: "ok@hil.test".into(),
                    code: 250,
                    text: "fine".into(),
                },
            ],
            pop_before_smtp_window_s: (flags & 0x08 != 0).then_some(60),
        },
        faults,
        seed: 42,
        ..SmtpConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let starttls = flags & 0x01 != 0;
    let logged_in = flags & 0x08 != 0;
    let env = SessionEnv {
        connection: 3,
        peer: IpAddr::from([192, 0, 2, 7]),
        starttls,
        tls: !starttls && flags & 0x02 != 0,
        pop_login_within: Arc::new(move |_, _| logged_in),
    };
    let mut s = Session::new(Arc::new(config(flags)), env);
    let mut closed = s.start(0).contains(&Output::Close);
    let reads: Vec<&[u8]> = match flags >> 5 {
        0 => stream.split_inclusive(|b| *b == b'\n').collect(),
        1 => vec![stream],
        n => stream.chunks(3 * n as usize).collect(),
    };
    for (i, read) in reads.into_iter().enumerate() {
        if closed {
            break;
        }
        for o in s.feed(10 * (i as u64 + 1), read) {
            match o {
                Output::StartTls => s.tls_started(),
                Output::Close => closed = true,
                _ => {}
            }
        }
        let _ = s.take_transcript();
    }
});
