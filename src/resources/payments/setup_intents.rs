//! `/v1/setup_intents`: create, retrieve, update, confirm, cancel and list,
//! with Stripe's state machine:
//!
//! requires_payment_method → requires_confirmation → (requires_action →)
//! succeeded, back to requires_payment_method with `last_setup_error` when
//! the card declines or the buyer refuses, and canceled from any state but
//! succeeded.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::core::bookkeeping::{self, Bookkeeping, SingleUse};
use crate::core::registry::{ObjectSpec, to};
use crate::core::state_machine::{StateMachine, StatusEnum};
use crate::http::api::{AppState, Call, ClientCall, Ctx, ListParams};
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::params::{Params, Patch, Update};
use crate::ids;
use crate::resources::payments::intents;
use crate::resources::payments::mandates;
use crate::resources::payments::payment_methods::{self, Resolved, SUPPORTED_TYPES};
use crate::resources::payments::test_cards::{self, Behavior};
use crate::store::{Filter, ListQuery, Record, Write};

pub const SPEC: ObjectSpec = ObjectSpec::new("setup_intent", "seti")
    .display_name("setupintent")
    .title("SetupIntent")
    .list_url("/v1/setup_intents")
    .fields(&[
        ("customer", to("customer")),
        ("payment_method", to("payment_method")),
        ("mandate", to("mandate")),
        ("single_use_mandate", to("mandate")),
        ("latest_attempt", to("setup_attempt")),
        ("on_behalf_of", to("account")),
        ("application", to("application")),
    ]);
pub mod status;

use status::{Action, Status};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/setup_intents",
            get(list_setup_intents).post(create_setup_intent),
        )
        .route(
            "/v1/setup_intents/{intent}",
            get(retrieve_setup_intent).post(update_setup_intent),
        )
        .route(
            "/v1/setup_intents/{intent}/confirm",
            post(confirm_setup_intent),
        )
        .route(
            "/v1/setup_intents/{intent}/cancel",
            post(cancel_setup_intent),
        )
}

/// Fields Stripe returns when a SetupIntent is retrieved with a publishable key.
const CLIENT_VISIBLE: &[&str] = &[
    "id",
    "object",
    "automatic_payment_methods",
    "cancellation_reason",
    "client_secret",
    "created",
    "description",
    "last_setup_error",
    "livemode",
    "next_action",
    "payment_method",
    "payment_method_types",
    "status",
    "usage",
];
const CLIENT_EXPANDABLE: &[&str] = &["payment_method"];

pub fn new_document(now: i64) -> Value {
    let id = SPEC.new_id();
    json!({
        "id": id,
        "object": "setup_intent",
        "allowed_payment_method_types": null,
        "application": null,
        "automatic_payment_methods": null,
        "cancellation_reason": null,
        "client_secret": format!("{id}_secret_{}", ids::random_base62(32)),
        "created": now,
        "customer": null,
        "customer_account": null,
        "description": null,
        "excluded_payment_method_types": null,
        "flow_directions": null,
        "last_setup_error": null,
        "latest_attempt": null,
        "livemode": false,
        "managed_payments": null,
        "mandate": null,
        "metadata": {},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": [],
        "single_use_mandate": null,
        "status": Status::RequiresPaymentMethod.as_str(),
        "usage": "off_session",
    })
}

/// What a request asks to change on an intent, parsed before any state is
/// read so that bad input fails before anything is written.
#[derive(Default)]
struct Changes {
    patch: Patch,
    customer: Option<String>,
    payment_method: Option<String>,
    payment_method_data: Option<Value>,
    payment_method_types: Option<Vec<String>>,
    mandate_data: Option<Value>,
    return_url: Option<String>,
    single_use: Option<SingleUse>,
    automatic_payment_methods: Option<Value>,
}

/// Which parameters an operation takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Update,
    Confirm,
}

fn parse_changes(
    ctx: &Ctx,
    params: &mut Params,
    operation: Operation,
    publishable: bool,
) -> ApiResult<Changes> {
    let mut changes = Changes::default();
    if operation != Operation::Confirm {
        changes.patch.set_metadata(params.metadata()?);
        if let Some(description) = params.nullable_string("description")? {
            changes.patch.set(
                &["description"],
                match description {
                    Update::Set(d) => json!(d),
                    Update::Unset => Value::Null,
                },
            );
        }
        changes.customer = params.string("customer")?;
        if let Some(directions) = params.string_list("flow_directions")? {
            for direction in &directions {
                params.check_enum("flow_directions", direction, &["inbound", "outbound"])?;
            }
            changes.patch.set(&["flow_directions"], json!(directions));
        }
        if let Some(types) = params.string_list("excluded_payment_method_types")? {
            changes
                .patch
                .set(&["excluded_payment_method_types"], json!(types));
        }
        params.bool("attach_to_self")?;
        changes.payment_method_types = intents::payment_method_types(params, "sets up")?;
    }
    if operation == Operation::Create {
        if let Some(usage) = params.enum_value("usage", &["off_session", "on_session"])? {
            changes.patch.set(&["usage"], json!(usage));
        }
        if let Some(mut automatic) = params.object("automatic_payment_methods")? {
            let enabled = automatic
                .bool("enabled")?
                .ok_or_else(|| ApiError::missing_param(&automatic.name("enabled")))?;
            let redirects = automatic.enum_value("allow_redirects", &["always", "never"])?;
            automatic.finish()?;
            if changes.payment_method_types.is_some() && enabled {
                return Err(ApiError::invalid(
                    "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
                )
                .with_code("parameters_exclusive")
                .with_param("automatic_payment_methods"));
            }
            changes.automatic_payment_methods = Some(
                json!({"allow_redirects": redirects.unwrap_or_else(|| "always".to_owned()), "enabled": enabled}),
            );
        }
        if let Some(mut single_use) = params.object("single_use")? {
            let amount = single_use
                .int_in("amount", 1, 99_999_999)?
                .ok_or_else(|| ApiError::missing_param(&single_use.name("amount")))?;
            let currency = single_use.required_string("currency")?.to_lowercase();
            single_use.finish()?;
            changes.single_use = Some(SingleUse { amount, currency });
        }
    }
    (changes.payment_method, changes.payment_method_data) =
        intents::payment_method_choice(ctx, params)?;
    if let Some(options) = params.object("payment_method_options")? {
        let options = payment_method_options(options)?;
        changes.patch.set(&["payment_method_options"], options);
    }
    if operation != Operation::Update {
        if let Some(data) = params.object("mandate_data")? {
            changes.mandate_data = Some(mandate_data(ctx, data, publishable)?);
        }
        if let Some(url) = params.string("return_url")? {
            changes.return_url = Some(intents::check_return_url(&url)?);
        }
    }
    params.bool("use_stripe_sdk")?;
    if params.contains("confirmation_token") {
        return Err(ApiError::invalid_param(
            "confirmation_token",
            "stripe-twin does not emulate ConfirmationTokens yet: pass payment_method or payment_method_data.",
        ));
    }
    Ok(changes)
}

fn payment_method_options(mut options: Params) -> ApiResult<Value> {
    let mut out = serde_json::Map::new();
    if let Some(amazon) = options.object("amazon_pay")? {
        amazon.finish()?;
        out.insert("amazon_pay".into(), json!({}));
    }
    if let Some(mut card) = options.object("card")? {
        let three_d_secure = card
            .enum_value("request_three_d_secure", &["any", "automatic", "challenge"])?
            .unwrap_or_else(|| "automatic".to_owned());
        let network = card.string("network")?;
        card.take_node("mandate_options");
        card.finish()?;
        out.insert(
            "card".into(),
            json!({"mandate_options": null, "network": network, "request_three_d_secure": three_d_secure}),
        );
    }
    options.finish()?;
    Ok(Value::Object(out))
}

fn mandate_data(ctx: &Ctx, mut data: Params, publishable: bool) -> ApiResult<Value> {
    let mut acceptance = data
        .object("customer_acceptance")?
        .ok_or_else(|| ApiError::missing_param(&data.name("customer_acceptance")))?;
    let kind = acceptance
        .enum_value("type", &["offline", "online"])?
        .ok_or_else(|| ApiError::missing_param(&acceptance.name("type")))?;
    let accepted_at = acceptance.int("accepted_at")?.unwrap_or_else(|| ctx.now());
    let mut online = Value::Null;
    if kind == "online" {
        let mut details = acceptance
            .object("online")?
            .ok_or_else(|| ApiError::missing_param(&acceptance.name("online")))?;
        let infer = details.bool("infer_from_client")?.unwrap_or(false);
        if infer && !publishable {
            return Err(ApiError::invalid_param(
                details.name("infer_from_client"),
                "infer_from_client can only be used with a publishable key (from the customer's browser); pass ip_address and user_agent instead.",
            ));
        }
        let (ip, agent) = if infer {
            (ctx.client.ip_address.clone(), ctx.client.user_agent.clone())
        } else {
            (
                details.required_string("ip_address")?,
                details.required_string("user_agent")?,
            )
        };
        details.finish()?;
        online = json!({"ip_address": ip, "user_agent": agent});
    } else if let Some(offline) = acceptance.object("offline")? {
        offline.finish()?;
    }
    acceptance.finish()?;
    data.finish()?;
    let mut accepted = json!({"accepted_at": accepted_at, "type": kind});
    if kind == "online" {
        accepted["online"] = online;
    } else {
        accepted["offline"] = json!({});
    }
    Ok(accepted)
}

/// Applies the parsed changes to the document; the PaymentMethod's own
/// write (a fresh one is inserted) joins `writes`.
fn apply_changes(
    doc: &mut Value,
    changes: &Changes,
    pm: Option<&Resolved>,
    writes: &mut Vec<Write>,
) -> ApiResult<()> {
    changes.patch.apply(doc)?;
    if let Some(customer) = &changes.customer {
        intents::set_customer(doc, customer, "SetupIntent")?;
    }
    if let Some(types) = &changes.payment_method_types {
        doc["payment_method_types"] = json!(types);
        doc["allowed_payment_method_types"] = json!(types);
        doc["automatic_payment_methods"] = Value::Null;
    }
    if let Some(pm) = pm {
        status::Machine::apply(doc, Action::AttachPaymentMethod)?;
        intents::choose_payment_method(doc, pm, writes);
    }
    intents::keep_for_attempt(
        doc,
        changes.mandate_data.as_ref(),
        changes.return_url.as_deref(),
    );
    if let Some(single_use) = &changes.single_use {
        bookkeeping::update(doc, |b| b.single_use = Some(single_use.clone()));
    }
    if doc["payment_method_options"].get("card").is_none()
        && intents::accepted_types(doc).iter().any(|t| t == "card")
    {
        doc["payment_method_options"]["card"] = json!({"mandate_options": null, "network": null, "request_three_d_secure": "automatic"});
    }
    Ok(())
}

/// The result of confirming: the intent moved on, or the card declined
/// (the failed attempt is recorded, and the caller gets Stripe's 402).
pub enum Confirmed {
    Moved(Value),
    Declined(Value, ApiError),
}

/// Confirms `doc` (already carrying the request's changes) with `pm`.
pub fn confirm_writes(
    ctx: &Ctx,
    mut doc: Value,
    pm: Resolved,
    writes: &mut Vec<Write>,
) -> ApiResult<Confirmed> {
    status::Machine::apply(&mut doc, Action::Confirm)?;
    let pm_doc = pm.data().clone();
    let kind = pm_doc["type"].as_str().unwrap_or_default().to_owned();
    let types = intents::accepted_types(&doc);
    if !types.contains(&kind) {
        return Err(ApiError::invalid_param(
            "payment_method",
            format!(
                "The PaymentMethod provided ({kind}) is not allowed for this SetupIntent. Please attach a PaymentMethod of one of the following types: {}. Alternatively, update the allowed payment_method_types for this SetupIntent to include \"{kind}\".",
                types.join(", ")
            ),
        ));
    }
    payment_methods::check_reusable(&pm_doc)?;
    if let (Some(owner), Some(customer)) = (pm_doc["customer"].as_str(), doc["customer"].as_str())
        && owner != customer
    {
        return Err(ApiError::invalid_param(
            "payment_method",
            format!(
                "The provided PaymentMethod ({}) is attached to another Customer than the one on this SetupIntent ({customer}).",
                pm.record().id
            ),
        ));
    }
    doc["last_setup_error"] = Value::Null;
    doc["payment_method"] = json!(pm.record().id);
    match (kind.as_str(), test_cards::behavior_of(&pm_doc)) {
        ("amazon_pay", _) => {
            if Bookkeeping::of(&doc).return_url.is_none() {
                return Err(ApiError::invalid_param(
                    "return_url",
                    "You must provide a `return_url` when confirming a SetupIntent with the payment method type amazon_pay.",
                ));
            }
            writes.push(pm_write(&pm));
            status::Machine::apply(&mut doc, Action::RequireAction)?;
            Ok(Confirmed::Moved(intents::require_action(
                ctx,
                doc,
                "amazon_pay",
                writes,
            )))
        }
        (_, Behavior::Authenticates(_)) => {
            writes.push(pm_write(&pm));
            status::Machine::apply(&mut doc, Action::RequireAction)?;
            Ok(Confirmed::Moved(intents::require_action(
                ctx,
                doc,
                "three_d_secure",
                writes,
            )))
        }
        // Setting up runs the issuer's check and Radar; only charges fail
        // for ChargesFail cards.
        (_, Behavior::Declines(decline) | Behavior::FailsWhenUsed(decline)) => {
            let error = decline.error();
            writes.push(pm_write(&pm));
            let failed = fail(ctx, doc, error_object(ctx, &error, &pm_doc), writes)?;
            let error = error
                .with_extra("setup_intent", ctx.strip_hidden(failed.clone()))
                .with_extra("payment_method", ctx.strip_hidden(pm_doc.clone()));
            Ok(Confirmed::Declined(failed, error))
        }
        _ => Ok(Confirmed::Moved(succeed(ctx, doc, &pm, None, writes)?)),
    }
}

fn pm_write(pm: &Resolved) -> Write {
    pm.write(pm.data().clone())
}

/// Stripe's error hash as `last_setup_error` shows it.
fn error_object(ctx: &Ctx, error: &ApiError, pm: &Value) -> Value {
    let mut body = error.body()["error"].clone();
    if let Value::Object(map) = &mut body {
        map.remove("request_log_url");
        map.insert("payment_method".into(), ctx.strip_hidden(pm.clone()));
    }
    body
}

/// The setup succeeded: the PaymentMethod is attached to the intent's
/// customer, a mandate records the customer's acceptance where one is
/// needed. `page_acceptance` is what the authorization page saw when the
/// request carried no `mandate_data`.
pub fn succeed(
    ctx: &Ctx,
    mut doc: Value,
    pm: &Resolved,
    page_acceptance: Option<Value>,
    writes: &mut Vec<Write>,
) -> ApiResult<Value> {
    let pm = &pm.set_up();
    let pm_doc = pm.data().clone();
    match doc["customer"].as_str() {
        Some(customer) => match payment_methods::attach_writes(ctx, pm, customer)? {
            Some((attach, _)) => writes.extend(attach),
            None => writes.push(pm_write(pm)),
        },
        None => writes.push(pm_write(pm)),
    }
    let kind = pm_doc["type"].as_str().unwrap_or_default();
    let kept = Bookkeeping::of(&doc);
    let acceptance = match (kept.mandate_acceptance, page_acceptance) {
        (Some(given @ Value::Object(_)), _) => Some(given),
        (_, Some(seen)) if kind == "amazon_pay" && doc["usage"] == "off_session" => Some(seen),
        _ => None,
    };
    if let Some(acceptance) = acceptance {
        let single_use = kept.single_use.map(|s| json!(s));
        let field = if single_use.is_some() {
            "single_use_mandate"
        } else {
            "mandate"
        };
        let mut pm_doc = pm_doc.clone();
        pm_doc["id"] = json!(pm.record().id);
        let record =
            mandates::new_mandate(&pm_doc, acceptance, doc["customer"].as_str(), single_use);
        doc[field] = json!(record.id);
        writes.push(Write::Insert(record));
    }
    status::Machine::apply(&mut doc, Action::Succeed)?;
    doc["next_action"] = Value::Null;
    doc["payment_method"] = json!(pm.record().id);
    intents::forget_redirect(&mut doc);
    writes.push(ctx.event("setup_intent.succeeded", &doc, None));
    Ok(doc)
}

/// The attempt failed: back to requires_payment_method with the error.
pub fn fail(ctx: &Ctx, mut doc: Value, error: Value, writes: &mut Vec<Write>) -> ApiResult<Value> {
    status::Machine::apply(&mut doc, Action::Fail)?;
    doc["last_setup_error"] = error;
    doc["next_action"] = Value::Null;
    doc["payment_method"] = Value::Null;
    intents::forget_redirect(&mut doc);
    writes.push(ctx.event("setup_intent.setup_failed", &doc, None));
    Ok(doc)
}

/// Checks that the objects a request names exist before anything is written.
async fn check_customer(ctx: &Ctx, changes: &Changes) -> ApiResult<()> {
    if let Some(customer) = &changes.customer {
        payment_methods::load_customer(ctx, customer, Named::InParam("customer")).await?;
    }
    Ok(())
}

/// Turns a confirmation's outcome into the response.
async fn answer(
    ctx: &Ctx,
    call: Option<&ClientCall>,
    confirmed: Confirmed,
) -> ApiResult<Json<Value>> {
    match confirmed {
        Confirmed::Moved(doc) => match call {
            Some(call) => call.respond(ctx.strip_hidden(doc), CLIENT_VISIBLE).await,
            None => ctx.respond(ctx.strip_hidden(doc)).await,
        },
        Confirmed::Declined(_, error) => Err(error),
    }
}

async fn create_setup_intent(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    ctx.check_expand_paths("setup_intent")?;
    // Its customer's clock decides its time: read it first.
    ctx.follow_customer_param(&params).await?;
    let confirm = params.bool("confirm")?.unwrap_or(false);
    let changes = parse_changes(&ctx, &mut params, Operation::Create, false)?;
    params.finish()?;
    if !confirm {
        for (given, param) in [
            (changes.mandate_data.is_some(), "mandate_data"),
            (changes.return_url.is_some(), "return_url"),
        ] {
            if given {
                return Err(ApiError::invalid_param(
                    param,
                    format!(
                        "You can only pass `{param}` when confirming the SetupIntent (confirm=true)."
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
    let mut doc = new_document(ctx.now());
    if changes.payment_method_types.is_none() {
        // Without a list, automatic payment methods choose among what this
        // "account" has enabled: every type stripe-twin supports.
        let automatic = changes
            .automatic_payment_methods
            .clone()
            .unwrap_or_else(|| json!({"allow_redirects": "always", "enabled": true}));
        doc["payment_method_types"] = if automatic["enabled"] == json!(true) {
            json!(SUPPORTED_TYPES)
        } else {
            json!(["card"])
        };
        doc["automatic_payment_methods"] = automatic;
    }
    let mut writes = Vec::new();
    // When confirming, the confirmation writes the PaymentMethod.
    let pm_now = if confirm { None } else { pm.as_ref() };
    apply_changes(&mut doc, &changes, pm_now, &mut writes)?;
    let record = Record::new("setup_intent", doc.clone());
    let created_event = ctx.event("setup_intent.created", &doc, None);
    if !confirm {
        writes.push(Write::Insert(record));
        writes.push(created_event);
        ctx.commit(&writes).await?;
        return ctx.respond(ctx.strip_hidden(doc)).await;
    }
    let pm = pm.ok_or_else(missing_payment_method)?;
    let mut confirm_writes_list = Vec::new();
    let outcome = confirm_writes(&ctx, doc, pm, &mut confirm_writes_list)?;
    let final_doc = match &outcome {
        Confirmed::Moved(d) | Confirmed::Declined(d, _) => d.clone(),
    };
    writes.push(Write::Insert(record.with_data(final_doc)));
    writes.push(created_event);
    writes.extend(confirm_writes_list);
    ctx.commit(&writes).await?;
    answer(&ctx, None, outcome).await
}

fn missing_payment_method() -> ApiError {
    ApiError::invalid(
        "You cannot confirm this SetupIntent because it's missing a payment method. You can either update the SetupIntent with a payment method and then confirm it again, or confirm it again directly with a payment method.",
    )
    .with_code("setup_intent_unexpected_state")
}

async fn retrieve_setup_intent(
    Path(id): Path<String>,
    mut call: ClientCall,
) -> ApiResult<Json<Value>> {
    let record = call
        .load_client_object("setup_intent", &id, CLIENT_EXPANDABLE)
        .await?;
    std::mem::take(&mut call.params).finish()?;
    call.respond(call.ctx.strip_hidden(record.data), CLIENT_VISIBLE)
        .await
}

async fn update_setup_intent(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let changes = parse_changes(&ctx, &mut params, Operation::Update, false)?;
    params.finish()?;
    check_customer(&ctx, &changes).await?;
    let updated = ctx
        .retry(|| async {
            let record = ctx.load("setup_intent", &id, "intent").await?;
            let only_notes = changes.customer.is_none()
                && changes.payment_method.is_none()
                && changes.payment_method_data.is_none()
                && changes.payment_method_types.is_none()
                && !changes.patch.touches("payment_method_options")
                && !changes.patch.touches("flow_directions");
            if !only_notes {
                status::Machine::check(&record.data, Action::Update)?;
            }
            let pm = intents::requested_payment_method(
                &ctx,
                changes.payment_method.as_deref(),
                changes.payment_method_data.as_ref(),
            )
            .await?;
            let mut doc = record.data.clone();
            let mut writes = Vec::new();
            apply_changes(&mut doc, &changes, pm.as_ref(), &mut writes)?;
            // Stripe has no setup_intent.updated event: an update only writes.
            if doc != record.data {
                writes.insert(0, Write::Update(record.with_data(doc.clone())));
            }
            Ok((writes, doc))
        })
        .await?;
    ctx.respond(ctx.strip_hidden(updated)).await
}

async fn confirm_setup_intent(
    Path(id): Path<String>,
    mut call: ClientCall,
) -> ApiResult<Json<Value>> {
    call.load_client_object("setup_intent", &id, CLIENT_EXPANDABLE)
        .await?;
    let publishable = call.publishable;
    let mut params = std::mem::take(&mut call.params);
    let changes = parse_changes(&call.ctx, &mut params, Operation::Confirm, publishable)?;
    params.finish()?;
    let ctx = call.ctx.clone();
    let outcome = ctx
        .retry(|| async {
            let record = ctx.load("setup_intent", &id, "intent").await?;
            intents::refuse_checkout_owned(&record, || status::checkout_owned(Action::Confirm))?;
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
                    None => {
                        status::Machine::check(&record.data, Action::Confirm)?;
                        return Err(missing_payment_method());
                    }
                },
            };
            let mut moves = Vec::new();
            let outcome = confirm_writes(&ctx, doc, pm, &mut moves)?;
            let final_doc = match &outcome {
                Confirmed::Moved(d) | Confirmed::Declined(d, _) => d.clone(),
            };
            writes.insert(0, Write::Update(record.with_data(final_doc)));
            writes.extend(moves);
            Ok((writes, outcome))
        })
        .await?;
    answer(&ctx, Some(&call), outcome).await
}

async fn cancel_setup_intent(
    Path(id): Path<String>,
    Call { ctx, mut params }: Call,
) -> ApiResult<Json<Value>> {
    let reason = params.enum_value(
        "cancellation_reason",
        &["abandoned", "duplicate", "requested_by_customer"],
    )?;
    params.finish()?;
    let canceled = ctx
        .mutate("setup_intent", &id, "intent", |record| {
            intents::refuse_checkout_owned(&record, || status::checkout_owned(Action::Cancel))?;
            let mut doc = record.data.clone();
            status::Machine::apply(&mut doc, Action::Cancel)?;
            doc["cancellation_reason"] = json!(reason);
            doc["next_action"] = Value::Null;
            intents::forget_redirect(&mut doc);
            Ok((
                vec![
                    Write::Update(record.with_data(doc.clone())),
                    ctx.event("setup_intent.canceled", &doc, None),
                ],
                doc,
            ))
        })
        .await?;
    ctx.respond(ctx.strip_hidden(canceled)).await
}

async fn list_setup_intents(Call { ctx, mut params }: Call) -> ApiResult<Json<Value>> {
    let paging = ListParams::take(&mut params)?;
    let customer = params.string("customer")?;
    let payment_method = params.string("payment_method")?;
    params.bool("attach_to_self")?;
    params.finish()?;
    let mut query = ListQuery::new("setup_intent");
    if let Some(customer) = customer {
        query.filters.push(Filter::Customer(customer));
    }
    if let Some(pm) = payment_method {
        query
            .filters
            .push(Filter::Field("payment_method", vec![json!(pm)]));
    }
    ctx.list(query, &paging, "/v1/setup_intents").await
}
