//! The console's keyboard: bytes as the client types them, turned into keys (CR,
//! LF and CR LF all one Enter; escape sequences such as arrow keys dropped), and the
//! line editor that collects a line, echoes it as a terminal in cooked mode would
//! (`--echo`), and erases with Backspace, Ctrl-U and Ctrl-C.
//!
//! No I/O: echo goes into the caller's output buffer.

use mfp_sim::console::MAX_LINE;

/// One key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// CR, LF, or CR LF.
    Enter,
    /// A printable byte, a tab or a byte of a UTF-8 character.
    Byte(u8),
    /// BS or DEL.
    Backspace,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-U.
    KillLine,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Esc {
    #[default]
    None,
    Start,
    Csi,
    Ss3,
}

/// Turns bytes into keys.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    last_cr: bool,
    esc: Esc,
}

impl KeyDecoder {
    /// The key `b` completes, if any.
    pub fn key(&mut self, b: u8) -> Option<Key> {
        let after_cr = std::mem::replace(&mut self.last_cr, b == b'\r');
        match self.esc {
            Esc::None => {}
            Esc::Start => {
                self.esc = match b {
                    b'[' => Esc::Csi,
                    b'O' => Esc::Ss3,
                    _ => Esc::None,
                };
                return None;
            }
            Esc::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = Esc::None;
                }
                return None;
            }
            Esc::Ss3 => {
                self.esc = Esc::None;
                return None;
            }
        }
        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => Some(Key::Enter),
            0x1b => {
                self.esc = Esc::Start;
                None
            }
            0x03 => Some(Key::Interrupt),
            0x15 => Some(Key::KillLine),
            0x08 | 0x7f => Some(Key::Backspace),
            b'\t' => Some(Key::Byte(b)),
            0..=0x1f => None,
            _ => Some(Key::Byte(b)),
        }
    }
}

/// What the editor echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Every character and the line end.
    Shown,
    /// Only the line end (a password).
    Hidden,
    /// Nothing.
    Off,
}

/// What a key did to the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entered {
    /// Enter: the line, or why it cannot be read (too long, not UTF-8).
    Line(Result<String, String>),
    /// Ctrl-C: the line is abandoned.
    Interrupted,
}

/// The line being typed.
#[derive(Debug, Default)]
pub struct Editor {
    buf: Vec<u8>,
    /// Bytes typed past [`MAX_LINE`], dropped.
    overflow: usize,
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

impl Editor {
    /// Takes one key; echoes into `out`.
    pub fn feed(&mut self, key: Key, echo: Echo, out: &mut Vec<u8>) -> Option<Entered> {
        match key {
            Key::Enter => {
                if echo != Echo::Off {
                    push_str(out, "\r\n");
                }
                let buf = std::mem::take(&mut self.buf);
                let overflow = std::mem::take(&mut self.overflow);
                if overflow > 0 {
                    return Some(Entered::Line(Err(format!(
                        "line of {} bytes is longer than {MAX_LINE} bytes; ignored",
                        buf.len() + overflow
                    ))));
                }
                Some(Entered::Line(
                    String::from_utf8(buf)
                        .map_err(|_| "line is not UTF-8 text; ignored".to_string()),
                ))
            }
            Key::Byte(b) => {
                if self.buf.len() >= MAX_LINE {
                    self.overflow += 1;
                } else {
                    self.buf.push(b);
                    if echo == Echo::Shown {
                        out.push(b);
                    }
                }
                None
            }
            Key::Backspace => {
                if self.overflow > 0 {
                    self.overflow -= 1;
                } else if self.pop_char() && echo == Echo::Shown {
                    push_str(out, "\x08 \x08");
                }
                None
            }
            Key::KillLine => {
                while self.pop_char() {
                    if echo == Echo::Shown {
                        push_str(out, "\x08 \x08");
                    }
                }
                self.overflow = 0;
                None
            }
            Key::Interrupt => {
                if echo != Echo::Off {
                    push_str(out, "^C\r\n");
                }
                self.clear();
                Some(Entered::Interrupted)
            }
        }
    }

    /// Removes the last character (all its UTF-8 bytes); false when empty.
    fn pop_char(&mut self) -> bool {
        while let Some(b) = self.buf.pop() {
            if b & 0xc0 != 0x80 {
                return true;
            }
        }
        false
    }

    /// What has been typed of the line so far (for a redraw).
    pub fn partial(&self) -> &[u8] {
        &self.buf
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.overflow = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = KeyDecoder::default();
        bytes.iter().filter_map(|b| d.key(*b)).collect()
    }

    #[test]
    fn line_ends_and_escapes() {
        assert_eq!(
            keys(b"a\r\nb\nc\r\r\n"),
            vec![
                Key::Byte(b'a'),
                Key::Enter,
                Key::Byte(b'b'),
                Key::Enter,
                Key::Byte(b'c'),
                Key::Enter,
                Key::Enter
            ]
        );
        assert_eq!(
            keys(b"\x1b[A\x1b[1;5Cx\x1bOPy\x00"),
            vec![Key::Byte(b'x'), Key::Byte(b'y')]
        );
        assert_eq!(
            keys(b"\x7f\x08\x03\x15"),
            vec![
                Key::Backspace,
                Key::Backspace,
                Key::Interrupt,
                Key::KillLine
            ]
        );
    }

    fn type_in(e: &mut Editor, bytes: &[u8], echo: Echo, out: &mut Vec<u8>) -> Vec<Entered> {
        let mut d = KeyDecoder::default();
        bytes
            .iter()
            .filter_map(|b| d.key(*b))
            .filter_map(|k| e.feed(k, echo, out))
            .collect()
    }

    #[test]
    fn editing_and_echo() {
        let mut e = Editor::default();
        let mut out = Vec::new();
        let got = type_in(
            &mut e,
            "shox\x7fw ü\x7fé\r\n".as_bytes(),
            Echo::Shown,
            &mut out,
        );
        assert_eq!(got, vec![Entered::Line(Ok("show é".into()))]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "shox\x08 \x08w ü\x08 \x08é\r\n"
        );
        let mut out = Vec::new();
        let got = type_in(&mut e, b"secret\r", Echo::Hidden, &mut out);
        assert_eq!(got, vec![Entered::Line(Ok("secret".into()))]);
        assert_eq!(out, b"\r\n");
        let got = type_in(&mut e, b"abc\x03", Echo::Off, &mut Vec::new());
        assert_eq!(got, vec![Entered::Interrupted]);
        assert!(e.partial().is_empty());
    }

    #[test]
    fn long_and_binary_lines_are_refused() {
        let mut e = Editor::default();
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.push(b'\n');
        let got = type_in(&mut e, &long, Echo::Off, &mut Vec::new());
        assert!(matches!(&got[..], [Entered::Line(Err(m))] if m.contains("longer")));
        let got = type_in(&mut e, b"\xff\xfe\n", Echo::Off, &mut Vec::new());
        assert!(matches!(&got[..], [Entered::Line(Err(m))] if m.contains("UTF-8")));
        let got = type_in(&mut e, b"ok\n", Echo::Off, &mut Vec::new());
        assert_eq!(got, vec![Entered::Line(Ok("ok".into()))]);
    }
}
