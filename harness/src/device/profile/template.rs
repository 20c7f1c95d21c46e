//! Command templates: how one operation is typed on a device's console. A template is
//! one line (or several lines pasted at once, like `cert import` and its PEM), or a
//! list of steps, each a line to send and what to wait for after it — a
//! confirmation question to answer, a configure mode to enter and leave. `{name}` in a
//! step is replaced by a parameter, quoted as the profile says for that parameter.

use regex::Regex;

/// How a value is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Values with spaces, quotes or backslashes (or empty) in double quotes, `\"` and
    /// `\\` escaped (SPEC §6).
    Double,
    /// The same with single quotes, `\'` and `\\` escaped.
    Single,
    /// Sent as they are.
    None,
}

impl Quoting {
    pub fn parse(s: &str) -> Option<Quoting> {
        match s {
            "double" => Some(Quoting::Double),
            "single" => Some(Quoting::Single),
            "none" => Some(Quoting::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quoting::Double => "double",
            Quoting::Single => "single",
            Quoting::None => "none",
        }
    }

    fn mark(self) -> Option<char> {
        match self {
            Quoting::Double => Some('"'),
            Quoting::Single => Some('\''),
            Quoting::None => None,
        }
    }

    /// Quotes one value.
    pub fn quote(self, value: &str) -> String {
        let Some(q) = self.mark() else {
            return value.to_string();
        };
        let needs = value.is_empty()
            || value
                .chars()
                .any(|c| c == ' ' || c == '"' || c == '\'' || c == '\\' || c == '\t');
        if !needs {
            return value.to_string();
        }
        let mut s = String::from(q);
        for c in value.chars() {
            if c == q || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push(q);
        s
    }

    /// Reads back a value written this way (a value shown without quotes is taken
    /// as it is).
    pub fn unquote(self, value: &str) -> String {
        let Some(q) = self.mark() else {
            return value.to_string();
        };
        let Some(inner) = value
            .strip_prefix(q)
            .and_then(|v| v.strip_suffix(q))
            .filter(|_| value.len() >= 2)
        else {
            return value.to_string();
        };
        let mut s = String::new();
        let mut esc = false;
        for c in inner.chars() {
            if esc {
                s.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                s.push(c);
            }
        }
        s
    }
}

/// One step of a template.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to type (with `{name}` placeholders); `None`: only wait.
    pub send: Option<String>,
    /// What to wait for after sending, instead of the end of an answer.
    pub expect: Option<Regex>,
    /// Sent without a line ending (a key press).
    pub raw: bool,
    /// `Some(true)`: all lines sent at once, one answer read; `Some(false)`: each
    /// line answered before the next; `None`: the default (see [`Step::each_line`]).
    pub paste: Option<bool>,
    /// How long this step may take, instead of `[timeouts] command_ms`.
    pub timeout_ms: Option<u64>,
    /// The device reboots after this step; the driver waits for it to come back.
    pub reboot: bool,
}

impl Step {
    /// Whether the lines of this step are typed one by one, each answered before the
    /// next: when the profile says so, or by default when the step holds `{pairs}`
    /// and `[apply] separator` is a line break (one setting a line, as in a configure
    /// mode). Otherwise the step's lines are sent at once (a PEM paste).
    pub fn each_line(&self, apply_separator: &str) -> bool {
        match self.paste {
            Some(p) => !p,
            None => {
                apply_separator.contains('\n')
                    && self.send.as_deref().is_some_and(|s| s.contains("{pairs}"))
            }
        }
    }
}

/// How one operation is typed.
#[derive(Debug, Clone)]
pub struct Template {
    pub steps: Vec<Step>,
}

impl Template {
    /// Every placeholder name the template's steps use.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in self.steps.iter().filter_map(|s| s.send.as_deref()) {
            for name in placeholders(s) {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// The template as the profile wrote it, for summaries and messages.
    pub fn describe(&self) -> String {
        if let [Step {
            send: Some(s),
            expect: None,
            raw: false,
            paste: None,
            timeout_ms: None,
            reboot: false,
        }] = self.steps.as_slice()
        {
            return format!("{s:?}");
        }
        let parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                let mut p = Vec::new();
                if let Some(t) = &s.send {
                    p.push(format!(
                        "send {t:?}{}",
                        if s.raw { " (no line end)" } else { "" }
                    ));
                }
                if let Some(e) = &s.expect {
                    p.push(format!("expect /{}/", e.as_str()));
                }
                if s.reboot {
                    p.push("the device reboots".into());
                }
                p.join(", ")
            })
            .collect();
        format!("[{}]", parts.join("; "))
    }
}

/// Leaves out each optional part of `template` — written `{[ … ]}` — whose
/// placeholders are all empty (`is_empty` says which are), and keeps the text of the
/// others without their brackets: `user {name}{[ email {address}]}` is `user bob` for
/// an empty address.
pub fn optional_parts(template: &str, is_empty: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{[") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("]}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = &after[..close];
        let names = placeholders(inner);
        if names.is_empty() || !names.iter().all(|n| is_empty(n)) {
            out.push_str(inner);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The `{name}` placeholders in `template`, in order.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            // Not a placeholder (`{[` opens an optional part): look on after the `{`.
            rest = after;
            continue;
        }
        if !out.iter().any(|n: &String| n == name) {
            out.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    out
}

/// Replaces each `{name}` in `template` once, left to right, with what `value` gives;
/// unknown names stay as they are. Values are never scanned again.
pub fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match value(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        for q in [Quoting::Double, Quoting::Single] {
            for v in ["", "a b", "it's", "say \"hi\"", "back\\slash", "plain"] {
                assert_eq!(q.unquote(&q.quote(v)), v, "{q:?} {v:?}");
            }
        }
        assert_eq!(Quoting::Double.quote("a b"), "\"a b\"");
        assert_eq!(Quoting::Single.quote("it's"), "'it\\'s'");
        assert_eq!(Quoting::None.quote("a b"), "a b");
        assert_eq!(Quoting::Double.unquote("\""), "\"");
    }

    #[test]
    fn placeholders_are_found_once_each() {
        assert_eq!(
            placeholders("user add {name} {password} {name}"),
            ["name", "password"]
        );
        assert!(placeholders("no { placeholder } here {}").is_empty());
    }

    #[test]
    fn optional_parts_go_when_empty() {
        let t = "username {name} password {password}{[ email {address}]}";
        assert_eq!(
            optional_parts(t, |n| n == "address"),
            "username {name} password {password}"
        );
        assert_eq!(
            optional_parts(t, |_| false),
            "username {name} password {password} email {address}"
        );
        assert_eq!(placeholders(t), ["name", "password", "address"]);
    }

    #[test]
    fn fill_leaves_unknown_names_and_never_rescans() {
        let s = fill("a {x} {y} {", |n| (n == "x").then(|| "{y}".to_string()));
        assert_eq!(s, "a {y} {y} {");
    }
}
