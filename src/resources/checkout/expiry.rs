//! A session's expiry: what expiring writes (by `/expire` or at
//! `expires_at`), the due item that runs it at `expires_at`, and the
//! session as seen before the scheduler has caught up.

use serde_json::{Value, json};

use super::sessions::OBJECT;
use super::status::{self, Action};
use crate::core::bookkeeping::Bookkeeping;
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::error::ApiResult;
use crate::resources::payments::intent_status::Action as IntentAction;
use crate::resources::payments::{intents, payment_intents, setup_intents};
use crate::store::{DueItem, Record, Write};

/// The session expires: no more page, its unfinished intent canceled.
pub(super) async fn expire_writes(ctx: &Ctx, record: &Record) -> ApiResult<(Vec<Write>, Value)> {
    let mut doc = record.data.clone();
    status::Machine::apply(&mut doc, Action::Expire)?;
    doc["url"] = Value::Null;
    let mut writes = Vec::new();
    if let Some(intent_id) = Bookkeeping::of(&doc).intent
        && let Some(intent) = ctx.get(&intent_id).await?
        && matches!(
            intent.data["status"].as_str(),
            Some("requires_payment_method" | "requires_confirmation" | "requires_action")
        )
        && Bookkeeping::of(&intent.data).checkout_session.as_deref() == doc["id"].as_str()
    {
        let mut canceled = intent.data.clone();
        canceled["next_action"] = Value::Null;
        intents::forget_redirect(&mut canceled);
        let subscription = doc["mode"] == "subscription";
        move_intent(&mut canceled, &intent.object, subscription)?;
        if subscription {
            // The first PaymentIntent of the subscription's invoice: the
            // invoice stays open and the subscription incomplete, but the
            // buyer's pending authorization no longer counts.
            canceled["payment_method"] = Value::Null;
            writes.push(Write::Update(intent.with_data(canceled)));
        } else {
            canceled["cancellation_reason"] = json!("abandoned");
            if intent.object == "payment_intent" {
                canceled["canceled_at"] = json!(ctx.now());
            }
            writes.push(Write::Update(intent.with_data(canceled.clone())));
            writes.push(ctx.event(&format!("{}.canceled", intent.object), &canceled, None));
        }
    }
    writes.insert(0, Write::Update(record.with_data(doc.clone())));
    writes.push(ctx.event("checkout.session.expired", &doc, None));
    Ok((writes, doc))
}

/// The session's unfinished intent, through its own machine: back to
/// requires_payment_method for a subscription's, canceled otherwise.
fn move_intent(intent: &mut Value, object: &str, subscription: bool) -> ApiResult<()> {
    let action = if subscription {
        IntentAction::Abandon
    } else {
        IntentAction::Cancel
    };
    if object == "setup_intent" {
        setup_intents::status::Machine::apply(intent, action)?;
    } else {
        payment_intents::status::Machine::apply(intent, action)?;
    }
    Ok(())
}

/// Whether an open session's time is up.
pub(super) fn is_due(doc: &Value, now: i64) -> bool {
    status::Machine::check(doc, Action::Expire).is_ok()
        && doc["expires_at"].as_i64().is_some_and(|at| at <= now)
}

/// The scheduler's kind for a session's expiry at `expires_at`.
pub const EXPIRY_KIND: &str = "checkout_session_expiry";

/// The due item that expires a session at its `expires_at` (on its
/// customer's test clock, if it has one), scheduled when it is created.
pub fn expiry_item(ctx: &Ctx, doc: &Value) -> DueItem {
    expiry_item_for(&ctx.account, ctx.test_clock(), doc)
}

/// The expiry item of a session of `account` following `test_clock`: one
/// per session, its id following the session's.
pub fn expiry_item_for(account: &str, test_clock: Option<String>, doc: &Value) -> DueItem {
    let id = doc["id"].as_str().unwrap_or_default();
    DueItem {
        id: format!("due_expire_{id}"),
        account: account.to_owned(),
        test_clock,
        due_at: doc["expires_at"].as_i64().unwrap_or_default() * 1000,
        kind: EXPIRY_KIND.to_owned(),
        target: id.to_owned(),
        payload: json!({}),
        claimed_by: None,
    }
}

/// Runs at `expires_at`: the session expires (and `checkout.session.expired`
/// is sent) whether or not anyone looks at it. One completed or expired
/// meanwhile stays as it is.
pub async fn expire_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = ctx.get(&item.target).await? else {
        return Ok(Vec::new()); // its account's data was wiped
    };
    if record.object != OBJECT || status::Machine::check(&record.data, Action::Expire).is_err() {
        return Ok(Vec::new());
    }
    if !is_due(&record.data, ctx.now()) {
        // Not yet (the item ran early): again at the session's time.
        return Ok(vec![Write::Schedule(expiry_item(&ctx, &record.data))]);
    }
    Ok(expire_writes(&ctx, &record).await?.0)
}

/// The session as its buyer sees it: one whose time is up is expired, even
/// in the moment before the scheduler has stored that.
pub fn as_seen(doc: Value, now: i64) -> Value {
    if !is_due(&doc, now) {
        return doc;
    }
    let mut doc = doc;
    if status::Machine::apply(&mut doc, Action::Expire).is_ok() {
        doc["url"] = Value::Null;
    }
    doc
}
