//! How text is written on a console line, shared by every layer that puts text there:
//! the value syntax of SPEC §1 and §6 ([`quote`] and [`split_words`]), and
//! [`printable`] for text that came from a peer (a server's reply, a PEM line).
//!
//! It sits at the bottom of the module graph and imports nothing from the crate, so
//! that the device, the dialects and the protocol clients can all use it without
//! knowing each other.

/// Quotes a value for an answer line: bare when it needs no quoting, else in double
/// quotes with `"` and `\` escaped (SPEC §6).
pub fn quote(value: &str) -> String {
    let needs = value.is_empty()
        || value
            .chars()
            .any(|c| c == ' ' || c == '"' || c == '\\' || c == '\t');
    if !needs {
        return value.to_string();
    }
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Why a line cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("unknown escape \\{0} inside quotes")]
    UnknownEscape(char),
    #[error("a backslash ends the line")]
    BackslashAtEnd,
    #[error("unterminated double quote")]
    Unterminated,
}

/// Splits a command line into words at spaces. Inside a word, double-quoted parts
/// may hold spaces, with `\"` and `\\` escaped (`set k "a b"`, `apply k="a b"`, `""`).
pub fn split_words(line: &str) -> Result<Vec<String>, QuoteError> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            match c {
                ' ' | '\t' => break,
                '"' => {
                    chars.next();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' => match chars.next() {
                                Some(e @ ('"' | '\\')) => word.push(e),
                                Some(e) => return Err(QuoteError::UnknownEscape(e)),
                                None => return Err(QuoteError::BackslashAtEnd),
                            },
                            c => word.push(c),
                        }
                    }
                    if !closed {
                        return Err(QuoteError::Unterminated);
                    }
                }
                c => {
                    word.push(c);
                    chars.next();
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// Makes peer text safe for one console line: control characters become `?`, and
/// it is cut at 300 characters.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_quotes_round_trip() {
        for v in ["", "a b", "say \"hi\"", "back\\slash", "plain"] {
            let line = format!("set k {}", quote(v));
            let w = split_words(&line).unwrap();
            assert_eq!(w, vec!["set".to_string(), "k".into(), v.into()], "{line}");
        }
        assert_eq!(
            split_words("set k \"open").unwrap_err().to_string(),
            "unterminated double quote"
        );
        assert_eq!(
            split_words("set k \"a\\qb\"").unwrap_err().to_string(),
            "unknown escape \\q inside quotes"
        );
        assert_eq!(
            split_words("apply a=\"x y\" b=\"\"").unwrap(),
            vec!["apply", "a=x y", "b="]
        );
    }
}
