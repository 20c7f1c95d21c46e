//! Scripted faults shared by the fake SMTP and POP3 servers: what to do instead of
//! (or on top of) the normal answer at a step, and when. Deterministic: a fault fires
//! on the nth occurrence of its step, on every occurrence, or with a probability drawn
//! from a generator seeded by the scenario, so a run repeats exactly.

use serde::{Deserialize, Serialize};

/// What happens at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Answer with this SMTP code and text; a text with `\n` gives a multi-line reply.
    Reply { code: u16, text: String },
    /// Send these lines as they are (POP3 answers such as `-ERR denied`); each gets CRLF.
    Line { text: String },
    /// Wait this long (device time, divided by the time scale), then answer normally.
    Delay { ms: u64 },
    /// Answer normally, but send every byte from now on at this rate.
    Throttle { bytes_per_sec: u32 },
    /// Close the connection without answering.
    Drop,
    /// Never answer; keep the connection open until the client closes it.
    Hang,
    /// Answer with bytes that are not the protocol (binary junk and a newline).
    Garbage,
    /// Send the first half of the normal answer, without its end of line, then hang.
    HalfLine,
    /// At the TLS handshake: close the connection in the middle of it.
    AbortTls,
}

impl std::fmt::Display for Action {
    /// The action in words: `reply 454 TLS not available`, `delay 3000 ms`, `drop`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Reply { code, text } => write!(f, "reply {code} {}", text.replace('\n', " / ")),
            Action::Line { text } => write!(f, "send {text:?}"),
            Action::Delay { ms } => write!(f, "delay {ms} ms"),
            Action::Throttle { bytes_per_sec } => write!(f, "throttle to {bytes_per_sec} bytes/s"),
            Action::Drop => f.write_str("drop the connection"),
            Action::Hang => f.write_str("hang"),
            Action::Garbage => f.write_str("answer with garbage"),
            Action::HalfLine => f.write_str("half a line, then hang"),
            Action::AbortTls => f.write_str("abort the TLS handshake"),
        }
    }
}

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct When {
    /// Fire only on this occurrence of the step (1-based), counted per connection.
    #[serde(default)]
    pub nth: Option<u32>,
    /// Fire with this probability (0 to 1) instead, drawn from the scenario's seed.
    #[serde(default)]
    pub probability: Option<f64>,
}

/// A fault: at `step`, `action`, when `when` says. In a scenario file it is one flat
/// table: `step`, optional `nth` or `probability`, `action` and the action's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFault<S>")]
#[serde(bound(deserialize = "S: Deserialize<'de>"))]
pub struct Fault<S> {
    pub step: S,
    #[serde(flatten)]
    pub when: When,
    #[serde(flatten)]
    pub action: Action,
}

/// The flat form of a fault in a file, checked field by field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault<S> {
    step: S,
    #[serde(default)]
    nth: Option<u32>,
    #[serde(default)]
    probability: Option<f64>,
    action: String,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    bytes_per_sec: Option<u32>,
}

/// Why a fault table in a scenario file is not a fault: a field its action does not
/// take or needs, an action nobody knows, or both `nth` and `probability`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultTableError {
    #[error("action {action:?} takes no field {field:?}")]
    FieldNotTaken { action: String, field: &'static str },
    #[error("action {action:?} needs {field}")]
    FieldNeeded { action: String, field: &'static str },
    #[error("unknown action {0:?}; one of reply, line, delay, throttle, drop, hang, garbage, half_line, abort_tls")]
    UnknownAction(String),
    #[error("a fault takes nth or probability, not both")]
    NthAndProbability,
}

impl<S> TryFrom<RawFault<S>> for Fault<S> {
    type Error = FaultTableError;

    fn try_from(r: RawFault<S>) -> Result<Self, FaultTableError> {
        let a = r.action.as_str();
        let unused = |names: &[(&'static str, bool)]| -> Result<(), FaultTableError> {
            match names.iter().find(|(_, present)| *present) {
                Some((field, _)) => Err(FaultTableError::FieldNotTaken {
                    action: a.to_string(),
                    field,
                }),
                None => Ok(()),
            }
        };
        let needed = |field: &'static str| FaultTableError::FieldNeeded {
            action: a.to_string(),
            field,
        };
        let action = match a {
            "reply" => {
                unused(&[
                    ("ms", r.ms.is_some()),
                    ("bytes_per_sec", r.bytes_per_sec.is_some()),
                ])?;
                Action::Reply {
                    code: r.code.ok_or_else(|| needed("code"))?,
                    text: r.text.ok_or_else(|| needed("text"))?,
                }
            }
            "line" => {
                unused(&[
                    ("code", r.code.is_some()),
                    ("ms", r.ms.is_some()),
                    ("bytes_per_sec", r.bytes_per_sec.is_some()),
                ])?;
                Action::Line {
                    text: r.text.ok_or_else(|| needed("text"))?,
                }
            }
            "delay" => {
                unused(&[
                    ("code", r.code.is_some()),
                    ("text", r.text.is_some()),
                    ("bytes_per_sec", r.bytes_per_sec.is_some()),
                ])?;
                Action::Delay {
                    ms: r.ms.ok_or_else(|| needed("ms"))?,
                }
            }
            "throttle" => {
                unused(&[
                    ("code", r.code.is_some()),
                    ("text", r.text.is_some()),
                    ("ms", r.ms.is_some()),
                ])?;
                Action::Throttle {
                    bytes_per_sec: r.bytes_per_sec.ok_or_else(|| needed("bytes_per_sec"))?,
                }
            }
            "drop" | "hang" | "garbage" | "half_line" | "abort_tls" => {
                unused(&[
                    ("code", r.code.is_some()),
                    ("text", r.text.is_some()),
                    ("ms", r.ms.is_some()),
                    ("bytes_per_sec", r.bytes_per_sec.is_some()),
                ])?;
                match a {
                    "drop" => Action::Drop,
                    "hang" => Action::Hang,
                    "garbage" => Action::Garbage,
                    "half_line" => Action::HalfLine,
                    _ => Action::AbortTls,
                }
            }
            other => return Err(FaultTableError::UnknownAction(other.to_string())),
        };
        if r.nth.is_some() && r.probability.is_some() {
            return Err(FaultTableError::NthAndProbability);
        }
        Ok(Fault {
            step: r.step,
            when: When {
                nth: r.nth,
                probability: r.probability,
            },
            action,
        })
    }
}

/// A small deterministic generator (SplitMix64) for probabilistic faults.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A step as scenarios name it (`data`, `tls_handshake`): what a fired fault's record
/// says.
pub trait StepName {
    fn step_name(&self) -> &'static str;
}

/// A scripted fault that fired on a connection: at which step, on which occurrence of
/// it, and what it did. Part of the connection's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredFault {
    /// The step as scenarios name it (`mail`, `tls_handshake`).
    pub step: String,
    /// The occurrence of the step on the connection it fired on, counted from 1.
    pub occurrence: u32,
    /// The action in words ([`Action`]'s `Display`: `reply 451 busy`, `hang`).
    pub action: String,
}

/// Most fired faults a connection's record keeps (a fault at every RCPT of a
/// mail to thousands); past it the transcript's notes still tell.
pub const MAX_FIRED: usize = 1000;

/// Counts occurrences of steps on one connection and picks the fault that fires.
#[derive(Debug, Clone)]
pub struct Script<S> {
    faults: Vec<Fault<S>>,
    counts: Vec<(S, u32)>,
    rng: Rng,
    /// Faults that fired (and policies applied) and are not yet taken
    /// ([`Script::take_fired`]), the action in words, with the number ever kept (for
    /// [`MAX_FIRED`]).
    fired: Vec<(S, u32, String)>,
    kept: usize,
}

impl<S: Copy + PartialEq> Script<S> {
    /// A script for one connection; `seed` should differ per connection (scenario
    /// seed mixed with the connection number) so runs repeat but connections differ.
    pub fn new(faults: Vec<Fault<S>>, seed: u64) -> Script<S> {
        Script {
            faults,
            counts: Vec::new(),
            rng: Rng::new(seed),
            fired: Vec::new(),
            kept: 0,
        }
    }

    /// Counts one occurrence of `step`; answers the action of the first fault that
    /// fires on it, if any.
    pub fn at(&mut self, step: S) -> Option<Action> {
        let n = match self.counts.iter_mut().find(|(s, _)| *s == step) {
            Some((_, c)) => {
                *c += 1;
                *c
            }
            None => {
                self.counts.push((step, 1));
                1
            }
        };
        for f in &self.faults {
            if f.step != step {
                continue;
            }
            if let Some(k) = f.when.nth {
                if k != n {
                    continue;
                }
            }
            if let Some(p) = f.when.probability {
                if self.rng.next_f64() >= p {
                    continue;
                }
            }
            if self.kept < MAX_FIRED {
                self.kept += 1;
                self.fired.push((step, n, f.action.to_string()));
            }
            return Some(f.action.clone());
        }
        None
    }

    /// Records that a policy of the server (recipient rules, AUTH required, a size
    /// limit, a POP window, bare LF refusal) was applied at the latest occurrence of
    /// `step`: `what` in words, kept as `policy: what` beside the fired faults.
    pub fn policy(&mut self, step: S, what: String) {
        let n = self
            .counts
            .iter()
            .find(|(s, _)| *s == step)
            .map_or(0, |(_, c)| *c);
        if self.kept < MAX_FIRED {
            self.kept += 1;
            self.fired.push((step, n, format!("policy: {what}")));
        }
    }
}

impl<S: StepName> Script<S> {
    /// The faults that fired since the last call, oldest first.
    pub fn take_fired(&mut self) -> Vec<FiredFault> {
        std::mem::take(&mut self.fired)
            .into_iter()
            .map(|(step, occurrence, action)| FiredFault {
                step: step.step_name().to_string(),
                occurrence,
                action,
            })
            .collect()
    }
}

/// A rule of a fault list that a fault breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultRule {
    #[error("probability {0} is not between 0 and 1")]
    Probability(f64),
    #[error("nth counts from 1")]
    NthZero,
    #[error("reply code {0} is not between 200 and 599")]
    ReplyCode(u16),
    #[error("throttle needs bytes_per_sec of at least 1")]
    ThrottleZero,
}

/// Why a fault list does not hold: which fault (1-based, and its step) and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("fault {number} (step {step}): {rule}")]
pub struct FaultError {
    /// The fault's place in its list, counted from 1.
    pub number: usize,
    /// The fault's step, as the scenario names it (`Debug` form).
    pub step: String,
    pub rule: FaultRule,
}

/// Checks a fault list: probabilities within 0..=1, nth at least 1, codes 200..=599.
pub fn validate<S: std::fmt::Debug>(faults: &[Fault<S>]) -> Result<(), FaultError> {
    for (i, f) in faults.iter().enumerate() {
        if let Some(rule) = broken_rule(f) {
            return Err(FaultError {
                number: i + 1,
                step: format!("{:?}", f.step),
                rule,
            });
        }
    }
    Ok(())
}

/// The first rule `f` breaks, if any.
fn broken_rule<S>(f: &Fault<S>) -> Option<FaultRule> {
    if let Some(p) = f.when.probability {
        if !(0.0..=1.0).contains(&p) || p.is_nan() {
            return Some(FaultRule::Probability(p));
        }
    }
    if f.when.nth == Some(0) {
        return Some(FaultRule::NthZero);
    }
    match &f.action {
        Action::Reply { code, .. } if !(200..=599).contains(code) => {
            Some(FaultRule::ReplyCode(*code))
        }
        Action::Throttle { bytes_per_sec: 0 } => Some(FaultRule::ThrottleZero),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum St {
        A,
        B,
    }

    fn fault(step: St, nth: Option<u32>, probability: Option<f64>) -> Fault<St> {
        Fault {
            step,
            when: When { nth, probability },
            action: Action::Drop,
        }
    }

    #[test]
    fn nth_and_every() {
        let mut s = Script::new(
            vec![fault(St::A, Some(2), None), fault(St::B, None, None)],
            1,
        );
        assert_eq!(s.at(St::A), None);
        assert_eq!(s.at(St::A), Some(Action::Drop));
        assert_eq!(s.at(St::A), None);
        assert_eq!(s.at(St::B), Some(Action::Drop));
        assert_eq!(s.at(St::B), Some(Action::Drop));
    }

    impl StepName for St {
        fn step_name(&self) -> &'static str {
            match self {
                St::A => "a",
                St::B => "b",
            }
        }
    }

    #[test]
    fn fired_faults_are_recorded_with_their_occurrence() {
        let mut s = Script::new(
            vec![fault(St::A, Some(2), None), fault(St::B, Some(2), None)],
            1,
        );
        s.at(St::A);
        s.at(St::A);
        s.at(St::B);
        let fired = s.take_fired();
        assert_eq!(
            fired,
            [FiredFault {
                step: "a".into(),
                occurrence: 2,
                action: "drop the connection".into()
            }]
        );
        assert!(s.take_fired().is_empty());
    }

    #[test]
    fn probability_is_repeatable_and_roughly_right() {
        let run = |seed| {
            let mut s = Script::new(vec![fault(St::A, None, Some(0.25))], seed);
            (0..4000).filter(|_| s.at(St::A).is_some()).count()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let n = run(7);
        assert!((800..1200).contains(&n), "{n}");
    }

    #[derive(Debug, Deserialize)]
    struct File {
        faults: Vec<Fault<String>>,
    }

    #[test]
    fn faults_read_from_toml_with_clear_errors() {
        let f: File = toml::from_str(
            "[[faults]]\nstep = \"rcpt\"\nnth = 2\naction = \"reply\"\ncode = 450\ntext = \"4.2.0 busy\"\n\n[[faults]]\nstep = \"data\"\naction = \"hang\"\n",
        )
        .expect("valid faults");
        assert_eq!(f.faults[0].when.nth, Some(2));
        assert_eq!(f.faults[1].action, Action::Hang);
        for (bad, says) in [
            ("step = \"x\"\naction = \"reply\"\ncode = 450", "needs text"),
            ("step = \"x\"\naction = \"hang\"\nms = 3", "takes no field"),
            ("step = \"x\"\naction = \"explode\"", "unknown action"),
            ("step = \"x\"\naction = \"drop\"\ncolour = 1", "colour"),
        ] {
            let e = toml::from_str::<File>(&format!("[[faults]]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn validation_names_the_fault() {
        let e = validate(&[fault(St::A, None, Some(1.5))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("fault 1") && e.contains("1.5"), "{e}");
        assert!(validate(&[fault(St::A, Some(0), None)]).is_err());
    }
}
