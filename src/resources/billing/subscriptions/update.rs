//! Updating a subscription: the fields an update sets, item changes and
//! their prorations (invoiced now or kept pending), and ending a trial.

use serde_json::{Value, json};

use super::calendar::add_interval;
use super::invoicing::bill_update;
use super::items::{
    ItemSpec, check_items_agree, index, interval_of, item_pointer, new_item, plan_of,
};
use super::lines::{line_from_stored, period_line, proration_lines, stored_line};
use super::params::{UpdateRequest, check_default_payment_method};
use super::status::{self, Action, Status};
use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult};
use crate::http::params::Update;
use crate::resources::billing::invoices::Line;
use crate::store::{Record, Write};

pub(super) async fn update_writes(
    ctx: &Ctx,
    record: &Record,
    request: &UpdateRequest,
    now: i64,
) -> ApiResult<(Vec<Write>, (Value, Option<ApiError>))> {
    let mut doc = record.data.clone();
    let trialing = Status::of(&doc) == Some(Status::Trialing);
    let customer = doc["customer"].as_str().unwrap_or_default().to_owned();
    if !only_notes(request) {
        status::Machine::check(&doc, Action::Update)?;
    }
    request.patch.apply(&mut doc)?;
    if let Some(details) = &request.cancellation_details {
        doc["cancellation_details"]["comment"] = details["comment"].clone();
        doc["cancellation_details"]["feedback"] = details["feedback"].clone();
    }
    if let Value::Object(settings) = &request.settings {
        for (key, value) in settings {
            doc["payment_settings"][key] = value.clone();
        }
    }
    apply_collection(&mut doc, request)?;
    match &request.default_payment_method {
        Some(Update::Set(pm)) => {
            check_default_payment_method(ctx, pm, &customer).await?;
            doc["default_payment_method"] = json!(pm);
        }
        Some(Update::Unset) => doc["default_payment_method"] = Value::Null,
        None => {}
    }
    apply_cancel(&mut doc, request, now);
    let ending_trial = apply_trial_end(&mut doc, request, now)?;
    let mut writes = Vec::new();
    // A trial bills nothing for its time: no prorations while trialing.
    let prorate = request.proration_behavior != "none" && !trialing;
    let mut failure =
        change_items(ctx, &mut doc, request, &customer, prorate, now, &mut writes).await?;
    // (Unless the items' new interval already restarted and billed the cycle.)
    if ending_trial && doc["latest_invoice"] == record.data["latest_invoice"] {
        failure = restart_cycle(ctx, &mut doc, &request.behavior, now, &mut writes).await?;
    }
    index(&mut doc);
    let mut all = ctx.update_with_event(record, doc.clone(), "customer.subscription.updated");
    if all.len() == 1 && doc == record.data {
        all.clear();
    } else {
        // Its period or cancellation may have moved: so do its due items.
        writes.extend(super::renewal::schedule(ctx, &doc).await?);
    }
    all.extend(writes);
    Ok((all, (doc, failure)))
}

/// Whether the update only touches what an ended subscription may still
/// change (metadata and cancellation details).
fn only_notes(request: &UpdateRequest) -> bool {
    request.items.is_none()
        && request.default_payment_method.is_none()
        && request.cancel_at_period_end.is_none()
        && request.cancel_at.is_none()
        && request.trial_end.is_none()
        && request.collection_method.is_none()
        && request.days_until_due.is_none()
        && !request.patch.touches("description")
        && request.settings.as_object().is_none_or(|s| s.is_empty())
}

/// `collection_method` and `days_until_due`: a due date belongs to
/// `send_invoice` only, and switching to it needs one (new or kept).
fn apply_collection(doc: &mut Value, request: &UpdateRequest) -> ApiResult<()> {
    match (request.collection_method.as_deref(), request.days_until_due) {
        (Some("charge_automatically"), Some(_)) => {
            return Err(ApiError::invalid_param(
                "days_until_due",
                "Days until due can only be set when collection_method is send_invoice.",
            ));
        }
        (Some("charge_automatically"), None) => {
            doc["collection_method"] = json!("charge_automatically");
            doc["days_until_due"] = Value::Null;
        }
        (Some(method), days) => {
            let days = days
                .or_else(|| doc["days_until_due"].as_i64())
                .ok_or_else(|| ApiError::missing_param("days_until_due"))?;
            doc["collection_method"] = json!(method);
            doc["days_until_due"] = json!(days);
        }
        (None, Some(days)) => {
            if doc["collection_method"] != "send_invoice" {
                return Err(ApiError::invalid_param(
                    "days_until_due",
                    "Days until due can only be set when collection_method is send_invoice.",
                ));
            }
            doc["days_until_due"] = json!(days);
        }
        (None, None) => {}
    }
    Ok(())
}

/// `cancel_at_period_end` and `cancel_at`; ending at the period's end sets
/// `cancel_at` to it, as Stripe shows.
fn apply_cancel(doc: &mut Value, request: &UpdateRequest, now: i64) {
    let period_end = Bookkeeping::of(doc)
        .period
        .and_then(|p| p.end)
        .unwrap_or(now);
    // Stripe's `canceled_at` of a scheduled cancellation is the time it was
    // requested, not when it takes effect.
    let (at_period_end, cancel_at) = match (request.cancel_at_period_end, &request.cancel_at) {
        (Some(true), _) => (true, Some(period_end)),
        (Some(false), None) | (_, Some(Update::Unset)) => (false, None),
        (_, Some(Update::Set(at))) => (false, Some(*at)),
        _ => return,
    };
    doc["cancel_at_period_end"] = json!(at_period_end);
    doc["cancel_at"] = json!(cancel_at);
    doc["canceled_at"] = json!(cancel_at.map(|_| now));
}

/// `trial_end`: `now` ends a trial (returns true when one was running, so
/// the paid period is billed), a timestamp starts or extends one.
fn apply_trial_end(doc: &mut Value, request: &UpdateRequest, now: i64) -> ApiResult<bool> {
    let mut ending_trial = false;
    if let Some(end) = request.trial_end {
        match end {
            None => {
                doc["trial_end"] = json!(now);
                // Only a running trial ends.
                ending_trial = status::Machine::apply(doc, Action::EndTrial).is_ok();
            }
            Some(end) => {
                doc["trial_end"] = json!(end);
                if doc["trial_start"].is_null() {
                    doc["trial_start"] = json!(now);
                }
                status::Machine::apply(doc, Action::StartTrial)?;
                for item in doc["items"]["data"].as_array_mut().into_iter().flatten() {
                    item["current_period_end"] = json!(end);
                }
            }
        }
    }
    Ok(ending_trial)
}

/// Applies `items`, if given, and bills the change: prorations (kept pending, or
/// invoiced under always_invoice) or, when the interval changes, a new
/// cycle billed now. Returns the error of a failed charge.
async fn change_items(
    ctx: &Ctx,
    doc: &mut Value,
    request: &UpdateRequest,
    customer: &str,
    prorate: bool,
    now: i64,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<ApiError>> {
    let Some(specs) = &request.items else {
        return Ok(None);
    };
    let old_items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
    let mut new_items = merge_items(doc, &old_items, specs, customer, now, writes)?;
    let interval_changed =
        interval_of(&old_items[0]["price"]) != interval_of(&new_items[0]["price"]);
    let mut lines = if prorate {
        proration_lines(ctx, &old_items, &new_items, now).await?
    } else {
        Vec::new()
    };
    if interval_changed {
        // A new interval restarts the billing cycle now, billed in full.
        let (interval, count) = interval_of(&new_items[0]["price"]);
        let new_end = add_interval(now, &interval, count);
        for item in new_items.iter_mut() {
            item["current_period_start"] = json!(now);
            item["current_period_end"] = json!(new_end);
        }
        doc["billing_cycle_anchor"] = json!(now);
        lines.retain(|l| l.amount < 0);
        for item in &new_items {
            lines.push(period_line(ctx, item, false).await?);
        }
    }
    doc["items"]["data"] = json!(new_items);
    let mut failure = None;
    if interval_changed || request.proration_behavior == "always_invoice" {
        let pending = bookkeeping::update(doc, |b| std::mem::take(&mut b.pending_prorations));
        let mut all: Vec<Line> = pending.iter().map(line_from_stored).collect();
        all.extend(lines);
        if !all.is_empty() {
            failure = bill_update(ctx, doc, all, &request.behavior, writes).await?;
            if failure.is_some() {
                // An active subscription falls past due; others stay as they are.
                let _ = status::Machine::apply(doc, Action::FailPayment);
            }
        }
    } else if !lines.is_empty() {
        bookkeeping::update(doc, |b| {
            b.pending_prorations.extend(lines.iter().map(stored_line));
        });
    }
    Ok(failure)
}

/// The subscription's items after the requested changes (edited, deleted
/// or added, new ones with their pointer records), checked to still agree.
fn merge_items(
    doc: &Value,
    old_items: &[Value],
    specs: &[ItemSpec],
    customer: &str,
    now: i64,
    writes: &mut Vec<Write>,
) -> ApiResult<Vec<Value>> {
    let mut new_items = old_items.to_vec();
    let start = old_items
        .first()
        .and_then(|i| i["current_period_start"].as_i64())
        .unwrap_or(now);
    let end = old_items
        .first()
        .and_then(|i| i["current_period_end"].as_i64())
        .unwrap_or(now);
    let sub_id = doc["id"].as_str().unwrap_or_default().to_owned();
    for spec in specs {
        writes.extend(spec.writes.iter().cloned());
        match &spec.id {
            Some(item_id) => {
                let index = new_items
                    .iter()
                    .position(|i| i["id"] == json!(item_id))
                    .ok_or_else(|| {
                        ApiError::no_such_reference("subscription_item", item_id, "items")
                    })?;
                if spec.deleted {
                    new_items.remove(index);
                    continue;
                }
                let item = &mut new_items[index];
                if let Some(price) = &spec.price {
                    item["price"] = price.clone();
                    item["plan"] = plan_of(price);
                }
                if let Some(quantity) = spec.quantity {
                    item["quantity"] = json!(quantity);
                }
                if let Some(metadata) = &spec.metadata {
                    metadata.apply(&mut item["metadata"])?;
                }
            }
            None => {
                let item = new_item(spec, &sub_id, (start, end), now)?;
                writes.push(Write::Insert(item_pointer(&item, customer)));
                new_items.push(item);
            }
        }
    }
    if new_items.is_empty() {
        return Err(ApiError::invalid_param(
            "items",
            "A subscription must have at least one active price. To end it, cancel the subscription instead.",
        ));
    }
    let specs_view: Vec<ItemSpec> = new_items
        .iter()
        .map(|i| ItemSpec {
            id: None,
            price: Some(i["price"].clone()),
            quantity: None,
            metadata: None,
            deleted: false,
            writes: Vec::new(),
        })
        .collect();
    check_items_agree(&specs_view, doc["currency"].as_str(), &doc["billing_mode"])?;
    Ok(new_items)
}

/// A new billing cycle starting now, invoiced in full: a trial ended by
/// `trial_end=now`, a paused subscription resumed. Returns the error of a
/// failed charge (the subscription is then past due).
pub(super) async fn restart_cycle(
    ctx: &Ctx,
    doc: &mut Value,
    behavior: &str,
    now: i64,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<ApiError>> {
    doc["billing_cycle_anchor"] = json!(now);
    for item in doc["items"]["data"].as_array_mut().into_iter().flatten() {
        let (interval, count) = interval_of(&item["price"]);
        item["current_period_start"] = json!(now);
        item["current_period_end"] = json!(add_interval(now, &interval, count));
    }
    let mut lines = Vec::new();
    for item in doc["items"]["data"].as_array().cloned().unwrap_or_default() {
        lines.push(period_line(ctx, &item, false).await?);
    }
    let failure = bill_update(ctx, doc, lines, behavior, writes).await?;
    if failure.is_some() {
        status::Machine::apply(doc, Action::FailPayment)?;
    }
    Ok(failure)
}
