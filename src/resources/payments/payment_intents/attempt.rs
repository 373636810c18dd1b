//! One payment attempt on a PaymentIntent and where it ends: the checks on
//! the payment method, what a test card or amazon_pay does (`attempt`), the
//! charge that succeeded (`settle`) or failed (`decline`), and the buyer's
//! answer on the authorization page (`after_action`). Invoices,
//! subscriptions and Checkout pay through `attempt` too.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::status::{self, Action};
use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::ctx::Settlement;
use crate::http::error::{ApiError, ApiResult, ErrorType, Named};
use crate::resources::payments::balance_transactions;
use crate::resources::payments::charges;
use crate::resources::payments::intents;
use crate::resources::payments::mandates;
use crate::resources::payments::payment_methods::{self, Resolved};
use crate::resources::payments::test_cards::{self, Auth, Behavior};
use crate::store::{Record, Write};

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

/// Whether the customer is there to authenticate a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    OnSession,
    /// Nobody can authenticate: a card that needs it fails.
    OffSession,
    /// A subscription's renewal, off-session: a card that needs
    /// authentication leaves the intent waiting for the customer
    /// (`requires_action`), as Stripe Billing does.
    Renewal,
}

impl From<bool> for Presence {
    fn from(off_session: bool) -> Self {
        if off_session {
            Presence::OffSession
        } else {
            Presence::OnSession
        }
    }
}

/// Tries to pay `doc` (already carrying the request's changes) with `pm`.
/// Off-session, nobody can authenticate: cards that need it fail (or wait,
/// on a renewal), and amazon_pay charges through the payment method's
/// active mandate.
pub async fn attempt(
    ctx: &Ctx,
    mut doc: Value,
    pm: &Resolved,
    presence: impl Into<Presence>,
    writes: &mut Vec<Write>,
) -> ApiResult<Attempted> {
    let presence = presence.into();
    let off_session = presence != Presence::OnSession;
    status::Machine::apply(&mut doc, Action::Confirm)?;
    // error_on_requires_action (this confirmation only): fail instead of
    // waiting for the customer.
    let no_action = bookkeeping::update(&mut doc, |b| std::mem::take(&mut b.no_action));
    let pm_doc = pm.data().clone();
    let kind = pm_doc["type"].as_str().unwrap_or_default().to_owned();
    check_payment_method(&doc, pm, &pm_doc, &kind)?;
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
                let error = match mandates::latest_for(ctx, &pm.record().id).await? {
                    Some(mandate) => inactive_mandate_error(&mandate.id),
                    None => no_mandate_error(),
                };
                return failing(doc, error, writes);
            }
            return Ok(Attempted::Succeeded(settle(ctx, doc, pm, writes)?));
        }
        if no_action {
            return failing(doc, action_required(false), writes);
        }
        if Bookkeeping::of(&doc).return_url.is_none() {
            return Err(ApiError::invalid_param(
                "return_url",
                "You must provide a `return_url` when confirming a PaymentIntent with the payment method type amazon_pay.",
            ));
        }
        writes.push(pm.write(pm_doc.clone()));
        status::Machine::apply(&mut doc, Action::RequireAction)?;
        return Ok(Attempted::RequiresAction(intents::require_action(
            ctx,
            doc,
            "amazon_pay",
            writes,
        )));
    }
    match card_outcome(behavior, &pm_doc, presence, no_action) {
        CardOutcome::Fails(error) => failing(doc, error, writes),
        CardOutcome::NeedsAuthentication => {
            writes.push(pm.write(pm_doc.clone()));
            status::Machine::apply(&mut doc, Action::RequireAction)?;
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

/// Whether the intent may be paid with `pm`: a type it accepts, reusable,
/// and not another customer's.
fn check_payment_method(doc: &Value, pm: &Resolved, pm_doc: &Value, kind: &str) -> ApiResult<()> {
    let types = intents::accepted_types(doc);
    if !types.iter().any(|t| t == kind) {
        return Err(ApiError::invalid_param(
            "payment_method",
            format!(
                "The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please attach a PaymentMethod of one of the following types: {}. Alternatively, update the allowed payment_method_types for this PaymentIntent to include \"{kind}\".",
                types.join(", ")
            ),
        ));
    }
    payment_methods::check_reusable(pm_doc)?;
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
    Ok(())
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
    presence: Presence,
    no_action: bool,
) -> CardOutcome {
    let off_session = presence != Presence::OnSession;
    let auth = match behavior {
        Behavior::Succeeds => return CardOutcome::Succeeds,
        Behavior::Declines(reason)
        | Behavior::FailsWhenUsed(reason)
        | Behavior::ChargesFail(reason) => return CardOutcome::Fails(reason.error()),
        Behavior::Authenticates(auth) => auth,
    };
    let set_up = Bookkeeping::of(pm_doc).set_up;
    let needed = match auth {
        _ if !off_session => true,
        Auth::UnlessSetUp => !set_up,
        Auth::OnSessionOnly => false,
        Auth::Always | Auth::ThenDeclines(_) => true,
    };
    match auth {
        _ if !needed => CardOutcome::Succeeds,
        _ if presence == Presence::OffSession => CardOutcome::Fails(authentication_required()),
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

/// The payment method's mandate exists but is no longer active (the buyer
/// closed the recurring charge permission on Amazon Pay).
fn inactive_mandate_error(mandate: &str) -> ApiError {
    ApiError::invalid(format!(
        "The mandate {mandate} is inactive: the buyer closed the recurring charge permission on Amazon Pay, so this payment method cannot be charged off-session. Set it up again with a SetupIntent."
    ))
    .with_status(StatusCode::PAYMENT_REQUIRED)
    .with_code("payment_intent_mandate_invalid")
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
                bookkeeping::update(&mut pm_doc, |b| b.consumed = true);
            }
            writes.push(pm.write(pm_doc.clone()));
        }
    }
    if saving
        && pm_doc["type"] == "amazon_pay"
        && let Some(acceptance @ Value::Object(_)) = Bookkeeping::of(&doc).mandate_acceptance
    {
        let record = mandates::new_mandate(&pm_doc, acceptance, customer.as_deref(), None);
        writes.push(Write::Insert(record));
    }
    let charge = charges::charge_document(&doc, &pm_doc, None, ctx.now());
    status::Machine::apply(&mut doc, Action::Succeed)?;
    doc["amount_received"] = doc["amount"].clone();
    doc["latest_charge"] = charge["id"].clone();
    doc["next_action"] = Value::Null;
    doc["last_payment_error"] = Value::Null;
    intents::forget_redirect(&mut doc);
    writes.push(Write::Insert(Record::new("charge", charge.clone())));
    let transaction = balance_transactions::for_charge(&charge, &pm_doc);
    writes.push(Write::Schedule(balance_transactions::available_item(
        ctx,
        &transaction,
    )));
    writes.push(Write::Insert(transaction));
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
) -> ApiResult<Attempted> {
    let charge = charges::charge_document(&doc, pm_doc, Some(&error), ctx.now());
    let mut error_object = error.body()["error"].clone();
    if let Value::Object(map) = &mut error_object {
        map.remove("request_log_url");
        map.insert("charge".into(), charge["id"].clone());
        map.insert("payment_method".into(), ctx.strip_hidden(pm_doc.clone()));
        map.insert("payment_method_type".into(), pm_doc["type"].clone());
    }
    status::Machine::apply(&mut doc, Action::Fail)?;
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
        .with_extra("payment_intent", ctx.strip_hidden(doc.clone()))
        .with_extra("payment_method", ctx.strip_hidden(pm_doc.clone()));
    Ok(Attempted::Failed(doc, error))
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
        if !doc["setup_future_usage"].is_null() {
            bookkeeping::update(&mut doc, |b| {
                b.mandate_acceptance.get_or_insert(acceptance);
            });
        }
        match test_cards::behavior_of(pm.data()) {
            // Authenticated, then declined by the issuer all the same.
            Behavior::Authenticates(Auth::ThenDeclines(reason)) => {
                decline(ctx, doc, pm.data(), reason.error(), &mut writes)?
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
        decline(ctx, doc, pm.data(), error, &mut writes)?
    };
    let doc = attempted.doc().clone();
    writes.insert(0, Write::Update(record.with_data(doc.clone())));
    ctx.intent_moved(&doc, &mut writes).await?;
    Ok((writes, doc))
}
