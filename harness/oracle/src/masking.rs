//! Masking-aware covering arrays (issue 16 item 2). A plain t-way array over the
//! matrix holds every t-tuple of values in some row, but normalisation then sets each
//! value that cannot matter to its base value: a pair behind an early failure (the
//! switch is off, the server address is empty, no envelope sender) is lost, and the
//! TLS × AUTH × POP × load interactions of the sending path were mostly masked so.
//! Here a t-tuple counts as covered only by a row in which every one of its
//! dimensions still matters after normalisation.
//!
//! **Testable tuples.** A t-tuple of (dimension, valid value) pairs (invalid values
//! are refusal cases, each alone) is *testable* when some valid normalised row holds
//! its values with each of its dimensions relevant (`Matrix::collapsed` answers
//! `None`). [`witness`] decides it by a depth-first search over partly chosen rows. It
//! starts with the tuple's values chosen and every other dimension at base (which
//! normalisation always accepts), and asks each rule that must hold: every dimension
//! of the tuple relevant, every chosen non-base value one normalisation keeps (not
//! collapsed; `server.listener` not naming the listener the TLS mode expects, which
//! normalisation rewrites to `matching`). The relevance rules record what they read
//! (`Get`): a "matters" answer that read only chosen dimensions holds whatever is
//! chosen later; a "does not matter" answer holds for every row agreeing on the
//! dimensions read since the last gate let the row through (had the gate stopped it,
//! the answer would be "does not matter" too), so it is final once those are chosen.
//! The search branches on the first unchosen dimension a rule needs (a rule reads only
//! dimensions before its own, in model order), base value first, and backtracks with
//! conflict sets: when a value fails for reasons that do not involve the dimension
//! branched on, its other values are not tried. When every rule holds for good, the
//! row (unchosen dimensions at base) is the witness. A search may take
//! [`SEARCH_STEPS`] steps; a tuple whose search runs out is *undecided*: counted apart,
//! never as testable or covered (unless a generated row happens to hold it, which
//! proves it testable).
//!
//! **Generation** ([`generate`]), greedy and deterministic for a seed: take an open
//! tuple (neither covered nor found untestable) from the set of t dimensions with the
//! most open tuples, search its witness (none: mark it untestable or undecided and take
//! another), then build a row in model order: the tuple's values; base where a
//! dimension does not matter; else the valid value covering the most open tuples with
//! the relevant dimensions before it and the tuple's, among those with which the row
//! can still hold the tuple (a search with the dimensions so far fixed; the witness's
//! value always can). Of [`CANDIDATES`] such rows the one covering the most open tuples
//! is kept, and every tuple among its relevant dimensions is covered. When no tuple is
//! open, rows whose every tuple another row covers too are dropped, the last built
//! first. A row is normalised by construction, so the sending path's interactions are
//! covered by rows that reach the server (relevance requires it), and the failure
//! paths' by rows that fail where they do. For t = 3 a triple with an untestable pair
//! is untestable without a search.
//!
//! t = 2 and 3 only: the project's model has 0.8 M triples and tens of millions of
//! 4-tuples; 4-way keeps the plain array (`Matrix::covering`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hil_mail::faults::Rng;

use crate::covering::CoveringError;
use crate::matrix::{Dim, Matrix};

/// Steps (partial rows looked at) one search may take. The project's model needs at
/// most about 5,000 for any pair or triple (BENCHMARKS.md, "Masking-aware covering
/// arrays"); a search that runs out leaves its tuple undecided.
pub const SEARCH_STEPS: usize = 100_000;

/// Candidate rows built for each row kept (more changes the project's pairwise array
/// by a row or two, and costs time).
pub const CANDIDATES: usize = 4;

/// Largest number of t-tuples tracked (one byte each).
const MAX_TUPLES: usize = 1 << 28;

// A bit per dimension in the search's masks.
const _: () = assert!(Dim::ALL.len() <= 64);

/// What a masking-aware covering array covers (`hil matrix`, `hil run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Coverage {
    /// The strength.
    pub t: usize,
    /// t-tuples of valid values (over every t dimensions).
    pub tuples: usize,
    /// Of those, the ones some valid normalised row holds with each dimension relevant.
    pub testable: usize,
    /// Testable tuples a row of the array holds with each dimension relevant.
    pub covered: usize,
    /// Tuples whose search ran out of steps: neither counted testable nor covered.
    pub undecided: usize,
    /// Rows of the array (the refusal cases not counted).
    pub rows: usize,
    /// Refusal cases: one per invalid or unsupported value.
    pub refusals: usize,
    /// The plain covering array of the same strength and seed, for comparison.
    pub plain: Option<PlainCoverage>,
}

/// The plain covering array (every t-tuple of valid values in some row, before
/// normalisation), as `--matrix pairwise` ran it before issue 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlainCoverage {
    /// Its rows.
    pub rows: usize,
    /// Its distinct rows after normalisation (the cases it ran, refusals not counted).
    pub normalised: usize,
    /// Testable tuples those hold with each dimension relevant.
    pub covered: usize,
}

impl Coverage {
    /// What `hil matrix` and `hil run` print of it, a line each.
    pub fn lines(&self) -> Vec<String> {
        let what = match self.t {
            2 => "pairs",
            3 => "triples",
            _ => "tuples",
        };
        let mut out = vec![
            format!(
                "{}-way covering array, masking-aware: {} rows + {} refusal cases",
                self.t, self.rows, self.refusals
            ),
            format!(
                "testable {what}: {} (of {} {what} of valid values); covered: {} (each in a row where all its dimensions matter)",
                self.testable, self.tuples, self.covered
            ),
        ];
        if self.undecided > 0 {
            out.push(format!(
                "undecided {what}: {} (the search for a row testing them ran out of steps; not counted as testable or covered)",
                self.undecided
            ));
        }
        if let Some(p) = self.plain {
            out.push(format!(
                "the plain {}-way array: {} rows, {} after normalisation, covering {} of the {} testable {what}",
                self.t, p.rows, p.normalised, p.covered, self.testable
            ));
        }
        out
    }
}

/// What the search answers for a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witness {
    /// A valid normalised row with every dimension of the tuple relevant.
    Row(Vec<usize>),
    /// No valid normalised row has the tuple's dimensions relevant with its values.
    Untestable,
    /// The search ran out of steps.
    Undecided,
}

/// Searches a row testing `tuple` ((dimension, value index) pairs, values valid), in
/// at most `steps` steps: see the module doc.
pub fn witness(m: &Matrix, tuple: &[(usize, usize)], steps: usize) -> Witness {
    let valid: Vec<Vec<usize>> = (0..m.dims.len()).map(|i| m.valid_values(i)).collect();
    let (row, mask) = start_row(m, tuple);
    search(m, &valid, row, mask, mask, steps)
}

/// A row with `tuple`'s values, every other dimension at base, and the tuple's
/// dimensions as a mask.
fn start_row(m: &Matrix, tuple: &[(usize, usize)]) -> (Vec<usize>, u64) {
    let mut row = vec![0; m.dims.len()];
    let mut mask = 0u64;
    for &(d, v) in tuple {
        row[d] = v;
        mask |= 1 << d;
    }
    (row, mask)
}

/// The search from `row`, with the dimensions in `chosen` fixed (those in `tuple` must
/// be relevant, the others only kept by normalisation) and every other at base.
fn search(
    m: &Matrix,
    valid: &[Vec<usize>],
    row: Vec<usize>,
    tuple: u64,
    chosen: u64,
    steps: usize,
) -> Witness {
    let mut s = Search {
        m,
        valid,
        row,
        tuple,
        chosen,
        steps,
    };
    match s.dfs() {
        Found::Witness => Witness::Row(s.row),
        Found::Conflict(_) => Witness::Untestable,
        Found::OutOfSteps => Witness::Undecided,
    }
}

struct Search<'a> {
    m: &'a Matrix,
    valid: &'a [Vec<usize>],
    row: Vec<usize>,
    /// The tuple's dimensions.
    tuple: u64,
    /// The dimensions chosen (the tuple's and those branched on).
    chosen: u64,
    steps: usize,
}

/// The rules of a partly chosen row, as far as the chosen dimensions decide them.
enum Rules {
    Hold,
    /// A rule fails, and does in every row that agrees on these dimensions (a bit
    /// each): a conflict set.
    Fail(u64),
    /// Undecided until this dimension is chosen.
    Need(usize),
}

/// What a subtree of the search found.
enum Found {
    Witness,
    /// No witness: every row agreeing with the partial row on these dimensions fails.
    Conflict(u64),
    OutOfSteps,
}

impl Search<'_> {
    /// Depth-first with conflict-directed backjumping: when a value of the dimension
    /// branched on fails for reasons that do not involve that dimension, its other
    /// values would fail the same way and are not tried.
    fn dfs(&mut self) -> Found {
        if self.steps == 0 {
            return Found::OutOfSteps;
        }
        self.steps -= 1;
        let u = match self.rules() {
            Rules::Hold => return Found::Witness,
            Rules::Fail(c) => return Found::Conflict(c),
            Rules::Need(u) => u,
        };
        let bit = 1u64 << u;
        self.chosen |= bit;
        let mut conflict = 0u64;
        for k in 0..self.valid[u].len() {
            self.row[u] = self.valid[u][k];
            match self.dfs() {
                Found::Conflict(c) if c & bit == 0 => {
                    conflict = c;
                    break;
                }
                Found::Conflict(c) => conflict |= c & !bit,
                other => return other,
            }
        }
        self.row[u] = 0;
        self.chosen &= !bit;
        Found::Conflict(conflict)
    }

    /// Each rule (module doc), as far as decided. The dimension to choose next: the
    /// first unchosen one explaining a "does not matter" that must become "matters",
    /// else the first unchosen one a "matters" read.
    fn rules(&self) -> Rules {
        let listener = Dim::ServerListener.index();
        let mut flip = u64::MAX;
        let mut confirm = u64::MAX;
        let mut dims = self.chosen;
        while dims != 0 {
            let d = dims.trailing_zeros() as usize;
            dims &= dims - 1;
            // A chosen base value outside the tuple holds whether it matters or not.
            if self.tuple & (1 << d) == 0 && self.row[d] == 0 {
                continue;
            }
            let (collapsed, read, explained) = self.m.collapsed_reading(&self.row, d);
            if collapsed {
                let open = explained & !self.chosen;
                if open == 0 {
                    return Rules::Fail(explained | 1 << d);
                }
                flip = flip.min(open.trailing_zeros() as u64);
                continue;
            }
            let open = read & !self.chosen;
            if open != 0 {
                confirm = confirm.min(open.trailing_zeros() as u64);
                continue;
            }
            if d == listener && self.row[d] != 0 {
                let (renamed, read) = self.m.listener_renamed_reading(&self.row);
                let open = read & !self.chosen;
                if open != 0 {
                    confirm = confirm.min(open.trailing_zeros() as u64);
                } else if renamed {
                    return Rules::Fail(read | 1 << d);
                }
            }
        }
        match (flip, confirm) {
            (u64::MAX, u64::MAX) => Rules::Hold,
            (u64::MAX, c) => Rules::Need(c as usize),
            (f, _) => Rules::Need(f as usize),
        }
    }
}

/// The t-tuples of valid values of a model, numbered: the t-sets of dimensions in
/// lexicographic order, within one the values' positions as a mixed-radix number.
pub(crate) struct Space {
    t: usize,
    /// Valid values per dimension (indexes into the dimension's values).
    valid: Vec<Vec<usize>>,
    /// A value index's position among its dimension's valid values (`usize::MAX`:
    /// invalid).
    pos: Vec<Vec<usize>>,
    sets: Vec<Vec<usize>>,
    /// The first tuple of each set, then the number of tuples.
    offset: Vec<usize>,
    /// A set's index by its dimensions as a base-n number.
    set_of: Vec<u32>,
}

impl Space {
    pub(crate) fn new(m: &Matrix, t: usize) -> Result<Space, CoveringError> {
        if !(2..=3).contains(&t) {
            return Err(CoveringError::Strength(t));
        }
        let n = m.dims.len();
        let valid: Vec<Vec<usize>> = (0..n).map(|i| m.valid_values(i)).collect();
        let pos = valid
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut p = vec![usize::MAX; m.dims[i].values.len().max(1)];
                for (k, j) in v.iter().enumerate() {
                    p[*j] = k;
                }
                p
            })
            .collect();
        let mut sets = Vec::new();
        subsets(&(0..n).collect::<Vec<_>>(), t, &mut |s| {
            sets.push(s.to_vec())
        });
        let mut offset = vec![0usize];
        let mut set_of = vec![u32::MAX; n.pow(t as u32)];
        for (k, s) in sets.iter().enumerate() {
            let size: usize = s.iter().map(|d| valid[*d].len()).product();
            let next = offset[k] + size;
            if next > MAX_TUPLES {
                return Err(CoveringError::TooManyTuples { t });
            }
            offset.push(next);
            set_of[s.iter().fold(0, |a, d| a * n + d)] = k as u32;
        }
        Ok(Space {
            t,
            valid,
            pos,
            sets,
            offset,
            set_of,
        })
    }

    fn len(&self) -> usize {
        self.offset[self.sets.len()]
    }

    /// The index of the set of dimensions `dims` (ascending).
    fn set(&self, dims: &[usize]) -> usize {
        let n = self.valid.len();
        self.set_of[dims.iter().fold(0, |a, d| a * n + d)] as usize
    }

    /// The number of the tuple of `row`'s values at `dims` (ascending), or `None` when
    /// one of them is not a valid value.
    fn id(&self, dims: &[usize], row: &[usize]) -> Option<usize> {
        let mut r = 0;
        for d in dims {
            let p = self.pos[*d][row[*d]];
            if p == usize::MAX {
                return None;
            }
            r = r * self.valid[*d].len() + p;
        }
        Some(self.offset[self.set(dims)] + r)
    }

    /// The set of dimensions tuple `id` belongs to.
    fn set_index(&self, id: usize) -> usize {
        self.offset.partition_point(|o| *o <= id) - 1
    }

    /// The tuple numbered `id`, as (dimension, value index) pairs.
    fn tuple(&self, id: usize) -> Vec<(usize, usize)> {
        let k = self.set_index(id);
        let mut r = id - self.offset[k];
        let mut out = Vec::with_capacity(self.t);
        for d in self.sets[k].iter().rev() {
            let len = self.valid[*d].len();
            out.push((*d, self.valid[*d][r % len]));
            r /= len;
        }
        out.reverse();
        out
    }

    /// Calls `f` with each tuple `row` holds with every dimension relevant
    /// (`relevant`: the relevant dimensions, ascending).
    fn held(&self, row: &[usize], relevant: &[usize], f: &mut dyn FnMut(usize)) {
        subsets(relevant, self.t, &mut |s| {
            if let Some(id) = self.id(s, row) {
                f(id);
            }
        });
    }
}

/// Calls `f` with every `t`-subset of `items`, in lexicographic order.
fn subsets(items: &[usize], t: usize, f: &mut dyn FnMut(&[usize])) {
    fn go(
        items: &[usize],
        t: usize,
        from: usize,
        cur: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]),
    ) {
        if cur.len() == t {
            f(cur);
            return;
        }
        for k in from..items.len() {
            if items.len() - k < t - cur.len() {
                break;
            }
            cur.push(items[k]);
            go(items, t, k + 1, cur, f);
            cur.pop();
        }
    }
    go(items, t, 0, &mut Vec::with_capacity(t), f);
}

/// The dimensions of `row` that matter, ascending.
fn relevant_dims(m: &Matrix, row: &[usize]) -> Vec<usize> {
    (0..m.dims.len())
        .filter(|i| m.collapsed(row, *i).is_none())
        .collect()
}

/// A tuple, as (dimension, value index) pairs, and a row testing it.
type Seed = (Vec<(usize, usize)>, Vec<usize>);

/// A tuple's status while generating.
const OPEN: u8 = 0;
const COVERED: u8 = 1;
const UNTESTABLE: u8 = 2;
const UNDECIDED: u8 = 3;

/// The generator's state.
struct Gen<'a> {
    m: &'a Matrix,
    sp: &'a Space,
    status: Vec<u8>,
    /// Open tuples per set of dimensions.
    open: Vec<usize>,
    /// The sets by open tuples, most first (entries go stale; `next_seed` skips them).
    by_open: BinaryHeap<(usize, Reverse<usize>)>,
    rng: Rng,
    steps: usize,
    /// For t = 3, the pairs and what is known of them (`OPEN`: not yet searched,
    /// `COVERED`: testable): a triple with an untestable pair is untestable.
    pairs: Option<(Space, Vec<u8>)>,
}

/// A masking-aware t-way array over `m`'s valid values (t = 2 or 3; see the module
/// doc): its rows and figures (`refusals` and `plain` are the caller's to fill in).
pub fn generate(
    m: &Matrix,
    t: usize,
    seed: u64,
) -> Result<(Vec<Vec<usize>>, Coverage), CoveringError> {
    generate_with(m, t, seed, SEARCH_STEPS)
}

/// [`generate`] with each search bounded to `steps` steps.
pub fn generate_with(
    m: &Matrix,
    t: usize,
    seed: u64,
    steps: usize,
) -> Result<(Vec<Vec<usize>>, Coverage), CoveringError> {
    let sp = Space::new(m, t)?;
    let open: Vec<usize> = (0..sp.sets.len())
        .map(|k| sp.offset[k + 1] - sp.offset[k])
        .collect();
    let by_open = open
        .iter()
        .enumerate()
        .map(|(k, n)| (*n, Reverse(k)))
        .collect();
    let pairs = if t > 2 {
        let pairs = Space::new(m, 2)?;
        let n = pairs.len();
        Some((pairs, vec![OPEN; n]))
    } else {
        None
    };
    let mut g = Gen {
        m,
        sp: &sp,
        status: vec![OPEN; sp.len()],
        open,
        by_open,
        rng: Rng::new(seed ^ 0x6d61_736b_696e_6721),
        steps,
        pairs,
    };
    let mut rows: Vec<Vec<usize>> = Vec::new();
    while let Some((tuple, witness)) = g.next_seed() {
        let mut best: Option<(usize, Vec<usize>)> = None;
        for _ in 0..CANDIDATES {
            let r = g.fill(&tuple, &witness);
            let gain = g.count_open(&r);
            if best.as_ref().is_none_or(|(b, _)| gain > *b) {
                best = Some((gain, r));
            }
        }
        let (_, r) = best.expect("a candidate");
        g.cover(&r);
        rows.push(r);
    }
    let rows = drop_redundant(m, &sp, rows);
    let count = |s: u8| g.status.iter().filter(|x| **x == s).count();
    let covered = count(COVERED);
    let coverage = Coverage {
        t,
        tuples: sp.len(),
        testable: covered,
        covered,
        undecided: count(UNDECIDED),
        rows: rows.len(),
        refusals: 0,
        plain: None,
    };
    Ok((rows, coverage))
}

impl Gen<'_> {
    /// An open tuple of the set with the most open tuples (the first open one from a
    /// seeded place in it), and a row testing it; `None` when no tuple is open.
    fn next_seed(&mut self) -> Option<Seed> {
        loop {
            let (n, Reverse(k)) = self.by_open.pop()?;
            if n != self.open[k] {
                if self.open[k] > 0 {
                    self.by_open.push((self.open[k], Reverse(k)));
                }
                continue;
            }
            if n == 0 {
                return None;
            }
            let (from, to) = (self.sp.offset[k], self.sp.offset[k + 1]);
            let start = from + (self.rng.next_u64() % (to - from) as u64) as usize;
            let id = (start..to)
                .chain(from..start)
                .find(|i| self.status[*i] == OPEN)
                .expect("the set has an open tuple");
            let tuple = self.sp.tuple(id);
            let found = if self.has_untestable_pair(&tuple) {
                Witness::Untestable
            } else {
                let (row, mask) = start_row(self.m, &tuple);
                search(self.m, &self.sp.valid, row, mask, mask, self.steps)
            };
            match found {
                Witness::Row(row) => {
                    self.by_open.push((n, Reverse(k)));
                    return Some((tuple, row));
                }
                Witness::Untestable => self.status[id] = UNTESTABLE,
                Witness::Undecided => self.status[id] = UNDECIDED,
            }
            self.open[k] -= 1;
            if self.open[k] > 0 {
                self.by_open.push((self.open[k], Reverse(k)));
            }
        }
    }

    /// Whether a pair of `tuple` is untestable (t = 3; a pair not known yet is
    /// searched).
    fn has_untestable_pair(&mut self, tuple: &[(usize, usize)]) -> bool {
        let Some((sp, status)) = &mut self.pairs else {
            return false;
        };
        let (row, _) = start_row(self.m, tuple);
        let dims: Vec<usize> = tuple.iter().map(|(d, _)| *d).collect();
        let mut untestable = false;
        subsets(&dims, 2, &mut |s| {
            let Some(id) = sp.id(s, &row) else { return };
            if status[id] == OPEN {
                let (r, mask) = start_row(self.m, &sp.tuple(id));
                status[id] = match search(self.m, &sp.valid, r, mask, mask, self.steps) {
                    Witness::Row(_) => COVERED,
                    Witness::Untestable => UNTESTABLE,
                    Witness::Undecided => UNDECIDED,
                };
            }
            untestable |= status[id] == UNTESTABLE;
        });
        untestable
    }

    /// A row holding `tuple` with its dimensions relevant, given `witness`, one such
    /// row (see the module doc).
    fn fill(&mut self, tuple: &[(usize, usize)], witness: &[usize]) -> Vec<usize> {
        let m = self.m;
        let n = m.dims.len();
        let (_, tuple_mask) = start_row(m, tuple);
        let last = tuple.iter().map(|(d, _)| *d).max().unwrap_or(0);
        // A row testing the tuple that agrees with `row` up to the dimension at hand.
        let mut w = witness.to_vec();
        let mut row = witness.to_vec();
        let mut relevant: Vec<usize> = Vec::new();
        for k in 0..n {
            if tuple_mask & (1 << k) != 0 {
                relevant.push(k);
                continue;
            }
            if m.collapsed(&row, k).is_some() {
                row[k] = 0;
                continue;
            }
            let mut known = relevant.clone();
            known.extend(tuple.iter().map(|(d, _)| *d).filter(|d| *d > k));
            relevant.push(k);
            for v in self.by_gain(&mut row, k, &known) {
                // After the tuple's last dimension nothing can mask it any more.
                if k > last || v == w[k] {
                    row[k] = v;
                    break;
                }
                let mut start = vec![0; n];
                start[..k].copy_from_slice(&row[..k]);
                start[k] = v;
                for (d, x) in tuple {
                    start[*d] = *x;
                }
                let chosen = tuple_mask | (u64::MAX >> (63 - k));
                if let Witness::Row(found) =
                    search(m, &self.sp.valid, start, tuple_mask, chosen, self.steps)
                {
                    row[k] = v;
                    w = found;
                    break;
                }
            }
            // Later dimensions start from the witness's values (a rule reads only
            // earlier dimensions, so each is set before it matters).
            row[k + 1..].copy_from_slice(&w[k + 1..]);
        }
        debug_assert!(
            {
                let mut x = row.clone();
                m.normalise(&mut x);
                x == row
            },
            "a generated row is normalised"
        );
        row
    }

    /// `k`'s valid values that normalisation keeps (`server.listener` is rewritten when
    /// it names the expected listener), those covering the most open tuples with
    /// `known` (dimensions relevant in the row) first, ties in the seeded generator's
    /// order.
    fn by_gain(&mut self, row: &mut [usize], k: usize, known: &[usize]) -> Vec<usize> {
        let sp = self.sp;
        // For each tuple of `known` dimensions and k: the number of the one with k's
        // first valid value, and the step from one of k's values to the next.
        let mut at: Vec<(usize, usize)> = Vec::new();
        subsets(known, sp.t - 1, &mut |s| {
            let mut dims = [0usize; 3];
            dims[..s.len()].copy_from_slice(s);
            dims[s.len()] = k;
            let dims = &mut dims[..=s.len()];
            dims.sort_unstable();
            let (mut base, mut stride, mut step) = (0, 1, 0);
            for d in dims.iter().rev() {
                if *d == k {
                    step = stride;
                } else {
                    base += sp.pos[*d][row[*d]] * stride;
                }
                stride *= sp.valid[*d].len();
            }
            at.push((sp.offset[sp.set(dims)] + base, step));
        });
        let keep = row[k];
        let mut scored: Vec<(usize, u64, usize)> = Vec::new();
        for (p, v) in sp.valid[k].iter().enumerate() {
            row[k] = *v;
            if k == Dim::ServerListener.index() && *v != 0 && self.m.listener_renamed_reading(row).0
            {
                continue;
            }
            let gain = at
                .iter()
                .filter(|(b, step)| matches!(self.status[b + p * step], OPEN | UNDECIDED))
                .count();
            scored.push((gain, self.rng.next_u64(), *v));
        }
        row[k] = keep;
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().map(|(_, _, v)| v).collect()
    }

    /// Open or undecided tuples `row` would cover.
    fn count_open(&self, row: &[usize]) -> usize {
        let mut n = 0;
        self.sp.held(row, &relevant_dims(self.m, row), &mut |id| {
            if matches!(self.status[id], OPEN | UNDECIDED) {
                n += 1;
            }
        });
        n
    }

    /// Marks what `row` covers (an undecided tuple so covered is testable after all).
    fn cover(&mut self, row: &[usize]) {
        let relevant = relevant_dims(self.m, row);
        if let Some((sp, status)) = &mut self.pairs {
            sp.held(row, &relevant, &mut |id| status[id] = COVERED);
        }
        let mut ids = Vec::new();
        self.sp.held(row, &relevant, &mut |id| ids.push(id));
        for id in ids {
            match self.status[id] {
                OPEN => self.open[self.sp.set_index(id)] -= 1,
                UNDECIDED => {}
                _ => continue,
            }
            self.status[id] = COVERED;
        }
    }
}

/// Drops rows whose every tuple another row covers too, the last built first (the
/// greedy's late rows cover least).
fn drop_redundant(m: &Matrix, sp: &Space, rows: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let mut times = vec![0u16; sp.len()];
    let held: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| {
            let mut ids = Vec::new();
            sp.held(r, &relevant_dims(m, r), &mut |id| ids.push(id));
            for id in &ids {
                times[*id] = times[*id].saturating_add(1);
            }
            ids
        })
        .collect();
    let mut keep = vec![true; rows.len()];
    for k in (0..rows.len()).rev() {
        if held[k].iter().all(|id| times[*id] > 1) {
            keep[k] = false;
            for id in &held[k] {
                times[*id] -= 1;
            }
        }
    }
    rows.into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

/// How many t-tuples of valid values (t = 2 or 3) `rows` hold with every dimension
/// relevant. Each is testable (such a row is what makes a tuple testable), so this is
/// how many testable tuples the rows cover.
pub(crate) fn held_by(m: &Matrix, t: usize, rows: &[Vec<usize>]) -> Result<usize, CoveringError> {
    let sp = Space::new(m, t)?;
    let mut seen = vec![false; sp.len()];
    let mut n = 0;
    for r in rows {
        sp.held(r, &relevant_dims(m, r), &mut |id| {
            if !seen[id] {
                seen[id] = true;
                n += 1;
            }
        });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::matrix::{unsupported_values, Row};
    use crate::model::DeviceFacts;

    fn model(facts: &DeviceFacts) -> Matrix {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Matrix::build(&root.join("certs"), &root.join("scenarios"), facts).expect("model")
    }

    /// A pair as (dimension, value index, dimension, value index), dimensions ascending.
    type Pair = (usize, usize, usize, usize);

    /// The pairs of valid values `row` holds with both dimensions relevant, read with
    /// `Matrix::collapsed` only.
    fn pairs_held(m: &Matrix, row: &[usize]) -> Vec<Pair> {
        let relevant: Vec<usize> = (0..m.dims.len())
            .filter(|i| m.collapsed(row, *i).is_none())
            .collect();
        let valid = |i: usize| !m.dims[i].values[row[i]].invalid;
        let mut out = Vec::new();
        for (x, i) in relevant.iter().enumerate() {
            for j in &relevant[x + 1..] {
                if valid(*i) && valid(*j) {
                    out.push((*i, row[*i], *j, row[*j]));
                }
            }
        }
        out
    }

    /// Checks, independently of the generator, that `rows` cover every testable pair
    /// of `m` with both dimensions relevant: every pair of valid values is held so by
    /// a row, or the search proves it untestable (never undecided); every pair an
    /// exhaustive row holds so is covered; the array's rows are normalised and hold no
    /// invalid value. Answers the number of pairs covered.
    fn assert_covers_every_testable_pair(m: &Matrix, rows: &[Row]) -> usize {
        let mut covered: BTreeSet<Pair> = BTreeSet::new();
        for r in rows.iter().filter(|r| r.section != "invalid") {
            let mut n = r.values.clone();
            m.normalise(&mut n);
            assert_eq!(n, r.values, "normalised: {}", m.id(r));
            assert!(
                (0..m.dims.len()).all(|i| !m.dims[i].values[r.values[i]].invalid),
                "no invalid value: {}",
                m.id(r)
            );
            covered.extend(pairs_held(m, &r.values));
        }
        let n = m.dims.len();
        let mut missing = Vec::new();
        let mut pairs = 0;
        for i in 0..n {
            for j in i + 1..n {
                for a in m.valid_values(i) {
                    for b in m.valid_values(j) {
                        pairs += 1;
                        if covered.contains(&(i, a, j, b)) {
                            continue;
                        }
                        let found = witness(m, &[(i, a), (j, b)], SEARCH_STEPS);
                        if found != Witness::Untestable {
                            missing.push(format!(
                                "{}={} × {}={}: {found:?}",
                                m.dims[i].name,
                                m.dims[i].values[a].name,
                                m.dims[j].name,
                                m.dims[j].values[b].name
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "{} not covered: {:#?}",
            missing.len(),
            &missing[..missing.len().min(20)]
        );
        for r in m.exhaustive().iter().filter(|r| r.section != "invalid") {
            for p in pairs_held(m, &r.values) {
                assert!(covered.contains(&p), "{p:?} of {} is testable", m.id(r));
            }
        }
        assert!(covered.len() < pairs);
        covered.len()
    }

    #[test]
    fn the_pairwise_array_covers_every_testable_pair_where_both_matter() {
        let m = model(&DeviceFacts::default());
        let array = m.covering_array(2, 1).expect("pairwise");
        let c = array.coverage.expect("masking-aware");
        let covered = assert_covers_every_testable_pair(&m, &array.rows);
        assert_eq!((c.testable, c.covered, c.undecided), (covered, covered, 0));
        assert_eq!(c.rows + c.refusals, array.rows.len());
        assert_eq!(c.refusals, m.invalid_rows().len());
        // The plain array, normalised, covered far fewer.
        let plain = m.plain_coverage(2, 1).expect("plain");
        assert!(plain.covered < covered / 2, "{plain:?} vs {covered}");
        assert_eq!(
            plain.covered,
            m.held_tuples(2, &m.plain_covering(2, 1).expect("plain"))
                .expect("t = 2")
        );
        // The same seed, the same array.
        let again = m.covering(2, 1).expect("pairwise");
        assert_eq!(again, array.rows);
    }

    #[test]
    fn a_firmware_lacking_features_gets_every_testable_pair_and_one_refusal_per_value() {
        let facts = DeviceFacts {
            unsupported: vec![
                "pop-before-smtp".into(),
                "load-reduction".into(),
                "check-revocation".into(),
            ],
            ..Default::default()
        };
        let m = model(&facts);
        let array = m.covering_array(2, 1).expect("pairwise");
        let c = array.coverage.expect("masking-aware");
        let covered = assert_covers_every_testable_pair(&m, &array.rows);
        assert_eq!((c.testable, c.covered, c.undecided), (covered, covered, 0));
        let dropped = unsupported_values(&m);
        assert_eq!(dropped.len(), 6, "{dropped:?}");
        for (d, v, _) in &dropped {
            let with: Vec<&Row> = array.rows.iter().filter(|r| r.get(&m, *d) == v).collect();
            assert_eq!(with.len(), 1, "{d}={v}");
            assert_eq!(with[0].section, "invalid", "{d}={v}: a refusal case");
            assert_eq!(
                with[0].values.iter().filter(|j| **j != 0).count(),
                1,
                "{d}={v}: alone"
            );
        }
    }

    #[test]
    fn a_witness_tests_its_tuple_and_a_search_out_of_steps_is_undecided() {
        let m = model(&DeviceFacts::default());
        let v = |d: Dim, name: &str| {
            let j = m.dims[d.index()]
                .values
                .iter()
                .position(|x| x.name == name)
                .expect("value");
            (d.index(), j)
        };
        // Deep in the sending path: a certificate check and POP before SMTP.
        let tuple = [
            v(Dim::SmtpVerifyCn, "on"),
            v(Dim::PopTls, "stls"),
            v(Dim::LoadMode, "split"),
        ];
        let Witness::Row(row) = witness(&m, &tuple, SEARCH_STEPS) else {
            panic!("testable")
        };
        let mut n = row.clone();
        m.normalise(&mut n);
        assert_eq!(n, row, "normalised");
        for (d, j) in tuple {
            assert_eq!(row[d], j);
            assert_eq!(m.collapsed(&row, d), None, "{}", m.dims[d].name);
        }
        // No certificate fails both the expiry and the key-usage check: the two never
        // matter together.
        let both = [
            v(Dim::SmtpVerifyExpiry, "off"),
            v(Dim::SmtpVerifyKeyUsage, "on"),
        ];
        assert_eq!(witness(&m, &both, SEARCH_STEPS), Witness::Untestable);
        // Nor does anything after the master switch is off.
        let off = [v(Dim::EmailEnabled, "off"), v(Dim::SmtpTls, "starttls")];
        assert_eq!(witness(&m, &off, SEARCH_STEPS), Witness::Untestable);
        assert_eq!(witness(&m, &both, 3), Witness::Undecided);
    }

    #[test]
    fn tuples_whose_search_runs_out_are_counted_apart() {
        let m = model(&DeviceFacts::default());
        let (rows, c) = generate_with(&m, 2, 1, 3).expect("pairwise");
        assert!(c.undecided > 0, "{c:?}");
        assert_eq!(c.testable, c.covered);
        assert!(c.testable + c.undecided <= c.tuples, "{c:?}");
        assert_eq!(c.rows, rows.len());
        let lines = Coverage { plain: None, ..c }.lines().join("\n");
        assert!(
            lines.contains(&format!("undecided pairs: {}", c.undecided)),
            "{lines}"
        );
    }
}
