//! The modules of `sim/src` import each other without a cycle (issue 14): the module
//! graph is a DAG, read from the sources themselves.
//!
//! An arrow A → B means that module A names an item of module B: a `crate::B…` path
//! (in a `use` or inline, grouped imports `crate::{B, C::x}` included), or `super::B…`
//! at the top level of a file module (where `super` is the crate root). The crate
//! root (`lib.rs`) is a node too: it points at every module it names (`B::…`), and a
//! module that names a root item (`crate::SimArgs`) points at it, so a cycle through
//! the root is caught as well. `super::` inside an inline module (`mod tests`) names
//! the file's own module and is no arrow. Comments, strings and character literals
//! are skipped, so a doc link or a message naming a path is no arrow either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crate root's node name.
const ROOT: &str = "lib";

/// A module graph: each module and the modules it points at.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The source with comments, string literals and character literals blanked out
/// (replaced by spaces, so that nothing joins across them).
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        if c[i] == '/' && at(&c, i + 1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c[i] == '/' && at(&c, i + 1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(&c, i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(&c, i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…" (the `b` is passed as an identifier char).
        if c[i] == 'r' && (at(&c, i + 1) == Some('"') || at(&c, i + 1) == Some('#')) {
            let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
            let prev_is_b = i > 0 && c[i - 1] == 'b' && !(i > 1 && c[i - 2].is_alphanumeric());
            if !prev_ident || prev_is_b {
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) == Some(&'"') {
                    j += 1;
                    'scan: while j < c.len() {
                        if c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#')) {
                            j += 1 + hashes;
                            break 'scan;
                        }
                        j += 1;
                    }
                    i = j;
                    out.push(' ');
                    continue;
                }
            }
        }
        if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
            continue;
        }
        // A character literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
        if c[i] == '\'' {
            let close = if at(&c, i + 1) == Some('\\') {
                (i + 2..c.len().min(i + 12)).find(|&j| c[j] == '\'')
            } else if at(&c, i + 2) == Some('\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(j) = close {
                i = j + 1;
                out.push(' ');
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// The character at `i`, if any.
fn at(c: &[char], i: usize) -> Option<char> {
    c.get(i).copied()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The identifier starting at `i` (after any spaces), and where it ends.
fn ident_at(c: &[char], mut i: usize) -> (String, usize) {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    let start = i;
    while i < c.len() && is_ident(c[i]) {
        i += 1;
    }
    (c[start..i].iter().collect(), i)
}

/// The first identifiers of the top-level elements of a group `{a, b::c, d}` whose
/// `{` is at `open`.
fn group_heads(c: &[char], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expect_head = true;
    let mut i = open;
    while i < c.len() {
        match c[i] {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
                i += 1;
            }
            '}' => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => {
                expect_head = true;
                i += 1;
            }
            ch if expect_head && is_ident(ch) => {
                let (name, end) = ident_at(c, i);
                heads.push(name);
                expect_head = false;
                i = end;
            }
            _ => i += 1,
        }
    }
    heads
}

/// The nodes a path head names: a module, else an item of the crate root.
fn target(head: &str, modules: &BTreeSet<String>) -> Option<String> {
    match head {
        "self" | "super" | "crate" | "" => None,
        m if modules.contains(m) => Some(m.to_string()),
        _ => Some(ROOT.to_string()),
    }
}

/// Where module `name` (its source `src`) points.
fn arrows(name: &str, src: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let c: Vec<char> = code_only(src).chars().collect();
    let mut out = BTreeSet::new();
    // Brace depth, and the depths at which inline modules opened.
    let mut depth = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut pending_mod = false;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '{' {
            if pending_mod {
                inline_mods.push(depth);
                pending_mod = false;
            }
            depth += 1;
            i += 1;
            continue;
        }
        if ch == '}' {
            depth = depth.saturating_sub(1);
            if inline_mods.last() == Some(&depth) {
                inline_mods.pop();
            }
            i += 1;
            continue;
        }
        if ch == ';' {
            pending_mod = false;
            i += 1;
            continue;
        }
        if !is_ident(ch) || (i > 0 && (is_ident(c[i - 1]) || c[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let (word, end) = ident_at(&c, i);
        i = end;
        if word == "mod" {
            pending_mod = true;
            continue;
        }
        let path_follows = c.get(end) == Some(&':') && c.get(end + 1) == Some(&':');
        if !path_follows {
            continue;
        }
        let after = end + 2;
        let at_file_level = inline_mods.is_empty();
        let heads: Vec<String> = match word.as_str() {
            "crate" => match c.get(after) {
                Some('{') => group_heads(&c, after),
                _ => vec![ident_at(&c, after).0],
            },
            "super" if at_file_level && name != ROOT => match c.get(after) {
                Some('{') => group_heads(&c, after),
                _ => vec![ident_at(&c, after).0],
            },
            // The crate root names its modules by their bare names.
            m if name == ROOT && modules.contains(m) => vec![m.to_string()],
            _ => continue,
        };
        for h in heads {
            if let Some(t) = target(&h, modules) {
                if t != name {
                    out.insert(t);
                }
            }
        }
    }
    out
}

/// The module graph of the sources: file stem → source.
fn graph(sources: &BTreeMap<String, String>) -> Graph {
    let modules: BTreeSet<String> = sources.keys().filter(|m| *m != ROOT).cloned().collect();
    sources
        .iter()
        .map(|(name, src)| (name.clone(), arrows(name, src, &modules)))
        .collect()
}

/// Every cycle of the graph, one per strongly connected component, as
/// `a -> b -> … -> a` (and every module of the component when the cycle named does
/// not pass through all of them).
fn cycles(g: &Graph) -> Vec<String> {
    // Tarjan's strongly connected components.
    struct Tarjan<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(comp);
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    let mut found = Vec::new();
    for comp in t.components.into_iter().filter(|c| c.len() > 1) {
        let inside: BTreeSet<&str> = comp.iter().copied().collect();
        let start = *inside.iter().next().expect("non-empty");
        // The shortest way from `start` back to itself inside the component.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        while let Some(v) = queue.pop_front() {
            for w in g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !inside.contains(w) {
                    continue;
                }
                if w == start {
                    closing = Some(v);
                    break;
                }
                if !prev.contains_key(w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let mut path = vec![start];
        let mut v = closing.expect("a component has a cycle");
        while v != start {
            path.push(v);
            v = prev[v];
        }
        path.push(start);
        let n = path.len();
        path[1..n - 1].reverse();
        let mut named = path.join(" -> ");
        if inside.len() > n - 1 {
            let all: Vec<&str> = inside.iter().copied().collect();
            named.push_str(&format!(" (tangled with it: {})", all.join(", ")));
        }
        found.push(named);
    }
    found
}

fn sources() -> BTreeMap<String, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("sim/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_string();
        // main.rs is the binary, a crate of its own.
        if stem == "main" {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("a source file is readable");
        out.insert(stem, src);
    }
    out
}

#[test]
fn the_module_graph_of_sim_src_has_no_cycle() {
    let g = graph(&sources());
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles in sim/src (A -> B: A uses items of B):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_graph_is_read_from_the_sources() {
    // A few arrows that must be there, so that a scanner reading nothing cannot pass.
    let g = graph(&sources());
    for (from, to) in [
        ("net", "smtp_client"),
        ("smtp_client", "sasl_client"),
        ("console", "device"),
        ("device", "jobs"),
        ("menu", "dialect"),
        ("revocation", "http"),
        (ROOT, "transport"),
    ] {
        assert!(
            g.get(from).is_some_and(|t| t.contains(to)),
            "{from} -> {to} not found; the graph read: {g:#?}"
        );
    }
}

#[test]
fn cycles_are_found_and_named() {
    let src = |s: &str| s.to_string();
    let sources: BTreeMap<String, String> = [
        (
            src("lib"),
            src("pub mod a; pub mod b; pub mod c; pub mod d;\nfn f() { a::x(); d::y(); }"),
        ),
        (
            src("a"),
            src("use crate::{b::X, self as me};\n// crate::c::nothing\n"),
        ),
        (
            src("b"),
            src("fn f() { let s = \"crate::d\"; crate::c::g(); }"),
        ),
        (
            src("c"),
            src("use super::a::Y;\n#[cfg(test)]\nmod tests { use super::*; }"),
        ),
        (
            src("d"),
            src("fn g() -> char { '{' }\nmod m { use super::super::d; }\nuse crate::Root;"),
        ),
    ]
    .into();
    let g = graph(&sources);
    assert_eq!(
        g["a"],
        BTreeSet::from([src("b")]),
        "grouped imports, comments"
    );
    assert_eq!(g["b"], BTreeSet::from([src("c")]), "strings are no arrows");
    assert_eq!(g["c"], BTreeSet::from([src("a")]), "super:: at file level");
    assert_eq!(g["d"], BTreeSet::from([src(ROOT)]), "a root item");
    assert_eq!(g[ROOT], BTreeSet::from([src("a"), src("d")]), "the root");
    let found = cycles(&g);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&src("a -> b -> c -> a")), "{found:?}");
    assert!(found.contains(&src("d -> lib -> d")), "{found:?}");
}
