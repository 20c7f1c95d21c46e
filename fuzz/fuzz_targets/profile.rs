//! Device profiles (`hil::device::Profile::parse`) on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = hil::device::Profile::parse("fuzz.toml", text);
});
