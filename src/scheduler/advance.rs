//! Advancing a test clock. An advance is one due item on real time (of a
//! kind registered with `Kinds::advancing`, its target the clock) whose
//! every run is a turn: it claims the clock's items due by the target in
//! time order and runs each on the clock's time, committed as any item is.
//! After a bounded turn it stores itself again, so other clocks and
//! real-time work take turns with it; when nothing is left, `finish` says
//! what the clock becomes. A process that dies mid-advance leaves the
//! advance and the item in hand to their leases: another scheduler, or
//! this one after a restart, goes on where it stopped.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use super::{AdvanceHandler, BATCH, Kind, Kinds, done, execute};
use crate::clock::Stopwatch;
use crate::http::ctx::Ctx;
use crate::http::error::{ApiError, ApiResult, store_error};
use crate::http::state::AppState;
use crate::ids;
use crate::store::{DueItem, DueScope, Write};

/// How an advance ended, for its `finish` handler.
#[derive(Debug, Clone, PartialEq)]
pub enum Advanced {
    /// Everything due by the target ran.
    Ready,
    /// An item failed in a way running it again will not mend.
    Failed(String),
}

/// How long one turn of an advance runs before others get theirs.
const TURN: Duration = Duration::from_millis(50);
/// How long an advance waits for an item another claim still holds (its
/// process died mid-run: the lease runs out).
const WAIT_MS: i64 = 1000;

/// The item that advances test clock `clock` of `account` from `from` to
/// `to` (unix seconds), run by `kind`'s handlers from real time `now_ms`.
pub fn advance_item(
    account: &str,
    clock: &str,
    kind: &str,
    (from, to): (i64, i64),
    now_ms: i64,
) -> DueItem {
    DueItem {
        id: format!("due_advance_{clock}"),
        account: account.to_owned(),
        test_clock: None,
        due_at: now_ms,
        kind: kind.to_owned(),
        target: clock.to_owned(),
        payload: json!({"from": from.saturating_mul(1000), "to": to.saturating_mul(1000)}),
        claimed_by: None,
    }
}

enum Turn {
    /// More to do: again after this many milliseconds.
    Again(i64),
    Finished(Advanced),
}

/// One turn of the advance `item`; its outcome commits with its completion.
pub(super) async fn turn(
    state: &AppState,
    kinds: &Kinds,
    ctx: Ctx,
    item: &DueItem,
    finish: &AdvanceHandler,
) -> ApiResult<()> {
    let outcome = run_clock_items(state, kinds, item).await?;
    ctx.retry(|| async {
        let mut writes = match &outcome {
            Turn::Again(delay) => {
                let mut next = item.clone();
                next.due_at = state.clock().now_ms() + delay;
                next.claimed_by = None;
                vec![Write::Schedule(next)]
            }
            Turn::Finished(advanced) => finish(ctx.clone(), item.clone(), advanced.clone()).await?,
        };
        // First: the next turn reuses this item's id.
        writes.insert(0, done(item));
        Ok((writes, ()))
    })
    .await
}

/// Runs the clock's items due by the target, in order, for one turn.
async fn run_clock_items(state: &AppState, kinds: &Kinds, item: &DueItem) -> ApiResult<Turn> {
    let clock = item.target.as_str();
    let from = item.payload["from"].as_i64().unwrap_or_default();
    let to = item.payload["to"].as_i64().unwrap_or_default();
    let lease = state.scheduler().lease.as_millis() as i64;
    let watch = Stopwatch::start();
    Ok('turn: loop {
        if watch.elapsed() >= TURN {
            break Turn::Again(0);
        }
        let claimer = format!("sched_{}", ids::random_base62(16));
        let now = state.clock().now_ms();
        let scope = DueScope::Clock {
            test_clock: clock,
            up_to: to,
        };
        let store = state.store();
        let items = store
            .claim_due(scope, now, now + lease, &claimer, BATCH as i64)
            .await
            .map_err(store_error)?;
        if items.is_empty() {
            // Held by a claim of a process that died mid-run, or done.
            if store.clock_has_due(clock, to).await.map_err(store_error)? {
                break Turn::Again(WAIT_MS);
            }
            break Turn::Finished(Advanced::Ready);
        }
        for sub in items {
            match run_on_clock(state, kinds, sub, from).await {
                Ok(()) => {}
                Err(err) if transient(&err) => return Err(err),
                Err(err) => break 'turn Turn::Finished(Advanced::Failed(err.to_string())),
            }
        }
    })
}

/// Runs one item of the clock at its time (never before the time the
/// advance started from: an item due earlier was scheduled since).
async fn run_on_clock(state: &AppState, kinds: &Kinds, sub: DueItem, from: i64) -> ApiResult<()> {
    let clock = sub.test_clock.clone().unwrap_or_default();
    let at = sub.due_at.max(from) / 1000;
    let ctx = Ctx::for_worker(state, sub.account.clone()).on_clock(&clock, at);
    match kinds.0.get(&sub.kind) {
        Some(Kind::Item {
            handler,
            every: None,
        }) => execute(state, handler, None, ctx, &sub).await,
        _ => Err(ApiError::Internal(format!(
            "no handler runs due work of kind {} on a test clock",
            sub.kind
        ))),
    }
}

/// Whether running the item again may succeed: the store could not be
/// reached, or another writer got in between.
fn transient(err: &ApiError) -> bool {
    matches!(err, ApiError::Unavailable { .. }) || err.status() == StatusCode::CONFLICT
}
