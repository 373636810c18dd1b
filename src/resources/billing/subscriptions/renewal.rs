//! What time does to a subscription, as due items on its customer's clock
//! (a test clock's, else real time): the renewal at each period's end (a
//! new `subscription_cycle` invoice, left in draft for an hour), the end of
//! a trial (and what a trial without a payment method does), a scheduled
//! cancellation, `trial_will_end` three days ahead, `invoice.upcoming`,
//! and an incomplete subscription expiring.

use serde_json::{Value, json};

use super::TRIAL_WARNING;
use super::calendar::add_interval;
use super::cancel::{Cancel, cancel_now};
use super::collection;
use super::items::{index, interval_of};
use super::lines::{line_from_stored, period_line};
use super::status::{self, Action, Status};
use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::Ctx;
use crate::http::error::ApiResult;
use crate::resources::billing::invoices::{self, Line};
use crate::resources::billing::settings;
use crate::store::{DueItem, Record, Write};

pub const RENEWAL_KIND: &str = "subscription_renewal";
pub const TRIAL_WILL_END_KIND: &str = "subscription_trial_will_end";
pub const UPCOMING_KIND: &str = "subscription_invoice_upcoming";
pub const INCOMPLETE_EXPIRY_KIND: &str = "subscription_incomplete_expiry";
/// How long a renewal invoice stays a draft before it is finalized.
pub const DRAFT_HOURS: i64 = 1;

/// The items that follow a subscription that just became live (created,
/// paid at last, resumed, or renewed): its next renewal (at its period's
/// end, or its cancellation), the trial warning and `invoice.upcoming`.
/// Each replaces the one it had, so a moved period moves them.
pub async fn schedule(ctx: &Ctx, sub: &Value) -> ApiResult<Vec<Write>> {
    let id = sub["id"].as_str().unwrap_or_default();
    let mut writes = Vec::new();
    let live = matches!(
        Status::of(sub),
        Some(Status::Active | Status::Trialing | Status::PastDue | Status::Unpaid)
    );
    let Some(end) = Bookkeeping::of(sub)
        .period
        .and_then(|p| p.end)
        .filter(|_| live)
    else {
        return Ok(writes);
    };
    let now = ctx.now();
    let mut replace = |kind: &str, at: i64| {
        let item_id = format!("due_{kind}_{id}");
        writes.push(Write::Unschedule {
            id: item_id.clone(),
        });
        writes.push(Write::Schedule(ctx.due_item(
            item_id,
            kind,
            id,
            at,
            json!({}),
        )));
    };
    let renew_at = match sub["cancel_at"].as_i64() {
        Some(at) if at < end => at,
        _ => end,
    };
    replace(RENEWAL_KIND, renew_at.max(now));
    if Status::of(sub) == Some(Status::Trialing)
        && let Some(trial_end) = sub["trial_end"].as_i64()
        && trial_end - TRIAL_WARNING > now
    {
        replace(TRIAL_WILL_END_KIND, trial_end - TRIAL_WARNING);
    }
    let days = settings::for_account(ctx).await?.upcoming_days;
    if days > 0
        && sub["collection_method"] == "charge_automatically"
        && sub["cancel_at"].is_null()
        && end - days * 86_400 > now
    {
        replace(UPCOMING_KIND, end - days * 86_400);
    }
    Ok(writes)
}

/// The expiry of a subscription created `incomplete`: its first invoice
/// has the account's hours (Stripe: 23) to be paid.
pub async fn schedule_expiry(ctx: &Ctx, sub: &Value) -> ApiResult<Write> {
    let id = sub["id"].as_str().unwrap_or_default();
    let hours = settings::for_account(ctx).await?.incomplete_hours;
    let at = ctx.now() + hours * 3600;
    let item = ctx.due_item(
        format!("due_{INCOMPLETE_EXPIRY_KIND}_{id}"),
        INCOMPLETE_EXPIRY_KIND,
        id,
        at,
        json!({}),
    );
    Ok(Write::Schedule(item))
}

async fn load_live(ctx: &Ctx, item: &DueItem) -> ApiResult<Option<Record>> {
    Ok(ctx
        .get(&item.target)
        .await?
        .filter(|r| r.object == "subscription" && !r.deleted))
}

/// Runs at a period's end: cancels a subscription due to end, ends a
/// trial, or starts the next period with its invoice.
pub async fn renew_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = load_live(&ctx, &item).await? else {
        return Ok(Vec::new());
    };
    let sub = &record.data;
    let now = ctx.now();
    let status = Status::of(sub);
    if !matches!(
        status,
        Some(Status::Active | Status::Trialing | Status::PastDue | Status::Unpaid)
    ) {
        return Ok(Vec::new()); // ended, paused, or still incomplete
    }
    if sub["cancel_at"].as_i64().is_some_and(|at| at <= now) {
        return Ok(cancel_now(&ctx, &record, &Cancel::requested()).await?.0);
    }
    let end = Bookkeeping::of(sub)
        .period
        .and_then(|p| p.end)
        .unwrap_or(now);
    if end > now {
        // Not yet (the period moved since): again at its time.
        return schedule(&ctx, sub).await;
    }
    if status == Some(Status::Trialing)
        && let Some(writes) = trial_without_payment_method(&ctx, &record).await?
    {
        return Ok(writes);
    }
    renew(&ctx, &record, now).await
}

/// A trial ending without a payment method to charge: what
/// `trial_settings.end_behavior.missing_payment_method` says (None: go on
/// and invoice, the default `create_invoice`).
async fn trial_without_payment_method(ctx: &Ctx, record: &Record) -> ApiResult<Option<Vec<Write>>> {
    let sub = &record.data;
    if sub["collection_method"] != "charge_automatically"
        || collection::payment_method_for(ctx, sub).await?.is_some()
    {
        return Ok(None);
    }
    match sub["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
        Some("cancel") => Ok(Some(cancel_now(ctx, record, &Cancel::requested()).await?.0)),
        Some("pause") => {
            let mut doc = sub.clone();
            status::Machine::apply(&mut doc, Action::Pause)?;
            let mut writes =
                ctx.update_with_event(record, doc.clone(), "customer.subscription.updated");
            writes.push(ctx.event("customer.subscription.paused", &doc, None));
            Ok(Some(writes))
        }
        _ => Ok(None),
    }
}

/// The next period starts at the old one's end: items move on (from the
/// billing cycle anchor, so month ends do not drift), and its invoice is
/// drafted with pending prorations, to be finalized an hour later.
async fn renew(ctx: &Ctx, record: &Record, now: i64) -> ApiResult<Vec<Write>> {
    let mut doc = record.data.clone();
    let old = Bookkeeping::of(&doc).period.unwrap_or_default();
    let (start, old_end) = (old.start.unwrap_or(now), old.end.unwrap_or(now));
    let anchor = doc["billing_cycle_anchor"].as_i64().unwrap_or(old_end);
    for item in doc["items"]["data"].as_array_mut().into_iter().flatten() {
        let (interval, count) = interval_of(&item["price"]);
        item["current_period_start"] = json!(old_end);
        item["current_period_end"] = json!(next_period_end(anchor, old_end, &interval, count));
    }
    // A trial ends into its first paid period.
    let _ = status::Machine::apply(&mut doc, Action::EndTrial);
    index(&mut doc);
    let pending = bookkeeping::update(&mut doc, |b| std::mem::take(&mut b.pending_prorations));
    let mut lines: Vec<Line> = pending.iter().map(line_from_stored).collect();
    for item in doc["items"]["data"].as_array().cloned().unwrap_or_default() {
        lines.push(period_line(ctx, &item, false).await?);
    }
    let currency = doc["currency"].as_str().unwrap_or("usd").to_owned();
    crate::core::money::sum(lines.iter().map(|l| l.amount), "items", &currency)?;
    let customer = ctx
        .load(
            "customer",
            doc["customer"].as_str().unwrap_or_default(),
            "customer",
        )
        .await?;
    let mut invoice = invoices::draft(
        &customer.data,
        &doc,
        &lines,
        "subscription_cycle",
        (start, old_end),
        now,
    );
    // An unpaid subscription's invoices stay drafts (Stripe's setting).
    let finalizes = Status::of(&doc) != Some(Status::Unpaid);
    if finalizes {
        invoice["automatically_finalizes_at"] = json!(now + DRAFT_HOURS * 3600);
    } else {
        invoice["auto_advance"] = json!(false);
    }
    doc["latest_invoice"] = invoice["id"].clone();
    let mut writes = ctx.update_with_event(record, doc.clone(), "customer.subscription.updated");
    writes.push(ctx.event("invoice.created", &invoice, None));
    if finalizes {
        writes.push(Write::Schedule(collection::finalization_item(
            ctx, &invoice,
        )));
    }
    writes.push(Write::Insert(Record::new("invoice", invoice)));
    writes.extend(schedule(ctx, &doc).await?);
    Ok(writes)
}

/// Where the period starting at `start` ends: the first step of the
/// anchor's cycle after `start`.
fn next_period_end(anchor: i64, start: i64, interval: &str, count: i64) -> i64 {
    let count = count.max(1);
    let mut steps = 1;
    loop {
        let end = add_interval(anchor, interval, steps * count);
        if end > start || steps > 100_000 {
            return end.max(start + 1);
        }
        steps += 1;
    }
}

/// Three days before a trial ends.
pub async fn warn_trial_end(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = load_live(&ctx, &item).await? else {
        return Ok(Vec::new());
    };
    if Status::of(&record.data) != Some(Status::Trialing) {
        return Ok(Vec::new());
    }
    Ok(vec![ctx.event(
        "customer.subscription.trial_will_end",
        &record.data,
        None,
    )])
}

/// `invoice.upcoming` the account's days before a renewal: a preview of
/// the next invoice, without an id, as Stripe sends it.
pub async fn announce_upcoming(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = load_live(&ctx, &item).await? else {
        return Ok(Vec::new());
    };
    let sub = &record.data;
    if !matches!(
        Status::of(sub),
        Some(Status::Active | Status::Trialing | Status::PastDue)
    ) {
        return Ok(Vec::new());
    }
    let mut lines: Vec<Line> = Bookkeeping::of(sub)
        .pending_prorations
        .iter()
        .map(line_from_stored)
        .collect();
    for item in sub["items"]["data"].as_array().cloned().unwrap_or_default() {
        lines.push(period_line(&ctx, &item, false).await?);
    }
    let customer = ctx
        .load(
            "customer",
            sub["customer"].as_str().unwrap_or_default(),
            "customer",
        )
        .await?;
    let period = Bookkeeping::of(sub).period.unwrap_or_default();
    let mut preview = invoices::draft(
        &customer.data,
        sub,
        &lines,
        "upcoming",
        (
            period.start.unwrap_or_default(),
            period.end.unwrap_or_default(),
        ),
        period.end.unwrap_or_default(),
    );
    preview["id"] = Value::Null;
    Ok(vec![ctx.event("invoice.upcoming", &preview, None)])
}

/// An incomplete subscription whose first invoice was not paid in time
/// becomes `incomplete_expired` (terminal), and that invoice is voided.
pub async fn expire_incomplete(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = load_live(&ctx, &item).await? else {
        return Ok(Vec::new());
    };
    if Status::of(&record.data) != Some(Status::Incomplete) {
        return Ok(Vec::new());
    }
    let mut doc = record.data.clone();
    status::Machine::apply(&mut doc, Action::Cancel)?;
    let now = ctx.now();
    doc["ended_at"] = json!(now);
    let mut writes = Vec::new();
    if let Some(invoice) = doc["latest_invoice"].as_str() {
        invoices::void_open(&ctx, invoice, &mut writes).await?;
    }
    let mut all = ctx.update_with_event(&record, doc, "customer.subscription.updated");
    all.extend(writes);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_anchor() {
        // 2026-01-31 00:00 UTC: February ends on the 28th, March on the 31st.
        let jan31 = 1_769_817_600;
        let feb28 = next_period_end(jan31, jan31, "month", 1);
        assert_eq!(crate::clock::utc_text(feb28), "2026-02-28 00:00:00 UTC");
        let mar31 = next_period_end(jan31, feb28, "month", 1);
        assert_eq!(crate::clock::utc_text(mar31), "2026-03-31 00:00:00 UTC");
        assert_eq!(
            next_period_end(jan31, jan31, "week", 2) - jan31,
            14 * 86_400
        );
    }
}
