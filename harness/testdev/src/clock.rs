//! The device clock in the console's own format (`--clock`, as Cisco IOS writes it)
//! and its translation to and from the engine's RFC 3339.
//!
//! `clock set 21:23:25 5 Dec 2026` (or `… Dec 5 2026`) sets it; `show clock` answers
//! `*21:23:25 UTC Sat Dec 5 2026` (the `*` says the clock is not synchronised, as
//! IOS marks a clock set by hand). The device keeps UTC only.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

const MONTHS: [(&str, Month); 12] = [
    ("Jan", Month::January),
    ("Feb", Month::February),
    ("Mar", Month::March),
    ("Apr", Month::April),
    ("May", Month::May),
    ("Jun", Month::June),
    ("Jul", Month::July),
    ("Aug", Month::August),
    ("Sep", Month::September),
    ("Oct", Month::October),
    ("Nov", Month::November),
    ("Dec", Month::December),
];

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The usage of the console's `clock set`.
pub const USAGE: &str = "clock set HH:MM:SS DAY MONTH YEAR (e.g. clock set 21:23:25 5 Dec 2026)";

fn month(word: &str) -> Option<Month> {
    MONTHS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|(_, m)| *m)
}

fn number(word: &str, what: &str, max_digits: usize) -> Result<u32, String> {
    if word.is_empty() || word.len() > max_digits || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {word:?} is not a number; usage: {USAGE}"));
    }
    word.parse()
        .map_err(|_| format!("{what} {word:?} is not a number; usage: {USAGE}"))
}

/// Reads the words after `clock set` (`HH:MM:SS DAY MONTH YEAR`, day and month in
/// either order, the month's first three letters in any case); answers RFC 3339 UTC.
pub fn parse(words: &[&str]) -> Result<String, String> {
    let [hms, a, b, year] = words else {
        return Err(format!("usage: {USAGE}"));
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let [h, m, s] = parts.as_slice() else {
        return Err(format!("the time {hms:?} is not HH:MM:SS; usage: {USAGE}"));
    };
    let (h, m, s) = (
        number(h, "the hour", 2)?,
        number(m, "the minute", 2)?,
        number(s, "the second", 2)?,
    );
    let (day, mon) = match (month(a), month(b)) {
        (None, Some(mon)) => (number(a, "the day", 2)?, mon),
        (Some(mon), None) => (number(b, "the day", 2)?, mon),
        _ => {
            return Err(format!(
                "one of {a:?} and {b:?} must be a month (Jan … Dec)"
            ))
        }
    };
    let year = number(year, "the year", 4)?;
    let date = Date::from_calendar_date(year as i32, mon, day as u8)
        .map_err(|_| format!("{day} {mon} {year} is not a date"))?;
    let time = Time::from_hms(h as u8, m as u8, s as u8)
        .map_err(|_| format!("{hms} is not a time of day (00:00:00 to 23:59:59)"))?;
    let when = date.with_time(time).assume_utc();
    when.format(&Rfc3339).map_err(|e| format!("{e}"))
}

/// Writes an RFC 3339 time (the engine's `clock=` answer) in the console's form.
pub fn format(rfc3339: &str) -> Result<String, String> {
    let t = OffsetDateTime::parse(rfc3339, &Rfc3339)
        .map_err(|e| format!("the engine's clock {rfc3339:?} is not RFC 3339: {e}"))?
        .to_offset(UtcOffset::UTC);
    let mon = MONTHS[usize::from(u8::from(t.month())) - 1].0;
    let day = DAYS[usize::from(t.weekday().number_days_from_monday())];
    Ok(format!(
        "*{:02}:{:02}:{:02} UTC {day} {mon} {} {}",
        t.hour(),
        t.minute(),
        t.second(),
        t.day(),
        t.year()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cisco_form_round_trips() {
        let r = parse(&["21:23:25", "5", "Dec", "2026"]).unwrap();
        assert_eq!(r, "2026-12-05T21:23:25Z");
        assert_eq!(format(&r).unwrap(), "*21:23:25 UTC Sat Dec 5 2026");
        assert_eq!(parse(&["21:23:25", "dec", "5", "2026"]).unwrap(), r);
        assert_eq!(
            format("2026-12-05T21:23:25.987654321+00:00").unwrap(),
            "*21:23:25 UTC Sat Dec 5 2026"
        );
        assert_eq!(
            format("2027-01-01T08:00:00+09:00").unwrap(),
            "*23:00:00 UTC Thu Dec 31 2026"
        );
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in [
            &["25:00:00", "1", "Jan", "2026"][..],
            &["10:00", "1", "Jan", "2026"],
            &["10:00:00", "30", "Feb", "2026"],
            &["10:00:00", "1", "Foo", "2026"],
            &["10:00:00", "Jan", "Feb", "2026"],
            &["10:00:00", "1", "Jan", "-5"],
            &["10:00:00", "1", "Jan"],
            &["10:0x:00", "1", "Jan", "2026"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(format("yesterday").is_err());
    }
}
