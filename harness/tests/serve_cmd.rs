//! `hil serve` as a user runs it, the binary over real sockets: a flood of client
//! lines costs bounded memory and a bounded `transcripts.jsonl`, and the server goes
//! on serving.

mod serve_common;

use serve_common::{peak_rss_kib, rss_kib, Serve};

/// A POP3 line flood as measured in issue 18 (10,000 lines of 4 KB per client), from
/// four clients at once (the bench, `cargo bench -p hil --bench serve_flood`, runs ten).
#[test]
fn a_pop3_line_flood_costs_hil_serve_a_few_mib_per_connection() {
    const CLIENTS: usize = 4;
    let s = Serve::start(serve_common::FLOOD_SCENARIO);
    let idle = rss_kib(s.pid());
    let pop = s.endpoint("pop3");
    let floods: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || serve_common::pop3_flood(pop, 10_000, 4096)))
        .collect();
    for f in floods {
        f.join().expect("a flood client");
    }
    // Still serving after it.
    serve_common::pop3_login(pop, "u", "p");
    let peak = peak_rss_kib(s.pid());
    let out = s.stop();
    let size = out.transcripts.len();
    eprintln!(
        "hil serve: RSS {idle} KiB idle, peak {peak} KiB under {CLIENTS} x 10,000 lines of 4 KB; \
         transcripts.jsonl {size} bytes"
    );
    let growth_mib = peak.saturating_sub(idle) / 1024;
    assert!(
        growth_mib <= 4 * CLIENTS as u64 + 16,
        "hil serve grew by {growth_mib} MiB under the flood"
    );
    assert!(
        size < (CLIENTS + 1) * 3 * 1024 * 1024,
        "transcripts.jsonl is {size} bytes"
    );
    let records: Vec<serde_json::Value> = out
        .transcripts
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), CLIENTS + 1, "every connection written");
    let flooded: Vec<Vec<&str>> = records
        .iter()
        .map(|r| {
            r["connection"]["transcript"]
                .as_array()
                .expect("a transcript")
                .iter()
                .filter_map(|e| e["text"].as_str())
                .collect::<Vec<&str>>()
        })
        .filter(|t| t.len() > 100)
        .collect();
    assert_eq!(flooded.len(), CLIENTS, "every flooded connection written");
    for texts in flooded {
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("… ") && t.contains("lines cut")),
            "the cut is marked"
        );
        assert!(
            texts.iter().any(|t| t.contains("signing off")),
            "the tail is kept"
        );
    }
}

/// The secrets of [`REDACT_SCENARIO`]'s accounts.
const PASSWORD: &str = "Sesame-Open-42";
const SPACED: &str = "open sesame 42";
const TOKEN: &str = "ya29.Tok3n-XyZ";
const WRONG: &str = "Wr0ng-Guess-77";

const REDACT_SCENARIO: &str = r#"
description = "redaction target"
[smtp]
hostname = "mx.hil.test"
auth = ["plain", "login", "cram-md5", "digest-md5", "xoauth2"]
accounts = [{ user = "printer", password = "Sesame-Open-42", token = "ya29.Tok3n-XyZ" },
            { user = "spaced", password = "open sesame 42" }]
[pop3]
apop = true
accounts = [{ user = "printer", password = "Sesame-Open-42" },
            { user = "spaced", password = "open sesame 42" }]
[[check]]
steps = [{ expect = "220" }]
"#;

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every form a secret of the scenario may take on the wire.
fn secret_forms() -> Vec<String> {
    let mut forms = Vec::new();
    for p in [PASSWORD, SPACED, WRONG] {
        forms.push(p.to_string());
        forms.push(b64(p));
        for u in ["printer", "spaced"] {
            forms.push(b64(&format!("\0{u}\0{p}")));
            forms.push(b64(&format!("{u}\0{u}\0{p}")));
        }
    }
    forms.push(TOKEN.to_string());
    forms.push(b64(&format!("user=printer\x01auth=Bearer {TOKEN}\x01\x01")));
    forms
}

/// One client mistake (or a correct exchange): the lines it sends after the greeting
/// (and EHLO for SMTP). `{P}`, `{S}`, `{W}`, `{T}` are replaced by the password, the
/// spaced password, a wrong password and the token; `{PLAIN}` by PLAIN's initial
/// response for printer, `{PLAINW}` with the wrong password, `{XOAUTH2}` by XOAUTH2's;
/// `{CRAM}` by the CRAM-MD5 response to the last challenge, `{APOP}` by the APOP
/// digest of the greeting's timestamp.
struct Mistake {
    server: &'static str,
    name: &'static str,
    lines: &'static [&'static str],
}

const fn m(server: &'static str, name: &'static str, lines: &'static [&'static str]) -> Mistake {
    Mistake {
        server,
        name,
        lines,
    }
}

const MISTAKES: &[Mistake] = &[
    m(
        "smtp",
        "AUTH PLAIN with an initial response",
        &["AUTH PLAIN {PLAIN}"],
    ),
    m("smtp", "lower case", &["auth plain {PLAIN}"]),
    m("smtp", "mixed case", &["AuTh PlAiN {PLAINW}"]),
    m("smtp", "no space after AUTH", &["AUTHPLAIN {PLAIN}"]),
    m("smtp", "no space at all", &["AUTHPLAIN{PLAIN}"]),
    m("smtp", "AUTH=PLAIN", &["AUTH=PLAIN {PLAIN}"]),
    m("smtp", "extra spaces", &["AUTH  PLAIN   {PLAIN}"]),
    m("smtp", "leading space", &["  AUTH PLAIN {PLAINW}"]),
    m("smtp", "tabs", &["AUTH\tPLAIN\t{PLAIN}"]),
    m("smtp", "a word too many", &["AUTH PLAIN {PLAIN} {P}"]),
    m("smtp", "continuation line", &["AUTH PLAIN", "{PLAIN}"]),
    m(
        "smtp",
        "continuation with a tab",
        &["AUTH PLAIN", "\t{PLAIN}"],
    ),
    m(
        "smtp",
        "cancel, then the credential anyway",
        &["AUTH PLAIN", "*", "{PLAIN}"],
    ),
    m("smtp", "LOGIN", &["AUTH LOGIN", "{b64:printer}", "{b64:P}"]),
    m(
        "smtp",
        "LOGIN with the user inline",
        &["AUTH LOGIN {b64:printer}", "{b64:W}"],
    ),
    m(
        "smtp",
        "LOGIN in clear text",
        &["AUTH LOGIN", "printer", "{P}"],
    ),
    m(
        "smtp",
        "LOGIN, a wrong password, then the right one after 535",
        &["AUTH LOGIN", "{b64:printer}", "{b64:W}", "{b64:P}", "{P}"],
    ),
    m("smtp", "CRAM-MD5", &["AUTH CRAM-MD5", "{CRAM}"]),
    m("smtp", "XOAUTH2 inline", &["AUTH XOAUTH2 {XOAUTH2}"]),
    m(
        "smtp",
        "XOAUTH2 continuation",
        &["AUTH XOAUTH2", "{XOAUTH2}"],
    ),
    m(
        "smtp",
        "NTLM (not offered), then a credential",
        &["AUTH NTLM {b64:P}", "{b64:P}"],
    ),
    m(
        "smtp",
        "an unknown mechanism, then credentials",
        &["AUTH FOO", "{b64:printer}", "{b64:W}", "{W}"],
    ),
    m(
        "smtp",
        "AUTH before EHLO's reply is read, then the credential",
        &["RSET", "AUTH PLAIN {PLAINW} x", "{PLAINW}"],
    ),
    m(
        "smtp",
        "a password with spaces in clear",
        &["AUTH LOGIN", "{b64:spaced}", "{S}"],
    ),
    m("pop3", "USER and PASS", &["USER printer", "PASS {P}"]),
    m("pop3", "lower case", &["user printer", "pass {W}"]),
    m(
        "pop3",
        "PASS with two spaces and a tab",
        &["USER printer", "PASS  \t{P}"],
    ),
    m(
        "pop3",
        "PASS with spaces in the password",
        &["USER spaced", "PASS {S}"],
    ),
    m(
        "pop3",
        "PASS without the space",
        &["USER printer", "PASS{W}"],
    ),
    m(
        "pop3",
        "USER with the password appended",
        &["USER printer {P}"],
    ),
    m(
        "pop3",
        "USER with a tab and the password",
        &["user\tprinter\t{W}"],
    ),
    m(
        "pop3",
        "the password alone after USER",
        &["USER printer", "{P}"],
    ),
    m(
        "pop3",
        "PASS before USER, then the password again",
        &["PASS {P}", "{P}"],
    ),
    m(
        "pop3",
        "a wrong PASS, then the right one bare",
        &["USER printer", "PASS {W}", "{P}"],
    ),
    m(
        "pop3",
        "AUTH PLAIN with the response on the next line",
        &["AUTH PLAIN", "{PLAIN}"],
    ),
    m("pop3", "AUTH PLAIN inline", &["AUTH PLAIN {PLAIN}"]),
    m("pop3", "AUTHPLAIN", &["AUTHPLAIN {PLAINW}"]),
    m(
        "pop3",
        "AUTH LOGIN",
        &["auth login", "{b64:printer}", "{b64:P}"],
    ),
    m("pop3", "AUTH XOAUTH2", &["AUTH XOAUTH2", "{XOAUTH2}"]),
    m(
        "pop3",
        "AUTH, cancel, then the credential",
        &["AUTH PLAIN", "*", "{PLAIN}"],
    ),
    m("pop3", "APOP", &["APOP printer {APOP}"]),
    m(
        "pop3",
        "APOP in lower case with a tab",
        &["apop\tprinter\t{APOP}"],
    ),
];

/// A line client that reads one reply after each line (a multi-line SMTP reply
/// whole); remembers the last reply.
struct LineClient {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
    smtp: bool,
    last: String,
}

impl LineClient {
    fn open(addr: std::net::SocketAddr, smtp: bool) -> LineClient {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let mut c = LineClient {
            w: s.try_clone().expect("clone"),
            r: std::io::BufReader::new(s),
            smtp,
            last: String::new(),
        };
        c.read();
        c
    }
    fn read(&mut self) {
        use std::io::BufRead;
        self.last.clear();
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap_or(0) == 0 {
                return;
            }
            self.last.push_str(&l);
            if !self.smtp || l.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }
    fn say(&mut self, line: &str) {
        use std::io::Write;
        self.w
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.read();
    }
}

/// `{…}` placeholders of a mistake's line, filled from the conversation so far.
fn fill(line: &str, last: &str) -> String {
    let plain = |p: &str| b64(&format!("\0printer\0{p}"));
    let challenge = last
        .trim_end()
        .strip_prefix("334 ")
        .and_then(|c| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(c).ok()
        })
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default();
    let timestamp = last
        .find('<')
        .and_then(|a| last[a..].find('>').map(|b| &last[a..=a + b]))
        .unwrap_or("");
    let mut out = line
        .replace("{PLAINW}", &plain(WRONG))
        .replace("{PLAIN}", &plain(PASSWORD))
        .replace(
            "{XOAUTH2}",
            &b64(&format!("user=printer\x01auth=Bearer {TOKEN}\x01\x01")),
        )
        .replace(
            "{CRAM}",
            &b64(&format!(
                "printer {}",
                hil_mail::sasl::cram_md5_digest(PASSWORD, &challenge)
            )),
        )
        .replace("{APOP}", &hil_mail::pop3::apop_digest(timestamp, PASSWORD));
    for (k, v) in [("P", PASSWORD), ("S", SPACED), ("W", WRONG), ("T", TOKEN)] {
        out = out
            .replace(&format!("{{b64:{k}}}"), &b64(v))
            .replace(&format!("{{{k}}}"), v);
    }
    out.replace("{b64:printer}", &b64("printer"))
        .replace("{b64:spaced}", &b64("spaced"))
}

#[test]
fn no_client_mistake_puts_a_credential_in_the_transcripts_or_the_log() {
    let s = Serve::start(REDACT_SCENARIO);
    let (smtp, pop) = (s.endpoint("smtp"), s.endpoint("pop3"));
    for mistake in MISTAKES {
        let is_smtp = mistake.server == "smtp";
        let mut c = LineClient::open(if is_smtp { smtp } else { pop }, is_smtp);
        let mut last = c.last.clone();
        if is_smtp {
            c.say("EHLO client.hil.test");
        }
        for line in mistake.lines {
            let line = fill(line, if is_smtp { &c.last } else { &last });
            c.say(&line);
            last = c.last.clone();
        }
        c.say("QUIT");
    }
    let out = s.stop();
    let records = out.transcripts.lines().count();
    assert_eq!(records, MISTAKES.len(), "one record per connection");
    let mut leaks = Vec::new();
    for form in secret_forms() {
        for (what, text) in [
            ("transcripts.jsonl", &out.transcripts),
            ("standard output", &out.stdout),
            ("the log", &out.stderr),
        ] {
            for (i, l) in text.lines().enumerate() {
                if l.contains(&form) {
                    let case = if what == "transcripts.jsonl" {
                        MISTAKES.get(i).map_or("?", |m| m.name)
                    } else {
                        "-"
                    };
                    leaks.push(format!("{form:?} in {what} line {} ({case})", i + 1));
                }
            }
        }
    }
    assert!(leaks.is_empty(), "secrets written:\n{}", leaks.join("\n"));
}
