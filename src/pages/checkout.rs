//! The hosted Checkout page of a session, at `session.url`
//! (`/c/pay/{session}`): what is bought, an email field when no customer is
//! known, and the payment method types the session allows, as one plain form
//! (no JavaScript). Its contract, also for curl and test suites:
//!
//! `POST /c/pay/{session}` with `payment_method_type=amazon_pay` (and
//! `email`) → `303` to the Amazon Pay page of the session's intent; with
//! `payment_method_type=card`, `cardNumber`, `cardExpiry` (`MM / YY`),
//! `cardCvc`, `billingName` (and `email`) → `303` to the success URL, to the
//! 3-D Secure page, or the page again with the decline (`402`).
//! `GET /c/pay/{session}/return` is where the authorization page sends the
//! buyer back: on to the success URL once the session is complete, else back
//! to the page, which shows why.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::core::bookkeeping::Bookkeeping;
use crate::http::api::{AppState, Ctx, read_body};
use crate::http::error::{ApiError, ApiResult};
use crate::http::form::{self, Node};
use crate::http::params::Params;
use crate::pages::{PageFor, PageTarget, escape, money, page, see_other, too_large_page};
use crate::resources::checkout::sessions::{
    self as checkout_sessions, OBJECT, Submission, Submitted,
};
use crate::resources::payments::intents;
use crate::resources::payments::payment_methods;

pub fn router() -> Router<AppState> {
    Router::new()
        // Without its secret a session's page is as unknown as a made-up one.
        .route("/c/pay/{session}", get(unknown_page).post(unknown_page))
        .route(
            "/c/pay/{session}/{secret}",
            get(show_page).post(submit_page),
        )
        .route(
            "/c/pay/{session}/{secret}/return",
            get(return_from_authorization),
        )
}

async fn unknown_page() -> Response {
    not_found_page()
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Checkout session not found",
        "<h1>This checkout link is not valid</h1><p>It does not belong to any Checkout Session on this server.</p>",
    )
}

/// A completed or expired session: nothing left to pay.
fn closed_page(session: &Value) -> Response {
    if session["status"] == "complete" {
        let link = match checkout_sessions::after_completion_url(session) {
            Some(url) => format!(
                r#"<p><a id="continue" href="{}">Return to the merchant</a></p>"#,
                escape(&url)
            ),
            None => String::new(),
        };
        return page(
            StatusCode::OK,
            "Checkout complete",
            &format!(
                "<h1>Thanks, you're all set</h1><p>This checkout session is complete.</p>{link}"
            ),
        );
    }
    let back = match session["cancel_url"].as_str() {
        Some(url) => format!(
            r#"<p><a id="back" href="{}">Return to the merchant</a></p>"#,
            escape(url)
        ),
        None => String::new(),
    };
    page(
        StatusCode::GONE,
        "Checkout session expired",
        &format!(
            "<h1>This checkout session has expired</h1><p>Return to the merchant's site to start again.</p>{back}"
        ),
    )
}

/// What the buyer typed that the page shows again when it comes back with
/// an error: never the card's number, expiry or security code.
#[derive(Default)]
struct Kept {
    email: Option<String>,
    name: Option<String>,
}

impl Kept {
    fn from_form(fields: &BTreeMap<String, Node>) -> Self {
        Kept {
            email: field(fields, "email").filter(|e| !e.is_empty()),
            name: field(fields, "billingName").filter(|n| !n.is_empty()),
        }
    }

    /// ` value="…"` for an input, escaped; nothing when there is nothing.
    fn value(kept: &Option<String>) -> String {
        match kept {
            Some(value) => format!(r#" value="{}""#, escape(value)),
            None => String::new(),
        }
    }
}

/// The session a Checkout page's path names (with its page secret), as
/// stored.
struct Session {
    id: String,
    stored: Value,
}

impl PageTarget for Session {
    type Path = (String, String);

    async fn find(
        state: &AppState,
        (id, secret): (String, String),
    ) -> ApiResult<Option<(String, Self)>> {
        Ok(match state.store().find(&id).await? {
            Some((account, record))
                if record.object == OBJECT
                    && checkout_sessions::opens_page(&record.data, &secret) =>
            {
                Some((
                    account,
                    Session {
                        id,
                        stored: record.data,
                    },
                ))
            }
            _ => None,
        })
    }

    fn not_found() -> Response {
        not_found_page()
    }

    fn object_id(&self) -> &str {
        &self.id
    }
}

/// The page's session and the buyer's context, the session shown expired
/// if its time is up.
fn seen(page: PageFor<Session>) -> (Ctx, String, Value) {
    let now = page.ctx.now();
    let session = checkout_sessions::as_seen(page.target.stored, now);
    (page.ctx, page.target.id, session)
}

fn heading(session: &Value) -> String {
    let total = money(
        session["amount_total"].as_i64().unwrap_or_default(),
        session["currency"].as_str().unwrap_or("usd"),
    );
    match session["mode"].as_str() {
        Some("setup") => "Set up a payment method".to_owned(),
        Some("subscription") => format!("Subscribe: {total} due today"),
        _ => format!("Pay {total}"),
    }
}

/// The card form; of what the buyer typed, only the name comes back.
fn card_fields(session: &Value, kept: &Kept) -> String {
    let action = match (session["mode"].as_str(), session["submit_type"].as_str()) {
        (Some("setup"), _) => "Save card",
        (Some("subscription"), _) => "Subscribe",
        (_, Some("donate")) => "Donate",
        (_, Some("book")) => "Book",
        _ => "Pay",
    };
    format!(
        r#"<fieldset><h2>Card</h2>
<label for="cardNumber">Card number</label><input type="text" id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234">
<label for="cardExpiry">Expiration (MM / YY)</label><input type="text" id="cardExpiry" name="cardExpiry" autocomplete="cc-exp" placeholder="MM / YY">
<label for="cardCvc">CVC</label><input type="text" id="cardCvc" name="cardCvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC">
<label for="billingName">Cardholder name</label><input type="text" id="billingName" name="billingName" autocomplete="cc-name"{}>
<button class="pay" type="submit" id="submit" name="payment_method_type" value="card" data-testid="hosted-payment-submit-button">{}</button>
</fieldset>"#,
        Kept::value(&kept.name),
        escape(action)
    )
}

fn line_items_table(session: &Value) -> String {
    let items = session["line_items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return String::new();
    }
    let currency = session["currency"].as_str().unwrap_or("usd");
    let mut rows = String::new();
    for item in &items {
        let mut what = format!(
            "{} × {}",
            item["description"].as_str().unwrap_or_default(),
            item["quantity"].as_i64().unwrap_or(1)
        );
        let recurring = &item["price"]["recurring"];
        if let Some(interval) = recurring["interval"].as_str() {
            let count = recurring["interval_count"].as_i64().unwrap_or(1);
            what.push_str(&if count == 1 {
                format!(" (per {interval})")
            } else {
                format!(" (every {count} {interval}s)")
            });
        }
        rows.push_str(&format!(
            r#"<tr class="line-item"><td>{}</td><td class="amount">{}</td></tr>"#,
            escape(&what),
            escape(&money(
                item["amount_total"].as_i64().unwrap_or_default(),
                currency
            ))
        ));
    }
    rows.push_str(&format!(
        r#"<tr class="total"><td>Total due today</td><td class="amount" id="total">{}</td></tr>"#,
        escape(&money(
            session["amount_total"].as_i64().unwrap_or_default(),
            currency
        ))
    ));
    format!("<table>{rows}</table>")
}

/// The page of an open session, with `error` (escaped here) shown above the
/// form and the fields filled in with what the buyer typed.
async fn open_page(
    ctx: &Ctx,
    session: &Value,
    status: StatusCode,
    error: Option<String>,
    kept: &Kept,
) -> Response {
    let error = match error {
        Some(error) => Some(error),
        None => checkout_sessions::last_error(ctx, session)
            .await
            .ok()
            .flatten(),
    };
    let customer = match session["customer"].as_str() {
        Some(customer) => ctx.get(customer).await.ok().flatten(),
        None => None,
    };
    let known_email = customer
        .as_ref()
        .and_then(|c| c.data["email"].as_str().map(str::to_owned))
        .or_else(|| session["customer_email"].as_str().map(str::to_owned));
    // Back from a failed authorization: the email given before.
    let typed_email = kept
        .email
        .clone()
        .or_else(|| Bookkeeping::of(session).email.filter(|e| !e.is_empty()));
    let mut body = format!(
        r#"<p class="brand">stripe-twin test merchant ({})<span class="badge">TEST MODE</span></p>"#,
        escape(&ctx.account)
    );
    if let Some(cancel) = session["cancel_url"].as_str() {
        body.push_str(&format!(
            r#"<p><a id="back" href="{}">← Back</a></p>"#,
            escape(cancel)
        ));
    }
    body.push_str(&format!("<h1>{}</h1>", escape(&heading(session))));
    body.push_str(&line_items_table(session));
    if let Some(error) = error {
        body.push_str(&format!(
            r#"<p class="error" id="error" role="alert">{}</p>"#,
            escape(&error)
        ));
    }
    body.push_str(&format!(
        r#"<form method="post" action="{}">"#,
        escape(&checkout_sessions::page_url(&ctx.origin, session))
    ));
    match (&known_email, customer.is_some()) {
        (Some(email), _) => body.push_str(&format!(
            r#"<p>Email: <strong id="known-email">{}</strong></p>"#,
            escape(email)
        )),
        (None, true) => {}
        (None, false) => body.push_str(&format!(
            r#"<label for="email">Email</label><input type="email" id="email" name="email" autocomplete="email"{}>"#,
            Kept::value(&typed_email)
        )),
    }
    let types = intents::accepted_types(session);
    if types.iter().any(|t| t == "card") {
        body.push_str(&card_fields(session, kept));
    }
    if types.iter().any(|t| t == "amazon_pay") {
        // Amazon Pay takes the whole window, also from an embedded page.
        let target = match session["ui_mode"].as_str() {
            Some("embedded_page") => r#" formtarget="_top""#,
            _ => "",
        };
        body.push_str(&format!(
            r#"<fieldset><h2>Amazon Pay</h2><p>You will be redirected to Amazon Pay to authorize.</p>
<button class="primary" type="submit" id="amazon-pay" name="payment_method_type" value="amazon_pay"{target}>Continue to Amazon Pay</button>
</fieldset>"#
        ));
    }
    body.push_str("</form>");
    page(status, "stripe-twin Checkout", &body)
}

async fn show_page(page: PageFor<Session>) -> Response {
    let (ctx, _, session) = seen(page);
    let response = if session["status"] != "open" {
        closed_page(&session)
    } else {
        open_page(&ctx, &session, StatusCode::OK, None, &Kept::default()).await
    };
    framed(&session, response)
}

/// An embedded session's pages may be shown inside the merchant's page.
fn framed(session: &Value, response: Response) -> Response {
    match session["ui_mode"].as_str() {
        Some("embedded_page") => crate::pages::embeddable(response),
        _ => response,
    }
}

fn field(fields: &BTreeMap<String, Node>, name: &str) -> Option<String> {
    match fields.get(name) {
        Some(Node::Str(value)) => Some(value.trim().to_owned()),
        _ => None,
    }
}

/// `MM / YY`, `MM/YY`, `MMYY` or `MM / YYYY` → (month, year).
fn parse_expiry(raw: &str) -> Option<(i64, i64)> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if raw
        .chars()
        .any(|c| !(c.is_ascii_digit() || c == '/' || c == ' '))
    {
        return None;
    }
    match digits.len() {
        4 | 6 => Some((digits[..2].parse().ok()?, digits[2..].parse().ok()?)),
        _ => None,
    }
}

/// The PaymentMethod the form describes, built as `POST /v1/payment_methods`
/// would build it (so test card numbers behave the same everywhere).
fn payment_method_from_form(
    ctx: &Ctx,
    fields: &BTreeMap<String, Node>,
    allowed: &[String],
) -> Result<Value, String> {
    let kind = field(fields, "payment_method_type").unwrap_or_default();
    if !allowed.contains(&kind) {
        return Err(format!(
            "Choose a payment method: this checkout accepts {}.",
            allowed.join(", ")
        ));
    }
    let email = field(fields, "email").filter(|e| !e.is_empty());
    let name = field(fields, "billingName").filter(|n| !n.is_empty());
    let mut billing = BTreeMap::new();
    if let Some(email) = &email {
        billing.insert("email".to_owned(), Node::Str(email.clone()));
    }
    if let Some(name) = &name {
        billing.insert("name".to_owned(), Node::Str(name.clone()));
    }
    let mut map = BTreeMap::from([
        ("type".to_owned(), Node::Str(kind.clone())),
        ("billing_details".to_owned(), Node::Map(billing)),
    ]);
    if kind == "card" {
        let number: String = field(fields, "cardNumber")
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if number.is_empty() {
            return Err("Your card number is incomplete.".to_owned());
        }
        let (month, year) = parse_expiry(&field(fields, "cardExpiry").unwrap_or_default())
            .ok_or("Your card's expiration date is incomplete.")?;
        let cvc = field(fields, "cardCvc").unwrap_or_default();
        if cvc.is_empty() {
            return Err("Your card's security code is incomplete.".to_owned());
        }
        map.insert(
            "card".to_owned(),
            Node::Map(BTreeMap::from([
                ("number".to_owned(), Node::Str(number)),
                ("exp_month".to_owned(), Node::Str(month.to_string())),
                ("exp_year".to_owned(), Node::Str(year.to_string())),
                ("cvc".to_owned(), Node::Str(cvc)),
            ])),
        );
    }
    let mut params = Params::new(map);
    let doc = payment_methods::document_from_params(ctx, &mut params).map_err(message_of)?;
    Ok(doc)
}

fn message_of(error: ApiError) -> String {
    error.body()["error"]["message"]
        .as_str()
        .unwrap_or("Something went wrong.")
        .to_owned()
}

async fn submit_page(
    State(state): State<AppState>,
    page: PageFor<Session>,
    body: Body,
) -> Response {
    let Ok(body) = read_body(body, state.limits().body).await else {
        return too_large_page();
    };
    let (ctx, id, session) = seen(page);
    let response = submit_form(&ctx, &id, session.clone(), &body).await;
    framed(&session, response)
}

async fn submit_form(ctx: &Ctx, id: &str, session: Value, body: &[u8]) -> Response {
    if session["status"] != "open" {
        return closed_page(&session);
    }
    let fields = match form::decode(body) {
        Ok(fields) => fields,
        Err(err) => {
            return open_page(
                ctx,
                &session,
                StatusCode::BAD_REQUEST,
                Some(err.to_string()),
                &Kept::default(),
            )
            .await;
        }
    };
    let kept = Kept::from_form(&fields);
    let payment_method =
        match payment_method_from_form(ctx, &fields, &intents::accepted_types(&session)) {
            Ok(doc) => doc,
            Err(message) => {
                return open_page(ctx, &session, StatusCode::BAD_REQUEST, Some(message), &kept)
                    .await;
            }
        };
    let submission = Submission {
        email: field(&fields, "email"),
        payment_method,
    };
    match checkout_sessions::submit(ctx, id, &submission).await {
        // Completed on this page: the buyer was never redirected.
        Ok(Submitted::Completed(session)) => after_completion(&session, false),
        Ok(Submitted::Redirect(url)) => see_other(&url),
        Ok(Submitted::Failed(message)) => {
            let session = reload(ctx, id).await.unwrap_or(session);
            open_page(
                ctx,
                &session,
                StatusCode::PAYMENT_REQUIRED,
                Some(message),
                &kept,
            )
            .await
        }
        Ok(Submitted::Closed(session)) => closed_page(&session),
        Err(err) if err.status().is_client_error() => {
            let session = reload(ctx, id).await.unwrap_or(session);
            open_page(ctx, &session, err.status(), Some(message_of(err)), &kept).await
        }
        Err(err) => err.into_response(),
    }
}

async fn reload(ctx: &Ctx, id: &str) -> Option<Value> {
    ctx.get(id).await.ok().flatten().map(|r| r.data)
}

/// Where a completed session sends the buyer: its success or return URL,
/// unless an embedded session asked not to redirect (`never`, or
/// `if_required` after a payment that needed no redirect).
fn after_completion(session: &Value, redirected: bool) -> Response {
    let stay = match session["redirect_on_completion"].as_str() {
        Some("never") => true,
        Some("if_required") => !redirected,
        _ => false,
    };
    match checkout_sessions::after_completion_url(session) {
        Some(url) if !stay => see_other(&url),
        _ => closed_page(session),
    }
}

async fn return_from_authorization(page: PageFor<Session>) -> Response {
    let (ctx, _, session) = seen(page);
    let response = match session["status"].as_str() {
        Some("complete") => after_completion(&session, true),
        Some("open") => see_other(&checkout_sessions::page_url(&ctx.origin, &session)),
        _ => closed_page(&session),
    };
    framed(&session, response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_formats() {
        assert_eq!(parse_expiry("12 / 34"), Some((12, 34)));
        assert_eq!(parse_expiry("12/2034"), Some((12, 2034)));
        assert_eq!(parse_expiry("1234"), Some((12, 34)));
        assert_eq!(parse_expiry("1/34"), None);
        assert_eq!(parse_expiry("ab/cd"), None);
        assert_eq!(parse_expiry(""), None);
    }
}
