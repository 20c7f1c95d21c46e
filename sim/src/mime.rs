//! Building the mails the device sends (SPEC §2): a scan with its attachment, an
//! alert, a counter report. The output is exact bytes with CRLF line endings and no
//! line over 998 octets, so that what the server receives can be checked byte for
//! byte (and, later, fragmented and reassembled exactly).
//!
//! The attachment of a scan of `n` KB is `n * 1024` bytes where byte `i` is
//! `i mod 251` (see `docs/device-mail.md`); the harness recomputes it independently.

use base64::Engine;

/// The scan attachment's bytes for `size_kb` KB.
pub fn scan_bytes(size_kb: u32) -> Vec<u8> {
    (0..size_kb as usize * 1024)
        .map(|i| (i % 251) as u8)
        .collect()
}

/// What a mail says, before encoding.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// RFC 5322 date.
    pub date: String,
    pub message_id: String,
    /// The text part, lines separated by `\n` (turned into CRLF here).
    pub text: String,
    pub attachment: Option<Attachment>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

fn crlf_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split('\n') {
        out.push_str(line.trim_end_matches('\r'));
        out.push_str("\r\n");
    }
    out
}

/// Encodes a mail as the message bytes sent after DATA (before dot-stuffing).
pub fn encode(mail: &Mail, boundary_seed: u64) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(&format!("Date: {}\r\n", mail.date));
    m.push_str(&format!("From: {}\r\n", mail.from));
    m.push_str(&format!("To: {}\r\n", mail.to.join(",\r\n ")));
    // Headers a `message/partial` reassembly takes from the outer message come first,
    // those it takes from the inner one after (RFC 2046 §5.2.2.1), so a split message
    // reassembles to exactly these bytes.
    m.push_str("X-Mailer: mfp-sim\r\n");
    m.push_str(&format!("Subject: {}\r\n", mail.subject));
    m.push_str(&format!("Message-ID: {}\r\n", mail.message_id));
    m.push_str("MIME-Version: 1.0\r\n");
    let text = crlf_lines(&mail.text);
    match &mail.attachment {
        None => {
            m.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
            m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
            m.push_str(&text);
        }
        Some(a) => {
            let boundary = format!("=_mfp_{boundary_seed:016x}");
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
            ));
            m.push_str("This is a multi-part message in MIME format.\r\n");
            m.push_str(&format!("--{boundary}\r\n"));
            m.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
            m.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
            m.push_str(&text);
            m.push_str(&format!("--{boundary}\r\n"));
            m.push_str(&format!(
                "Content-Type: {}; name=\"{}\"\r\n",
                a.content_type, a.filename
            ));
            m.push_str("Content-Transfer-Encoding: base64\r\n");
            m.push_str(&format!(
                "Content-Disposition: attachment; filename=\"{}\"\r\n\r\n",
                a.filename
            ));
            let b64 = base64::engine::general_purpose::STANDARD.encode(&a.bytes);
            for chunk in b64.as_bytes().chunks(76) {
                // base64 output is ASCII, so every chunk is valid UTF-8.
                m.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                m.push_str("\r\n");
            }
            m.push_str(&format!("--{boundary}--\r\n"));
        }
    }
    m.into_bytes()
}

/// Dot-stuffs message bytes for DATA and appends the end-of-data marker.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_only_and_short_lines() {
        let mail = Mail {
            from: "a@b.c".into(),
            to: vec!["x@y.z".into(), "w@y.z".into()],
            subject: "s".into(),
            date: "Thu, 1 Jan 2026 00:00:00 +0000".into(),
            message_id: "<1@mfp>".into(),
            text: "hello\n.\n..two".into(),
            attachment: Some(Attachment {
                filename: "f.bin".into(),
                content_type: "application/octet-stream".into(),
                bytes: scan_bytes(3),
            }),
        };
        let m = encode(&mail, 7);
        for (i, w) in m.windows(2).enumerate() {
            assert!(!(w[1] == b'\n' && w[0] != b'\r'), "bare LF at {i}");
        }
        assert!(m.split(|b| *b == b'\n').all(|l| l.len() <= 998));
        let stuffed = dot_stuff(&m);
        assert!(stuffed.ends_with(b"\r\n.\r\n"));
        let s = String::from_utf8(stuffed).unwrap();
        assert!(s.contains("\r\n..\r\n...two\r\n"));
    }

    #[test]
    fn scan_bytes_follow_the_rule() {
        let b = scan_bytes(1);
        assert_eq!(b.len(), 1024);
        assert_eq!(b[250], 250);
        assert_eq!(b[251], 0);
    }
}
