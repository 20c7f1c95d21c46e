//! The device's POP3 client (`mfp_sim::pop_client::PopClient`) fed arbitrary server
//! bytes, cut into status lines as `net.rs` cuts them.
//!
//! Input: one flags byte, then the server's byte stream.
//! - bit 0: APOP (else USER/PASS); bit 1: STLS first.
//!
//! A `StartTls` with no bytes waiting is taken as a handshake that succeeded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfp_sim::pop_client::{PopAction, PopAuth, PopClient, PopPlan};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let mut client = PopClient::new(PopPlan {
        user: "printer".into(),
        password: "s3cret-Pass".into(),
        auth: if flags & 1 != 0 {
            PopAuth::Apop
        } else {
            PopAuth::UserPass
        },
        stls: flags & 2 != 0,
    });
    let mut buf: Vec<u8> = stream.to_vec();
    // The IO layer gives up on a line longer than 4096 bytes.
    while let Some(pos) = buf.iter().position(|b| *b == b'\n').filter(|p| *p <= 4096) {
        let raw: Vec<u8> = buf.drain(..=pos).collect();
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        let mut action = client.on_line(&line);
        if action == PopAction::StartTls {
            if !buf.is_empty() {
                break;
            }
            action = client.tls_established();
        }
        match action {
            PopAction::Send(_) => {}
            PopAction::StartTls => {
                // A second STLS: the IO layer refuses it; the client must stay total.
                let _ = client.tls_established();
                break;
            }
            PopAction::Done | PopAction::Fail { .. } => {
                // After the end every further line answers the same again.
                let _ = client.on_line(&line);
                break;
            }
        }
    }
});
