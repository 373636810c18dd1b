//! The only place the time is read; clippy.toml forbids the system clock
//! everywhere else.
//!
//! Two kinds of time: the time of the objects (`Clock`, read through
//! `Ctx::now()`), which test clocks will freeze and advance per customer,
//! and real time for the server's own machinery (leases, webhook retries,
//! durations), which no test clock moves.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time objects are created, changed and fall due in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock;

impl Clock {
    /// Unix seconds, as Stripe's timestamps are.
    pub fn now(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        wall_ms()
    }
}

/// Real time in Unix milliseconds, for holds, leases and retry schedules.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Real time in Unix seconds.
pub fn wall() -> i64 {
    wall_ms() / 1000
}

/// Measures how long something took.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The civil year (UTC) of a Unix timestamp.
pub fn year_of(timestamp: i64) -> i64 {
    civil_from_days(timestamp.div_euclid(86_400)).0
}

/// The civil date (year, month, day) of a day count since 1970-01-01
/// (proleptic Gregorian, Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-11-23 00:00:00 UTC`: a Unix timestamp as Stripe's messages write it.
pub fn utc_text(timestamp: i64) -> String {
    let (year, month, day) = civil_from_days(timestamp.div_euclid(86_400));
    let seconds = timestamp.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_of_known_timestamps() {
        assert_eq!(year_of(0), 1970);
        assert_eq!(year_of(951_782_400), 2000); // 2000-02-29
        assert_eq!(year_of(1_798_761_599), 2026); // 2026-12-31 23:59:59
        assert_eq!(year_of(1_798_761_600), 2027);
    }

    #[test]
    fn timestamps_as_text() {
        assert_eq!(utc_text(1_732_320_000), "2024-11-23 00:00:00 UTC");
        assert_eq!(utc_text(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
