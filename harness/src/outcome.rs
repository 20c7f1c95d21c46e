//! The typed vocabulary of a case's result, shared by the verdict, the records and the
//! triage: where in a job something happens ([`Step`], SPEC §3's order), how a job
//! ended or should end ([`Outcome`]) and one difference between the two
//! ([`Mismatch`]). Everything here is written to `results.jsonl` as objects with
//! snake_case words (docs/results.schema.json), never as Rust `Debug` text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where in a job an outcome or a mismatch belongs, in the order SPEC §3 runs them.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// `apply` of the case's settings (SPEC §1 input rules).
    Settings,
    /// The scan or notification command itself (a switch off).
    Trigger,
    /// Before any connection: the size limits of SPEC §4.
    Prepare,
    /// POP before SMTP (SPEC §3.6).
    Pop,
    /// Name resolution and the TCP connect (and timeouts, which bound every wait).
    Connect,
    /// The greeting and EHLO/HELO.
    Greeting,
    /// STARTTLS (SPEC §3.4).
    Starttls,
    /// The TLS handshake and the certificate checks (SPEC §3.5).
    Tls,
    /// AUTH (SPEC §3.7).
    Auth,
    /// MAIL FROM and the envelope (SPEC §3.8).
    Mail,
    /// RCPT TO and the per-recipient report (SPEC §3.9).
    Rcpt,
    /// DATA and what the message holds (SPEC §2, §3.10, §3.11, §4).
    Data,
    /// The job's end: delivered, or no end at all.
    End,
    /// A class the device reports that SPEC §5 does not list.
    #[default]
    Unknown,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Settings => "settings",
            Step::Trigger => "trigger",
            Step::Prepare => "prepare",
            Step::Pop => "pop",
            Step::Connect => "connect",
            Step::Greeting => "greeting",
            Step::Starttls => "starttls",
            Step::Tls => "tls",
            Step::Auth => "auth",
            Step::Mail => "mail",
            Step::Rcpt => "rcpt",
            Step::Data => "data",
            Step::End => "end",
            Step::Unknown => "unknown",
        }
    }

    /// Where a job failing with SPEC §5's `class` stops, and its rank among the
    /// classes of that step (the certificate checks in SPEC §3.5's order); `None` for
    /// a class SPEC does not list. A class that can come at several steps (`timeout`,
    /// `rejected`) takes its most common one: the signature also carries the class.
    pub fn of_class(class: &str) -> Option<(Step, u8)> {
        Some(match class {
            "config" => (Step::Settings, 0),
            "disabled" => (Step::Trigger, 0),
            "size_over_limit" => (Step::Prepare, 0),
            "pop_auth" => (Step::Pop, 0),
            "connect" => (Step::Connect, 0),
            "timeout" => (Step::Connect, 1),
            "starttls_unavailable" => (Step::Starttls, 0),
            "tls_handshake" => (Step::Tls, 0),
            "cert_expired" => (Step::Tls, 1),
            "cert_name" => (Step::Tls, 2),
            "cert_key_usage" => (Step::Tls, 3),
            "cert_chain" => (Step::Tls, 4),
            "cert_revoked" | "cert_revocation_unknown" => (Step::Tls, 5),
            "auth_no_mechanism" | "auth_failed" | "auth_required" => (Step::Auth, 0),
            "rejected" => (Step::Mail, 0),
            _ => return None,
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ended, or how the oracle says it must end.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// The mail went out (SPEC: the job is done).
    Delivered,
    /// The job failed with an error class.
    Failed,
    /// The scan or notification command was refused at once with an error class.
    Refused,
    /// The case's settings were refused (`config`).
    SettingsRefused,
    /// The job started and never ended (a hang, a lost event).
    NoEnd,
    /// The harness could not run the case: nothing was observed.
    #[default]
    NotRun,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Delivered => "delivered",
            Ending::Failed => "failed",
            Ending::Refused => "refused",
            Ending::SettingsRefused => "settings_refused",
            Ending::NoEnd => "no_end",
            Ending::NotRun => "not_run",
        }
    }
}

/// The expected or the observed end of a case, typed (`results.jsonl`'s `expected`
/// and `observed`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Outcome {
    pub ending: Ending,
    /// SPEC §5's error class, for `failed`, `refused` and `settings_refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Where the job ends: the step of the class, `end` for a delivery.
    pub step: Step,
    /// The device's error detail (observed), or the text it must contain (expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For `settings_refused` expected: the setting the refusal must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Expected: whether an SMTP connection is made before the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connects: Option<bool>,
    /// Expected: whether the server holds the message before the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<bool>,
    /// Expected: how long (device ms) the device waits before a timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// Expected: the delivery the oracle predicts (envelope, headers, TLS, AUTH, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<serde_json::Value>,
    /// Observed: the device's job number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<u64>,
    /// Observed: SMTP connections the fake server saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<usize>,
    /// Observed: messages the fake server holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<usize>,
    /// Observed: wall ms from the trigger to the job's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
    /// The same in words, for a person.
    pub text: String,
}

impl Outcome {
    /// An outcome with only its ending, class and words; the step follows the class.
    pub fn new(ending: Ending, class: Option<&str>, text: String) -> Outcome {
        let step = match (ending, class) {
            (Ending::Delivered | Ending::NoEnd, _) => Step::End,
            (Ending::NotRun, _) => Step::Unknown,
            (Ending::SettingsRefused, _) => Step::Settings,
            (Ending::Refused, Some("config")) => Step::Trigger,
            (_, Some(c)) => Step::of_class(c).map_or(Step::Unknown, |(s, _)| s),
            (_, None) => Step::Unknown,
        };
        Outcome {
            ending,
            class: class.map(str::to_string),
            step,
            detail: None,
            key: None,
            connects: None,
            stored: None,
            wait_ms: None,
            delivery: None,
            job: None,
            connections: None,
            messages: None,
            elapsed_ms: None,
            text,
        }
    }

    /// Where this outcome stops a job, for comparing two: the step, the class's rank
    /// in it, and whether the class is one SPEC knows.
    pub fn position(&self) -> (Step, u8, bool) {
        match (self.ending, self.class.as_deref()) {
            (Ending::Delivered, _) => (Step::End, 1, true),
            (Ending::NoEnd, _) => (Step::End, 0, true),
            (Ending::NotRun, _) => (Step::Unknown, 0, false),
            (Ending::SettingsRefused, _) => (Step::Settings, 0, true),
            (Ending::Refused, Some("config")) => (Step::Trigger, 0, true),
            (_, Some(c)) => match Step::of_class(c) {
                Some((s, r)) => (s, r, true),
                None => (Step::Unknown, 0, false),
            },
            (_, None) => (Step::Unknown, 0, false),
        }
    }

    /// `delivered`, `failed cert_name`, `settings_refused config`, …: the ending and
    /// the class in two words.
    pub fn short(&self) -> String {
        match &self.class {
            Some(c) if self.ending != Ending::Delivered => {
                format!("{} {c}", self.ending.as_str())
            }
            _ => self.ending.as_str().to_string(),
        }
    }
}

/// What kind of difference a [`Mismatch`] is; with its [`Step`] it is what failures
/// are grouped by (never the free text, which carries job numbers and sizes).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// The job ended otherwise than expected (another class, done instead of failed…).
    Outcome,
    ApplyRefusedClass,
    RefusalKey,
    PartlyStored,
    ErrorDetail,
    WaitTime,
    Connections,
    StoredMessages,
    Fragments,
    Tls,
    Auth,
    RecipientReport,
    MailFrom,
    RcptTo,
    Greeting,
    SizeParam,
    BareLf,
    LongLines,
    Mime,
    HeaderFrom,
    HeaderTo,
    Date,
    Attachment,
    AttachmentName,
    Download,
    PopConnections,
    PopTls,
    PopMethod,
    PopLogin,
    PopWait,
    SecretShown,
}

impl MismatchKind {
    pub fn as_str(self) -> &'static str {
        use MismatchKind as K;
        match self {
            K::Outcome => "outcome",
            K::ApplyRefusedClass => "apply_refused_class",
            K::RefusalKey => "refusal_key",
            K::PartlyStored => "partly_stored",
            K::ErrorDetail => "error_detail",
            K::WaitTime => "wait_time",
            K::Connections => "connections",
            K::StoredMessages => "stored_messages",
            K::Fragments => "fragments",
            K::Tls => "tls",
            K::Auth => "auth",
            K::RecipientReport => "recipient_report",
            K::MailFrom => "mail_from",
            K::RcptTo => "rcpt_to",
            K::Greeting => "greeting",
            K::SizeParam => "size_param",
            K::BareLf => "bare_lf",
            K::LongLines => "long_lines",
            K::Mime => "mime",
            K::HeaderFrom => "header_from",
            K::HeaderTo => "header_to",
            K::Date => "date",
            K::Attachment => "attachment",
            K::AttachmentName => "attachment_name",
            K::Download => "download",
            K::PopConnections => "pop_connections",
            K::PopTls => "pop_tls",
            K::PopMethod => "pop_method",
            K::PopLogin => "pop_login",
            K::PopWait => "pop_wait",
            K::SecretShown => "secret_shown",
        }
    }

    /// The step of the job the difference belongs to.
    pub fn step(self) -> Step {
        use MismatchKind as K;
        match self {
            K::Outcome => Step::End,
            K::ApplyRefusedClass | K::RefusalKey | K::PartlyStored | K::SecretShown => {
                Step::Settings
            }
            K::ErrorDetail | K::WaitTime => Step::End,
            K::Connections => Step::Connect,
            K::StoredMessages | K::Fragments | K::Mime | K::HeaderFrom | K::HeaderTo => Step::Data,
            K::Date | K::Attachment | K::AttachmentName | K::BareLf | K::LongLines => Step::Data,
            K::Download => Step::Data,
            K::Tls => Step::Tls,
            K::Auth => Step::Auth,
            K::RecipientReport | K::RcptTo => Step::Rcpt,
            K::MailFrom | K::SizeParam => Step::Mail,
            K::Greeting => Step::Greeting,
            K::PopConnections | K::PopTls | K::PopMethod | K::PopLogin | K::PopWait => Step::Pop,
        }
    }
}

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between what the oracle expects and what the case saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mismatch {
    pub kind: MismatchKind,
    pub step: Step,
    /// One sentence for a person.
    pub text: String,
}

impl Mismatch {
    pub fn new(kind: MismatchKind, text: String) -> Mismatch {
        Mismatch {
            kind,
            step: kind.step(),
            text,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The sentences of some mismatches.
pub fn texts(m: &[Mismatch]) -> Vec<String> {
    m.iter().map(|m| m.text.clone()).collect()
}

/// The mismatches of one comparison, as it finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatches(pub Vec<Mismatch>);

impl Mismatches {
    pub fn add(&mut self, kind: MismatchKind, text: String) {
        self.0.push(Mismatch::new(kind, text));
    }
}
