//! The shape of a profile file as TOML: what serde reads before any check. Every
//! table refuses fields it does not know, so a misspelt field is an error naming it
//! rather than a setting silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub line_ending: String,
    /// What ends a line the device prints: `lf` (default; a CR alone returns the
    /// cursor, as a terminal does) or `cr` (a CR ends a line too).
    #[serde(default)]
    pub device_line_ending: Option<String>,
    /// A pattern for the command prompt(s); empty: the console shows none.
    #[serde(default)]
    pub prompt: String,
    /// `auto` (default), `on` or `off`.
    #[serde(default)]
    pub echo: Option<String>,
    /// `strip` (default) or `keep`.
    #[serde(default)]
    pub ansi: Option<String>,
    /// The console's character encoding (a WHATWG label: `utf-8`, `shift_jis`,
    /// `euc-jp`, …); default UTF-8.
    #[serde(default)]
    pub encoding: Option<String>,
    pub quoting: String,
    /// Per parameter: `double`, `single` or `none`, overriding `quoting`.
    #[serde(default)]
    pub quote: BTreeMap<String, String>,
    pub timeouts: RawTimeouts,
    pub status: RawStatus,
    pub commands: BTreeMap<String, RawTemplate>,
    pub answers: RawAnswers,
    /// Absent: the device prints no job events; the harness polls `job`.
    #[serde(default)]
    pub events: Option<RawEvents>,
    #[serde(default)]
    pub synthetic_scan: bool,
    #[serde(default)]
    pub variants: Vec<String>,
    #[serde(default)]
    pub apply: RawApply,
    #[serde(default)]
    pub alert_kinds: BTreeMap<String, String>,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// `bool = { on = …, off = … }` and `"KEY" = { SPEC value = device word }`.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// The device's word → a SPEC §5 error class.
    #[serde(default)]
    pub classes: BTreeMap<String, String>,
    /// The device's word → a job state of SPEC §6 (queued, running, done, failed).
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    #[serde(default)]
    pub formats: RawFormats,
    #[serde(default)]
    pub paging: Option<RawPaging>,
    #[serde(default)]
    pub crash: Option<RawCrash>,
    /// SPEC §1 † ranges: `key = [min, max]` (dotted keys nest, so read as a table).
    #[serde(default)]
    pub ranges: toml::Table,
    /// Features the firmware lacks (`hil_oracle::model::FEATURES`).
    #[serde(default)]
    pub unsupported: Vec<String>,
    #[serde(default)]
    pub auth_mechanisms: Option<Vec<String>>,
    #[serde(default)]
    pub default_auth_methods: Option<Vec<String>>,
    #[serde(default)]
    pub login: Option<RawLogin>,
    /// Questions the device may ask during any operation (`[[questions]]`).
    #[serde(default)]
    pub questions: Vec<RawQuestion>,
    #[serde(default)]
    pub sim_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub command_ms: u64,
    pub job_ms: u64,
    pub startup_ms: u64,
    /// A pause after each character typed, for a console that drops characters
    /// typed faster than it reads them.
    #[serde(default)]
    pub char_delay_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStatus {
    /// Empty: the console has no success word; an answer ending at the prompt with
    /// no error line is a success.
    #[serde(default)]
    pub ok: String,
    pub error: String,
    /// The class of an error line whose pattern has no `class` group.
    #[serde(default)]
    pub error_class: Option<String>,
    /// Absent: the console prints no event lines.
    #[serde(default)]
    pub event: Option<String>,
    /// Lines right after a status error (or a job state) that belong to it.
    #[serde(default)]
    pub continuation: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnswers {
    pub value: String,
    pub job_started: String,
    #[serde(default)]
    pub job_started_is_status: bool,
    pub job_state: String,
    pub recipient: String,
    #[serde(default = "default_recipient_accepted")]
    pub recipient_accepted: String,
    /// The data line of `clock_get`, with a `time` group.
    #[serde(default)]
    pub clock: Option<String>,
}

fn default_recipient_accepted() -> String {
    "accepted".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    #[serde(default)]
    pub job_done: Option<String>,
    #[serde(default)]
    pub job_failed: Option<String>,
    /// Poll `job` this often (ms) for a job's end, instead of (or as well as)
    /// waiting for its event.
    #[serde(default)]
    pub poll_ms: Option<u64>,
}

/// How `apply` writes one setting, and what joins several.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApply {
    pub pair: String,
    pub separator: String,
}

impl Default for RawApply {
    fn default() -> Self {
        RawApply {
            pair: "{key}={value}".into(),
            separator: " ".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFormats {
    /// The device's clock, in the `time` crate's format description.
    #[serde(default)]
    pub clock: Option<String>,
    /// How it shows its clock, when not as it takes it.
    #[serde(default)]
    pub clock_read: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPaging {
    pub more: String,
    #[serde(default = "default_pager_send")]
    pub send: String,
}

fn default_pager_send() -> String {
    " ".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrash {
    /// What the device prints when it crashes (a panic banner, a watchdog reset).
    #[serde(default)]
    pub pattern: Option<String>,
    /// What it prints when it has booted (its greeting's last line).
    #[serde(default)]
    pub boot: Option<String>,
    #[serde(default = "default_boot_ms")]
    pub boot_ms: u64,
    /// A command run on the harness host (`sh -c`) to power-cycle the device.
    #[serde(default)]
    pub power_cycle: Option<String>,
}

fn default_boot_ms() -> u64 {
    60_000
}

/// A console that asks for a login before it takes commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogin {
    /// Absent (with `user`): a console that asks for a password only.
    #[serde(default)]
    pub user_prompt: Option<String>,
    pub password_prompt: String,
    #[serde(default)]
    pub user: Option<String>,
    pub password: String,
}

/// A question the device may ask during any operation, and its answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuestion {
    pub expect: String,
    pub send: String,
    #[serde(default)]
    pub raw: bool,
}

/// A template: one command line (or several, pasted at once), or a list of steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawTemplate {
    Line(String),
    Steps(Vec<RawStep>),
}

/// One step of a template: a line to send, or a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawStep {
    Line(String),
    Table(RawStepTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStepTable {
    #[serde(default)]
    pub send: Option<String>,
    /// Wait for this pattern (a line, or a line not ended yet) after sending.
    #[serde(default)]
    pub expect: Option<String>,
    /// Send without a line ending (a single key).
    #[serde(default)]
    pub raw: bool,
    /// Send every line of the step at once and read one answer (a paste).
    #[serde(default)]
    pub paste: Option<bool>,
    /// How long this step may take to answer, instead of `command_ms`.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The device reboots after this step (a factory reset that restarts it): the
    /// driver waits for its boot and logs in again.
    #[serde(default)]
    pub reboot: bool,
}
