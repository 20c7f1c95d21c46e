//! The device's console (`mfp_sim::console`: `LineBuffer` and `Session`) fed arbitrary
//! bytes: line cutting, quoting, every command, `cert import` PEM collection.
//!
//! One device serves every input; each input starts from factory settings with no
//! jobs. Jobs a line starts are never run (no network while fuzzing).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use mfp_sim::console::{LineBuffer, Session};
use mfp_sim::device::{Device, Options};

fn device() -> &'static Arc<Device> {
    static DEV: OnceLock<Arc<Device>> = OnceLock::new();
    DEV.get_or_init(|| Device::start(Options::default()).expect("the device starts"))
}

fuzz_target!(|data: &[u8]| {
    let dev = device();
    dev.reset();
    dev.forget_jobs();
    let mut lines = LineBuffer::default();
    let mut session = Session::default();
    // Two reads, so that a line can be cut across them.
    let (a, b) = data.split_at(data.len() / 2);
    for read in [a, b] {
        for line in lines.push(read) {
            let _ = session.handle(line, dev);
            let _ = session.take_started();
        }
    }
});
