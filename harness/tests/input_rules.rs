//! SPEC §1's input rules, read twice: the oracle's (`hil_oracle::model::validate`) and
//! the simulated device's (`mfp_sim::settings::validate`) must accept and refuse the
//! same values. For every settable key, 10,000 values from a seeded generator: valid
//! values of the key's grammar, boundary values (lengths 63/64/65, 253–256, 319–321,
//! ports 0/1/65535/65536, each range ±1) and mutations of both (a character inserted,
//! deleted or replaced by a special, a space, a quote, non-ASCII, a full-width form,
//! `%zone`, brackets, dots, hyphens, digits). Each key must see both answers, so that
//! no generator is vacuous; a disagreement names the key, the value (escaped) and both
//! answers, up to 20 of them.

use std::collections::BTreeSet;

use hil_oracle::model as oracle;
use mfp_sim::settings as sim;
use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};

/// Values generated per key.
const CASES: usize = 10_000;
/// Disagreements collected before failing, and at most so many of one key (so that
/// one key's many do not hide another's).
const MAX_REPORTED: usize = 20;
const MAX_PER_KEY: usize = 4;

/// SPEC §1's keys, its POP note's and `net.dns`, with the XOAUTH2 token (an
/// extension both sides implement).
const SPEC_KEYS: &[&str] = &[
    "email.enabled",
    "email.scan",
    "email.notify",
    "email.counter",
    "smtp.server",
    "smtp.tls",
    "smtp.port",
    "smtp.ssl_port",
    "smtp.verify.expiry",
    "smtp.verify.cn",
    "smtp.verify.key_usage",
    "smtp.verify.chain",
    "smtp.verify.revocation",
    "smtp.timeout",
    "admin.address",
    "device.address",
    "pop_before_smtp.enabled",
    "pop_before_smtp.wait",
    "smtp.auth.enabled",
    "smtp.auth.methods",
    "smtp.auth.user",
    "smtp.auth.password",
    "smtp.auth.realm",
    "smtp.auth.source",
    "envelope_from.mode",
    "envelope_from.address",
    "load.mode",
    "load.split_size",
    "load.max_size",
    "load.server_capacity",
    "pop.server",
    "pop.tls",
    "pop.port",
    "pop.ssl_port",
    "pop.apop",
    "pop.user",
    "pop.password",
    "net.dns",
    "smtp.auth.token",
];

/// Keys a side may lack, each with the reason. Anything else missing on one side fails.
const ALLOWED_MISSING: &[(&str, &str)] = &[];

/// A key's grammar, as SPEC §1 gives it: what the generator builds values from.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Int(u64, u64),
    Choice(&'static [&'static str]),
    Host,
    Address,
    /// Free text of at most so many characters (which characters is for the rules
    /// to say; the generator offers every kind).
    Text(usize),
    Methods,
    /// A comma list of IP addresses (`net.dns`).
    Addresses,
}

fn kind(key: &str) -> Option<Kind> {
    Some(match key {
        "email.enabled"
        | "email.scan"
        | "email.notify"
        | "email.counter"
        | "smtp.verify.expiry"
        | "smtp.verify.cn"
        | "smtp.verify.key_usage"
        | "smtp.verify.chain"
        | "smtp.verify.revocation"
        | "pop_before_smtp.enabled"
        | "smtp.auth.enabled"
        | "pop.apop" => Kind::Bool,
        "smtp.server" | "pop.server" => Kind::Host,
        "smtp.tls" => Kind::Choice(&["none", "smtps", "starttls"]),
        "pop.tls" => Kind::Choice(&["none", "pop3s", "stls"]),
        "smtp.auth.source" => Kind::Choice(&["configured", "device_user"]),
        "envelope_from.mode" => Kind::Choice(&["admin", "specified"]),
        "load.mode" => Kind::Choice(&[
            "none",
            "split",
            "abort_over_limit",
            "url_over_limit",
            "url_always",
        ]),
        "load.max_size" => Kind::Choice(&["unlimited", "limited"]),
        "smtp.port" | "smtp.ssl_port" | "pop.port" | "pop.ssl_port" => Kind::Int(1, 65535),
        "smtp.timeout" => Kind::Int(30, 300),
        "pop_before_smtp.wait" => Kind::Int(0, 60),
        "load.split_size" => Kind::Int(100, 15000),
        "load.server_capacity" => Kind::Int(1, 102_400),
        "admin.address" | "device.address" | "envelope_from.address" => Kind::Address,
        "smtp.auth.user" | "pop.user" => Kind::Text(64),
        "smtp.auth.password" | "pop.password" => Kind::Text(64),
        "smtp.auth.token" => Kind::Text(2048),
        "smtp.auth.realm" => Kind::Text(253),
        "smtp.auth.methods" => Kind::Methods,
        "net.dns" => Kind::Addresses,
        _ => return None,
    })
}

/// A seeded random source with the few draws the generators need.
struct Gen(TestRng);

impl Gen {
    fn new(key: &str) -> Gen {
        // One seed per key, so a key's values do not depend on the other keys.
        let mut seed = [7u8; 16];
        for (i, b) in key.bytes().enumerate() {
            seed[i % 16] ^= b;
        }
        Gen(TestRng::from_seed(RngAlgorithm::XorShift, &seed))
    }

    /// 0..n (0 when n is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.u64() % n as u64) as usize
        }
    }

    fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";

/// What mutations put in: specials, spaces, quotes, non-ASCII, full-width forms, zones,
/// brackets, empty labels, dots, hyphens, digits.
const INSERTS: &[&str] = &[
    " ", "\"", "'", ".", "..", "-", "_", "%", "%eth0", "%1", "[", "]", ":", "::", "@", ",", ";",
    "<", ">", "(", ")", "\\", "/", "\t", "\n", "\r", "\u{0}", "\u{7f}", "é", "ü", "Ａ", "ａ", "１",
    "．", "＠", "ー", "ユ", "\u{3000}", "\u{2028}", "\u{200b}", "😀", "0", "9", "255", "256", "a",
    "Z", "-a", "a-", ".-", "IPv6:", "+", "=", "~", "!", "#", "*",
];

/// One to three edits of `s`: insert, delete or replace a character.
fn mutate(g: &mut Gen, s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for _ in 0..1 + g.below(3) {
        let at = g.below(chars.len() + 1);
        let with = g.pick(INSERTS).chars();
        match g.below(3) {
            0 => {
                chars.splice(at..at, with);
            }
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => {
                chars.splice(at..at + 1, with);
            }
            _ => chars.extend(with),
        }
    }
    // Sometimes at either end: leading or trailing dots, hyphens, spaces.
    if g.chance(15) {
        let end = g.pick(&[".", "-", " ", "..", "%", "[", "]"]).chars();
        if g.chance(50) {
            chars.splice(0..0, end);
        } else {
            chars.extend(end);
        }
    }
    chars.into_iter().collect()
}

fn letters(g: &mut Gen, n: usize) -> String {
    (0..n).map(|_| g.pick(LETTERS) as char).collect()
}

/// A host-name label of `n` characters: letters, digits, inner hyphens; sometimes all
/// digits.
fn label(g: &mut Gen, n: usize) -> String {
    if g.chance(10) {
        return (0..n).map(|_| g.pick(DIGITS) as char).collect();
    }
    (0..n)
        .map(|i| {
            let inner = i > 0 && i + 1 < n;
            match g.below(10) {
                0 if inner => '-',
                1 | 2 => g.pick(DIGITS) as char,
                _ => g.pick(LETTERS) as char,
            }
        })
        .collect()
}

/// A host name of exactly `n` characters (n ≥ 1), its last label letters.
fn name_of_len(g: &mut Gen, n: usize) -> String {
    let mut out = String::new();
    while n - out.len() > 63 {
        let l = (n - out.len() - 2).min(63);
        out.push_str(&label(g, l));
        out.push('.');
    }
    let rest = n - out.len();
    out.push_str(&letters(g, rest));
    out
}

fn host_name(g: &mut Gen) -> String {
    match g.below(6) {
        0 => {
            let n = g.pick(&[252, 253, 254, 255, 256]);
            name_of_len(g, n)
        }
        1 => {
            let n = g.pick(&[62, 63, 64]);
            format!("{}.{}", label(g, n), letters(g, 3))
        }
        2 => {
            let n = 1 + g.below(4);
            let labels: Vec<String> = (0..n)
                .map(|_| {
                    let l = 1 + g.below(4);
                    label(g, l)
                })
                .collect();
            labels.join(".")
        }
        3 => {
            let n = 1 + g.below(20);
            format!("{}.", name_of_len(g, n))
        }
        _ => {
            let n = 1 + g.below(3);
            let mut labels: Vec<String> = (0..n)
                .map(|_| {
                    let l = 1 + g.below(12);
                    label(g, l)
                })
                .collect();
            let n = 2 + g.below(4);
            labels.push(letters(g, n));
            labels.join(".")
        }
    }
}

fn ipv4(g: &mut Gen) -> String {
    let parts = if g.chance(80) {
        4
    } else {
        g.pick(&[1, 2, 3, 5])
    };
    let octets: Vec<String> = (0..parts)
        .map(|_| match g.below(12) {
            0 => "256".into(),
            1 => "999".into(),
            2 => "255".into(),
            3 => "01".into(),
            4 => "0".into(),
            _ => g.below(256).to_string(),
        })
        .collect();
    octets.join(".")
}

fn ipv6(g: &mut Gen) -> String {
    let mut groups = [0u16; 8];
    for x in groups.iter_mut() {
        if g.chance(60) {
            *x = g.u64() as u16;
        }
    }
    let a = std::net::Ipv6Addr::from(groups);
    match g.below(4) {
        0 => format!("{}", a).to_uppercase(),
        1 => groups
            .iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":"),
        2 => format!("::ffff:{}", ipv4(g)),
        _ => a.to_string(),
    }
}

fn host(g: &mut Gen) -> String {
    match g.below(5) {
        0 => ipv4(g),
        1 => {
            let zone = g.pick(&["", "", "%eth0", "%1", "%", "%en-0_a.b", "%é", "%a b"]);
            format!("{}{zone}", ipv6(g))
        }
        _ => host_name(g),
    }
}

const ATEXT: &[u8] = b"abcXYZ0189!#$%&'*+-/=?^_`{|}~";

fn local_part(g: &mut Gen, n: usize) -> String {
    (0..n)
        .map(|i| {
            if i > 0 && i + 1 < n && g.chance(8) {
                '.'
            } else if g.chance(80) {
                g.pick(LETTERS) as char
            } else {
                g.pick(ATEXT) as char
            }
        })
        .collect::<String>()
        .replace("..", ".a")
}

fn address(g: &mut Gen) -> String {
    let n = g.pick(&[1, 5, 12, 63, 64, 65]);
    let local = local_part(g, n);
    let domain = match g.below(8) {
        0 => format!("[{}]", ipv4(g)),
        1 => format!("[IPv6:{}]", ipv6(g)),
        2 => {
            if g.chance(50) {
                ipv4(g)
            } else {
                ipv6(g)
            }
        }
        // Total lengths 319..=321 around the longest address, 64 + 1 + 255.
        3 => {
            let local = local_part(g, 64);
            let total = g.pick(&[319, 320, 321]);
            let domain = name_of_len(g, total - 65);
            return format!("{local}@{domain}");
        }
        _ => host_name(g),
    };
    format!("{local}@{domain}")
}

fn number(g: &mut Gen, lo: u64, hi: u64) -> String {
    match g.below(10) {
        0..=3 => (lo + g.u64() % (hi - lo + 1)).to_string(),
        4 | 5 => {
            let edges = [
                lo.saturating_sub(1),
                lo,
                lo + 1,
                hi - 1,
                hi,
                hi + 1,
                0,
                1,
                65535,
                65536,
            ];
            g.pick(&edges).to_string()
        }
        6 => g
            .pick(&[
                "",
                "+1",
                "-1",
                "007",
                "0030",
                " 25",
                "25 ",
                "1e3",
                "0x10",
                "18446744073709551615",
                "18446744073709551616",
                "99999999999999999999999",
                "１２",
                "٣",
            ])
            .to_string(),
        _ => {
            let v = (lo + g.u64() % (hi - lo + 1)).to_string();
            mutate(g, &v)
        }
    }
}

/// Characters for free text: printable ASCII, full-width and Japanese, quotes, and what
/// is not a character of either width (controls, separators).
fn text_char(g: &mut Gen, pool: usize) -> char {
    match pool {
        0 => (b' ' + g.below(95) as u8) as char,
        1 => g.pick(&[
            'Ａ', 'ｚ', '１', 'ユ', 'ー', '漢', 'é', '\u{3000}', '😀', '＂',
        ]),
        2 => g.pick(&['"', '\'', ' ', '\\', '%', '@']),
        _ => g.pick(&[
            '\n', '\t', '\r', '\u{0}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}',
        ]),
    }
}

fn text(g: &mut Gen, max: usize) -> String {
    // Lengths around the limit, else short (long random values only cost time).
    let n = match g.below(4) {
        0 => g.pick(&[0, 1, max - 1, max, max + 1]),
        _ => g.below(max.min(70) + 3),
    };
    // Mostly one pool per value, so that every pool yields valid values too.
    let main = if g.chance(60) { 0 } else { g.below(4) };
    (0..n)
        .map(|_| {
            let pool = if g.chance(3) { g.below(4) } else { main };
            text_char(g, pool)
        })
        .collect()
}

const MECHANISMS: &[&str] = &[
    "xoauth2",
    "gss-spnego",
    "ntlm",
    "digest-md5",
    "cram-md5",
    "login",
    "plain",
];

fn methods(g: &mut Gen) -> String {
    if g.chance(5) {
        return g
            .pick(&["none", "", "NONE", "none,plain", ",", "plain,", ",plain"])
            .to_string();
    }
    let n = 1 + g.below(4);
    let names: Vec<&str> = (0..n)
        .map(|_| {
            if g.chance(8) {
                g.pick(&["PLAIN", "Login", "md5", "plain ", "cram_md5", "x"])
            } else {
                g.pick(MECHANISMS)
            }
        })
        .collect();
    let sep = if g.chance(5) { ", " } else { "," };
    names.join(sep)
}

/// A list of DNS servers: empty, one to four IPv4/IPv6 addresses (valid or not, a
/// zone or brackets now and then), joined by commas, sometimes with a space, an empty
/// entry, another separator or a host name among them.
fn addresses(g: &mut Gen) -> String {
    if g.chance(8) {
        return g
            .pick(&["", ",", ",,", " ", "\"\"", "localhost", "ns1.example.com"])
            .to_string();
    }
    let n = 1 + g.below(4);
    let entries: Vec<String> = (0..n)
        .map(|_| match g.below(12) {
            0 => format!("[{}]", ipv6(g)),
            1 => format!("{}%eth0", ipv6(g)),
            2 => format!("{}:53", ipv4(g)),
            3 => host_name(g),
            4 => String::new(),
            5..=7 => ipv6(g),
            _ => ipv4(g),
        })
        .collect();
    let sep = match g.below(20) {
        0 => ", ",
        1 => ";",
        2 => " ",
        _ => ",",
    };
    entries.join(sep)
}

/// A value for a key of `kind`: valid or a boundary (about 60%), else a mutation.
fn value(g: &mut Gen, kind: Kind) -> String {
    let base = match kind {
        Kind::Bool => g
            .pick(&["on", "off", "ON", "Off", "true", "1", "", "no"])
            .to_string(),
        Kind::Int(lo, hi) => return number(g, lo, hi),
        Kind::Choice(words) => {
            if g.chance(15) {
                g.pick(&["", "NONE", "Split", "ssl", "tls", "pop3", "specified "])
                    .to_string()
            } else {
                g.pick(words).to_string()
            }
        }
        Kind::Host => host(g),
        Kind::Address => address(g),
        Kind::Text(max) => text(g, max),
        Kind::Methods => methods(g),
        Kind::Addresses => addresses(g),
    };
    if g.chance(40) {
        mutate(g, &base)
    } else {
        base
    }
}

/// A value printed so that any character can be seen: Rust's escaped debug form.
fn shown(v: &str) -> String {
    format!("{v:?} ({} chars)", v.chars().count())
}

#[test]
fn every_spec_key_is_on_both_sides() {
    let oracle_keys: BTreeSet<&str> = oracle::Key::ALL.iter().map(|k| k.as_str()).collect();
    let sim_keys: BTreeSet<&str> = sim::Key::ALL.iter().map(|k| k.as_str()).collect();
    let allowed = |k: &str| ALLOWED_MISSING.iter().any(|(a, _)| *a == k);
    let mut problems = Vec::new();
    for k in oracle_keys.symmetric_difference(&sim_keys) {
        let side = if oracle_keys.contains(k) {
            "oracle"
        } else {
            "sim"
        };
        if !allowed(k) {
            problems.push(format!("{k}: only the {side} has it"));
        }
    }
    for k in SPEC_KEYS {
        let (o, s) = (oracle_keys.contains(k), sim_keys.contains(k));
        if (!o || !s) && !allowed(k) {
            problems.push(format!("{k}: SPEC key (oracle: {o}, sim: {s})"));
        }
    }
    for k in oracle_keys.union(&sim_keys) {
        if !SPEC_KEYS.contains(k) {
            problems.push(format!("{k}: not a SPEC key"));
        }
    }
    assert!(problems.is_empty(), "keys:\n{}", problems.join("\n"));
}

#[test]
fn oracle_and_sim_accept_and_refuse_alike() {
    let mut disagreements = Vec::new();
    let mut vacuous = Vec::new();
    let mut totals = Vec::new();
    for key in oracle::Key::ALL {
        let name = key.as_str();
        let Ok(sim_key) = sim::Key::parse(name) else {
            continue; // every_spec_key_is_on_both_sides names it
        };
        let kind = kind(name).unwrap_or_else(|| panic!("no generator for {name}"));
        let mut g = Gen::new(name);
        let (mut accepted, mut refused, mut differ) = (0usize, 0usize, 0usize);
        for _ in 0..CASES {
            let v = value(&mut g, kind);
            let by_oracle = oracle::validate(*key, &v).map_err(|e| e.to_string());
            let by_sim = sim::validate(sim_key, &v).map_err(|e| e.rule);
            match (&by_oracle, &by_sim) {
                (Ok(()), Ok(_)) => accepted += 1,
                (Err(_), Err(_)) => refused += 1,
                _ => {
                    differ += 1;
                    if differ <= MAX_PER_KEY && disagreements.len() < MAX_REPORTED {
                        disagreements.push(format!(
                            "{name} = {}: oracle {by_oracle:?}, sim {:?}",
                            shown(&v),
                            by_sim.map(|_| ())
                        ));
                    }
                }
            }
        }
        if differ > 0 {
            totals.push(format!("{name}: {differ} of {CASES}"));
        }
        // Both answers, and each for a fair share of the values.
        if accepted < CASES / 20 || refused < CASES / 20 {
            vacuous.push(format!("{name}: {accepted} accepted, {refused} refused"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "oracle and sim disagree ({}); the first (at most {MAX_PER_KEY} a key):\n{}",
        totals.join(", "),
        disagreements.join("\n")
    );
    assert!(
        vacuous.is_empty(),
        "generators that miss a side of the rule:\n{}",
        vacuous.join("\n")
    );
}
