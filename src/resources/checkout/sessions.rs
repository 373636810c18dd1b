//! `/v1/checkout/sessions`: create, retrieve, list, expire and line items,
//! and what happens when the buyer pays on the hosted page
//! (`checkout_page.rs`).
//!
//! A session is `open` until the buyer completes it (`complete`) or it
//! expires (`expired`, by `/expire` or at `expires_at`, when the scheduler
//! runs the due item its creation stored). A setup-mode
//! session's SetupIntent is made with it; as in the current API, the
//! PaymentIntent (payment mode) or Subscription (subscription mode) is made
//! when the buyer first submits the page. The intent carries the session's ID, so
//! whichever path makes it succeed (the page itself, or the Amazon Pay /
//! 3-D Secure page after a redirect) completes the session in the same
//! transaction.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::http::api::{self, AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::expand::strip_hidden;
use crate::http::form::Node;
use crate::http::params::{Params, Patch};
use crate::ids;
use crate::resources::billing::invoices;
use crate::resources::billing::subscriptions;
use crate::resources::catalog::prices;
use crate::resources::customers;
use crate::resources::payments::intents;
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::payment_methods::{self, Resolved};
use crate::resources::payments::setup_intents::{self, Confirmed};
use crate::store::{DueItem, Filter, ListQuery, Record, Write};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/checkout/sessions",
            get(list_checkout_sessions).post(create_checkout_session),
        )
        .route(
            "/v1/checkout/sessions/{session}",
            get(retrieve_checkout_session),
        )
        .route(
            "/v1/checkout/sessions/{session}/expire",
            post(expire_checkout_session),
        )
        .route(
            "/v1/checkout/sessions/{session}/line_items",
            get(list_line_items),
        )
}

pub const OBJECT: &str = "checkout.session";
const MODES: &[&str] = &["payment", "setup", "subscription"];
const UI_MODES: &[&str] = &["hosted_page", "embedded_page", "elements", "form"];
const MIN_LIFETIME: i64 = 30 * 60;
const MAX_LIFETIME: i64 = 24 * 60 * 60;
const MAX_PAYMENT_LINE_ITEMS: usize = 100;
const MAX_SUBSCRIPTION_LINE_ITEMS: usize = 20;
/// The placeholder Stripe replaces in `success_url` and `return_url`.
pub const SESSION_ID_TEMPLATE: &str = "{CHECKOUT_SESSION_ID}";

/// The page a session is paid on, on this server: its path carries the
/// session's page secret, so the id seen in events and webhooks is not
/// enough to open and pay it (Stripe's URLs carry a secret too).
pub fn page_url(origin: &str, session: &Value) -> String {
    format!(
        "{origin}/c/pay/{}/{}",
        session["id"].as_str().unwrap_or_default(),
        page_secret(session)
    )
}

/// Where the Amazon Pay / 3-D Secure page sends the buyer back to.
fn intent_return_url(origin: &str, session: &Value) -> String {
    format!("{}/return", page_url(origin, session))
}

/// The secret of a session's page (an embedded session's client secret
/// ends with it).
pub fn page_secret(session: &Value) -> &str {
    session["_twin_page_secret"].as_str().unwrap_or_default()
}

/// Whether `secret` opens the session's page (compared in constant time).
pub fn opens_page(session: &Value, secret: &str) -> bool {
    let known = page_secret(session).as_bytes();
    !known.is_empty()
        && known.len() == secret.len()
        && known
            .iter()
            .zip(secret.as_bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

// ---- create ------------------------------------------------------------------

/// One line item as requested: its price (loaded, or made from price_data)
/// and quantity.
struct LineItem {
    price: Value,
    quantity: i64,
    description: String,
}

fn exclusive(first: &str, second: &str) -> ApiError {
    ApiError::invalid(format!(
        "You may only specify one of these parameters: {first}, {second}."
    ))
    .with_code("parameters_exclusive")
    .with_param(second.to_owned())
}

/// A parameter that only some modes take.
fn not_in_mode(param: &str, mode: &str) -> ApiError {
    ApiError::invalid_param(
        param,
        format!("You can not pass `{param}` in `{mode}` mode."),
    )
}

async fn parse_line_items(
    ctx: &Ctx,
    params: &mut Params,
    mode: &str,
    writes: &mut Vec<Write>,
) -> ApiResult<Vec<LineItem>> {
    let Some(items) = params.object_list("line_items")? else {
        return Ok(Vec::new());
    };
    let max = if mode == "subscription" {
        MAX_SUBSCRIPTION_LINE_ITEMS
    } else {
        MAX_PAYMENT_LINE_ITEMS
    };
    if items.len() > max {
        return Err(ApiError::invalid_param(
            "line_items",
            format!("You may only specify up to {max} line items in `{mode}` mode."),
        ));
    }
    let mut parsed = Vec::with_capacity(items.len());
    for mut item in items {
        let price_param = item.name("price");
        let data_param = item.name("price_data");
        let price = match (item.string("price")?, item.object("price_data")?) {
            (Some(_), Some(_)) => return Err(exclusive(&price_param, &data_param)),
            (Some(id), None) => {
                let record = prices::load_active_price(ctx, &id, &price_param).await?;
                record.data
            }
            (None, Some(data)) => {
                let (price_writes, price) = prices::price_from_data(ctx, data, false, true).await?;
                writes.extend(price_writes);
                price
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "You must provide either price or price_data for each line item when using prices.",
                )
                .with_param(item.path().to_owned()));
            }
        };
        let quantity = match item.int("quantity")? {
            Some(quantity) if quantity < 1 => {
                return Err(ApiError::invalid_param(
                    item.name("quantity"),
                    "This value must be greater than or equal to 1.",
                )
                .with_code("parameter_invalid_integer"));
            }
            Some(quantity) if quantity > 999_999 => {
                return Err(ApiError::invalid_param(
                    item.name("quantity"),
                    "This value must be less than or equal to 999999.",
                )
                .with_code("parameter_invalid_integer"));
            }
            Some(quantity) => quantity,
            None => {
                return Err(ApiError::invalid_param(
                    item.path(),
                    format!("Quantity is required. Add `quantity` to `{}`", item.path()),
                ));
            }
        };
        if price["unit_amount"].is_null() {
            return Err(ApiError::invalid_param(
                &price_param,
                "stripe-twin emulates prices with a unit_amount only (no tiers or custom amounts) in Checkout.",
            ));
        }
        // Tax rates and adjustable quantities are refused before this
        // (not_emulated) unless they ask for nothing.
        item.finish()?;
        let description = match price["product"].as_str() {
            Some(product) => ctx
                .get(product)
                .await?
                .and_then(|p| p.data["name"].as_str().map(str::to_owned))
                .or_else(|| {
                    // A product made in this same request by price_data.
                    writes.iter().find_map(|w| match w {
                        Write::Insert(r) if r.id == product => {
                            r.data["name"].as_str().map(str::to_owned)
                        }
                        _ => None,
                    })
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        parsed.push(LineItem {
            price,
            quantity,
            description,
        });
    }
    Ok(parsed)
}

/// Stripe's line item object (`item`).
fn item_document(item: &LineItem) -> Value {
    let amount = item.price["unit_amount"].as_i64().unwrap_or_default() * item.quantity;
    json!({
        "id": ids::new_id("li"),
        "object": "item",
        "adjustable_quantity": null,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": item.price["currency"],
        "description": item.description,
        "metadata": {},
        "price": strip_hidden(item.price.clone()),
        "quantity": item.quantity,
    })
}

/// The currency every line item shares, checked against `currency`.
fn line_items_currency(items: &[LineItem], currency: Option<&str>) -> ApiResult<Option<String>> {
    let Some(first) = items.first() else {
        return Ok(currency.map(str::to_owned));
    };
    let first_currency = first.price["currency"].as_str().unwrap_or_default();
    for (index, item) in items.iter().enumerate() {
        if item.price["currency"] != json!(first_currency) {
            return Err(ApiError::invalid_param(
                format!("line_items[{index}][price]"),
                "All line items must use the same currency: stripe-twin does not emulate multi-currency prices (currency_options).",
            ));
        }
    }
    if let Some(currency) = currency
        && currency != first_currency
    {
        return Err(ApiError::invalid_param(
            "currency",
            format!(
                "The currency {currency} does not match the currency of the line items ({first_currency}); stripe-twin does not emulate multi-currency prices (currency_options)."
            ),
        ));
    }
    Ok(Some(first_currency.to_owned()))
}

/// Which prices each mode accepts.
fn check_items_for_mode(items: &[LineItem], mode: &str) -> ApiResult<()> {
    let recurring = |item: &LineItem| item.price["type"] == "recurring";
    match mode {
        "setup" if !items.is_empty() => Err(not_in_mode("line_items", "setup")),
        "payment" | "subscription" if items.is_empty() => {
            Err(ApiError::missing_param("line_items"))
        }
        "payment" => match items.iter().position(recurring) {
            Some(index) => Err(ApiError::invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.",
            )
            .with_param(format!("line_items[{index}][price]"))),
            None => Ok(()),
        },
        "subscription" => {
            if !items.iter().any(recurring) {
                return Err(ApiError::invalid(
                    "You must provide at least one recurring price in `subscription` mode when using prices.",
                )
                .with_param("line_items"));
            }
            if let Some(index) = items.iter().position(|i| !recurring(i)) {
                return Err(ApiError::invalid_param(
                    format!("line_items[{index}][price]"),
                    "stripe-twin does not emulate one-time prices in `subscription` mode (Stripe adds them to the first invoice): use recurring prices only.",
                ));
            }
            let interval = |item: &LineItem| {
                (
                    item.price["recurring"]["interval"].clone(),
                    item.price["recurring"]["interval_count"].clone(),
                )
            };
            if let Some(index) = items
                .iter()
                .position(|i| interval(i) != interval(&items[0]))
            {
                return Err(ApiError::invalid_param(
                    format!("line_items[{index}][price]"),
                    "All prices in `subscription` mode must have the same billing interval.",
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (index, item) in items.iter().enumerate() {
                if !seen.insert(item.price["id"].as_str().unwrap_or_default()) {
                    return Err(ApiError::invalid_param(
                        format!("line_items[{index}][price]"),
                        format!(
                            "Cannot add multiple subscription items with the same price: {}",
                            item.price["id"].as_str().unwrap_or_default()
                        ),
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `setup_intent_data`, `payment_intent_data` or `subscription_data`:
/// taken only in their own mode.
fn mode_data(params: &mut Params, key: &str, owner: &str, mode: &str) -> ApiResult<Option<Params>> {
    let data = params.object(key)?;
    if data.is_some() && mode != owner {
        return Err(not_in_mode(key, mode));
    }
    Ok(data)
}

fn metadata_of(params: &mut Params) -> ApiResult<Value> {
    let mut holder = json!({"metadata": {}});
    let mut patch = Patch::default();
    patch.set_metadata(params.metadata()?);
    patch.apply(&mut holder)?;
    Ok(holder["metadata"].take())
}

fn setup_intent_data(data: Option<Params>) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    data.finish()?;
    Ok(json!({"description": description, "metadata": metadata}))
}

fn payment_intent_data(data: Option<Params>) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let setup_future_usage =
        data.enum_value("setup_future_usage", &["off_session", "on_session"])?;
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    let receipt_email = data.string("receipt_email")?;
    let statement_descriptor = data.string("statement_descriptor")?;
    let suffix = data.string("statement_descriptor_suffix")?;
    // `manual` was refused before this (not_emulated).
    data.enum_value(
        "capture_method",
        &["automatic", "automatic_async", "manual"],
    )?;
    data.finish()?;
    Ok(json!({
        "setup_future_usage": setup_future_usage,
        "description": description,
        "metadata": metadata,
        "receipt_email": receipt_email,
        "statement_descriptor": statement_descriptor,
        "statement_descriptor_suffix": suffix,
    }))
}

/// `subscription_data`, kept as the subscription create parameters it
/// becomes when the buyer pays.
fn subscription_data(data: Option<Params>, now: i64) -> ApiResult<Value> {
    let Some(mut data) = data else {
        return Ok(json!({}));
    };
    let trial_days = data.int_in("trial_period_days", 1, 730)?;
    let trial_end = data.int("trial_end")?;
    if trial_days.is_some() && trial_end.is_some() {
        return Err(exclusive(
            &data.name("trial_end"),
            &data.name("trial_period_days"),
        ));
    }
    if let Some(end) = trial_end
        && end < now + 2 * 24 * 60 * 60
    {
        return Err(ApiError::invalid_param(
            data.name("trial_end"),
            "The `trial_end` date has to be at least 2 days in the future.",
        ));
    }
    let description = data.string("description")?;
    let metadata = metadata_of(&mut data)?;
    let billing_mode = crate::resources::billing::subscriptions::billing_mode_param(&mut data)?;
    data.finish()?;
    Ok(json!({
        "trial_period_days": trial_days,
        "trial_end": trial_end,
        "description": description,
        "metadata": metadata,
        "billing_mode": billing_mode,
    }))
}

fn new_session_document(mode: &str, now: i64) -> Value {
    let id = format!("cs_test_{}", ids::random_base62(58));
    json!({
        "id": id,
        "object": OBJECT,
        "adaptive_pricing": {"enabled": false},
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": null,
        "amount_total": null,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null,
        "cancel_url": null,
        "client_reference_id": null,
        "client_secret": null,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": now,
        "currency": null,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": {
            "after_submit": null,
            "shipping_address": null,
            "submit": null,
            "terms_of_service_acceptance": null,
        },
        "customer": null,
        "customer_account": null,
        "customer_creation": null,
        "customer_details": null,
        "customer_email": null,
        "discounts": [],
        "expires_at": now + MAX_LIFETIME,
        "integration_identifier": null,
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": null,
        "managed_payments": {"enabled": false},
        "metadata": {},
        "mode": mode,
        "optional_items": null,
        "origin_context": null,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": [],
        "payment_status": if mode == "setup" { "no_payment_required" } else { "unpaid" },
        "permissions": null,
        "phone_number_collection": {"enabled": false},
        "recovered_from": null,
        "saved_payment_method_options": null,
        "setup_intent": null,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": null,
        "total_details": null,
        "ui_mode": "hosted_page",
        "url": null,
        "wallet_options": null,
    })
}

/// `ui_mode` and where the buyer goes: `success_url` / `cancel_url` for
/// the hosted page, `return_url` / `redirect_on_completion` when embedded.
fn take_redirects(params: &mut Params, doc: &mut Value, origin: &str) -> ApiResult<()> {
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    let secret = ids::random_base62(24);
    doc["_twin_page_secret"] = json!(secret);
    let ui_mode = params
        .enum_value("ui_mode", UI_MODES)?
        .unwrap_or_else(|| "hosted_page".to_owned());
    if matches!(ui_mode.as_str(), "elements" | "form") {
        return Err(ApiError::invalid_param(
            "ui_mode",
            format!(
                "stripe-twin does not emulate ui_mode={ui_mode} (Stripe.js Elements): use hosted_page or embedded_page."
            ),
        ));
    }
    let embedded = ui_mode == "embedded_page";
    doc["ui_mode"] = json!(ui_mode);

    let success_url = params.string("success_url")?;
    let cancel_url = params.string("cancel_url")?;
    let return_url = params.string("return_url")?;
    let redirect_on_completion = params.enum_value(
        "redirect_on_completion",
        &["always", "if_required", "never"],
    )?;
    if embedded {
        let hosted_only: Vec<&str> = [
            (cancel_url.is_some(), "cancel_url"),
            (success_url.is_some(), "success_url"),
        ]
        .into_iter()
        .filter_map(|(given, param)| given.then_some(param))
        .collect();
        if let Some(first) = hosted_only.first() {
            return Err(ApiError::invalid_param(
                *first,
                format!(
                    "The following parameters are not supported with 'ui_mode: embedded_page': {}.",
                    hosted_only.join(", ")
                ),
            ));
        }
        let redirect = redirect_on_completion.unwrap_or_else(|| "always".to_owned());
        match (&return_url, redirect.as_str()) {
            (Some(_), "never") => {
                return Err(ApiError::invalid_param(
                    "return_url",
                    "`return_url` cannot be set when `redirect_on_completion` is `never`.",
                ));
            }
            (None, "never") => {}
            (None, _) => return Err(ApiError::missing_param("return_url")),
            (Some(url), _) => {
                doc["return_url"] = json!(intents::check_url("return_url", url)?);
            }
        }
        doc["redirect_on_completion"] = json!(redirect);
        doc["client_secret"] = json!(format!("{id}_secret_{secret}"));
    } else {
        for (given, param) in [
            (return_url.is_some(), "return_url"),
            (redirect_on_completion.is_some(), "redirect_on_completion"),
        ] {
            if given {
                return Err(ApiError::invalid_param(
                    param,
                    format!("`{param}` can only be used when `ui_mode` is `embedded_page`."),
                ));
            }
        }
        let success_url = success_url.ok_or_else(|| ApiError::missing_param("success_url"))?;
        doc["success_url"] = json!(intents::check_url("success_url", &success_url)?);
        if let Some(url) = &cancel_url {
            doc["cancel_url"] = json!(intents::check_url("cancel_url", url)?);
        }
        doc["url"] = json!(page_url(origin, doc));
    }

    Ok(())
}

/// `customer`, `customer_email`, `customer_creation`, `client_reference_id`.
async fn take_customer(
    ctx: &Ctx,
    params: &mut Params,
    doc: &mut Value,
    mode: &str,
) -> ApiResult<()> {
    let customer = params.string("customer")?;
    let customer_email = params.string("customer_email")?;
    if customer.is_some() && customer_email.is_some() {
        return Err(exclusive("customer", "customer_email"));
    }
    if let Some(email) = &customer_email
        && !customers::valid_email(email)
    {
        return Err(ApiError::invalid_param(
            "customer_email",
            "Invalid email address: ".to_owned() + email,
        ));
    }
    let customer_creation = params.enum_value("customer_creation", &["always", "if_required"])?;
    if let Some(creation) = &customer_creation {
        // Stripe's message names payment mode only; its reference also
        // allows setup mode, as here.
        if mode == "subscription" {
            return Err(ApiError::invalid_param(
                "customer_creation",
                "`customer_creation` can only be used in `payment` mode.",
            ));
        }
        if customer.is_some() {
            return Err(exclusive("customer", "customer_creation"));
        }
        doc["customer_creation"] = json!(creation);
    } else if mode == "payment" && customer.is_none() {
        doc["customer_creation"] = json!("if_required");
    }
    let customer_record = match &customer {
        Some(id) => {
            Some(payment_methods::load_customer(ctx, id, Named::InParam("customer")).await?)
        }
        None => None,
    };
    if let Some(record) = &customer_record {
        doc["customer"] = json!(record.id);
    }
    doc["customer_email"] = json!(customer_email);
    if let Some(reference) = params.string("client_reference_id")? {
        if reference.is_empty() || reference.chars().count() > 200 {
            return Err(ApiError::invalid_param(
                "client_reference_id",
                "client_reference_id must be between 1 and 200 characters long.",
            ));
        }
        doc["client_reference_id"] = json!(reference);
    }

    Ok(())
}

/// What the page shows and allows besides the items: `submit_type`,
/// `expires_at`, `metadata`, `locale`, and the collection settings.
fn take_options(params: &mut Params, doc: &mut Value, mode: &str, now: i64) -> ApiResult<()> {
    if let Some(submit) = params.enum_value(
        "submit_type",
        &["auto", "book", "donate", "pay", "subscribe"],
    )? {
        let allowed = match submit.as_str() {
            "subscribe" => mode == "subscription",
            _ => mode == "payment",
        };
        if !allowed {
            return Err(not_in_mode("submit_type", mode));
        }
        doc["submit_type"] = json!(submit);
    }
    if let Some(collection) =
        params.enum_value("payment_method_collection", &["always", "if_required"])?
    {
        if mode != "subscription" {
            return Err(not_in_mode("payment_method_collection", mode));
        }
        if collection == "if_required" {
            return Err(crate::http::not_emulated::not_emulated(
                "payment_method_collection",
                "payment_method_collection=if_required",
                "use payment_method_collection=always.",
            ));
        }
    }
    if mode == "subscription" {
        doc["payment_method_collection"] = json!("always");
    }
    if let Some(expires_at) = params.int("expires_at")? {
        if expires_at < now + MIN_LIFETIME {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
            ));
        }
        if expires_at > now + MAX_LIFETIME {
            return Err(ApiError::invalid_param(
                "expires_at",
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            ));
        }
        doc["expires_at"] = json!(expires_at);
    }
    doc["metadata"] = metadata_of(params)?;
    if let Some(locale) = params.string("locale")? {
        doc["locale"] = json!(locale);
    }
    if let Some(collection) =
        params.enum_value("billing_address_collection", &["auto", "required"])?
    {
        doc["billing_address_collection"] = json!(collection);
    }
    if let Some(allow) = params.bool("allow_promotion_codes")? {
        doc["allow_promotion_codes"] = json!(allow);
    }
    if let Some(mut phone) = params.object("phone_number_collection")? {
        let enabled = phone
            .bool("enabled")?
            .ok_or_else(|| ApiError::missing_param(&phone.name("enabled")))?;
        phone.finish()?;
        doc["phone_number_collection"] = json!({"enabled": enabled});
    }
    Ok(())
}

/// Totals (nothing due today in a trial) and the mode's money fields.
fn set_amounts(doc: &mut Value, line_items: &[Value], subscription_data: &Value) -> ApiResult<()> {
    let mode = doc["mode"].as_str().unwrap_or_default().to_owned();
    if mode != "setup" {
        let subtotal: i64 = line_items
            .iter()
            .map(|i| i["amount_subtotal"].as_i64().unwrap_or_default())
            .sum();
        let trial = !subscription_data["trial_period_days"].is_null()
            || !subscription_data["trial_end"].is_null();
        // A trial charges nothing today.
        let due = if trial { 0 } else { subtotal };
        doc["amount_subtotal"] = json!(due);
        doc["amount_total"] = json!(due);
        doc["total_details"] = json!({"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0});
        if let Some(currency) = doc["currency"].as_str() {
            payment_intents::check_amount("line_items", subtotal, currency)?;
        }
        doc["saved_payment_method_options"] = json!({
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": null,
            "payment_method_save": null,
        });
    }
    if mode == "payment" {
        doc["invoice_creation"] = json!({
            "enabled": false,
            "invoice_data": {
                "account_tax_ids": null,
                "custom_fields": null,
                "description": null,
                "footer": null,
                "issuer": null,
                "metadata": {},
                "rendering_options": null,
            },
        });
    }
    Ok(())
}

async fn create_checkout_session(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    crate::http::expand::check_paths(OBJECT, &ctx.expand)?;
    let now = ctx.now();
    let mode = params
        .enum_value("mode", MODES)?
        .ok_or_else(|| ApiError::missing_param("mode"))?;
    let mut doc = new_session_document(&mode, now);
    let id = doc["id"].as_str().unwrap_or_default().to_owned();
    take_redirects(&mut params, &mut doc, &ctx.origin)?;

    take_customer(&ctx, &mut params, &mut doc, &mode).await?;

    // What is bought.
    let currency = params
        .string("currency")?
        .map(|c| prices::check_currency("currency", &c))
        .transpose()?;
    let types = intents::payment_method_types(&mut params, "accepts")?;
    let mut writes = Vec::new();
    let items = parse_line_items(&ctx, &mut params, &mode, &mut writes).await?;
    check_items_for_mode(&items, &mode)?;
    let currency = line_items_currency(&items, currency.as_deref())?;
    if mode == "setup" && currency.is_none() && types.is_none() {
        // Stripe needs it then to know which payment methods to offer.
        return Err(ApiError::missing_param("currency"));
    }
    doc["currency"] = json!(currency);
    doc["payment_method_types"] = json!(types.unwrap_or_else(|| {
        // Automatic payment methods: everything this "account" has enabled,
        // which is every type stripe-twin supports.
        ["card", "amazon_pay"].map(str::to_owned).to_vec()
    }));

    let setup_data =
        setup_intent_data(mode_data(&mut params, "setup_intent_data", "setup", &mode)?)?;
    let payment_data = payment_intent_data(mode_data(
        &mut params,
        "payment_intent_data",
        "payment",
        &mode,
    )?)?;
    let subscription_data = subscription_data(
        mode_data(&mut params, "subscription_data", "subscription", &mode)?,
        now,
    )?;
    take_options(&mut params, &mut doc, &mode, now)?;
    // Text Stripe shows around the form: accepted, not rendered here.
    params.take_node("custom_text");
    params.finish()?;

    let line_items: Vec<Value> = items.iter().map(item_document).collect();
    set_amounts(&mut doc, &line_items, &subscription_data)?;
    doc["line_items"] = json!({
        "object": "list",
        "data": line_items,
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{id}/line_items"),
    });
    doc["_twin_setup_intent_data"] = setup_data;
    doc["_twin_payment_intent_data"] = payment_data;
    doc["_twin_subscription_data"] = subscription_data;
    if mode == "setup" {
        // Stripe makes a setup-mode session's SetupIntent with the session.
        let intent = new_intent_document(&doc, "setup_intent", doc["customer"].as_str(), ctx.now());
        doc["setup_intent"] = intent["id"].clone();
        doc["_twin_intent"] = intent["id"].clone();
        writes.push(Write::Insert(Record::new("setup_intent", intent.clone())));
        writes.push(ctx.event("setup_intent.created", &intent, None));
    }
    writes.push(Write::Insert(Record::new(OBJECT, doc.clone())));
    writes.push(Write::Schedule(expiry_item(&ctx.account, &doc)));
    ctx.commit(&writes).await?;
    ctx.respond(doc).await
}

// ---- retrieve, list, line items ---------------------------------------------

async fn retrieve_checkout_session(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let record = ctx.load(OBJECT, &id, "session").await?;
    ctx.respond(record.data).await
}

async fn list_checkout_sessions(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let mut query = ListQuery::new(OBJECT);
    if let Some(customer) = params.string("customer")? {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(mut details) = params.object("customer_details")? {
        let email = details.required_string("email")?;
        details.finish()?;
        query
            .filters
            .push(Filter::Field("customer_details.email", vec![json!(email)]));
    }
    for field in ["payment_intent", "subscription", "payment_link"] {
        if let Some(id) = params.string(field)? {
            query.filters.push(Filter::Field(field, vec![json!(id)]));
        }
    }
    if let Some(status) = params.enum_value("status", &["open", "complete", "expired"])? {
        query
            .filters
            .push(Filter::Field("status", vec![json!(status)]));
    }
    params.take_node("customer_account");
    params.finish()?;
    ctx.list(query, &paging, "/v1/checkout/sessions").await
}

async fn list_line_items(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    params.finish()?;
    let record = ctx.load(OBJECT, &id, "session").await?;
    let items = record.data["line_items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (data, has_more) = api::page_of_embedded(&items, &paging)?;
    ctx.respond(json!({
        "object": "list",
        "data": data,
        "has_more": has_more,
        "url": format!("/v1/checkout/sessions/{id}/line_items"),
    }))
    .await
}

// ---- expiry ------------------------------------------------------------------

const EXPIRABLE: &[&str] = &["open"];

async fn expire_checkout_session(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let expired = ctx
        .retry(|| async {
            let record = ctx.load(OBJECT, &id, "session").await?;
            let status = record.data["status"].as_str().unwrap_or_default();
            if !EXPIRABLE.contains(&status) {
                return Err(ApiError::invalid(format!(
                    "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `{status}`."
                )));
            }
            expire_writes(&ctx, &record).await
        })
        .await?;
    ctx.respond(expired).await
}

/// The session expires: no more page, its unfinished intent canceled.
async fn expire_writes(ctx: &Ctx, record: &Record) -> ApiResult<(Vec<Write>, Value)> {
    let mut doc = record.data.clone();
    doc["status"] = json!("expired");
    doc["url"] = Value::Null;
    let mut writes = Vec::new();
    if let Some(intent_id) = doc["_twin_intent"].as_str()
        && let Some(intent) = ctx.get(intent_id).await?
        && matches!(
            intent.data["status"].as_str(),
            Some("requires_payment_method" | "requires_confirmation" | "requires_action")
        )
        && intent.data["_twin_checkout_session"] == doc["id"]
    {
        let mut canceled = intent.data.clone();
        canceled["next_action"] = Value::Null;
        intents::forget_redirect(&mut canceled);
        if doc["mode"] == "subscription" {
            // The first PaymentIntent of the subscription's invoice: the
            // invoice stays open and the subscription incomplete, but the
            // buyer's pending authorization no longer counts.
            canceled["status"] = json!("requires_payment_method");
            canceled["payment_method"] = Value::Null;
            writes.push(Write::Update(intent.with_data(canceled)));
        } else {
            canceled["status"] = json!("canceled");
            canceled["cancellation_reason"] = json!("abandoned");
            if intent.object == "payment_intent" {
                canceled["canceled_at"] = json!(ctx.now());
            }
            writes.push(Write::Update(intent.with_data(canceled.clone())));
            writes.push(ctx.event(&format!("{}.canceled", intent.object), &canceled, None));
        }
    }
    writes.insert(0, Write::Update(record.with_data(doc.clone())));
    writes.push(ctx.event("checkout.session.expired", &doc, None));
    Ok((writes, doc))
}

fn is_due(doc: &Value, now: i64) -> bool {
    doc["status"] == "open" && doc["expires_at"].as_i64().is_some_and(|at| at <= now)
}

/// The scheduler's kind for a session's expiry at `expires_at`.
pub const EXPIRY_KIND: &str = "checkout_session_expiry";

/// The due item that expires a session at its `expires_at`, scheduled
/// when it is created (one per session: its id follows the session's).
pub fn expiry_item(account: &str, doc: &Value) -> DueItem {
    let id = doc["id"].as_str().unwrap_or_default();
    DueItem {
        id: format!("due_expire_{id}"),
        account: account.to_owned(),
        test_clock: None,
        due_at: doc["expires_at"].as_i64().unwrap_or_default() * 1000,
        kind: EXPIRY_KIND.to_owned(),
        target: id.to_owned(),
        payload: json!({}),
        claimed_by: None,
    }
}

/// Runs at `expires_at`: the session expires (and `checkout.session.expired`
/// is sent) whether or not anyone looks at it. One completed or expired
/// meanwhile stays as it is.
pub async fn expire_when_due(ctx: Ctx, item: DueItem) -> ApiResult<Vec<Write>> {
    let Some(record) = ctx.get(&item.target).await? else {
        return Ok(Vec::new()); // its account's data was wiped
    };
    if record.object != OBJECT || record.data["status"] != "open" {
        return Ok(Vec::new());
    }
    if !is_due(&record.data, ctx.now()) {
        // Not yet (the item ran early): again at the session's time.
        return Ok(vec![Write::Schedule(expiry_item(
            &ctx.account,
            &record.data,
        ))]);
    }
    Ok(expire_writes(&ctx, &record).await?.0)
}

/// The session as its buyer sees it: one whose time is up is expired, even
/// in the moment before the scheduler has stored that.
pub fn as_seen(doc: Value, now: i64) -> Value {
    if !is_due(&doc, now) {
        return doc;
    }
    let mut doc = doc;
    doc["status"] = json!("expired");
    doc["url"] = Value::Null;
    doc
}

// ---- paying ------------------------------------------------------------------

/// What the buyer entered on the page.
pub struct Submission {
    pub email: Option<String>,
    /// The new PaymentMethod's document (card details or amazon_pay).
    pub payment_method: Value,
}

/// Where a submission left the session.
pub enum Submitted {
    /// Paid or set up: the session is complete.
    Completed(Value),
    /// The buyer must authorize on this page first.
    Redirect(String),
    /// The payment failed; the session stays open with the error shown.
    Failed(String),
    /// The session is no longer open (completed or expired meanwhile).
    Closed(Value),
}

/// Loads an open session, or says why it is not.
async fn load_open(ctx: &Ctx, id: &str) -> ApiResult<Result<Record, Value>> {
    let record = ctx.load(OBJECT, id, "session").await?;
    if is_due(&record.data, ctx.now()) {
        // Stripe: after it expires, a customer can't complete a session.
        return Ok(Err(as_seen(record.data, ctx.now())));
    }
    if record.data["status"] != "open" {
        return Ok(Err(record.data));
    }
    Ok(Ok(record))
}

/// The buyer's email: typed on the page, or known from the session.
fn buyer_email(
    session: &Value,
    customer: Option<&Value>,
    submission: &Submission,
) -> ApiResult<String> {
    let known = customer
        .and_then(|c| c["email"].as_str())
        .or_else(|| session["customer_email"].as_str());
    match (submission.email.as_deref().filter(|e| !e.is_empty()), known) {
        (Some(email), _) if customers::valid_email(email) => Ok(email.to_owned()),
        (Some(_), _) => Err(ApiError::invalid_param(
            "email",
            "Your email address is invalid.",
        )),
        (None, Some(known)) => Ok(known.to_owned()),
        (None, None) if session["customer"].is_string() => Ok(String::new()),
        (None, None) => Err(ApiError::invalid_param(
            "email",
            "Enter your email address.",
        )),
    }
}

/// Pays or sets up the session with what the buyer entered. The steps
/// commit one by one (a customer, then a subscription, then the payment),
/// each recorded on the session so a retry after a failure reuses them.
pub async fn submit(ctx: &Ctx, id: &str, submission: &Submission) -> ApiResult<Submitted> {
    let record = match load_open(ctx, id).await? {
        Ok(record) => record,
        Err(closed) => return Ok(Submitted::Closed(closed)),
    };
    let existing_customer = match record.data["customer"].as_str() {
        Some(customer) => Some(ctx.load("customer", customer, "customer").await?.data),
        None => None,
    };
    let email = buyer_email(&record.data, existing_customer.as_ref(), submission)?;
    let name = submission.payment_method["billing_details"]["name"].clone();
    let mode = record.data["mode"].as_str().unwrap_or_default().to_owned();
    let needs_customer = record.data["customer"].is_null()
        && (mode == "subscription" || record.data["customer_creation"] == "always");
    if needs_customer {
        let created = ctx
            .retry(|| async {
                let record = match load_open(ctx, id).await? {
                    Ok(record) => record,
                    Err(closed) => return Ok((Vec::new(), Err(closed))),
                };
                if record.data["_twin_customer"].is_string() {
                    return Ok((Vec::new(), Ok(())));
                }
                let mut customer = customers::new_customer_document(ctx.now());
                customer["email"] = json!(email);
                customer["name"] = name.clone();
                let mut doc = record.data.clone();
                doc["_twin_customer"] = customer["id"].clone();
                Ok((
                    vec![
                        Write::Insert(Record::new("customer", customer.clone())),
                        ctx.event("customer.created", &customer, None),
                        Write::Update(record.with_data(doc)),
                    ],
                    Ok(()),
                ))
            })
            .await?;
        if let Err(closed) = created {
            return Ok(Submitted::Closed(closed));
        }
    }
    if mode == "subscription" {
        let created = ctx
            .retry(|| async {
                let record = match load_open(ctx, id).await? {
                    Ok(record) => record,
                    Err(closed) => return Ok((Vec::new(), Err(closed))),
                };
                if record.data["_twin_subscription"].is_string() {
                    return Ok((Vec::new(), Ok(())));
                }
                create_subscription(ctx, &record).await.map(|w| (w, Ok(())))
            })
            .await?;
        if let Err(closed) = created {
            return Ok(Submitted::Closed(closed));
        }
    }
    let pm_doc = submission.payment_method.clone();
    ctx.retry(|| async {
        let record = match load_open(ctx, id).await? {
            Ok(record) => record,
            Err(closed) => return Ok((Vec::new(), Submitted::Closed(closed))),
        };
        let pm = Resolved::Fresh(Record::new("payment_method", pm_doc.clone()));
        pay(ctx, &record, pm, &email).await
    })
    .await
}

/// The subscription of a session in subscription mode, and the session
/// pointing at it (not shown until the session completes).
async fn create_subscription(ctx: &Ctx, record: &Record) -> ApiResult<Vec<Write>> {
    let session = &record.data;
    let customer_id = buyer(session).unwrap_or_default();
    let customer = ctx.load("customer", &customer_id, "customer").await?;
    let mut items = Vec::new();
    for item in session["line_items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let price_id = item["price"]["id"].as_str().unwrap_or_default();
        let price = prices::load_price(ctx, price_id, Named::InParam("price")).await?;
        items.push((price.data, item["quantity"].as_i64().unwrap_or(1)));
    }
    let data = &session["_twin_subscription_data"];
    let mut options = BTreeMap::new();
    let types = intents::accepted_types(session)
        .into_iter()
        .map(Node::Str)
        .collect();
    options.insert(
        "payment_settings".to_owned(),
        Node::Map(BTreeMap::from([
            ("payment_method_types".to_owned(), Node::List(types)),
            (
                "save_default_payment_method".to_owned(),
                Node::Str("on_subscription".to_owned()),
            ),
        ])),
    );
    for key in ["trial_period_days", "trial_end"] {
        if let Some(value) = data[key].as_i64() {
            options.insert(key.to_owned(), Node::Str(value.to_string()));
        }
    }
    if let Some(description) = data["description"].as_str() {
        options.insert("description".to_owned(), Node::Str(description.to_owned()));
    }
    if let Some(mode) = data["billing_mode"]["type"].as_str() {
        let mut billing_mode = BTreeMap::from([("type".to_owned(), Node::Str(mode.to_owned()))]);
        if let Some(discounts) = data["billing_mode"]["flexible"]["proration_discounts"].as_str() {
            let flexible = [(
                "proration_discounts".to_owned(),
                Node::Str(discounts.to_owned()),
            )];
            billing_mode.insert("flexible".to_owned(), Node::Map(BTreeMap::from(flexible)));
        }
        options.insert("billing_mode".to_owned(), Node::Map(billing_mode));
    }
    if let Some(metadata) = data["metadata"].as_object()
        && !metadata.is_empty()
    {
        let entries = metadata
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    Node::Str(v.as_str().unwrap_or_default().to_owned()),
                )
            })
            .collect();
        options.insert("metadata".to_owned(), Node::Map(entries));
    }
    let (mut writes, sub) =
        subscriptions::create_for_checkout(ctx, &customer, &items, options).await?;
    let mut doc = session.clone();
    doc["_twin_subscription"] = sub["id"].clone();
    writes.push(Write::Update(record.with_data(doc)));
    Ok(writes)
}

/// The intent the buyer's payment method confirms: `(record, is_new)`.
async fn session_intent(
    ctx: &Ctx,
    session: &Value,
    customer: Option<&str>,
) -> ApiResult<Option<(Record, bool)>> {
    let reusable = |record: &Record| {
        matches!(
            record.data["status"].as_str(),
            Some("requires_payment_method" | "requires_confirmation" | "requires_action")
        )
    };
    match session["mode"].as_str() {
        Some("subscription") => {
            let sub_id = session["_twin_subscription"].as_str().unwrap_or_default();
            let sub = ctx.load("subscription", sub_id, "subscription").await?;
            let intent_id = match sub.data["pending_setup_intent"].as_str() {
                Some(setup_intent) => Some(setup_intent.to_owned()),
                None => match sub.data["latest_invoice"].as_str() {
                    Some(invoice) => {
                        ctx.load("invoice", invoice, "invoice").await?.data["_twin_payment_intent"]
                            .as_str()
                            .map(str::to_owned)
                    }
                    None => None,
                },
            };
            let Some(intent_id) = intent_id else {
                return Ok(None);
            };
            let object = if intent_id.starts_with("seti_") {
                "setup_intent"
            } else {
                "payment_intent"
            };
            Ok(Some((ctx.load(object, &intent_id, "intent").await?, false)))
        }
        mode => {
            let object = if mode == Some("setup") {
                "setup_intent"
            } else {
                "payment_intent"
            };
            if let Some(intent_id) = session["_twin_intent"].as_str() {
                let record = ctx.load(object, intent_id, "intent").await?;
                if reusable(&record) {
                    return Ok(Some((record, false)));
                }
            }
            let doc = new_intent_document(session, object, customer, ctx.now());
            Ok(Some((Record::new(object, doc), true)))
        }
    }
}

/// A new SetupIntent or PaymentIntent for the session, from its
/// `setup_intent_data` / `payment_intent_data`.
fn new_intent_document(session: &Value, object: &str, customer: Option<&str>, now: i64) -> Value {
    let types = intents::accepted_types(session);
    let mut doc = if object == "setup_intent" {
        let mut doc = setup_intents::new_document(now);
        let data = &session["_twin_setup_intent_data"];
        doc["description"] = data["description"].clone();
        if let Some(metadata) = data["metadata"].as_object() {
            doc["metadata"] = json!(metadata);
        }
        doc["payment_method_types"] = json!(types);
        doc["allowed_payment_method_types"] = json!(types);
        doc["automatic_payment_methods"] = Value::Null;
        doc
    } else {
        let amount = session["amount_total"].as_i64().unwrap_or_default();
        let currency = session["currency"].as_str().unwrap_or("usd");
        let mut doc = payment_intents::new_document(amount, currency, now);
        payment_intents::set_payment_method_types(&mut doc, &types);
        let data = &session["_twin_payment_intent_data"];
        for field in [
            "setup_future_usage",
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
        ] {
            if !data[field].is_null() {
                doc[field] = data[field].clone();
            }
        }
        if let Some(metadata) = data["metadata"].as_object() {
            doc["metadata"] = json!(metadata);
        }
        doc
    };
    doc["customer"] = json!(customer);
    doc["_twin_checkout_session"] = session["id"].clone();
    doc
}

/// One payment attempt with the buyer's payment method, in one
/// transaction: the intent moves, and when it succeeded the session
/// completes.
async fn pay(
    ctx: &Ctx,
    record: &Record,
    pm: Resolved,
    email: &str,
) -> ApiResult<(Vec<Write>, Submitted)> {
    let mut session = record.data.clone();
    let id = record.id.clone();
    session["_twin_email"] = json!(email);
    let customer = buyer(&session);
    let mut writes = Vec::new();
    let Some((intent, is_new)) = session_intent(ctx, &session, customer.as_deref()).await? else {
        // Nothing to pay or set up (a free subscription): done.
        complete(ctx, &mut session, None, &mut writes).await?;
        writes.insert(0, Write::Update(record.with_data(session.clone())));
        return Ok((writes, Submitted::Completed(session)));
    };
    let mut doc = intent.data.clone();
    doc["_twin_checkout_session"] = json!(id);
    doc["_twin_return_url"] = json!(intent_return_url(&ctx.origin, &session));
    if session["ui_mode"] == "embedded_page" {
        // Its 3-D Secure page shows inside the merchant's page too.
        doc["_twin_framed"] = json!(true);
    }
    if doc["customer"].is_null() && customer.is_some() {
        doc["customer"] = json!(customer);
    }
    session["_twin_intent"] = json!(intent.id);
    if intent.object == "payment_intent" && session["mode"] == "payment" {
        // Stripe shows the PaymentIntent once the buyer's confirm made it.
        session["payment_intent"] = json!(intent.id);
    }
    let mut moves = Vec::new();
    let (final_doc, failure) = if intent.object == "setup_intent" {
        if is_new {
            moves.push(ctx.event("setup_intent.created", &doc, None));
        }
        match setup_intents::confirm_writes(ctx, &intent, doc, pm, &mut moves)? {
            Confirmed::Moved(doc) => (doc, None),
            Confirmed::Declined(doc, error) => (doc, Some(error)),
        }
    } else {
        if session["mode"] == "subscription" {
            // Saved for the renewals Checkout's subscription will charge.
            doc["setup_future_usage"] = json!("off_session");
        }
        if is_new {
            moves.push(ctx.event("payment_intent.created", &doc, None));
        }
        match payment_intents::attempt(ctx, doc, &pm, false, &mut moves).await? {
            Attempted::Failed(doc, error) => (doc, Some(error)),
            other => (other.doc().clone(), None),
        }
    };
    writes.push(if is_new {
        Write::Insert(intent.with_data(final_doc.clone()))
    } else {
        Write::Update(intent.with_data(final_doc.clone()))
    });
    writes.extend(moves);
    if intent.object == "payment_intent" {
        invoices::after_payment(ctx, &final_doc, &mut writes).await?;
    }
    let submitted = match (final_doc["status"].as_str(), failure) {
        (_, Some(error)) => Submitted::Failed(
            error.body()["error"]["message"]
                .as_str()
                .unwrap_or("The payment failed.")
                .to_owned(),
        ),
        (Some("succeeded"), None) => {
            complete(ctx, &mut session, Some(&final_doc), &mut writes).await?;
            Submitted::Completed(session.clone())
        }
        (Some("requires_action"), None) => Submitted::Redirect(
            final_doc["next_action"]["redirect_to_url"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        (status, None) => Submitted::Failed(format!(
            "The payment could not be completed (status {}).",
            status.unwrap_or("unknown")
        )),
    };
    writes.insert(0, Write::Update(record.with_data(session)));
    Ok((writes, submitted))
}

/// After an intent succeeded elsewhere (the authorization page): completes
/// the session it belongs to, in the same transaction.
pub async fn after_intent(ctx: &Ctx, intent: &Value, writes: &mut Vec<Write>) -> ApiResult<()> {
    let Some(id) = intent["_twin_checkout_session"].as_str() else {
        return Ok(());
    };
    if intent["status"] != "succeeded" {
        return Ok(());
    }
    let record = ctx.load(OBJECT, id, "session").await?;
    if record.data["status"] != "open" || is_due(&record.data, ctx.now()) {
        // Stripe: after it expires, a customer can't complete a session.
        return Err(ApiError::invalid(
            "This Checkout Session has expired, so it can no longer be completed. Return to the merchant to start again.",
        ));
    }
    let mut session = record.data.clone();
    complete(ctx, &mut session, Some(intent), writes).await?;
    writes.push(Write::Update(record.with_data(session)));
    Ok(())
}

/// The session is complete: what it created, the buyer's details, and
/// `checkout.session.completed` after the events of the objects it touched.
async fn complete(
    ctx: &Ctx,
    session: &mut Value,
    intent: Option<&Value>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    session["status"] = json!("complete");
    session["url"] = Value::Null;
    session["customer"] = json!(buyer(session));
    let pm_id = intent
        .and_then(|i| i["payment_method"].as_str())
        .map(str::to_owned);
    let pm = match &pm_id {
        Some(pm) => ctx.get(pm).await?.map(|r| r.data),
        None => None,
    }
    // The payment method may have been inserted in this same transaction.
    .or_else(|| {
        writes.iter().rev().find_map(|w| match w {
            Write::Insert(r) | Write::Update(r) if Some(&r.id) == pm_id.as_ref() => {
                Some(r.data.clone())
            }
            _ => None,
        })
    });
    let email = session["_twin_email"]
        .as_str()
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    session["customer_details"] = json!({
        "address": pm.as_ref().map(|p| p["billing_details"]["address"].clone()).unwrap_or(Value::Null),
        "business_name": null,
        "email": email,
        "individual_name": null,
        "name": pm.as_ref().map(|p| p["billing_details"]["name"].clone()).unwrap_or(Value::Null),
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": [],
    });
    session["collected_information"] =
        json!({"business_name": null, "individual_name": null, "shipping_details": null});
    match session["mode"].as_str() {
        Some("setup") => {
            session["setup_intent"] = intent.map(|i| i["id"].clone()).unwrap_or(Value::Null);
            session["payment_status"] = json!("no_payment_required");
        }
        Some("payment") => {
            session["payment_intent"] = intent.map(|i| i["id"].clone()).unwrap_or(Value::Null);
            session["payment_status"] = json!("paid");
        }
        _ => {
            let sub_id = session["_twin_subscription"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let sub = ctx.load("subscription", &sub_id, "subscription").await?;
            session["subscription"] = json!(sub_id);
            session["invoice"] = sub.data["latest_invoice"].clone();
            let paid = intent.is_some_and(|i| i["object"] == "payment_intent");
            session["payment_status"] = json!(if paid { "paid" } else { "no_payment_required" });
            // A trial's payment method came through the pending SetupIntent:
            // it becomes the subscription's default, as Checkout sets it.
            if let (Some(pm), false) = (&pm_id, paid)
                && sub.data["default_payment_method"].is_null()
            {
                let mut doc = sub.data.clone();
                doc["default_payment_method"] = json!(pm);
                doc["pending_setup_intent"] = Value::Null;
                writes.extend(ctx.update_with_event(&sub, doc, "customer.subscription.updated"));
            }
        }
    }
    writes.push(ctx.event("checkout.session.completed", session, None));
    Ok(())
}

/// The error the session's current intent last failed with, for the page.
pub async fn last_error(ctx: &Ctx, session: &Value) -> ApiResult<Option<String>> {
    let Some(intent_id) = session["_twin_intent"].as_str() else {
        return Ok(None);
    };
    let Some(intent) = ctx.get(intent_id).await? else {
        return Ok(None);
    };
    let error = match intent.object.as_str() {
        "setup_intent" => &intent.data["last_setup_error"],
        _ => &intent.data["last_payment_error"],
    };
    // The page speaks to the buyer, not to the developer.
    let message = match error["code"].as_str() {
        Some("payment_intent_authentication_failure" | "setup_intent_authentication_failure") => {
            Some("We are unable to authenticate your payment method. Please choose a different payment method and try again.".to_owned())
        }
        _ => error["message"].as_str().map(str::to_owned),
    };
    Ok(message)
}

/// The session's customer: the one it was created with, or the one the
/// buyer's first submit created (shown once the session completes).
fn buyer(session: &Value) -> Option<String> {
    session["customer"]
        .as_str()
        .or_else(|| session["_twin_customer"].as_str())
        .map(str::to_owned)
}

/// `success_url` or `return_url` with the session's ID in place of the
/// template.
pub fn after_completion_url(session: &Value) -> Option<String> {
    let id = session["id"].as_str().unwrap_or_default();
    session["success_url"]
        .as_str()
        .or_else(|| session["return_url"].as_str())
        .map(|url| url.replace(SESSION_ID_TEMPLATE, id))
}
