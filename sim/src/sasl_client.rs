//! The device's SASL client for SMTP AUTH (SPEC §3.7), without sockets: the SMTP
//! client base64-decodes each 334 challenge, feeds it to [`SaslClient::step`] and
//! base64-encodes what comes out.
//!
//! Written from the RFCs, independently of the harness's server side:
//! RFC 4616 (PLAIN), draft-murchison-sasl-login (LOGIN), RFC 2195 (CRAM-MD5),
//! RFC 2831 (DIGEST-MD5, `qop=auth` only) and Google's XOAUTH2 format.
//! GSS-SPNEGO and NTLM are named here (for the settings and the mechanism choice) but
//! not implemented.
//!
//! Nothing here panics on server input, and no failure reason contains the password
//! or the token.

use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use crate::text::printable;

/// A SASL mechanism the device knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mech {
    Xoauth2,
    GssSpnego,
    Ntlm,
    DigestMd5,
    CramMd5,
    Login,
    Plain,
}

impl Mech {
    /// Every mechanism, in the device's order of preference (SPEC §3.7).
    pub const PREFERENCE: [Mech; 7] = [
        Mech::Xoauth2,
        Mech::GssSpnego,
        Mech::Ntlm,
        Mech::DigestMd5,
        Mech::CramMd5,
        Mech::Login,
        Mech::Plain,
    ];

    /// The SASL name, as on the AUTH line and in EHLO.
    pub fn name(&self) -> &'static str {
        match self {
            Mech::Xoauth2 => "XOAUTH2",
            Mech::GssSpnego => "GSS-SPNEGO",
            Mech::Ntlm => "NTLM",
            Mech::DigestMd5 => "DIGEST-MD5",
            Mech::CramMd5 => "CRAM-MD5",
            Mech::Login => "LOGIN",
            Mech::Plain => "PLAIN",
        }
    }

    /// The word in `smtp.auth.methods`.
    pub fn setting(&self) -> &'static str {
        match self {
            Mech::Xoauth2 => "xoauth2",
            Mech::GssSpnego => "gss-spnego",
            Mech::Ntlm => "ntlm",
            Mech::DigestMd5 => "digest-md5",
            Mech::CramMd5 => "cram-md5",
            Mech::Login => "login",
            Mech::Plain => "plain",
        }
    }

    /// The mechanism of a `smtp.auth.methods` word (exactly as the setting spells it,
    /// lower case).
    pub fn from_setting(s: &str) -> Option<Mech> {
        Mech::PREFERENCE.into_iter().find(|m| m.setting() == s)
    }

    /// Whether this device can run the mechanism.
    pub fn is_implemented(&self) -> bool {
        !matches!(self, Mech::GssSpnego | Mech::Ntlm)
    }
}

/// SPEC §3.7: the first mechanism, in the device's preference order xoauth2, gss-spnego,
/// ntlm, digest-md5, cram-md5, login, plain, that is both enabled (`enabled`, setting words)
/// and offered by the server (`offered`: the words after "AUTH" in the last EHLO, any case).
pub fn choose(enabled: &[&str], offered: &[String]) -> Option<Mech> {
    Mech::PREFERENCE.into_iter().find(|m| {
        enabled.iter().any(|e| *e == m.setting())
            && offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()))
    })
}

/// The words the server offers: from EHLO extension lines ("AUTH PLAIN LOGIN", also the
/// old "AUTH=PLAIN LOGIN" form). Each word once (the first spelling kept), in the
/// server's order.
pub fn offered_mechanisms(ehlo_extensions: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in ehlo_extensions {
        let mut words = line.split_ascii_whitespace();
        let Some(first) = words.next() else { continue };
        let first_mech = if first.eq_ignore_ascii_case("AUTH") {
            None
        } else {
            match first.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("AUTH") => Some(v),
                _ => continue,
            }
        };
        for w in first_mech.into_iter().chain(words) {
            if !w.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(w)) {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// What the device authenticates with.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// `smtp.auth.realm`, may be empty (DIGEST-MD5 only).
    pub realm: String,
    /// The XOAUTH2 bearer token.
    pub token: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("realm", &self.realm)
            .field("token", &"<hidden>")
            .finish()
    }
}

/// The answer to a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslStep {
    /// Raw response bytes to base64-encode and send (possibly none: an empty line).
    Send(Vec<u8>),
    /// Nothing more to send; wait for 235. (No mechanism here returns it: after a 334
    /// SMTP always needs a line, RFC 4954 §4.)
    Done,
    /// The exchange cannot go on (the SMTP client cancels it with `*`): the reason,
    /// without secrets.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Nothing sent yet.
    Start,
    /// The first response is sent (XOAUTH2: the token; LOGIN: the user name).
    First,
    /// DIGEST-MD5: the digest is sent; the server's rspauth is expected.
    AwaitRspauth { expected: String },
    /// The mechanism has nothing more to say.
    Finished,
    /// A step failed; the exchange is over.
    Failed,
}

/// One SASL exchange, client side.
pub struct SaslClient {
    mech: Mech,
    creds: Credentials,
    digest_uri: String,
    cnonce: String,
    stage: Stage,
}

impl fmt::Debug for SaslClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClient")
            .field("mech", &self.mech)
            .field("creds", &self.creds)
            .field("digest_uri", &self.digest_uri)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl SaslClient {
    /// Starts `mech` for `creds`; `service_host` is the SMTP server name for DIGEST-MD5's
    /// digest-uri ("smtp/" + host); `cnonce_seed` makes the client nonce deterministic.
    pub fn new(mech: Mech, creds: Credentials, service_host: &str, cnonce_seed: u64) -> SaslClient {
        SaslClient {
            mech,
            creds,
            digest_uri: format!("smtp/{service_host}"),
            cnonce: cnonce_from_seed(cnonce_seed),
            stage: Stage::Start,
        }
    }

    /// The mechanism this exchange runs.
    pub fn mech(&self) -> Mech {
        self.mech
    }

    /// The initial response to put on the AUTH line, if the mechanism sends one first
    /// (PLAIN, XOAUTH2: yes; LOGIN, CRAM-MD5, DIGEST-MD5, GSS-SPNEGO, NTLM: None). It is
    /// given once; None also when the credentials cannot be put in this mechanism's
    /// format (the first challenge then fails with the reason).
    pub fn initial_response(&mut self) -> Option<Vec<u8>> {
        if self.stage != Stage::Start {
            return None;
        }
        let first = match self.mech {
            Mech::Plain | Mech::Xoauth2 => self.first_message().ok()?,
            _ => return None,
        };
        self.stage = match self.mech {
            Mech::Plain => Stage::Finished,
            _ => Stage::First,
        };
        Some(first)
    }

    /// Answers a 334 as the mechanism's normal prompt, whatever it said: LOGIN's next
    /// credential, PLAIN's message (again, if it went as the initial response). Only a
    /// planted bug (`--quirk malformed-challenge-ignored`) does this with a challenge
    /// that is not base64; other mechanisms answer an empty challenge.
    pub fn answer_prompt(&mut self) -> SaslStep {
        if self.mech == Mech::Plain && self.stage == Stage::Finished {
            return match self.first_message() {
                Ok(m) => SaslStep::Send(m),
                Err(reason) => {
                    self.stage = Stage::Failed;
                    fail(reason)
                }
            };
        }
        self.step(b"")
    }

    /// Answers a decoded 334 challenge.
    pub fn step(&mut self, challenge: &[u8]) -> SaslStep {
        let result = self.answer(challenge);
        if matches!(result, SaslStep::Fail(_)) {
            self.stage = Stage::Failed;
        }
        result
    }

    fn answer(&mut self, challenge: &[u8]) -> SaslStep {
        let name = self.mech.name();
        if self.stage == Stage::Failed {
            return fail(format!("the {name} exchange has already failed"));
        }
        if !self.mech.is_implemented() {
            return fail(format!("{name} is not implemented by this device"));
        }
        match (self.mech, std::mem::replace(&mut self.stage, Stage::Failed)) {
            // The server asked for the credentials (no initial response was sent).
            (Mech::Plain | Mech::Xoauth2, Stage::Start) => match self.first_message() {
                Ok(m) => {
                    self.stage = if self.mech == Mech::Plain {
                        Stage::Finished
                    } else {
                        Stage::First
                    };
                    SaslStep::Send(m)
                }
                Err(reason) => fail(reason),
            },
            // A challenge after the token is the server's JSON error: an empty response
            // makes the server send its final reply.
            (Mech::Xoauth2, Stage::First) => {
                self.stage = Stage::Finished;
                SaslStep::Send(Vec::new())
            }
            (Mech::Login, Stage::Start) => {
                self.stage = Stage::First;
                SaslStep::Send(self.creds.user.as_bytes().to_vec())
            }
            (Mech::Login, Stage::First) => {
                self.stage = Stage::Finished;
                SaslStep::Send(self.creds.password.as_bytes().to_vec())
            }
            (Mech::CramMd5, Stage::Start) => match cram_md5(&self.creds, challenge) {
                Ok(r) => {
                    self.stage = Stage::Finished;
                    SaslStep::Send(r)
                }
                Err(reason) => fail(reason),
            },
            (Mech::DigestMd5, Stage::Start) => match self.digest_first(challenge) {
                Ok((response, expected)) => {
                    self.stage = Stage::AwaitRspauth { expected };
                    SaslStep::Send(response)
                }
                Err(reason) => fail(reason),
            },
            (Mech::DigestMd5, Stage::AwaitRspauth { expected }) => {
                match check_rspauth(challenge, &expected) {
                    Ok(()) => {
                        self.stage = Stage::Finished;
                        SaslStep::Send(Vec::new())
                    }
                    Err(reason) => fail(reason),
                }
            }
            (_, Stage::Finished) => fail(format!(
                "the server sent another {name} challenge after the exchange was complete"
            )),
            // Not reachable with the transitions above; kept total without panicking.
            (_, _) => fail(format!("unexpected {name} challenge")),
        }
    }

    /// The PLAIN or XOAUTH2 message with the credentials.
    fn first_message(&self) -> Result<Vec<u8>, String> {
        let c = &self.creds;
        match self.mech {
            Mech::Plain => {
                // RFC 4616: authcid and passwd are UTF-8 without NUL.
                if c.user.contains('\0') || c.password.contains('\0') {
                    return Err("PLAIN cannot carry a user name or password with a NUL".into());
                }
                let mut m = Vec::with_capacity(c.user.len() + c.password.len() + 2);
                m.push(0);
                m.extend_from_slice(c.user.as_bytes());
                m.push(0);
                m.extend_from_slice(c.password.as_bytes());
                Ok(m)
            }
            Mech::Xoauth2 => {
                if c.user.contains('\x01') || c.token.contains('\x01') {
                    return Err("XOAUTH2 cannot carry a user name or token with a ^A".into());
                }
                Ok(format!("user={}\x01auth=Bearer {}\x01\x01", c.user, c.token).into_bytes())
            }
            other => Err(format!("{} has no initial response", other.name())),
        }
    }

    /// DIGEST-MD5 step one: the digest-response for the server's challenge, and the
    /// rspauth the server must answer with.
    fn digest_first(&self, challenge: &[u8]) -> Result<(Vec<u8>, String), String> {
        let ch = DigestChallenge::parse(challenge)?;
        let c = &self.creds;
        let realm = if !c.realm.is_empty() {
            c.realm.clone()
        } else {
            ch.realms.first().cloned().unwrap_or_default()
        };
        let enc = if ch.utf8 {
            Encoding::Utf8
        } else {
            // RFC 2831 §2.1.2: without charset=utf-8 the values go in ISO 8859-1.
            if !is_latin1(&c.user) || !is_latin1(&realm) || !is_latin1(&c.password) {
                return Err("the user name, realm or password has characters outside \
                            ISO 8859-1 and the server does not offer charset=utf-8"
                    .into());
            }
            Encoding::Latin1
        };
        let cnonce = self.cnonce.as_bytes();
        let uri = enc.bytes(&self.digest_uri);
        let nc = 1;
        let response = digest_hex(
            &DigestInput {
                user: &c.user,
                realm: &realm,
                password: &c.password,
                nonce: &ch.nonce,
                cnonce,
                nc,
                qop: "auth",
                digest_uri: &uri,
            },
            b"AUTHENTICATE:",
        );
        let expected = digest_hex(
            &DigestInput {
                user: &c.user,
                realm: &realm,
                password: &c.password,
                nonce: &ch.nonce,
                cnonce,
                nc,
                qop: "auth",
                digest_uri: &uri,
            },
            b":",
        );
        let mut out = Vec::new();
        if ch.utf8 {
            out.extend_from_slice(b"charset=utf-8,");
        }
        out.extend_from_slice(b"username=");
        push_quoted(&mut out, &enc.bytes(&c.user));
        if !realm.is_empty() {
            out.extend_from_slice(b",realm=");
            push_quoted(&mut out, &enc.bytes(&realm));
        }
        out.extend_from_slice(b",nonce=");
        push_quoted(&mut out, &ch.nonce);
        out.extend_from_slice(format!(",nc={nc:08x},cnonce=").as_bytes());
        push_quoted(&mut out, cnonce);
        out.extend_from_slice(b",digest-uri=");
        push_quoted(&mut out, &uri);
        out.extend_from_slice(format!(",response={response},qop=auth").as_bytes());
        Ok((out, expected))
    }
}

fn fail(reason: impl Into<String>) -> SaslStep {
    SaslStep::Fail(reason.into())
}

/// RFC 2195: `user SP lowercase-hex(HMAC-MD5(password, challenge))`.
fn cram_md5(creds: &Credentials, challenge: &[u8]) -> Result<Vec<u8>, String> {
    if challenge.is_empty() {
        return Err("the server's CRAM-MD5 challenge is empty".into());
    }
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(creds.password.as_bytes())
        .map_err(|_| "HMAC-MD5 refused the key".to_string())?;
    mac.update(challenge);
    let tag = mac.finalize().into_bytes();
    let mut out = creds.user.as_bytes().to_vec();
    out.push(b' ');
    out.extend_from_slice(hex(&tag).as_bytes());
    Ok(out)
}

/// A client nonce from a seed: 128 bits (splitmix64) as 32 lower-case hex digits.
fn cnonce_from_seed(seed: u64) -> String {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    format!("{a:016x}{b:016x}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_latin1(s: &str) -> bool {
    s.chars().all(|c| u32::from(c) <= 0xff)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Latin1,
}

impl Encoding {
    /// The bytes of `s` in this encoding (Latin1: only for text checked with
    /// [`is_latin1`]; other characters become `?`).
    fn bytes(self, s: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => s.as_bytes().to_vec(),
            Encoding::Latin1 => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                .collect(),
        }
    }
}

/// Appends `v` as an RFC 2831 quoted-string (`"` and `\` escaped).
fn push_quoted(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

struct DigestInput<'a> {
    user: &'a str,
    realm: &'a str,
    password: &'a str,
    nonce: &'a [u8],
    cnonce: &'a [u8],
    nc: u32,
    qop: &'a str,
    digest_uri: &'a [u8],
}

/// RFC 2831 §2.1.2.1 with `qop` auth: `a2_prefix` is `AUTHENTICATE:` for the
/// response, `:` for the server's rspauth.
fn digest_hex(d: &DigestInput<'_>, a2_prefix: &[u8]) -> String {
    // H({username, ":", realm, ":", passwd}), in ISO 8859-1 when every character of the
    // three fits (§2.1.2.1: also when charset=utf-8 is used), else in UTF-8.
    let enc = if is_latin1(d.user) && is_latin1(d.realm) && is_latin1(d.password) {
        Encoding::Latin1
    } else {
        Encoding::Utf8
    };
    let mut secret = enc.bytes(d.user);
    secret.push(b':');
    secret.extend(enc.bytes(d.realm));
    secret.push(b':');
    secret.extend(enc.bytes(d.password));
    let ha1 = Md5::new()
        .chain_update(Md5::digest(&secret))
        .chain_update(b":")
        .chain_update(d.nonce)
        .chain_update(b":")
        .chain_update(d.cnonce)
        .finalize();
    let ha2 = Md5::new()
        .chain_update(a2_prefix)
        .chain_update(d.digest_uri)
        .finalize();
    let kd = Md5::new()
        .chain_update(hex(&ha1))
        .chain_update(b":")
        .chain_update(d.nonce)
        .chain_update(format!(":{:08x}:", d.nc))
        .chain_update(d.cnonce)
        .chain_update(b":")
        .chain_update(d.qop)
        .chain_update(b":")
        .chain_update(hex(&ha2))
        .finalize();
    hex(&kd)
}

/// RFC 2831 §2.1.2.1: the `response` value, lower-case hex, for the given values (nc
/// as a number; it is hashed as 8 hex digits).
#[allow(clippy::too_many_arguments)]
pub fn digest_md5_response(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: u32,
    qop: &str,
    digest_uri: &str,
) -> String {
    digest_hex(
        &DigestInput {
            user,
            realm,
            password,
            nonce: nonce.as_bytes(),
            cnonce: cnonce.as_bytes(),
            nc,
            qop,
            digest_uri: digest_uri.as_bytes(),
        },
        b"AUTHENTICATE:",
    )
}

/// RFC 2831 §2.1.3: the `rspauth` value the server sends back, for the same values.
#[allow(clippy::too_many_arguments)]
pub fn digest_md5_rspauth(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: u32,
    qop: &str,
    digest_uri: &str,
) -> String {
    digest_hex(
        &DigestInput {
            user,
            realm,
            password,
            nonce: nonce.as_bytes(),
            cnonce: cnonce.as_bytes(),
            nc,
            qop,
            digest_uri: digest_uri.as_bytes(),
        },
        b":",
    )
}

/// Server text for a reason: decoded loosely, made printable and short.
fn shown(v: &[u8]) -> String {
    let s: String = printable(&String::from_utf8_lossy(v))
        .chars()
        .take(60)
        .collect();
    format!("{s:?}")
}

/// Splits an RFC 2831 directive list (`name=value` or `name="quoted"`, separated by
/// commas, with linear white space around them; empty elements allowed) into names
/// (lower case) and unescaped values.
fn parse_directives(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let is_lws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let is_sep = |b: u8| {
        matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'='
                | b'{'
                | b'}'
        )
    };
    let is_token = |b: u8| b > 0x20 && b < 0x7f && !is_sep(b);
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| input.get(i).copied();
    loop {
        while at(i).is_some_and(|b| is_lws(b) || b == b',') {
            i += 1;
        }
        if at(i).is_none() {
            return Ok(out);
        }
        let start = i;
        while at(i).is_some_and(is_token) {
            i += 1;
        }
        let name = input.get(start..i).unwrap_or_default();
        if name.is_empty() {
            return Err(format!(
                "the challenge has a directive without a name at byte {start}"
            ));
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        while at(i).is_some_and(is_lws) {
            i += 1;
        }
        if at(i) != Some(b'=') {
            return Err(format!(
                "the challenge's directive {} has no value",
                shown(name.as_bytes())
            ));
        }
        i += 1;
        while at(i).is_some_and(is_lws) {
            i += 1;
        }
        let mut value = Vec::new();
        if at(i) == Some(b'"') {
            i += 1;
            loop {
                match at(i) {
                    None => {
                        return Err(format!(
                            "the challenge's directive {} has an unterminated quoted string",
                            shown(name.as_bytes())
                        ))
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => match at(i + 1) {
                        Some(b) => {
                            value.push(b);
                            i += 2;
                        }
                        None => {
                            return Err(format!(
                                "the challenge's directive {} ends in a lone backslash",
                                shown(name.as_bytes())
                            ))
                        }
                    },
                    Some(b) => {
                        value.push(b);
                        i += 1;
                    }
                }
            }
        } else {
            let vstart = i;
            while at(i).is_some_and(is_token) {
                i += 1;
            }
            value.extend_from_slice(input.get(vstart..i).unwrap_or_default());
        }
        while at(i).is_some_and(is_lws) {
            i += 1;
        }
        match at(i) {
            None | Some(b',') => {}
            Some(_) => {
                return Err(format!(
                    "the challenge has unexpected text after the directive {}",
                    shown(name.as_bytes())
                ))
            }
        }
        out.push((name, value));
    }
}

/// The parts of a DIGEST-MD5 challenge (RFC 2831 §2.1.1) the client uses.
#[derive(Debug)]
struct DigestChallenge {
    realms: Vec<String>,
    nonce: Vec<u8>,
    utf8: bool,
}

impl DigestChallenge {
    fn parse(challenge: &[u8]) -> Result<DigestChallenge, String> {
        let directives = parse_directives(challenge)?;
        let once = |name: &str| -> Result<Option<&[u8]>, String> {
            let mut found = directives.iter().filter(|(n, _)| n == name);
            let first = found.next().map(|(_, v)| v.as_slice());
            if found.next().is_some() {
                return Err(format!("the challenge has more than one {name} directive"));
            }
            Ok(first)
        };
        let nonce = once("nonce")?
            .ok_or("the DIGEST-MD5 challenge has no nonce")?
            .to_vec();
        if nonce.is_empty() {
            return Err("the DIGEST-MD5 challenge's nonce is empty".into());
        }
        match once("algorithm")? {
            Some(a) if a.eq_ignore_ascii_case(b"md5-sess") => {}
            Some(a) => {
                return Err(format!(
                    "the DIGEST-MD5 challenge's algorithm is {}, not md5-sess",
                    shown(a)
                ))
            }
            None => return Err("the DIGEST-MD5 challenge has no algorithm=md5-sess".into()),
        }
        if let Some(q) = once("qop")? {
            let auth = q
                .split(|&b| b == b',')
                .any(|o| o.trim_ascii().eq_ignore_ascii_case(b"auth"));
            if !auth {
                return Err(format!(
                    "the DIGEST-MD5 challenge's qop {} does not offer auth",
                    shown(q)
                ));
            }
        }
        let utf8 = match once("charset")? {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(c) => {
                return Err(format!(
                    "the DIGEST-MD5 challenge's charset is {}, not utf-8",
                    shown(c)
                ))
            }
        };
        let mut realms = Vec::new();
        for (_, v) in directives.iter().filter(|(n, _)| n == "realm") {
            let realm = if utf8 {
                String::from_utf8(v.clone())
                    .map_err(|_| "a realm in the DIGEST-MD5 challenge is not UTF-8".to_string())?
            } else {
                v.iter().map(|&b| char::from(b)).collect()
            };
            realms.push(realm);
        }
        Ok(DigestChallenge {
            realms,
            nonce,
            utf8,
        })
    }
}

/// DIGEST-MD5 step two: the server's `rspauth=…` must be the expected one.
fn check_rspauth(challenge: &[u8], expected: &str) -> Result<(), String> {
    let directives = parse_directives(challenge)?;
    let mut found = directives.iter().filter(|(n, _)| n == "rspauth");
    let Some((_, got)) = found.next() else {
        return Err("the server's second DIGEST-MD5 challenge has no rspauth".into());
    };
    if found.next().is_some() {
        return Err("the server's second DIGEST-MD5 challenge has more than one rspauth".into());
    }
    if got.eq_ignore_ascii_case(expected.as_bytes()) {
        Ok(())
    } else {
        Err("the server's rspauth is wrong".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
            ..Credentials::default()
        }
    }

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    fn sent(step: SaslStep) -> Vec<u8> {
        match step {
            SaslStep::Send(b) => b,
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn failed(step: SaslStep) -> String {
        match step {
            SaslStep::Fail(r) => r,
            other => panic!("expected Fail, got {other:?}"),
        }
    }

    /// The directives of a client response, as text.
    fn directives_of(response: &[u8]) -> Vec<(String, String)> {
        parse_directives(response)
            .expect("the client's own response parses")
            .into_iter()
            .map(|(n, v)| (n, String::from_utf8(v).expect("UTF-8")))
            .collect()
    }

    fn has(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn get<'a>(d: &'a [(String, String)], name: &str) -> Option<&'a str> {
        d.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn names_and_settings_round_trip() {
        for m in Mech::PREFERENCE {
            assert_eq!(Mech::from_setting(m.setting()), Some(m));
            assert_eq!(m.name().to_ascii_lowercase(), m.setting());
        }
        assert_eq!(Mech::from_setting("PLAIN"), None);
        assert_eq!(Mech::from_setting("scram-sha-1"), None);
        assert_eq!(Mech::from_setting(""), None);
    }

    #[test]
    fn choose_follows_preference_order() {
        let all = [
            "plain",
            "login",
            "cram-md5",
            "digest-md5",
            "ntlm",
            "gss-spnego",
            "xoauth2",
        ];
        let offered = words(&[
            "PLAIN",
            "LOGIN",
            "CRAM-MD5",
            "DIGEST-MD5",
            "NTLM",
            "GSS-SPNEGO",
            "XOAUTH2",
        ]);
        assert_eq!(choose(&all, &offered), Some(Mech::Xoauth2));
        assert_eq!(choose(&all[..6], &offered), Some(Mech::GssSpnego));
        assert_eq!(choose(&all[..5], &offered), Some(Mech::Ntlm));
        assert_eq!(choose(&all[..4], &offered), Some(Mech::DigestMd5));
        assert_eq!(choose(&all[..3], &offered), Some(Mech::CramMd5));
        assert_eq!(choose(&all[..2], &offered), Some(Mech::Login));
        assert_eq!(choose(&all[..1], &offered), Some(Mech::Plain));
        assert_eq!(choose(&[], &offered), None);
    }

    #[test]
    fn choose_takes_the_intersection() {
        let enabled = ["plain", "login", "cram-md5"];
        // The server's order does not matter; the device's does.
        assert_eq!(
            choose(&enabled, &words(&["PLAIN", "LOGIN"])),
            Some(Mech::Login)
        );
        // DIGEST-MD5 is offered but not enabled.
        assert_eq!(
            choose(&enabled, &words(&["DIGEST-MD5", "PLAIN"])),
            Some(Mech::Plain)
        );
        // Nothing in common.
        assert_eq!(choose(&enabled, &words(&["DIGEST-MD5", "NTLM"])), None);
        assert_eq!(choose(&enabled, &[]), None);
        assert_eq!(choose(&["xoauth2"], &words(&["PLAIN"])), None);
        // Offers in any case.
        assert_eq!(
            choose(&enabled, &words(&["cram-md5", "Plain"])),
            Some(Mech::CramMd5)
        );
        // A near name is not the mechanism.
        assert_eq!(choose(&enabled, &words(&["CRAM-MD5X", "PLAINS"])), None);
    }

    #[test]
    fn offered_mechanisms_from_ehlo() {
        let ext = words(&[
            "PIPELINING",
            "SIZE 10240000",
            "AUTH PLAIN LOGIN CRAM-MD5",
            "AUTH=LOGIN PLAIN",
            "8BITMIME",
        ]);
        assert_eq!(
            offered_mechanisms(&ext),
            words(&["PLAIN", "LOGIN", "CRAM-MD5"])
        );
        // Only the old form, in lower case.
        let old = words(&["auth=login plain digest-md5"]);
        assert_eq!(
            offered_mechanisms(&old),
            words(&["login", "plain", "digest-md5"])
        );
        let offered = offered_mechanisms(&old);
        assert_eq!(choose(&["plain", "login"], &offered), Some(Mech::Login));
        // No AUTH, an empty AUTH, and words that only start like it.
        assert!(offered_mechanisms(&words(&["SIZE", "STARTTLS"])).is_empty());
        assert!(offered_mechanisms(&words(&["AUTH", "AUTH=", ""])).is_empty());
        assert!(offered_mechanisms(&words(&["AUTHX PLAIN", "XAUTH=LOGIN"])).is_empty());
        // Tabs and repeated spaces.
        assert_eq!(
            offered_mechanisms(&words(&["Auth  PLAIN\tLOGIN "])),
            words(&["PLAIN", "LOGIN"])
        );
    }

    #[test]
    fn plain_initial_response() {
        let mut c = SaslClient::new(Mech::Plain, creds("tim", "tanstaaf"), "mx", 1);
        assert_eq!(c.initial_response(), Some(b"\0tim\0tanstaaf".to_vec()));
        assert_eq!(c.initial_response(), None, "given once");
        let r = failed(c.step(b""));
        assert!(!r.contains("tanstaaf"));
    }

    #[test]
    fn plain_without_initial_response_answers_the_empty_challenge() {
        let mut c = SaslClient::new(Mech::Plain, creds("tim", "pw"), "mx", 1);
        assert_eq!(sent(c.step(b"")), b"\0tim\0pw");
        failed(c.step(b""));
    }

    #[test]
    fn plain_refuses_nul() {
        let mut c = SaslClient::new(Mech::Plain, creds("tim", "p\0w"), "mx", 1);
        assert_eq!(c.initial_response(), None);
        let r = failed(c.step(b""));
        assert!(r.contains("NUL"), "{r}");
        assert!(!r.contains("p\0w"));
    }

    #[test]
    fn login_sends_user_then_password_and_fails_on_a_third_challenge() {
        let mut c = SaslClient::new(Mech::Login, creds("tim", "secret"), "mx", 1);
        assert_eq!(c.initial_response(), None);
        assert_eq!(sent(c.step(b"Username:")), b"tim");
        assert_eq!(sent(c.step(b"Password:")), b"secret");
        let r = failed(c.step(b"Password:"));
        assert!(!r.contains("secret"), "{r}");
        // Failed stays failed.
        failed(c.step(b"Username:"));
    }

    #[test]
    fn login_ignores_the_challenge_text() {
        let mut c = SaslClient::new(Mech::Login, creds("tim", "secret"), "mx", 1);
        assert_eq!(sent(c.step(b"")), b"tim");
        assert_eq!(sent(c.step(b"\xff\x00garbage")), b"secret");
    }

    #[test]
    fn cram_md5_rfc2195_example() {
        let mut c = SaslClient::new(Mech::CramMd5, creds("tim", "tanstaaftanstaaf"), "mx", 1);
        assert_eq!(c.initial_response(), None);
        let r = sent(c.step(b"<1896.697170952@postoffice.reston.mci.net>"));
        assert_eq!(r, b"tim b913a602c7eda7a495b4e6e7334d3890");
        let again = failed(c.step(b"<1896.697170952@postoffice.reston.mci.net>"));
        assert!(!again.contains("tanstaaf"));
    }

    #[test]
    fn cram_md5_refuses_an_empty_challenge() {
        let mut c = SaslClient::new(Mech::CramMd5, creds("tim", "pw"), "mx", 1);
        failed(c.step(b""));
    }

    #[test]
    fn digest_md5_rfc2831_example_values() {
        let args = (
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            1,
            "auth",
            "imap/elwood.innosoft.com",
        );
        assert_eq!(
            digest_md5_response(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(
            digest_md5_rspauth(args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7),
            "ea40f60335c427b5527b84dbabcdfffd"
        );
    }

    #[test]
    fn digest_md5_rfc2831_example_exchange() {
        let mut creds = creds("chris", "secret");
        creds.realm = String::new();
        let mut c = SaslClient::new(Mech::DigestMd5, creds, "elwood.innosoft.com", 7);
        // The RFC's own client nonce and service, to compare byte for byte.
        c.cnonce = "OA6MHXh6VqTrRk".into();
        c.digest_uri = "imap/elwood.innosoft.com".into();
        assert_eq!(c.initial_response(), None);
        let challenge = b"realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",\
                          qop=\"auth\",algorithm=md5-sess,charset=utf-8";
        let r = sent(c.step(challenge));
        assert_eq!(
            String::from_utf8(r).expect("UTF-8"),
            "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
             nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
             digest-uri=\"imap/elwood.innosoft.com\",\
             response=d388dad90d4bbd760a152321f2143af7,qop=auth"
        );
        assert_eq!(
            sent(c.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd")),
            b""
        );
        failed(c.step(b"rspauth=ea40f60335c427b5527b84dbabcdfffd"));
    }

    /// Runs step one of DIGEST-MD5 against `challenge` and checks the response's digest.
    fn digest_step_one(creds: Credentials, challenge: &[u8]) -> Vec<(String, String)> {
        let mut c = SaslClient::new(Mech::DigestMd5, creds.clone(), "mx.hil.test", 42);
        let d = directives_of(&sent(c.step(challenge)));
        let realm = get(&d, "realm").unwrap_or("");
        let cnonce = get(&d, "cnonce").expect("cnonce");
        assert_eq!(get(&d, "digest-uri"), Some("smtp/mx.hil.test"));
        assert_eq!(get(&d, "nc"), Some("00000001"));
        assert_eq!(get(&d, "qop"), Some("auth"));
        assert_eq!(get(&d, "username"), Some(creds.user.as_str()));
        let nonce = get(&d, "nonce").expect("nonce");
        let expected = digest_md5_response(
            &creds.user,
            realm,
            &creds.password,
            nonce,
            cnonce,
            1,
            "auth",
            "smtp/mx.hil.test",
        );
        assert_eq!(get(&d, "response"), Some(expected.as_str()));
        let rspauth = digest_md5_rspauth(
            &creds.user,
            realm,
            &creds.password,
            nonce,
            cnonce,
            1,
            "auth",
            "smtp/mx.hil.test",
        );
        assert_eq!(
            sent(c.step(format!("rspauth={rspauth}").as_bytes())),
            b"",
            "the matching rspauth is accepted"
        );
        d
    }

    const TAIL: &str = "nonce=\"n0nce\",qop=\"auth\",algorithm=md5-sess,charset=utf-8";

    #[test]
    fn digest_md5_realm_rules() {
        let configured = Credentials {
            realm: "corp.example".into(),
            ..creds("tim", "pw")
        };
        // The configured realm wins over what the server offers.
        let d = digest_step_one(
            configured.clone(),
            format!("realm=\"a.example\",realm=\"b.example\",{TAIL}").as_bytes(),
        );
        assert_eq!(get(&d, "realm"), Some("corp.example"));
        let d = digest_step_one(configured, TAIL.as_bytes());
        assert_eq!(get(&d, "realm"), Some("corp.example"));
        // The one realm offered.
        let d = digest_step_one(
            creds("tim", "pw"),
            format!("realm=\"a.example\",{TAIL}").as_bytes(),
        );
        assert_eq!(get(&d, "realm"), Some("a.example"));
        // Several offered: the first.
        let d = digest_step_one(
            creds("tim", "pw"),
            format!("realm=\"b.example\", realm=\"a.example\",{TAIL}").as_bytes(),
        );
        assert_eq!(get(&d, "realm"), Some("b.example"));
        // None offered, none configured: the directive is left out (an empty realm).
        let d = digest_step_one(creds("tim", "pw"), TAIL.as_bytes());
        assert_eq!(get(&d, "realm"), None);
    }

    #[test]
    fn digest_md5_parses_whitespace_escapes_and_order() {
        let challenge = b"  algorithm = md5-sess ,, qop=\"auth-int, auth\" ,\r\n\t\
                          realm=\"we\\\"ird\\\\realm\", nonce=\"a\\bc\", \
                          maxbuf=65536, charset=UTF-8, stale=false, future=\"x,y\" ";
        let d = digest_step_one(creds("tim", "pw"), challenge);
        assert_eq!(get(&d, "realm"), Some("we\"ird\\realm"));
        assert_eq!(get(&d, "nonce"), Some("abc"));
        assert_eq!(get(&d, "charset"), Some("utf-8"));
    }

    #[test]
    fn digest_md5_escapes_its_own_values() {
        let d = digest_step_one(
            Credentials {
                realm: "r\"q".into(),
                ..creds("a\\b\"c", "pw")
            },
            TAIL.as_bytes(),
        );
        assert_eq!(get(&d, "username"), Some("a\\b\"c"));
        assert_eq!(get(&d, "realm"), Some("r\"q"));
    }

    #[test]
    fn digest_md5_without_charset_uses_latin1() {
        // No charset=utf-8 from the server: no charset in the response, values in
        // ISO 8859-1 and hashed as such.
        let mut c = SaslClient::new(Mech::DigestMd5, creds("jörg", "pw"), "mx", 3);
        let r = sent(c.step(b"nonce=\"n\",algorithm=md5-sess,realm=\"r\xe9alm\""));
        assert!(!r.starts_with(b"charset"));
        assert!(has(&r, b"username=\"j\xf6rg\""));
        assert!(has(&r, b"realm=\"r\xe9alm\""));
        // A user name that does not fit ISO 8859-1 cannot be sent without utf-8.
        let mut c = SaslClient::new(Mech::DigestMd5, creds("ユーザー", "pw"), "mx", 3);
        let r = failed(c.step(b"nonce=\"n\",algorithm=md5-sess"));
        assert!(r.contains("ISO 8859-1"), "{r}");
        // With charset=utf-8 it goes in UTF-8.
        let d = digest_step_one(creds("ユーザー", "pw"), TAIL.as_bytes());
        assert_eq!(get(&d, "username"), Some("ユーザー"));
    }

    #[test]
    fn digest_md5_latin1_rule_in_the_hash() {
        // RFC 2831: with charset=utf-8, values that all fit ISO 8859-1 are hashed in it,
        // so "jörg" hashes the same as its ISO 8859-1 bytes would.
        let utf8 = digest_md5_response("jörg", "r", "pw", "n", "c", 1, "auth", "smtp/x");
        let ascii = digest_md5_response("jorg", "r", "pw", "n", "c", 1, "auth", "smtp/x");
        assert_ne!(utf8, ascii);
        let mut c = SaslClient::new(Mech::DigestMd5, creds("jörg", "pw"), "x", 3);
        let latin = directives_of(
            &sent(c.step(b"nonce=\"n\",algorithm=md5-sess,realm=r"))
                .iter()
                .map(|&b| char::from(b))
                .collect::<String>()
                .into_bytes(),
        );
        let mut c = SaslClient::new(Mech::DigestMd5, creds("jörg", "pw"), "x", 3);
        let unicode = directives_of(&sent(
            c.step(b"nonce=\"n\",algorithm=md5-sess,realm=r,charset=utf-8"),
        ));
        assert_eq!(get(&latin, "response"), get(&unicode, "response"));
    }

    #[test]
    fn digest_md5_rspauth_mismatch_fails() {
        let mut c = SaslClient::new(Mech::DigestMd5, creds("tim", "pw"), "mx", 9);
        sent(c.step(TAIL.as_bytes()));
        let r = failed(c.step(b"rspauth=00000000000000000000000000000000"));
        assert_eq!(r, "the server's rspauth is wrong");
        failed(c.step(b""));
        // No rspauth at all in the second challenge.
        let mut c = SaslClient::new(Mech::DigestMd5, creds("tim", "pw"), "mx", 9);
        sent(c.step(TAIL.as_bytes()));
        failed(c.step(TAIL.as_bytes()));
    }

    #[test]
    fn digest_md5_malformed_challenges_fail() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no nonce"),
            (b"qop=\"auth\",algorithm=md5-sess", "no nonce"),
            (b"nonce=\"\",algorithm=md5-sess", "empty"),
            (
                b"nonce=\"a\",nonce=\"b\",algorithm=md5-sess",
                "more than one nonce",
            ),
            (b"nonce=\"a\",algorithm=md5", "not md5-sess"),
            (b"nonce=\"a\"", "no algorithm"),
            (
                b"nonce=\"a\",algorithm=md5-sess,algorithm=md5-sess",
                "more than one algorithm",
            ),
            (
                b"nonce=\"a\",algorithm=md5-sess,qop=\"auth-int,auth-conf\"",
                "does not offer auth",
            ),
            (
                b"nonce=\"a\",algorithm=md5-sess,charset=latin1",
                "not utf-8",
            ),
            (b"nonce=\"a,algorithm=md5-sess", "unterminated"),
            (b"nonce=\"a\\", "backslash"),
            (b"nonce=\"a\" x,algorithm=md5-sess", "unexpected text"),
            (b"nonce", "no value"),
            (b"=x,nonce=\"a\",algorithm=md5-sess", "without a name"),
            (
                b"nonce=\"a\",algorithm=md5-sess,charset=utf-8,realm=\"\xff\"",
                "not UTF-8",
            ),
        ];
        for (challenge, want) in cases {
            let mut c = SaslClient::new(Mech::DigestMd5, creds("tim", "sekrit"), "mx", 1);
            let r = failed(c.step(challenge));
            assert!(
                r.contains(want),
                "{:?}: {r:?} lacks {want:?}",
                String::from_utf8_lossy(challenge)
            );
            assert!(!r.contains("sekrit"));
        }
    }

    #[test]
    fn digest_md5_cnonce_is_deterministic_and_varies_with_the_seed() {
        let cnonce = |seed| {
            let mut c = SaslClient::new(Mech::DigestMd5, creds("tim", "pw"), "mx", seed);
            let d = directives_of(&sent(c.step(TAIL.as_bytes())));
            get(&d, "cnonce").map(str::to_string)
        };
        assert_eq!(cnonce(5), cnonce(5));
        assert_ne!(cnonce(5), cnonce(6));
        assert_eq!(cnonce(5).map(|c| c.len()), Some(32));
    }

    #[test]
    fn xoauth2_format_and_error_challenge() {
        let creds = Credentials {
            token: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg".into(),
            ..creds("someuser@example.com", "")
        };
        let mut c = SaslClient::new(Mech::Xoauth2, creds, "mx", 1);
        assert_eq!(
            c.initial_response(),
            Some(
                b"user=someuser@example.com\x01auth=Bearer \
                  ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
                    .to_vec()
            )
        );
        // The JSON error challenge gets an empty response.
        let err = br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(sent(c.step(err)), b"");
        let r = failed(c.step(err));
        assert!(!r.contains("ya29"), "{r}");
    }

    #[test]
    fn xoauth2_without_initial_response() {
        let creds = Credentials {
            token: "tok".into(),
            ..creds("u", "")
        };
        let mut c = SaslClient::new(Mech::Xoauth2, creds, "mx", 1);
        assert_eq!(sent(c.step(b"")), b"user=u\x01auth=Bearer tok\x01\x01");
        assert_eq!(sent(c.step(b"{}")), b"");
    }

    #[test]
    fn unimplemented_mechanisms_fail() {
        for m in [Mech::GssSpnego, Mech::Ntlm] {
            let mut c = SaslClient::new(m, creds("tim", "pw"), "mx", 1);
            assert_eq!(c.initial_response(), None);
            let r = failed(c.step(b""));
            assert_eq!(r, format!("{} is not implemented by this device", m.name()));
            assert!(!m.is_implemented());
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let creds = Credentials {
            token: "t0ken".into(),
            realm: "r".into(),
            ..creds("tim", "pa55")
        };
        let c = SaslClient::new(Mech::Plain, creds.clone(), "mx", 1);
        for s in [format!("{creds:?}"), format!("{c:?}")] {
            assert!(!s.contains("pa55") && !s.contains("t0ken"), "{s}");
            assert!(s.contains("tim"));
        }
    }

    #[test]
    fn random_challenges_never_panic() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Bytes drawn mostly from the characters the directive syntax cares about.
        let alphabet = b"\"\\=, \t\r\nanoncealgorithmmd5-sessqoprealmrspauthcharsetutf-8\x00\xff";
        for round in 0..20_000 {
            let len = (rand() % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rand();
                    if round % 2 == 0 {
                        alphabet[(r as usize) % alphabet.len()]
                    } else {
                        r as u8
                    }
                })
                .collect();
            for m in Mech::PREFERENCE {
                let mut c = SaslClient::new(m, creds("tim", "Zq9#Xk"), "mx", rand());
                let _ = c.initial_response();
                for _ in 0..3 {
                    if let SaslStep::Fail(r) = c.step(&bytes) {
                        assert!(!r.contains("Zq9#Xk") && !r.is_empty());
                    }
                }
            }
            // Also as the rspauth challenge after a good first step.
            let mut c = SaslClient::new(Mech::DigestMd5, creds("tim", "pw"), "mx", 1);
            sent(c.step(TAIL.as_bytes()));
            let _ = c.step(&bytes);
        }
    }
}
