//! `/v1/checkout/sessions`: create, retrieve, list, expire and line items.
//!
//! A session is `open` until the buyer completes it (`complete`) or it
//! expires (`expired`, by `/expire` or at `expires_at`, when the scheduler
//! runs the due item its creation stored). A setup-mode session's
//! SetupIntent is made with it; the PaymentIntent or Subscription is made
//! when the buyer pays on the hosted page (`pages::checkout`).
//!
//! Beside this file: `params` parses create's line items and intent data,
//! `expiry` expires sessions, `payment_flow` is what paying on the page
//! does. What other modules use from them is re-exported here.

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::registry::{Expansion, ObjectSpec, to};
use crate::core::state_machine::StatusEnum;
use crate::http::api::{self, AppState, Call, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::Params;
use crate::ids;
use crate::resources::catalog::prices;
use crate::resources::customers;
use crate::resources::payments::intents;
use crate::resources::payments::payment_intents;
use crate::resources::payments::payment_methods;
use crate::store::{Filter, ListQuery, Record, Write};

use super::expiry::expire_writes;
pub use super::expiry::{EXPIRY_KIND, as_seen, expire_when_due, expiry_item, expiry_item_for};
pub use super::params::ITEM_SPEC;
use super::params::{
    check_items_for_mode, exclusive, item_document, line_items_currency, metadata_of, mode_data,
    not_in_mode, parse_line_items, payment_intent_data, setup_intent_data, subscription_data,
};
use super::payment_flow::new_intent_document;
pub use super::payment_flow::{
    Submission, Submitted, after_completion_url, after_intent, last_error, submit,
};
use super::status::Status;

pub const SPEC: ObjectSpec = ObjectSpec::new(OBJECT, "cs_test")
    .id_length(58)
    .list_url("/v1/checkout/sessions")
    .fields(&[
        ("customer", to("customer")),
        ("setup_intent", to("setup_intent")),
        ("payment_intent", to("payment_intent")),
        ("subscription", to("subscription")),
        ("invoice", to("invoice")),
        ("payment_link", to("payment_link")),
        ("line_items", Expansion::Hidden),
    ]);

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

/// The secret of a session's page (an embedded session's client secret
/// ends with it).
pub fn page_secret(session: &Value) -> String {
    Bookkeeping::of(session).page_secret.unwrap_or_default()
}

/// Whether `secret` opens the session's page (compared in constant time).
pub fn opens_page(session: &Value, secret: &str) -> bool {
    let known = page_secret(session);
    let known = known.as_bytes();
    !known.is_empty()
        && known.len() == secret.len()
        && known
            .iter()
            .zip(secret.as_bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

// ---- create ------------------------------------------------------------------

fn new_session_document(mode: &str, now: i64) -> Value {
    let id = SPEC.new_id();
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
        "status": Status::Open.as_str(),
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
    bookkeeping::update(doc, |b| b.page_secret = Some(secret.clone()));
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
    ctx.check_expand_paths(OBJECT)?;
    // Its customer's clock decides its time (its expiry): read it first.
    ctx.follow_customer_param(&params).await?;
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

    let line_items: Vec<Value> = items.iter().map(|item| item_document(&ctx, item)).collect();
    set_amounts(&mut doc, &line_items, &subscription_data)?;
    doc["line_items"] = json!({
        "object": "list",
        "data": line_items,
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{id}/line_items"),
    });
    bookkeeping::update(&mut doc, |b| {
        b.setup_intent_data = Some(setup_data);
        b.payment_intent_data = Some(payment_data);
        b.subscription_data = Some(subscription_data);
    });
    if mode == "setup" {
        // Stripe makes a setup-mode session's SetupIntent with the session.
        let intent = new_intent_document(&doc, "setup_intent", doc["customer"].as_str(), ctx.now());
        doc["setup_intent"] = intent["id"].clone();
        bookkeeping::update(&mut doc, |b| {
            b.intent = intent["id"].as_str().map(str::to_owned)
        });
        writes.push(Write::Insert(Record::new("setup_intent", intent.clone())));
        writes.push(ctx.event("setup_intent.created", &intent, None));
    }
    writes.push(Write::Insert(Record::new(OBJECT, doc.clone())));
    writes.push(Write::Schedule(expiry_item(&ctx, &doc)));
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

async fn expire_checkout_session(
    Path(id): Path<String>,
    Call { ctx, params }: Call,
) -> ApiResult<Json<Value>> {
    params.finish()?;
    let expired = ctx
        .retry(|| async {
            let record = ctx.load(OBJECT, &id, "session").await?;
            // Refused unless the session is open.
            expire_writes(&ctx, &record).await
        })
        .await?;
    ctx.respond(expired).await
}
