//! Whose time a request acts in: real time, or the frozen time of the test
//! clock its customer belongs to. A request learns it from the first
//! object it reads that belongs to a customer (`Ctx::get`), or is told
//! (a customer created on a clock, a due item of a clock); every object,
//! event and due item it makes then carries that time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::http::ctx::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::store::{DueItem, Record};

/// The test clock's object type, as the registry names it.
pub const CLOCK_OBJECT: &str = "test_helpers.test_clock";

#[derive(Debug, Clone, PartialEq)]
enum Pinned {
    /// Nothing read yet says.
    Undecided,
    Wall,
    Clock {
        id: String,
        frozen: i64,
    },
}

/// One request's time, shared by the clones of its `Ctx`.
#[derive(Debug)]
pub struct ObjectTime {
    pinned: Mutex<Pinned>,
    /// Whether this caller changes things, so that objects of a clock
    /// that is advancing refuse it (a scheduler run never is refused).
    refused_while_advancing: bool,
    /// Set when the time was read before it was decided: a handler bug
    /// that would stamp real time on a test clock's objects.
    read_early: AtomicBool,
}

impl ObjectTime {
    /// A request that learns its time from what it reads.
    pub fn undecided(changes_objects: bool) -> Self {
        Self {
            pinned: Mutex::new(Pinned::Undecided),
            refused_while_advancing: changes_objects,
            read_early: AtomicBool::new(false),
        }
    }

    /// Work that runs at `frozen` on a test clock (an advance's items).
    pub fn on_clock(id: &str, frozen: i64) -> Self {
        Self {
            pinned: Mutex::new(Pinned::Clock {
                id: id.to_owned(),
                frozen,
            }),
            refused_while_advancing: false,
            read_early: AtomicBool::new(false),
        }
    }

    fn pinned(&self) -> Pinned {
        self.pinned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn pin(&self, to: Pinned) {
        let mut pinned = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if *pinned == Pinned::Undecided {
            if matches!(to, Pinned::Clock { .. }) && self.read_early.load(Ordering::Relaxed) {
                tracing::warn!("a request read the time before it learned its test clock");
            }
            *pinned = to;
        }
    }
}

impl Ctx {
    /// The time, for everything an object records or falls due at: the
    /// frozen time of the request's test clock, else real time.
    pub fn now(&self) -> i64 {
        match self.time.pinned() {
            Pinned::Clock { frozen, .. } => frozen,
            Pinned::Undecided => {
                self.time.read_early.store(true, Ordering::Relaxed);
                self.state.clock().now()
            }
            Pinned::Wall => self.state.clock().now(),
        }
    }

    /// The current year on the same clock, for card expiry checks.
    pub fn year(&self) -> i64 {
        crate::clock::year_of(self.now())
    }

    /// The test clock this request's objects follow, if any.
    pub fn test_clock(&self) -> Option<String> {
        match self.time.pinned() {
            Pinned::Clock { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Puts this request on the time of `record`'s customer (or of the
    /// customer `record` is), unless its time is decided already. Refuses
    /// a change to the objects of a clock that is advancing.
    pub async fn follow_clock(&self, record: &Record) -> ApiResult<()> {
        if self.time.pinned() != Pinned::Undecided {
            return Ok(());
        }
        let clock = if record.object == "customer" {
            record.data["test_clock"].as_str().map(str::to_owned)
        } else if let Some(customer) = &record.customer {
            let staged = self
                .unit
                .as_ref()
                .and_then(|u| u.get(&self.account, customer));
            let customer = match staged {
                Some(staged) => Some(staged),
                None => self.store().get(&self.account, customer).await?,
            };
            customer.and_then(|c| c.data["test_clock"].as_str().map(str::to_owned))
        } else {
            return Ok(());
        };
        match clock {
            Some(id) => self.follow_clock_id(&id).await,
            None => {
                self.time.pin(Pinned::Wall);
                Ok(())
            }
        }
    }

    /// Puts this request on test clock `id`'s time (a customer created on it).
    pub async fn follow_clock_id(&self, id: &str) -> ApiResult<()> {
        // Named by a request's `test_clock` (a customer created on it):
        // Stripe's 400 for a missing reference, under its name for clocks.
        let missing = || ApiError::no_such_reference("billingclock", id, "test_clock");
        let Some(clock) = self.store().get(&self.account, id).await? else {
            return Err(missing());
        };
        if clock.object != CLOCK_OBJECT || clock.deleted {
            return Err(missing());
        }
        if clock.data["status"] == "advancing" && self.time.refused_while_advancing {
            return Err(advancing(id));
        }
        self.time.pin(Pinned::Clock {
            id: id.to_owned(),
            frozen: clock.data["frozen_time"].as_i64().unwrap_or_default(),
        });
        Ok(())
    }

    /// Work due at `due_at` (unix seconds) on this request's time: it
    /// follows the request's test clock, if it has one.
    pub fn due_item(
        &self,
        id: String,
        kind: &str,
        target: &str,
        due_at: i64,
        payload: Value,
    ) -> DueItem {
        DueItem {
            id,
            account: self.account.clone(),
            test_clock: self.test_clock(),
            due_at: due_at.saturating_mul(1000),
            kind: kind.to_owned(),
            target: target.to_owned(),
            payload,
            claimed_by: None,
        }
    }
}

/// Stripe's refusal of a change to a test clock's objects while it runs.
pub fn advancing(clock: &str) -> ApiError {
    ApiError::invalid(format!(
        "The test clock {clock} is advancing. Wait until its status is `ready` before changing objects that belong to it."
    ))
    .with_code("test_clock_advancing")
}
