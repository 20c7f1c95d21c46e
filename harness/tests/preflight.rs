//! Options are checked before any device starts, and a configuration error is said
//! once and never retried (issue 18 item 9): before, `--time-scale 0` or a bad
//! `--plant` started the simulated device three times and ended with "first line is
//! not console: PATH".

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run hil")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Exit status 2, the error said, and no device started or retried.
fn refused(args: &[&str], said: &str) {
    let mut all = vec!["run", "--case", "delivery/base"];
    all.extend_from_slice(args);
    let o = hil(&all);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
    assert!(t.contains(said), "{args:?}: want {said:?} in:\n{t}");
    for never in ["attempt", "console: PATH", "worker 1"] {
        assert!(!t.contains(never), "{args:?}: {never:?} in:\n{t}");
    }
}

#[test]
fn wrong_options_are_said_once_before_any_device_starts() {
    refused(
        &["--time-scale", "0"],
        "--time-scale 0: must be a number above 0",
    );
    refused(
        &["--time-scale=-3"],
        "--time-scale -3: must be a number above 0",
    );
    refused(
        &["--time-scale", "20000"],
        "--time-scale 20000: the simulated device runs from 1 to 10000 times faster",
    );
    refused(
        &["--plant", "nope"],
        "--plant \"nope\": neither a SPEC variant (plaintext-after-starttls-failure, \
         send-without-auth, cn-only, soft-fail-revocation) nor a quirk (rcpt-530-rejected, ",
    );
    refused(
        &["--device", "tcp:127.0.0.1:9", "--plant", "cn-only"],
        "--plant cn-only: only a simulated device",
    );
    // A profile whose sim_args the simulated device refuses: named.
    let profile = std::env::temp_dir().join(format!("hil-preflight-{}.toml", std::process::id()));
    let sim = std::fs::read_to_string(root().join("fixtures/devices/sim.toml")).expect("sim.toml");
    let bad = if sim.contains("sim_args = []") {
        sim.replacen(
            "sim_args = []",
            "sim_args = [\"--resolve\", \"nonsense\"]",
            1,
        )
    } else {
        format!("sim_args = [\"--resolve\", \"nonsense\"]\n{sim}")
    };
    std::fs::write(&profile, bad).expect("profile");
    let p = profile.to_string_lossy().to_string();
    refused(
        &["--profile", &p],
        "starts the simulated device with options it refuses: --resolve \"nonsense\": expected NAME=ADDR",
    );
    let _ = std::fs::remove_file(&profile);
}

#[test]
fn a_device_program_that_exits_at_start_is_not_started_again() {
    let script = std::env::temp_dir().join(format!("hil-preflight-{}.sh", std::process::id()));
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"mydev: --console: no such option\" >&2\nexit 3\n",
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dev = format!("sim:{}", script.display());
    let o = hil(&["run", "--device", &dev, "--case", "delivery/base"]);
    let _ = std::fs::remove_file(&script);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(
        t.contains("exited with status 3 before it printed `console: PATH`; it said: mydev: --console: no such option"),
        "{t}"
    );
    assert!(!t.contains("attempt 2"), "retried: {t}");
}
