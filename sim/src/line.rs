//! The console's byte stream cut into lines, and the check every dialect makes of a
//! line before it reads it (UTF-8, length, no control characters). The transports
//! cut; the dialects check and answer; so both stand on this module.

/// Longest line the console accepts, in bytes (the end of line not counted).
pub const MAX_LINE: usize = 4096;

/// One line cut from the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// A line longer than [`MAX_LINE`]: its length, the bytes themselves dropped.
    TooLong(usize),
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Cuts a byte stream into lines ending in LF (a CR before it is dropped), capping
/// their length so that a peer sending no newline cannot grow memory without bound.
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
    dropped: usize,
}

impl LineBuffer {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Line> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let had_cr = self.buf.last() == Some(&b'\r');
                if had_cr {
                    self.buf.pop();
                }
                let len = self.dropped + self.buf.len();
                if len > MAX_LINE {
                    out.push(Line::TooLong(len));
                } else {
                    match String::from_utf8(std::mem::take(&mut self.buf)) {
                        Ok(s) => out.push(Line::Text(s)),
                        Err(_) => out.push(Line::NotUtf8),
                    }
                }
                self.buf.clear();
                self.dropped = 0;
            } else if self.buf.len() > MAX_LINE {
                // Keep MAX_LINE bytes and one for a CR; count the rest, keep none.
                self.dropped += self.buf.len();
                self.buf.clear();
                self.buf.push(b);
            } else {
                self.buf.push(b);
            }
        }
        out
    }
}

/// Why the console ignores a line: the detail of the dialect's error line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("line of {0} bytes is longer than {max} bytes; ignored", max = MAX_LINE)]
    TooLong(usize),
    #[error("line is not UTF-8 text; ignored")]
    NotUtf8,
    #[error("line contains the control character {0:?}; ignored")]
    Control(char),
}

/// The text of a line, or why the console ignores it (not UTF-8, too long, a
/// control character).
pub fn line_text(line: Line) -> Result<String, LineError> {
    let text = match line {
        Line::Text(t) => t,
        Line::TooLong(n) => return Err(LineError::TooLong(n)),
        Line::NotUtf8 => return Err(LineError::NotUtf8),
    };
    if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(LineError::Control(c));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_capped() {
        let mut lb = LineBuffer::default();
        assert_eq!(lb.push(b"get a\r\nget"), vec![Line::Text("get a".into())]);
        assert_eq!(lb.push(b" b\n"), vec![Line::Text("get b".into())]);
        let long = vec![b'x'; MAX_LINE * 3];
        assert!(lb.push(&long).is_empty());
        assert_eq!(lb.push(b"\n"), vec![Line::TooLong(MAX_LINE * 3)]);
        assert_eq!(lb.push(b"\xff\xfe\n"), vec![Line::NotUtf8]);
        let exact = vec![b'y'; MAX_LINE];
        let mut l = exact.clone();
        l.extend_from_slice(b"\r\n");
        assert_eq!(
            lb.push(&l),
            vec![Line::Text(String::from_utf8(exact).unwrap())]
        );
    }
}
