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

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::http::api::{AppState, Call, ClientCall, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, ErrorType, Named};
use crate::http::expand::strip_hidden;
use crate::http::params::{Params, Patch, Update};
use crate::http::search::{self, FieldKind};
use crate::ids;
use crate::resources::billing::invoices;
use crate::resources::catalog::prices;
use crate::resources::payments::balance_transactions;
use crate::resources::payments::charges;
use crate::resources::payments::intents;
use crate::resources::payments::mandates;
use crate::resources::payments::payment_methods::{self, Resolved, SUPPORTED_TYPES};
use crate::resources::payments::test_cards::{self, Auth, Behavior};
use crate::store::{Filter, ListQuery, Record, Write};

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

const CONFIRMABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
];
const CANCELABLE: &[&str] = &[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
];
const MAX_AMOUNT: i64 = 99_999_999;

/// A new PaymentIntent awaiting its payment method.
pub fn new_document(amount: i64, currency: &str, now: i64) -> Value {
    let id = ids::new_id("pi");
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
        "status": "requires_payment_method",
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

fn unexpected_state(action: &str, status: &str, allowed: &[&str]) -> ApiError {
    let message = match (action, status) {
        ("confirm", "succeeded") => {
            "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed.".to_owned()
        }
        _ => format!(
            "You cannot {action} this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be {done}: {}.",
            allowed.join(", "),
            done = match action {
                "confirm" => "confirmed",
                "update" => "updated",
                _ => "canceled",
            },
        ),
    };
    ApiError::invalid(message).with_code("payment_intent_unexpected_state")
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

/// What a request asks to change on an intent.
#[derive(Default)]
struct Changes {
    patch: Patch,
    amount: Option<i64>,
    currency: Option<String>,
    customer: Option<String>,
    payment_method: Option<String>,
    payment_method_data: Option<Value>,
    payment_method_types: Option<Vec<String>>,
    mandate_data: Option<Value>,
    return_url: Option<String>,
    off_session: bool,
    error_on_requires_action: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Update,
    Confirm,
}

fn parse_changes(ctx: &Ctx, params: &mut Params, operation: Operation) -> ApiResult<Changes> {
    let mut changes = Changes::default();
    if operation != Operation::Confirm {
        changes.amount = params.int("amount")?;
        changes.currency = params
            .string("currency")?
            .map(|c| prices::check_currency("currency", &c))
            .transpose()?;
        changes.patch.set_metadata(params.metadata()?);
        for field in [
            "description",
            "receipt_email",
            "statement_descriptor",
            "statement_descriptor_suffix",
        ] {
            if let Some(update) = params.nullable_string(field)? {
                let value = match update {
                    Update::Set(v) => json!(v),
                    Update::Unset => Value::Null,
                };
                changes.patch.set(&[static_name(field)], value);
            }
        }
        changes.customer = params.string("customer")?;
        changes.payment_method_types = intents::payment_method_types(params, "charges")?;
        // `manual` was refused before this (not_emulated).
        if let Some(capture) = params.enum_value(
            "capture_method",
            &["automatic", "automatic_async", "manual"],
        )? {
            changes.patch.set(&["capture_method"], json!(capture));
        }
        params.take_node("shipping");
    }
    if let Some(usage) =
        params.nullable_enum("setup_future_usage", &["off_session", "on_session"])?
    {
        changes.patch.set(
            &["setup_future_usage"],
            match usage {
                Update::Set(u) => json!(u),
                Update::Unset => Value::Null,
            },
        );
    }
    (changes.payment_method, changes.payment_method_data) =
        intents::payment_method_choice(ctx, params)?;
    if let Some(mut options) = params.object("payment_method_options")? {
        // Accepted for compatibility; the test outcomes do not depend on them.
        for kind in ["card", "amazon_pay"] {
            options.take_node(kind);
        }
        options.finish()?;
    }
    if operation != Operation::Update {
        changes.off_session = match params.take_node("off_session") {
            None => false,
            Some(crate::http::form::Node::Str(value)) => match value.as_str() {
                "true" | "one_off" | "recurring" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::invalid_param(
                        "off_session",
                        "Invalid off_session: must be a boolean, one_off or recurring",
                    ));
                }
            },
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "off_session",
                    "Invalid off_session: must be a boolean",
                ));
            }
        };
        if let Some(url) = params.string("return_url")? {
            changes.return_url = Some(intents::check_return_url(&url)?);
        }
        if let Some(mut data) = params.object("mandate_data")? {
            let mut acceptance = data
                .object("customer_acceptance")?
                .ok_or_else(|| ApiError::missing_param(&data.name("customer_acceptance")))?;
            let kind = acceptance
                .enum_value("type", &["offline", "online"])?
                .ok_or_else(|| ApiError::missing_param(&acceptance.name("type")))?;
            let accepted_at = acceptance.int("accepted_at")?.unwrap_or_else(|| ctx.now());
            let mut accepted = json!({"accepted_at": accepted_at, "type": kind});
            if let Some(mut online) = acceptance.object("online")? {
                let infer = online.bool("infer_from_client")?.unwrap_or(false);
                let (ip, agent) = if infer {
                    (ctx.client.ip_address.clone(), ctx.client.user_agent.clone())
                } else {
                    (
                        online.required_string("ip_address")?,
                        online.required_string("user_agent")?,
                    )
                };
                online.finish()?;
                accepted["online"] = json!({"ip_address": ip, "user_agent": agent});
            } else if kind == "online" {
                return Err(ApiError::missing_param(&acceptance.name("online")));
            }
            acceptance.take_node("offline");
            acceptance.finish()?;
            data.finish()?;
            changes.mandate_data = Some(accepted);
        }
    }
    params.bool("use_stripe_sdk")?;
    changes.error_on_requires_action = params.bool("error_on_requires_action")?.unwrap_or(false);
    if params.contains("confirmation_token") {
        return Err(ApiError::invalid_param(
            "confirmation_token",
            "stripe-twin does not emulate ConfirmationTokens yet: pass payment_method or payment_method_data.",
        ));
    }
    Ok(changes)
}

fn static_name(field: &str) -> &'static str {
    match field {
        "description" => "description",
        "receipt_email" => "receipt_email",
        "statement_descriptor" => "statement_descriptor",
        _ => "statement_descriptor_suffix",
    }
}

/// Applies what does not depend on the intent's state.
fn apply_changes(
    doc: &mut Value,
    changes: &Changes,
    pm: Option<&Resolved>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    changes.patch.apply(doc)?;
    let currency = changes
        .currency
        .clone()
        .unwrap_or_else(|| doc["currency"].as_str().unwrap_or("usd").to_owned());
    if let Some(amount) = changes.amount {
        check_amount("amount", amount, &currency)?;
        doc["amount"] = json!(amount);
    }
    doc["currency"] = json!(currency);
    if let Some(customer) = &changes.customer {
        match doc["customer"].as_str() {
            Some(current) if current != customer => {
                return Err(ApiError::invalid_param(
                    "customer",
                    "You cannot change the customer of a PaymentIntent once it is set.",
                ));
            }
            _ => doc["customer"] = json!(customer),
        }
    }
    if let Some(types) = &changes.payment_method_types {
        set_payment_method_types(doc, types);
        doc["automatic_payment_methods"] = Value::Null;
    }
    if let Some(pm) = pm {
        if let Resolved::Fresh(record) = pm {
            writes.push(Write::Insert(record.clone()));
        }
        doc["payment_method"] = json!(pm.record().id);
        if CONFIRMABLE.contains(&doc["status"].as_str().unwrap_or_default()) {
            doc["status"] = json!("requires_confirmation");
            doc["next_action"] = Value::Null;
            intents::forget_redirect(doc);
        }
    }
    if let Some(acceptance) = &changes.mandate_data {
        doc["_twin_mandate_acceptance"] = acceptance.clone();
    }
    if let Some(url) = &changes.return_url {
        doc["_twin_return_url"] = json!(url);
    }
    Ok(())
}

/// Where one payment attempt left the intent.
pub enum Attempted {
    Succeeded(Value),
    RequiresAction(Value),
    /// The charge failed: the intent is back to requires_payment_method and
    /// the caller owes Stripe's 402.
    Failed(Value, ApiError),
}

impl Attempted {
    pub fn doc(&self) -> &Value {
        match self {
            Attempted::Succeeded(d) | Attempted::RequiresAction(d) | Attempted::Failed(d, _) => d,
        }
    }
}

/// Tries to pay `doc` (already carrying the request's changes) with `pm`.
/// Off-session, nobody can authenticate: cards that need it fail, and
/// amazon_pay charges through the payment method's active mandate.
pub async fn attempt(
    ctx: &Ctx,
    mut doc: Value,
    pm: &Resolved,
    off_session: bool,
    writes: &mut Vec<Write>,
) -> ApiResult<Attempted> {
    // error_on_requires_action (this confirmation only): fail instead of
    // waiting for the customer.
    let no_action = doc
        .as_object_mut()
        .and_then(|map| map.remove("_twin_no_action"))
        .is_some();
    let pm_doc = pm.data().clone();
    let kind = pm_doc["type"].as_str().unwrap_or_default().to_owned();
    let types = intents::accepted_types(&doc);
    if !types.contains(&kind) {
        return Err(ApiError::invalid_param(
            "payment_method",
            format!(
                "The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please attach a PaymentMethod of one of the following types: {}. Alternatively, update the allowed payment_method_types for this PaymentIntent to include \"{kind}\".",
                types.join(", ")
            ),
        ));
    }
    payment_methods::check_reusable(&pm_doc)?;
    match (pm_doc["customer"].as_str(), doc["customer"].as_str()) {
        (Some(owner), Some(customer)) if owner != customer => {
            return Err(ApiError::invalid_param(
                "payment_method",
                format!(
                    "The provided PaymentMethod ({}) is attached to another Customer than the one on this PaymentIntent ({customer}).",
                    pm.record().id
                ),
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_param(
                "payment_method",
                format!(
                    "The provided PaymentMethod ({}) was previously attached to a Customer. To use it in a PaymentIntent, you must provide that Customer's ID as the `customer` parameter.",
                    pm.record().id
                ),
            ));
        }
        _ => {}
    }
    if off_session && doc["customer"].is_null() {
        return Err(ApiError::invalid_param(
            "off_session",
            "Off-session payments require a customer: pass the customer whose payment method is charged.",
        ));
    }
    doc["payment_method"] = json!(pm.record().id);
    doc["last_payment_error"] = Value::Null;
    let behavior = test_cards::behavior_of(&pm_doc);
    // A failed attempt still stores the method it tried.
    let failing = |doc: Value, error: ApiError, writes: &mut Vec<Write>| {
        writes.push(pm.write(pm_doc.clone()));
        decline(ctx, doc, &pm_doc, error, writes)
    };
    if kind == "amazon_pay" {
        if off_session {
            if mandates::active_for(ctx, &pm.record().id).await?.is_none() {
                return Ok(failing(doc, no_mandate_error(), writes));
            }
            return Ok(Attempted::Succeeded(settle(ctx, doc, pm, writes)?));
        }
        if no_action {
            return Ok(failing(doc, action_required(false), writes));
        }
        if doc["_twin_return_url"].is_null() {
            return Err(ApiError::invalid_param(
                "return_url",
                "You must provide a `return_url` when confirming a PaymentIntent with the payment method type amazon_pay.",
            ));
        }
        writes.push(pm.write(pm_doc.clone()));
        return Ok(Attempted::RequiresAction(intents::require_action(
            ctx,
            doc,
            "amazon_pay",
            writes,
        )));
    }
    match card_outcome(behavior, &pm_doc, off_session, no_action) {
        CardOutcome::Fails(error) => Ok(failing(doc, error, writes)),
        CardOutcome::NeedsAuthentication => {
            writes.push(pm.write(pm_doc.clone()));
            Ok(Attempted::RequiresAction(intents::require_action(
                ctx,
                doc,
                "three_d_secure",
                writes,
            )))
        }
        CardOutcome::Succeeds => Ok(Attempted::Succeeded(settle(ctx, doc, pm, writes)?)),
    }
}

enum CardOutcome {
    Succeeds,
    Fails(ApiError),
    NeedsAuthentication,
}

/// What charging a test card does now. Off-session, nobody can
/// authenticate: a card that needs it fails, unless it was set up for
/// off-session payments (or is the card that behaves as if it was).
fn card_outcome(
    behavior: Behavior,
    pm_doc: &Value,
    off_session: bool,
    no_action: bool,
) -> CardOutcome {
    let auth = match behavior {
        Behavior::Succeeds => return CardOutcome::Succeeds,
        Behavior::Declines(reason)
        | Behavior::FailsWhenUsed(reason)
        | Behavior::ChargesFail(reason) => return CardOutcome::Fails(reason.error()),
        Behavior::Authenticates(auth) => auth,
    };
    let set_up = pm_doc["_twin_set_up"] == json!(true);
    let needed = match auth {
        _ if !off_session => true,
        Auth::UnlessSetUp => !set_up,
        Auth::OnSessionOnly => false,
        Auth::Always | Auth::ThenDeclines(_) => true,
    };
    match auth {
        _ if !needed => CardOutcome::Succeeds,
        _ if off_session => CardOutcome::Fails(authentication_required()),
        _ if no_action => CardOutcome::Fails(action_required(true)),
        _ => CardOutcome::NeedsAuthentication,
    }
}

fn no_mandate_error() -> ApiError {
    ApiError::invalid(
        "This Amazon Pay payment method has no active mandate, so it cannot be charged off-session. Set it up with a SetupIntent (usage=off_session) first.",
    )
    .with_status(StatusCode::PAYMENT_REQUIRED)
    .with_type(ErrorType::Card)
    .with_code("payment_method_provider_decline")
    .with_extra("decline_code", json!("generic_decline"))
}

fn action_required(card: bool) -> ApiError {
    let error = ApiError::invalid(
        "The provided payment method requires customer actions to complete, but error_on_requires_action was set.",
    )
    .with_code("payment_intent_action_required");
    if card {
        error
            .with_status(StatusCode::PAYMENT_REQUIRED)
            .with_type(ErrorType::Card)
    } else {
        error
    }
}

fn authentication_required() -> ApiError {
    ApiError::invalid("Your card was declined. This transaction requires authentication.")
        .with_status(StatusCode::PAYMENT_REQUIRED)
        .with_type(ErrorType::Card)
        .with_code("authentication_required")
        .with_extra("decline_code", json!("authentication_required"))
}

/// The charge succeeded: a charge, the intent succeeded, and the payment
/// method saved for later when `setup_future_usage` asks for it.
pub fn settle(
    ctx: &Ctx,
    mut doc: Value,
    pm: &Resolved,
    writes: &mut Vec<Write>,
) -> ApiResult<Value> {
    let customer = doc["customer"].as_str().map(str::to_owned);
    let saving = !doc["setup_future_usage"].is_null() && customer.is_some();
    let saved;
    let pm = if saving {
        saved = pm.set_up();
        &saved
    } else {
        pm
    };
    let mut pm_doc = pm.data().clone();
    match (&customer, saving) {
        (Some(customer), true) => match payment_methods::attach_writes(ctx, pm, customer)? {
            Some((attach, attached)) => {
                writes.extend(attach);
                pm_doc = attached;
            }
            None => writes.push(pm.write(pm_doc.clone())),
        },
        _ => {
            if customer.is_none() && matches!(pm, Resolved::Stored(_)) {
                // Used once without a customer: Stripe will not reuse it.
                pm_doc["_twin_consumed"] = json!(true);
            }
            writes.push(pm.write(pm_doc.clone()));
        }
    }
    if saving
        && pm_doc["type"] == "amazon_pay"
        && let Value::Object(acceptance) = &doc["_twin_mandate_acceptance"]
    {
        let record = mandates::new_mandate(
            &pm_doc,
            Value::Object(acceptance.clone()),
            customer.as_deref(),
            None,
        );
        writes.push(Write::Insert(record));
    }
    let charge = charges::charge_document(&doc, &pm_doc, None, ctx.now());
    doc["status"] = json!("succeeded");
    doc["amount_received"] = doc["amount"].clone();
    doc["latest_charge"] = charge["id"].clone();
    doc["next_action"] = Value::Null;
    doc["last_payment_error"] = Value::Null;
    intents::forget_redirect(&mut doc);
    writes.push(Write::Insert(Record::new("charge", charge.clone())));
    writes.push(Write::Insert(balance_transactions::for_charge(
        &charge, &pm_doc,
    )));
    writes.push(ctx.event("charge.succeeded", &charge, None));
    writes.push(ctx.event("payment_intent.succeeded", &doc, None));
    Ok(doc)
}

/// The charge failed: a failed charge, the intent back to
/// requires_payment_method with the error, which the caller answers with.
pub fn decline(
    ctx: &Ctx,
    mut doc: Value,
    pm_doc: &Value,
    error: ApiError,
    writes: &mut Vec<Write>,
) -> Attempted {
    let charge = charges::charge_document(&doc, pm_doc, Some(&error), ctx.now());
    let mut error_object = error.body()["error"].clone();
    if let Value::Object(map) = &mut error_object {
        map.remove("request_log_url");
        map.insert("charge".into(), charge["id"].clone());
        map.insert("payment_method".into(), strip_hidden(pm_doc.clone()));
        map.insert("payment_method_type".into(), pm_doc["type"].clone());
    }
    doc["status"] = json!("requires_payment_method");
    doc["last_payment_error"] = error_object;
    doc["latest_charge"] = charge["id"].clone();
    doc["payment_method"] = Value::Null;
    doc["next_action"] = Value::Null;
    intents::forget_redirect(&mut doc);
    writes.push(Write::Insert(Record::new("charge", charge.clone())));
    writes.push(ctx.event("charge.failed", &charge, None));
    writes.push(ctx.event("payment_intent.payment_failed", &doc, None));
    // As Stripe's, the error names what failed: the charge, the method
    // tried and the intent as it now stands.
    let error = error
        .with_extra("charge", charge["id"].clone())
        .with_extra("payment_intent", strip_hidden(doc.clone()))
        .with_extra("payment_method", strip_hidden(pm_doc.clone()));
    Attempted::Failed(doc, error)
}

/// The buyer's answer on the authorization page.
pub async fn after_action(
    ctx: &Ctx,
    record: &Record,
    authorized: bool,
    acceptance: Value,
) -> ApiResult<(Vec<Write>, Value)> {
    let pm_id = record.data["payment_method"].as_str().unwrap_or_default();
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("payment_method")).await?;
    let mut writes = Vec::new();
    let mut doc = record.data.clone();
    let attempted = if authorized {
        if doc["_twin_mandate_acceptance"].is_null() && !doc["setup_future_usage"].is_null() {
            doc["_twin_mandate_acceptance"] = acceptance;
        }
        match test_cards::behavior_of(pm.data()) {
            // Authenticated, then declined by the issuer all the same.
            Behavior::Authenticates(Auth::ThenDeclines(reason)) => {
                decline(ctx, doc, pm.data(), reason.error(), &mut writes)
            }
            _ => Attempted::Succeeded(settle(ctx, doc, &pm, &mut writes)?),
        }
    } else {
        let kind = pm.data()["type"].as_str().unwrap_or_default();
        let (code, message) = if kind == "amazon_pay" {
            (
                "payment_method_provider_decline",
                "The customer declined the payment on Amazon Pay.",
            )
        } else {
            (
                "payment_intent_authentication_failure",
                "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
            )
        };
        let error = ApiError::invalid(message).with_code(code);
        decline(ctx, doc, pm.data(), error, &mut writes)
    };
    let doc = attempted.doc().clone();
    writes.insert(0, Write::Update(record.with_data(doc.clone())));
    invoices::after_payment(ctx, &doc, &mut writes).await?;
    Ok((writes, doc))
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
            let doc = strip_hidden(other.doc().clone());
            match call {
                Some(call) => call.respond(doc, CLIENT_VISIBLE).await,
                None => ctx.respond(doc).await,
            }
        }
    }
}

async fn create_payment_intent(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    crate::http::expand::check_paths("payment_intent", &ctx.expand)?;
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
        return ctx.respond(strip_hidden(doc)).await;
    }
    let pm = pm.ok_or_else(missing_payment_method)?;
    let mut moves = Vec::new();
    if changes.error_on_requires_action {
        doc["_twin_no_action"] = json!(true);
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
    call.respond(strip_hidden(record.data), CLIENT_VISIBLE)
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
            let status = record.data["status"].as_str().unwrap_or_default();
            let touches_money = changes.amount.is_some()
                || changes.currency.is_some()
                || changes.customer.is_some()
                || changes.payment_method.is_some()
                || changes.payment_method_data.is_some()
                || changes.payment_method_types.is_some()
                || changes.patch.touches("setup_future_usage")
                || changes.patch.touches("capture_method");
            if touches_money && !CONFIRMABLE.contains(&status) {
                return Err(unexpected_state("update", status, CONFIRMABLE));
            }
            if record.data["_twin_invoice"].is_string() && (changes.amount.is_some() || changes.currency.is_some()) {
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
    ctx.respond(strip_hidden(updated)).await
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
            intents::refuse_checkout_owned(&record, "confirm")?;
            let status = record.data["status"].as_str().unwrap_or_default();
            if !CONFIRMABLE.contains(&status) {
                return Err(unexpected_state("confirm", status, CONFIRMABLE));
            }
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
                doc["_twin_no_action"] = json!(true);
            }
            let attempted = attempt(&ctx, doc, &pm, changes.off_session, &mut moves).await?;
            writes.insert(0, Write::Update(record.with_data(attempted.doc().clone())));
            writes.extend(moves);
            invoices::after_payment(&ctx, attempted.doc(), &mut writes).await?;
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
            intents::refuse_checkout_owned(&record, "cancel")?;
            let status = record.data["status"].as_str().unwrap_or_default();
            if !CANCELABLE.contains(&status) {
                return Err(unexpected_state("cancel", status, CANCELABLE));
            }
            if record.data["_twin_invoice"].is_string() {
                return Err(ApiError::invalid(
                    "You cannot cancel this PaymentIntent because it was created by an invoice. Void the invoice instead.",
                )
                .with_code("payment_intent_unexpected_state"));
            }
            let mut doc = record.data.clone();
            doc["status"] = json!("canceled");
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
    ctx.respond(strip_hidden(canceled)).await
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
