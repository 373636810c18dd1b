//! `/v1/invoices` (retrieve, list, pay, lines) and `/v1/invoice_payments`.
//!
//! Invoices come from subscriptions. In the current API an invoice is paid
//! through invoice payments, each pointing at a PaymentIntent: the invoice
//! holds no `payment_intent` of its own, `payments` lists its attempts and
//! `confirmation_secret` hands the PaymentIntent's client secret to a
//! browser.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::registry::{Expansion, ObjectSpec, to};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::{AppState, Call, Ctx, ListParams};
use crate::http::ctx::Settlement;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::search::{self, FieldKind};
use crate::resources::payments::payment_intents::status as intent_status;
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::payment_methods;
use crate::store::{Filter, ListQuery, Record, Write};

pub const SPEC: ObjectSpec = ObjectSpec::new("invoice", "in")
    .list_url("/v1/invoices")
    .fields(&[
        ("customer", to("customer")),
        ("default_payment_method", to("payment_method")),
        ("default_source", to("payment_source")),
        ("subscription", to("subscription")),
        ("test_clock", to("test_helpers.test_clock")),
        ("on_behalf_of", to("account")),
        (
            "parent.subscription_details.subscription",
            to("subscription"),
        ),
        ("lines", Expansion::Embedded { of: "line_item" }),
        ("confirmation_secret", Expansion::Hidden),
        (
            "payments",
            Expansion::Children {
                object: "invoice_payment",
                field: "invoice",
                url: "/v1/invoice_payments?invoice={id}",
            },
        ),
    ]);

/// An invoice's line.
pub const LINE_SPEC: ObjectSpec = ObjectSpec::new("line_item", "il").fields(&[
    ("subscription", to("subscription")),
    (
        "parent.subscription_item_details.subscription",
        to("subscription"),
    ),
]);

/// One payment (attempt) towards an invoice.
pub const PAYMENT_SPEC: ObjectSpec = ObjectSpec::new("invoice_payment", "inpay")
    .list_url("/v1/invoice_payments")
    .fields(&[
        ("invoice", to("invoice")),
        ("payment.payment_intent", to("payment_intent")),
        ("payment.charge", to("charge")),
    ]);
pub mod status;

use status::{Action, Status};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/invoices", get(list_invoices))
        .route("/v1/invoices/search", get(search_invoices))
        .route("/v1/invoices/{invoice}", get(retrieve_invoice))
        .route("/v1/invoices/{invoice}/pay", post(pay_invoice))
        .route("/v1/invoices/{invoice}/lines", get(list_invoice_lines))
        .route("/v1/invoice_payments", get(list_invoice_payments))
        .route(
            "/v1/invoice_payments/{invoice_payment}",
            get(retrieve_invoice_payment),
        )
}

/// Stripe's search fields for invoices; `subscription` and the
/// finalization error are nested in the 2026 documents.
const SEARCH: search::Spec = search::Spec {
    object: "invoice",
    resource: "invoices",
    url: "/v1/invoices/search",
    fields: &[
        ("created", FieldKind::Number),
        ("currency", FieldKind::Text),
        ("customer", FieldKind::Text),
        ("last_finalization_error_code", FieldKind::Text),
        ("last_finalization_error_type", FieldKind::Text),
        ("number", FieldKind::Text),
        ("receipt_number", FieldKind::Text),
        ("status", FieldKind::Text),
        ("subscription", FieldKind::Text),
        ("total", FieldKind::Number),
    ],
    paths: &[
        ("subscription", "parent.subscription_details.subscription"),
        (
            "last_finalization_error_code",
            "last_finalization_error.code",
        ),
        (
            "last_finalization_error_type",
            "last_finalization_error.type",
        ),
    ],
};

/// One line of a new invoice.
#[derive(Clone)]
pub struct Line {
    pub amount: i64,
    pub description: String,
    pub price: Value,
    pub quantity: i64,
    pub period: (i64, i64),
    pub subscription_item: Option<String>,
    pub proration: bool,
}

/// A draft invoice for `customer`, billing `lines` of `subscription`.
pub fn draft(
    customer: &Value,
    subscription: &Value,
    lines: &[Line],
    billing_reason: &str,
    period: (i64, i64),
    now: i64,
) -> Value {
    let id = SPEC.new_id();
    let currency = subscription["currency"].clone();
    // Callers keep totals within Stripe's bound (crate::core::money).
    let total = lines.iter().fold(0i64, |t, l| t.saturating_add(l.amount));
    let line_docs: Vec<Value> = lines
        .iter()
        .map(|line| line_document(line, &id, &currency, subscription))
        .collect();
    let send_invoice = subscription["collection_method"] == "send_invoice";
    let mut invoice = json!({
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "stripe-twin",
        "account_tax_ids": null,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null,
        "billing_reason": billing_reason,
        "collection_method": subscription["collection_method"],
        "confirmation_secret": null,
        "created": now,
        "currency": currency,
        "custom_fields": null,
        "customer": customer["id"],
        "customer_account": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": subscription["description"],
        "discounts": [],
        "due_date": if send_invoice {
            json!(now + subscription["days_until_due"].as_i64().unwrap_or(30) * 86_400)
        } else {
            Value::Null
        },
        "effective_at": null,
        "footer": null,
        "from_invoice": null,
        "hosted_invoice_url": null,
        "invoice_pdf": null,
        "issuer": {"type": "self"},
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": {
            "object": "list",
            "data": line_docs,
            "has_more": false,
            "url": format!("/v1/invoices/{id}/lines"),
        },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "on_behalf_of": null,
        "parent": {
            "quote_details": null,
            "subscription_details": {"metadata": subscription["metadata"], "subscription": subscription["id"]},
            "type": "subscription_details",
        },
        "payment_settings": {
            "default_mandate": null,
            "payment_method_options": null,
            "payment_method_types": subscription["payment_settings"]["payment_method_types"],
        },
        "period_end": period.1,
        "period_start": period.0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "statement_descriptor": null,
        "status": Status::Draft.as_str(),
        "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "test_clock": subscription["test_clock"],
        "webhooks_delivered_at": null,
    });
    for part in [customer_snapshot(customer), amounts(total)] {
        if let (Value::Object(fields), Value::Object(more)) = (&mut invoice, part) {
            fields.extend(more);
        }
    }
    invoice
}

/// The customer as it was when invoiced: Stripe copies these onto the invoice.
fn customer_snapshot(customer: &Value) -> Value {
    json!({
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
    })
}

/// A new invoice's money fields: all start from the lines' `total`, nothing
/// paid, credited or discounted yet.
fn amounts(total: i64) -> Value {
    json!({
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "ending_balance": null,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
    })
}

/// One line of a draft invoice `invoice`, billing part of `subscription`.
fn line_document(line: &Line, invoice: &str, currency: &Value, subscription: &Value) -> Value {
    json!({
        "id": LINE_SPEC.new_id(),
        "object": "line_item",
        "amount": line.amount,
        "currency": currency,
        "description": line.description,
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "invoice": invoice,
        "livemode": false,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": null,
            "subscription_item_details": {
                "invoice_item": null,
                "proration": line.proration,
                "proration_details": {"credited_items": null},
                "subscription": subscription["id"],
                "subscription_item": line.subscription_item,
            },
        },
        "period": {"end": line.period.1, "start": line.period.0},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": line.price["id"], "product": line.price["product"]},
            "type": "price_details",
            "unit_amount_decimal": line.price["unit_amount_decimal"],
        },
        "quantity": line.quantity,
        "quantity_decimal": line.quantity.to_string(),
        "subscription": subscription["id"],
        "subtotal": line.amount,
        "taxes": [],
    })
}

/// Finalizes a draft: its number (from the customer's sequence, which
/// `customer` advances) and, when money is due, the PaymentIntent that will
/// collect it and the invoice payment that links them. Returns the new
/// PaymentIntent, not yet written.
pub fn finalize(
    ctx: &Ctx,
    invoice: &mut Value,
    customer: &mut Value,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<(Value, Value)>> {
    let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
    customer["next_invoice_sequence"] = json!(sequence + 1);
    let now = ctx.now();
    invoice["number"] = json!(format!(
        "{}-{:04}",
        customer["invoice_prefix"].as_str().unwrap_or("TWIN"),
        sequence
    ));
    status::Machine::apply(invoice, Action::Finalize)?;
    apply_customer_balance(invoice, customer);
    invoice["effective_at"] = json!(now);
    invoice["status_transitions"]["finalized_at"] = json!(now);
    let amount = invoice["amount_due"].as_i64().unwrap_or(0);
    let charge_automatically = invoice["collection_method"] == "charge_automatically";
    let payment = (amount > 0).then(|| {
        let mut intent = payment_intents::new_document(
            amount,
            invoice["currency"].as_str().unwrap_or("usd"),
            now,
        );
        intent["customer"] = invoice["customer"].clone();
        intent["description"] = json!(match invoice["billing_reason"].as_str() {
            Some("subscription_create") => "Subscription creation",
            Some("subscription_update") => "Subscription update",
            _ => "Payment for Invoice",
        });
        let types: Vec<String> =
            match invoice["payment_settings"]["payment_method_types"].as_array() {
                Some(types) => types
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect(),
                None => payment_methods::SUPPORTED_TYPES
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect(),
            };
        payment_intents::set_payment_method_types(&mut intent, &types);
        bookkeeping::update(&mut intent, |b| {
            b.invoice = invoice["id"].as_str().map(str::to_owned);
        });
        let invoice_payment = json!({
            "id": PAYMENT_SPEC.new_id(),
            "object": "invoice_payment",
            "amount_paid": null,
            "amount_requested": amount,
            "created": now,
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": true,
            "livemode": false,
            "payment": {"payment_intent": intent["id"], "type": "payment_intent"},
            "status": "open",
            "status_transitions": {"canceled_at": null, "paid_at": null},
        });
        invoice["confirmation_secret"] =
            json!({"client_secret": intent["client_secret"], "type": "payment_intent"});
        bookkeeping::update(invoice, |b| {
            b.payment_intent = intent["id"].as_str().map(str::to_owned);
            b.invoice_payment = invoice_payment["id"].as_str().map(str::to_owned);
        });
        (intent, invoice_payment)
    });
    if charge_automatically && payment.is_some() {
        invoice["next_payment_attempt"] = json!(now);
    }
    writes.push(ctx.event("invoice.finalized", invoice, None));
    Ok(payment)
}

/// A finalized invoice takes the customer's balance into account, as
/// Stripe does: credit (negative) lowers what is due, a debt raises it.
/// An invoice that is itself a credit (a net negative total) already
/// moved it to the balance.
fn apply_customer_balance(invoice: &mut Value, customer: &mut Value) {
    let balance = customer["balance"].as_i64().unwrap_or(0);
    let due = invoice["amount_due"].as_i64().unwrap_or(0);
    if balance == 0 || invoice["total"].as_i64().unwrap_or(0) < 0 {
        return;
    }
    let applied = if balance < 0 {
        balance.max(-due)
    } else {
        balance
    };
    let due = due + applied;
    invoice["starting_balance"] = json!(balance);
    invoice["ending_balance"] = json!(balance - applied);
    invoice["amount_due"] = json!(due);
    invoice["amount_remaining"] = json!(due);
    customer["balance"] = json!(balance - applied);
}

/// The invoice is paid: its amounts, its invoice payment (if any) and the
/// events Stripe sends, in its order.
pub fn mark_paid(
    ctx: &Ctx,
    invoice: &mut Value,
    invoice_payment: Option<&mut Value>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    let now = ctx.now();
    let amount = invoice["amount_due"].as_i64().unwrap_or(0);
    status::Machine::apply(invoice, Action::Pay)?;
    invoice["amount_paid"] = json!(amount);
    invoice["amount_remaining"] = json!(0);
    invoice["attempted"] = json!(amount > 0 || invoice["attempted"] == json!(true));
    if amount > 0 {
        invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
    }
    invoice["next_payment_attempt"] = Value::Null;
    invoice["status_transitions"]["paid_at"] = json!(now);
    if let Some(payment) = invoice_payment {
        payment["status"] = json!("paid");
        payment["amount_paid"] = json!(amount);
        payment["status_transitions"]["paid_at"] = json!(now);
        writes.push(ctx.event("invoice_payment.paid", payment, None));
    }
    writes.push(ctx.event("invoice.paid", invoice, None));
    writes.push(ctx.event("invoice.payment_succeeded", invoice, None));
    Ok(())
}

/// A payment attempt on the invoice failed; the next is tried at
/// `next_attempt` (None: not automatically).
pub fn mark_failed(
    ctx: &Ctx,
    invoice: &mut Value,
    next_attempt: Option<i64>,
    writes: &mut Vec<Write>,
) {
    count_attempt(invoice, next_attempt);
    writes.push(ctx.event("invoice.payment_failed", invoice, None));
}

/// One more payment attempt on the invoice that did not pay it; the next
/// is tried at `next_attempt` (None: not automatically).
pub fn count_attempt(invoice: &mut Value, next_attempt: Option<i64>) {
    invoice["attempted"] = json!(true);
    invoice["attempt_count"] = json!(invoice["attempt_count"].as_i64().unwrap_or(0) + 1);
    invoice["next_payment_attempt"] = json!(next_attempt);
}

/// Voids an open invoice (a canceled `incomplete` subscription's first
/// one): nothing is owed any more, so the PaymentIntent that would have
/// collected it is canceled, and its invoice payment with it.
pub async fn void_open(ctx: &Ctx, invoice_id: &str, writes: &mut Vec<Write>) -> ApiResult<()> {
    let record = match ctx.get(invoice_id).await? {
        Some(record)
            if record.object == "invoice"
                && status::Machine::check(&record.data, Action::Void).is_ok() =>
        {
            record
        }
        _ => return Ok(()),
    };
    let now = ctx.now();
    let mut invoice = record.data.clone();
    let kept = Bookkeeping::of(&invoice);
    if let Some(intent_id) = &kept.payment_intent
        && let Some(intent) = ctx.get(intent_id).await?
        && intent_status::Machine::check(&intent.data, intent_status::Action::Cancel).is_ok()
    {
        let mut doc = intent.data.clone();
        intent_status::Machine::apply(&mut doc, intent_status::Action::Cancel)?;
        doc["canceled_at"] = json!(now);
        doc["cancellation_reason"] = json!("void_invoice");
        doc["next_action"] = Value::Null;
        crate::resources::payments::intents::forget_redirect(&mut doc);
        writes.push(Write::Update(intent.with_data(doc.clone())));
        writes.push(ctx.event("payment_intent.canceled", &doc, None));
    }
    if let Some(payment_id) = &kept.invoice_payment
        && let Some(payment) = ctx.get(payment_id).await?
    {
        let mut doc = payment.data.clone();
        doc["status"] = json!("canceled");
        doc["status_transitions"]["canceled_at"] = json!(now);
        writes.push(Write::Update(payment.with_data(doc)));
    }
    status::Machine::apply(&mut invoice, Action::Void)?;
    invoice["next_payment_attempt"] = Value::Null;
    invoice["status_transitions"]["voided_at"] = json!(now);
    writes.push(Write::Update(record.with_data(invoice.clone())));
    writes.push(ctx.event("invoice.voided", &invoice, None));
    Ok(())
}

/// What the payment method to charge is: the subscription's own default,
/// else the customer's invoice default.
pub async fn default_payment_method(ctx: &Ctx, invoice: &Value) -> ApiResult<Option<String>> {
    let subscription = match invoice["parent"]["subscription_details"]["subscription"].as_str() {
        Some(id) => ctx.get(id).await?.map(|r| r.data),
        None => None,
    };
    let customer = invoice["customer"].as_str().unwrap_or_default();
    let customer = ctx.get(customer).await?.map(|c| c.data).unwrap_or_default();
    Ok(charged_method(subscription.as_ref(), &customer))
}

/// The payment method a subscription's invoices are charged to: its own
/// `default_payment_method`, else its customer's invoice default.
pub fn charged_method(subscription: Option<&Value>, customer: &Value) -> Option<String> {
    subscription
        .and_then(|s| s["default_payment_method"].as_str())
        .or_else(|| customer["invoice_settings"]["default_payment_method"].as_str())
        .map(str::to_owned)
}

/// After a PaymentIntent moved outside a subscription's own creation (a
/// client confirm, the authorization page): settles the invoice it pays,
/// which is answered when it became paid (`resources::settlement` goes on
/// to its subscription).
pub async fn settle_intent(
    ctx: &Ctx,
    intent: &Value,
    writes: &mut Vec<Write>,
) -> ApiResult<Option<Value>> {
    let Some(invoice_id) = Bookkeeping::of(intent).invoice else {
        return Ok(None);
    };
    let Some(record) = ctx.get(&invoice_id).await? else {
        return Ok(None);
    };
    let (invoice, paid) = apply_payment(ctx, &record, intent, writes).await?;
    Ok(paid.then_some(invoice))
}

/// What the invoice `record` becomes after its PaymentIntent moved: paid
/// (with its invoice payment) when it succeeded, one more failed attempt
/// when it failed, unchanged otherwise or when not open; and whether it
/// became paid.
async fn apply_payment(
    ctx: &Ctx,
    record: &Record,
    intent: &Value,
    writes: &mut Vec<Write>,
) -> ApiResult<(Value, bool)> {
    let mut invoice = record.data.clone();
    if status::Machine::check(&invoice, Action::Pay).is_err() {
        return Ok((invoice, false));
    }
    match intent["status"].as_str() {
        Some("succeeded") => {
            let payment_record = match Bookkeeping::of(&invoice).invoice_payment {
                Some(id) => ctx.get(&id).await?,
                None => None,
            };
            let mut payment = payment_record.as_ref().map(|r| r.data.clone());
            mark_paid(ctx, &mut invoice, payment.as_mut(), writes)?;
            if let (Some(record), Some(payment)) = (payment_record, payment) {
                writes.push(Write::Update(record.with_data(payment)));
            }
            writes.push(Write::Update(record.with_data(invoice.clone())));
            return Ok((invoice, true));
        }
        Some("requires_payment_method") => {
            mark_failed(ctx, &mut invoice, None, writes);
            writes.push(Write::Update(record.with_data(invoice.clone())));
        }
        _ => {}
    }
    Ok((invoice, false))
}

async fn retrieve_invoice(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("invoice", &id, "invoice").await?;
    ctx.respond(record.data).await
}

async fn list_invoices(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    let subscription = params.string("subscription")?;
    let status = params.enum_value(
        "status",
        &["draft", "open", "paid", "uncollectible", "void"],
    )?;
    let collection = params.enum_value(
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?;
    params.finish()?;
    let mut query = ListQuery::new("invoice");
    // As Stripe: a test clock's invoices only when their customer or
    // subscription is named.
    if customer.is_none() && subscription.is_none() {
        query.filters.push(Filter::Absent("test_clock"));
    }
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(subscription) = subscription {
        query.filters.push(Filter::Field(
            "parent.subscription_details.subscription",
            vec![json!(subscription)],
        ));
    }
    if let Some(status) = status {
        query
            .filters
            .push(Filter::Field("status", vec![json!(status)]));
    }
    if let Some(collection) = collection {
        query
            .filters
            .push(Filter::Field("collection_method", vec![json!(collection)]));
    }
    ctx.list(query, &paging, "/v1/invoices").await
}

async fn list_invoice_lines(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    params.finish()?;
    let record = ctx.load("invoice", &id, "invoice").await?;
    let lines: Vec<Value> = record.data["lines"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (data, has_more) = crate::http::api::page_of_embedded(&lines, &paging)?;
    ctx.respond(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": format!("/v1/invoices/{id}/lines"),
    }))
    .await
}

async fn pay_invoice(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let payment_method = params.string("payment_method")?;
    let off_session = params.bool("off_session")?.unwrap_or(true);
    let out_of_band = params.bool("paid_out_of_band")?.unwrap_or(false);
    params.bool("forgive")?;
    params.string("mandate")?;
    params.finish()?;
    let outcome = ctx
        .retry(|| async {
            let record = ctx.load("invoice", &id, "invoice").await?;
            status::Machine::check(&record.data, Action::Pay)?;
            let mut invoice = record.data.clone();
            let mut writes = Vec::new();
            if out_of_band {
                let kept = Bookkeeping::of(&invoice);
                let payment_record = match &kept.invoice_payment {
                    Some(id) => ctx.get(id).await?,
                    None => None,
                };
                mark_paid(&ctx, &mut invoice, None, &mut writes)?;
                invoice["amount_paid_off_stripe"] = invoice["amount_paid"].clone();
                // Nothing is left to collect: the PaymentIntent must not
                // take the customer's money as well.
                let now = ctx.now();
                if let Some(record) = payment_record {
                    let mut payment = record.data.clone();
                    payment["status"] = json!("canceled");
                    payment["status_transitions"]["canceled_at"] = json!(now);
                    writes.push(Write::Update(record.with_data(payment)));
                }
                if let Some(intent_id) = &kept.payment_intent
                    && let Some(intent) = ctx.get(intent_id).await?
                    && intent_status::Machine::check(&intent.data, intent_status::Action::Cancel).is_ok()
                {
                    let mut doc = intent.data.clone();
                    intent_status::Machine::apply(&mut doc, intent_status::Action::Cancel)?;
                    doc["canceled_at"] = json!(now);
                    doc["next_action"] = Value::Null;
                    crate::resources::payments::intents::forget_redirect(&mut doc);
                    writes.push(ctx.event("payment_intent.canceled", &doc, None));
                    writes.push(Write::Update(intent.with_data(doc)));
                }
                writes.insert(0, Write::Update(record.with_data(invoice.clone())));
                ctx.invoice_paid(&invoice, &Value::Null, &mut writes).await?;
                return Ok((writes, Ok(invoice)));
            }
            let intent_id = Bookkeeping::of(&invoice).payment_intent.unwrap_or_default();
            let intent = ctx.load("payment_intent", &intent_id, "invoice").await?;
            let pm_id = match payment_method.clone() {
                Some(pm) => pm,
                None => match default_payment_method(&ctx, &invoice).await? {
                    Some(pm) => pm,
                    None => {
                        return Err(ApiError::invalid(
                            "This customer has no attached payment source or default payment method. Please consider adding a default payment method.",
                        )
                        .with_code("invoice_no_payment_method_types"));
                    }
                },
            };
            let pm = payment_methods::resolve(&ctx, &pm_id, Named::InParam("payment_method")).await?;
            let attempted =
                payment_intents::attempt(&ctx, intent.data.clone(), &pm, off_session, &mut writes).await?;
            writes.insert(0, Write::Update(intent.with_data(attempted.doc().clone())));
            let (invoice, paid) = apply_payment(&ctx, &record, attempted.doc(), &mut writes).await?;
            if paid {
                ctx.invoice_paid(&invoice, attempted.doc(), &mut writes).await?;
            }
            match attempted {
                Attempted::Failed(_, error) => Ok((writes, Err(error))),
                _ => Ok((writes, Ok(invoice))),
            }
        })
        .await?;
    ctx.respond(outcome?).await
}

async fn list_invoice_payments(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let invoice = params.string("invoice")?;
    let status = params.enum_value("status", &["canceled", "open", "paid"])?;
    params.finish()?;
    let mut query = ListQuery::new("invoice_payment");
    if let Some(invoice) = invoice {
        query
            .filters
            .push(Filter::Field("invoice", vec![json!(invoice)]));
    }
    if let Some(status) = status {
        query
            .filters
            .push(Filter::Field("status", vec![json!(status)]));
    }
    ctx.list(query, &paging, "/v1/invoice_payments").await
}

async fn retrieve_invoice_payment(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load("invoice_payment", &id, "invoice_payment").await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

/// An invoice payment's record, to be written with the invoice.
pub fn payment_record(invoice: &Value, payment: Value) -> Record {
    let mut record = Record::new("invoice_payment", payment);
    record.customer = invoice["customer"].as_str().map(str::to_owned);
    record
}

async fn search_invoices(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}
