//! Paying on the hosted page: the buyer's submission (a customer, then a
//! subscription, then the payment, each committed on its own), the intent
//! it confirms, the session's completion, and its completion after an
//! intent succeeds on the Amazon Pay / 3-D Secure page (`after_intent`).
//!
//! As in the current API, the PaymentIntent (payment mode) or Subscription
//! (subscription mode) is made when the buyer first submits the page. The
//! intent carries the session's ID, so whichever path makes it succeed
//! completes the session in the same transaction.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::expiry::{as_seen, is_due};
use super::sessions::{OBJECT, SESSION_ID_TEMPLATE, page_url};
use super::status::{self, Action};
use crate::core::bookkeeping::{self, Bookkeeping};
use crate::core::state_machine::StateMachine;
use crate::http::api::Ctx;
use crate::http::ctx::Settlement;
use crate::http::error::{ApiError, ApiResult, Named};
use crate::http::form::Node;
use crate::resources::billing::subscriptions;
use crate::resources::catalog::prices;
use crate::resources::customers;
use crate::resources::payments::intents;
use crate::resources::payments::payment_intents::{self, Attempted};
use crate::resources::payments::payment_methods::Resolved;
use crate::resources::payments::setup_intents::{self, Confirmed};
use crate::store::{Record, Write};

/// Where the Amazon Pay / 3-D Secure page sends the buyer back to.
fn intent_return_url(origin: &str, session: &Value) -> String {
    format!("{}/return", page_url(origin, session))
}

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
    if status::Machine::check(&record.data, Action::Complete).is_err() {
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
                if Bookkeeping::of(&record.data).customer.is_some() {
                    return Ok((Vec::new(), Ok(())));
                }
                let mut customer = customers::new_customer_document(ctx.now());
                customer["email"] = json!(email);
                customer["name"] = name.clone();
                let mut doc = record.data.clone();
                bookkeeping::update(&mut doc, |b| {
                    b.customer = customer["id"].as_str().map(str::to_owned);
                });
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
                if Bookkeeping::of(&record.data).subscription.is_some() {
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
    let data = &Bookkeeping::of(session)
        .subscription_data
        .unwrap_or_default();
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
    bookkeeping::update(&mut doc, |b| {
        b.subscription = sub["id"].as_str().map(str::to_owned);
    });
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
            let sub_id = Bookkeeping::of(session).subscription.unwrap_or_default();
            let sub = ctx.load("subscription", &sub_id, "subscription").await?;
            let intent_id = match sub.data["pending_setup_intent"].as_str() {
                Some(setup_intent) => Some(setup_intent.to_owned()),
                None => match sub.data["latest_invoice"].as_str() {
                    Some(invoice) => {
                        let invoice = ctx.load("invoice", invoice, "invoice").await?;
                        Bookkeeping::of(&invoice.data).payment_intent
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
            if let Some(intent_id) = Bookkeeping::of(session).intent {
                let record = ctx.load(object, &intent_id, "intent").await?;
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
pub(super) fn new_intent_document(
    session: &Value,
    object: &str,
    customer: Option<&str>,
    now: i64,
) -> Value {
    let types = intents::accepted_types(session);
    let mut doc = if object == "setup_intent" {
        let mut doc = setup_intents::new_document(now);
        let data = &Bookkeeping::of(session)
            .setup_intent_data
            .unwrap_or_default();
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
        let data = &Bookkeeping::of(session)
            .payment_intent_data
            .unwrap_or_default();
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
    bookkeeping::update(&mut doc, |b| {
        b.checkout_session = session["id"].as_str().map(str::to_owned);
    });
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
    bookkeeping::update(&mut session, |b| b.email = Some(email.to_owned()));
    let customer = buyer(&session);
    let mut writes = Vec::new();
    let Some((intent, is_new)) = session_intent(ctx, &session, customer.as_deref()).await? else {
        // Nothing to pay or set up (a free subscription): done.
        complete(ctx, &mut session, None, &mut writes).await?;
        writes.insert(0, Write::Update(record.with_data(session.clone())));
        return Ok((writes, Submitted::Completed(session)));
    };
    let mut doc = intent.data.clone();
    bookkeeping::update(&mut doc, |b| {
        b.checkout_session = Some(id.clone());
        b.return_url = Some(intent_return_url(&ctx.origin, &session));
        if session["ui_mode"] == "embedded_page" {
            // Its 3-D Secure page shows inside the merchant's page too.
            b.framed = true;
        }
    });
    if doc["customer"].is_null() && customer.is_some() {
        doc["customer"] = json!(customer);
    }
    bookkeeping::update(&mut session, |b| b.intent = Some(intent.id.clone()));
    if intent.object == "payment_intent" && session["mode"] == "payment" {
        // Stripe shows the PaymentIntent once the buyer's confirm made it.
        session["payment_intent"] = json!(intent.id);
    }
    let mut moves = Vec::new();
    let (final_doc, failure) = if intent.object == "setup_intent" {
        if is_new {
            moves.push(ctx.event("setup_intent.created", &doc, None));
        }
        match setup_intents::confirm_writes(ctx, doc, pm, &mut moves)? {
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
        ctx.intent_moved(&final_doc, &mut writes).await?;
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
    let Some(id) = Bookkeeping::of(intent).checkout_session else {
        return Ok(());
    };
    if intent["status"] != "succeeded" {
        return Ok(());
    }
    let record = ctx.load(OBJECT, &id, "session").await?;
    // Stripe: after it expires, a customer can't complete a session (which
    // `complete` refuses).
    let mut session = as_seen(record.data.clone(), ctx.now());
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
    status::Machine::apply(session, Action::Complete)?;
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
    let email = Bookkeeping::of(session).email.filter(|e| !e.is_empty());
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
            let sub_id = Bookkeeping::of(session).subscription.unwrap_or_default();
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
    let Some(intent_id) = Bookkeeping::of(session).intent else {
        return Ok(None);
    };
    let Some(intent) = ctx.get(&intent_id).await? else {
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
        .map(str::to_owned)
        .or_else(|| Bookkeeping::of(session).customer)
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
