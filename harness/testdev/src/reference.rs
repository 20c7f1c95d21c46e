//! The client side of SPEC §6, the reference protocol the engine speaks on its
//! standard input and output: reading its lines (status, data, `EVENT`) into values,
//! and writing requests. Pure functions, no I/O, so that every translation the
//! console makes starts from a parsed answer and never from text matching.

pub use mfp_sim::console::quote;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// `ERR class detail`.
    Err {
        class: String,
        detail: String,
    },
}

/// A whole answer: its data lines and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub data: Vec<String>,
    pub status: Status,
}

impl Reply {
    /// An answer the front end makes up when the engine cannot give one.
    pub fn failed(class: &str, detail: impl Into<String>) -> Reply {
        Reply {
            data: Vec::new(),
            status: Status::Err {
                class: class.into(),
                detail: detail.into(),
            },
        }
    }
}

/// The end of a job as the engine tells it (`EVENT JOB n done|failed CLASS detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    /// The engine's job number.
    pub id: u64,
    /// `None`: done; else the SPEC §5 class and the detail.
    pub error: Option<(String, String)>,
}

/// One line from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Event(JobEnd),
    /// An `EVENT` line this client cannot read (kept for the diagnostics).
    OtherEvent(String),
    Status(Status),
    Data(String),
}

fn split_word(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    }
}

/// Reads one engine line.
pub fn classify(line: &str) -> Line {
    if line == "OK" {
        return Line::Status(Status::Ok);
    }
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (class, detail) = split_word(rest);
        return Line::Status(Status::Err {
            class: class.to_string(),
            detail: detail.to_string(),
        });
    }
    if let Some(rest) = line.strip_prefix("EVENT ") {
        return match parse_event(rest) {
            Some(end) => Line::Event(end),
            None => Line::OtherEvent(line.to_string()),
        };
    }
    Line::Data(line.to_string())
}

fn parse_event(rest: &str) -> Option<JobEnd> {
    let rest = rest.strip_prefix("JOB ")?;
    let (id, rest) = split_word(rest);
    let id = id.parse().ok()?;
    let (state, rest) = split_word(rest);
    match state {
        "done" => Some(JobEnd { id, error: None }),
        "failed" => {
            let (class, detail) = split_word(rest);
            if class.is_empty() {
                return None;
            }
            Some(JobEnd {
                id,
                error: Some((class.to_string(), detail.to_string())),
            })
        }
        _ => None,
    }
}

/// The number in a trigger's `JOB n` answer.
pub fn job_started(data: &[String]) -> Option<u64> {
    data.iter()
        .find_map(|l| l.strip_prefix("JOB ").and_then(|n| n.trim().parse().ok()))
}

/// One recipient of a job, as `job n` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub accepted: bool,
    /// The server's reply to a rejected recipient.
    pub reply: String,
}

/// What `job n` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    pub error: Option<(String, String)>,
    pub recipients: Vec<Recipient>,
}

/// Reads the data lines of `job n`.
pub fn parse_job(data: &[String]) -> Result<JobReport, String> {
    let mut lines = data.iter();
    let first = lines.next().ok_or("the engine's job answer is empty")?;
    let rest = first
        .strip_prefix("JOB ")
        .ok_or_else(|| format!("the engine's job line {first:?} is not JOB n STATE"))?;
    let (_, rest) = split_word(rest);
    let (state, rest) = split_word(rest);
    let error = if rest.is_empty() {
        None
    } else {
        let (class, detail) = split_word(rest);
        Some((class.to_string(), detail.to_string()))
    };
    let mut recipients = Vec::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("RCPT ") else {
            return Err(format!("the engine's recipient line {l:?} is not RCPT …"));
        };
        let (address, rest) = split_word(rest);
        let (verdict, reply) = split_word(rest);
        recipients.push(Recipient {
            address: address.to_string(),
            accepted: verdict == "accepted",
            reply: reply.to_string(),
        });
    }
    Ok(JobReport {
        state: state.to_string(),
        error,
        recipients,
    })
}

/// Reads a `KEY=VALUE` line of `get` or `show` (the value unquoted).
pub fn parse_value(line: &str) -> Result<(String, String), String> {
    let (key, quoted) = line
        .split_once('=')
        .ok_or_else(|| format!("the engine's value line {line:?} is not KEY=VALUE"))?;
    let words = mfp_sim::console::split_words(quoted)
        .map_err(|e| format!("the engine's value {quoted:?}: {e}"))?;
    match words.as_slice() {
        [] => Ok((key.to_string(), String::new())),
        [v] => Ok((key.to_string(), v.clone())),
        _ => Err(format!("the engine's value {quoted:?} is not one word")),
    }
}

/// The value of the engine's `clock=` line.
pub fn parse_clock(data: &[String]) -> Option<&str> {
    data.iter().find_map(|l| l.strip_prefix("clock="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert_eq!(classify("OK"), Line::Status(Status::Ok));
        assert_eq!(
            classify("ERR config smtp.port: \"x\" refused"),
            Line::Status(Status::Err {
                class: "config".into(),
                detail: "smtp.port: \"x\" refused".into()
            })
        );
        assert_eq!(
            classify("EVENT JOB 3 failed rejected 554 5.7.1 no"),
            Line::Event(JobEnd {
                id: 3,
                error: Some(("rejected".into(), "554 5.7.1 no".into()))
            })
        );
        assert_eq!(
            classify("EVENT JOB 4 done"),
            Line::Event(JobEnd { id: 4, error: None })
        );
        assert!(matches!(classify("EVENT JOB x done"), Line::OtherEvent(_)));
        assert_eq!(classify("JOB 5"), Line::Data("JOB 5".into()));
    }

    #[test]
    fn job_answers_are_read() {
        let data: Vec<String> = [
            "JOB 7 failed rejected 550 5.1.1 all recipients refused",
            "RCPT a@b.test accepted",
            "RCPT c@d.test rejected 550 5.1.1 no such user",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let j = parse_job(&data).unwrap();
        assert_eq!(j.state, "failed");
        assert_eq!(
            j.error,
            Some(("rejected".into(), "550 5.1.1 all recipients refused".into()))
        );
        assert_eq!(j.recipients.len(), 2);
        assert!(j.recipients[0].accepted);
        assert_eq!(j.recipients[1].reply, "550 5.1.1 no such user");
        assert!(parse_job(&["nonsense".to_string()]).is_err());
        assert_eq!(job_started(&["JOB 12".to_string()]), Some(12));
    }

    #[test]
    fn values_are_unquoted() {
        assert_eq!(
            parse_value("smtp.auth.user=\"a \\\"b\\\"\"").unwrap(),
            ("smtp.auth.user".into(), "a \"b\"".into())
        );
        assert_eq!(parse_value("smtp.server=\"\"").unwrap().1, String::new());
        assert!(parse_value("novalue").is_err());
    }
}
