//! The cap on what a connection's transcript keeps, for both servers: a client can
//! send without end, the record cannot grow without end. Up to [`HEAD_LINES`] lines
//! and [`HEAD_BYTES`] of text are kept from the start; past that, the latest
//! [`TAIL_LINES`] lines and [`TAIL_BYTES`] at most, and one note between the two says
//! what was cut and how much ("… 1,234,567 bytes in 10,000 lines cut …"). Each
//! line's text is cut at [`MAX_TEXT`] bytes (the cut said in the line). The session
//! itself goes on as if nothing was cut.

use crate::smtp::{Dir, Entry};

/// Most lines and bytes of text kept from the start of a connection.
pub const HEAD_LINES: usize = 10_000;
pub const HEAD_BYTES: usize = 512 * 1024;
/// Most lines and bytes of text kept from its end.
pub const TAIL_LINES: usize = 10_000;
pub const TAIL_BYTES: usize = 512 * 1024;
/// Longest text of one line kept.
pub const MAX_TEXT: usize = 8 * 1024;

/// Counts with thousands separators: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The text cut at [`MAX_TEXT`] bytes (on a character boundary), saying so.
fn bounded(mut text: String) -> String {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!(" … {} bytes cut", thousands(cut as u64)));
    text
}

/// Where a transcript stands against its cap; kept beside the transcript it caps.
#[derive(Debug, Clone, Default)]
pub struct Cap {
    head_bytes: usize,
    /// Lines in the head, once it is full.
    head_len: Option<usize>,
    tail_bytes: usize,
    cut_lines: u64,
    cut_bytes: u64,
}

impl Cap {
    /// Appends `entries` to `transcript`, cutting from the middle past the cap.
    pub fn push(&mut self, transcript: &mut Vec<Entry>, entries: Vec<Entry>) {
        for mut e in entries {
            e.text = bounded(e.text);
            let size = e.text.len();
            let head_len = match self.head_len {
                Some(n) => n,
                None if transcript.len() < HEAD_LINES && self.head_bytes + size <= HEAD_BYTES => {
                    self.head_bytes += size;
                    transcript.push(e);
                    continue;
                }
                None => {
                    self.head_len = Some(transcript.len());
                    transcript.len()
                }
            };
            transcript.push(e);
            self.tail_bytes += size;
            self.trim(transcript, head_len);
        }
    }

    /// Whether anything was cut.
    pub fn cut(&self) -> bool {
        self.cut_lines > 0
    }

    /// Drops the oldest lines of the tail when it is over its cap, down to three
    /// quarters of it (so that lines are moved once per many, not once each).
    fn trim(&mut self, transcript: &mut Vec<Entry>, head_len: usize) {
        let marked = usize::from(self.cut());
        let start = head_len + marked;
        let tail_lines = transcript.len() - start;
        if tail_lines <= TAIL_LINES && self.tail_bytes <= TAIL_BYTES {
            return;
        }
        let (mut lines, mut bytes) = (tail_lines, self.tail_bytes);
        let mut n = 0;
        while lines > TAIL_LINES * 3 / 4 || bytes > TAIL_BYTES * 3 / 4 {
            let Some(e) = transcript.get(start + n) else {
                break;
            };
            bytes -= e.text.len();
            lines -= 1;
            n += 1;
        }
        let t_ms = transcript.get(start).map_or(0, |e| e.t_ms);
        let gone: usize = transcript
            .drain(start..start + n)
            .map(|e| e.text.len())
            .sum();
        self.tail_bytes -= gone;
        self.cut_lines += n as u64;
        self.cut_bytes += gone as u64;
        let text = format!(
            "… {} bytes in {} lines cut …",
            thousands(self.cut_bytes),
            thousands(self.cut_lines)
        );
        match transcript.get_mut(head_len) {
            Some(note) if marked == 1 => note.text = text,
            _ => transcript.insert(
                head_len,
                Entry {
                    t_ms,
                    dir: Dir::Note,
                    text,
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, len: usize) -> Entry {
        let mut text = format!("{i} ");
        text.push_str(&"x".repeat(len.saturating_sub(text.len())));
        Entry {
            t_ms: i as u64,
            dir: Dir::C,
            text,
        }
    }

    #[test]
    fn below_the_cap_nothing_changes() {
        let (mut cap, mut t) = (Cap::default(), Vec::new());
        let all: Vec<Entry> = (0..HEAD_LINES + TAIL_LINES).map(|i| entry(i, 10)).collect();
        cap.push(&mut t, all.clone());
        assert_eq!(t, all);
        assert!(!cap.cut());
    }

    #[test]
    fn past_the_cap_head_and_tail_stay_and_the_cut_is_counted() {
        let (mut cap, mut t) = (Cap::default(), Vec::new());
        let n = 100_000;
        for i in 0..n {
            cap.push(&mut t, vec![entry(i, 100)]);
        }
        let bytes: usize = t.iter().map(|e| e.text.len()).sum();
        assert!(bytes <= HEAD_BYTES + TAIL_BYTES + 100, "{bytes}");
        assert!(t.len() <= HEAD_LINES + TAIL_LINES + 1);
        assert!(t[0].text.starts_with("0 "));
        assert!(t
            .last()
            .is_some_and(|e| e.text.starts_with(&format!("{} ", n - 1))));
        let notes: Vec<&Entry> = t.iter().filter(|e| e.dir == Dir::Note).collect();
        assert_eq!(notes.len(), 1);
        let kept = t.len() - 1;
        let cut = n - kept;
        assert_eq!(
            notes[0].text,
            format!(
                "… {} bytes in {} lines cut …",
                thousands(cut as u64 * 100),
                thousands(cut as u64)
            )
        );
        // The lines kept are the first ones and the last ones, in order.
        let pos = t.iter().position(|e| e.dir == Dir::Note).unwrap_or(0);
        assert!(t[pos + 1].text.starts_with(&format!("{} ", pos + cut)));
    }

    #[test]
    fn a_huge_line_is_cut_on_a_character_boundary() {
        let (mut cap, mut t) = (Cap::default(), Vec::new());
        let text = "é".repeat(MAX_TEXT);
        cap.push(
            &mut t,
            vec![Entry {
                t_ms: 0,
                dir: Dir::S,
                text,
            }],
        );
        assert!(t[0].text.len() < MAX_TEXT + 40);
        assert!(t[0]
            .text
            .ends_with(&format!("{} bytes cut", thousands(MAX_TEXT as u64))));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
