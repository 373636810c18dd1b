//! `/v1/subscriptions` (create, retrieve, update, cancel, resume, list,
//! search) and `/v1/subscription_items` (list, retrieve).
//!
//! Creating a subscription bills its first period at once: an invoice is
//! created, finalized and paid through a PaymentIntent charged off-session
//! to the default payment method (amazon_pay through its mandate, or a
//! card). `payment_behavior` says what a failed first payment does. In the
//! current API the billing period lives on each item.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::http::api::{AppState, Call, Ctx, ListParams, take_range};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::expand::strip_hidden;
use crate::http::form::Node;
use crate::http::params::{Params, Patch, Update};
use crate::http::search::{self, FieldKind};
use crate::ids;
use crate::resources::billing::invoices::{self, Line};
use crate::resources::catalog::prices;
use crate::resources::payments::intents;
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::payment_methods;
use crate::resources::payments::setup_intents;
use crate::store::{Filter, ListQuery, Record, Write};

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

// ---- calendar arithmetic -------------------------------------------------

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(next_year, next_month, 1) - days_from_civil(year, month, 1)
}

/// `start` moved on by `count` intervals; months clamp to the month's last
/// day (Jan 31 + 1 month = Feb 28/29), as Stripe's billing does.
pub fn add_interval(start: i64, interval: &str, count: i64) -> i64 {
    let days = start.div_euclid(DAY);
    let seconds = start.rem_euclid(DAY);
    let months = match interval {
        "day" => return start + count * DAY,
        "week" => return start + count * 7 * DAY,
        "year" => count * 12,
        _ => count,
    };
    let (year, month, day) = civil_from_days(days);
    let total = year * 12 + (month - 1) + months;
    let (new_year, new_month) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let new_day = day.min(days_in_month(new_year, new_month));
    days_from_civil(new_year, new_month, new_day) * DAY + seconds
}

// ---- parameters ------------------------------------------------------------

/// One requested item: its price (loaded or built from price_data).
struct ItemSpec {
    id: Option<String>,
    price: Option<Value>,
    quantity: Option<i64>,
    metadata: Option<crate::http::params::MetadataUpdate>,
    deleted: bool,
    writes: Vec<Write>,
}

async fn parse_items(
    ctx: &Ctx,
    params: &mut Params,
    updating: bool,
) -> ApiResult<Option<Vec<ItemSpec>>> {
    let Some(items) = params.object_list("items")? else {
        return Ok(None);
    };
    if items.len() > 20 {
        return Err(ApiError::invalid_param(
            "items",
            "A subscription can have at most 20 items.",
        ));
    }
    let mut specs = Vec::with_capacity(items.len());
    for mut item in items {
        let id = if updating { item.string("id")? } else { None };
        let deleted = if updating {
            item.bool("deleted")?.unwrap_or(false)
        } else {
            false
        };
        if updating {
            item.bool("clear_usage")?;
        }
        let price_param = item.name("price");
        let price_id = item.string("price")?;
        let price_data = item.object("price_data")?;
        let (price, writes) = match (price_id, price_data) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "You may only specify one of these parameters: {price_param}, {}.",
                    item.name("price_data")
                ))
                .with_code("parameters_exclusive")
                .with_param(item.name("price_data")));
            }
            (Some(id), None) => {
                let record = prices::load_active_price(ctx, &id, &price_param).await?;
                (Some(record.data), Vec::new())
            }
            (None, Some(data)) => {
                let (writes, price) = prices::price_from_data(ctx, data, true, false).await?;
                (Some(price), writes)
            }
            (None, None) => (None, Vec::new()),
        };
        if let Some(price) = &price
            && price["type"] != "recurring"
        {
            return Err(ApiError::invalid_param(
                &price_param,
                format!(
                    "The price specified ({}) is set to `type=one_time` but this field only accepts prices with `type=recurring`.",
                    price["id"].as_str().unwrap_or_default()
                ),
            ));
        }
        if price.is_none() && id.is_none() {
            return Err(ApiError::missing_param(&price_param));
        }
        let quantity_param = item.name("quantity");
        let quantity = match item.int("quantity")? {
            Some(q) if q < 0 => {
                return Err(ApiError::invalid_param(
                    item.name("quantity"),
                    "Invalid integer: quantity must be at least 0",
                ));
            }
            other => other,
        };
        if let Some(price) = &price {
            let currency = price["currency"].as_str().unwrap_or("usd");
            crate::core::money::times(
                unit_amount(price),
                quantity.unwrap_or(1),
                &quantity_param,
                currency,
            )?;
        }
        let metadata = item.metadata()?;
        item.finish()?;
        specs.push(ItemSpec {
            id,
            price,
            quantity,
            metadata,
            deleted,
            writes,
        });
    }
    Ok(Some(specs))
}

fn item_document(
    subscription: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
    now: i64,
) -> Value {
    json!({
        "id": format!("si_{}", ids::random_base62(14)),
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": now,
        "current_period_end": period.1,
        "current_period_start": period.0,
        "discounts": [],
        "metadata": {},
        "plan": plan_of(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    })
}

/// A new item from a request's item: its price, quantity (default 1) and metadata.
fn new_item(spec: &ItemSpec, subscription: &str, period: (i64, i64), now: i64) -> ApiResult<Value> {
    let price = spec.price.as_ref().expect("new items carry a price");
    let mut item = item_document(subscription, price, spec.quantity.unwrap_or(1), period, now);
    if let Some(metadata) = &spec.metadata {
        metadata.apply(&mut item["metadata"])?;
    }
    Ok(item)
}

/// What the buyer agrees to be charged each period (an Amazon Pay
/// recurring agreement's amount).
fn agreement_amount(items: &[Value], currency: &str) -> ApiResult<i64> {
    let amounts = items
        .iter()
        .map(|i| {
            let quantity = i["quantity"].as_i64().unwrap_or(1);
            crate::core::money::times(unit_amount(&i["price"]), quantity, "quantity", currency)
        })
        .collect::<ApiResult<Vec<_>>>()?;
    crate::core::money::sum(amounts, "items", currency)
}

/// The legacy `plan` view of a recurring price that items still carry.
fn plan_of(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": price["billing_scheme"],
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": price["metadata"],
        "meter": price["recurring"]["meter"],
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": price["recurring"]["usage_type"],
    })
}

fn unit_amount(price: &Value) -> i64 {
    price["unit_amount"].as_i64().unwrap_or_else(|| {
        price["unit_amount_decimal"]
            .as_str()
            .and_then(|d| d.parse::<f64>().ok())
            .map_or(0, |d| d.round() as i64)
    })
}

fn metered(price: &Value) -> bool {
    price["recurring"]["usage_type"] == "metered"
}

fn interval_of(price: &Value) -> (String, i64) {
    (
        price["recurring"]["interval"]
            .as_str()
            .unwrap_or("month")
            .to_owned(),
        price["recurring"]["interval_count"].as_i64().unwrap_or(1),
    )
}

fn money(amount: i64, currency: &str) -> String {
    let sign = if amount < 0 { "-" } else { "" };
    let amount = amount.abs();
    let symbol = match currency {
        "usd" => "$",
        "eur" => "€",
        "gbp" => "£",
        _ => "",
    };
    format!("{sign}{symbol}{}.{:02}", amount / 100, amount % 100)
}

async fn product_name(ctx: &Ctx, price: &Value) -> ApiResult<String> {
    let id = price["product"].as_str().unwrap_or_default();
    Ok(match ctx.get(id).await? {
        Some(product) => product.data["name"].as_str().unwrap_or(id).to_owned(),
        None => id.to_owned(),
    })
}

/// A line billing one item for a whole period.
async fn period_line(ctx: &Ctx, item: &Value, trial: bool) -> ApiResult<Line> {
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let name = product_name(ctx, price).await?;
    let (interval, count) = interval_of(price);
    let every = if count == 1 {
        interval
    } else {
        format!("every {count} {interval}s")
    };
    let currency = price["currency"].as_str().unwrap_or("usd");
    let (amount, description) = if trial {
        (0, format!("Trial period for {name}"))
    } else if metered(price) {
        // Usage is billed in arrears: nothing is due up front.
        (
            0,
            format!(
                "{quantity} × {name} (at {} / {every}, metered)",
                money(unit_amount(price), currency)
            ),
        )
    } else {
        (
            crate::core::money::times(unit_amount(price), quantity, "quantity", currency)?,
            format!(
                "{quantity} × {name} (at {} / {every})",
                money(unit_amount(price), currency)
            ),
        )
    };
    Ok(Line {
        amount,
        description,
        price: price.clone(),
        quantity,
        period: (
            item["current_period_start"].as_i64().unwrap_or_default(),
            item["current_period_end"].as_i64().unwrap_or_default(),
        ),
        subscription_item: item["id"].as_str().map(str::to_owned),
        proration: false,
    })
}

/// What the payment method to charge is: the subscription's own default,
/// else the customer's invoice default.
pub async fn default_payment_method(ctx: &Ctx, invoice: &Value) -> ApiResult<Option<String>> {
    if let Some(subscription) = invoice["parent"]["subscription_details"]["subscription"].as_str()
        && let Some(record) = ctx.get(subscription).await?
        && let Some(pm) = record.data["default_payment_method"].as_str()
    {
        return Ok(Some(pm.to_owned()));
    }
    let customer = invoice["customer"].as_str().unwrap_or_default();
    Ok(ctx.get(customer).await?.and_then(|c| {
        c.data["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned)
    }))
}

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
    if matches!(
        doc["status"].as_str(),
        Some("incomplete" | "past_due" | "unpaid")
    ) {
        let trialing = doc["trial_end"].as_i64().is_some_and(|end| end > ctx.now());
        doc["status"] = json!(if trialing { "trialing" } else { "active" });
    }
    if doc["payment_settings"]["save_default_payment_method"] == "on_subscription"
        && let Some(pm) = intent["payment_method"].as_str()
    {
        doc["default_payment_method"] = json!(pm);
    }
    writes.extend(ctx.update_with_event(&record, doc, "customer.subscription.updated"));
    Ok(())
}

fn subscription_document(customer: &str, currency: &str, now: i64) -> Value {
    let id = ids::new_id("sub");
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
        "status": "incomplete",
        "status_details": null,
        "test_clock": null,
        "transfer_data": null,
        "trial_end": null,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": null,
    })
}

/// Since 2025-09-30, API-created subscriptions bill in flexible mode.
/// (`updated_at` appears only when a migration sets it.)
fn default_billing_mode() -> Value {
    json!({"flexible": {"proration_discounts": "included"}, "type": "flexible"})
}

/// `billing_mode[type]` and `billing_mode[flexible][proration_discounts]`
/// (subscription create, and Checkout's `subscription_data`). Without
/// discounts the two proration displays are the same here.
pub fn billing_mode_param(params: &mut Params) -> ApiResult<Value> {
    let Some(mut mode) = params.object("billing_mode")? else {
        return Ok(default_billing_mode());
    };
    let kind = mode
        .enum_value("type", &["classic", "flexible"])?
        .ok_or_else(|| ApiError::missing_param(&mode.name("type")))?;
    let flexible_param = mode.name("flexible");
    let value = match (kind.as_str(), mode.object("flexible")?) {
        ("flexible", Some(mut flexible)) => {
            let discounts = flexible
                .enum_value("proration_discounts", &["included", "itemized"])?
                .unwrap_or_else(|| "included".to_owned());
            flexible.finish()?;
            json!({"flexible": {"proration_discounts": discounts}, "type": "flexible"})
        }
        ("flexible", None) => default_billing_mode(),
        (_, Some(_)) => {
            return Err(ApiError::invalid_param(
                flexible_param,
                "`billing_mode[flexible]` can only be set when `billing_mode[type]` is `flexible`.",
            ));
        }
        (_, None) => json!({"flexible": null, "type": "classic"}),
    };
    mode.finish()?;
    Ok(value)
}

/// Hidden index fields lists filter on: the prices and the period.
fn index(doc: &mut Value) {
    let items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
    doc["_twin_prices"] = json!(
        items
            .iter()
            .map(|i| i["price"]["id"].clone())
            .collect::<Vec<_>>()
    );
    let start = items
        .iter()
        .filter_map(|i| i["current_period_start"].as_i64())
        .min();
    let end = items
        .iter()
        .filter_map(|i| i["current_period_end"].as_i64())
        .max();
    doc["_twin_period"] = json!({"start": start, "end": end});
}

fn item_pointer(item: &Value, customer: &str) -> Record {
    let mut record = Record::new(
        "subscription_item",
        json!({"id": item["id"], "object": "subscription_item", "created": item["created"], "subscription": item["subscription"]}),
    );
    record.customer = Some(customer.to_owned());
    record
}

/// `trial_end=now|<timestamp>`.
fn trial_end_param(params: &mut Params, now: i64) -> ApiResult<Option<Option<i64>>> {
    match params.take_node("trial_end") {
        None => Ok(None),
        Some(Node::Str(value)) if value == "now" => Ok(Some(None)),
        Some(Node::Str(value)) => {
            let ts: i64 = value.parse().map_err(|_| {
                ApiError::invalid_param(
                    "trial_end",
                    format!("Invalid trial_end: must be `now` or a timestamp (you sent {value})"),
                )
            })?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: must be an integer Unix timestamp in the future.",
                ));
            }
            if ts > now + MAX_TRIAL_DAYS * DAY {
                return Err(ApiError::invalid_param(
                    "trial_end",
                    "Invalid timestamp: can be no more than two years in the future",
                ));
            }
            Ok(Some(Some(ts)))
        }
        Some(_) => Err(ApiError::invalid_param(
            "trial_end",
            "Invalid trial_end: must be `now` or a timestamp",
        )),
    }
}

fn future_timestamp(params: &mut Params, key: &str, now: i64) -> ApiResult<Option<i64>> {
    match params.int(key)? {
        Some(ts) if ts <= now => Err(ApiError::invalid_param(
            key,
            format!("Invalid timestamp: {key} must be in the future."),
        )),
        other => Ok(other),
    }
}

fn payment_settings(params: &mut Params, doc: &mut Value) -> ApiResult<()> {
    let Some(mut settings) = params.object("payment_settings")? else {
        return Ok(());
    };
    if let Some(types) = settings.string_list("payment_method_types")? {
        intents::check_types(&settings.name("payment_method_types"), &types, "charges")?;
        doc["payment_settings"]["payment_method_types"] = json!(types);
    }
    if let Some(save) =
        settings.enum_value("save_default_payment_method", &["off", "on_subscription"])?
    {
        doc["payment_settings"]["save_default_payment_method"] = json!(save);
    }
    settings.take_node("payment_method_options");
    settings.finish()
}

/// The payment method the subscription charges, checked to belong to the customer.
async fn check_default_payment_method(ctx: &Ctx, pm_id: &str, customer: &str) -> ApiResult<()> {
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("default_payment_method")).await?;
    if pm.data()["customer"].as_str() != Some(customer) {
        return Err(ApiError::invalid_param(
            "default_payment_method",
            format!(
                "The customer does not have a payment method with the ID {pm_id}. The payment method must be attached to the customer."
            ),
        )
        .with_code("resource_missing"));
    }
    Ok(())
}

// ---- create ------------------------------------------------------------------

struct CreateRequest {
    customer: String,
    items: Vec<ItemSpec>,
    default_payment_method: Option<String>,
    off_session: bool,
    behavior: String,
    trial_end: Option<i64>,
    cancel_at_period_end: bool,
    cancel_at: Option<i64>,
    collection_method: String,
    days_until_due: Option<i64>,
    billing_cycle_anchor: Option<i64>,
    currency: Option<String>,
    patch: Patch,
    settings: Value,
    billing_mode: Value,
}

async fn parse_create(ctx: &Ctx, params: &mut Params, now: i64) -> ApiResult<CreateRequest> {
    let customer = params.required_string("customer")?;
    let items = parse_items(ctx, params, false)
        .await?
        .filter(|items| !items.is_empty())
        .ok_or_else(|| ApiError::missing_param("items"))?;
    parse_create_options(params, now, customer, items)
}

fn parse_create_options(
    params: &mut Params,
    now: i64,
    customer: String,
    items: Vec<ItemSpec>,
) -> ApiResult<CreateRequest> {
    let default_payment_method = params.string("default_payment_method")?;
    let off_session = params.bool("off_session")?.unwrap_or(false);
    let behavior = params
        .enum_value("payment_behavior", BEHAVIORS)?
        .unwrap_or_else(|| "allow_incomplete".to_owned());
    if behavior == "pending_if_incomplete" {
        return Err(ApiError::invalid_param(
            "payment_behavior",
            "payment_behavior=pending_if_incomplete is only supported when updating a subscription.",
        ));
    }
    let trial_days = params.int_in("trial_period_days", 0, MAX_TRIAL_DAYS)?;
    let trial_end = trial_end_param(params, now)?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_end"));
    }
    let trial_from_plan = params.bool("trial_from_plan")?.unwrap_or(false);
    if trial_from_plan && (trial_days.is_some() || trial_end.is_some()) {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: trial_from_plan, trial_end, trial_period_days.",
        )
        .with_code("parameters_exclusive")
        .with_param("trial_from_plan"));
    }
    // trial_from_plan: the prices' own trial_period_days.
    let plan_days = items
        .iter()
        .filter_map(|i| i.price.as_ref()?["recurring"]["trial_period_days"].as_i64())
        .max()
        .filter(|_| trial_from_plan);
    let trial_end = match (trial_days.or(plan_days), trial_end) {
        (Some(0), _) => None,
        (Some(days), _) => Some(now + days * DAY),
        (None, Some(end)) => end,
        (None, None) => None,
    };
    let cancel_at_period_end = params.bool("cancel_at_period_end")?.unwrap_or(false);
    let cancel_at = future_timestamp(params, "cancel_at", now)?;
    if cancel_at_period_end && cancel_at.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let collection_method = params
        .enum_value(
            "collection_method",
            &["charge_automatically", "send_invoice"],
        )?
        .unwrap_or_else(|| "charge_automatically".to_owned());
    let days_until_due = params.int_in("days_until_due", 0, 730)?;
    match (collection_method.as_str(), days_until_due) {
        ("send_invoice", None) => return Err(ApiError::missing_param("days_until_due")),
        ("charge_automatically", Some(_)) => {
            return Err(ApiError::invalid_param(
                "days_until_due",
                "Days until due can only be set when collection_method is send_invoice.",
            ));
        }
        _ => {}
    }
    let billing_cycle_anchor = future_timestamp(params, "billing_cycle_anchor", now)?;
    let currency = params
        .string("currency")?
        .map(|c| prices::check_currency("currency", &c))
        .transpose()?;
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    if let Some(description) = params.string("description")? {
        patch.set(&["description"], json!(description));
    }
    let mut settings = json!({"payment_settings": {}});
    payment_settings(params, &mut settings)?;
    let billing_mode = billing_mode_param(params)?;
    params.enum_value(
        "proration_behavior",
        &["always_invoice", "create_prorations", "none"],
    )?;
    // Taxes, discounts and Connect are refused before this (not_emulated);
    // what happens when a trial ends is not emulated either, and changes
    // nothing while renewals do not happen.
    for ignored in ["trial_settings", "collection_paused"] {
        params.take_node(ignored);
    }
    Ok(CreateRequest {
        customer,
        items,
        default_payment_method,
        off_session,
        behavior,
        trial_end,
        cancel_at_period_end,
        cancel_at,
        collection_method,
        days_until_due,
        billing_cycle_anchor,
        currency,
        patch,
        settings: settings["payment_settings"].take(),
        billing_mode,
    })
}

/// The prices' shared currency and interval (Stripe's classic billing needs
/// both to match; flexible billing allows mixed intervals, which stripe-twin
/// does not emulate yet).
fn check_items_agree(
    items: &[ItemSpec],
    currency: Option<&str>,
    billing_mode: &Value,
) -> ApiResult<(String, (String, i64))> {
    let prices: Vec<&Value> = items.iter().filter_map(|i| i.price.as_ref()).collect();
    let first = prices[0];
    let currency_of = |p: &Value| p["currency"].as_str().unwrap_or_default().to_owned();
    for price in &prices {
        if currency_of(price) != currency_of(first) {
            return Err(ApiError::invalid_param(
                "items",
                "Currency and interval fields must match across all prices on this subscription. Found mismatch in currency field.",
            ));
        }
        if interval_of(price) != interval_of(first) {
            let message = if billing_mode["type"] == "flexible" {
                "stripe-twin does not emulate prices with different intervals on one subscription yet (flexible billing mode allows them): use prices of one interval."
            } else {
                "Currency and interval fields must match across all prices on this subscription. Found mismatch in interval field."
            };
            return Err(ApiError::invalid_param("items", message));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for price in &prices {
        if !seen.insert(price["id"].as_str().unwrap_or_default()) {
            return Err(ApiError::invalid_param(
                "items",
                format!(
                    "Cannot add multiple subscription items with the same price: {}",
                    price["id"].as_str().unwrap_or_default()
                ),
            ));
        }
    }
    if let Some(currency) = currency
        && currency != currency_of(first)
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency {currency} does not match the currency of the prices on this subscription ({}).",
                currency_of(first)
            ),
        ));
    }
    Ok((currency_of(first), interval_of(first)))
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

async fn create_subscription(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    crate::http::expand::check_paths("subscription", &ctx.expand)?;
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
    ctx.respond(strip_hidden(created)).await
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

async fn create_writes(
    ctx: &Ctx,
    request: &CreateRequest,
    customer_record: &Record,
    currency: &str,
    (interval, count): (&str, i64),
    now: i64,
) -> ApiResult<(Vec<Write>, Value)> {
    let mut customer = customer_record.data.clone();
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
    let mut sub = subscription_document(&request.customer, currency, now);
    let sub_id = sub["id"].as_str().unwrap_or_default().to_owned();
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
    let mut lines = Vec::new();
    for item in &items {
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
    let payment = invoices::finalize(ctx, &mut invoice, &mut customer, &mut events);
    let pm_id = match &request.default_payment_method {
        Some(pm) => Some(pm.clone()),
        None => customer["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned),
    };
    let mut tail = Vec::new();
    let mut pending_setup_intent = None;
    sub["status"] = json!(if trial.is_some() {
        "trialing"
    } else {
        "active"
    });
    match payment {
        None => {
            // Nothing due (a trial, a free price): paid on the spot.
            invoices::mark_paid(ctx, &mut invoice, None, &mut events);
            if trial.is_some() && pm_id.is_none() && request.behavior == "default_incomplete" {
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
                intent["_twin_agreement"] = json!({
                    "amount": agreement_amount(&items, currency)?,
                    "currency": currency, "interval": interval, "interval_count": count,
                });
                sub["pending_setup_intent"] = intent["id"].clone();
                tail.push(ctx.event("setup_intent.created", &intent, None));
                pending_setup_intent = Some(intent);
            }
        }
        Some((mut intent, mut invoice_payment)) => {
            let charge_now = request.collection_method == "charge_automatically";
            if !charge_now {
                // send_invoice: the customer pays later; the subscription is active meanwhile.
            } else if request.behavior == "default_incomplete" {
                sub["status"] = json!("incomplete");
                if let Some(pm) = &pm_id {
                    intent["payment_method"] = json!(pm);
                    intent["status"] = json!("requires_confirmation");
                }
            } else if let Some(pm) = &pm_id {
                let pm =
                    payment_methods::resolve(ctx, pm, Named::InParam("default_payment_method"))
                        .await?;
                let created_event = ctx.event("payment_intent.created", &intent, None);
                let mut moves = Vec::new();
                // Without off_session=true the customer is present and can
                // authenticate; amazon_pay always charges through its mandate.
                let off_session = request.off_session || pm.data()["type"] == "amazon_pay";
                let attempted =
                    payment_intents::attempt(ctx, intent.clone(), &pm, off_session, &mut moves)
                        .await?;
                events.push(created_event);
                match attempted {
                    Attempted::Succeeded(done) => {
                        events.extend(moves);
                        invoices::mark_paid(
                            ctx,
                            &mut invoice,
                            Some(&mut invoice_payment),
                            &mut events,
                        );
                        intent = done;
                    }
                    Attempted::Failed(failed, error) => {
                        if request.behavior == "error_if_incomplete" {
                            return Err(error);
                        }
                        events.extend(moves);
                        invoices::mark_failed(ctx, &mut invoice, &mut events);
                        sub["status"] = json!("incomplete");
                        intent = failed;
                    }
                    Attempted::RequiresAction(waiting) => {
                        if request.behavior == "error_if_incomplete" {
                            return Err(requires_action_error());
                        }
                        events.extend(moves);
                        sub["status"] = json!("incomplete");
                        intent = waiting;
                    }
                }
                tail.push(Write::Insert(Record::new("payment_intent", intent.clone())));
                tail.push(Write::Insert(invoices::payment_record(
                    &invoice,
                    invoice_payment,
                )));
                return finish_create(
                    ctx,
                    sub,
                    invoice,
                    customer_record,
                    customer,
                    writes_prices,
                    events,
                    tail,
                    None,
                );
            } else if request.behavior == "error_if_incomplete" {
                return Err(no_payment_method());
            } else {
                sub["status"] = json!("incomplete");
            }
            events.push(ctx.event("payment_intent.created", &intent, None));
            tail.push(Write::Insert(Record::new("payment_intent", intent)));
            tail.push(Write::Insert(invoices::payment_record(
                &invoice,
                invoice_payment,
            )));
        }
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
}

/// Orders the creation's writes as Stripe orders its events: the
/// subscription first, then its invoice's life, then the payment.
#[allow(clippy::too_many_arguments)]
fn finish_create(
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
    Ok((writes, sub))
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
    ctx.respond(strip_hidden(record.data)).await
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
    params.string("test_clock")?;
    params.take_node("automatic_tax");
    params.finish()?;
    let mut query = ListQuery::new("subscription");
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(price) = price {
        query
            .filters
            .push(Filter::ArrayContains("_twin_prices", price));
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
            .push(Filter::FieldRange("_twin_period.start", range));
    }
    if let Some(range) = period_end {
        query
            .filters
            .push(Filter::FieldRange("_twin_period.end", range));
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

// ---- update, cancel, resume -----------------------------------------------------

fn canceled_error() -> ApiError {
    ApiError::invalid(
        "A canceled subscription can only update its cancellation_details and metadata.",
    )
}

/// Credit for the unused part of the current period, and the charge for
/// the rest of it at the new terms, as proration lines.
async fn proration_lines(
    ctx: &Ctx,
    old: &[Value],
    new: &[Value],
    now: i64,
) -> ApiResult<Vec<Line>> {
    let mut lines = Vec::new();
    let quantity = |item: &Value| item["quantity"].as_i64().unwrap_or(1);
    let same = |a: &Value, b: &Value| {
        a["id"] == b["id"] && a["price"]["id"] == b["price"]["id"] && quantity(a) == quantity(b)
    };
    for (items, others, sign, prefix) in [
        (old, new, -1, "Unused time on"),
        (new, old, 1, "Remaining time on"),
    ] {
        for item in items {
            if others.iter().any(|o| same(item, o)) || metered(&item["price"]) {
                continue;
            }
            let start = item["current_period_start"].as_i64().unwrap_or(now);
            let end = item["current_period_end"].as_i64().unwrap_or(now);
            if end <= now || end <= start {
                continue;
            }
            let mut line = period_line(ctx, item, false).await?;
            line.amount = sign * crate::core::money::prorate(line.amount, end - now, end - start);
            line.description = format!("{prefix} {}", line.description);
            line.period = (now, end);
            line.proration = true;
            lines.push(line);
        }
    }
    Ok(lines)
}

fn stored_line(line: &Line) -> Value {
    json!({
        "amount": line.amount, "description": line.description, "price": line.price,
        "quantity": line.quantity, "period": [line.period.0, line.period.1],
        "subscription_item": line.subscription_item,
    })
}

fn line_from_stored(value: &Value) -> Line {
    Line {
        amount: value["amount"].as_i64().unwrap_or_default(),
        description: value["description"].as_str().unwrap_or_default().to_owned(),
        price: value["price"].clone(),
        quantity: value["quantity"].as_i64().unwrap_or(1),
        period: (
            value["period"][0].as_i64().unwrap_or_default(),
            value["period"][1].as_i64().unwrap_or_default(),
        ),
        subscription_item: value["subscription_item"].as_str().map(str::to_owned),
        proration: true,
    }
}

/// Invoices `lines` now and tries to collect it: the subscription update's
/// or cancellation's invoice. Returns the writes, the invoice's id and the
/// error when a charge failed.
async fn invoice_now(
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
    let payment = invoices::finalize(ctx, &mut invoice, &mut customer, &mut events);
    sub["latest_invoice"] = invoice["id"].clone();
    let mut failure = None;
    let mut tail = Vec::new();
    match payment {
        None => invoices::mark_paid(ctx, &mut invoice, None, &mut events),
        Some((intent, mut invoice_payment)) => {
            events.push(ctx.event("payment_intent.created", &intent, None));
            let pm_id = match sub["default_payment_method"].as_str() {
                Some(pm) => Some(pm.to_owned()),
                None => customer["invoice_settings"]["default_payment_method"]
                    .as_str()
                    .map(str::to_owned),
            };
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
                        );
                        intent = done;
                    }
                    Attempted::Failed(failed, error) => {
                        invoices::mark_failed(ctx, &mut invoice, &mut events);
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

struct UpdateRequest {
    patch: Patch,
    items: Option<Vec<ItemSpec>>,
    default_payment_method: Option<Update<String>>,
    cancel_at_period_end: Option<bool>,
    cancel_at: Option<Update<i64>>,
    proration_behavior: String,
    behavior: String,
    trial_end: Option<Option<i64>>,
    settings: Value,
    cancellation_details: Option<Value>,
    collection_method: Option<String>,
    days_until_due: Option<i64>,
}

async fn parse_update(ctx: &Ctx, params: &mut Params, now: i64) -> ApiResult<UpdateRequest> {
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    if let Some(description) = params.nullable_string("description")? {
        patch.set(
            &["description"],
            match description {
                Update::Set(d) => json!(d),
                Update::Unset => Value::Null,
            },
        );
    }
    let items = parse_items(ctx, params, true).await?;
    let default_payment_method = params.nullable_string("default_payment_method")?;
    let cancel_at_period_end = params.bool("cancel_at_period_end")?;
    let cancel_at = match params.nullable_string("cancel_at")? {
        None => None,
        Some(Update::Unset) => Some(Update::Unset),
        Some(Update::Set(value)) => {
            let ts: i64 = value
                .parse()
                .map_err(|_| ApiError::invalid_param("cancel_at", "Invalid integer"))?;
            if ts <= now {
                return Err(ApiError::invalid_param(
                    "cancel_at",
                    "Invalid timestamp: cancel_at must be in the future.",
                ));
            }
            Some(Update::Set(ts))
        }
    };
    if cancel_at_period_end == Some(true) && matches!(cancel_at, Some(Update::Set(_))) {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: cancel_at, cancel_at_period_end.",
        )
        .with_code("parameters_exclusive")
        .with_param("cancel_at"));
    }
    let proration_behavior = params
        .enum_value(
            "proration_behavior",
            &["always_invoice", "create_prorations", "none"],
        )?
        .unwrap_or_else(|| "create_prorations".to_owned());
    params.int("proration_date")?;
    let behavior = params
        .enum_value("payment_behavior", BEHAVIORS)?
        .unwrap_or_else(|| "allow_incomplete".to_owned());
    params.bool("off_session")?;
    let trial_end = trial_end_param(params, now)?;
    let mut settings = json!({"payment_settings": {}});
    payment_settings(params, &mut settings)?;
    let cancellation_details = cancellation_details(params)?;
    let collection_method = params.enum_value(
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?;
    let days_until_due = params.int_in("days_until_due", 0, 730)?;
    if params
        .enum_value("billing_cycle_anchor", &["now", "unchanged"])?
        .as_deref()
        == Some("now")
    {
        return Err(ApiError::invalid_param(
            "billing_cycle_anchor",
            "stripe-twin does not emulate resetting the billing cycle (billing_cycle_anchor=now) on updates yet.",
        ));
    }
    for ignored in ["trial_settings", "trial_from_plan"] {
        params.take_node(ignored);
    }
    Ok(UpdateRequest {
        patch,
        items,
        default_payment_method,
        cancel_at_period_end,
        cancel_at,
        proration_behavior,
        behavior,
        trial_end,
        settings: settings["payment_settings"].take(),
        cancellation_details,
        collection_method,
        days_until_due,
    })
}

fn cancellation_details(params: &mut Params) -> ApiResult<Option<Value>> {
    let Some(mut details) = params.object("cancellation_details")? else {
        return Ok(None);
    };
    let comment = details.string("comment")?;
    let feedback = details.enum_value(
        "feedback",
        &[
            "customer_service",
            "low_quality",
            "missing_features",
            "other",
            "switched_service",
            "too_complex",
            "too_expensive",
            "unused",
        ],
    )?;
    details.finish()?;
    Ok(Some(json!({"comment": comment, "feedback": feedback})))
}

async fn update_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
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
        (doc, _) => ctx.respond(strip_hidden(doc)).await,
    }
}

async fn update_writes(
    ctx: &Ctx,
    record: &Record,
    request: &UpdateRequest,
    now: i64,
) -> ApiResult<(Vec<Write>, (Value, Option<ApiError>))> {
    let mut doc = record.data.clone();
    let status = doc["status"].as_str().unwrap_or_default().to_owned();
    let customer = doc["customer"].as_str().unwrap_or_default().to_owned();
    let ended = matches!(status.as_str(), "canceled" | "incomplete_expired");
    let only_notes = request.items.is_none()
        && request.default_payment_method.is_none()
        && request.cancel_at_period_end.is_none()
        && request.cancel_at.is_none()
        && request.trial_end.is_none()
        && request.collection_method.is_none()
        && request.days_until_due.is_none()
        && !request.patch.touches("description")
        && request.settings.as_object().is_none_or(|s| s.is_empty());
    if ended && !only_notes {
        return Err(canceled_error());
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
    match &request.default_payment_method {
        Some(Update::Set(pm)) => {
            check_default_payment_method(ctx, pm, &customer).await?;
            doc["default_payment_method"] = json!(pm);
        }
        Some(Update::Unset) => doc["default_payment_method"] = Value::Null,
        None => {}
    }
    let period_end = doc["_twin_period"]["end"].as_i64().unwrap_or(now);
    match (request.cancel_at_period_end, &request.cancel_at) {
        (Some(true), _) => {
            doc["cancel_at_period_end"] = json!(true);
            doc["cancel_at"] = json!(period_end);
        }
        (Some(false), None) => {
            doc["cancel_at_period_end"] = json!(false);
            doc["cancel_at"] = Value::Null;
        }
        (_, Some(Update::Set(at))) => {
            doc["cancel_at_period_end"] = json!(false);
            doc["cancel_at"] = json!(at);
        }
        (_, Some(Update::Unset)) => {
            doc["cancel_at_period_end"] = json!(false);
            doc["cancel_at"] = Value::Null;
        }
        _ => {}
    }
    let mut ending_trial = false;
    if let Some(end) = request.trial_end {
        match end {
            None => {
                doc["trial_end"] = json!(now);
                if doc["status"] == "trialing" {
                    doc["status"] = json!("active");
                    ending_trial = true;
                }
            }
            Some(end) => {
                doc["trial_end"] = json!(end);
                if doc["trial_start"].is_null() {
                    doc["trial_start"] = json!(now);
                }
                doc["status"] = json!("trialing");
                for item in doc["items"]["data"].as_array_mut().into_iter().flatten() {
                    item["current_period_end"] = json!(end);
                }
            }
        }
    }
    let mut writes = Vec::new();
    let mut failure = None;
    if let Some(specs) = &request.items {
        let old_items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
        let mut new_items = old_items.clone();
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
                    writes.push(Write::Insert(item_pointer(&item, &customer)));
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
        let interval_changed =
            interval_of(&old_items[0]["price"]) != interval_of(&new_items[0]["price"]);
        let mut lines = if request.proration_behavior == "none" || status == "trialing" {
            Vec::new()
        } else {
            proration_lines(ctx, &old_items, &new_items, now).await?
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
        let invoice_it = interval_changed || request.proration_behavior == "always_invoice";
        if invoice_it {
            let mut all: Vec<Line> = doc["_twin_pending_prorations"]
                .as_array()
                .map(|p| p.iter().map(line_from_stored).collect())
                .unwrap_or_default();
            all.extend(lines);
            if let Value::Object(map) = &mut doc {
                map.remove("_twin_pending_prorations");
            }
            if !all.is_empty() {
                failure = bill_update(ctx, &mut doc, all, &request.behavior, &mut writes).await?;
                if failure.is_some() && doc["status"] == "active" {
                    doc["status"] = json!("past_due");
                }
            }
        } else if !lines.is_empty() {
            let mut pending = doc["_twin_pending_prorations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            pending.extend(lines.iter().map(stored_line));
            doc["_twin_pending_prorations"] = json!(pending);
        }
    }
    // (Unless the items' new interval already restarted and billed the cycle.)
    if ending_trial && doc["latest_invoice"] == record.data["latest_invoice"] {
        // The paid period starts now: a new billing cycle, invoiced in full.
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
        failure = bill_update(ctx, &mut doc, lines, &request.behavior, &mut writes).await?;
        if failure.is_some() {
            doc["status"] = json!("past_due");
        }
    }
    index(&mut doc);
    let mut all = ctx.update_with_event(record, doc.clone(), "customer.subscription.updated");
    if all.len() == 1 && doc == record.data {
        all.clear();
    }
    all.extend(writes);
    Ok((all, (doc, failure)))
}

/// Invoices an update's `lines` now. Under error_if_incomplete and
/// pending_if_incomplete a failed charge refuses the whole update, so the
/// charge is tried on a copy before anything is kept.
async fn bill_update(
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

async fn cancel_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let invoice_now_flag = params.bool("invoice_now")?.unwrap_or(false);
    let prorate = params.bool("prorate")?.unwrap_or(false);
    let details = cancellation_details(&mut params)?;
    params.finish()?;
    let now = ctx.now();
    let canceled = ctx
        .retry(|| async {
            let record = ctx
                .load("subscription", &id, "subscription_exposed_id")
                .await?;
            let mut doc = record.data.clone();
            if matches!(
                doc["status"].as_str(),
                Some("canceled" | "incomplete_expired")
            ) {
                return Err(
                    ApiError::no_such("subscription", &id, "subscription_exposed_id")
                        .with_status(axum::http::StatusCode::NOT_FOUND),
                );
            }
            let mut writes = Vec::new();
            let mut lines: Vec<Line> = doc["_twin_pending_prorations"]
                .as_array()
                .map(|p| p.iter().map(line_from_stored).collect())
                .unwrap_or_default();
            if prorate && matches!(doc["status"].as_str(), Some("active" | "past_due")) {
                let items = doc["items"]["data"].as_array().cloned().unwrap_or_default();
                lines.extend(proration_lines(&ctx, &items, &[], now).await?);
            }
            if let Value::Object(map) = &mut doc {
                map.remove("_twin_pending_prorations");
            }
            if invoice_now_flag && !lines.is_empty() {
                invoice_now(&ctx, &mut doc, lines, "subscription_cycle", &mut writes).await?;
            }
            // An `incomplete` subscription never started: Stripe ends it as
            // `incomplete_expired` and voids the first invoice it waited on.
            if doc["status"] == "incomplete" {
                doc["status"] = json!("incomplete_expired");
                if let Some(invoice) = doc["latest_invoice"].as_str() {
                    invoices::void_open(&ctx, invoice, &mut writes).await?;
                }
            } else {
                doc["status"] = json!("canceled");
            }
            doc["canceled_at"] = json!(now);
            doc["ended_at"] = json!(now);
            doc["cancel_at_period_end"] = json!(false);
            doc["cancellation_details"]["reason"] = json!("cancellation_requested");
            if let Some(details) = &details {
                doc["cancellation_details"]["comment"] = details["comment"].clone();
                doc["cancellation_details"]["feedback"] = details["feedback"].clone();
            }
            let mut all = vec![
                Write::Update(record.with_data(doc.clone())),
                ctx.event("customer.subscription.deleted", &doc, None),
            ];
            all.extend(writes);
            Ok((all, doc))
        })
        .await?;
    ctx.respond(strip_hidden(canceled)).await
}

async fn resume_subscription(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    params.enum_value("billing_cycle_anchor", &["now", "unchanged"])?;
    params.enum_value(
        "proration_behavior",
        &["always_invoice", "create_prorations", "none"],
    )?;
    params.int("proration_date")?;
    params.finish()?;
    let resumed = ctx
        .mutate("subscription", &id, "subscription_exposed_id", |record| {
            if record.data["status"] != "paused" {
                return Err(ApiError::invalid(format!(
                    "Only subscriptions with `status=paused` can be resumed; this subscription's status is {}.",
                    record.data["status"].as_str().unwrap_or_default()
                )));
            }
            let mut doc = record.data.clone();
            doc["status"] = json!("active");
            let mut writes = ctx.update_with_event(&record, doc.clone(), "customer.subscription.updated");
            writes.push(ctx.event("customer.subscription.resumed", &doc, None));
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(strip_hidden(resumed)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_calendar() {
        // 2026-01-31 12:00:00 UTC
        let jan31 = days_from_civil(2026, 1, 31) * DAY + 12 * 3600;
        assert_eq!(
            civil_from_days(add_interval(jan31, "month", 1).div_euclid(DAY)),
            (2026, 2, 28)
        );
        assert_eq!(
            civil_from_days(add_interval(jan31, "month", 13).div_euclid(DAY)),
            (2027, 2, 28)
        );
        assert_eq!(add_interval(jan31, "month", 1).rem_euclid(DAY), 12 * 3600);
        let leap = days_from_civil(2028, 2, 29) * DAY;
        assert_eq!(
            civil_from_days(add_interval(leap, "year", 1).div_euclid(DAY)),
            (2029, 2, 28)
        );
        assert_eq!(add_interval(leap, "week", 2) - leap, 14 * DAY);
        assert_eq!(add_interval(leap, "day", 3) - leap, 3 * DAY);
        for days in [-1000, 0, 19_000, 20_513, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
