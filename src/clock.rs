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

    /// The current year (UTC), for card expiry checks.
    pub fn year(&self) -> i64 {
        year_of(self.now())
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

/// The civil year (UTC) of a Unix timestamp (Howard Hinnant's algorithm).
pub fn year_of(timestamp: i64) -> i64 {
    let days = timestamp.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400;
    if month_index >= 10 { year + 1 } else { year }
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
}
