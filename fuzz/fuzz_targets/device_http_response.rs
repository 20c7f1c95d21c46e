//! The device's HTTP client for OCSP and CRL fetches (`mfp_sim::http::ResponseReader`)
//! fed an arbitrary answer, as the server's bytes arrive.
//!
//! Input: one flags byte, then the answer's bytes.
//! - bits 0–5 + 1: the size of the pieces the bytes arrive in (1–64); bit 6: the
//!   whole answer in one piece instead; bit 7: the connection stays open at the end
//!   (no `finish`).
//!
//! Checks: no panic; a body never over `MAX_BODY`; the same answer read in pieces
//! and in one piece gives the same status and body (or both an error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mfp_sim::http::{parse_response, ResponseReader, MAX_BODY};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    let piece = if flags & 0x40 != 0 {
        raw.len().max(1)
    } else {
        usize::from(flags & 0x3f) + 1
    };
    let mut reader = ResponseReader::default();
    let mut got = None;
    for p in raw.chunks(piece) {
        match reader.push(p) {
            Ok(None) => continue,
            Ok(Some(r)) => got = Some(Ok(r)),
            Err(e) => got = Some(Err(e)),
        }
        break;
    }
    let got = match got {
        Some(g) => g,
        None if flags & 0x80 != 0 => return,
        None => reader.finish(),
    };
    let whole = parse_response(raw);
    match (&got, &whole) {
        (Ok(a), Ok(b)) => {
            assert!(a.body.len() <= MAX_BODY);
            assert_eq!((a.status, &a.body), (b.status, &b.body));
        }
        (Err(_), Err(_)) => {}
        _ => panic!("in pieces of {piece}: {got:?}; in one piece: {whole:?}"),
    }
});
