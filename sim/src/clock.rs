//! The device clock (SPEC: device state): the system clock plus the offset `clock set`
//! chose. The device keeps the offset; a job takes a copy when it is triggered and
//! reads the time through [`device_now`], so neither needs the other for it.

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
