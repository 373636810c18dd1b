//! The pages a buyer is redirected to when a SetupIntent or a PaymentIntent
//! needs their action: a test-mode Amazon Pay consent screen, and a 3-D
//! Secure stand-in for cards that require authentication. Each URL holds an
//! unguessable token for one attempt on one intent; the buttons are plain
//! forms (no JavaScript):
//!
//! `POST /authorize/{token}` with `outcome=authorize` or `outcome=fail` →
//! `303 See Other` to the intent's return_url with `setup_intent` and
//! `setup_intent_client_secret` (or `payment_intent` and
//! `payment_intent_client_secret`) and `redirect_status` appended.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use crate::core::bookkeeping::Bookkeeping;
use crate::http::api::{AppState, Ctx, read_body};
use crate::http::error::{ApiResult, Named};
use crate::http::form::{self, Node};
use crate::pages::{PageFor, PageTarget, escape, money, page, see_other, too_large_page};
use crate::resources::checkout::sessions as checkout_sessions;
use crate::resources::payments::payment_methods;
use crate::resources::payments::setup_intents;
use crate::store::{Record, Write};

pub fn router() -> Router<AppState> {
    Router::new().route("/authorize/{token}", get(show_page).post(submit_page))
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not found",
        "<h1>This authorization link is not valid</h1><p>It does not belong to any payment or setup on this server.</p>",
    )
}

/// What the buyer authorizes, in words: `payment` or `setup`.
fn noun(intent_object: &str) -> &'static str {
    if intent_object == "payment_intent" {
        "payment"
    } else {
        "setup"
    }
}

/// The page of an attempt that is over (authorized, failed or replaced by a
/// newer one), linking back to the Checkout page it came from, if any.
fn no_longer_pending_page(
    status: StatusCode,
    intent: &Record,
    checkout_page: Option<&str>,
) -> Response {
    let state = intent.data["status"].as_str().unwrap_or("unknown");
    let next = match checkout_page {
        Some(url) => format!(
            r#"<p><a id="checkout" href="{}">Back to checkout</a></p>"#,
            escape(url)
        ),
        None => "<p>Start again from the merchant's site if needed.</p>".to_owned(),
    };
    page(
        status,
        "Already completed",
        &format!(
            "<h1>Nothing left to authorize</h1><p>This {} is no longer waiting for you: its status is <strong>{}</strong>.</p>{next}",
            noun(&intent.object),
            escape(state)
        ),
    )
}

/// The page of the Checkout Session the intent belongs to, if it does.
async fn checkout_page_of(
    state: &AppState,
    account: &str,
    origin: &str,
    intent: &Value,
) -> Option<String> {
    let id = Bookkeeping::of(intent).checkout_session?;
    let session = state.store().get(account, &id).await.ok().flatten()?;
    Some(checkout_sessions::page_url(origin, &session.data))
}

/// The redirect record (its token, its kind) and its intent, with the
/// account they live in: what an authorization page is for.
struct Attempt {
    token: String,
    account: String,
    kind: String,
    intent: Record,
}

impl PageTarget for Attempt {
    type Path = String;

    async fn find(state: &AppState, token: String) -> ApiResult<Option<(String, Self)>> {
        Ok(find_attempt(state, token)
            .await?
            .map(|attempt| (attempt.account.clone(), attempt)))
    }

    fn not_found() -> Response {
        not_found_page()
    }

    fn object_id(&self) -> &str {
        &self.intent.id
    }
}

async fn find_attempt(state: &AppState, token: String) -> ApiResult<Option<Attempt>> {
    let Some((account, redirect)) = state.store().find(&token).await? else {
        return Ok(None);
    };
    if redirect.object != "redirect" {
        return Ok(None);
    }
    let intent_id = redirect.data["setup_intent"]
        .as_str()
        .or_else(|| redirect.data["payment_intent"].as_str())
        .unwrap_or_default();
    let Some(intent) = state.store().get(&account, intent_id).await? else {
        return Ok(None);
    };
    Ok(Some(Attempt {
        token,
        account,
        kind: redirect.data["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        intent,
    }))
}

fn is_pending(intent: &Value, token: &str) -> bool {
    intent["status"] == "requires_action"
        && Bookkeeping::of(intent).redirect.as_deref() == Some(token)
}

/// What the buyer agrees to, in words.
fn agreement(intent: &Value) -> String {
    if let Some(terms) = Bookkeeping::of(intent).agreement {
        let (count, interval) = (terms.interval_count, &terms.interval);
        let every = if count == 1 {
            interval.to_owned()
        } else {
            format!("{count} {interval}s")
        };
        return format!(
            "A recurring payment of {} every {every}, charged to your Amazon Pay account without you being present.",
            money(terms.amount, &terms.currency)
        );
    }
    if intent["usage"] == "off_session" {
        "A recurring agreement: the merchant may charge your Amazon Pay account later, without you being present.".to_owned()
    } else {
        "Permission for the merchant to charge your Amazon Pay account while you are present."
            .to_owned()
    }
}

async fn show_page(
    State(state): State<AppState>,
    PageFor {
        ctx,
        target: attempt,
    }: PageFor<Attempt>,
) -> Response {
    let token = &attempt.token;
    let framed = Bookkeeping::of(&attempt.intent.data).framed;
    let response = if is_pending(&attempt.intent.data, token) {
        attempt_page(&state, &attempt, token).await
    } else {
        let checkout =
            checkout_page_of(&state, &attempt.account, &ctx.origin, &attempt.intent.data).await;
        no_longer_pending_page(StatusCode::OK, &attempt.intent, checkout.as_deref())
    };
    if framed {
        crate::pages::embeddable(response)
    } else {
        response
    }
}

/// The page's brand, title and what the buyer agrees to.
fn headline(kind: &str, paying: bool, intent: &Value) -> (&'static str, &'static str, String) {
    if kind == "amazon_pay" && paying {
        (
            "amazon pay",
            "Amazon Pay: authorize test payment",
            format!(
                "A payment of {} from your Amazon Pay account.",
                money(
                    intent["amount"].as_i64().unwrap_or_default(),
                    intent["currency"].as_str().unwrap_or_default()
                )
            ),
        )
    } else if kind == "amazon_pay" {
        (
            "amazon pay",
            "Amazon Pay: authorize test setup",
            agreement(intent),
        )
    } else if paying {
        (
            "3D Secure",
            "3D Secure: authenticate test payment",
            "Confirm that you own this card to complete the payment.".to_owned(),
        )
    } else {
        (
            "3D Secure",
            "3D Secure: authenticate test setup",
            "Confirm that you own this card so the merchant can save it for later payments."
                .to_owned(),
        )
    }
}

/// The page for a pending attempt.
async fn attempt_page(state: &AppState, attempt: &Attempt, token: &str) -> Response {
    let intent = &attempt.intent.data;
    let customer = match intent["customer"].as_str() {
        Some(id) => state
            .store()
            .get(&attempt.account, id)
            .await
            .ok()
            .flatten()
            .map(|c| c.data),
        None => None,
    };
    let mut details = Vec::new();
    details.push((
        "Merchant",
        format!("stripe-twin test merchant ({})", attempt.account),
    ));
    if let Some(customer) = &customer {
        let who = [&customer["name"], &customer["email"]]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" · ");
        if !who.is_empty() {
            details.push(("Buyer", who));
        }
    }
    if let Some(description) = intent["description"].as_str() {
        details.push(("Description", description.to_owned()));
    }
    if let Some(metadata) = intent["metadata"].as_object() {
        for (key, value) in metadata {
            details.push((
                "Metadata",
                format!("{key}: {}", value.as_str().unwrap_or_default()),
            ));
        }
    }
    let paying = attempt.intent.object == "payment_intent";
    if paying {
        details.push((
            "Amount",
            money(
                intent["amount"].as_i64().unwrap_or_default(),
                intent["currency"].as_str().unwrap_or_default(),
            ),
        ));
    }
    details.push((
        if paying { "Payment" } else { "Setup" },
        intent["id"].as_str().unwrap_or_default().to_owned(),
    ));
    let rows: String = details
        .iter()
        .map(|(label, value)| format!("<dt>{}</dt><dd>{}</dd>", escape(label), escape(value)))
        .collect();
    let (brand, title, what) = headline(&attempt.kind, paying, intent);
    // Relative: the page's own address, under any --public-url prefix.
    let action = escape(token);
    let noun = noun(&attempt.intent.object);
    let body = format!(
        r#"<p class="brand">{brand}<span class="badge">TEST MODE</span></p>
<h1>{title}</h1>
<p>{what}</p>
<dl>{rows}</dl>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="authorize"><button class="primary" type="submit" id="authorize">Authorize test {noun}</button></form>
<form method="post" action="{action}"><input type="hidden" name="outcome" value="fail"><button type="submit" id="fail">Fail test {noun}</button></form>"#,
        brand = escape(brand),
        title = escape(title),
        what = escape(&what),
    );
    page(StatusCode::OK, title, &body)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Authorize,
    Fail,
}

/// The outcome field of the submitted form.
fn outcome_of(body: &[u8]) -> Option<Outcome> {
    let fields = form::decode(body).ok()?;
    match fields.get("outcome") {
        Some(Node::Str(value)) if value == "authorize" => Some(Outcome::Authorize),
        Some(Node::Str(value)) if value == "fail" => Some(Outcome::Fail),
        _ => None,
    }
}

/// Appends the redirect's query parameters to the return_url, keeping its
/// own query and fragment.
pub fn return_location(return_url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match return_url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (return_url, None),
    };
    let mut url = base.to_owned();
    // `https://example.com` → `https://example.com/` before the query.
    if let Some((_, rest)) = url.split_once("://")
        && !rest.contains(['/', '?'])
    {
        url.push('/');
    }
    for (key, value) in pairs {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(key);
        url.push('=');
        url.push_str(&form::encode_component(value));
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

enum Submitted {
    Done(Value),
    Stale(Record),
}

/// `Payment` for `payment`.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn submit_page(
    State(state): State<AppState>,
    PageFor {
        ctx,
        target: attempt,
    }: PageFor<Attempt>,
    body: Body,
) -> Response {
    let Ok(body) = read_body(body, state.limits().body).await else {
        return too_large_page();
    };
    let token = &attempt.token;
    let Some(outcome) = outcome_of(&body) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "<h1>Unknown choice</h1><p>Send <code>outcome=authorize</code> or <code>outcome=fail</code>.</p>",
        );
    };
    let intent_id = attempt.intent.id.clone();
    let intent_object = attempt.intent.object.clone();
    let noun = noun(&intent_object);
    let result = ctx
        .retry(|| async {
            let record = ctx.load(&intent_object, &intent_id, "intent").await?;
            if !is_pending(&record.data, token) {
                return Ok((Vec::new(), Submitted::Stale(record)));
            }
            decide(&ctx, &record, &attempt.kind, outcome)
                .await
                .map(|(writes, doc)| (writes, Submitted::Done(doc)))
        })
        .await;
    let intent = match result {
        Ok(Submitted::Done(intent)) => intent,
        Ok(Submitted::Stale(intent)) => {
            let checkout = checkout_page_of(&state, &ctx.account, &ctx.origin, &intent.data).await;
            return no_longer_pending_page(StatusCode::CONFLICT, &intent, checkout.as_deref());
        }
        Err(err) => {
            let message = err.body()["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("The {noun} could not be completed."));
            return page(
                err.status(),
                &format!("{} failed", capitalized(noun)),
                &format!(
                    "<h1>The {noun} could not be completed</h1><p>{}</p>",
                    escape(&message)
                ),
            );
        }
    };
    let succeeded = intent["status"] == "succeeded";
    let redirect_status = if succeeded { "succeeded" } else { "failed" };
    let (id_key, secret_key) = if intent_object == "payment_intent" {
        ("payment_intent", "payment_intent_client_secret")
    } else {
        ("setup_intent", "setup_intent_client_secret")
    };
    match Bookkeeping::of(&intent).return_url {
        Some(return_url) => {
            let location = return_location(
                &return_url,
                &[
                    (id_key, intent["id"].as_str().unwrap_or_default()),
                    (
                        secret_key,
                        intent["client_secret"].as_str().unwrap_or_default(),
                    ),
                    ("redirect_status", redirect_status),
                ],
            );
            see_other(&location)
        }
        None => {
            let title = format!(
                "{} {}",
                capitalized(noun),
                if succeeded { "complete" } else { "failed" }
            );
            page(
                StatusCode::OK,
                &title,
                &format!(
                    "<h1>{title}</h1><p>You can close this window and return to the merchant.</p>"
                ),
            )
        }
    }
}

/// The buyer's choice applied to a pending intent.
async fn decide(
    ctx: &Ctx,
    record: &Record,
    kind: &str,
    outcome: Outcome,
) -> ApiResult<(Vec<Write>, Value)> {
    if record.object == "payment_intent" {
        let acceptance = json!({
            "accepted_at": ctx.now(),
            "online": {"ip_address": ctx.client.ip_address, "user_agent": ctx.client.user_agent},
            "type": "online",
        });
        let (mut writes, doc) = crate::resources::payments::payment_intents::after_action(
            ctx,
            record,
            outcome == Outcome::Authorize,
            acceptance,
        )
        .await?;
        checkout_sessions::after_intent(ctx, &doc, &mut writes).await?;
        return Ok((writes, doc));
    }
    let pm_id = record.data["payment_method"].as_str().unwrap_or_default();
    let pm = payment_methods::resolve(ctx, pm_id, Named::InParam("payment_method")).await?;
    let mut writes = Vec::new();
    let doc = match outcome {
        Outcome::Authorize => {
            // What the page saw is the customer's online acceptance.
            let acceptance = json!({
                "accepted_at": ctx.now(),
                "online": {"ip_address": ctx.client.ip_address, "user_agent": ctx.client.user_agent},
                "type": "online",
            });
            setup_intents::succeed(ctx, record.data.clone(), &pm, Some(acceptance), &mut writes)?
        }
        Outcome::Fail => {
            let (code, message) = if kind == "amazon_pay" {
                (
                    "payment_method_provider_decline",
                    "The customer declined the authorization on Amazon Pay, so the payment method was not set up.",
                )
            } else {
                (
                    "setup_intent_authentication_failure",
                    "The latest attempt to set up the payment method has failed because authentication failed.",
                )
            };
            let error = json!({
                "code": code,
                "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
                "message": message,
                "payment_method": ctx.strip_hidden(pm.data().clone()),
                "payment_method_type": pm.data()["type"],
                "type": "invalid_request_error",
            });
            setup_intents::fail(ctx, record.data.clone(), error, &mut writes)?
        }
    };
    writes.insert(0, Write::Update(record.with_data(doc.clone())));
    checkout_sessions::after_intent(ctx, &doc, &mut writes).await?;
    Ok((writes, doc))
}
