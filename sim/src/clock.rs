//! The device clock (SPEC: device state): the system clock plus the offset `clock set`
//! chose. The device keeps the offset; a job takes a copy when it is triggered and
//! reads the time through [`device_now`], so neither needs the other for it.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The device clock's range: a year outside it is refused by `clock set`.
pub const CLOCK_MIN_YEAR: i32 = 1970;
pub const CLOCK_MAX_YEAR: i32 = 9000;

/// The device clock: the system clock plus the offset `clock set` chose, saturating
/// at the ends of the representable range.
pub fn device_now(offset: time::Duration) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.checked_add(offset).unwrap_or(if offset.is_negative() {
        OffsetDateTime::UNIX_EPOCH
    } else {
        now
    })
}

/// Why `clock set` refuses a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("{text:?} is not an RFC 3339 time ({source})")]
    NotRfc3339 {
        text: String,
        source: time::error::Parse,
    },
    #[error(
        "{text:?}: the device clock runs from year {min} to {max}",
        min = CLOCK_MIN_YEAR,
        max = CLOCK_MAX_YEAR
    )]
    OutOfRange { text: String },
}

/// Reads a time for `clock set`: RFC 3339, within the device clock's range.
pub fn parse_clock(text: &str) -> Result<OffsetDateTime, ClockError> {
    let when = OffsetDateTime::parse(text, &Rfc3339).map_err(|source| ClockError::NotRfc3339 {
        text: text.into(),
        source,
    })?;
    if !(CLOCK_MIN_YEAR..=CLOCK_MAX_YEAR).contains(&when.year()) {
        return Err(ClockError::OutOfRange { text: text.into() });
    }
    Ok(when)
}
