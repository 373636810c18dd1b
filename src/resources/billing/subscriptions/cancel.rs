//! Ending a subscription now: by `DELETE`, at its `cancel_at`, when its
//! retries ran out, or with its test clock.

use serde_json::{Value, json};

use super::invoicing::invoice_now;
use super::lines::{line_from_stored, proration_lines};
use super::status::{self, Action, Status};
use crate::core::bookkeeping;
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::error::ApiResult;
use crate::resources::billing::invoices::{self, Line};
use crate::store::{Record, Write};

/// How a cancellation goes: the options of `DELETE /v1/subscriptions/{id}`
/// and the reason it records.
pub struct Cancel {
    /// Invoice pending prorations (and, with `prorate`, the unused time) now.
    pub invoice_now: bool,
    pub prorate: bool,
    /// `cancellation_details` (comment, feedback) the caller gave.
    pub details: Option<Value>,
    /// `cancellation_details.reason`: `cancellation_requested` or `payment_failed`.
    pub reason: &'static str,
}

impl Cancel {
    pub fn requested() -> Self {
        Self {
            invoice_now: false,
            prorate: false,
            details: None,
            reason: "cancellation_requested",
        }
    }
}

/// The writes that cancel `record` now, and the canceled subscription.
pub async fn cancel_now(
    ctx: &Ctx,
    record: &Record,
    options: &Cancel,
) -> ApiResult<(Vec<Write>, Value)> {
    let now = ctx.now();
    let mut doc = record.data.clone();
    status::Machine::check(&doc, Action::Cancel)?;
    let mut writes = Vec::new();
    let pending = bookkeeping::update(&mut doc, |b| std::mem::take(&mut b.pending_prorations));
    let mut lines: Vec<Line> = pending.iter().map(line_from_stored).collect();
    if options.prorate && matches!(doc["status"].as_str(), Some("active" | "past_due")) {
        let items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
        lines.extend(proration_lines(ctx, &items, &[], now).await?);
    }
    if options.invoice_now && !lines.is_empty() {
        invoice_now(ctx, &mut doc, lines, "subscription_cycle", &mut writes).await?;
    }
    // An `incomplete` subscription never started: Stripe ends it as
    // `incomplete_expired` and voids the first invoice it waited on.
    if status::Machine::apply(&mut doc, Action::Cancel)? == Status::IncompleteExpired
        && let Some(invoice) = doc["latest_invoice"].as_str()
    {
        invoices::void_open(ctx, invoice, &mut writes).await?;
    }
    // A scheduled cancellation keeps the time it was requested at.
    if doc["canceled_at"].is_null() || doc["cancel_at"].is_null() {
        doc["canceled_at"] = json!(now);
    }
    doc["ended_at"] = json!(now);
    doc["cancel_at_period_end"] = json!(false);
    doc["cancellation_details"]["reason"] = json!(options.reason);
    if let Some(details) = &options.details {
        doc["cancellation_details"]["comment"] = details["comment"].clone();
        doc["cancellation_details"]["feedback"] = details["feedback"].clone();
    }
    let mut all = vec![
        Write::Update(record.with_data(doc.clone())),
        ctx.event("customer.subscription.deleted", &doc, None),
    ];
    all.extend(writes);
    Ok((all, doc))
}
