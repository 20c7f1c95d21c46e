//! The server side of SASL authentication for the fake SMTP server, without I/O.
//!
//! The SMTP session decodes the base64 of each client line and hands the raw bytes
//! to an [`Exchange`]; every [`Step::Challenge`] it gets back is base64-encoded after
//! "334 ". Mechanisms: PLAIN (RFC 4616), LOGIN (the de-facto draft), CRAM-MD5
//! (RFC 2195), DIGEST-MD5 (RFC 2831, `qop=auth` only, no security layers) and
//! XOAUTH2 (Google's bearer-token protocol).
//!
//! Challenges and nonces are built deterministically from [`Context::seed`] so that
//! transcripts are reproducible. Failure reasons name what was wrong, never a
//! password, a token, or any value the client sent.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// Client input longer than this (after base64 decoding) is refused.
pub const MAX_INPUT: usize = 16 * 1024;

/// The JSON error Google's XOAUTH2 sends as a challenge when the token is refused.
pub const XOAUTH2_ERROR: &str =
    r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

/// An account the fake server accepts. Its password and token are never serialized
/// nor shown by `Debug`, so they cannot reach a report or a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub user: String,
    #[serde(skip_serializing)]
    pub password: String,
    /// DIGEST-MD5 only: if set, the realm the client uses must be this one.
    #[serde(default)]
    pub realm: Option<String>,
    /// XOAUTH2 bearer token.
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("password", &"***")
            .field("realm", &self.realm)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A SASL mechanism the fake server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    Plain,
    Login,
    CramMd5,
    DigestMd5,
    Xoauth2,
}

impl Mechanism {
    /// Every mechanism, in the order they are usually advertised.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::CramMd5,
        Mechanism::DigestMd5,
        Mechanism::Xoauth2,
    ];

    /// The SASL name, as in `AUTH <name>` and the EHLO `AUTH` keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::DigestMd5 => "DIGEST-MD5",
            Mechanism::Xoauth2 => "XOAUTH2",
        }
    }

    /// Looks a SASL name up, case-insensitively.
    pub fn from_name(s: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server knows when a client starts AUTH.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub accounts: &'a [Account],
    pub hostname: &'a str,
    /// Realms offered in the DIGEST-MD5 challenge (may be empty or several).
    pub realms: &'a [String],
    /// Deterministic seed for nonces/challenges.
    pub seed: u64,
}

/// What the server does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (raw bytes; the caller base64-encodes it after "334 ").
    Challenge(Vec<u8>),
    /// Authenticated as this user.
    Success { user: String },
    /// Refused; `reason` says why (never containing the password or the raw payload).
    Failure { reason: String },
}

fn fail(reason: impl Into<String>) -> Step {
    Step::Failure {
        reason: reason.into(),
    }
}

/// Where an exchange is: what the next client response answers.
#[derive(Debug, Clone)]
enum State {
    /// PLAIN, after the empty challenge.
    PlainMessage,
    /// LOGIN, after "Username:".
    LoginUser,
    /// LOGIN, after "Password:".
    LoginPassword { user: String },
    /// CRAM-MD5, after the challenge.
    CramResponse { challenge: String },
    /// DIGEST-MD5, after the first challenge.
    DigestResponse { nonce: String },
    /// DIGEST-MD5, after `rspauth=...`: the client must answer with nothing.
    DigestAck { user: String },
    /// XOAUTH2, after the empty challenge.
    XoauthResponse,
    /// XOAUTH2, after the JSON error: the exchange fails whatever the client says.
    XoauthErrorAck { reason: String },
    /// Success or Failure was returned.
    Done,
}

/// One run of one mechanism, from `AUTH` to success or failure.
#[derive(Debug, Clone)]
pub struct Exchange {
    mech: Mechanism,
    state: State,
    claimed: Option<String>,
}

impl Exchange {
    /// Starts a mechanism; `initial` is the decoded initial response if the client
    /// sent one ("AUTH PLAIN <b64>"), Some(empty) for "=".
    pub fn start(mech: Mechanism, initial: Option<&[u8]>, ctx: &Context<'_>) -> (Exchange, Step) {
        let mut ex = Exchange {
            mech,
            state: State::Done,
            claimed: None,
        };
        let step = ex.begin(initial, ctx);
        (ex, step)
    }

    /// Feeds the decoded client response to the last challenge.
    pub fn step(&mut self, response: &[u8], ctx: &Context<'_>) -> Step {
        let state = std::mem::replace(&mut self.state, State::Done);
        if matches!(state, State::Done) {
            return fail("authentication exchange already finished");
        }
        if response.len() > MAX_INPUT {
            return fail(format!("response longer than {MAX_INPUT} bytes"));
        }
        let step = match state {
            State::PlainMessage => self.plain(response, ctx),
            State::LoginUser => self.login_user(response),
            State::LoginPassword { user } => login_password(&user, response, ctx),
            State::CramResponse { challenge } => self.cram(&challenge, response, ctx),
            State::DigestResponse { nonce } => self.digest(&nonce, response, ctx),
            State::DigestAck { user } => {
                if response.is_empty() {
                    Step::Success { user }
                } else {
                    fail("expected an empty response to rspauth")
                }
            }
            State::XoauthResponse => self.xoauth(response, ctx),
            State::XoauthErrorAck { reason } => {
                if response.is_empty() {
                    fail(reason)
                } else {
                    fail(format!(
                        "{reason} (and the answer to the error challenge was not empty)"
                    ))
                }
            }
            State::Done => fail("authentication exchange already finished"),
        };
        self.settle(step)
    }

    /// The mechanism this exchange runs.
    pub fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// The user name the client claimed so far (for transcripts), if known.
    pub fn claimed_user(&self) -> Option<&str> {
        self.claimed.as_deref()
    }

    /// True once Success or Failure has been returned.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn begin(&mut self, initial: Option<&[u8]>, ctx: &Context<'_>) -> Step {
        if let Some(init) = initial {
            if init.len() > MAX_INPUT {
                return fail(format!("initial response longer than {MAX_INPUT} bytes"));
            }
        }
        let step = match (self.mech, initial) {
            (Mechanism::Plain, Some(init)) => self.plain(init, ctx),
            (Mechanism::Plain, None) => {
                self.state = State::PlainMessage;
                Step::Challenge(Vec::new())
            }
            (Mechanism::Login, Some(init)) => self.login_user(init),
            (Mechanism::Login, None) => {
                self.state = State::LoginUser;
                Step::Challenge(b"Username:".to_vec())
            }
            (Mechanism::CramMd5 | Mechanism::DigestMd5, Some(_)) => fail(format!(
                "{} is server-first and takes no initial response",
                self.mech
            )),
            (Mechanism::CramMd5, None) => {
                let challenge = cram_md5_challenge(ctx.seed, ctx.hostname);
                let bytes = challenge.clone().into_bytes();
                self.state = State::CramResponse { challenge };
                Step::Challenge(bytes)
            }
            (Mechanism::DigestMd5, None) => {
                let nonce = digest_md5_nonce(ctx.seed);
                let bytes = digest_md5_challenge(ctx.realms, &nonce).into_bytes();
                self.state = State::DigestResponse { nonce };
                Step::Challenge(bytes)
            }
            (Mechanism::Xoauth2, Some(init)) => self.xoauth(init, ctx),
            (Mechanism::Xoauth2, None) => {
                self.state = State::XoauthResponse;
                Step::Challenge(Vec::new())
            }
        };
        self.settle(step)
    }

    /// A finished step leaves the exchange done, whatever state was set on the way.
    fn settle(&mut self, step: Step) -> Step {
        if !matches!(step, Step::Challenge(_)) {
            self.state = State::Done;
        }
        step
    }

    fn plain(&mut self, message: &[u8], ctx: &Context<'_>) -> Step {
        let mut parts = message.split(|&b| b == 0);
        let (Some(authzid), Some(authcid), Some(passwd), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return fail("PLAIN message must contain exactly two NUL separators");
        };
        let (Ok(authzid), Ok(authcid), Ok(passwd)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(authcid),
            std::str::from_utf8(passwd),
        ) else {
            return fail("PLAIN message is not valid UTF-8");
        };
        if authcid.is_empty() {
            return fail("PLAIN authcid is empty");
        }
        self.claimed = Some(authcid.to_owned());
        if passwd.is_empty() {
            return fail("PLAIN password is empty");
        }
        if !authzid.is_empty() && authzid != authcid {
            return fail("PLAIN authzid differs from authcid (proxy authorization refused)");
        }
        match check_password(ctx.accounts, authcid, passwd) {
            Ok(()) => Step::Success {
                user: authcid.to_owned(),
            },
            Err(reason) => fail(reason),
        }
    }

    fn login_user(&mut self, response: &[u8]) -> Step {
        match std::str::from_utf8(response) {
            Ok(user) => {
                self.claimed = Some(user.to_owned());
                self.state = State::LoginPassword {
                    user: user.to_owned(),
                };
                Step::Challenge(b"Password:".to_vec())
            }
            Err(_) => fail("LOGIN user name is not valid UTF-8"),
        }
    }

    fn cram(&mut self, challenge: &str, response: &[u8], ctx: &Context<'_>) -> Step {
        let Ok(text) = std::str::from_utf8(response) else {
            return fail("CRAM-MD5 response is not valid UTF-8");
        };
        // The user name may contain spaces; the digest is what follows the last one.
        let Some((user, digest)) = text.rsplit_once(' ') else {
            return fail("CRAM-MD5 response has no space between user and digest");
        };
        if user.is_empty() {
            return fail("CRAM-MD5 user name is empty");
        }
        self.claimed = Some(user.to_owned());
        if !is_lower_hex(digest, 32) {
            return fail("CRAM-MD5 digest is not 32 lowercase hex digits");
        }
        let mut known = false;
        for account in ctx.accounts.iter().filter(|a| a.user == user) {
            known = true;
            let expected = cram_md5_digest(&account.password, challenge);
            if ct_eq(expected.as_bytes(), digest.as_bytes()) {
                return Step::Success {
                    user: user.to_owned(),
                };
            }
        }
        if known {
            fail("CRAM-MD5 digest does not match (wrong password)")
        } else {
            fail("unknown user")
        }
    }

    fn digest(&mut self, nonce: &str, response: &[u8], ctx: &Context<'_>) -> Step {
        match self.digest_check(nonce, response, ctx) {
            Ok((user, rspauth)) => {
                self.state = State::DigestAck { user };
                Step::Challenge(format!("rspauth={rspauth}").into_bytes())
            }
            Err(reason) => fail(reason),
        }
    }

    /// Checks a DIGEST-MD5 response; gives the user and the rspauth value.
    fn digest_check(
        &mut self,
        nonce: &str,
        response: &[u8],
        ctx: &Context<'_>,
    ) -> Result<(String, String), String> {
        let directives = parse_directives(response)?;
        let d = Directives(&directives);
        for name in [
            "username",
            "realm",
            "nonce",
            "cnonce",
            "nc",
            "qop",
            "digest-uri",
            "response",
            "maxbuf",
            "charset",
            "cipher",
            "authzid",
        ] {
            if d.count(name) > 1 {
                return Err(format!(
                    "DIGEST-MD5 directive '{name}' appears more than once"
                ));
            }
        }

        let utf8 = match d.get("charset") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err("DIGEST-MD5 charset is not utf-8".into()),
        };

        let Some(user) = d.get("username") else {
            return Err("DIGEST-MD5 directive 'username' is missing".into());
        };
        let user = decode_text(user, utf8).ok_or("DIGEST-MD5 username is not valid UTF-8")?;
        self.claimed = Some(user.clone());

        // A missing realm counts as the empty string when computing A1 (RFC 2831 2.1.2).
        let realm = match d.get("realm") {
            Some(r) => decode_text(r, utf8).ok_or("DIGEST-MD5 realm is not valid UTF-8")?,
            None => String::new(),
        };
        if !ctx.realms.is_empty() && !ctx.realms.contains(&realm) {
            return Err("DIGEST-MD5 realm is not one of those offered".into());
        }

        let field = |name: &str| -> Result<&str, String> {
            let value = d
                .get(name)
                .ok_or_else(|| format!("DIGEST-MD5 directive '{name}' is missing"))?;
            std::str::from_utf8(value)
                .map_err(|_| format!("DIGEST-MD5 directive '{name}' is not valid UTF-8"))
        };

        if field("nonce")? != nonce {
            return Err("DIGEST-MD5 nonce does not match the one sent".into());
        }
        let cnonce = field("cnonce")?;
        if cnonce.is_empty() {
            return Err("DIGEST-MD5 cnonce is empty".into());
        }
        // Every exchange has a fresh nonce, so this is the first use of it.
        let nc = field("nc")?;
        if nc != "00000001" {
            return Err("DIGEST-MD5 nc is not 00000001".into());
        }
        let qop = match d.get("qop") {
            None => "auth",
            Some(_) => field("qop")?,
        };
        if qop != "auth" {
            return Err("DIGEST-MD5 qop is not 'auth' (no security layer is offered)".into());
        }
        let digest_uri = field("digest-uri")?;
        match digest_uri.strip_prefix("smtp/") {
            Some(host) if !host.is_empty() => {}
            _ => return Err("DIGEST-MD5 digest-uri does not name the smtp service".into()),
        }
        let client_response = field("response")?;
        if !is_lower_hex(client_response, 32) {
            return Err("DIGEST-MD5 response is not 32 lowercase hex digits".into());
        }
        // RFC 2831: the authzid is always UTF-8.
        let authzid = match d.get("authzid") {
            Some(_) => Some(field("authzid")?),
            None => None,
        };
        if let Some(a) = authzid {
            if !a.is_empty() && a != user {
                return Err(
                    "DIGEST-MD5 authzid differs from username (proxy authorization refused)".into(),
                );
            }
        }

        let mut known = false;
        let mut realm_ok = false;
        for account in ctx.accounts.iter().filter(|a| a.user == user) {
            known = true;
            if account.realm.as_ref().is_some_and(|r| *r != realm) {
                continue;
            }
            realm_ok = true;
            let params = DigestMd5Params {
                username: &user,
                realm: &realm,
                password: &account.password,
                nonce,
                cnonce,
                nc,
                qop,
                digest_uri,
                authzid,
            };
            if ct_eq(
                digest_md5_response(&params).as_bytes(),
                client_response.as_bytes(),
            ) {
                return Ok((user.clone(), digest_md5_rspauth(&params)));
            }
        }
        if !known {
            Err("unknown user".into())
        } else if !realm_ok {
            Err("DIGEST-MD5 realm is not the account's realm".into())
        } else {
            Err("DIGEST-MD5 response does not match (wrong password)".into())
        }
    }

    fn xoauth(&mut self, response: &[u8], ctx: &Context<'_>) -> Step {
        let (user, token) = match parse_xoauth2(response) {
            Ok(parsed) => parsed,
            Err(reason) => return fail(reason),
        };
        self.claimed = Some(user.to_owned());
        let mut known = false;
        for account in ctx.accounts.iter().filter(|a| a.user == user) {
            known = true;
            if let Some(t) = &account.token {
                if ct_eq(t.as_bytes(), token.as_bytes()) {
                    return Step::Success {
                        user: user.to_owned(),
                    };
                }
            }
        }
        let reason = if known {
            "XOAUTH2 token refused"
        } else {
            "unknown user"
        };
        self.state = State::XoauthErrorAck {
            reason: reason.to_owned(),
        };
        Step::Challenge(XOAUTH2_ERROR.as_bytes().to_vec())
    }
}

fn login_password(user: &str, response: &[u8], ctx: &Context<'_>) -> Step {
    let Ok(password) = std::str::from_utf8(response) else {
        return fail("LOGIN password is not valid UTF-8");
    };
    match check_password(ctx.accounts, user, password) {
        Ok(()) => Step::Success {
            user: user.to_owned(),
        },
        Err(reason) => fail(reason),
    }
}

fn check_password(accounts: &[Account], user: &str, password: &str) -> Result<(), &'static str> {
    let mut known = false;
    for account in accounts.iter().filter(|a| a.user == user) {
        known = true;
        if ct_eq(account.password.as_bytes(), password.as_bytes()) {
            return Ok(());
        }
    }
    if known {
        Err("wrong password")
    } else {
        Err("unknown user")
    }
}

/// `user=<user>^Aauth=Bearer <token>^A^A` → (user, token).
fn parse_xoauth2(response: &[u8]) -> Result<(&str, &str), &'static str> {
    let text = std::str::from_utf8(response).map_err(|_| "XOAUTH2 response is not valid UTF-8")?;
    let body = text
        .strip_suffix("\x01\x01")
        .ok_or("XOAUTH2 response does not end with ^A^A")?;
    let mut user = None;
    let mut auth = None;
    for part in body.split('\x01') {
        let (key, value) = part
            .split_once('=')
            .ok_or("XOAUTH2 response has a field without '='")?;
        let slot = match key {
            "user" => &mut user,
            "auth" => &mut auth,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err("XOAUTH2 response repeats a field");
        }
    }
    let user = user.ok_or("XOAUTH2 response has no user field")?;
    let auth = auth.ok_or("XOAUTH2 response has no auth field")?;
    if user.is_empty() {
        return Err("XOAUTH2 user is empty");
    }
    let (scheme, token) = auth
        .split_once(' ')
        .ok_or("XOAUTH2 auth field is not '<scheme> <token>'")?;
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Err("XOAUTH2 auth scheme is not Bearer");
    }
    if token.is_empty() {
        return Err("XOAUTH2 bearer token is empty");
    }
    Ok((user, token))
}

// ---------------------------------------------------------------------------
// Pure helpers: challenges and digests.

/// SplitMix64: a small, good-enough deterministic generator for challenges.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The CRAM-MD5 challenge `<n.m@hostname>` (RFC 2195 msg-id form) for a seed.
/// An empty hostname is replaced by `localhost`.
pub fn cram_md5_challenge(seed: u64, hostname: &str) -> String {
    let mut s = seed;
    let n = splitmix64(&mut s) % 100_000;
    let m = splitmix64(&mut s) % 10_000_000_000;
    let host = if hostname.is_empty() {
        "localhost"
    } else {
        hostname
    };
    format!("<{n}.{m}@{host}>")
}

/// HMAC-MD5 (RFC 2104) with an arbitrary key.
fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    // Prepare the full 64-byte block key as RFC 2104 says (keys longer than a
    // block are hashed first, shorter ones zero-padded) so construction is infallible.
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        let hashed: [u8; 16] = Md5::digest(key).into();
        for (dst, src) in block.iter_mut().zip(hashed) {
            *dst = src;
        }
    } else {
        for (dst, src) in block.iter_mut().zip(key) {
            *dst = *src;
        }
    }
    let mut mac = <Hmac<Md5> as KeyInit>::new(&block.into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// RFC 2195: lowercase hex of HMAC-MD5 keyed by the password over the challenge
/// (the challenge as sent, angle brackets included). The password is used as UTF-8.
pub fn cram_md5_digest(password: &str, challenge: &str) -> String {
    hex(&hmac_md5(password.as_bytes(), challenge.as_bytes()))
}

/// The DIGEST-MD5 nonce for a seed: 32 hex digits.
pub fn digest_md5_nonce(seed: u64) -> String {
    let mut s = seed ^ 0x6469_6765_7374_2d6d; // "digest-m": a different stream from CRAM-MD5
    format!("{:016x}{:016x}", splitmix64(&mut s), splitmix64(&mut s))
}

/// The first DIGEST-MD5 challenge (RFC 2831 2.1.1): one `realm` per offered realm,
/// then nonce, `qop="auth"`, `charset=utf-8`, `algorithm=md5-sess`.
pub fn digest_md5_challenge(realms: &[String], nonce: &str) -> String {
    let mut parts: Vec<String> = realms
        .iter()
        .map(|r| format!("realm={}", quote(r)))
        .collect();
    parts.push(format!("nonce={}", quote(nonce)));
    parts.push("qop=\"auth\"".into());
    parts.push("charset=utf-8".into());
    parts.push("algorithm=md5-sess".into());
    parts.join(",")
}

/// The inputs of the RFC 2831 response computation, as the client sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestMd5Params<'a> {
    pub username: &'a str,
    /// Empty if the client sent no realm.
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub qop: &'a str,
    pub digest_uri: &'a str,
    /// Included in A1 when present, even if empty.
    pub authzid: Option<&'a str>,
}

/// RFC 2831 2.1.2.1 `response-value` (A2 = "AUTHENTICATE:" digest-uri), lowercase hex.
pub fn digest_md5_response(p: &DigestMd5Params<'_>) -> String {
    digest_md5_kd(p, "AUTHENTICATE:")
}

/// RFC 2831 2.1.3 `response-auth` value (A2 = ":" digest-uri), lowercase hex.
pub fn digest_md5_rspauth(p: &DigestMd5Params<'_>) -> String {
    digest_md5_kd(p, ":")
}

fn digest_md5_kd(p: &DigestMd5Params<'_>, a2_prefix: &str) -> String {
    // A1 = { H({ username, ":", realm, ":", passwd }), ":", nonce, ":", cnonce [, ":", authzid] }
    let mut inner = Md5::new();
    inner.update(hash_text(p.username));
    inner.update(b":");
    inner.update(hash_text(p.realm));
    inner.update(b":");
    inner.update(hash_text(p.password));
    let mut a1 = Vec::with_capacity(64);
    a1.extend_from_slice(&inner.finalize());
    for part in [p.nonce, p.cnonce] {
        a1.push(b':');
        a1.extend_from_slice(part.as_bytes());
    }
    if let Some(authzid) = p.authzid {
        a1.push(b':');
        a1.extend_from_slice(authzid.as_bytes());
    }
    let ha1 = hex(&Md5::digest(&a1));
    let ha2 = hex(&Md5::digest(format!("{a2_prefix}{}", p.digest_uri)));
    let kd = format!("{ha1}:{}:{}:{}:{}:{ha2}", p.nonce, p.nc, p.cnonce, p.qop);
    hex(&Md5::digest(kd))
}

/// RFC 2831: user name, realm and password are hashed in ISO 8859-1 when all their
/// characters fit (each string on its own, as Cyrus SASL does), else in UTF-8.
fn hash_text(s: &str) -> Vec<u8> {
    let latin1: Option<Vec<u8>> = s.chars().map(|c| u8::try_from(c).ok()).collect();
    latin1.unwrap_or_else(|| s.as_bytes().to_vec())
}

/// Decodes a user name or realm: UTF-8 with `charset=utf-8`, else ISO 8859-1.
fn decode_text(bytes: &[u8], utf8: bool) -> Option<String> {
    if utf8 {
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    } else {
        Some(bytes.iter().map(|&b| char::from(b)).collect())
    }
}

/// A quoted-string with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Compares without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------
// DIGEST-MD5 directive lists.

struct Directives<'a>(&'a [(String, Vec<u8>)]);

impl Directives<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }
}

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 2616 token characters.
fn is_token_byte(b: u8) -> bool {
    b > 32 && b < 127 && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// Parses `key=value, key="quoted \"value\"", ...` (RFC 2831 `#` list of
/// `token = ( token | quoted-string )`). Names are lowercased; empty list elements
/// and whitespace around separators are tolerated. Unquoted values run to the next
/// comma or whitespace (so `digest-uri=smtp/host` is accepted though `/` is not a
/// token character).
fn parse_directives(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let malformed = |what: &str| format!("DIGEST-MD5 response is malformed ({what})");
    let mut out = Vec::new();
    let mut it = input.iter().copied().peekable();
    loop {
        while it.next_if(|&b| is_lws(b) || b == b',').is_some() {}
        if it.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(b) = it.next_if(|&b| is_token_byte(b)) {
            key.push(char::from(b.to_ascii_lowercase()));
        }
        if key.is_empty() {
            return Err(malformed("expected a directive name"));
        }
        while it.next_if(|&b| is_lws(b)).is_some() {}
        if it.next() != Some(b'=') {
            return Err(malformed("expected '=' after a directive name"));
        }
        while it.next_if(|&b| is_lws(b)).is_some() {}
        let mut value = Vec::new();
        if it.next_if_eq(&b'"').is_some() {
            loop {
                match it.next() {
                    None => return Err(malformed("unterminated quoted string")),
                    Some(b'"') => break,
                    Some(b'\\') => match it.next() {
                        Some(c) => value.push(c),
                        None => return Err(malformed("unterminated quoted string")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(b) = it.next_if(|&b| b != b',' && !is_lws(b) && b != b'"') {
                value.push(b);
            }
        }
        while it.next_if(|&b| is_lws(b)).is_some() {}
        match it.next() {
            None | Some(b',') => {}
            Some(_) => return Err(malformed("expected ',' between directives")),
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str, password: &str) -> Account {
        Account {
            user: user.into(),
            password: password.into(),
            realm: None,
            token: None,
        }
    }

    fn accounts() -> Vec<Account> {
        vec![
            account("tim", "tanstaaftanstaaf"),
            account("Kurt", "xipj3plmq"),
            account("Ursel", "ursel-pw"),
            Account {
                token: Some("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg".into()),
                ..account("someuser@example.com", "unused")
            },
            Account {
                realm: Some("elwood.innosoft.com".into()),
                ..account("chris", "secret")
            },
            account("jürgen", "grüße"),
        ]
    }

    fn ctx<'a>(accounts: &'a [Account], realms: &'a [String]) -> Context<'a> {
        Context {
            accounts,
            hostname: "postoffice.reston.mci.net",
            realms,
            seed: 42,
        }
    }

    fn reason(step: &Step) -> &str {
        match step {
            Step::Failure { reason } => reason,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn success(user: &str) -> Step {
        Step::Success { user: user.into() }
    }

    fn challenge(step: &Step) -> String {
        match step {
            Step::Challenge(bytes) => String::from_utf8(bytes.clone()).expect("utf-8 challenge"),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// No failure reason may carry a secret or what the client sent.
    fn assert_clean(step: &Step, secrets: &[&str]) {
        let r = reason(step);
        for s in secrets {
            assert!(!r.contains(s), "reason {r:?} leaks {s:?}");
        }
    }

    // ----- Mechanism, Account --------------------------------------------------

    #[test]
    fn mechanism_names_round_trip_case_insensitively() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(Mechanism::from_name("cram-md5"), Some(Mechanism::CramMd5));
        assert_eq!(
            Mechanism::from_name("Digest-Md5"),
            Some(Mechanism::DigestMd5)
        );
        assert_eq!(Mechanism::from_name("SCRAM-SHA-1"), None);
        assert_eq!(Mechanism::from_name(""), None);
        assert_eq!(Mechanism::from_name(" PLAIN"), None);
    }

    #[test]
    fn mechanism_serde_is_kebab_case() {
        assert_eq!(
            serde_json::to_string(&Mechanism::ALL).expect("serialize"),
            r#"["plain","login","cram-md5","digest-md5","xoauth2"]"#
        );
        let m: Mechanism = serde_json::from_str(r#""digest-md5""#).expect("deserialize");
        assert_eq!(m, Mechanism::DigestMd5);
    }

    #[test]
    fn account_realm_and_token_default_to_none() {
        let a: Account =
            serde_json::from_str(r#"{"user":"u","password":"p"}"#).expect("deserialize");
        assert_eq!(a, account("u", "p"));
    }

    // ----- PLAIN (RFC 4616) -----------------------------------------------------

    #[test]
    fn plain_rfc4616_example_with_initial_response() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (ex, step) = Exchange::start(Mechanism::Plain, Some(b"\0tim\0tanstaaftanstaaf"), &c);
        assert_eq!(step, success("tim"));
        assert_eq!(ex.mechanism(), Mechanism::Plain);
        assert_eq!(ex.claimed_user(), Some("tim"));
        assert!(ex.is_finished());
    }

    #[test]
    fn plain_without_initial_response_sends_empty_challenge() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::Plain, None, &c);
        assert_eq!(step, Step::Challenge(Vec::new()));
        assert_eq!(ex.claimed_user(), None);
        assert_eq!(ex.step(b"\0tim\0tanstaaftanstaaf", &c), success("tim"));
    }

    #[test]
    fn plain_authzid_equal_to_authcid_is_accepted() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"tim\0tim\0tanstaaftanstaaf"), &c);
        assert_eq!(step, success("tim"));
    }

    #[test]
    fn plain_rfc4616_proxy_example_is_refused() {
        // RFC 4616 section 4: Kurt authenticates and asks to act as Ursel.
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (ex, step) = Exchange::start(Mechanism::Plain, Some(b"Ursel\0Kurt\0xipj3plmq"), &c);
        assert!(reason(&step).contains("authzid"), "{step:?}");
        assert_clean(&step, &["xipj3plmq", "Ursel"]);
        assert_eq!(ex.claimed_user(), Some("Kurt"));
        // Without the authzid, Kurt's own credentials work.
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0Kurt\0xipj3plmq"), &c);
        assert_eq!(step, success("Kurt"));
    }

    #[test]
    fn plain_wrong_password_and_unknown_user_fail() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0tim\0tanstaaf"), &c);
        assert_eq!(reason(&step), "wrong password");
        assert_clean(&step, &["tanstaaf"]);
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0nobody\0tanstaaftanstaaf"), &c);
        assert_eq!(reason(&step), "unknown user");
        // User names are case-sensitive.
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"\0TIM\0tanstaaftanstaaf"), &c);
        assert_eq!(reason(&step), "unknown user");
    }

    #[test]
    fn plain_malformed_messages_fail() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let cases: &[&[u8]] = &[
            b"",
            b"tim",
            b"\0tim",
            b"\0tim\0hunter2\0",
            b"\0\0\0\0",
            b"\0\0tanstaaftanstaaf",
            b"\0tim\0",
            b"\0t\xffm\0tanstaaftanstaaf",
        ];
        for &msg in cases {
            let (ex, step) = Exchange::start(Mechanism::Plain, Some(msg), &c);
            assert!(matches!(step, Step::Failure { .. }), "{msg:?} -> {step:?}");
            assert!(ex.is_finished());
            assert_clean(&step, &["tanstaaf", "hunter2"]);
        }
    }

    // ----- LOGIN ------------------------------------------------------------------

    #[test]
    fn login_challenges_username_then_password() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::Login, None, &c);
        assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
        assert_eq!(ex.step(b"tim", &c), Step::Challenge(b"Password:".to_vec()));
        assert_eq!(ex.claimed_user(), Some("tim"));
        assert_eq!(ex.step(b"tanstaaftanstaaf", &c), success("tim"));
        assert!(ex.is_finished());
    }

    #[test]
    fn login_initial_response_is_the_username() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::Login, Some(b"Kurt"), &c);
        assert_eq!(step, Step::Challenge(b"Password:".to_vec()));
        assert_eq!(ex.claimed_user(), Some("Kurt"));
        assert_eq!(ex.step(b"xipj3plmq", &c), success("Kurt"));
    }

    #[test]
    fn login_failures() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, _) = Exchange::start(Mechanism::Login, Some(b"tim"), &c);
        let step = ex.step(b"guess", &c);
        assert_eq!(reason(&step), "wrong password");
        assert_clean(&step, &["guess"]);

        let (mut ex, _) = Exchange::start(Mechanism::Login, Some(b"mallory"), &c);
        assert_eq!(reason(&ex.step(b"tanstaaftanstaaf", &c)), "unknown user");

        let (_, step) = Exchange::start(Mechanism::Login, Some(b"\xc3\x28"), &c);
        assert!(reason(&step).contains("UTF-8"));

        let (mut ex, _) = Exchange::start(Mechanism::Login, None, &c);
        ex.step(b"tim", &c);
        assert!(reason(&ex.step(b"\xfe\xff", &c)).contains("UTF-8"));
    }

    #[test]
    fn login_accepts_non_ascii_utf8() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, _) = Exchange::start(Mechanism::Login, Some("jürgen".as_bytes()), &c);
        assert_eq!(ex.step("grüße".as_bytes(), &c), success("jürgen"));
    }

    // ----- CRAM-MD5 (RFC 2195) ----------------------------------------------------

    #[test]
    fn cram_md5_rfc2195_vector() {
        assert_eq!(
            cram_md5_digest(
                "tanstaaftanstaaf",
                "<1896.697170952@postoffice.reston.mci.net>"
            ),
            "b913a602c7eda7a495b4e6e7334d3890"
        );
    }

    #[test]
    fn cram_md5_rfc2202_hmac_md5_vectors() {
        // RFC 2202 test cases 2 and 6 (the latter with a key longer than a block).
        assert_eq!(
            hex(&hmac_md5(b"Jefe", b"what do ya want for nothing?")),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex(&hmac_md5(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn cram_md5_challenge_is_deterministic_msg_id() {
        let a = cram_md5_challenge(7, "mail.example.test");
        assert_eq!(a, cram_md5_challenge(7, "mail.example.test"));
        assert_ne!(a, cram_md5_challenge(8, "mail.example.test"));
        let inner = a
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix("@mail.example.test>"))
            .expect("msg-id form");
        let (n, m) = inner.split_once('.').expect("n.m");
        assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        assert!(!m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
        assert!(cram_md5_challenge(7, "").ends_with("@localhost>"));
    }

    #[test]
    fn cram_md5_full_exchange() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::CramMd5, None, &c);
        let chal = challenge(&step);
        assert_eq!(chal, cram_md5_challenge(c.seed, c.hostname));
        let answer = format!("tim {}", cram_md5_digest("tanstaaftanstaaf", &chal));
        assert_eq!(ex.step(answer.as_bytes(), &c), success("tim"));
        assert_eq!(ex.claimed_user(), Some("tim"));
    }

    #[test]
    fn cram_md5_user_name_with_space() {
        let accts = vec![account("tim smith", "pw")];
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::CramMd5, None, &c);
        let answer = format!("tim smith {}", cram_md5_digest("pw", &challenge(&step)));
        assert_eq!(ex.step(answer.as_bytes(), &c), success("tim smith"));
    }

    #[test]
    fn cram_md5_failures() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let start = || Exchange::start(Mechanism::CramMd5, None, &c);

        // The RFC's response does not fit our (different) challenge.
        let (mut ex, _) = start();
        let step = ex.step(b"tim b913a602c7eda7a495b4e6e7334d3890", &c);
        assert!(reason(&step).contains("wrong password"), "{step:?}");
        assert_clean(&step, &["b913a602"]);

        let (mut ex, step) = start();
        let digest = cram_md5_digest("tanstaaftanstaaf", &challenge(&step));
        let upper = format!("tim {}", digest.to_uppercase());
        assert!(reason(&ex.step(upper.as_bytes(), &c)).contains("lowercase hex"));

        let (mut ex, step) = start();
        let digest = cram_md5_digest("tanstaaftanstaaf", &challenge(&step));
        let unknown = format!("nobody {digest}");
        assert_eq!(reason(&ex.step(unknown.as_bytes(), &c)), "unknown user");

        for bad in [
            &b"tim"[..],
            b"tim ",
            b" b913a602c7eda7a495b4e6e7334d3890",
            b"\xff \xff",
        ] {
            let (mut ex, _) = start();
            let step = ex.step(bad, &c);
            assert!(matches!(step, Step::Failure { .. }), "{bad:?} -> {step:?}");
        }

        let (_, step) = Exchange::start(Mechanism::CramMd5, Some(b"tim"), &c);
        assert!(reason(&step).contains("initial response"));
        let (_, step) = Exchange::start(Mechanism::CramMd5, Some(b""), &c);
        assert!(reason(&step).contains("initial response"));
    }

    // ----- DIGEST-MD5 (RFC 2831) --------------------------------------------------

    const RFC_CLIENT: &str = "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",\
        nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",\
        digest-uri=\"imap/elwood.innosoft.com\",\
        response=d388dad90d4bbd760a152321f2143af7,qop=auth";

    fn rfc_params() -> DigestMd5Params<'static> {
        DigestMd5Params {
            username: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            digest_uri: "imap/elwood.innosoft.com",
            authzid: None,
        }
    }

    #[test]
    fn digest_md5_rfc2831_example_vectors() {
        let p = rfc_params();
        assert_eq!(digest_md5_response(&p), "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(digest_md5_rspauth(&p), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn digest_md5_rfc2831_challenge_format() {
        let realms = vec!["elwood.innosoft.com".to_string()];
        assert_eq!(
            digest_md5_challenge(&realms, "OA6MG9tEQGm2hh"),
            "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",\
             charset=utf-8,algorithm=md5-sess"
        );
        assert_eq!(
            digest_md5_challenge(&[], "n"),
            "nonce=\"n\",qop=\"auth\",charset=utf-8,algorithm=md5-sess"
        );
        let odd = vec!["a\"b\\c".to_string(), "x".to_string()];
        assert!(digest_md5_challenge(&odd, "n").starts_with(r#"realm="a\"b\\c",realm="x","#));
        // The challenge parses back with our own parser.
        let parsed = parse_directives(digest_md5_challenge(&odd, "n").as_bytes()).expect("parse");
        assert_eq!(parsed[0], ("realm".into(), b"a\"b\\c".to_vec()));
    }

    #[test]
    fn digest_md5_nonce_is_deterministic() {
        assert_eq!(digest_md5_nonce(1), digest_md5_nonce(1));
        assert_ne!(digest_md5_nonce(1), digest_md5_nonce(2));
        assert!(is_lower_hex(&digest_md5_nonce(1), 32));
    }

    #[test]
    fn digest_md5_parses_the_rfc2831_client_response() {
        let parsed = parse_directives(RFC_CLIENT.as_bytes()).expect("parse");
        let d = Directives(&parsed);
        assert_eq!(d.get("username"), Some(&b"chris"[..]));
        assert_eq!(d.get("nc"), Some(&b"00000001"[..]));
        assert_eq!(d.get("digest-uri"), Some(&b"imap/elwood.innosoft.com"[..]));
        assert_eq!(d.get("qop"), Some(&b"auth"[..]));
        assert_eq!(parsed.len(), 9);
    }

    #[test]
    fn digest_md5_parser_tolerates_whitespace_escapes_and_empty_elements() {
        let parsed = parse_directives(
            b" Username = \"ch\\\"r\\\\is\" ,, realm=\"\"\r\n\t, nc=00000001 , qop = auth ,",
        )
        .expect("parse");
        assert_eq!(
            parsed,
            vec![
                ("username".into(), b"ch\"r\\is".to_vec()),
                ("realm".into(), Vec::new()),
                ("nc".into(), b"00000001".to_vec()),
                ("qop".into(), b"auth".to_vec()),
            ]
        );
        for bad in [
            &b"username=\"chris"[..],
            b"username=\"chris\\",
            b"=x",
            b"username",
            b"username chris",
            b"a=b c=d",
            b"a=\"b\"c",
        ] {
            assert!(parse_directives(bad).is_err(), "{bad:?}");
        }
    }

    /// What a client sends, built from the challenge it got.
    struct Client<'a> {
        user: &'a str,
        realm: Option<&'a str>,
        password: &'a str,
        uri: &'a str,
        cnonce: &'a str,
        authzid: Option<&'a str>,
        nonce_override: Option<&'a str>,
    }

    impl<'a> Client<'a> {
        fn new(user: &'a str, realm: Option<&'a str>, password: &'a str) -> Self {
            Client {
                user,
                realm,
                password,
                uri: "smtp/mail.example.test",
                cnonce: "OA6MHXh6VqTrRk",
                authzid: None,
                nonce_override: None,
            }
        }

        fn answer(&self, challenge: &str) -> String {
            let parsed = parse_directives(challenge.as_bytes()).expect("challenge parses");
            let d = Directives(&parsed);
            let nonce = String::from_utf8(d.get("nonce").expect("nonce").to_vec()).expect("utf8");
            let nonce = self.nonce_override.unwrap_or(&nonce);
            let p = DigestMd5Params {
                username: self.user,
                realm: self.realm.unwrap_or(""),
                password: self.password,
                nonce,
                cnonce: self.cnonce,
                nc: "00000001",
                qop: "auth",
                digest_uri: self.uri,
                authzid: self.authzid,
            };
            let mut out = format!("charset=utf-8,username={}", quote(self.user));
            if let Some(r) = self.realm {
                out += &format!(",realm={}", quote(r));
            }
            out += &format!(
                ",nonce={},nc=00000001,cnonce={},digest-uri={},response={},qop=auth",
                quote(nonce),
                quote(self.cnonce),
                quote(self.uri),
                digest_md5_response(&p)
            );
            if let Some(a) = self.authzid {
                out += &format!(",authzid={}", quote(a));
            }
            out
        }

        fn rspauth(&self, challenge: &str) -> String {
            let parsed = parse_directives(challenge.as_bytes()).expect("challenge parses");
            let nonce = Directives(&parsed).get("nonce").expect("nonce").to_vec();
            let nonce = String::from_utf8(nonce).expect("utf8");
            digest_md5_rspauth(&DigestMd5Params {
                username: self.user,
                realm: self.realm.unwrap_or(""),
                password: self.password,
                nonce: &nonce,
                cnonce: self.cnonce,
                nc: "00000001",
                qop: "auth",
                digest_uri: self.uri,
                authzid: self.authzid,
            })
        }
    }

    /// Runs a DIGEST-MD5 exchange up to the client's response.
    fn digest_run(c: &Context<'_>, client: &Client<'_>) -> (Exchange, String, Step) {
        let (mut ex, step) = Exchange::start(Mechanism::DigestMd5, None, c);
        let chal = challenge(&step);
        let step = ex.step(client.answer(&chal).as_bytes(), c);
        (ex, chal, step)
    }

    fn realms(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn digest_md5_several_realms_client_picks_the_second() {
        let accts = vec![account("alice", "wonderland")];
        let offered = realms(&["first.example", "second.example", "third.example"]);
        let c = ctx(&accts, &offered);
        let client = Client::new("alice", Some("second.example"), "wonderland");
        let (mut ex, chal, step) = digest_run(&c, &client);
        assert!(chal.starts_with(
            "realm=\"first.example\",realm=\"second.example\",realm=\"third.example\",nonce=\""
        ));
        assert_eq!(
            step,
            Step::Challenge(format!("rspauth={}", client.rspauth(&chal)).into_bytes())
        );
        assert!(!ex.is_finished());
        assert_eq!(ex.claimed_user(), Some("alice"));
        assert_eq!(ex.step(b"", &c), success("alice"));
        assert!(ex.is_finished());
    }

    #[test]
    fn digest_md5_one_realm_with_account_realm() {
        let accts = accounts();
        let offered = realms(&["elwood.innosoft.com"]);
        let c = ctx(&accts, &offered);
        let client = Client::new("chris", Some("elwood.innosoft.com"), "secret");
        let (mut ex, _, step) = digest_run(&c, &client);
        assert!(challenge(&step).starts_with("rspauth="));
        assert_eq!(ex.step(b"", &c), success("chris"));
    }

    #[test]
    fn digest_md5_no_realm_offered_accepts_any_or_none() {
        let accts = vec![account("alice", "wonderland")];
        let c = ctx(&accts, &[]);
        for realm in [Some("anything.example"), Some(""), None] {
            let client = Client::new("alice", realm, "wonderland");
            let (mut ex, chal, step) = digest_run(&c, &client);
            assert!(chal.starts_with("nonce=\""), "{chal}");
            assert!(
                challenge(&step).starts_with("rspauth="),
                "{realm:?}: {step:?}"
            );
            assert_eq!(ex.step(b"", &c), success("alice"));
        }
    }

    #[test]
    fn digest_md5_account_realm_must_match() {
        // No realm offered, so the client may pick any; but chris belongs to elwood.
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let client = Client::new("chris", Some("elsewhere.example"), "secret");
        let (_, _, step) = digest_run(&c, &client);
        assert_eq!(reason(&step), "DIGEST-MD5 realm is not the account's realm");
    }

    #[test]
    fn digest_md5_wrong_realm_nonce_password_fail() {
        let accts = vec![account("alice", "wonderland")];
        let offered = realms(&["first.example", "second.example"]);
        let c = ctx(&accts, &offered);

        let client = Client::new("alice", Some("third.example"), "wonderland");
        let step = digest_run(&c, &client).2;
        assert!(reason(&step).contains("realm"), "{step:?}");
        assert_clean(&step, &["third.example", "wonderland"]);

        let client = Client::new("alice", None, "wonderland");
        assert!(reason(&digest_run(&c, &client).2).contains("realm"));

        let mut client = Client::new("alice", Some("first.example"), "wonderland");
        client.nonce_override = Some("OA6MG9tEQGm2hh");
        let step = digest_run(&c, &client).2;
        assert!(reason(&step).contains("nonce"), "{step:?}");
        assert_clean(&step, &["OA6MG9tEQGm2hh"]);

        let client = Client::new("alice", Some("first.example"), "alice-in-chains");
        let step = digest_run(&c, &client).2;
        assert!(reason(&step).contains("wrong password"), "{step:?}");
        assert_clean(&step, &["wonderland", "alice-in-chains"]);

        let client = Client::new("bob", Some("first.example"), "wonderland");
        assert_eq!(reason(&digest_run(&c, &client).2), "unknown user");
    }

    #[test]
    fn digest_md5_digest_uri_must_be_smtp() {
        let accts = vec![account("alice", "wonderland")];
        let c = ctx(&accts, &[]);
        for uri in [
            "imap/mail.example.test",
            "smtp/",
            "SMTP/mail.example.test",
            "",
        ] {
            let mut client = Client::new("alice", None, "wonderland");
            client.uri = uri;
            let step = digest_run(&c, &client).2;
            assert!(reason(&step).contains("digest-uri"), "{uri}: {step:?}");
        }
    }

    #[test]
    fn digest_md5_rfc2831_client_line_is_refused_for_its_imap_uri() {
        let accts = accounts();
        let offered = realms(&["elwood.innosoft.com"]);
        let c = ctx(&accts, &offered);
        let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
        let with_our_nonce = RFC_CLIENT.replace("OA6MG9tEQGm2hh", &digest_md5_nonce(c.seed));
        let step = ex.step(with_our_nonce.as_bytes(), &c);
        assert!(reason(&step).contains("digest-uri"), "{step:?}");
        assert_eq!(ex.claimed_user(), Some("chris"));
    }

    #[test]
    fn digest_md5_field_checks() {
        let accts = vec![account("alice", "wonderland")];
        let c = ctx(&accts, &[]);
        let client = Client::new("alice", None, "wonderland");
        let (_, step) = Exchange::start(Mechanism::DigestMd5, None, &c);
        let good = client.answer(&challenge(&step));

        let mut cases: Vec<(String, &str)> = vec![
            (good.replace("nc=00000001", "nc=00000002"), "nc"),
            (good.replace("qop=auth", "qop=auth-int"), "qop"),
            (
                good.replace(",qop=auth", ",qop=auth,qop=auth"),
                "more than once",
            ),
            (good.replace("charset=utf-8", "charset=latin1"), "charset"),
            (
                good.replace("cnonce=\"OA6MHXh6VqTrRk\"", "cnonce=\"\""),
                "cnonce",
            ),
            (
                good.replace("username=\"alice\",", ""),
                "'username' is missing",
            ),
            (good.replace(",nc=00000001", ""), "'nc' is missing"),
            (
                good.replace(",cnonce=\"OA6MHXh6VqTrRk\"", ""),
                "'cnonce' is missing",
            ),
            (
                good.replace(",digest-uri=", ",x-uri="),
                "'digest-uri' is missing",
            ),
        ];
        let (head, _) = good.split_once(",response=").expect("response");
        cases.push((format!("{head},qop=auth"), "'response' is missing"));
        let digest = good
            .split(",response=")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("digest")
            .to_string();
        cases.push((
            good.replace(&digest, &digest.to_uppercase()),
            "lowercase hex",
        ));
        cases.push((good.replace(&digest, &digest[..30]), "lowercase hex"));

        for (answer, needle) in cases {
            let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
            let step = ex.step(answer.as_bytes(), &c);
            assert!(
                reason(&step).contains(needle),
                "{answer}: expected {needle:?}, got {step:?}"
            );
            assert!(ex.is_finished());
        }

        // A quoted-pair stands for the character itself: "al\ice" is alice.
        let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
        let escaped = good.replace("\"alice\"", "\"al\\ice\"");
        assert!(escaped.contains("al\\ice"));
        let step = ex.step(escaped.as_bytes(), &c);
        assert!(challenge(&step).starts_with("rspauth="), "{step:?}");

        // qop may be left out (it defaults to auth).
        let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
        let step = ex.step(good.replace(",qop=auth", "").as_bytes(), &c);
        assert!(challenge(&step).starts_with("rspauth="));
    }

    #[test]
    fn digest_md5_authzid() {
        let accts = vec![account("alice", "wonderland")];
        let c = ctx(&accts, &[]);
        let mut client = Client::new("alice", None, "wonderland");
        client.authzid = Some("alice");
        let (mut ex, chal, step) = digest_run(&c, &client);
        assert_eq!(
            step,
            Step::Challenge(format!("rspauth={}", client.rspauth(&chal)).into_bytes())
        );
        assert_eq!(ex.step(b"", &c), success("alice"));

        client.authzid = Some("root");
        let step = digest_run(&c, &client).2;
        assert!(reason(&step).contains("authzid"));
    }

    #[test]
    fn digest_md5_non_ascii_user_latin1_and_utf8() {
        // RFC 2831: with charset=utf-8 the user name and password are converted to
        // ISO 8859-1 for hashing when they fit; without it they are ISO 8859-1 already.
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let client = Client::new("jürgen", None, "grüße");
        let (mut ex, chal, step) = digest_run(&c, &client);
        assert!(challenge(&step).starts_with("rspauth="), "{step:?}");
        assert_eq!(ex.step(b"", &c), success("jürgen"));

        // The same answer without charset, with the user name in ISO 8859-1.
        let utf8_answer = client.answer(&chal);
        let latin1_answer: Vec<u8> = utf8_answer
            .replace("charset=utf-8,", "")
            .chars()
            .map(|ch| u8::try_from(ch).expect("latin-1"))
            .collect();
        let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
        let step = ex.step(&latin1_answer, &c);
        assert!(challenge(&step).starts_with("rspauth="), "{step:?}");
        assert_eq!(ex.claimed_user(), Some("jürgen"));

        // Latin-1 bytes that are not UTF-8 under charset=utf-8 fail cleanly.
        let mut bad = b"charset=utf-8,".to_vec();
        bad.extend_from_slice(&latin1_answer);
        let (mut ex, _) = Exchange::start(Mechanism::DigestMd5, None, &c);
        assert!(reason(&ex.step(&bad, &c)).contains("UTF-8"));
    }

    #[test]
    fn digest_md5_rspauth_must_be_answered_with_nothing() {
        let accts = vec![account("alice", "wonderland")];
        let c = ctx(&accts, &[]);
        let client = Client::new("alice", None, "wonderland");
        let (mut ex, _, step) = digest_run(&c, &client);
        assert!(challenge(&step).starts_with("rspauth="));
        assert!(reason(&ex.step(b"rspauth", &c)).contains("empty"));
        assert!(ex.is_finished());
    }

    #[test]
    fn digest_md5_refuses_initial_response() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (ex, step) = Exchange::start(Mechanism::DigestMd5, Some(RFC_CLIENT.as_bytes()), &c);
        assert!(reason(&step).contains("initial response"));
        assert!(ex.is_finished());
    }

    // ----- XOAUTH2 ------------------------------------------------------------------

    const TOKEN: &str = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";

    fn xoauth2(user: &str, token: &str) -> Vec<u8> {
        format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    #[test]
    fn xoauth2_success_with_initial_response() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (ex, step) = Exchange::start(
            Mechanism::Xoauth2,
            Some(&xoauth2("someuser@example.com", TOKEN)),
            &c,
        );
        assert_eq!(step, success("someuser@example.com"));
        assert_eq!(ex.claimed_user(), Some("someuser@example.com"));
    }

    #[test]
    fn xoauth2_success_after_empty_challenge() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) = Exchange::start(Mechanism::Xoauth2, None, &c);
        assert_eq!(step, Step::Challenge(Vec::new()));
        let step = ex.step(&xoauth2("someuser@example.com", TOKEN), &c);
        assert_eq!(step, success("someuser@example.com"));
    }

    #[test]
    fn xoauth2_refused_token_sends_json_error_then_fails() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        for (user, token, why) in [
            ("someuser@example.com", "ya29.stale", "token refused"),
            ("tim", TOKEN, "token refused"), // an account without a token
            ("nobody@example.com", TOKEN, "unknown user"),
        ] {
            let (mut ex, step) =
                Exchange::start(Mechanism::Xoauth2, Some(&xoauth2(user, token)), &c);
            assert_eq!(step, Step::Challenge(XOAUTH2_ERROR.as_bytes().to_vec()));
            assert!(!ex.is_finished());
            let step = ex.step(b"", &c);
            assert!(reason(&step).contains(why), "{step:?}");
            assert_clean(&step, &[token, "ya29"]);
            assert!(ex.is_finished());
        }
        let json: serde_json::Value = serde_json::from_str(XOAUTH2_ERROR).expect("json");
        assert_eq!(json["status"], "401");
    }

    #[test]
    fn xoauth2_malformed_fails_immediately() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"user=someuser@example.com\x01auth=Bearer s3cr3t\x01".to_vec(),
            b"user=someuser@example.com\x01auth=Basic s3cr3t\x01\x01".to_vec(),
            b"user=someuser@example.com\x01auth=Bearer \x01\x01".to_vec(),
            b"user=someuser@example.com\x01auth=Bearers3cr3t\x01\x01".to_vec(),
            b"auth=Bearer s3cr3t\x01\x01".to_vec(),
            b"user=someuser@example.com\x01\x01".to_vec(),
            b"user=\x01auth=Bearer s3cr3t\x01\x01".to_vec(),
            b"user=a\x01user=b\x01auth=Bearer s3cr3t\x01\x01".to_vec(),
            b"user=a\x01junk\x01auth=Bearer s3cr3t\x01\x01".to_vec(),
            b"user=\xff\x01auth=Bearer s3cr3t\x01\x01".to_vec(),
        ];
        for msg in cases {
            let (ex, step) = Exchange::start(Mechanism::Xoauth2, Some(&msg), &c);
            assert!(matches!(step, Step::Failure { .. }), "{msg:?} -> {step:?}");
            assert_clean(&step, &["s3cr3t"]);
            assert!(ex.is_finished());
        }
        // "AUTH XOAUTH2 =" is an empty initial response, hence malformed.
        let (_, step) = Exchange::start(Mechanism::Xoauth2, Some(b""), &c);
        assert!(matches!(step, Step::Failure { .. }));
    }

    // ----- Everything: malformed, oversized, finished -----------------------------

    /// Deterministic pseudo-random bytes.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut s = seed;
        (0..len).map(|_| splitmix64(&mut s) as u8).collect()
    }

    #[test]
    fn random_bytes_never_panic_and_never_succeed() {
        let accts = accounts();
        let offered = realms(&["a", "b"]);
        let c = ctx(&accts, &offered);
        for seed in 0..300u64 {
            let len = usize::try_from(seed % 97).expect("small");
            let junk = noise(seed, len);
            for mech in Mechanism::ALL {
                let mut steps = Vec::new();
                let (mut ex, step) = Exchange::start(mech, Some(&junk), &c);
                steps.push(step);
                let (mut ex2, step) = Exchange::start(mech, None, &c);
                steps.push(step);
                for _ in 0..3 {
                    steps.push(ex.step(&junk, &c));
                    steps.push(ex2.step(&noise(seed + 1000, len), &c));
                }
                assert!(
                    !steps.iter().any(|s| matches!(s, Step::Success { .. })),
                    "{mech}: {junk:?}"
                );
                assert!(ex.is_finished() && ex2.is_finished());
            }
        }
    }

    #[test]
    fn oversized_input_fails_cleanly() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let mut big = b"\0tim\0tanstaaftanstaaf".to_vec();
        big.resize(20 * 1024, b'a');
        for mech in Mechanism::ALL {
            let (ex, step) = Exchange::start(mech, Some(&big), &c);
            assert!(reason(&step).contains("longer than"), "{mech}: {step:?}");
            assert!(ex.is_finished());

            let (mut ex, step) = Exchange::start(mech, None, &c);
            assert!(matches!(step, Step::Challenge(_)));
            let step = ex.step(&big, &c);
            assert!(reason(&step).contains("longer than"), "{mech}: {step:?}");
            assert_clean(&step, &["tanstaaf", "aaaa"]);
        }
        // Exactly the limit is still parsed (and fails on content, not size).
        let mut edge = b"\0tim\0".to_vec();
        edge.resize(MAX_INPUT, b'x');
        let (_, step) = Exchange::start(Mechanism::Plain, Some(&edge), &c);
        assert_eq!(reason(&step), "wrong password");
    }

    #[test]
    fn steps_after_the_end_fail() {
        let accts = accounts();
        let c = ctx(&accts, &[]);
        let (mut ex, step) =
            Exchange::start(Mechanism::Plain, Some(b"\0tim\0tanstaaftanstaaf"), &c);
        assert_eq!(step, success("tim"));
        assert!(reason(&ex.step(b"\0tim\0tanstaaftanstaaf", &c)).contains("finished"));
        let (mut ex, _) = Exchange::start(Mechanism::Login, Some(b"tim"), &c);
        ex.step(b"nope", &c);
        assert!(reason(&ex.step(b"tanstaaftanstaaf", &c)).contains("finished"));
    }
}
