//! No leftovers (issue 18 item 4): `kill -9` of `hil run` leaves none of its
//! simulated devices running (they die with it: the parent-death signal), as Ctrl-C
//! and SIGTERM already did.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if stat(p).is_some_and(|(_, ppid)| ppid == pid) {
            out.push(p);
        }
    }
    out
}

/// A process's state letter and parent, from /proc/PID/stat (the fields after the
/// command name, which may hold spaces and parentheses).
fn stat(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Running (a zombie waiting for init to reap it has ended).
fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X'))
}

#[test]
fn kill_9_of_hil_run_leaves_no_simulated_device_running() {
    let report = std::env::temp_dir().join(format!("hil-leftovers-{}", std::process::id()));
    let mut hil = Command::new(env!("CARGO_BIN_EXE_hil"))
        .current_dir(root())
        .args(["run", "--section", "delivery", "--jobs", "4", "--report"])
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hil run");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sims = Vec::new();
    while Instant::now() < deadline {
        sims = children_of(hil.id());
        if sims.len() >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sims.len() >= 4,
        "hil run started {} simulated devices",
        sims.len()
    );
    // SIGKILL: hil gets no chance to clean up.
    hil.kill().expect("kill -9");
    let _ = hil.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = sims.clone();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|&p| running(p));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Do not leave them to the next test if the check fails.
    for &p in &left {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    let _ = std::fs::remove_dir_all(&report);
    assert!(
        left.is_empty(),
        "{} of {} simulated devices still run 10 s after kill -9 of hil: {left:?}",
        left.len(),
        sims.len()
    );
}
