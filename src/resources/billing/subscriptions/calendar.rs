//! Billing-period arithmetic on the civil calendar: where a period that
//! starts at a given time and runs some days, weeks, months or years ends.

use super::DAY;
use crate::clock::civil_from_days;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(next_year, next_month, 1) - days_from_civil(year, month, 1)
}

/// `start` moved on by `count` intervals; months clamp to the month's last
/// day (Jan 31 + 1 month = Feb 28/29), as Stripe's billing does.
pub fn add_interval(start: i64, interval: &str, count: i64) -> i64 {
    let days = start.div_euclid(DAY);
    let seconds = start.rem_euclid(DAY);
    let months = match interval {
        "day" => return start + count * DAY,
        "week" => return start + count * 7 * DAY,
        "year" => count * 12,
        _ => count,
    };
    let (year, month, day) = civil_from_days(days);
    let total = year * 12 + (month - 1) + months;
    let (new_year, new_month) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let new_day = day.min(days_in_month(new_year, new_month));
    days_from_civil(new_year, new_month, new_day) * DAY + seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_calendar() {
        // 2026-01-31 12:00:00 UTC
        let jan31 = days_from_civil(2026, 1, 31) * DAY + 12 * 3600;
        assert_eq!(
            civil_from_days(add_interval(jan31, "month", 1).div_euclid(DAY)),
            (2026, 2, 28)
        );
        assert_eq!(
            civil_from_days(add_interval(jan31, "month", 13).div_euclid(DAY)),
            (2027, 2, 28)
        );
        assert_eq!(add_interval(jan31, "month", 1).rem_euclid(DAY), 12 * 3600);
        let leap = days_from_civil(2028, 2, 29) * DAY;
        assert_eq!(
            civil_from_days(add_interval(leap, "year", 1).div_euclid(DAY)),
            (2029, 2, 28)
        );
        assert_eq!(add_interval(leap, "week", 2) - leap, 14 * DAY);
        assert_eq!(add_interval(leap, "day", 3) - leap, 3 * DAY);
        for days in [-1000, 0, 19_000, 20_513, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
