//! The test device's console, driven over a real pty as the harness drives it: every
//! trait, a job through the engine to a local SMTP server, a failed job, events,
//! crash and hang. Loopback and ephemeral ports only; each test its own device.

mod common;

use std::time::Duration;

use common::{ca_pem, closed_port, Dev, SmtpServer, PROMPT};

fn router(extra: &[&str]) -> Dev {
    let mut args = vec!["--style", "router", "--time-scale", "50"];
    args.extend_from_slice(extra);
    let mut d = Dev::start(&args);
    d.expect("System ready.\r\n");
    d.login();
    d
}

#[test]
fn login_echo_and_the_pid_on_stderr() {
    let mut d = Dev::start(&["--style", "router"]);
    let pid_line = d.stderr.recv_timeout(common::WAIT).expect("a pid line");
    assert_eq!(pid_line, format!("mfp-testdev: pid {}", d.pid()));
    let boot = d.expect("Username: ");
    assert!(boot.contains("MFP-4000 bootloader v1.2\r\n"), "{boot:?}");
    d.line("admin");
    // The user name is echoed, the password is not (only its line end).
    assert_eq!(d.expect("Password: "), "admin\r\nPassword: ");
    d.line("wrong-password");
    let refused = d.expect("Username: ");
    assert_eq!(refused, "\r\n% Login invalid\r\n\r\nUsername: ");
    d.line("admin");
    d.expect("Password: ");
    d.line("admin123");
    assert_eq!(d.expect(PROMPT), "\r\nmfp-4000# ");
    // Each command line comes back before its answer.
    let out = d.cmd("show running-config smtp-port");
    assert_eq!(out, "show running-config smtp-port\r\nsmtp-port 25\r\n");
    let all = d.drain_raw(Duration::from_millis(100));
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn ansi_colours_wrap_prompts_and_errors() {
    let mut d = router(&[]);
    d.line("frobnicate");
    let raw = d.drain_raw(Duration::from_millis(500));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("\x1b[1;31m% CONFIG-ERROR: unknown command \"frobnicate\"; '?' lists the commands\x1b[0m\r\n"),
        "{text:?}"
    );
    assert!(text.ends_with("\x1b[1;32mmfp-4000# \x1b[0m"), "{text:?}");
}

#[test]
fn configure_commit_and_read_back_in_device_words() {
    let mut d = router(&[]);
    // Outside configuration mode a change is refused.
    let out = d.cmd("set smtp-port 2525");
    assert!(
        out.contains("% CONFIG-ERROR: settings are changed in configuration mode"),
        "{out}"
    );
    assert_eq!(d.cmd("configure"), "configure\r\n");
    d.cmd("set smtp-security starttls email-sending disable");
    d.cmd(r#"set auth-user "John \"JJ\" Smith \\ Jr" auth-password "s3cret word""#);
    d.cmd("set large-mail link-oversize size-limit capped");
    // Staged, not yet applied: the configuration lists it, the password masked.
    let staged = d.cmd("show configuration");
    assert!(
        staged.contains("set auth-password ********\r\n"),
        "{staged}"
    );
    assert_eq!(d.cmd("commit"), "commit\r\n");
    assert_eq!(d.cmd("end"), "end\r\n");
    let read = |d: &mut Dev, k: &str| {
        let out = d.cmd(&format!("show running-config {k}"));
        out.lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(read(&mut d, "smtp-security"), "smtp-security starttls");
    assert_eq!(read(&mut d, "email-sending"), "email-sending disable");
    assert_eq!(
        read(&mut d, "auth-user"),
        r#"auth-user "John \"JJ\" Smith \\ Jr""#
    );
    assert_eq!(read(&mut d, "auth-password"), "auth-password ********");
    assert_eq!(read(&mut d, "large-mail"), "large-mail link-oversize");
    assert_eq!(read(&mut d, "size-limit"), "size-limit capped");
    // SPEC's own key is not a parameter of this device.
    let out = d.cmd("show running-config smtp.port");
    assert!(
        out.contains("% CONFIG-ERROR: unknown parameter smtp.port"),
        "{out}"
    );
}

#[test]
fn a_refused_commit_names_each_bad_key_and_stores_nothing() {
    let mut d = router(&[]);
    d.cmd("configure");
    d.cmd("set smtp-port 2525 smtp-timeout 29 scan-to-email on auth-password \"a\\\"b\"");
    let out = d.cmd("commit");
    assert_eq!(
        out,
        "commit\r\n% Commit failed: 3 errors\r\n    smtp-timeout 29: must be a decimal integer from 30 to 300\r\n    scan-to-email on: must be enable or disable\r\n    auth-password ********: the character '\"' is not allowed\r\n"
    );
    // The candidate is dropped with the refusal.
    assert_eq!(d.cmd("show configuration"), "show configuration\r\n");
    d.cmd("end");
    let out = d.cmd("show running-config smtp-port");
    assert!(out.ends_with("smtp-port 25\r\n"), "{out}");
    let out = d.cmd("show running-config scan-to-email");
    assert!(out.ends_with("scan-to-email enable\r\n"), "{out}");
}

#[test]
fn a_scan_job_is_delivered_with_recipient_verdicts_and_its_event() {
    let server = SmtpServer::start();
    let mut d = router(&[]);
    d.configure(&[
        "smtp-server 127.0.0.1",
        &format!("smtp-port {}", server.port),
        "admin-email admin@mfp.test device-email mfp@mfp.test",
    ]);
    d.line("send scan to ok@x.test,nobody@x.test size 2");
    let started = d.expect("Job 1 queued\r\n");
    assert!(started.starts_with("send scan to ok@x.test,nobody@x.test size 2\r\n"));
    d.expect(PROMPT);
    // The event erases the prompt line, then the prompt is drawn again.
    assert_eq!(d.expect_prompt(), "\r%MAIL-5-JOBEND: Job 1 sent\r\n");
    let job = d.cmd("show job 1");
    assert_eq!(
        job,
        "show job 1\r\nJob 1\r\n  State: sent\r\n  Recipient ok@x.test: delivered\r\n  Recipient nobody@x.test: bounced (550 5.1.1 no such user)\r\n"
    );
    let log = server
        .sessions
        .recv_timeout(common::WAIT)
        .expect("an SMTP session");
    assert!(
        log.iter()
            .any(|l| l == "MAIL FROM:<admin@mfp.test>"
                || l.starts_with("MAIL FROM:<admin@mfp.test>")),
        "{log:?}"
    );
    assert!(log.iter().any(|l| l == "."), "{log:?}");
}

#[test]
fn a_failed_job_reports_its_class_in_device_words() {
    let port = closed_port();
    let mut d = router(&[]);
    d.configure(&[
        "smtp-server 127.0.0.1",
        &format!("smtp-port {port}"),
        "admin-email admin@mfp.test device-email mfp@mfp.test",
    ]);
    assert_eq!(
        d.cmd("send scan to a@x.test size 1"),
        "send scan to a@x.test size 1\r\nJob 1 queued\r\n"
    );
    let event = d.expect_prompt();
    assert!(
        event.starts_with("\r%MAIL-3-JOBEND: Job 1 aborted (CONNECT-FAIL): "),
        "{event:?}"
    );
    let job = d.cmd("show job 1");
    assert!(
        job.contains("  State: aborted\r\n  Error: CONNECT-FAIL\r\n  Detail: "),
        "{job}"
    );
    // A disabled scan is refused at once, in the device's words.
    d.configure(&["scan-to-email disable"]);
    let out = d.cmd("send scan to a@x.test size 1");
    assert!(out.contains("% SERVICE-DISABLED: "), "{out}");
    // Alerts in the device's words: with no notification address the job fails.
    assert_eq!(
        d.cmd("send alert toner-empty"),
        "send alert toner-empty\r\nJob 2 queued\r\n"
    );
    d.expect("%MAIL-3-JOBEND: Job 2 aborted (CONFIG-ERROR): ");
}

#[test]
fn factory_reset_and_certificate_import_ask_first() {
    let mut d = router(&[]);
    d.configure(&["smtp-port 2525"]);
    d.line("factory-reset");
    d.expect("Proceed with factory reset? [confirm]");
    d.line("n");
    d.expect("% CONFIG-ERROR: factory reset aborted\r\n");
    d.expect(PROMPT);
    assert!(d
        .cmd("show running-config smtp-port")
        .ends_with("smtp-port 2525\r\n"));
    d.line("factory-reset");
    d.expect("[confirm]");
    d.line("");
    assert_eq!(d.expect_prompt(), "\r\n");
    assert!(d
        .cmd("show running-config smtp-port")
        .ends_with("smtp-port 25\r\n"));

    let pem = ca_pem();
    d.line("certificate import");
    d.expect("Paste the certificate, end with a blank line:\r\n");
    for l in &pem {
        d.line(l);
    }
    d.line("");
    d.expect("Import this certificate? [yes/no]: ");
    d.line("no");
    d.expect("% CONFIG-ERROR: certificate import cancelled\r\n");
    d.expect(PROMPT);
    d.line("certificate import");
    d.expect("blank line:\r\n");
    for l in &pem {
        d.line(l);
    }
    d.line("");
    d.expect("[yes/no]: ");
    d.line("yes");
    // Imported: nothing to say, the prompt.
    assert_eq!(d.expect_prompt(), "yes\r\n");
    // A device user and a notification address (addresses never quoted).
    assert_eq!(
        d.cmd("username o'brien password \"p w\" email ob@x.test"),
        "username o'brien password \"p w\" email ob@x.test\r\n"
    );
    assert_eq!(
        d.cmd("notification add ops@x.test"),
        "notification add ops@x.test\r\n"
    );
}

#[test]
fn the_clock_round_trips_in_cisco_form() {
    let mut d = router(&[]);
    assert_eq!(
        d.cmd("clock set 21:23:25 5 Dec 2026"),
        "clock set 21:23:25 5 Dec 2026\r\n"
    );
    let out = d.cmd("show clock");
    assert!(
        out.starts_with("show clock\r\n*21:23:2") && out.ends_with(" UTC Sat Dec 5 2026\r\n"),
        "{out:?}"
    );
    let out = d.cmd("clock set 2026-12-05T21:23:25Z");
    assert!(
        out.contains("% CONFIG-ERROR: usage: clock set HH:MM:SS"),
        "{out}"
    );
    let out = d.cmd("clock set 10:00:00 30 Feb 2026");
    assert!(out.contains("is not a date"), "{out}");
}

#[test]
fn paging_stops_at_more_and_resumes() {
    let mut d = router(&["--paging", "5"]);
    d.line("show running-config");
    let first = d.expect(" --More-- ");
    // The echo, five lines, the pause.
    assert_eq!(first.lines().count(), 7, "{first:?}");
    // Enter: one more line, after the --More-- is erased.
    d.send("\r");
    let next = d.expect(" --More-- ");
    assert_eq!(next, "\rsmtp-security plain\r\n --More-- ");
    // Space: a page.
    d.send(" ");
    let page = d.expect(" --More-- ");
    assert_eq!(page.lines().count(), 6, "{page:?}");
    // q: the rest is dropped, the prompt comes back.
    d.send("q");
    let end = d.expect_prompt();
    assert_eq!(end, "\r");
    let out = d.cmd("show running-config smtp-port");
    assert!(out.ends_with("smtp-port 25\r\n"), "{out}");
}

#[test]
fn a_crash_at_job_n_reboots_with_factory_settings() {
    let mut d = router(&["--crash-at-job", "2"]);
    d.configure(&["smtp-port 2525"]);
    assert_eq!(d.cmd("send counter"), "send counter\r\nJob 1 queued\r\n");
    d.line("send counter");
    let crash = d.expect("Username: ");
    assert!(
        crash.contains(
            "*** PANIC: watchdog timeout in mail task ***\r\n  task: smtp-tx  job: 2\r\n"
        ),
        "{crash}"
    );
    assert!(
        crash.contains("Rebooting ...\r\nMFP-4000 bootloader v1.2\r\n"),
        "{crash}"
    );
    assert!(!crash.contains("Job 2 queued"), "{crash}");
    d.line("admin");
    d.expect("Password: ");
    d.line("admin123");
    d.expect(PROMPT);
    // Factory settings; the job counter goes on; no second crash.
    assert!(d
        .cmd("show running-config smtp-port")
        .ends_with("smtp-port 25\r\n"));
    assert_eq!(d.cmd("send counter"), "send counter\r\nJob 3 queued\r\n");
    // No notification address after the reset: the job fails at once.
    assert!(d
        .expect_prompt()
        .starts_with("\r%MAIL-3-JOBEND: Job 3 aborted (CONFIG-ERROR): "));
    let out = d.cmd("show job 1");
    assert!(out.contains("% CONFIG-ERROR: no job 1"), "{out}");
}

#[test]
fn a_hang_at_job_n_lasts_until_sigusr1() {
    let mut d = router(&["--hang-at-job", "1"]);
    d.line("send counter");
    d.line("show clock");
    let silent = d.drain_raw(Duration::from_millis(800));
    // Only the echo of the trigger line: nothing after it.
    assert_eq!(
        common::strip_ansi(&silent),
        "send counter\r\n",
        "the console answered while hung"
    );
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as i32, libc::SIGUSR1) }, 0);
    let boot = d.expect("Username: ");
    assert!(boot.contains("System ready.\r\n"), "{boot}");
    d.line("admin");
    d.expect("Password: ");
    d.line("admin123");
    d.expect(PROMPT);
    assert_eq!(d.cmd("send counter"), "send counter\r\nJob 2 queued\r\n");
    // SIGUSR1 at any time is a power cycle.
    unsafe { libc::kill(d.pid() as i32, libc::SIGUSR1) };
    d.expect("MFP-4000 bootloader v1.2\r\n");
    d.login();
}

#[test]
fn the_plain_console_answers_ok_and_no_prompt() {
    let mut d = Dev::start(&[]);
    d.expect("System ready.\r\n");
    d.line("set smtp.port 2525 smtp.auth.user \"a b\"");
    assert_eq!(d.expect("[OK]\r\n"), "[OK]\r\n");
    d.line("show running-config smtp.auth.user");
    assert_eq!(d.expect("[OK]\r\n"), "smtp.auth.user \"a b\"\r\n[OK]\r\n");
    d.line("set smtp.timeout 29 email.scan maybe");
    let refused = d.expect("nothing changed\r\n");
    assert_eq!(
        refused,
        "% config: smtp.timeout 29: must be a decimal integer from 30 to 300; email.scan maybe: must be on or off; nothing changed\r\n"
    );
    d.line("send counter");
    assert_eq!(d.expect("[OK]\r\n"), "Job 1 created\r\n[OK]\r\n");
    assert_eq!(
        d.expect("\r\n"),
        "%MAIL-3-JOBEND: Job 1 failed (config): no notification address is registered\r\n"
    );
    d.line("show job 1");
    assert_eq!(
        d.expect("[OK]\r\n"),
        "Job 1 failed config: no notification address is registered\r\n[OK]\r\n"
    );
}

#[test]
fn the_engine_dies_with_the_front_end() {
    let mut d = router(&[]);
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", d.pid()))
        .expect("the front end's children");
    let engine: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("an engine process");
    d.child.kill().expect("kill");
    d.child.wait().expect("wait");
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{engine}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init.
        if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the engine outlived the front end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
