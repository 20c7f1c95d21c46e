//! Collecting the PEM lines of `certificate import`, and checking the block before
//! the engine sees any of it: the engine reads PEM lines until its END line, so a
//! block it would refuse half-way would leave it reading PEM while the console has
//! moved on. Two ways to end a paste: at the END line (plain), or at a blank line
//! (`--confirm`, "Paste the certificate, end with a blank line:").

use mfp_sim::console::MAX_PEM;

use crate::command;
use crate::quoting::{self, Form};

pub const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
pub const END: &str = "-----END CERTIFICATE-----";

/// What one line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemStep {
    /// Keep collecting.
    More,
    /// A whole block, checked: BEGIN, base64 lines, END (lines trimmed).
    Complete(Vec<String>),
    /// The paste is abandoned, and why.
    Refused(String),
}

/// The lines pasted so far.
#[derive(Debug)]
pub struct PemCollector {
    lines: Vec<String>,
    bytes: usize,
    /// The paste ends at a blank line (else at the END line).
    blank_ends: bool,
}

fn is_base64(l: &str) -> bool {
    l.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}

impl PemCollector {
    pub fn new(blank_ends: bool) -> PemCollector {
        PemCollector {
            lines: Vec::new(),
            bytes: 0,
            blank_ends,
        }
    }

    /// Takes one line.
    pub fn line(&mut self, text: &str) -> PemStep {
        let l = text.trim();
        self.bytes += l.len() + 1;
        if self.bytes > MAX_PEM {
            return PemStep::Refused(format!("the certificate is longer than {MAX_PEM} bytes"));
        }
        if self.blank_ends {
            if !l.is_empty() {
                self.lines.push(l.to_string());
                return PemStep::More;
            }
            if self.lines.is_empty() {
                return PemStep::Refused("no certificate was pasted".into());
            }
            return self.finish();
        }
        if l.is_empty() {
            return PemStep::More;
        }
        if self.lines.is_empty() && l != BEGIN {
            return PemStep::Refused(format!("the first line must be {BEGIN}"));
        }
        if !self.lines.is_empty() && l != END && !is_base64(l) {
            return PemStep::Refused(format!("a PEM line must be base64 or {END}"));
        }
        self.lines.push(l.to_string());
        if l == END {
            self.finish()
        } else {
            PemStep::More
        }
    }

    fn finish(&mut self) -> PemStep {
        let lines = std::mem::take(&mut self.lines);
        match check(&lines) {
            Ok(()) => PemStep::Complete(lines),
            Err(e) => PemStep::Refused(e),
        }
    }
}

/// A block the engine takes whole: BEGIN, base64 lines, END, nothing else.
fn check(lines: &[String]) -> Result<(), String> {
    match lines {
        [first, body @ .., last] if first == BEGIN && last == END => {
            if body.is_empty() {
                return Err("the certificate has no body".into());
            }
            if let Some(bad) = body.iter().find(|l| l.is_empty() || !is_base64(l)) {
                return Err(format!(
                    "the PEM line {} is not base64",
                    quoting::write(Form::Double, &command::shorten(bad))
                ));
            }
            Ok(())
        }
        _ => Err(format!("a certificate is {BEGIN}, base64 lines, {END}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut PemCollector, lines: &[&str]) -> Vec<PemStep> {
        lines.iter().map(|l| c.line(l)).collect()
    }

    #[test]
    fn a_paste_ends_at_the_end_line_or_at_a_blank_line() {
        let block = [BEGIN, " QUJD ", END];
        let steps = feed(&mut PemCollector::new(false), &block);
        assert_eq!(
            steps.last(),
            Some(&PemStep::Complete(vec![
                BEGIN.into(),
                "QUJD".into(),
                END.into()
            ]))
        );
        let mut c = PemCollector::new(true);
        assert!(feed(&mut c, &block).iter().all(|s| *s == PemStep::More));
        assert!(matches!(c.line(""), PemStep::Complete(_)));
    }

    #[test]
    fn bad_blocks_are_refused() {
        let mut c = PemCollector::new(false);
        assert!(matches!(c.line("hello"), PemStep::Refused(_)));
        let mut c = PemCollector::new(false);
        assert!(matches!(
            feed(&mut c, &[BEGIN, "not base64!"]).last(),
            Some(PemStep::Refused(_))
        ));
        let mut c = PemCollector::new(true);
        feed(&mut c, &[BEGIN, "QUJD", END, "trailing"]);
        assert!(matches!(c.line(""), PemStep::Refused(_)));
        assert!(matches!(
            PemCollector::new(true).line(""),
            PemStep::Refused(_)
        ));
        let mut c = PemCollector::new(true);
        let long = "A".repeat(4000);
        let refused = (0..20)
            .map(|_| c.line(&long))
            .any(|s| matches!(s, PemStep::Refused(_)));
        assert!(refused);
    }
}
