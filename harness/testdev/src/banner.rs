//! The fixed texts of the device's life: the boot greeting (at start and after every
//! reboot), the login banner, and the panic banner of a crash (`--crash-at-job`).
//! A harness recognises a reboot by these, so they are kept in one place.

/// The lines printed when the device (re)boots, before any login or prompt.
pub const BOOT: &[&str] = &[
    "MFP-4000 bootloader v1.2",
    "Booting firmware 3.1.4 ...",
    "Mail engine started.",
    "System ready.",
];

/// The lines before the first `Username: ` (with `--login`).
pub const LOGIN_BANNER: &[&str] = &["", "User Access Verification", ""];

/// The login prompts, printed without a newline.
pub const USER_PROMPT: &str = "Username: ";
pub const PASSWORD_PROMPT: &str = "Password: ";

/// The answer to a wrong login (then a blank line and `Username: ` again).
pub const LOGIN_INVALID: &str = "% Login invalid";

/// The panic banner of a crash while job `job` starts (its first line follows a
/// blank line; the device reboots after the last).
pub fn panic(job: u64) -> Vec<String> {
    vec![
        String::new(),
        "*** PANIC: watchdog timeout in mail task ***".into(),
        format!("  task: smtp-tx  job: {job}"),
        "  pc: 0x8012a4c0  lr: 0x8012a3f8  sp: 0x9ffe7d20".into(),
        "  r0: 0x00000000  r1: 0x0000000c  r2: 0xdeadbeef  r3: 0x00000001".into(),
        "Rebooting ...".into(),
    ]
}
