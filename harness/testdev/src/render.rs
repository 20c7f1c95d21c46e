//! How the console's answers look: prompts, the status word, error lines, refusals,
//! job lines and event lines, in the device's words and with or without colours,
//! several lines or one, as the traits say. Pure formatting; the session decides
//! when each is printed.

use mfp_sim::settings;

use crate::quoting::{self, Form};
use crate::reference::{JobEnd, JobReport};
use crate::traits::Traits;
use crate::words::Words;

/// The exec prompt and the configuration prompt (printed without a newline).
pub const EXEC_PROMPT: &str = "mfp-4000# ";
pub const CONFIG_PROMPT: &str = "mfp-4000(config)# ";
/// The status line of a command that succeeded (without `--prompt-only`).
pub const OK: &str = "[OK]";
/// What a password or token reads as.
pub const MASK: &str = "********";
/// SGR sequences of `--ansi`.
pub const GREEN: &str = "\x1b[1;32m";
pub const RED: &str = "\x1b[1;31m";
pub const YELLOW: &str = "\x1b[1;33m";
pub const RESET: &str = "\x1b[0m";
/// Erase the line the cursor is on (`--ansi` redraws).
pub const ERASE_LINE: &str = "\r\x1b[K";

/// One bad parameter of a refused change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// The parameter as the device names it (as typed when unknown).
    pub name: String,
    /// The value as typed.
    pub value: String,
    /// A password or token: its value is never shown.
    pub secret: bool,
    pub rule: String,
}

/// The look of the answers.
#[derive(Debug, Clone)]
pub struct Render {
    pub words: Words,
    ansi: bool,
    multiline: bool,
    job_status: bool,
}

impl Render {
    pub fn new(t: &Traits) -> Render {
        Render {
            words: Words::new(t.words),
            ansi: t.ansi,
            multiline: t.multiline,
            job_status: t.job_status,
        }
    }

    fn paint(&self, colour: &str, s: &str) -> String {
        if self.ansi {
            format!("{colour}{s}{RESET}")
        } else {
            s.to_string()
        }
    }

    /// The prompt of exec or configuration mode, coloured with `--ansi`.
    pub fn prompt(&self, config: bool) -> String {
        self.paint(GREEN, if config { CONFIG_PROMPT } else { EXEC_PROMPT })
    }

    /// An error line as printed (red with `--ansi`).
    pub fn red(&self, s: &str) -> String {
        self.paint(RED, s)
    }

    /// An event line as printed (yellow with `--ansi`).
    pub fn yellow(&self, s: &str) -> String {
        self.paint(YELLOW, s)
    }

    /// `% CLASS: detail` (the detail as it is: the console's own, or the engine's
    /// already put in the device's words).
    pub fn error(&self, class: &str, detail: &str) -> String {
        format!("% {}: {detail}", self.words.class_out(class))
    }

    /// A value as shown: a secret masked, else in the device's word, double-quoted
    /// when needed.
    pub fn value(&self, spec_key: &str, value: &str) -> String {
        let secret = settings::lookup(spec_key).is_some_and(|d| d.secret);
        if secret && !value.is_empty() {
            return MASK.to_string();
        }
        quoting::write(Form::Double, &self.words.value_out(spec_key, value))
    }

    /// A `show running-config` line: `PARAMETER VALUE`.
    pub fn value_line(&self, spec_key: &str, value: &str) -> String {
        format!(
            "{} {}",
            self.words.key_out(spec_key),
            self.value(spec_key, value)
        )
    }

    fn bad(&self, b: &Bad) -> String {
        let v = if b.secret {
            MASK.to_string()
        } else {
            quoting::write(Form::Double, &b.value)
        };
        format!("{} {v}: {}", b.name, b.rule)
    }

    /// A refused change (`commit` or an immediate `set`): each bad parameter named
    /// with its value and rule; with `--multiline` a status line and one indented
    /// line per parameter.
    pub fn refusal(&self, bad: &[Bad], commit: bool) -> Vec<String> {
        if self.multiline {
            let n = bad.len();
            let what = if commit { "Commit" } else { "Set" };
            let errors = if n == 1 { "error" } else { "errors" };
            let mut lines = vec![format!("% {what} failed: {n} {errors}")];
            lines.extend(bad.iter().map(|b| format!("    {}", self.bad(b))));
            lines
        } else {
            let parts: Vec<String> = bad.iter().map(|b| self.bad(b)).collect();
            vec![self.error("config", &format!("{}; nothing changed", parts.join("; ")))]
        }
    }

    /// A started job's answer: with `--job-status` the one status line
    /// `Job N queued`; else the data line `Job N created` (an OK status follows).
    pub fn job_started(&self, dev: u64) -> String {
        if self.job_status {
            format!("Job {dev} queued")
        } else {
            format!("Job {dev} created")
        }
    }

    /// The lines of `show job N`.
    pub fn job(&self, dev: u64, j: &JobReport) -> Vec<String> {
        let w = &self.words;
        let state = w.state_out(&j.state);
        let mut lines = Vec::new();
        if self.multiline {
            lines.push(format!("Job {dev}"));
            lines.push(format!("  State: {state}"));
            if let Some((class, detail)) = &j.error {
                lines.push(format!("  Error: {}", w.class_out(class)));
                lines.push(format!("  Detail: {}", w.detail_out(class, detail)));
            }
            for r in &j.recipients {
                let v = w.verdict_out(r.accepted);
                lines.push(if r.accepted || r.reply.is_empty() {
                    format!("  Recipient {}: {v}", r.address)
                } else {
                    format!("  Recipient {}: {v} ({})", r.address, r.reply)
                });
            }
        } else {
            lines.push(match &j.error {
                None => format!("Job {dev} {state}"),
                Some((class, detail)) => format!(
                    "Job {dev} {state} {}: {}",
                    w.class_out(class),
                    w.detail_out(class, detail)
                ),
            });
            for r in &j.recipients {
                let v = w.verdict_out(r.accepted);
                lines.push(if r.accepted || r.reply.is_empty() {
                    format!("Recipient {} {v}", r.address)
                } else {
                    format!("Recipient {} {v}: {}", r.address, r.reply)
                });
            }
        }
        lines
    }

    /// The line that tells a job's end, syslog style.
    pub fn event(&self, dev: u64, end: &JobEnd) -> String {
        let w = &self.words;
        match &end.error {
            None => format!("%MAIL-5-JOBEND: Job {dev} {}", w.state_out("done")),
            Some((class, detail)) => {
                let head = format!(
                    "%MAIL-3-JOBEND: Job {dev} {} ({})",
                    w.state_out("failed"),
                    w.class_out(class)
                );
                if detail.is_empty() {
                    head
                } else {
                    format!("{head}: {}", w.detail_out(class, detail))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Recipient;

    fn router() -> Render {
        Render::new(&Traits::router())
    }

    #[test]
    fn refusals_name_every_parameter() {
        let bad = vec![
            Bad {
                name: "smtp-timeout".into(),
                value: "29".into(),
                secret: false,
                rule: "must be a decimal integer from 30 to 300".into(),
            },
            Bad {
                name: "auth-password".into(),
                value: "x\"y".into(),
                secret: true,
                rule: "the character '\"' is not allowed".into(),
            },
        ];
        assert_eq!(
            router().refusal(&bad, true),
            vec![
                "% Commit failed: 2 errors".to_string(),
                "    smtp-timeout 29: must be a decimal integer from 30 to 300".into(),
                "    auth-password ********: the character '\"' is not allowed".into(),
            ]
        );
        let plain = Render::new(&Traits::default());
        assert_eq!(
            plain.refusal(&bad[..1], false),
            vec![
            "% config: smtp-timeout 29: must be a decimal integer from 30 to 300; nothing changed"
                .to_string()
        ]
        );
    }

    #[test]
    fn jobs_and_events_in_device_words() {
        let j = JobReport {
            state: "failed".into(),
            error: Some(("rejected".into(), "554 5.7.1 no relay".into())),
            recipients: vec![
                Recipient {
                    address: "a@b.test".into(),
                    accepted: true,
                    reply: String::new(),
                },
                Recipient {
                    address: "c@d.test".into(),
                    accepted: false,
                    reply: "550 5.1.1 unknown".into(),
                },
            ],
        };
        assert_eq!(
            router().job(7, &j),
            vec![
                "Job 7",
                "  State: aborted",
                "  Error: SERVER-REJECT",
                "  Detail: 554 5.7.1 no relay",
                "  Recipient a@b.test: delivered",
                "  Recipient c@d.test: bounced (550 5.1.1 unknown)",
            ]
        );
        let plain = Render::new(&Traits::default());
        assert_eq!(
            plain.job(7, &j),
            vec![
                "Job 7 failed rejected: 554 5.7.1 no relay",
                "Recipient a@b.test accepted",
                "Recipient c@d.test rejected: 550 5.1.1 unknown",
            ]
        );
        let end = JobEnd {
            id: 1,
            error: Some(("auth_failed".into(), "535 5.7.8 bad".into())),
        };
        assert_eq!(
            router().event(7, &end),
            "%MAIL-3-JOBEND: Job 7 aborted (AUTH-FAIL): 535 5.7.8 bad"
        );
        assert_eq!(
            router().event(7, &JobEnd { id: 1, error: None }),
            "%MAIL-5-JOBEND: Job 7 sent"
        );
    }

    #[test]
    fn values_are_masked_translated_and_quoted() {
        let r = router();
        assert_eq!(
            r.value_line("smtp.auth.password", "***"),
            "auth-password ********"
        );
        assert_eq!(r.value_line("smtp.auth.password", ""), "auth-password \"\"");
        assert_eq!(r.value_line("email.scan", "on"), "scan-to-email enable");
        assert_eq!(
            r.value_line("smtp.auth.user", "a \"b\""),
            "auth-user \"a \\\"b\\\"\""
        );
        assert_eq!(r.prompt(true), "\x1b[1;32mmfp-4000(config)# \x1b[0m");
    }
}
