//! Bounds on what the console driver keeps of what a device prints, so that a device
//! flooding its console costs a case a few MiB, whatever it sends: the console log
//! keeps its head and its tail and says what it cut between them, a line is kept to
//! a length, and the lists a diagnosis reads keep their first lines and a count.

use std::collections::VecDeque;

use super::console::{ConsoleDir, ConsoleLine};

/// The console log of one case keeps this many bytes of its first lines ...
pub const LOG_HEAD_BYTES: usize = 512 * 1024;
/// ... and this many of its last.
pub const LOG_TAIL_BYTES: usize = 512 * 1024;
/// A line longer than this is kept to it, and says how much was cut.
pub const LOG_LINE_BYTES: usize = 8 * 1024;

/// `s` cut to at most `max` bytes (on a character boundary), saying how much went.
pub fn cut_line(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} … ({} more bytes cut)", &s[..end], s.len() - end)
}

/// A console log bounded to its head and its tail.
#[derive(Debug, Default)]
pub struct CappedLog {
    head: Vec<ConsoleLine>,
    head_bytes: usize,
    tail: VecDeque<ConsoleLine>,
    tail_bytes: usize,
    cut_lines: u64,
    cut_bytes: u64,
    /// When the first line was cut (ms on the log's clock).
    cut_from_ms: Option<u64>,
}

fn size(l: &ConsoleLine) -> usize {
    l.text.len() + 16
}

impl CappedLog {
    pub fn push(&mut self, mut line: ConsoleLine) {
        if line.text.len() > LOG_LINE_BYTES {
            line.text = cut_line(&line.text, LOG_LINE_BYTES);
        }
        let n = size(&line);
        if self.tail.is_empty() && self.head_bytes + n <= LOG_HEAD_BYTES {
            self.head_bytes += n;
            self.head.push(line);
            return;
        }
        self.tail_bytes += n;
        self.tail.push_back(line);
        while self.tail_bytes > LOG_TAIL_BYTES {
            let Some(old) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= size(&old);
            self.cut_lines += 1;
            self.cut_bytes += old.text.len() as u64;
            self.cut_from_ms.get_or_insert(old.t_ms);
        }
    }

    /// Everything kept since the last take: the head, a note of what was cut (if
    /// anything was), the tail.
    pub fn take(&mut self) -> Vec<ConsoleLine> {
        let this = std::mem::take(self);
        let mut out = this.head;
        if this.cut_lines > 0 {
            out.push(ConsoleLine {
                t_ms: this.cut_from_ms.unwrap_or(0),
                dir: ConsoleDir::N,
                text: format!(
                    "… {} line(s), {} bytes cut here: the console log keeps the first {} KiB \
                     and the last {} KiB of a case …",
                    this.cut_lines,
                    this.cut_bytes,
                    LOG_HEAD_BYTES / 1024,
                    LOG_TAIL_BYTES / 1024
                ),
            });
        }
        out.extend(this.tail);
        out
    }
}

/// The first `max` lines pushed, and how many more there were.
#[derive(Debug, Default)]
pub struct FirstLines {
    pub lines: Vec<String>,
    pub more: usize,
}

impl FirstLines {
    pub fn push(&mut self, line: String, max: usize) {
        if self.lines.len() < max {
            self.lines.push(cut_line(&line, LOG_LINE_BYTES));
        } else {
            self.more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.more == 0
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.more = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize, len: usize) -> ConsoleLine {
        ConsoleLine {
            t_ms: i as u64,
            dir: ConsoleDir::D,
            text: format!("{i:08} {}", "x".repeat(len)),
        }
    }

    #[test]
    fn a_flood_keeps_head_and_tail_and_says_what_it_cut() {
        let mut log = CappedLog::default();
        let n = 200_000;
        for i in 0..n {
            log.push(line(i, 100));
        }
        let kept = log.take();
        let bytes: usize = kept.iter().map(|l| l.text.len()).sum();
        assert!(bytes <= LOG_HEAD_BYTES + LOG_TAIL_BYTES + 1024, "{bytes}");
        assert!(kept[0].text.starts_with("00000000 "));
        assert!(kept
            .last()
            .expect("tail")
            .text
            .starts_with(&format!("{:08} ", n - 1)));
        let note: Vec<&ConsoleLine> = kept.iter().filter(|l| l.dir == ConsoleDir::N).collect();
        assert_eq!(note.len(), 1);
        let in_log = kept.iter().filter(|l| l.dir == ConsoleDir::D).count();
        assert!(
            note[0].text.contains(&format!("{} line(s)", n - in_log)),
            "{}",
            note[0].text
        );
        // The order is kept: head, note, tail.
        let pos = kept
            .iter()
            .position(|l| l.dir == ConsoleDir::N)
            .expect("note");
        assert!(kept[pos - 1].t_ms < kept[pos + 1].t_ms);
        // Taken: empty again, nothing cut.
        log.push(line(1, 1));
        assert_eq!(log.take().len(), 1);
    }

    #[test]
    fn a_long_line_is_cut_on_a_character_boundary() {
        let s = "あ".repeat(LOG_LINE_BYTES);
        let c = cut_line(&s, LOG_LINE_BYTES);
        assert!(c.len() < LOG_LINE_BYTES + 64);
        assert!(c.ends_with(&format!(
            "({} more bytes cut)",
            s.len() - LOG_LINE_BYTES + 2
        )));
        assert_eq!(cut_line("short", 10), "short");
    }

    #[test]
    fn first_lines_count_the_rest() {
        let mut f = FirstLines::default();
        for i in 0..30 {
            f.push(i.to_string(), 20);
        }
        assert_eq!((f.lines.len(), f.more), (20, 10));
        f.clear();
        assert!(f.is_empty());
    }
}
