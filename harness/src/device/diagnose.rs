//! Why an answer did not fit the profile, in the terms of the profile: when the
//! driver cannot read an answer, it looks at what the device did say — an echo, a
//! colour code, a question waiting for a key, a pager, a prompt the profile does not
//! know, a prompt with no success word before it — and names the console trait the
//! profile does not express, the field to change and how. `hil run` puts this in the
//! harness error (and stops a run that keeps hitting it); `hil profile probe` prints
//! it for each operation.

use regex::Regex;

use super::profile::Profile;

/// A console trait the profile does not express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trait {
    Ansi,
    Login,
    Paging,
    Confirmation,
    Echo,
    Prompt,
    PromptOnlyAnswers,
    JobStartIsStatus,
    StatusWords,
    Continuation,
    ValueWords,
    ClassWords,
    Quoting,
    ClockFormat,
    AnswerWords,
}

impl Trait {
    /// The trait in a few words, as `hil profile probe` names it.
    pub fn name(self) -> &'static str {
        match self {
            Trait::Ansi => "ANSI escape sequences",
            Trait::Login => "a login",
            Trait::Paging => "a pager",
            Trait::Confirmation => "a confirmation question",
            Trait::Echo => "echo of typed lines",
            Trait::Prompt => "a prompt the profile does not match",
            Trait::PromptOnlyAnswers => "answers that end at the prompt (no success word)",
            Trait::JobStartIsStatus => "a job-started line that is the status line",
            Trait::StatusWords => "status words",
            Trait::Continuation => "continuation lines after a refusal",
            Trait::ValueWords => "the device's own value words",
            Trait::ClassWords => "the device's own error class words",
            Trait::Quoting => "quoting",
            Trait::ClockFormat => "the device's clock format",
            Trait::AnswerWords => "answer words",
        }
    }
}

/// The profile does not fit what the device did: what happened, which trait, which
/// field and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The operation (`reset`, `apply`, …) during which it happened.
    pub op: String,
    pub trait_: Trait,
    /// The profile field to change.
    pub field: String,
    /// What the device did, quoting it.
    pub what: String,
    /// What to write in the profile.
    pub fix: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} [{}; profile field {}: {}]",
            self.op,
            self.what,
            self.trait_.name(),
            self.field,
            self.fix
        )
    }
}

/// What an exchange saw before it failed.
pub struct Seen<'a> {
    pub op: &'a str,
    /// The command line(s) as sent (masked).
    pub sent: &'a [String],
    /// Lines received since the command was sent (prompts stripped, echo left in).
    pub lines: &'a [String],
    /// Lines in which escape sequences were kept (`ansi = "keep"`).
    pub raw_escapes: bool,
    /// The line not ended yet when it gave up (a prompt, a question).
    pub partial: &'a str,
    /// The profile's prompt was shown after the command.
    pub prompt_seen: bool,
    /// The operation starts a job.
    pub trigger: bool,
}

fn re(src: &str) -> Option<Regex> {
    Regex::new(src).ok()
}

/// A pattern a person can paste into the profile: `text` with its regex
/// metacharacters escaped and spaces at its end made optional.
pub fn pattern_for(text: &str) -> String {
    let t = text.trim_end();
    let mut p = regex::escape(t);
    if t.len() < text.len() {
        p.push_str(" ?");
    }
    p
}

/// Names what `seen` shows the profile is missing.
pub fn diagnose(p: &Profile, seen: &Seen) -> Mismatch {
    let m = |trait_, field: &str, what: String, fix: String| Mismatch {
        op: seen.op.to_string(),
        trait_,
        field: field.to_string(),
        what,
        fix,
    };
    let partial = seen.partial.trim_end();
    if seen.raw_escapes || seen.lines.iter().any(|l| l.contains('\x1b')) || partial.contains('\x1b')
    {
        return m(
            Trait::Ansi,
            "ansi",
            "the device colours its output with ANSI escape sequences, which the profile keeps"
                .into(),
            "set ansi = \"strip\" (the default)".into(),
        );
    }
    let looks = |src: &str, text: &str| re(src).is_some_and(|r| r.is_match(text));
    if !partial.is_empty() {
        if looks(r"(?i)(login|user ?name|password)\s*:?$", partial) && p.login.is_none() {
            return m(
                Trait::Login,
                "[login]",
                format!("the device asks {partial:?}"),
                "add [login] with user_prompt, password_prompt, user and password".into(),
            );
        }
        let paging = p
            .paging
            .as_ref()
            .is_some_and(|pg| pg.more.is_match(partial));
        if !paging
            && looks(
                r"(?i)(-+ ?more ?-+|\(more\)|press any key|<space>|\(q\)uit)",
                partial,
            )
        {
            return m(
                Trait::Paging,
                "[paging]",
                format!("the device stopped its answer at {partial:?}, waiting for a key"),
                format!(
                    "add [paging] more = '{}' (send = \" \")",
                    pattern_for(partial)
                ),
            );
        }
        if !p.is_prompt(seen.partial)
            && looks(
                r"(?i)(\[confirm\]|\[y(es)?/n(o)?\]|\(y(es)?/n(o)?\)|\?|:)$",
                partial,
            )
        {
            return m(
                Trait::Confirmation,
                &format!("[commands] {}", seen.op),
                format!(
                    "after {:?} the device asks {partial:?} and waits",
                    seen.sent.first().map(String::as_str).unwrap_or("")
                ),
                format!(
                    "make the template a list of steps that waits for the question and answers it, e.g. {} = [\"{}\", {{ expect = '{}', send = \"y\" }}]",
                    seen.op,
                    seen.sent.first().map(String::as_str).unwrap_or("…"),
                    pattern_for(partial)
                ),
            );
        }
    }
    if p.echo == super::profile::Echo::Off {
        if let Some(l) = seen
            .lines
            .iter()
            .find(|l| seen.sent.iter().any(|s| s == *l || s.trim() == l.trim()))
        {
            return m(
                Trait::Echo,
                "echo",
                format!("the device echoes what is typed ({l:?} came back)"),
                "set echo = \"auto\" (the default) or \"on\"".into(),
            );
        }
    }
    if !partial.is_empty() && !p.is_prompt(seen.partial) && looks(r"[#>$%:\]]\s*$", seen.partial) {
        return m(
            Trait::Prompt,
            "prompt",
            format!(
                "the device waits at {:?}, which the profile's prompt {} does not match",
                seen.partial,
                p.prompt
                    .as_ref()
                    .map_or("(none)".to_string(), |r| format!("/{}/", r.as_str()))
            ),
            format!(
                "make prompt match every prompt the device shows, e.g. prompt = '{}' (alternatives with |)",
                pattern_for(seen.partial)
            ),
        );
    }
    status_words(p, seen, m)
}

/// The device ended or kept answering, but no status line matched.
fn status_words(
    p: &Profile,
    seen: &Seen,
    m: impl Fn(Trait, &str, String, String) -> Mismatch,
) -> Mismatch {
    let data: Vec<&String> = seen
        .lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !seen.sent.iter().any(|s| s == *l))
        .collect();
    let started = data.iter().any(|l| p.job_started.is_match(l));
    if seen.trigger && started && !p.job_started_is_status {
        return m(
            Trait::JobStartIsStatus,
            "answers.job_started_is_status",
            format!(
                "the device answered {:?} (answers.job_started) and nothing that matched status.ok",
                data
            ),
            "set answers.job_started_is_status = true".into(),
        );
    }
    if seen.prompt_seen && data.is_empty() && p.ok.is_some() {
        return m(
            Trait::PromptOnlyAnswers,
            "status.ok",
            "the device answered with nothing but its prompt".into(),
            "set status.ok = \"\": an answer that ends at the prompt without an error line is a success".into(),
        );
    }
    if data.is_empty() && !seen.prompt_seen {
        return m(
            Trait::StatusWords,
            "[timeouts] command_ms",
            format!(
                "the device said nothing{}",
                if seen.partial.is_empty() {
                    String::new()
                } else {
                    format!(" but {:?}", seen.partial)
                }
            ),
            "check the template and the link; a slow device needs a longer command_ms".into(),
        );
    }
    m(
        Trait::StatusWords,
        "status.ok / status.error",
        format!(
            "the device answered {data:?}{}, but no line matched status.ok {} or status.error /{}/",
            if seen.prompt_seen {
                " and showed its prompt"
            } else {
                ""
            },
            p.ok.as_ref()
                .map_or("(none)".to_string(), |r| format!("/{}/", r.as_str())),
            p.error.as_str()
        ),
        "make status.ok match its success line and status.error its refusals".into(),
    )
}
