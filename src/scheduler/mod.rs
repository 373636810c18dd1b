//! Work that falls due: a Checkout Session's expiry, a subscription's
//! renewal, an invoice's retries, the retention sweeps.
//!
//! Due items live in the store, written in the same transaction as the
//! change that makes them due, so they survive restarts. A background
//! worker the app owns claims the items whose time has come (earliest
//! first; `FOR UPDATE SKIP LOCKED` on Postgres, SQLite's single writer
//! otherwise), runs each one's handler, and commits what the handler
//! decided together with deleting the item ([`Write::Done`]): an item's
//! effects land exactly once, across restarts and across server processes
//! on one database. A claim is a lease: when its process dies before that
//! commit, the lease runs out and another scheduler runs the item again;
//! should the first one still commit late, its claim is gone and the store
//! refuses the whole transaction.
//!
//! Items that follow a test clock run only while that clock advances, on
//! its time (see `advance`).
//!
//! This module knows no resource: resources register the kinds they
//! schedule in a [`Kinds`] table (see `app.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use crate::http::ctx::Ctx;
use crate::http::error::ApiResult;
use crate::http::state::AppState;
use crate::ids;
use crate::store::{DueItem, DueScope, Write};

mod advance;
pub mod settings;
pub use advance::{Advanced, advance_item};
pub use settings::SchedulerSettings;

/// What a handler answers: the writes running the item makes (objects,
/// events, follow-up items), committed with the item's completion.
pub type Outcome = Pin<Box<dyn Future<Output = ApiResult<Vec<Write>>> + Send>>;
type Handler = Arc<dyn Fn(Ctx, DueItem) -> Outcome + Send + Sync>;
type AdvanceHandler = Arc<dyn Fn(Ctx, DueItem, Advanced) -> Outcome + Send + Sync>;

/// What running an item of a kind does.
enum Kind {
    /// Runs `handler`; periodic kinds (`every`) exist once, always: each
    /// run schedules the next.
    Item {
        handler: Handler,
        every: Option<Duration>,
    },
    /// Advances a test clock; `finish` says what it becomes at the end.
    Advance(AdvanceHandler),
}

/// The registered kinds of due work: kind name → handler (ordered, so every
/// process writes the periodic items in one order and none waits on another).
#[derive(Default)]
pub struct Kinds(BTreeMap<String, Kind>);

impl Kinds {
    /// Items of `kind` run `handler`, which reads through its `Ctx` and
    /// returns writes (it must not commit them itself).
    pub fn on<F, Fut>(self, kind: &str, handler: F) -> Self
    where
        F: Fn(Ctx, DueItem) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<Vec<Write>>> + Send + 'static,
    {
        self.register(kind, None, handler)
    }

    /// One item of `kind` runs `handler` at start-up and then every `period`.
    pub fn every<F, Fut>(self, kind: &str, period: Duration, handler: F) -> Self
    where
        F: Fn(Ctx, DueItem) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<Vec<Write>>> + Send + 'static,
    {
        self.register(kind, Some(period), handler)
    }

    /// Items of `kind` ([`advance_item`]) advance a test clock: every item
    /// of that clock due by the target runs first, in time order and on
    /// the clock's time; then `finish` says what the clock becomes.
    pub fn advancing<F, Fut>(mut self, kind: &str, finish: F) -> Self
    where
        F: Fn(Ctx, DueItem, Advanced) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<Vec<Write>>> + Send + 'static,
    {
        let finish: AdvanceHandler =
            Arc::new(move |ctx, item, advanced| Box::pin(finish(ctx, item, advanced)));
        self.0.insert(kind.to_owned(), Kind::Advance(finish));
        self
    }

    fn register<F, Fut>(mut self, kind: &str, every: Option<Duration>, handler: F) -> Self
    where
        F: Fn(Ctx, DueItem) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult<Vec<Write>>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |ctx, item| Box::pin(handler(ctx, item)));
        self.0
            .insert(kind.to_owned(), Kind::Item { handler, every });
        self
    }
}

/// The one item of a periodic kind: a fixed id, so every server process
/// ensuring it at start-up leaves exactly one.
pub fn periodic_item(kind: &str, due_at: i64) -> DueItem {
    DueItem {
        id: format!("due_{kind}"),
        account: String::new(),
        test_clock: None,
        due_at,
        kind: kind.to_owned(),
        target: String::new(),
        payload: json!({}),
        claimed_by: None,
    }
}

/// Items claimed at once: small, so a lease never outlasts its batch.
const BATCH: usize = 16;

/// Runs due work until `stop` turns true; the item in hand finishes first.
pub async fn run(state: AppState, kinds: Kinds, mut stop: watch::Receiver<bool>) {
    let settings = state.scheduler().clone();
    let wake = state.scheduler_wake();
    let mut ensured = false;
    while !*stop.borrow() {
        if !ensured {
            ensured = ensure_periodic(&state, &kinds).await;
        }
        // Items due in the past (while no server ran) run at once.
        if run_due(&state, &kinds, &settings).await == BATCH {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll_interval) => {}
            _ = wake.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Stores each periodic kind's item unless it exists; false if the store
/// could not be reached (tried again at the next poll).
async fn ensure_periodic(state: &AppState, kinds: &Kinds) -> bool {
    let now = state.clock().now_ms();
    let writes: Vec<Write> = kinds
        .0
        .iter()
        .filter(|(_, kind)| matches!(kind, Kind::Item { every: Some(_), .. }))
        .map(|(name, _)| Write::Schedule(periodic_item(name, now)))
        .collect();
    match state.store().commit("", &writes).await {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!("scheduler: storing the periodic items failed: {err}");
            false
        }
    }
}

/// Claims one batch of due items and runs them in time order; returns
/// how many it claimed.
async fn run_due(state: &AppState, kinds: &Kinds, settings: &SchedulerSettings) -> usize {
    // A fresh claim per batch: a late commit of an earlier claim on the
    // same item is refused even within this process.
    let claimer = format!("sched_{}", ids::random_base62(16));
    let now = state.clock().now_ms();
    let lease_until = now + settings.lease.as_millis() as i64;
    let items = match state
        .store()
        .claim_due(DueScope::Wall, now, lease_until, &claimer, BATCH as i64)
        .await
    {
        Ok(items) => items,
        Err(err) => {
            tracing::warn!("scheduler: claiming due items failed: {err}");
            return 0;
        }
    };
    let claimed = items.len();
    for item in items {
        run_item(state, kinds, item).await;
    }
    claimed
}

/// Runs one claimed item: its handler's writes, its completion and (for a
/// periodic kind) its next run commit together. On a failure the item
/// stays claimed, and runs again when the lease has run out.
async fn run_item(state: &AppState, kinds: &Kinds, item: DueItem) {
    let Some(kind) = kinds.0.get(&item.kind) else {
        // A server of another version may know it: leave it to that one.
        tracing::warn!("scheduler: no handler for {} ({})", item.kind, item.id);
        return;
    };
    let ctx = Ctx::for_worker(state, item.account.clone());
    let ran = match kind {
        Kind::Advance(finish) => advance::turn(state, kinds, ctx, &item, finish).await,
        Kind::Item { handler, every } => execute(state, handler, *every, ctx, &item).await,
    };
    if let Err(err) = ran {
        tracing::warn!("scheduler: {} ({}) did not run: {err}", item.kind, item.id);
    }
}

/// Commits what `handler` decides for `item`, with its completion (and,
/// `every` so often, its next run).
async fn execute(
    state: &AppState,
    handler: &Handler,
    every: Option<Duration>,
    ctx: Ctx,
    item: &DueItem,
) -> ApiResult<()> {
    let done = done(item);
    // Ctx::retry decides again on a version conflict; a lost claim (the
    // lease ran out and another scheduler took the item) commits nothing.
    ctx.retry(|| async {
        let mut writes = handler(ctx.clone(), item.clone()).await?;
        // First: a follow-up item may reuse this item's id.
        writes.insert(0, done.clone());
        if let Some(every) = every {
            let next = state.clock().now_ms() + every.as_millis() as i64;
            writes.push(Write::Schedule(periodic_item(&item.kind, next)));
        }
        Ok((writes, ()))
    })
    .await
}

/// The write that deletes a claimed item once it ran.
fn done(item: &DueItem) -> Write {
    Write::Done {
        id: item.id.clone(),
        claimed_by: item.claimed_by.clone().unwrap_or_default(),
    }
}
