//! The device's own words for what SPEC names: setting values (`enable` for `on`,
//! `tls` for `smtps`), error classes and job states, and the way it writes its clock.
//! The driver writes SPEC's values in the device's words and reads the device's words
//! back as SPEC's, so the oracle and the verdict only ever see SPEC.

use std::collections::BTreeMap;

use hil_oracle::model::Key;
use time::format_description::OwnedFormatItem;
use time::OffsetDateTime;

/// Setting values in the device's words: per SPEC key, SPEC value → device word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueWords {
    /// Every on/off setting: `on` and `off` written as these.
    pub bool_words: Option<(String, String)>,
    /// Per SPEC key (overrides `bool_words` for that key).
    pub per_key: BTreeMap<Key, BTreeMap<String, String>>,
}

/// Keys whose value is a comma-separated set of names (SPEC §1 value syntax): each
/// name is a word of its own.
const SET_KEYS: &[Key] = &[Key::SmtpAuthMethods];

impl ValueWords {
    fn map_for(&self, key: Key, is_bool: bool) -> Option<BTreeMap<String, String>> {
        if let Some(m) = self.per_key.get(&key) {
            return Some(m.clone());
        }
        if is_bool {
            if let Some((on, off)) = &self.bool_words {
                return Some(BTreeMap::from([
                    ("on".to_string(), on.clone()),
                    ("off".to_string(), off.clone()),
                ]));
            }
        }
        None
    }

    /// `value` of `key` (SPEC's words) in the device's words. A value that is not
    /// SPEC's (an invalid one, sent to be refused) but is the device's own word for
    /// another value would be taken: it is sent with `~` after it, so that it stays
    /// a value the device does not know.
    pub fn to_device(&self, key: Key, value: &str, is_bool: bool) -> String {
        let Some(m) = self.map_for(key, is_bool) else {
            return value.to_string();
        };
        if let Some(w) = m.get(value) {
            return w.clone();
        }
        if m.values().any(|w| w == value) {
            return format!("{value}~");
        }
        if SET_KEYS.contains(&key) && value.contains(',') {
            return value
                .split(',')
                .map(|v| m.get(v).cloned().unwrap_or_else(|| v.to_string()))
                .collect::<Vec<_>>()
                .join(",");
        }
        value.to_string()
    }

    /// A value the device showed for `key`, in SPEC's words (a word the map does not
    /// know is taken as it is).
    pub fn to_spec(&self, key: Key, shown: &str, is_bool: bool) -> String {
        let Some(m) = self.map_for(key, is_bool) else {
            return shown.to_string();
        };
        let back = |w: &str| {
            m.iter()
                .find(|(_, dw)| dw.as_str() == w)
                .map(|(sv, _)| sv.clone())
        };
        if let Some(v) = back(shown) {
            return v;
        }
        if SET_KEYS.contains(&key) && shown.contains(',') {
            return shown
                .split(',')
                .map(|w| back(w).unwrap_or_else(|| w.to_string()))
                .collect::<Vec<_>>()
                .join(",");
        }
        shown.to_string()
    }
}

/// A device's word → SPEC's word (error classes, job states); unknown words pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WordMap(pub BTreeMap<String, String>);

impl WordMap {
    pub fn to_spec(&self, word: &str) -> String {
        self.0
            .get(word)
            .cloned()
            .unwrap_or_else(|| word.to_string())
    }
}

/// A clock format that cannot be used, or a time it cannot write or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("not a format description: {0}")]
    Format(String),
    #[error("{0}")]
    Lossy(String),
    #[error("{0}")]
    Write(String),
    #[error("{0}")]
    Read(String),
}

/// How the device writes its clock.
#[derive(Debug, Clone)]
pub enum ClockFormat {
    /// RFC 3339 (SPEC §6).
    Rfc3339,
    /// A `time` format description (`[hour]:[minute]:[second] [day] [month repr:short]
    /// [year]`), read and written in UTC.
    Own {
        source: String,
        items: OwnedFormatItem,
    },
}

impl ClockFormat {
    pub fn parse(source: &str) -> Result<ClockFormat, ClockError> {
        if source.eq_ignore_ascii_case("rfc3339") {
            return Ok(ClockFormat::Rfc3339);
        }
        let items = time::format_description::parse_owned::<2>(source)
            .map_err(|e| ClockError::Format(e.to_string()))?;
        // It must write a time that reads back as the same time.
        let t = OffsetDateTime::from_unix_timestamp(1_796_000_000)
            .map_err(|e| ClockError::Write(e.to_string()))?;
        let f = ClockFormat::Own {
            source: source.to_string(),
            items,
        };
        let text = f.write(t)?;
        match f.read(&text) {
            Ok(back) if back == t => Ok(f),
            Ok(back) => Err(ClockError::Lossy(format!(
                "{text:?} reads back as {back}, not {t}: the format loses part of the time (seconds, the year, the day?)"
            ))),
            Err(e) => Err(ClockError::Lossy(format!("{text:?} does not read back: {e}"))),
        }
    }

    pub fn describe(&self) -> &str {
        match self {
            ClockFormat::Rfc3339 => "RFC 3339",
            ClockFormat::Own { source, .. } => source,
        }
    }

    /// `t` as the device writes it.
    pub fn write(&self, t: OffsetDateTime) -> Result<String, ClockError> {
        let t = t.to_offset(time::UtcOffset::UTC);
        match self {
            ClockFormat::Rfc3339 => t.format(&time::format_description::well_known::Rfc3339),
            ClockFormat::Own { items, .. } => t.format(items),
        }
        .map_err(|e| ClockError::Write(e.to_string()))
    }

    /// A time the device wrote.
    pub fn read(&self, text: &str) -> Result<OffsetDateTime, ClockError> {
        match self {
            ClockFormat::Rfc3339 => {
                OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            }
            ClockFormat::Own { items, .. } => time::PrimitiveDateTime::parse(text.trim(), items)
                .map(|p| p.assume_utc())
                .or_else(|_| OffsetDateTime::parse(text.trim(), items)),
        }
        .map_err(|e| ClockError::Read(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_both_ways_with_bool_shorthand_and_sets() {
        let w = ValueWords {
            bool_words: Some(("enable".into(), "disable".into())),
            per_key: BTreeMap::from([
                (
                    Key::SmtpTls,
                    BTreeMap::from([
                        ("none".to_string(), "plain".to_string()),
                        ("smtps".to_string(), "tls".to_string()),
                    ]),
                ),
                (
                    Key::SmtpAuthMethods,
                    BTreeMap::from([("cram-md5".to_string(), "CRAM-MD5".to_string())]),
                ),
            ]),
        };
        assert_eq!(w.to_device(Key::EmailScan, "on", true), "enable");
        assert_eq!(w.to_spec(Key::EmailScan, "disable", true), "off");
        assert_eq!(w.to_device(Key::SmtpTls, "smtps", false), "tls");
        assert_eq!(w.to_spec(Key::SmtpTls, "plain", false), "none");
        assert_eq!(w.to_device(Key::SmtpTls, "starttls", false), "starttls");
        assert_eq!(w.to_device(Key::SmtpPort, "25", false), "25");
        // An invalid SPEC value that is the device's word for another value.
        assert_eq!(w.to_device(Key::SmtpTls, "tls", false), "tls~");
        assert_eq!(w.to_device(Key::SmtpTls, "ssl", false), "ssl");
        assert_eq!(
            w.to_device(Key::SmtpAuthMethods, "plain,cram-md5", false),
            "plain,CRAM-MD5"
        );
        assert_eq!(
            w.to_spec(Key::SmtpAuthMethods, "CRAM-MD5,login", false),
            "cram-md5,login"
        );
    }

    #[test]
    fn clock_formats_write_and_read() {
        let f = ClockFormat::parse(
            "[hour]:[minute]:[second] [day padding:none] [month repr:short] [year]",
        )
        .expect("format");
        let t = OffsetDateTime::from_unix_timestamp(1_796_505_805).expect("t");
        let s = f.write(t).expect("write");
        assert_eq!(s, "21:23:25 5 Dec 2026");
        assert_eq!(f.read(&s).expect("read"), t);
        let e = ClockFormat::parse("[hour]:[minute]").expect_err("lossy");
        assert!(e.to_string().contains("back"), "{e}");
        assert!(ClockFormat::parse("[nonsense]").is_err());
        let r = ClockFormat::parse("rfc3339").expect("rfc");
        assert_eq!(r.write(t).expect("w"), "2026-12-05T21:23:25Z");
    }
}
