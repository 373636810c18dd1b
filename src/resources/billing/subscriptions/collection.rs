//! Collecting a subscription's renewal invoices, as due items: the draft
//! is finalized an hour after it was created and charged off-session to the
//! default payment method; a failed charge is retried on the account's
//! schedule (Smart Retries by default), except for payment methods and
//! declines Stripe does not retry; when the retries run out the
//! subscription is canceled, marked unpaid or left past due, as the
//! account's settings say. A `send_invoice` invoice waits for its
//! customer until its due date, then its subscription is past due.

use serde_json::{Value, json};

use super::cancel::{Cancel, cancel_now};
use super::status::{self, Action};
use crate::core::billing_settings::AfterRetries;
use crate::core::bookkeeping::Bookkeeping;
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::Ctx;
use crate::http::ctx::Settlement;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::resources::billing::invoices::{self, status as invoice_status};
use crate::resources::billing::settings;
use crate::resources::payments::payment_intents::{self, Attempted, Presence};
use crate::resources::payments::payment_methods;
use crate::store::{DueItem, Record, Write};

pub const FINALIZATION_KIND: &str = "invoice_finalization";
pub const RETRY_KIND: &str = "invoice_payment_retry";
pub const OVERDUE_KIND: &str = "invoice_overdue";

/// Declines Stripe never retries: the card cannot be charged again.
const HARD_DECLINES: &[&str] = &[
    "incorrect_number",
    "lost_card",
    "pickup_card",
    "stolen_card",
    "revocation_of_authorization",
    "revocation_of_all_authorizations",
    "authentication_required",
    "highest_risk_level",
];

/// The item that finalizes a renewal's draft at its `automatically_finalizes_at`.
pub fn finalization_item(ctx: &Ctx, invoice: &Value) -> DueItem {
    let id = invoice["id"].as_str().unwrap_or_default();
    let at = invoice["automatically_finalizes_at"]
        .as_i64()
        .unwrap_or_default();
    ctx.due_item(
        format!("due_{FINALIZATION_KIND}_{id}"),
        FINALIZATION_KIND,
        id,
        at,
        json!({}),
    )
}

/// What a subscription's invoices are charged to (see
/// [`invoices::charged_method`]).
pub async fn payment_method_for(ctx: &Ctx, sub: &Value) -> ApiResult<Option<String>> {
    let customer = sub["customer"].as_str().unwrap_or_default();
    let customer = ctx.get(customer).await?.map(|c| c.data).unwrap_or_default();
    Ok(invoices::charged_method(Some(sub), &customer))
}

/// The invoice `item` acts on, if it still has `status` (paid by its
/// customer, voided or gone meanwhile: nothing to do).
async fn invoice_in(
    ctx: &Ctx,
    item: &DueItem,
    status: invoice_status::Status,
) -> ApiResult<Option<Record>> {
    Ok(ctx
        .get(&item.target)
        .await?
        .filter(|r| r.object == "invoice" && invoice_status::Status::of(&r.data) == Some(status)))
}

/// How one collection attempt ended.
enum Collected {
    Paid,
    /// Waiting for the customer to authenticate.
    NeedsAction,
    /// Failed; `exhausted` when it was the schedule's last retry.
    Failed {
        exhausted: bool,
    },
}

/// The invoice, its subscription, PaymentIntent and invoice payment as
/// one collection attempt changes them (records None: new, inserted).
struct Collection {
    invoice: (Record, Value),
    sub: (Record, Value),
    intent: (Option<Record>, Value),
    payment: (Option<Record>, Value),
    events: Vec<Write>,
}

/// Runs an hour after a renewal's invoice was created: finalized, then
/// charged (or, for `send_invoice`, left to its customer until its due date).
pub async fn finalize_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(invoice) = invoice_in(&ctx, &item, invoice_status::Status::Draft).await? else {
        return Ok(Vec::new());
    };
    let sub_id = invoice.data["parent"]["subscription_details"]["subscription"]
        .as_str()
        .unwrap_or_default();
    let sub = ctx.load("subscription", sub_id, "subscription").await?;
    let customer = ctx
        .load(
            "customer",
            invoice.data["customer"].as_str().unwrap_or_default(),
            "customer",
        )
        .await?;
    let (mut doc, mut customer_doc) = (invoice.data.clone(), customer.data.clone());
    doc["automatically_finalizes_at"] = Value::Null;
    let now = ctx.now();
    if doc["collection_method"] == "send_invoice" {
        let days = sub.data["days_until_due"].as_i64().unwrap_or(30);
        doc["due_date"] = json!(now + days * 86_400);
    }
    let mut events = Vec::new();
    let payment = invoices::finalize(&ctx, &mut doc, &mut customer_doc, &mut events)?;
    let mut writes = vec![Write::Update(customer.with_data(customer_doc))];
    let Some((intent, invoice_payment)) = payment else {
        invoices::mark_paid(&ctx, &mut doc, None, &mut events)?;
        writes.extend(events);
        writes.push(Write::Update(invoice.with_data(doc.clone())));
        ctx.invoice_paid(&doc, &Value::Null, &mut writes).await?;
        return Ok(writes);
    };
    events.push(ctx.event("payment_intent.created", &intent, None));
    if doc["collection_method"] == "send_invoice" {
        let due = doc["due_date"].as_i64().unwrap_or(now);
        let id = invoice.id.clone();
        writes.extend(events);
        writes.push(Write::Schedule(ctx.due_item(
            format!("due_{OVERDUE_KIND}_{id}"),
            OVERDUE_KIND,
            &id,
            due,
            json!({}),
        )));
        writes.push(Write::Update(invoice.with_data(doc.clone())));
        writes.push(Write::Insert(Record::new("payment_intent", intent)));
        writes.push(Write::Insert(invoices::payment_record(
            &doc,
            invoice_payment,
        )));
        return Ok(writes);
    }
    let collection = Collection {
        sub: (sub.clone(), sub.data.clone()),
        invoice: (invoice, doc),
        intent: (None, intent),
        payment: (None, invoice_payment),
        events,
    };
    writes.extend(collect(&ctx, collection).await?);
    Ok(writes)
}

/// Runs at an invoice's `next_payment_attempt`: charges it again, to the
/// default payment method as it is now.
pub async fn retry_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(invoice) = invoice_in(&ctx, &item, invoice_status::Status::Open).await? else {
        return Ok(Vec::new());
    };
    let kept = Bookkeeping::of(&invoice.data);
    let intent = ctx
        .load(
            "payment_intent",
            kept.payment_intent.as_deref().unwrap_or_default(),
            "invoice",
        )
        .await?;
    if intent.data["status"] != "requires_payment_method" {
        return Ok(Vec::new());
    }
    let payment = ctx
        .load(
            "invoice_payment",
            kept.invoice_payment.as_deref().unwrap_or_default(),
            "invoice",
        )
        .await?;
    let sub_id = invoice.data["parent"]["subscription_details"]["subscription"]
        .as_str()
        .unwrap_or_default();
    let sub = ctx.load("subscription", sub_id, "subscription").await?;
    let collection = Collection {
        sub: (sub.clone(), sub.data.clone()),
        invoice: (invoice.clone(), invoice.data.clone()),
        intent: (Some(intent.clone()), intent.data.clone()),
        payment: (Some(payment.clone()), payment.data.clone()),
        events: Vec::new(),
    };
    collect(&ctx, collection).await
}

/// Runs at a `send_invoice` invoice's due date: unpaid, its subscription
/// is past due.
pub async fn overdue_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(invoice) = invoice_in(&ctx, &item, invoice_status::Status::Open).await? else {
        return Ok(Vec::new());
    };
    let mut writes = vec![ctx.event("invoice.overdue", &invoice.data, None)];
    let sub_id = invoice.data["parent"]["subscription_details"]["subscription"]
        .as_str()
        .unwrap_or_default();
    if let Some(sub) = ctx.get(sub_id).await? {
        let mut doc = sub.data.clone();
        if status::Machine::apply(&mut doc, Action::FailPayment).is_ok() {
            writes.extend(ctx.update_with_event(&sub, doc, "customer.subscription.updated"));
        }
    }
    Ok(writes)
}

/// One attempt to collect the invoice, and what it makes of the
/// subscription.
async fn collect(ctx: &Ctx, mut c: Collection) -> ApiResult<Vec<Write>> {
    let outcome = attempt(ctx, &mut c).await?;
    let Collection {
        invoice,
        sub,
        intent,
        payment,
        mut events,
    } = c;
    let mut writes = vec![Write::Update(invoice.0.with_data(invoice.1.clone()))];
    writes.push(match intent.0 {
        Some(record) => Write::Update(record.with_data(intent.1.clone())),
        None => Write::Insert(Record::new("payment_intent", intent.1.clone())),
    });
    writes.push(match payment.0 {
        Some(record) => Write::Update(record.with_data(payment.1)),
        None => Write::Insert(invoices::payment_record(&invoice.1, payment.1)),
    });
    if let Some(at) = invoice.1["next_payment_attempt"].as_i64() {
        let id = invoice.0.id.clone();
        writes.push(Write::Schedule(ctx.due_item(
            format!("due_{RETRY_KIND}_{id}_{at}"),
            RETRY_KIND,
            &id,
            at,
            json!({}),
        )));
    }
    let (sub_record, mut sub_doc) = sub;
    match outcome {
        Collected::Paid => {
            writes.append(&mut events);
            ctx.invoice_paid(&invoice.1, &intent.1, &mut writes).await?;
            return Ok(writes);
        }
        Collected::Failed { exhausted: true } => {
            let after = settings::for_account(ctx).await?.after_retries;
            writes.append(&mut events);
            match after {
                AfterRetries::Cancel => {
                    let options = Cancel {
                        reason: "payment_failed",
                        ..Cancel::requested()
                    };
                    writes.extend(cancel_now(ctx, &sub_record, &options).await?.0);
                    return Ok(writes);
                }
                AfterRetries::Unpaid => {
                    let _ = status::Machine::apply(&mut sub_doc, Action::FailPayment);
                    let _ = status::Machine::apply(&mut sub_doc, Action::GiveUp);
                }
                AfterRetries::PastDue => {
                    let _ = status::Machine::apply(&mut sub_doc, Action::FailPayment);
                }
            }
        }
        Collected::Failed { exhausted: false } | Collected::NeedsAction => {
            writes.append(&mut events);
            // An active subscription falls past due; others stay as they are.
            let _ = status::Machine::apply(&mut sub_doc, Action::FailPayment);
        }
    }
    writes.extend(ctx.update_with_event(&sub_record, sub_doc, "customer.subscription.updated"));
    Ok(writes)
}

/// Charges the invoice's PaymentIntent off-session to the subscription's
/// payment method, and records the outcome on the invoice.
async fn attempt(ctx: &Ctx, c: &mut Collection) -> ApiResult<Collected> {
    let Some(pm_id) = payment_method_for(ctx, &c.sub.1).await? else {
        // Nothing to charge: not retried until there is (Stripe's rule).
        invoices::mark_failed(ctx, &mut c.invoice.1, None, &mut c.events);
        return Ok(Collected::Failed { exhausted: false });
    };
    let pm =
        payment_methods::resolve(ctx, &pm_id, Named::InParam("default_payment_method")).await?;
    let attempted = payment_intents::attempt(
        ctx,
        c.intent.1.clone(),
        &pm,
        Presence::Renewal,
        &mut c.events,
    )
    .await?;
    match attempted {
        Attempted::Succeeded(done) => {
            c.intent.1 = done;
            invoices::mark_paid(ctx, &mut c.invoice.1, Some(&mut c.payment.1), &mut c.events)?;
            Ok(Collected::Paid)
        }
        Attempted::RequiresAction(waiting) => {
            c.intent.1 = waiting;
            invoices::count_attempt(&mut c.invoice.1, None);
            c.events
                .push(ctx.event("invoice.payment_action_required", &c.invoice.1, None));
            Ok(Collected::NeedsAction)
        }
        Attempted::Failed(failed, error) => {
            c.intent.1 = failed;
            let retried = retried(&pm.data()["type"], &error);
            let settings = settings::for_account(ctx).await?;
            let attempts = c.invoice.1["attempt_count"].as_i64().unwrap_or(0) + 1;
            let now = ctx.now();
            let first = c.invoice.1["status_transitions"]["finalized_at"]
                .as_i64()
                .unwrap_or(now);
            let next = retried
                .then(|| settings.retries.next_after(attempts, first, now))
                .flatten();
            invoices::mark_failed(ctx, &mut c.invoice.1, next, &mut c.events);
            Ok(Collected::Failed {
                exhausted: retried && next.is_none(),
            })
        }
    }
}

/// Whether Stripe retries a payment that failed so: not Amazon Pay (its
/// failed renewal waits for the customer), not a hard decline.
fn retried(pm_type: &Value, error: &ApiError) -> bool {
    let body = error.body();
    let code = body["error"]["decline_code"]
        .as_str()
        .or_else(|| body["error"]["code"].as_str())
        .unwrap_or_default();
    pm_type != "amazon_pay" && !HARD_DECLINES.contains(&code)
}
