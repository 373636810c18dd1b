//! Billing a subscription's invoices after creation: invoicing lines now
//! (updates, cancellation), and what paying a subscription's invoice later
//! changes on the subscription.

use serde_json::{Value, json};

use super::status::{self, Action};
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::resources::billing::invoices::{self, Line};
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::payment_methods;
use crate::store::{Record, Write};

/// A subscription's invoice was paid after the fact (a client confirm, the
/// authorization page, `/pay`): an incomplete or past-due subscription
/// becomes active.
pub async fn invoice_paid(
    ctx: &Ctx,
    invoice: &Value,
    intent: &Value,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    let Some(id) = invoice["parent"]["subscription_details"]["subscription"].as_str() else {
        return Ok(());
    };
    let Some(record) = ctx.get(id).await? else {
        return Ok(());
    };
    let mut doc = record.data.clone();
    let trialing = doc["trial_end"].as_i64().is_some_and(|end| end > ctx.now());
    let paid = if trialing {
        Action::PayInTrial
    } else {
        Action::Pay
    };
    // An incomplete or overdue subscription starts (again); others stay as they are.
    let started = record.data["status"] == "incomplete";
    let _ = status::Machine::apply(&mut doc, paid);
    if doc["payment_settings"]["save_default_payment_method"] == "on_subscription"
        && let Some(pm) = intent["payment_method"].as_str()
    {
        doc["default_payment_method"] = json!(pm);
    }
    if started && doc["status"] != "incomplete" {
        writes.extend(super::renewal::schedule(ctx, &doc).await?);
    }
    writes.extend(ctx.update_with_event(&record, doc, "customer.subscription.updated"));
    Ok(())
}

/// Invoices `lines` now and tries to collect it: the subscription update's
/// or cancellation's invoice. Returns the writes, the invoice's id and the
/// error when a charge failed.
pub(super) async fn invoice_now(
    ctx: &Ctx,
    sub: &mut Value,
    lines: Vec<Line>,
    reason: &str,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<ApiError>> {
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    let customer_record = ctx.load("customer", &customer_id, "customer").await?;
    let mut customer = customer_record.data.clone();
    let now = ctx.now();
    let currency = sub["currency"].as_str().unwrap_or("usd").to_owned();
    let total = crate::core::money::sum(lines.iter().map(|l| l.amount), "items", &currency)?;
    let mut invoice = invoices::draft(&customer, sub, &lines, reason, (now, now), now);
    if total < 0 {
        // A net credit goes to the customer's balance, as Stripe does.
        invoice["amount_due"] = json!(0);
        invoice["amount_remaining"] = json!(0);
        invoice["ending_balance"] = json!(total);
        let balance = customer["balance"].as_i64().unwrap_or(0).checked_add(total);
        customer["balance"] = json!(crate::core::money::bounded(balance, "items", &currency)?);
    }
    let mut events = vec![ctx.event("invoice.created", &invoice, None)];
    let payment = invoices::finalize(ctx, &mut invoice, &mut customer, &mut events)?;
    sub["latest_invoice"] = invoice["id"].clone();
    let mut failure = None;
    let mut tail = Vec::new();
    match payment {
        None => invoices::mark_paid(ctx, &mut invoice, None, &mut events)?,
        Some((intent, mut invoice_payment)) => {
            events.push(ctx.event("payment_intent.created", &intent, None));
            let pm_id = invoices::charged_method(Some(sub), &customer);
            let mut intent = intent;
            if let (Some(pm), "charge_automatically") =
                (pm_id, sub["collection_method"].as_str().unwrap_or_default())
            {
                let pm =
                    payment_methods::resolve(ctx, &pm, Named::InParam("default_payment_method"))
                        .await?;
                let attempted =
                    payment_intents::attempt(ctx, intent.clone(), &pm, true, &mut events).await?;
                match attempted {
                    Attempted::Succeeded(done) => {
                        invoices::mark_paid(
                            ctx,
                            &mut invoice,
                            Some(&mut invoice_payment),
                            &mut events,
                        )?;
                        intent = done;
                    }
                    Attempted::Failed(failed, error) => {
                        invoices::mark_failed(ctx, &mut invoice, None, &mut events);
                        failure = Some(error);
                        intent = failed;
                    }
                    Attempted::RequiresAction(waiting) => intent = waiting,
                }
            }
            tail.push(Write::Insert(Record::new("payment_intent", intent)));
            tail.push(Write::Insert(invoices::payment_record(
                &invoice,
                invoice_payment,
            )));
        }
    }
    writes.push(Write::Update(customer_record.with_data(customer)));
    writes.extend(events);
    writes.push(Write::Insert(Record::new("invoice", invoice)));
    writes.extend(tail);
    Ok(failure)
}

/// Invoices an update's `lines` now. Under error_if_incomplete and
/// pending_if_incomplete a failed charge refuses the whole update, so the
/// charge is tried on a copy before anything is kept.
pub(super) async fn bill_update(
    ctx: &Ctx,
    doc: &mut Value,
    lines: Vec<Line>,
    behavior: &str,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<ApiError>> {
    if behavior == "error_if_incomplete" || behavior == "pending_if_incomplete" {
        let mut probe = Vec::new();
        let mut copy = doc.clone();
        if let Some(error) = invoice_now(
            ctx,
            &mut copy,
            lines.clone(),
            "subscription_update",
            &mut probe,
        )
        .await?
        {
            return Err(error);
        }
    }
    invoice_now(ctx, doc, lines, "subscription_update", writes).await
}
