//! Scenario files (`hil_mail::scenario::Scenario::parse`) on arbitrary text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = hil_mail::scenario::Scenario::parse(Path::new("scenarios/fuzz.toml"), text) {
        let _ = s.base_dir();
    }
});
