//! How each kind of parameter is written on the console, and the lexer that reads a
//! command line one parameter at a time in the form that parameter takes.
//!
//! Real consoles quote differently per parameter; with `--quoting` this one does too
//! (setting values in double quotes, addresses and user names never quoted, subjects
//! and file names in single quotes), so a harness must quote per parameter. Without
//! it every parameter takes SPEC §6's double quotes.

/// One way of writing a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `"a b"`, with `\"` and `\\` escaped inside; bare when nothing needs quoting.
    Double,
    /// `'a b'`, with a `'` inside written twice (`''`); bare when nothing needs it.
    Single,
    /// Never quoted: the word up to the next space, quotes being ordinary characters.
    Bare,
}

/// The forms of the console's parameters (`--quoting` or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoting {
    per_parameter: bool,
}

impl Quoting {
    pub fn new(per_parameter: bool) -> Quoting {
        Quoting { per_parameter }
    }

    /// Setting values and passwords: always double quotes.
    pub fn setting(&self) -> Form {
        Form::Double
    }

    /// E-mail addresses (recipients, notification addresses, a user's address) and
    /// device user names.
    pub fn address(&self) -> Form {
        if self.per_parameter {
            Form::Bare
        } else {
            Form::Double
        }
    }

    /// A scan's subject and file name.
    pub fn text(&self) -> Form {
        if self.per_parameter {
            Form::Single
        } else {
            Form::Double
        }
    }
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Writes `value` in `form` (a [`Form::Bare`] value is written as it is).
pub fn write(form: Form, value: &str) -> String {
    match form {
        Form::Bare => value.to_string(),
        Form::Double => {
            let needs =
                value.is_empty() || value.chars().any(|c| is_space(c) || c == '"' || c == '\\');
            if !needs {
                return value.to_string();
            }
            let mut s = String::from("\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    s.push('\\');
                }
                s.push(c);
            }
            s.push('"');
            s
        }
        Form::Single => {
            let needs = value.is_empty()
                || value.starts_with('"')
                || value.chars().any(|c| is_space(c) || c == '\'');
            if !needs {
                return value.to_string();
            }
            format!("'{}'", value.replace('\'', "''"))
        }
    }
}

/// Reads a command line one parameter at a time.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    pub fn new(line: &'a str) -> Lexer<'a> {
        Lexer { rest: line }
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start_matches(is_space);
    }

    /// Whether nothing but spaces is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_space();
        self.rest.is_empty()
    }

    /// The next word, bare (command words, keywords, numbers).
    pub fn keyword(&mut self) -> Option<&'a str> {
        self.skip_space();
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.find(is_space).unwrap_or(self.rest.len());
        let (w, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(w)
    }

    /// The next parameter in `form`; `Ok(None)` at the end of the line.
    pub fn param(&mut self, form: Form) -> Result<Option<String>, String> {
        self.skip_space();
        if self.rest.is_empty() {
            return Ok(None);
        }
        let open = match form {
            Form::Double => '"',
            Form::Single => '\'',
            Form::Bare => return Ok(self.keyword().map(str::to_string)),
        };
        if !self.rest.starts_with(open) {
            let w = self.keyword().unwrap_or_default();
            if form == Form::Double && w.contains('"') {
                return Err(format!(
                    "a double quote inside the word {w:?}: quote the whole value"
                ));
            }
            return Ok(Some(w.to_string()));
        }
        let mut value = String::new();
        let mut chars = self.rest.char_indices().skip(1).peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match (form, c) {
                (Form::Double, '\\') => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => value.push(e),
                    Some((_, e)) => return Err(format!("unknown escape \\{e} inside quotes")),
                    None => return Err("a backslash ends the line".into()),
                },
                (Form::Single, '\'') if chars.peek().map(|(_, c)| *c) == Some('\'') => {
                    chars.next();
                    value.push('\'');
                }
                (_, c) if c == open => {
                    end = Some(i + c.len_utf8());
                    break;
                }
                (_, c) => value.push(c),
            }
        }
        let Some(end) = end else {
            return Err(format!("unterminated {open}quote{open}"));
        };
        self.rest = &self.rest[end..];
        if self.rest.chars().next().is_some_and(|c| !is_space(c)) {
            return Err(format!("text right after the closing {open}"));
        }
        Ok(Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_round_trips() {
        let values = [
            "",
            "plain",
            "a b",
            "say \"hi\"",
            "back\\slash",
            "it's",
            "'lead",
            "\ttab",
            "ユーザー 名",
        ];
        for form in [Form::Double, Form::Single] {
            for v in values {
                let line = format!("x {} y", write(form, v));
                let mut l = Lexer::new(&line);
                assert_eq!(l.keyword(), Some("x"));
                assert_eq!(l.param(form).unwrap().as_deref(), Some(v), "{line}");
                assert_eq!(l.keyword(), Some("y"), "{line}");
                assert!(l.at_end());
            }
        }
    }

    #[test]
    fn bare_words_keep_their_quotes_and_bad_quoting_is_an_error() {
        let mut l = Lexer::new("a\"b 'c' \"d\"");
        assert_eq!(l.param(Form::Bare).unwrap().as_deref(), Some("a\"b"));
        assert_eq!(l.param(Form::Bare).unwrap().as_deref(), Some("'c'"));
        assert_eq!(l.param(Form::Single).unwrap().as_deref(), Some("\"d\""));
        assert_eq!(l.param(Form::Double).unwrap(), None);
        for bad in ["\"open", "\"a\"b", "a\"b", "\"\\n\"", "\"a\\"] {
            assert!(Lexer::new(bad).param(Form::Double).is_err(), "{bad}");
        }
        assert!(Lexer::new("'open").param(Form::Single).is_err());
        assert_eq!(
            Lexer::new("'it''s'")
                .param(Form::Single)
                .unwrap()
                .as_deref(),
            Some("it's")
        );
    }
}
