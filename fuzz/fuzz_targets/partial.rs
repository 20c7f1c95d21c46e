//! `message/partial` reassembly (`hil_mail::partial`) fed arbitrary messages.
//!
//! Input: messages separated by NUL bytes, each received on its own connection. Each
//! goes to `fragment_info` and the `Assembler`; all of them, in order, to `reassemble`.
#![no_main]

use hil_mail::partial::{fragment_info, reassemble, Assembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let messages: Vec<&[u8]> = data.split(|b| *b == 0).collect();
    let mut assembler = Assembler::default();
    for (i, m) in messages.iter().enumerate() {
        let _ = fragment_info(m);
        if let Some(r) = assembler.add(i as u64 + 1, m) {
            assert_eq!(r.size, r.data.len());
            assert!(!r.connections.is_empty());
        }
    }
    let _ = reassemble(&messages);
});
