//! The parallel runner through `hil run`, with real simulated devices: parallel and
//! serial runs agree, shards split the case list, `--resume` skips what is recorded,
//! Ctrl-C stops a run with whole records, and a simulated device killed mid-case is
//! a harness fault: retried, and recorded as a harness error when it keeps failing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use hil::record::{self, Record, Verdict};

fn hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .output()
        .expect("run hil")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A fresh folder for one test's report.
fn report_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hil-pool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn results(dir: &Path) -> Vec<Record> {
    record::read(&dir.join("results.jsonl")).expect("results.jsonl")
}

fn list(args: &[&str]) -> Vec<String> {
    let mut a = vec!["run", "--matrix", "classic", "--list"];
    a.extend_from_slice(args);
    let o = hil(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(&o).lines().map(str::to_string).collect()
}

/// The ids of the `pass` lines of a run's output.
fn passed_ids(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|l| l.split_once("] pass "))
        .filter_map(|(_, rest)| rest.split(' ').next())
        .map(str::to_string)
        .collect()
}

fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

/// Each id once, in a set.
fn unique_ids(records: &[Record]) -> BTreeSet<String> {
    let ids: BTreeSet<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), records.len(), "an id recorded twice");
    ids
}

/// A line of a running `hil`: from its standard output (the product: case lines, the
/// summary) or its standard error (log events).
enum Line {
    Out(String),
    Err(String),
}

/// `hil -v run` running, its standard output and standard error read line by line
/// as they come (`-v`: each worker's start line is a debug event on standard error).
struct Live {
    child: Child,
    rx: mpsc::Receiver<Line>,
    /// Standard output's lines.
    lines: Vec<String>,
    /// Standard error's lines.
    log: Vec<String>,
}

impl Live {
    fn start(args: &[&str]) -> Live {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hil"))
            .arg("-v")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hil run");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let err_tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(Line::Out(l)).is_err() {
                    return;
                }
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if err_tx.send(Line::Err(l)).is_err() {
                    return;
                }
            }
        });
        Live {
            child,
            rx,
            lines: Vec::new(),
            log: Vec::new(),
        }
    }

    /// Keeps a line where it came from; answers its text.
    fn keep(&mut self, l: Line) -> String {
        match l {
            Line::Out(l) => {
                self.lines.push(l.clone());
                l
            }
            Line::Err(l) => {
                self.log.push(l.clone());
                l
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads lines (of either stream) until one satisfies `want`.
    fn wait_for(&mut self, want: impl Fn(&str) -> bool, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => {
                    let l = self.keep(l);
                    if want(&l) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no such line within {within:?}: {:#?}\n{:#?}",
                    self.lines, self.log
                ),
            }
        }
    }

    /// Waits for the exit (killing the process after `within`) and reads the rest.
    fn finish(mut self, within: Duration) -> (ExitStatus, String, Duration) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if t0.elapsed() > within {
                let _ = self.child.kill();
                panic!("hil run still running after {within:?}: {:#?}", self.lines);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = t0.elapsed();
        while let Ok(l) = self.rx.recv_timeout(Duration::from_secs(2)) {
            self.keep(l);
        }
        (status, self.lines.join("\n"), took)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `hil sim` processes whose parent is `parent` (from /proc).
fn sims_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: the comm may hold spaces, so cut after its `)`.
        let mut rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split(' ');
        let (state, ppid) = (rest.nth(1), rest.next());
        if state == Some("Z") || ppid.and_then(|p| p.parse::<i32>().ok()) != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.split(|b| *b == 0).any(|a| a == b"sim") {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.rsplit_once(')').is_some_and(|(_, r)| r.starts_with(" Z")))
        .unwrap_or(false)
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started (or found as its child's child).
    let r = unsafe { libc::kill(pid, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

#[test]
fn two_jobs_pass_the_same_cases_as_one() {
    let want: BTreeSet<String> = list(&["--filter", "steps/"]).into_iter().collect();
    assert!(want.len() >= 10, "{want:?}");
    let mut took = Vec::new();
    let mut seen = Vec::new();
    for jobs in ["1", "2"] {
        let dir = report_dir(&format!("jobs{jobs}"));
        let d = dir.display().to_string();
        let t0 = Instant::now();
        let o = hil(&[
            "run", "--matrix", "classic", "--filter", "steps/", "--jobs", jobs, "--report", &d,
        ]);
        took.push(t0.elapsed());
        let out = stdout(&o);
        assert!(o.status.success(), "--jobs {jobs}: {out}");
        assert_eq!(last_line(&out), format!("{} passed, 0 failed", want.len()));
        assert!(out.contains(&format!("{jobs} worker")), "{out}");
        let records = results(&dir);
        assert_eq!(unique_ids(&records), want, "--jobs {jobs}");
        assert!(records.iter().all(|r| r.verdict == Verdict::Pass));
        seen.push(passed_ids(&out));
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(seen[0], want);
    assert_eq!(seen[0], seen[1]);
    println!("steps/: --jobs 1 {:?}, --jobs 2 {:?}", took[0], took[1]);
}

#[test]
fn the_shards_hold_every_case_once() {
    let all = list(&[]);
    let mut joined = Vec::new();
    for k in 1..=3 {
        let shard = list(&["--shard", &format!("{k}/3")]);
        let want: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == k - 1)
            .map(|(_, c)| c.clone())
            .collect();
        assert_eq!(shard, want, "shard {k}/3");
        joined.extend(shard);
    }
    joined.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(joined, sorted);

    // A real run of one shard (filtered) runs exactly the listed cases.
    let want: BTreeSet<String> = list(&["--shard", "2/3", "--filter", "steps/"])
        .into_iter()
        .collect();
    let dir = report_dir("shard");
    let d = dir.display().to_string();
    let o = hil(&[
        "run", "--matrix", "classic", "--shard", "2/3", "--filter", "steps/", "--jobs", "2",
        "--report", &d,
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert_eq!(unique_ids(&results(&dir)), want);
    let _ = std::fs::remove_dir_all(&dir);

    let o = hil(&["run", "--matrix", "classic", "--shard", "3/2", "--list"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--shard 3/2: K must be between 1 and N"),
        "{err}"
    );
}

#[test]
fn resume_skips_the_recorded_cases() {
    let dir = report_dir("resume");
    let d = dir.display().to_string();
    let first = list(&["--filter", "steps/ehlo"]);
    let all: BTreeSet<String> = list(&["--filter", "steps/"]).into_iter().collect();
    assert!(!first.is_empty() && first.len() < all.len());

    let o = hil(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "steps/ehlo",
        "--report",
        &d,
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert_eq!(results(&dir).len(), first.len());

    let o = hil(&[
        "run", "--matrix", "classic", "--filter", "steps/", "--resume", "--report", &d,
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "resumed: {} cases already recorded, {} to run",
            first.len(),
            all.len() - first.len()
        )),
        "{out}"
    );
    // Only the new ones ran; the last line counts the whole run.
    let ran = passed_ids(&out);
    assert_eq!(ran.len(), all.len() - first.len(), "{out}");
    assert!(first.iter().all(|id| !ran.contains(id)), "{out}");
    assert_eq!(last_line(&out), format!("{} passed, 0 failed", all.len()));
    assert_eq!(unique_ids(&results(&dir)), all);

    // Without --resume the file starts afresh.
    let o = hil(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "steps/ehlo",
        "--report",
        &d,
    ]);
    assert!(o.status.success());
    assert_eq!(results(&dir).len(), first.len());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_stops_the_run_with_whole_records() {
    let total = list(&[]).len();
    let dir = report_dir("ctrl-c");
    let d = dir.display().to_string();
    let mut run = Live::start(&["run", "--matrix", "classic", "--jobs", "2", "--report", &d]);
    run.wait_for(|l| l.starts_with('['), Duration::from_secs(60));
    signal(run.pid(), libc::SIGINT);
    let (status, out, took) = run.finish(Duration::from_secs(40));
    assert!(!status.success(), "{out}");
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(took < Duration::from_secs(10), "took {took:?} to stop");
    assert!(out.contains("hil: interrupted"), "{out}");
    let records = results(&dir);
    unique_ids(&records);
    assert!(!records.is_empty() && records.len() < total, "{out}");
    let last = last_line(&out);
    assert!(
        last.starts_with(&format!("{} passed, 0 failed", records.len()))
            && last.ends_with(&format!(", {} not run", total - records.len())),
        "{last}"
    );
    // The report of what ran is written too.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(
        html.contains(&records[0].id),
        "the report shows the cases that ran"
    );
    assert!(dir.join("junit.xml").exists());
    println!(
        "stopped after {} of {total} cases, {took:?} after the SIGINT",
        records.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_ends_the_devices() {
    // Hang cases at time scale 2 take 30 s each: the first SIGINT would wait for them.
    let dir = report_dir("ctrl-c-twice");
    let d = dir.display().to_string();
    let mut run = Live::start(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "timeout/",
        "--time-scale",
        "2",
        "--jobs",
        "2",
        "--report",
        &d,
    ]);
    // Both workers have a device (their lines come in either order).
    for _ in 0..2 {
        run.wait_for(|l| l.contains("hil: worker "), Duration::from_secs(60));
    }
    let sims = sims_of(run.pid());
    assert_eq!(sims.len(), 2, "{sims:?}");
    signal(run.pid(), libc::SIGINT);
    run.wait_for(|l| l.contains("hil: interrupted"), Duration::from_secs(5));
    signal(run.pid(), libc::SIGINT);
    let (status, out, took) = run.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{out}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    std::thread::sleep(Duration::from_millis(200));
    for pid in sims {
        assert!(!alive(pid), "simulated device {pid} outlived hil");
    }
    let records = results(&dir);
    assert!(records.is_empty(), "{out}\n{records:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_device_killed_mid_case_is_retried_on_a_fresh_one() {
    let dir = report_dir("killed-once");
    let d = dir.display().to_string();
    // The server never greets: at time scale 20 the case takes 1.5 s of wall time.
    let mut run = Live::start(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "timeout/hang-at-greeting",
        "--jobs",
        "1",
        "--report",
        &d,
    ]);
    run.wait_for(|l| l.contains("hil: worker 1:"), Duration::from_secs(60));
    let sims = sims_of(run.pid());
    assert_eq!(sims.len(), 1, "{sims:?}");
    std::thread::sleep(Duration::from_millis(400));
    signal(sims[0], libc::SIGKILL);
    let (status, out, _) = run.finish(Duration::from_secs(60));
    assert!(status.success(), "{out}");
    assert!(
        out.contains("retry 1/2 of timeout/hang-at-greeting: harness error"),
        "{out}"
    );
    assert_eq!(last_line(&out), "1 passed, 0 failed");
    let records = results(&dir);
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].verdict, records[0].attempts),
        (Verdict::Pass, 2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_device_that_keeps_dying_is_a_harness_error_counted_apart() {
    let dir = report_dir("killed-always");
    let d = dir.display().to_string();
    let mut run = Live::start(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "timeout/hang-at-greeting",
        "--jobs",
        "1",
        "--report",
        &d,
    ]);
    run.wait_for(|l| l.contains("hil: worker 1:"), Duration::from_secs(60));
    // From now on every simulated device of this run dies 400 ms after it appears.
    let parent = run.pid();
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut seen: Vec<(i32, Instant)> = Vec::new();
            let mut killed = 0;
            while !done.load(Ordering::SeqCst) {
                for pid in sims_of(parent) {
                    match seen.iter().find(|(p, _)| *p == pid) {
                        None => seen.push((pid, Instant::now())),
                        Some((_, t)) if t.elapsed() >= Duration::from_millis(400) => {
                            // SAFETY: kill(2) on the test's own grandchild.
                            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                                killed += 1;
                            }
                        }
                        Some(_) => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            killed
        })
    };
    let (status, out, _) = run.finish(Duration::from_secs(90));
    done.store(true, Ordering::SeqCst);
    let killed = killer.join().expect("killer");
    assert!(killed >= 3, "killed {killed}: {out}");
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(
        out.contains("retry 2/2 of timeout/hang-at-greeting"),
        "{out}"
    );
    assert!(out.contains("] ERROR timeout/hang-at-greeting"), "{out}");
    assert_eq!(last_line(&out), "0 passed, 0 failed, 1 harness errors");
    let records = results(&dir);
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!((r.verdict, r.attempts), (Verdict::HarnessError, 3));
    assert!(r.harness_error.is_some(), "{r:?}");

    // --resume runs the harness error again (nothing kills the device now) and the
    // file ends with the case once.
    let o = hil(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "timeout/hang-at-greeting",
        "--resume",
        "--report",
        &d,
    ]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("resumed: 0 cases already recorded, 1 to run"),
        "{out}"
    );
    let records = results(&dir);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].verdict, Verdict::Pass);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_port_in_use_is_named_and_nothing_is_recorded() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = report_dir("port-in-use");
    let d = dir.display().to_string();
    let o = hil(&[
        "run",
        "--matrix",
        "classic",
        "--filter",
        "steps/",
        "--smtp-port",
        &port,
        "--report",
        &d,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{}{err}", stdout(&o));
    assert!(
        err.contains("cannot start the device and fake servers"),
        "{err}"
    );
    assert!(!dir.join("results.jsonl").exists());
    let o = hil(&[
        "run",
        "--matrix",
        "classic",
        "--smtp-port",
        &port,
        "--jobs",
        "2",
        "--list",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--jobs 2 with --smtp-port"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn case_runs_one_case_verbosely_and_suggests_ids() {
    let o = hil(&["run", "--matrix", "classic", "--case", "steps/ehlo-421"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("[1/1] pass steps/ehlo-421"), "{out}");
    assert!(out.contains("server connection 1"), "{out}");
    assert!(out.contains("console:"), "{out}");
    assert_eq!(last_line(&out), "1 passed, 0 failed");

    let o = hil(&["run", "--matrix", "classic", "--case", "steps/ehlo"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--case steps/ehlo: no case has this id; the closest: steps/ehlo-421"),
        "{err}"
    );
}
