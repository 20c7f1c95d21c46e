//! Comparing what was observed (the device's answers, the server's record) with what
//! the oracle expects. Each mismatch is one sentence; no mismatch is a pass.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

use crate::device::{JobEnd, JobReport, TriggerAnswer};
use crate::oracle::{Delivery, Expected};
use crate::smtp::Received;
use crate::smtp_server::Observations;

/// Everything one case saw.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub trigger: TriggerAnswer,
    pub end: Option<JobEnd>,
    pub report: Option<JobReport>,
    pub server: Observations,
    /// Wall time from the trigger to the job's end event.
    pub elapsed_ms: u64,
}

/// What the comparison needs to know about the device and the run.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    /// The device's time runs this many times faster than wall time (1 on hardware).
    pub time_scale: f64,
    /// The device's scan attachment follows the simulator's rule (byte `i` is
    /// `i mod 251`), so it can be checked byte for byte.
    pub synthetic_scan: bool,
}

/// The scan attachment a device sends for `size_kb` KB: byte `i` is `i mod 251`
/// (docs/device-mail.md).
pub fn expected_scan_bytes(size_kb: u32) -> Vec<u8> {
    (0..size_kb as usize * 1024)
        .map(|i| (i % 251) as u8)
        .collect()
}

/// Lists every way `obs` differs from `exp`.
pub fn compare(exp: &Expected, obs: &Observed, judging: &Judging) -> Vec<String> {
    let mut bad = Vec::new();
    let conns = obs.server.connections.len();
    match exp {
        Expected::Refused { class } => {
            match &obs.trigger {
                TriggerAnswer::Refused { class: c, .. } if c == class => {}
                other => bad.push(format!(
                    "expected the trigger refused with {class}, got {other:?}"
                )),
            }
            if conns != 0 {
                bad.push(format!("expected no connection, saw {conns}"));
            }
        }
        Expected::Failed {
            class,
            connects,
            stored,
            detail,
            wait_ms,
        } => {
            match (&obs.trigger, &obs.end) {
                (
                    TriggerAnswer::Job(_),
                    Some(JobEnd::Failed {
                        class: c,
                        detail: d,
                    }),
                ) if c == class => {
                    if let Some(want) = detail {
                        if !d.contains(want.as_str()) {
                            bad.push(format!(
                                "the error detail {d:?} does not carry the server's {want}"
                            ));
                        }
                    }
                }
                (t, e) => bad.push(format!(
                    "expected the job to fail with {class}, got trigger {t:?} and end {e:?}"
                )),
            }
            if let Some(w) = wait_ms {
                // The device must wait its whole timeout, and not much longer.
                let want = *w as f64 / judging.time_scale.max(1e-6);
                let got = obs.elapsed_ms as f64;
                if got < want * 0.95 - 20.0 || got > want * 1.5 + 3000.0 {
                    bad.push(format!(
                        "the device gave up after {got:.0} ms; its timeout is {want:.0} ms"
                    ));
                }
            }
            if !connects && conns != 0 {
                bad.push(format!("expected no connection, saw {conns}"));
            }
            if *connects && obs.server.connections.is_empty() && !matches!(class, &"connect") {
                bad.push("expected a connection to the server, saw none".into());
            }
            let n = obs.server.messages.len();
            if *stored && n != 1 {
                bad.push(format!(
                    "expected the server to hold 1 message, it holds {n}"
                ));
            }
            if !*stored && n != 0 {
                bad.push(format!("expected no message at the server, it holds {n}"));
            }
        }
        Expected::Delivered(d) => delivered(d, obs, judging, &mut bad),
    }
    bad
}

fn delivered(d: &Delivery, obs: &Observed, judging: &Judging, bad: &mut Vec<String>) {
    match (&obs.trigger, &obs.end) {
        (TriggerAnswer::Job(_), Some(JobEnd::Done)) => {}
        (t, e) => bad.push(format!(
            "expected the job done, got trigger {t:?} and end {e:?}"
        )),
    }
    if obs.server.connections.len() != 1 {
        bad.push(format!(
            "expected exactly 1 connection, saw {}",
            obs.server.connections.len()
        ));
    }
    let [m] = obs.server.messages.as_slice() else {
        bad.push(format!(
            "expected exactly 1 message at the server, it holds {}",
            obs.server.messages.len()
        ));
        return;
    };
    envelope(d, m, bad);
    content(d, m, judging, bad);
    if let Some(r) = &obs.report {
        for addr in &d.refused {
            if !r
                .recipients
                .iter()
                .any(|v| &v.address == addr && !v.accepted)
            {
                bad.push(format!("the device did not report {addr} as rejected"));
            }
        }
        for addr in &d.accepted {
            if r.recipients
                .iter()
                .any(|v| &v.address == addr && !v.accepted)
            {
                bad.push(format!(
                    "the device reported {addr} rejected, the server accepted it"
                ));
            }
        }
    } else if !d.refused.is_empty() {
        bad.push("no job report to check the refused recipients in".into());
    }
}

fn envelope(d: &Delivery, m: &Received, bad: &mut Vec<String>) {
    if m.mail_from != d.mail_from {
        bad.push(format!(
            "MAIL FROM <{}>, expected <{}>",
            m.mail_from, d.mail_from
        ));
    }
    if m.recipients != d.accepted {
        bad.push(format!(
            "RCPT TO {:?}, expected {:?}",
            m.recipients, d.accepted
        ));
    }
    if m.greeted_with != d.greeted_with {
        bad.push(format!(
            "greeted with {}, expected {}",
            m.greeted_with, d.greeted_with
        ));
    }
    match (d.size_param, m.size_param) {
        (true, Some(n)) if n != m.data.len() => bad.push(format!(
            "SIZE={n} but the message has {} bytes",
            m.data.len()
        )),
        (true, None) => bad.push("the server offered SIZE, MAIL FROM has no SIZE=".into()),
        (false, Some(n)) => bad.push(format!(
            "SIZE={n} sent though the server did not offer SIZE"
        )),
        _ => {}
    }
    if m.bare_lf != 0 {
        bad.push(format!("{} bare LF in DATA", m.bare_lf));
    }
    if m.long_lines != 0 {
        bad.push(format!("{} lines over 998 octets in DATA", m.long_lines));
    }
}

fn content(d: &Delivery, m: &Received, judging: &Judging, bad: &mut Vec<String>) {
    let Some(msg) = MessageParser::default().parse(&m.data) else {
        bad.push("the message does not parse as MIME".into());
        return;
    };
    let from = msg.from().and_then(|a| a.first()).and_then(|a| a.address());
    if from != Some(d.header_from.as_str()) {
        bad.push(format!(
            "header From {from:?}, expected {:?}",
            d.header_from
        ));
    }
    let to: Vec<&str> = msg
        .to()
        .map(|a| a.iter().filter_map(|x| x.address()).collect())
        .unwrap_or_default();
    if to != d.to.iter().map(String::as_str).collect::<Vec<_>>() {
        bad.push(format!("header To {to:?}, expected {:?}", d.to));
    }
    // RFC 5322 requires Date (and From, checked above).
    if msg.date().is_none() {
        bad.push("no Date header".into());
    }
    let attachments: Vec<_> = msg.attachments().collect();
    match d.attachment_kb {
        Some(kb) => {
            let want = expected_scan_bytes(kb);
            match attachments.as_slice() {
                [a] if !judging.synthetic_scan => {
                    // A real scan's content is unknown: it must be there.
                    if a.contents().is_empty() && kb > 0 {
                        bad.push("the scan attachment is empty".into());
                    }
                }
                [a] => {
                    if a.contents() != want.as_slice() {
                        let got = a.contents();
                        let first = got.iter().zip(&want).position(|(x, y)| x != y);
                        bad.push(format!(
                            "attachment differs: {} bytes, expected {}; first difference at {first:?}",
                            got.len(),
                            want.len()
                        ));
                    }
                    if a.attachment_name().is_none() {
                        bad.push("the attachment has no file name".into());
                    }
                }
                other => bad.push(format!("expected 1 attachment, found {}", other.len())),
            }
        }
        None => {
            if !attachments.is_empty() {
                bad.push(format!(
                    "expected no attachment, found {}",
                    attachments.len()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_after(detail: &str, elapsed_ms: u64) -> Observed {
        Observed {
            trigger: TriggerAnswer::Job(1),
            end: Some(JobEnd::Failed {
                class: "rejected".into(),
                detail: detail.into(),
            }),
            report: None,
            server: Observations::default(),
            elapsed_ms,
        }
    }

    const JUDGING: Judging = Judging {
        time_scale: 10.0,
        synthetic_scan: true,
    };

    fn expected(detail: Option<&str>, wait_ms: Option<u64>) -> Expected {
        Expected::Failed {
            class: "rejected",
            connects: false,
            stored: false,
            detail: detail.map(str::to_string),
            wait_ms,
        }
    }

    #[test]
    fn the_servers_code_must_be_in_the_detail() {
        let exp = expected(Some("451"), None);
        assert!(compare(
            &exp,
            &failed_after("MAIL FROM 451 4.3.0 try later", 5),
            &JUDGING
        )
        .is_empty());
        let bad = compare(&exp, &failed_after("MAIL FROM refused", 5), &JUDGING);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains("451"));
    }

    #[test]
    fn a_timeout_must_take_the_timeout() {
        // 30 s of device time at scale 10 is 3 s of wall time.
        let exp = expected(None, Some(30_000));
        assert!(compare(&exp, &failed_after("x", 3_050), &JUDGING).is_empty());
        assert_eq!(compare(&exp, &failed_after("x", 1_000), &JUDGING).len(), 1);
        assert_eq!(compare(&exp, &failed_after("x", 30_000), &JUDGING).len(), 1);
    }
}
