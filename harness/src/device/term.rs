//! What a device's console shows, as a terminal would show it: the bytes a device
//! writes to its console are not the lines a person reads. Real consoles colour their
//! prompts and errors (ANSI SGR), redraw a line after a pager (`\r` and spaces, or
//! erase-in-line), echo a typed backspace as `\b \b`, ring the bell. This module turns
//! the byte stream into the lines a terminal would display — complete lines, and the
//! line being written that has no end yet (a prompt) — without I/O, so the driver and
//! `hil profile probe` read the same text and no escape byte reaches a report.
//!
//! The model is one line of a terminal: a buffer and a cursor column. Printable bytes
//! overwrite at the cursor; CR returns the cursor to column 0; BS steps back; `ESC [ K`
//! erases to the end of the line (`1 K` to the cursor, `2 K` all of it); `ESC [ n G`,
//! `C` and `D` move the cursor; every other escape sequence (colours, cursor keys,
//! window titles) is removed; other control bytes but TAB are dropped. LF ends the
//! line. A line whose text was overwritten or erased loses the trailing blanks the
//! redraw left (a terminal shows them as nothing).

/// Longest line kept; what a device writes beyond it on one line is dropped.
pub const MAX_LINE: usize = 64 * 1024;

/// Where the parser is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// After `ESC [`: parameter and intermediate bytes until a final byte.
    Csi,
    /// After `ESC ]` (operating system command): until BEL or `ESC \`.
    Osc,
    /// An ESC inside an OSC: a `\` ends it.
    OscEnd,
    /// After `ESC (`, `ESC )` and the like: one more byte names a character set.
    Charset,
}

/// How a [`Term`] treats escape sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ansi {
    /// Interpret and remove them (what a terminal does).
    Strip,
    /// Keep them in the text (for a console whose words need them; the log shows
    /// them as `\x1b`).
    Keep,
}

/// A terminal line: bytes in, displayed lines out.
#[derive(Debug, Clone)]
pub struct Term {
    ansi: Ansi,
    /// The console's character encoding (lines are kept as bytes and decoded when
    /// shown; the control bytes every ASCII-compatible encoding shares are handled
    /// before).
    encoding: &'static encoding_rs::Encoding,
    line: Vec<u8>,
    col: usize,
    esc: Esc,
    csi: Vec<u8>,
    /// The line was redrawn (CR before more text, BS, an erase): trailing blanks are
    /// leftovers.
    redrawn: bool,
    /// Escape sequences were seen since [`Term::take_escapes`].
    escapes: bool,
    /// A CR was the last byte: CR LF ends a line without a redraw.
    after_cr: bool,
    /// A CR ends a line (a console whose lines end in CR alone); CR LF is one end.
    cr_ends_line: bool,
}

impl Term {
    pub fn new(ansi: Ansi) -> Term {
        Term::with_encoding(ansi, encoding_rs::UTF_8)
    }

    /// A terminal whose lines are text in `encoding` (Shift_JIS, EUC-JP, …).
    pub fn with_encoding(ansi: Ansi, encoding: &'static encoding_rs::Encoding) -> Term {
        Term {
            ansi,
            encoding,
            line: Vec::new(),
            col: 0,
            esc: Esc::None,
            csi: Vec::new(),
            redrawn: false,
            escapes: false,
            after_cr: false,
            cr_ends_line: false,
        }
    }

    /// A terminal on which a CR ends a line (CR LF being one end), for a console
    /// whose lines end in CR alone; a redraw by CR is then not seen as one.
    pub fn cr_ends_lines(mut self) -> Term {
        self.cr_ends_line = true;
        self
    }

    /// Feeds bytes; returns the lines they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if let Some(l) = self.byte(b) {
                out.push(l);
            }
        }
        out
    }

    /// The line being written, not ended yet (a prompt, a pager's `--More--`), as
    /// displayed; empty when the last byte ended a line.
    pub fn partial(&self) -> String {
        self.encoding
            .decode_without_bom_handling(&self.line)
            .0
            .into_owned()
    }

    /// Whether escape sequences were seen since the last call.
    pub fn take_escapes(&mut self) -> bool {
        std::mem::take(&mut self.escapes)
    }

    fn byte(&mut self, b: u8) -> Option<String> {
        if self.ansi == Ansi::Strip && self.esc != Esc::None {
            self.escape_byte(b);
            return None;
        }
        let after_cr = std::mem::take(&mut self.after_cr);
        match b {
            // A LF right after a CR that ended the line is the same line end.
            b'\n' if after_cr && self.cr_ends_line => {}
            b'\n' => return Some(self.end_line()),
            b'\r' if self.cr_ends_line => {
                self.after_cr = true;
                return Some(self.end_line());
            }
            b'\r' => {
                self.col = 0;
                self.after_cr = true;
            }
            0x1b if self.ansi == Ansi::Strip => {
                self.escapes = true;
                self.esc = Esc::Start;
            }
            0x1b => {
                self.escapes = true;
                self.put(b, after_cr);
            }
            0x08 => {
                self.col = self.col.saturating_sub(1);
                self.redrawn = true;
            }
            b'\t' => self.put(b, after_cr),
            0..=0x1f | 0x7f => {}
            _ => self.put(b, after_cr),
        }
        None
    }

    /// Writes a displayed byte at the cursor.
    fn put(&mut self, b: u8, after_cr: bool) {
        if after_cr && !self.line.is_empty() {
            // Text after a CR overwrites the line: a redraw.
            self.redrawn = true;
        }
        if self.col < self.line.len() {
            self.line[self.col] = b;
        } else if self.line.len() < MAX_LINE {
            while self.line.len() < self.col {
                self.line.push(b' ');
            }
            self.line.push(b);
        } else {
            return;
        }
        self.col += 1;
    }

    fn end_line(&mut self) -> String {
        let mut text = self
            .encoding
            .decode_without_bom_handling(&self.line)
            .0
            .into_owned();
        if self.redrawn {
            text.truncate(text.trim_end().len());
        }
        self.line.clear();
        self.col = 0;
        self.redrawn = false;
        text
    }

    fn escape_byte(&mut self, b: u8) {
        self.esc = match (self.esc, b) {
            // A new ESC restarts whatever sequence was open.
            (Esc::Start | Esc::Csi | Esc::Charset, 0x1b) => Esc::Start,
            (Esc::Start, b'[') => {
                self.csi.clear();
                Esc::Csi
            }
            (Esc::Start, b']') => Esc::Osc,
            (Esc::Start, b'(' | b')' | b'*' | b'+' | b'#' | b'%') => Esc::Charset,
            (Esc::Start, _) => Esc::None,
            (Esc::Csi, 0x40..=0x7e) => {
                self.csi_final(b);
                Esc::None
            }
            (Esc::Csi, _) => {
                if self.csi.len() < 32 {
                    self.csi.push(b);
                }
                Esc::Csi
            }
            (Esc::Osc, 0x07) => Esc::None,
            (Esc::Osc, 0x1b) => Esc::OscEnd,
            (Esc::Osc, _) => Esc::Osc,
            (Esc::OscEnd, b'\\') => Esc::None,
            (Esc::OscEnd, _) => Esc::Osc,
            (Esc::Charset, _) => Esc::None,
            (Esc::None, _) => Esc::None,
        };
    }

    /// The CSI sequences that change what a line shows; the rest only colour it.
    fn csi_final(&mut self, f: u8) {
        let params = String::from_utf8_lossy(&self.csi).into_owned();
        let n = |default: usize| -> usize {
            params
                .split(';')
                .next()
                .and_then(|p| p.trim_start_matches('?').parse::<usize>().ok())
                .unwrap_or(default)
        };
        match f {
            b'K' => {
                match n(0) {
                    0 => self.line.truncate(self.col.min(self.line.len())),
                    1 => {
                        let end = (self.col + 1).min(self.line.len());
                        self.line[..end].fill(b' ');
                    }
                    _ => self.line.clear(),
                }
                self.redrawn = true;
            }
            b'G' => {
                self.col = n(1).saturating_sub(1).min(MAX_LINE);
                self.redrawn = true;
            }
            b'C' => self.col = (self.col + n(1).max(1)).min(MAX_LINE),
            b'D' => {
                self.col = self.col.saturating_sub(n(1).max(1));
                self.redrawn = true;
            }
            _ => {}
        }
    }
}

/// A device line as it may be shown to people and written to reports: control bytes
/// (an escape kept with `ansi = "keep"`, a stray bell) written out as `\xNN`.
pub fn printable(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_string();
    }
    let mut s = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            s.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> (Vec<String>, String) {
        let mut t = Term::new(Ansi::Strip);
        let l = t.feed(bytes);
        (l, t.partial())
    }

    #[test]
    fn plain_lines_and_a_prompt() {
        let (l, p) = lines(b"OK\r\nERR config x\nmfp# ");
        assert_eq!(l, ["OK", "ERR config x"]);
        assert_eq!(p, "mfp# ");
    }

    #[test]
    fn colours_and_titles_are_removed() {
        let (l, p) = lines(b"\x1b[1;31m% Error\x1b[0m: bad\r\n\x1b]0;mfp\x07\x1b[32mmfp#\x1b[0m ");
        assert_eq!(l, ["% Error: bad"]);
        assert_eq!(p, "mfp# ");
        let mut t = Term::new(Ansi::Strip);
        t.feed(b"\x1b(Bx\n");
        assert!(t.take_escapes());
        assert!(!t.take_escapes());
    }

    #[test]
    fn a_pager_erased_by_cr_and_spaces_or_by_erase_in_line() {
        let (l, _) = lines(b" --More-- \r          \rline two\r\n");
        assert_eq!(l, ["line two"]);
        let (l, _) = lines(b" --More-- \r\x1b[Kline three\r\n");
        assert_eq!(l, ["line three"]);
        let (l, _) = lines(b" --More-- \x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x1b[Kfour\n");
        assert_eq!(l, ["four"]);
    }

    #[test]
    fn backspace_echo_and_bell() {
        let (l, _) = lines(b"abd\x08 \x08c\x07\r\n");
        assert_eq!(l, ["abc"]);
    }

    #[test]
    fn escapes_split_across_reads_and_kept_when_asked() {
        let mut t = Term::new(Ansi::Strip);
        assert!(t.feed(b"x\x1b[1;3").is_empty());
        assert_eq!(t.feed(b"1my\n"), ["xy"]);
        let mut k = Term::new(Ansi::Keep);
        assert_eq!(k.feed(b"\x1b[1mA\n"), ["\x1b[1mA"]);
        assert_eq!(printable("\x1b[1mA"), "\\x1b[1mA");
    }

    #[test]
    fn a_console_whose_lines_end_in_cr() {
        let mut t = Term::new(Ansi::Strip).cr_ends_lines();
        assert_eq!(t.feed(b"OK\rERR x\r\nnext\n"), ["OK", "ERR x", "next"]);
        t.feed(b"MFP> ");
        assert_eq!(t.partial(), "MFP> ");
    }

    #[test]
    fn a_console_in_shift_jis_reads_as_text() {
        let mut t = Term::with_encoding(Ansi::Strip, encoding_rs::SHIFT_JIS);
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("送信完了\r\n設定> ");
        assert_eq!(t.feed(&bytes), ["送信完了"]);
        assert_eq!(t.partial(), "設定> ");
    }

    #[test]
    fn long_lines_are_capped_and_binary_is_harmless() {
        let mut t = Term::new(Ansi::Strip);
        let big = vec![b'a'; MAX_LINE + 100];
        t.feed(&big);
        assert_eq!(t.partial().len(), MAX_LINE);
        let junk: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let _ = t.feed(&junk);
    }
}
