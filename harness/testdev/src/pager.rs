//! The pager of long listings (`--paging N`): after N lines the console stops at
//! ` --More-- ` until the client presses Space (the next N lines), Enter (one more
//! line) or any other key (the rest is dropped), as IOS's `terminal length` does.
//! No I/O: it only decides which lines go out next.

use std::collections::VecDeque;

/// The pause text, printed without a newline.
pub const MORE: &str = " --More-- ";

/// What the client pressed at ` --More-- `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagerKey {
    /// Space.
    Page,
    /// Enter.
    Line,
    /// Anything else (`q`).
    Quit,
}

/// The rest of a listing that stopped at ` --More-- `.
#[derive(Debug)]
pub struct Pager {
    page: usize,
    rest: VecDeque<String>,
}

impl Pager {
    /// Splits a listing into the lines shown now and, when it is longer than a page,
    /// the pager holding the rest.
    pub fn start(page: usize, lines: Vec<String>) -> (Vec<String>, Option<Pager>) {
        let page = page.max(1);
        if lines.len() <= page {
            return (lines, None);
        }
        let mut rest: VecDeque<String> = lines.into();
        let now = rest.drain(..page).collect();
        (now, Some(Pager { page, rest }))
    }

    /// The lines a key lets out (none for Quit, which drops the rest).
    pub fn key(&mut self, key: PagerKey) -> Vec<String> {
        let n = match key {
            PagerKey::Page => self.page,
            PagerKey::Line => 1,
            PagerKey::Quit => {
                self.rest.clear();
                0
            }
        };
        let n = n.min(self.rest.len());
        self.rest.drain(..n).collect()
    }

    /// Whether the listing has ended.
    pub fn done(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_lines_and_quit() {
        let lines: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        let (now, p) = Pager::start(4, lines.clone());
        assert_eq!(now, ["1", "2", "3", "4"]);
        let mut p = p.unwrap();
        assert_eq!(p.key(PagerKey::Line), ["5"]);
        assert_eq!(p.key(PagerKey::Page), ["6", "7", "8", "9"]);
        assert!(!p.done());
        assert_eq!(p.key(PagerKey::Page), ["10"]);
        assert!(p.done());
        let (_, p) = Pager::start(4, lines.clone());
        let mut p = p.unwrap();
        assert!(p.key(PagerKey::Quit).is_empty());
        assert!(p.done());
        let (now, p) = Pager::start(10, lines);
        assert_eq!(now.len(), 10);
        assert!(p.is_none());
    }
}
