//! Whose time a request acts in: real time, or the frozen time of the test
//! clock its customer belongs to. A request learns it from the first
//! object it reads that belongs to a customer (`Ctx::get`), or is told
//! (a customer created on a clock, a due item of a clock); every object,
//! event and due item it makes then carries that time.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use crate::http::error::{ApiError, ApiResult};

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

    /// The time now: the clock's frozen time, else `wall`.
    pub fn now(&self, wall: i64) -> i64 {
        match self.pinned() {
            Pinned::Clock { frozen, .. } => frozen,
            Pinned::Undecided => {
                self.read_early.store(true, Ordering::Relaxed);
                wall
            }
            Pinned::Wall => wall,
        }
    }

    /// The test clock, once decided.
    pub fn clock(&self) -> Option<String> {
        match self.pinned() {
            Pinned::Clock { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn is_undecided(&self) -> bool {
        self.pinned() == Pinned::Undecided
    }

    pub fn pin_wall(&self) {
        self.pin(Pinned::Wall);
    }

    /// Pins test clock `clock` (a document), or refuses when it advances.
    pub fn pin_clock(&self, id: &str, clock: &Value) -> ApiResult<()> {
        if clock["status"] == "advancing" && self.refused_while_advancing {
            return Err(advancing(id));
        }
        self.pin(Pinned::Clock {
            id: id.to_owned(),
            frozen: clock["frozen_time"].as_i64().unwrap_or_default(),
        });
        Ok(())
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

/// Stripe's refusal of a change to a test clock's objects while it runs.
pub fn advancing(clock: &str) -> ApiError {
    ApiError::invalid(format!(
        "The test clock {clock} is advancing. Wait until its status is `ready` before changing objects that belong to it."
    ))
    .with_code("test_clock_advancing")
}
