//! `/v1/subscriptions` (create, retrieve, update, cancel, resume, list,
//! search) and `/v1/subscription_items` (list, retrieve).
//!
//! Creating a subscription bills its first period at once: an invoice is
//! created, finalized and paid through a PaymentIntent charged off-session
//! to the default payment method (amazon_pay through its mandate, or a
//! card). `payment_behavior` says what a failed first payment does. In the
//! current API the billing period lives on each item.

//!
//! This module holds the router and the handlers; the work is in:
//! `params` (request parsing), `items` (subscription items and their
//! prices), `calendar` (billing-period arithmetic), `lines` (invoice lines
//! and prorations), `invoicing` (billing the subscription's invoices),
//! `create` and `update` (the writes those operations make).

mod calendar;
mod cancel;
mod collection;
mod create;
mod invoicing;
mod items;
mod lines;
mod params;
mod renewal;
mod status;
mod update;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::bookkeeping;
use crate::core::registry::{Expansion, ObjectSpec, to};
use crate::core::state_machine::StateMachine;
use crate::http::api::{AppState, Call, Ctx, ListParams, take_range};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::search::{self, FieldKind};
use crate::resources::billing::settings;
use crate::resources::payments::payment_methods;
use crate::store::{Filter, ListQuery, Record, Write};

// Paths other modules call (Checkout, invoices, the scheduler).
pub use collection::{
    FINALIZATION_KIND, OVERDUE_KIND, RETRY_KIND, finalize_when_due, overdue_when_due,
    retry_when_due,
};
pub use create::create_for_checkout;
pub use invoicing::invoice_paid;
pub use items::{PLAN_SPEC, SPEC as ITEM_SPEC};
pub use params::billing_mode_param;
pub use renewal::{
    INCOMPLETE_EXPIRY_KIND, RENEWAL_KIND, TRIAL_WILL_END_KIND, UPCOMING_KIND, announce_upcoming,
    expire_incomplete, renew_when_due, warn_trial_end,
};

use cancel::Cancel;
use create::create_writes;
use items::check_items_agree;
use params::{cancellation_details, check_default_payment_method, parse_create, parse_update};
use status::Action;
use update::update_writes;

pub const SPEC: ObjectSpec = ObjectSpec::new("subscription", "sub")
    .list_url("/v1/subscriptions")
    .fields(&[
        ("customer", to("customer")),
        ("default_payment_method", to("payment_method")),
        ("default_source", to("payment_source")),
        ("latest_invoice", to("invoice")),
        ("pending_setup_intent", to("setup_intent")),
        ("schedule", to("subscription_schedule")),
        ("test_clock", to("test_helpers.test_clock")),
        ("on_behalf_of", to("account")),
        ("application", to("application")),
        (
            "items",
            Expansion::Embedded {
                of: "subscription_item",
            },
        ),
    ]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/subscriptions",
            get(list_subscriptions).post(create_subscription),
        )
        .route("/v1/subscriptions/search", get(search_subscriptions))
        .route(
            "/v1/subscriptions/{subscription}",
            get(retrieve_subscription)
                .post(update_subscription)
                .delete(cancel_subscription),
        )
        .route(
            "/v1/subscriptions/{subscription}/resume",
            post(resume_subscription),
        )
        .route("/v1/subscription_items", get(list_subscription_items))
        .route(
            "/v1/subscription_items/{item}",
            get(retrieve_subscription_item),
        )
}

const SEARCH: search::Spec = search::Spec {
    object: "subscription",
    resource: "subscriptions",
    url: "/v1/subscriptions/search",
    fields: &[
        ("status", FieldKind::Text),
        ("created", FieldKind::Number),
        ("canceled_at", FieldKind::Number),
    ],
    paths: &[],
};
const STATUSES: &[&str] = &[
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
];
const BEHAVIORS: &[&str] = &[
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
];
/// Stripe's limit on trials: two years.
const MAX_TRIAL_DAYS: i64 = 730;
const DAY: i64 = 86_400;
/// How long before a trial ends `customer.subscription.trial_will_end` is sent.
const TRIAL_WARNING: i64 = 3 * DAY;

async fn create_subscription(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    ctx.check_expand_paths("subscription")?;
    // Its customer's clock decides its time: read it first.
    if let Some(customer) = params.peek_str("customer")
        && let Some(record) = ctx.get(customer).await?
    {
        check_clock_limit(&ctx, &record).await?;
    }
    let now = ctx.now();
    let request = parse_create(&ctx, &mut params, now).await?;
    params.finish()?;
    let (currency, (interval, count)) = check_items_agree(
        &request.items,
        request.currency.as_deref(),
        &request.billing_mode,
    )?;
    let customer =
        payment_methods::load_customer(&ctx, &request.customer, Named::InParam("customer")).await?;
    if let Some(pm) = &request.default_payment_method {
        check_default_payment_method(&ctx, pm, &request.customer).await?;
    }
    let created = ctx
        .retry(|| async {
            let customer = ctx.load("customer", &customer.id, "customer").await?;
            create_writes(
                &ctx,
                &request,
                &customer,
                &currency,
                (&interval, count),
                now,
            )
            .await
        })
        .await?;
    ctx.respond(ctx.strip_hidden(created)).await
}

/// Stripe's limit on a test clock's customer: three subscriptions.
async fn check_clock_limit(ctx: &Ctx, customer: &Record) -> ApiResult<()> {
    const MAX_SUBSCRIPTIONS: usize = 3;
    if customer.data["test_clock"].is_null() || !settings::for_account(ctx).await?.test_clock_limits
    {
        return Ok(());
    }
    let mut query = ListQuery::new("subscription");
    query.filters.push(Filter::Customer(customer.id.clone()));
    query.limit = MAX_SUBSCRIPTIONS as i64;
    if ctx.list_records(&query).await?.len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::invalid_param(
            "customer",
            format!(
                "The customer {} already has the maximum of {MAX_SUBSCRIPTIONS} subscriptions. Stripe limits each customer of a test clock to {MAX_SUBSCRIPTIONS} subscriptions.",
                customer.id
            ),
        ));
    }
    Ok(())
}

// ---- retrieve, list, search, items ---------------------------------------------

async fn retrieve_subscription(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx
        .load("subscription", &id, "subscription_exposed_id")
        .await?;
    ctx.respond(ctx.strip_hidden(record.data)).await
}

async fn list_subscriptions(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    let price = params.string("price")?;
    let status = params.enum_value("status", STATUSES)?;
    let collection = params.enum_value(
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?;
    let period_start = take_range(&mut params, "current_period_start")?;
    let period_end = take_range(&mut params, "current_period_end")?;
    let test_clock = params.string("test_clock")?;
    params.take_node("automatic_tax");
    params.finish()?;
    let mut query = ListQuery::new("subscription");
    // As Stripe: a test clock's subscriptions only when their clock or
    // customer is named.
    if customer.is_none() && test_clock.is_none() {
        query.filters.push(Filter::Absent("test_clock"));
    }
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(price) = price {
        query
            .filters
            .push(Filter::ArrayContains(bookkeeping::PRICES_PATH, price));
    }
    if let Some(clock) = test_clock {
        query
            .filters
            .push(Filter::Field("test_clock", vec![json!(clock)]));
    }
    let statuses: Vec<Value> = match status.as_deref() {
        None => [
            "active",
            "incomplete",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ]
        .iter()
        .map(|s| json!(s))
        .collect(),
        Some("all") => Vec::new(),
        Some("ended") => vec![json!("canceled"), json!("incomplete_expired")],
        Some(one) => vec![json!(one)],
    };
    if !statuses.is_empty() {
        query.filters.push(Filter::Field("status", statuses));
    }
    if let Some(collection) = collection {
        query
            .filters
            .push(Filter::Field("collection_method", vec![json!(collection)]));
    }
    if let Some(range) = period_start {
        query
            .filters
            .push(Filter::FieldRange(bookkeeping::PERIOD_START_PATH, range));
    }
    if let Some(range) = period_end {
        query
            .filters
            .push(Filter::FieldRange(bookkeeping::PERIOD_END_PATH, range));
    }
    ctx.list(query, &paging, "/v1/subscriptions").await
}

async fn search_subscriptions(Call { ctx, params }: Call) -> ApiResult<Json<Value>> {
    ctx.search_resource(params, &SEARCH).await
}

async fn list_subscription_items(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let subscription = params.required_string("subscription")?;
    params.finish()?;
    let record = ctx
        .load("subscription", &subscription, "subscription")
        .await
        .map_err(|_| ApiError::no_such_reference("subscription", &subscription, "subscription"))?;
    let items = record.data["items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let start = match &paging.starting_after {
        Some(after) => {
            items
                .iter()
                .position(|i| i["id"] == json!(after))
                .ok_or_else(|| ApiError::no_such("subscription_item", after, "starting_after"))?
                + 1
        }
        None => 0,
    };
    let end = (start + paging.limit as usize).min(items.len());
    ctx.respond(json!({
        "object": "list",
        "data": items[start.min(end)..end].to_vec(),
        "has_more": end < items.len(),
        "url": "/v1/subscription_items",
    }))
    .await
}

async fn retrieve_subscription_item(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let pointer = ctx.load("subscription_item", &id, "item").await?;
    let subscription = pointer.data["subscription"].as_str().unwrap_or_default();
    let record = ctx.load("subscription", subscription, "item").await?;
    let item = record.data["items"]["data"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == json!(id)).cloned())
        .ok_or_else(|| ApiError::no_such("subscription_item", &id, "item"))?;
    ctx.respond(item).await
}

async fn update_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    // Its customer's clock decides its time: read it first.
    ctx.get(&id).await?;
    let now = ctx.now();
    let request = parse_update(&ctx, &mut params, now).await?;
    params.finish()?;
    let outcome = ctx
        .retry(|| async {
            let record = ctx
                .load("subscription", &id, "subscription_exposed_id")
                .await?;
            update_writes(&ctx, &record, &request, now).await
        })
        .await?;
    // allow_incomplete and default_incomplete apply the update even when
    // its invoice is not paid (past_due): the answer is the subscription.
    // error_if_incomplete and pending_if_incomplete were checked before anything changed.
    match outcome {
        (_, Some(error)) if request.behavior == "error_if_incomplete" => Err(error),
        (doc, _) => ctx.respond(ctx.strip_hidden(doc)).await,
    }
}

async fn cancel_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let options = Cancel {
        invoice_now: params.bool("invoice_now")?.unwrap_or(false),
        prorate: params.bool("prorate")?.unwrap_or(false),
        details: cancellation_details(&mut params)?,
        reason: "cancellation_requested",
    };
    params.finish()?;
    let canceled = ctx
        .retry(|| async {
            let record = ctx
                .load("subscription", &id, "subscription_exposed_id")
                .await?;
            cancel::cancel_now(&ctx, &record, &options).await
        })
        .await?;
    ctx.respond(ctx.strip_hidden(canceled)).await
}

/// A subscription canceled now, as `DELETE` with no options cancels it
/// (a test clock's deletion).
pub async fn cancel_writes(ctx: &Ctx, record: &Record) -> ApiResult<Vec<Write>> {
    Ok(cancel::cancel_now(ctx, record, &Cancel::requested())
        .await?
        .0)
}

/// The latest time a test clock of this subscription may advance to
/// from `from`: two of its shortest interval.
pub fn two_intervals_after(sub: &Value, from: i64) -> i64 {
    sub["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            let (interval, count) = items::interval_of(&item["price"]);
            calendar::add_interval(from, &interval, 2 * count)
        })
        .min()
        .unwrap_or_else(|| two_years_after(from))
}

/// How far a test clock without subscriptions may advance from `from`.
pub fn two_years_after(from: i64) -> i64 {
    calendar::add_interval(from, "year", 2)
}

async fn resume_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let anchor = params.enum_value("billing_cycle_anchor", &["now", "unchanged"])?;
    let proration = params.enum_value(
        "proration_behavior",
        &["always_invoice", "create_prorations", "none"],
    )?;
    params.int("proration_date")?;
    params.finish()?;
    if proration.as_deref().is_some_and(|p| p != "none") && anchor.as_deref() == Some("unchanged") {
        return Err(crate::http::not_emulated::not_emulated(
            "proration_behavior",
            "proration_behavior with billing_cycle_anchor=unchanged on /resume",
            "resume with billing_cycle_anchor=now (the default), which bills a new period at once.",
        ));
    }
    // Its customer's clock decides its time: read it first.
    ctx.get(&id).await?;
    let now = ctx.now();
    let resumed = ctx
        .retry(|| async {
            let record = ctx
                .load("subscription", &id, "subscription_exposed_id")
                .await?;
            let mut doc = record.data.clone();
            status::Machine::apply(&mut doc, Action::Resume)?;
            let mut writes = Vec::new();
            // billing_cycle_anchor=now (Stripe's default): a new cycle
            // from now, invoiced and charged at once.
            if anchor.as_deref() != Some("unchanged") {
                update::restart_cycle(&ctx, &mut doc, "allow_incomplete", now, &mut writes).await?;
            }
            items::index(&mut doc);
            writes.extend(renewal::schedule(&ctx, &doc).await?);
            let mut all =
                ctx.update_with_event(&record, doc.clone(), "customer.subscription.updated");
            all.push(ctx.event("customer.subscription.resumed", &doc, None));
            all.extend(writes);
            Ok((all, doc))
        })
        .await?;
    ctx.respond(ctx.strip_hidden(resumed)).await
}
