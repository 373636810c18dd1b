//! Creating a subscription: its document, its items and its first
//! invoice, paid at once (or left incomplete, per `payment_behavior`), for
//! the API and for Checkout Sessions in subscription mode.

use serde_json::{Value, json};

use super::TRIAL_WARNING;
use super::calendar::add_interval;
use super::items::{ItemSpec, agreement_amount, check_items_agree, index, item_pointer, new_item};
use super::lines::period_line;
use super::params::{CreateRequest, default_billing_mode, parse_create_options};
use super::renewal;
use super::status::{self, Action, Status};
use crate::core::bookkeeping::{self, Agreement};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::Ctx;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::form::Node;
use crate::http::params::Params;
use crate::resources::billing::invoices::{self, Line};
use crate::resources::payments::payment_intents::status as intent_status;
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::{payment_methods, setup_intents};
use crate::store::{Record, Write};

fn subscription_document(customer: &str, currency: &str, now: i64) -> Value {
    let id = super::SPEC.new_id();
    json!({
        "id": id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": now,
        "billing_cycle_anchor_config": null,
        "billing_mode": default_billing_mode(),
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": {"comment": null, "feedback": null, "feedback_option": null, "reason": null},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "customer": customer,
        "customer_account": null,
        "days_until_due": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "ended_at": null,
        "invoice_settings": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [], "has_more": false, "url": format!("/v1/subscription_items?subscription={id}")},
        "latest_invoice": null,
        "livemode": false,
        "managed_payments": null,
        "metadata": {},
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": now,
        "status": Status::Incomplete.as_str(),
        "status_details": null,
        "test_clock": null,
        "transfer_data": null,
        "trial_end": null,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": null,
    })
}

fn no_payment_method() -> ApiError {
    ApiError::invalid(
        "This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority.",
    )
    .with_code("resource_missing")
}

fn requires_action_error() -> ApiError {
    ApiError::invalid(
        "Payment for this subscription requires additional user action before it can be completed successfully. Use payment_behavior=default_incomplete or allow_incomplete to let the customer complete the payment.",
    )
    .with_status(axum::http::StatusCode::PAYMENT_REQUIRED)
    .with_type(crate::http::error::ErrorType::Card)
    .with_code("subscription_payment_intent_requires_action")
}

/// The subscription a Checkout Session in subscription mode creates when
/// the buyer first submits its page: `default_incomplete`, so it waits for
/// its first invoice's PaymentIntent (or, in a trial, its pending
/// SetupIntent) to be confirmed with what the buyer entered. `items` are the
/// session's prices (inline ones included) and quantities; `options` holds
/// the session's `subscription_data` as subscription create parameters.
pub async fn create_for_checkout(
    ctx: &Ctx,
    customer: &Record,
    items: &[(Value, i64)],
    mut options: std::collections::BTreeMap<String, Node>,
) -> ApiResult<(Vec<Write>, Value)> {
    let now = ctx.now();
    options.insert(
        "payment_behavior".into(),
        Node::Str("default_incomplete".into()),
    );
    let specs = items
        .iter()
        .map(|(price, quantity)| ItemSpec {
            id: None,
            price: Some(price.clone()),
            quantity: Some(*quantity),
            metadata: None,
            deleted: false,
            writes: Vec::new(),
        })
        .collect();
    let mut params = Params::new(options);
    let request = parse_create_options(&mut params, now, customer.id.clone(), specs)?;
    params.finish()?;
    let (currency, (interval, count)) =
        check_items_agree(&request.items, None, &request.billing_mode)?;
    create_writes(ctx, &request, customer, &currency, (&interval, count), now).await
}

pub(super) async fn create_writes(
    ctx: &Ctx,
    request: &CreateRequest,
    customer_record: &Record,
    currency: &str,
    (interval, count): (&str, i64),
    now: i64,
) -> ApiResult<(Vec<Write>, Value)> {
    let mut customer = customer_record.data.clone();
    claim_currency(&mut customer, currency)?;
    let (mut sub, period_end) = new_subscription(request, currency, (interval, count), now)?;
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
    sub["test_clock"] = customer["test_clock"].clone();
    let trial = request.trial_end;
    let mut writes_prices = Vec::new();
    let mut items = Vec::new();
    for spec in &request.items {
        writes_prices.extend(spec.writes.iter().cloned());
        items.push(new_item(spec, &sub_id, (now, period_end), now)?);
    }
    sub["items"]["data"] = json!(items);
    if request.cancel_at_period_end {
        sub["cancel_at_period_end"] = json!(true);
        sub["cancel_at"] = json!(period_end);
    } else if let Some(at) = request.cancel_at {
        sub["cancel_at"] = json!(at);
    }
    // The first invoice.
    let lines = first_lines(ctx, request, &items, (interval, count), period_end, now).await?;
    crate::core::money::sum(lines.iter().map(|l| l.amount), "items", currency)?;
    let mut invoice = invoices::draft(
        &customer,
        &sub,
        &lines,
        "subscription_create",
        (now, now),
        now,
    );
    sub["latest_invoice"] = invoice["id"].clone();
    let invoice_created = ctx.event("invoice.created", &invoice, None);
    let mut events = vec![invoice_created];
    let payment = invoices::finalize(ctx, &mut invoice, &mut customer, &mut events)?;
    let pm_id = invoices::charged_method(Some(&sub), &customer);
    let (tail, pending_setup_intent, started) = match payment {
        None => {
            // Nothing due (a trial, a free price): paid on the spot.
            invoices::mark_paid(ctx, &mut invoice, None, &mut events)?;
            if trial.is_some() && pm_id.is_none() && request.behavior == "default_incomplete" {
                let intent =
                    trial_setup_intent(request, &sub, &items, currency, (interval, count), now)?;
                sub["pending_setup_intent"] = intent["id"].clone();
                let created = ctx.event("setup_intent.created", &intent, None);
                (vec![created], Some(intent), true)
            } else {
                (Vec::new(), None, true)
            }
        }
        Some(payment) => {
            let pm_id = pm_id.as_deref();
            let (invoice, events) = (&mut invoice, &mut events);
            let (tail, started) =
                collect_first(ctx, request, pm_id, invoice, events, payment).await?;
            (tail, None, started)
        }
    };
    // Until its first invoice is paid (or sent), a subscription is incomplete.
    if started {
        let start = if trial.is_some() {
            Action::StartTrial
        } else {
            Action::Start
        };
        status::Machine::apply(&mut sub, start)?;
    }
    finish_create(
        ctx,
        sub,
        invoice,
        customer_record,
        customer,
        writes_prices,
        events,
        tail,
        pending_setup_intent,
    )
    .await
}

/// A customer bills in one currency: the first subscription or payment sets it.
fn claim_currency(customer: &mut Value, currency: &str) -> ApiResult<()> {
    match customer["currency"].as_str() {
        Some(existing) if existing != currency => {
            return Err(ApiError::invalid_param(
                "currency",
                format!(
                    "You cannot combine currencies on a single customer. This customer has had a subscription or payment in {existing}, but you are trying to pay in {currency}."
                ),
            ));
        }
        _ => customer["currency"] = json!(currency),
    }
    Ok(())
}

/// The new subscription's document from the request, without its items,
/// and where its first period ends.
fn new_subscription(
    request: &CreateRequest,
    currency: &str,
    (interval, count): (&str, i64),
    now: i64,
) -> ApiResult<(Value, i64)> {
    let mut sub = subscription_document(&request.customer, currency, now);
    request.patch.apply(&mut sub)?;
    sub["collection_method"] = json!(request.collection_method);
    sub["days_until_due"] = json!(request.days_until_due);
    sub["default_payment_method"] = json!(request.default_payment_method);
    sub["billing_mode"] = request.billing_mode.clone();
    if let Value::Object(settings) = &request.settings {
        for (key, value) in settings {
            sub["payment_settings"][key] = value.clone();
        }
    }
    // The first period: a trial, up to a later billing anchor, or a whole interval.
    let trial = request.trial_end;
    let period_end = match (trial, request.billing_cycle_anchor) {
        (Some(end), _) => end,
        (None, Some(anchor)) => anchor,
        (None, None) => add_interval(now, interval, count),
    };
    if let Some(anchor) = request.billing_cycle_anchor
        && trial.is_none()
        && anchor > add_interval(now, interval, count)
    {
        return Err(ApiError::invalid_param(
            "billing_cycle_anchor",
            "billing_cycle_anchor cannot be later than next natural billing date for the plan.",
        ));
    }
    sub["billing_cycle_anchor"] = json!(trial.or(request.billing_cycle_anchor).unwrap_or(now));
    if let Some(end) = trial {
        sub["trial_start"] = json!(now);
        sub["trial_end"] = json!(end);
    }
    Ok((sub, period_end))
}

/// The first invoice's lines: each item's first period (free in a trial,
/// prorated up to a billing anchor earlier than a whole interval).
async fn first_lines(
    ctx: &Ctx,
    request: &CreateRequest,
    items: &[Value],
    (interval, count): (&str, i64),
    period_end: i64,
    now: i64,
) -> ApiResult<Vec<Line>> {
    let trial = request.trial_end;
    let mut lines = Vec::new();
    for item in items {
        let mut line = period_line(ctx, item, trial.is_some()).await?;
        if trial.is_none() && request.billing_cycle_anchor.is_some() {
            // Up to the anchor only: the full amount prorated by time.
            let full = add_interval(now, interval, count) - now;
            let part = period_end - now;
            line.amount = crate::core::money::prorate(line.amount, part, full);
            line.proration = true;
            line.description = format!("Remaining time on {}", line.description);
        }
        lines.push(line);
    }
    Ok(lines)
}

/// The SetupIntent a trial without a payment method waits on under
/// default_incomplete, carrying the agreement an Amazon Pay mandate needs.
fn trial_setup_intent(
    request: &CreateRequest,
    sub: &Value,
    items: &[Value],
    currency: &str,
    (interval, count): (&str, i64),
    now: i64,
) -> ApiResult<Value> {
    let mut intent = setup_intents::new_document(now);
    intent["customer"] = json!(request.customer);
    intent["usage"] = json!("off_session");
    let types = sub["payment_settings"]["payment_method_types"].clone();
    let types = if types.is_array() {
        types
    } else {
        json!(payment_methods::SUPPORTED_TYPES)
    };
    intent["payment_method_types"] = types.clone();
    intent["allowed_payment_method_types"] = types;
    intent["automatic_payment_methods"] = Value::Null;
    let agreement = Agreement {
        amount: agreement_amount(items, currency)?,
        currency: currency.to_owned(),
        interval: interval.to_owned(),
        interval_count: count,
    };
    bookkeeping::update(&mut intent, |b| b.agreement = Some(agreement));
    Ok(intent)
}

/// Collects the first invoice's `payment` (its PaymentIntent and invoice
/// payment) as `payment_behavior` says: charged now, left for the client to
/// confirm, or refused. Returns the writes that follow the invoice, and
/// whether the subscription starts (else it stays incomplete).
async fn collect_first(
    ctx: &Ctx,
    request: &CreateRequest,
    pm_id: Option<&str>,
    invoice: &mut Value,
    events: &mut Vec<Write>,
    mut payment: (Value, Value),
) -> ApiResult<(Vec<Write>, bool)> {
    let charge_now = request.collection_method == "charge_automatically";
    if !charge_now {
        // send_invoice: the customer pays later; the subscription is active meanwhile.
    } else if request.behavior == "default_incomplete" {
        if let Some(pm) = pm_id {
            payment.0["payment_method"] = json!(pm);
            intent_status::Machine::apply(
                &mut payment.0,
                intent_status::Action::AttachPaymentMethod,
            )?;
        }
    } else if let Some(pm) = pm_id {
        let started = charge_first(ctx, request, pm, invoice, events, &mut payment).await?;
        return Ok((payment_writes(invoice, payment), started));
    } else if request.behavior == "error_if_incomplete" {
        return Err(no_payment_method());
    }
    events.push(ctx.event("payment_intent.created", &payment.0, None));
    Ok((payment_writes(invoice, payment), !charge_now))
}

/// Charges the first invoice off the default payment method `pm_id`
/// (returns whether it was paid); error_if_incomplete refuses the creation
/// when that does not succeed.
async fn charge_first(
    ctx: &Ctx,
    request: &CreateRequest,
    pm_id: &str,
    invoice: &mut Value,
    events: &mut Vec<Write>,
    (intent, invoice_payment): &mut (Value, Value),
) -> ApiResult<bool> {
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("default_payment_method")).await?;
    let created_event = ctx.event("payment_intent.created", intent, None);
    let mut moves = Vec::new();
    // Without off_session=true the customer is present and can
    // authenticate; amazon_pay always charges through its mandate.
    let off_session = request.off_session || pm.data()["type"] == "amazon_pay";
    let attempted =
        payment_intents::attempt(ctx, intent.clone(), &pm, off_session, &mut moves).await?;
    events.push(created_event);
    match attempted {
        Attempted::Succeeded(done) => {
            events.extend(moves);
            invoices::mark_paid(ctx, invoice, Some(invoice_payment), events)?;
            *intent = done;
            return Ok(true);
        }
        Attempted::Failed(failed, error) => {
            if request.behavior == "error_if_incomplete" {
                return Err(error);
            }
            events.extend(moves);
            invoices::mark_failed(ctx, invoice, None, events);
            *intent = failed;
        }
        Attempted::RequiresAction(waiting) => {
            if request.behavior == "error_if_incomplete" {
                return Err(requires_action_error());
            }
            events.extend(moves);
            *intent = waiting;
        }
    }
    Ok(false)
}

/// The first payment's PaymentIntent and invoice payment, written after the invoice.
fn payment_writes(invoice: &Value, (intent, invoice_payment): (Value, Value)) -> Vec<Write> {
    vec![
        Write::Insert(Record::new("payment_intent", intent)),
        Write::Insert(invoices::payment_record(invoice, invoice_payment)),
    ]
}

/// Orders the creation's writes as Stripe orders its events: the
/// subscription first, then its invoice's life, then the payment.
#[allow(clippy::too_many_arguments)]
async fn finish_create(
    ctx: &Ctx,
    mut sub: Value,
    invoice: Value,
    customer_record: &Record,
    customer: Value,
    price_writes: Vec<Write>,
    events: Vec<Write>,
    tail: Vec<Write>,
    pending_setup_intent: Option<Value>,
) -> ApiResult<(Vec<Write>, Value)> {
    index(&mut sub);
    let customer_id = customer["id"].as_str().unwrap_or_default().to_owned();
    let mut writes = price_writes;
    writes.push(Write::Insert(Record::new("subscription", sub.clone())));
    for item in sub["items"]["data"].as_array().into_iter().flatten() {
        writes.push(Write::Insert(item_pointer(item, &customer_id)));
    }
    writes.push(Write::Update(customer_record.with_data(customer)));
    writes.push(ctx.event("customer.subscription.created", &sub, None));
    // Stripe warns three days before a trial ends, at once for shorter trials.
    if sub["status"] == "trialing"
        && sub["trial_end"]
            .as_i64()
            .is_some_and(|end| end - ctx.now() <= TRIAL_WARNING)
    {
        writes.push(ctx.event("customer.subscription.trial_will_end", &sub, None));
    }
    writes.extend(events);
    writes.push(Write::Insert(Record::new("invoice", invoice)));
    if let Some(intent) = pending_setup_intent {
        writes.push(Write::Insert(Record::new("setup_intent", intent)));
    }
    writes.extend(tail);
    // What time will do to it: renewals, or the end of waiting to start.
    if sub["status"] == "incomplete" {
        writes.push(renewal::schedule_expiry(ctx, &sub).await?);
    } else {
        writes.extend(renewal::schedule(ctx, &sub).await?);
    }
    Ok((writes, sub))
}
