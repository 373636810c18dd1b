//! How webhook delivery is configured: read by the app state and the
//! command line without depending on the delivery worker.

use std::time::Duration;

/// The forwarding secret when none is configured: fixed and documented so
/// an app's test configuration can hold it.
pub const DEFAULT_FORWARD_SECRET: &str = "whsec_stripetwin_forwarding_secret_0000000000";
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The waits before the 2nd, 3rd, … attempts; after the last, it gives up.
    pub retry_schedule: Vec<Duration>,
    /// `--forward-webhooks-to`: every event of every account goes there too.
    pub forward_to: Option<String>,
    pub forward_secret: String,
    /// Deliveries in flight at once, per server process.
    pub concurrency: usize,
    /// How often the worker looks for due retries and for events other
    /// server processes wrote (its own process wakes it at once).
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_schedule: parse_schedule(DEFAULT_RETRY_SCHEDULE).expect("valid default"),
            forward_to: None,
            forward_secret: DEFAULT_FORWARD_SECRET.to_owned(),
            concurrency: 8,
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Stripe-like: exponential backoff over hours.
pub const DEFAULT_RETRY_SCHEDULE: &str = "1m,5m,30m,2h,5h,10h";

/// `1s,2s,5m,1h`: durations in s, m or h (ms for tests).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| parse_duration(part.trim()))
        .collect()
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit (use ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        "h" => Ok(Duration::from_secs(number * 3600)),
        _ => Err(format!("'{text}' has an unknown unit (use ms, s, m or h)")),
    }
}
