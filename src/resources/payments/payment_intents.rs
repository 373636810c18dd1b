//! `/v1/payment_intents`: create, retrieve, update, confirm, cancel and
//! list, with Stripe's state machine:
//!
//! requires_payment_method → requires_confirmation → (requires_action →)
//! succeeded, back to requires_payment_method with `last_payment_error`
//! when a charge fails, and canceled from any state but succeeded.
//!
//! Cards behave as their test numbers say; amazon_pay redirects the buyer
//! to this server's Amazon Pay page on-session and charges through its
//! active mandate off-session. A PaymentIntent that pays an invoice settles
//! that invoice (and its subscription) when it succeeds.
//!
//! This file holds the endpoints; `changes` parses and applies what a
//! request asks to change, `settlement` is one payment attempt and how it
//! ends (used by invoices, subscriptions and Checkout too).

mod attempt;
mod changes;
pub mod status;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::registry::{ObjectSpec, to};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::{AppState, Call, ClientCall, Ctx, ListParams};
use crate::http::ctx::Settlement;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::search::{self, FieldKind};
use crate::ids;
use crate::resources::payments::intents;
use crate::resources::payments::payment_methods::{self, SUPPORTED_TYPES};
use crate::store::{Filter, ListQuery, Record, Write};

pub use attempt::{Attempted, Presence, after_action, attempt, decline, settle};
use changes::{Changes, Operation, apply_changes, parse_changes};
use status::{Action, Status};

pub const SPEC: ObjectSpec = ObjectSpec::new("payment_intent", "pi")
    .title("PaymentIntent")
    .list_url("/v1/payment_intents")
    .fields(&[
        ("customer", to("customer")),
        ("payment_method", to("payment_method")),
        ("latest_charge", to("charge")),
        ("review", to("review")),
        ("on_behalf_of", to("account")),
        ("application", to("application")),
    ]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/payment_intents",
            get(list_payment_intents).post(create_payment_intent),
        )
        .route("/v1/payment_intents/search", get(search_payment_intents))
        .route(
            "/v1/payment_intents/{intent}",
            get(retrieve_payment_intent).post(update_payment_intent),
        )
        .route(
            "/v1/payment_intents/{intent}/confirm",
            post(confirm_payment_intent),
        )
        .route(
            "/v1/payment_intents/{intent}/cancel",
            post(cancel_payment_intent),
        )
}

/// Stripe's search fields for PaymentIntents.
const SEARCH: search::Spec = search::Spec {
    object: "payment_intent",
    resource: "payment_intents",
    url: "/v1/payment_intents/search",
    fields: &[
        ("amount", FieldKind::Number),
        ("created", FieldKind::Number),
        ("currency", FieldKind::Text),
        ("customer", FieldKind::Text),
        ("status", FieldKind::Text),
    ],
    paths: &[],
};

/// Fields Stripe returns when a PaymentIntent is retrieved with a publishable key.
const CLIENT_VISIBLE: &[&str] = &[
    "id",
    "object",
    "amount",
    "automatic_payment_methods",
    "canceled_at",
    "cancellation_reason",
    "capture_method",
    "client_secret",
    "confirmation_method",
    "created",
    "currency",
    "description",
    "last_payment_error",
    "livemode",
    "next_action",
    "payment_method",
    "payment_method_types",
    "processing",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "status",
];
const CLIENT_EXPANDABLE: &[&str] = &["payment_method"];

const MAX_AMOUNT: i64 = 99_999_999;

/// A new PaymentIntent awaiting its payment method.
pub fn new_document(amount: i64, currency: &str, now: i64) -> Value {
    let id = SPEC.new_id();
    json!({
        "id": id,
        "object": "payment_intent",
        "allowed_payment_method_types": null,
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": format!("{id}_secret_{}", ids::random_base62(25)),
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": null,
        "customer_account": null,
        "description": null,
        "excluded_payment_method_types": null,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "managed_payments": null,
        "metadata": {},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": [],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": Status::RequiresPaymentMethod.as_str(),
        "transfer_data": null,
        "transfer_group": null,
    })
}

/// Sets the payment method types an intent accepts (and the card options
/// Stripe shows whenever cards are among them).
pub fn set_payment_method_types(doc: &mut Value, types: &[String]) {
    doc["payment_method_types"] = json!(types);
    doc["allowed_payment_method_types"] = json!(types);
    if types.iter().any(|t| t == "card") && doc["payment_method_options"].get("card").is_none() {
        doc["payment_method_options"]["card"] = json!({"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"});
    }
    if types.iter().any(|t| t == "amazon_pay") {
        // Stripe's Amazon Pay options: only what was set (`setup_future_usage`).
        if doc["payment_method_options"].get("amazon_pay").is_none() {
            doc["payment_method_options"]["amazon_pay"] = json!({});
        }
    }
}

/// Checks an amount in the currency's smallest unit against Stripe's limits.
pub fn check_amount(param: &str, amount: i64, currency: &str) -> ApiResult<()> {
    // Stripe's minimum charge amounts, in the smallest unit.
    let minimum = match currency {
        "gbp" => 30,
        "bgn" => 100,
        "aed" | "myr" | "pln" | "ron" => 200,
        "dkk" => 250,
        "nok" | "sek" => 300,
        "hkd" => 400,
        "mxn" | "thb" => 1000,
        "czk" => 1500,
        "huf" => 17500,
        _ => 50,
    };
    if amount < minimum {
        let message = if currency == "usd" {
            "Amount must be at least $0.50 usd".to_owned()
        } else {
            format!("Amount must be at least {minimum} in the smallest unit of {currency}")
        };
        return Err(ApiError::invalid_param(param, message).with_code("amount_too_small"));
    }
    if amount > MAX_AMOUNT {
        return Err(ApiError::invalid_param(
            param,
            format!("Amount must be no more than {MAX_AMOUNT}"),
        )
        .with_code("amount_too_large"));
    }
    Ok(())
}

async fn check_customer(ctx: &Ctx, changes: &Changes) -> ApiResult<()> {
    if let Some(customer) = &changes.customer {
        payment_methods::load_customer(ctx, customer, Named::InParam("customer")).await?;
    }
    Ok(())
}

async fn answer(
    ctx: &Ctx,
    call: Option<&ClientCall>,
    attempted: Attempted,
) -> ApiResult<Json<Value>> {
    match attempted {
        Attempted::Failed(_, error) => Err(error),
        other => {
            let doc = ctx.strip_hidden(other.doc().clone());
            match call {
                Some(call) => call.respond(doc, CLIENT_VISIBLE).await,
                None => ctx.respond(doc).await,
            }
        }
    }
}

async fn create_payment_intent(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    ctx.check_expand_paths("payment_intent")?;
    // Its customer's clock decides its time: read it first.
    ctx.follow_customer_param(&params).await?;
    let confirm = params.bool("confirm")?.unwrap_or(false);
    let automatic = match params.object("automatic_payment_methods")? {
        Some(mut automatic) => {
            let enabled = automatic
                .bool("enabled")?
                .ok_or_else(|| ApiError::missing_param(&automatic.name("enabled")))?;
            let redirects = automatic.enum_value("allow_redirects", &["always", "never"])?;
            automatic.finish()?;
            Some(
                json!({"allow_redirects": redirects.unwrap_or_else(|| "always".into()), "enabled": enabled}),
            )
        }
        None => None,
    };
    let changes = parse_changes(&ctx, &mut params, Operation::Create)?;
    params.finish()?;
    let amount = changes
        .amount
        .ok_or_else(|| ApiError::missing_param("amount"))?;
    let currency = changes
        .currency
        .clone()
        .ok_or_else(|| ApiError::missing_param("currency"))?;
    check_amount("amount", amount, &currency)?;
    if changes.payment_method_types.is_some()
        && automatic
            .as_ref()
            .is_some_and(|a| a["enabled"] == json!(true))
    {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
        )
        .with_code("parameters_exclusive")
        .with_param("automatic_payment_methods"));
    }
    if !confirm {
        for (given, param) in [
            (changes.return_url.is_some(), "return_url"),
            (changes.mandate_data.is_some(), "mandate_data"),
            (changes.off_session, "off_session"),
        ] {
            if given {
                return Err(ApiError::invalid_param(
                    param,
                    format!(
                        "You can only pass `{param}` when confirming the PaymentIntent (confirm=true)."
                    ),
                ));
            }
        }
    }
    check_customer(&ctx, &changes).await?;
    let pm = intents::requested_payment_method(
        &ctx,
        changes.payment_method.as_deref(),
        changes.payment_method_data.as_ref(),
    )
    .await?;
    let mut doc = new_document(amount, &currency, ctx.now());
    if changes.payment_method_types.is_none() {
        let automatic =
            automatic.unwrap_or_else(|| json!({"allow_redirects": "always", "enabled": true}));
        let types: Vec<String> = if automatic["enabled"] == json!(true) {
            SUPPORTED_TYPES.iter().map(|t| (*t).to_owned()).collect()
        } else {
            vec!["card".to_owned()]
        };
        set_payment_method_types(&mut doc, &types);
        doc["automatic_payment_methods"] = automatic;
    }
    let mut writes = Vec::new();
    // When confirming, the attempt writes the PaymentMethod.
    let pm_now = if confirm { None } else { pm.as_ref() };
    apply_changes(&mut doc, &changes, pm_now, &mut writes)?;
    let record = Record::new("payment_intent", doc.clone());
    let created_event = ctx.event("payment_intent.created", &doc, None);
    if !confirm {
        writes.push(Write::Insert(record));
        writes.push(created_event);
        ctx.commit(&writes).await?;
        return ctx.respond(ctx.strip_hidden(doc)).await;
    }
    let pm = pm.ok_or_else(missing_payment_method)?;
    let mut moves = Vec::new();
    if changes.error_on_requires_action {
        bookkeeping::update(&mut doc, |b| b.no_action = true);
    }
    let attempted = attempt(&ctx, doc, &pm, changes.off_session, &mut moves).await?;
    writes.push(Write::Insert(record.with_data(attempted.doc().clone())));
    writes.push(created_event);
    writes.extend(moves);
    ctx.commit(&writes).await?;
    answer(&ctx, None, attempted).await
}

fn missing_payment_method() -> ApiError {
    ApiError::invalid(
        "You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with cus_xxx, specify a payment method attached to this customer along with the customer ID.",
    )
    .with_code("payment_intent_unexpected_state")
}

async fn retrieve_payment_intent(
    Path(id): Path<String>,
    mut call: ClientCall,
) -> ApiResult<Json<Value>> {
    let record = call
        .load_client_object("payment_intent", &id, CLIENT_EXPANDABLE)
        .await?;
    std::mem::take(&mut call.params).finish()?;
    call.respond(call.ctx.strip_hidden(record.data), CLIENT_VISIBLE)
        .await
}

async fn update_payment_intent(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let changes = parse_changes(&ctx, &mut params, Operation::Update)?;
    params.finish()?;
    check_customer(&ctx, &changes).await?;
    let updated = ctx
        .retry(|| async {
            let record = ctx.load("payment_intent", &id, "intent").await?;
            let touches_money = changes.amount.is_some()
                || changes.currency.is_some()
                || changes.customer.is_some()
                || changes.payment_method.is_some()
                || changes.payment_method_data.is_some()
                || changes.payment_method_types.is_some()
                || changes.patch.touches("setup_future_usage")
                || changes.patch.touches("capture_method");
            if touches_money {
                status::Machine::check(&record.data, Action::Update)?;
            }
            if Bookkeeping::of(&record.data).invoice.is_some() && (changes.amount.is_some() || changes.currency.is_some()) {
                return Err(ApiError::invalid_param(
                    if changes.amount.is_some() { "amount" } else { "currency" },
                    "You cannot change the amount or currency of a PaymentIntent created by an invoice.",
                ));
            }
            let pm = intents::requested_payment_method(&ctx, changes.payment_method.as_deref(), changes.payment_method_data.as_ref()).await?;
            let mut doc = record.data.clone();
            let mut writes = Vec::new();
            apply_changes(&mut doc, &changes, pm.as_ref(), &mut writes)?;
            let mut all = ctx.update_with_event(&record, doc.clone(), "payment_intent.updated");
            if all.len() == 1 && doc == record.data {
                all.clear();
            }
            all.extend(writes);
            Ok((all, doc))
        })
        .await?;
    ctx.respond(ctx.strip_hidden(updated)).await
}

async fn confirm_payment_intent(
    Path(id): Path<String>,
    mut call: ClientCall,
) -> ApiResult<Json<Value>> {
    call.load_client_object("payment_intent", &id, CLIENT_EXPANDABLE)
        .await?;
    let mut params = std::mem::take(&mut call.params);
    let changes = parse_changes(&call.ctx, &mut params, Operation::Confirm)?;
    params.finish()?;
    let ctx = call.ctx.clone();
    let attempted = ctx
        .retry(|| async {
            let record = ctx.load("payment_intent", &id, "intent").await?;
            intents::refuse_checkout_owned(&record, || status::checkout_owned(Action::Confirm))?;
            status::Machine::check(&record.data, Action::Confirm)?;
            let requested = intents::requested_payment_method(
                &ctx,
                changes.payment_method.as_deref(),
                changes.payment_method_data.as_ref(),
            )
            .await?;
            let mut doc = record.data.clone();
            let mut writes = Vec::new();
            apply_changes(&mut doc, &changes, None, &mut writes)?;
            let pm = match requested {
                Some(pm) => pm,
                None => match doc["payment_method"].as_str() {
                    Some(pm) => {
                        payment_methods::resolve(&ctx, pm, Named::InParam("payment_method")).await?
                    }
                    None => return Err(missing_payment_method()),
                },
            };
            let mut moves = Vec::new();
            if changes.error_on_requires_action {
                bookkeeping::update(&mut doc, |b| b.no_action = true);
            }
            let attempted = attempt(&ctx, doc, &pm, changes.off_session, &mut moves).await?;
            writes.insert(0, Write::Update(record.with_data(attempted.doc().clone())));
            writes.extend(moves);
            ctx.intent_moved(attempted.doc(), &mut writes).await?;
            Ok((writes, attempted))
        })
        .await?;
    answer(&ctx, Some(&call), attempted).await
}

async fn cancel_payment_intent(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let reason = params.enum_value(
        "cancellation_reason",
        &[
            "abandoned",
            "duplicate",
            "fraudulent",
            "requested_by_customer",
        ],
    )?;
    params.finish()?;
    let canceled = ctx
        .mutate("payment_intent", &id, "intent", |record| {
            intents::refuse_checkout_owned(&record, || status::checkout_owned(Action::Cancel))?;
            status::Machine::check(&record.data, Action::Cancel)?;
            if Bookkeeping::of(&record.data).invoice.is_some() {
                return Err(ApiError::invalid(
                    "You cannot cancel this PaymentIntent because it was created by an invoice. Void the invoice instead.",
                )
                .with_code("payment_intent_unexpected_state"));
            }
            let mut doc = record.data.clone();
            status::Machine::apply(&mut doc, Action::Cancel)?;
            doc["canceled_at"] = json!(ctx.now());
            doc["cancellation_reason"] = json!(reason);
            doc["next_action"] = Value::Null;
            intents::forget_redirect(&mut doc);
            Ok((
                vec![
                    Write::Update(record.with_data(doc.clone())),
                    ctx.event("payment_intent.canceled", &doc, None),
                ],
                doc,
            ))
        })
        .await?;
    ctx.respond(ctx.strip_hidden(canceled)).await
}

async fn list_payment_intents(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    params.finish()?;
    let mut query = ListQuery::new("payment_intent");
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    ctx.list(query, &paging, "/v1/payment_intents").await
}

async fn search_payment_intents(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}
