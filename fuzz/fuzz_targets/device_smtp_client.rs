//! The device's SMTP client (`mfp_sim::smtp_client`: `ReplyReader` and `Client`) fed
//! arbitrary server bytes, driven as `net.rs` drives it.
//!
//! Input: one flags byte, then the server's byte stream.
//! - bits 0-1: TLS mode: none, SMTPS, STARTTLS, STARTTLS with the plaintext fallback;
//! - bit 2: AUTH on; bit 3: the send-without-auth variant;
//! - bits 4-5: the enabled mechanisms: all, digest-md5, cram-md5 and login, xoauth2
//!   and plain;
//! - bits 6-7: how the stream is cut into reads: one line per read, all at once, 5 bytes,
//!   1 byte.
//!
//! A `StartTls` with no bytes waiting is taken as a handshake that succeeded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfp_sim::sasl_client::Credentials;
use mfp_sim::smtp_client::{Action, AuthPlan, Client, Envelope, ReplyReader, TlsMode};

fn envelope(flags: u8) -> Envelope {
    let enabled: &[&str] = match (flags >> 4) & 3 {
        0 => &["xoauth2", "digest-md5", "cram-md5", "login", "plain"],
        1 => &["digest-md5"],
        2 => &["cram-md5", "login"],
        _ => &["xoauth2", "plain"],
    };
    Envelope {
        tls: match flags & 3 {
            0 => TlsMode::None,
            1 => TlsMode::Smtps,
            _ => TlsMode::Starttls,
        },
        plaintext_fallback: flags & 3 == 3,
        auth: (flags & 0x04 != 0).then(|| AuthPlan {
            enabled: enabled.iter().map(|s| s.to_string()).collect(),
            creds: Credentials {
                user: "printer".into(),
                password: "s3cret-Pass".into(),
                realm: if flags & 0x10 != 0 {
                    "hil.test".into()
                } else {
                    String::new()
                },
                token: "ya29.token".into(),
            },
            service_host: "mx.hil.test".into(),
            cnonce_seed: 9,
            send_without_auth: flags & 0x08 != 0,
        }),
        ehlo_host: "mfp-sim".into(),
        mail_from: "mfp@hil.test".into(),
        recipients: vec![
            "a@hil.test".into(),
            "b@hil.test".into(),
            "c@hil.test".into(),
        ],
        message: b"Subject: fuzz\r\n\r\n.dot line\r\nbody\r\n".to_vec(),
        then: if flags & 0x40 != 0 {
            vec![b"Subject: two\r\n\r\nbody\r\n".to_vec()]
        } else {
            Vec::new()
        },
        quirks: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let mut client = Client::new(envelope(flags));
    let mut reader = ReplyReader::default();
    let reads: Vec<&[u8]> = match flags >> 6 {
        0 => stream.split_inclusive(|b| *b == b'\n').collect(),
        1 => vec![stream],
        2 => stream.chunks(5).collect(),
        _ => stream.chunks(1).collect(),
    };
    let mut pending = std::collections::VecDeque::new();
    'reads: for read in reads {
        match reader.push(read) {
            Ok(replies) => pending.extend(replies),
            Err(_) => break,
        }
        while let Some(reply) = pending.pop_front() {
            let _ = reply.summary();
            let mut action = client.on_reply(reply);
            if action == Action::StartTls {
                if !pending.is_empty() || reader.is_mid_reply() {
                    break 'reads;
                }
                action = client.tls_established();
            }
            match action {
                Action::StartTls | Action::Finish(..) => break 'reads,
                Action::Send(_) => {}
            }
        }
    }
    let _ = (
        client.step().name(),
        client.recipients(),
        client.extensions(),
        client.authenticated(),
    );
});
