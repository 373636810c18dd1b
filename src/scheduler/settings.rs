//! How the scheduler polls and holds its claims (read by the app state).

use std::time::Duration;

/// How often the scheduler looks for due work, and how long a claim holds.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub poll_interval: Duration,
    /// Longer than any handler runs: a live process never loses a claim
    /// mid-run, a dead one's items run again this long after it died.
    pub lease: Duration,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(30),
        }
    }
}
