//! `hil run --capture`: a failing case leaves a pcapng of its connections, captured on
//! loopback (an `AF_PACKET` socket: this test needs root or CAP_NET_RAW, as in CI),
//! named by its record, the JUnit file and the HTML report; a passing case leaves none.

use std::path::{Path, PathBuf};
use std::process::Command;

use hil::pcapng;
use hil::record::{self, Verdict};

fn report_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hil-capture-{}-{name}", std::process::id()))
}

/// Runs `hil run ARGS --report DIR`; fails the test, saying why, when the capture
/// socket cannot be opened.
fn hil_run(args: &[&str], dir: &Path) -> (i32, String, String) {
    let _ = std::fs::remove_dir_all(dir);
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["run"])
        .args(args)
        .arg("--report")
        .arg(dir)
        .output()
        .expect("run hil");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("CAP_NET_RAW"),
        "this test needs root or the CAP_NET_RAW capability (a raw packet socket on lo): \
         run it as root, or give the test binary cap_net_raw; hil said:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The TCP ports and payload of a raw IPv4/IPv6 packet.
fn tcp(p: &[u8]) -> Option<(u16, u16, &[u8])> {
    let (src, dst) = hil::capture::tcp_ports(p)?;
    let ip_len = match p[0] >> 4 {
        4 => usize::from(p[0] & 0xf) * 4,
        _ => 40,
    };
    let data_off = usize::from(p.get(ip_len + 12)? >> 4) * 4;
    Some((src, dst, p.get(ip_len + data_off..)?))
}

#[test]
fn a_failing_case_leaves_a_pcapng_of_its_connections_and_a_passing_one_none() {
    let dir = report_dir("starttls");
    let (code, stdout, stderr) = hil_run(
        &[
            "--capture",
            "--plant",
            "plaintext-after-starttls-failure",
            "--section",
            "tls",
            "--filter",
            "server.listener=",
        ],
        &dir,
    );
    assert_eq!(code, 1, "the planted bug fails cases:\n{stdout}\n{stderr}");
    let records = record::read(&dir.join("results.jsonl")).unwrap();
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .collect();
    assert!(!failed.is_empty(), "{stdout}");
    assert!(
        records.iter().any(|r| r.verdict == Verdict::Pass),
        "{stdout}"
    );
    for r in &records {
        assert_eq!(
            r.evidence.is_some(),
            r.verdict == Verdict::Fail,
            "{}: {:?}",
            r.id,
            r.evidence
        );
    }
    let files: Vec<_> = std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), failed.len(), "one capture per failed case");

    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let plain = failed
        .iter()
        .find(|r| r.id == "tls/smtp.tls=starttls,server.listener=plain")
        .expect("the plaintext fallback fails");
    let rel = plain.evidence.as_deref().unwrap();
    assert!(
        rel.starts_with("evidence/") && rel.ends_with(".pcapng"),
        "{rel}"
    );
    assert!(junit.contains(&format!("[[ATTACHMENT|{rel}]]")), "{junit}");
    assert!(
        html.contains(&format!("href=\"{rel}\"")),
        "report.html links it"
    );

    let file = pcapng::File::parse(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
    assert_eq!(file.interface, "lo");
    // The case's SMTP listener is named in a comment, with how to decode it.
    let port: u16 = file
        .comments
        .iter()
        .find_map(|c| {
            let rest = c.strip_prefix("port ")?;
            let (p, what) = rest.split_once(": ")?;
            what.starts_with("SMTP plain").then(|| p.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no SMTP plain port among {:?}", file.comments));
    let segs: Vec<_> = file.packets.iter().filter_map(|p| tcp(&p.data)).collect();
    assert_eq!(segs.len(), file.packets.len(), "only TCP segments are kept");
    assert!(
        segs.iter().all(|(s, d, _)| *s == port || *d == port),
        "every segment is from or to the case's listener {port}"
    );
    let to_server: Vec<u8> = segs
        .iter()
        .filter(|(_, d, _)| *d == port)
        .flat_map(|(_, _, b)| b.to_vec())
        .collect();
    let text = String::from_utf8_lossy(&to_server);
    assert!(text.contains("EHLO"), "{text}");
    assert!(text.contains("MAIL FROM:<"), "{text}");
    // A plain conversation: no TLS secrets.
    assert!(file.keylog.is_empty());
    // The capture changed nothing of the records but the evidence field.
    assert!(!std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .contains("CLIENT_RANDOM"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tls_case_carries_its_key_log() {
    let dir = report_dir("smtps");
    let (code, stdout, stderr) = hil_run(
        &[
            "--capture",
            "--plant",
            "soft-fail-revocation",
            "--section",
            "tls",
            "--filter",
            "smtp.tls=smtps,server.cert=no_revocation_info,smtp.verify.revocation=on",
        ],
        &dir,
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let records = record::read(&dir.join("results.jsonl")).unwrap();
    let r = records
        .iter()
        .find(|r| r.verdict == Verdict::Fail)
        .unwrap_or_else(|| panic!("{stdout}"));
    let rel = r.evidence.as_deref().unwrap();
    let file = pcapng::File::parse(&std::fs::read(dir.join(rel)).unwrap()).unwrap();
    assert!(!file.packets.is_empty());
    // TLS 1.3 logs traffic secrets, TLS 1.2 a CLIENT_RANDOM line.
    assert!(
        file.keylog
            .iter()
            .any(|l| l.starts_with("CLIENT_RANDOM ") || l.starts_with("SERVER_TRAFFIC_SECRET_0 ")),
        "{:?}",
        file.keylog
    );
    for l in &file.keylog {
        let parts: Vec<_> = l.split(' ').collect();
        assert_eq!(parts.len(), 3, "{l}");
        assert!(parts[1..]
            .iter()
            .all(|h| h.chars().all(|c| c.is_ascii_hexdigit())));
    }
    // The keys are in the capture only.
    for name in ["results.jsonl", "junit.xml", "report.html", "run.json"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        for l in &file.keylog {
            let secret = l.rsplit(' ').next().unwrap();
            assert!(!text.contains(secret), "{name} holds a TLS secret");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_the_privilege_the_run_fails_at_start_naming_it() {
    // Only where the capability can be dropped for the child (root with setpriv).
    let setpriv = Path::new("/usr/bin/setpriv");
    if !setpriv.exists() {
        panic!("this test needs /usr/bin/setpriv (util-linux) to drop CAP_NET_RAW for hil");
    }
    let dir = report_dir("noprivilege");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(setpriv)
        .args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw"])
        .arg(env!("CARGO_BIN_EXE_hil"))
        .args([
            "run",
            "--capture",
            "--section",
            "tls",
            "--filter",
            "server.listener=tls",
        ])
        .arg("--report")
        .arg(&dir)
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("interface lo") && stderr.contains("CAP_NET_RAW"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing was started or written");
}
