//! The fake POP3 server's session (`hil_mail::pop3::Pop3Session`) fed arbitrary client bytes.
//!
//! Input: one flags byte, then the client's byte stream.
//! - bit 0: STLS offered; bit 1: APOP offered; bit 2: APOP offered but refused;
//! - bit 3: scripted faults;
//! - bits 5-7: how the stream is cut into reads, as in `smtp_session`.
//!
//! A STLS answered with `StartTls` is taken as a handshake that succeeded.
#![no_main]

use std::sync::Arc;

use hil_mail::faults::{Action, Fault, When};
use hil_mail::pop3::{Pop3Config, Pop3Output, Pop3Session, Pop3Step, PopAccount, StoredMessage};
use libfuzzer_sys::fuzz_target;

fn fault(
    step: Pop3Step,
    nth: Option<u32>,
    probability: Option<f64>,
    action: Action,
) -> Fault<Pop3Step> {
    Fault {
        step,
        when: When { nth, probability },
        action,
    }
}

fn config(flags: u8) -> Pop3Config {
    let faults = if flags & 0x08 != 0 {
        vec![
            fault(
                Pop3Step::User,
                Some(2),
                None,
                Action::Reply {
                    code: 0,
                    text: "-ERR [IN-USE] busy".into(),
                },
            ),
            fault(Pop3Step::Pass, Some(2), None, Action::HalfLine),
            fault(Pop3Step::Retr, Some(1), None, Action::Delay { ms: 5 }),
            fault(Pop3Step::Retr, Some(2), None, Action::Garbage),
            fault(
                Pop3Step::List,
                None,
                Some(0.5),
                Action::Line {
                    text: "+OK 1 messages\n1 10\n.".into(),
                },
            ),
            fault(Pop3Step::Stls, Some(2), None, Action::AbortTls),
            fault(Pop3Step::Capa, Some(2), None, Action::Hang),
            fault(Pop3Step::Quit, Some(1), None, Action::Drop),
            fault(
                Pop3Step::Stat,
                None,
                None,
                Action::Throttle { bytes_per_sec: 3 },
            ),
        ]
    } else {
        Vec::new()
    };
    Pop3Config {
        hostname: "pop.hil.test".into(),
        apop: flags & 0x02 != 0,
        refuse_apop: flags & 0x04 != 0,
        stls: flags & 0x01 != 0,
        accounts: vec![
            PopAccount {
                user: "printer".into(),
                password: "s3cret-Pass".into(),
            },
            PopAccount {
                user: "empty".into(),
                password: String::new(),
            },
        ],
        messages: vec![
            StoredMessage {
                uid: "hil-1".into(),
                data: "Subject: a\r\n\r\n.dot\r\nline\r\n".into(),
            },
            StoredMessage {
                uid: "hil-2".into(),
                data: "Subject: b\n\nno CR\n".into(),
            },
            StoredMessage {
                uid: "hil-3".into(),
                data: String::new(),
            },
        ],
        faults,
        seed: 7,
        ..Pop3Config::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let mut s = Pop3Session::new(Arc::new(config(flags)), 5);
    let mut closed = s.start(0).contains(&Pop3Output::Close);
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
                Pop3Output::StartTls => s.tls_started(),
                Pop3Output::Close => closed = true,
                _ => {}
            }
        }
        let _ = s.take_transcript();
    }
    let _ = (s.logged_in_user(), s.deleted_uids());
});
