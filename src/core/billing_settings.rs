//! The billing settings Stripe keeps in its Dashboard rather than its API:
//! how failed renewals are retried, what happens when the retries run out,
//! how long an incomplete subscription waits, when `invoice.upcoming` is
//! sent; plus whether Stripe's test clock limits apply. The server's flags
//! give the defaults; `/_config/billing` changes them per account.

use serde_json::{Value, json};

/// When a failed invoice payment is tried again.
#[derive(Debug, Clone, PartialEq)]
pub enum Retries {
    /// Stripe's recommended Smart Retries policy, 8 tries within 2 weeks,
    /// at fixed days after the first failure ([`SMART_RETRY_DAYS`]).
    Smart,
    /// Up to three retries, each this many days after the attempt before.
    Custom(Vec<i64>),
    /// No automatic retries.
    Off,
}

/// The retries of Smart Retries, in days after the first failed attempt:
/// deterministic stand-ins for Stripe's model-chosen moments.
pub const SMART_RETRY_DAYS: &[i64] = &[1, 3, 5, 7, 9, 11, 14];

/// What a subscription becomes when its invoice's last retry failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterRetries {
    Cancel,
    Unpaid,
    PastDue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BillingSettings {
    pub retries: Retries,
    pub after_retries: AfterRetries,
    /// Hours a first invoice may stay unpaid before its subscription is
    /// `incomplete_expired` (Stripe: 23).
    pub incomplete_hours: i64,
    /// Days before a renewal that `invoice.upcoming` is sent (0: never).
    pub upcoming_days: i64,
    /// Stripe's limits on test clocks: 3 customers per clock, 3
    /// subscriptions per customer, advances of at most two intervals.
    pub test_clock_limits: bool,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            retries: Retries::Smart,
            after_retries: AfterRetries::Cancel,
            incomplete_hours: 23,
            upcoming_days: 7,
            test_clock_limits: true,
        }
    }
}

impl Retries {
    /// Parses `smart`, `none` or days between attempts (`3,5,7`).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "smart" => Ok(Self::Smart),
            "none" => Ok(Self::Off),
            days => {
                let days: Vec<i64> = days
                    .split(',')
                    .map(|d| d.trim().parse::<i64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| retries_help(text))?;
                if days.is_empty() || days.len() > 3 || days.iter().any(|d| !(1..=60).contains(d)) {
                    return Err(retries_help(text));
                }
                Ok(Self::Custom(days))
            }
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Smart => "smart".to_owned(),
            Self::Off => "none".to_owned(),
            Self::Custom(days) => days
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// When the retry after `attempts` failed attempts runs, the first of
    /// them at `first_failure` (unix seconds); None when none is left.
    pub fn next_after(&self, attempts: i64, first_failure: i64, last_failure: i64) -> Option<i64> {
        const DAY: i64 = 86_400;
        let index = usize::try_from(attempts - 1).ok()?;
        match self {
            Self::Smart => SMART_RETRY_DAYS.get(index).map(|d| first_failure + d * DAY),
            Self::Custom(days) => days.get(index).map(|d| last_failure + d * DAY),
            Self::Off => None,
        }
    }
}

fn retries_help(text: &str) -> String {
    format!(
        "invalid retry schedule '{text}': use `smart` (Stripe's recommended 8 tries within 2 weeks), `none`, or up to three numbers of days between attempts such as `3,5,7`"
    )
}

impl AfterRetries {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "cancel" => Ok(Self::Cancel),
            "unpaid" => Ok(Self::Unpaid),
            "past_due" => Ok(Self::PastDue),
            other => Err(format!(
                "invalid end of retries '{other}': use cancel, unpaid or past_due"
            )),
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Unpaid => "unpaid",
            Self::PastDue => "past_due",
        }
    }
}

impl BillingSettings {
    /// The settings as `/_config/billing` shows them.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "twin.billing_settings",
            "retry_schedule": self.retries.text(),
            "after_retries": self.after_retries.text(),
            "incomplete_expires_after_hours": self.incomplete_hours,
            "upcoming_renewal_days": self.upcoming_days,
            "test_clock_limits": if self.test_clock_limits { "stripe" } else { "none" },
        })
    }

    /// These settings with the overrides an account stored (as `to_json`
    /// shows them); a stored value that no longer parses is skipped.
    pub fn overlaid(&self, stored: &Value) -> Self {
        let mut settings = self.clone();
        if let Some(Ok(retries)) = stored["retry_schedule"].as_str().map(Retries::parse) {
            settings.retries = retries;
        }
        if let Some(Ok(after)) = stored["after_retries"].as_str().map(AfterRetries::parse) {
            settings.after_retries = after;
        }
        if let Some(hours) = stored["incomplete_expires_after_hours"].as_i64() {
            settings.incomplete_hours = hours;
        }
        if let Some(days) = stored["upcoming_renewal_days"].as_i64() {
            settings.upcoming_days = days;
        }
        if let Some(limits) = stored["test_clock_limits"].as_str() {
            settings.test_clock_limits = limits != "none";
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedules() {
        assert_eq!(Retries::parse("smart"), Ok(Retries::Smart));
        assert_eq!(Retries::parse("3, 5,7"), Ok(Retries::Custom(vec![3, 5, 7])));
        assert!(Retries::parse("1,2,3,4").is_err());
        assert!(Retries::parse("0").is_err());
        assert!(Retries::parse("soon").is_err());
        let day = 86_400;
        // Eight tries: the first attempt and seven retries within 14 days.
        let smart: Vec<_> = (1..=8)
            .map(|n| Retries::Smart.next_after(n, 0, 0))
            .collect();
        assert_eq!(smart[0], Some(day));
        assert_eq!(smart[6], Some(14 * day));
        assert_eq!(smart[7], None);
        let custom = Retries::Custom(vec![3, 5]);
        assert_eq!(custom.next_after(1, 0, 10), Some(10 + 3 * day));
        assert_eq!(custom.next_after(2, 0, 10), Some(10 + 5 * day));
        assert_eq!(custom.next_after(3, 0, 10), None);
        assert_eq!(Retries::Off.next_after(1, 0, 0), None);
    }

    #[test]
    fn overrides_round_trip() {
        let changed = BillingSettings {
            retries: Retries::Custom(vec![2]),
            after_retries: AfterRetries::Unpaid,
            upcoming_days: 3,
            test_clock_limits: false,
            ..BillingSettings::default()
        };
        let back = BillingSettings::default().overlaid(&changed.to_json());
        assert_eq!(back, changed);
    }
}
