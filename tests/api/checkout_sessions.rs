//! Checkout Sessions over real HTTP, as a merchant's test suite drives them
//! and as a buyer's browser (without JavaScript) clicks through the hosted
//! page: the seed documents' setup-mode Amazon Pay flow, payment and
//! subscription mode with cards and Amazon Pay, every creation rule,
//! expiry (by `/expire` and at `expires_at`), lists and line items, the
//! embedded page, a race of submits and HTML escaping.
use crate::common;

use std::time::Duration;

use common::{TestServer, browser, enc, events_in_order, id, submit};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_twin::resources::checkout::sessions as checkout_sessions;
use stripe_twin::store::Write;

const SESSIONS: &str = "/v1/checkout/sessions";
/// The fixtures' monthly price (15.00 USD) and its product.
const MONTHLY_PRICE: &str = "price_G0FvDp6vZvdwRZ";
const PRODUCT: &str = "prod_NWjs8kKbJWmuuc";
const PRODUCT_NAME: &str = "Stock photo subscription";
const SUCCESS_URL: &str = "https://example.com/success?session_id={CHECKOUT_SESSION_ID}";
const CANCEL_URL: &str = "https://example.com/cancel";

const CARD_OK: &str = "4242424242424242";
const CARD_DECLINED: &str = "4000000000000002";
const CARD_3DS: &str = "4000002500003155";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(id)
        .collect()
}

fn count(events: &[String], kind: &str) -> usize {
    events.iter().filter(|e| *e == kind).count()
}

/// Where `success_url` sends the buyer of this session.
fn success_of(session_id: &str) -> String {
    format!("https://example.com/success?session_id={session_id}")
}

// ---- the API -------------------------------------------------------------------

/// Creates a session with these parameters plus the hosted page's success
/// and cancel URLs.
async fn create_session(server: &TestServer, params: &str) -> Value {
    server
        .post(
            SESSIONS,
            &format!(
                "{params}&success_url={}&cancel_url={}",
                enc(SUCCESS_URL),
                enc(CANCEL_URL)
            ),
        )
        .await
        .ok()
}

async fn retrieve(server: &TestServer, session_id: &str, expand: &[&str]) -> Value {
    let query: Vec<String> = expand.iter().map(|e| format!("expand[]={e}")).collect();
    server
        .get(&format!("{SESSIONS}/{session_id}?{}", query.join("&")))
        .await
        .ok()
}

async fn customer(server: &TestServer, body: &str) -> String {
    id(&server.post("/v1/customers", body).await.ok())
}

/// A one-time USD price of the fixtures' product.
async fn one_time_price(server: &TestServer, amount: i64) -> String {
    id(&server
        .post(
            "/v1/prices",
            &format!("product={PRODUCT}&currency=usd&unit_amount={amount}"),
        )
        .await
        .ok())
}

/// A payment-mode session for `quantity` × a one-time price of `amount`.
async fn payment_session(server: &TestServer, amount: i64, quantity: i64, extra: &str) -> Value {
    let price = one_time_price(server, amount).await;
    create_session(
        server,
        &format!(
            "mode=payment&line_items[0][price]={price}&line_items[0][quantity]={quantity}{extra}"
        ),
    )
    .await
}

/// The newest object of a list endpoint.
async fn newest(server: &TestServer, path: &str) -> Value {
    let list = server.get(&format!("{path}?limit=1")).await.ok();
    list["data"][0].clone()
}

// ---- the buyer's browser -------------------------------------------------------

/// What the browser got back.
#[derive(Debug)]
struct Page {
    status: StatusCode,
    location: String,
    html: String,
}

impl Page {
    #[track_caller]
    fn assert_redirect_to(&self, url: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{}", self.html);
        assert_eq!(self.location, url);
    }

    /// The text of the page's error paragraph.
    fn error(&self) -> Option<String> {
        let start = self.html.find(r#"id="error""#)?;
        let rest = &self.html[start..];
        let open = rest.find('>')? + 1;
        let close = rest.find("</p>")?;
        Some(rest[open..close].to_owned())
    }
}

async fn browse(request: reqwest::RequestBuilder) -> Page {
    let response = request.send().await.expect("the page answers");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let html = response.text().await.unwrap();
    Page {
        status,
        location,
        html,
    }
}

async fn open(url: &str) -> Page {
    browse(browser().get(url)).await
}

async fn post_form(url: &str, form: &str) -> Page {
    browse(
        browser()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned()),
    )
    .await
}

/// `session.url`, or for an embedded session the page it is served on
/// (its secret is the end of the session's client secret).
fn page_of(server: &TestServer, session: &Value) -> String {
    session["url"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let client_secret = session["client_secret"].as_str().unwrap();
            let (_, secret) = client_secret.split_once("_secret_").unwrap();
            server.url(&format!("/c/pay/{}/{secret}", id(session)))
        })
}

/// Fills in and submits the card form (with `email` when given).
async fn pay_with_card(
    server: &TestServer,
    session: &Value,
    number: &str,
    email: Option<&str>,
) -> Page {
    let mut form = format!(
        "payment_method_type=card&cardNumber={number}&cardExpiry={}&cardCvc=123&billingName={}",
        enc("12 / 34"),
        enc("Jenny Rosen")
    );
    if let Some(email) = email {
        form.push_str(&format!("&email={}", enc(email)));
    }
    post_form(&page_of(server, session), &form).await
}

/// "Continue to Amazon Pay": the authorization page it redirects to.
async fn continue_to_amazon_pay(
    server: &TestServer,
    session: &Value,
    email: Option<&str>,
) -> String {
    let mut form = "payment_method_type=amazon_pay".to_owned();
    if let Some(email) = email {
        form.push_str(&format!("&email={}", enc(email)));
    }
    let page = post_form(&page_of(server, session), &form).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    assert!(
        page.location.starts_with(&server.url("/authorize/")),
        "{}",
        page.location
    );
    page.location
}

/// The buyer decides on the authorization page (`authorize` or `fail`),
/// comes back through Checkout's return URL, and lands where that sends
/// them.
async fn decide(server: &TestServer, session: &Value, authorize_url: &str, outcome: &str) -> Page {
    let (status, location, body) = submit(authorize_url, outcome).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let return_url = format!("{}/return?", page_of(server, session));
    assert!(location.starts_with(&return_url), "{location}");
    open(&location).await
}

// ---- seeds 001 and 004 ------------------------------------------------------------

/// Seed 001 verbatim: a customer, a setup-mode session for Amazon Pay, the
/// buyer on the page, "Continue to Amazon Pay", authorized, back on the
/// success URL; the session retrieved with its SetupIntent and
/// PaymentMethod expanded.
async fn seed_001_setup_mode_with_amazon_pay(server: TestServer) {
    let customer = customer(&server, "").await;
    let session = server
        .post(
            SESSIONS,
            &format!(
                "mode=setup&payment_method_types[]=amazon_pay&customer={customer}&success_url={}&cancel_url={}",
                enc(SUCCESS_URL),
                enc(CANCEL_URL)
            ),
        )
        .await
        .ok();
    let session_id = id(&session);
    assert!(session_id.starts_with("cs_test_"), "{session_id}");
    assert_eq!(session["object"], "checkout.session");
    assert_eq!(session["mode"], "setup");
    assert_eq!(session["status"], "open");
    assert_eq!(session["payment_status"], "no_payment_required");
    assert_eq!(session["customer"], customer.as_str());
    assert_eq!(session["payment_method_types"], json!(["amazon_pay"]));
    assert_eq!(session["success_url"], SUCCESS_URL);
    assert_eq!(session["cancel_url"], CANCEL_URL);
    assert_eq!(session["ui_mode"], "hosted_page");
    assert!(session["client_secret"].is_null());
    assert!(session["customer_details"].is_null());
    assert!(
        session.get("line_items").is_none(),
        "line_items not expanded"
    );
    let lifetime = session["expires_at"].as_i64().unwrap() - session["created"].as_i64().unwrap();
    assert_eq!(lifetime, 24 * 60 * 60);
    assert!(
        session
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('_'))
    );
    let url = session["url"].as_str().unwrap().to_owned();
    let page = url
        .strip_prefix(&server.url(&format!("/c/pay/{session_id}/")))
        .unwrap();
    // The page's address carries a secret of its own: the id is not enough.
    assert!(
        page.len() >= 24 && page.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{url}"
    );
    let by_id = browser()
        .get(server.url(&format!("/c/pay/{session_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(by_id.status(), StatusCode::NOT_FOUND);
    let wrong = browser()
        .get(server.url(&format!("/c/pay/{session_id}/{}", "x".repeat(page.len()))))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    // Setup mode: the SetupIntent comes with the session, and only the
    // session moves it.
    let setup_intent = session["setup_intent"].as_str().unwrap().to_owned();
    assert!(setup_intent.starts_with("seti_"), "{session}");
    let waiting = server
        .get(&format!("/v1/setup_intents/{setup_intent}"))
        .await
        .ok();
    assert_eq!(waiting["status"], "requires_payment_method");
    assert_eq!(waiting["customer"], customer.as_str());
    let rejected = server
        .post(&format!("/v1/setup_intents/{setup_intent}/cancel"), "")
        .await;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert_eq!(rejected.error_code(), "setup_intent_unexpected_state");

    // The page: setup, Amazon Pay only, no email field (the customer is known).
    let page = open(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("Set up a payment method"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Continue to Amazon Pay"));
    assert!(
        page.html
            .contains(r#"name="payment_method_type" value="amazon_pay""#)
    );
    assert!(!page.html.contains(r#"name="cardNumber""#));
    assert!(!page.html.contains(r#"name="email""#));
    assert!(
        page.html
            .contains(r#"id="back" href="https://example.com/cancel""#)
    );
    assert!(page.error().is_none());

    let authorize_url = continue_to_amazon_pay(&server, &session, None).await;
    let consent = open(&authorize_url).await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(consent.html.contains("Amazon Pay"), "{}", consent.html);
    // Still open while the buyer is on Amazon Pay.
    assert_eq!(retrieve(&server, &session_id, &[]).await["status"], "open");

    decide(&server, &session, &authorize_url, "authorize")
        .await
        .assert_redirect_to(&success_of(&session_id));

    let done = retrieve(&server, &session_id, &["setup_intent.payment_method"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["payment_status"], "no_payment_required");
    assert!(done["url"].is_null());
    assert_eq!(done["customer"], customer.as_str());
    let intent = &done["setup_intent"];
    assert_eq!(intent["id"], setup_intent.as_str());
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["customer"], customer.as_str());
    assert_eq!(intent["payment_method_types"], json!(["amazon_pay"]));
    let pm = &intent["payment_method"];
    assert_eq!(pm["object"], "payment_method");
    assert_eq!(pm["type"], "amazon_pay");
    assert_eq!(pm["customer"], customer.as_str());
    let pm_id = id(pm);
    let attached = server
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await
        .ok();
    assert_eq!(ids(&attached), vec![pm_id.clone()]);

    // The page now says it is complete, with the way back to the merchant.
    let page = open(&url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("complete"), "{}", page.html);
    assert!(page.html.contains(&success_of(&session_id)));

    let events = events_in_order(&server).await;
    let position = |kind: &str| {
        events
            .iter()
            .position(|e| e == kind)
            .unwrap_or_else(|| panic!("{kind} in {events:?}"))
    };
    assert_eq!(events.first().map(String::as_str), Some("customer.created"));
    assert!(position("setup_intent.created") < position("setup_intent.requires_action"));
    assert!(position("setup_intent.requires_action") < position("setup_intent.succeeded"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("checkout.session.completed"),
        "{events:?}"
    );
    assert_eq!(count(&events, "checkout.session.completed"), 1);

    // The event carries the completed session as the API shows it.
    let completed = server
        .get("/v1/events?type=checkout.session.completed")
        .await
        .ok();
    let object = &completed["data"][0]["data"]["object"];
    assert_eq!(object["id"], session_id.as_str());
    assert_eq!(object["status"], "complete");
    assert_eq!(object["setup_intent"], intent["id"]);
    assert!(object.get("line_items").is_none());
    assert!(
        object
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('_'))
    );
}

/// Seed 004: a setup-mode session without a customer, completed with Amazon
/// Pay; the merchant then attaches the PaymentMethod to a customer and
/// charges it off-session, in a PaymentIntent and in a subscription.
async fn seed_004_setup_without_customer_then_attach(server: TestServer) {
    let session = create_session(&server, "mode=setup&currency=usd").await;
    let session_id = id(&session);
    assert!(session["customer"].is_null());
    assert_eq!(session["currency"], "usd");
    assert_eq!(
        session["payment_method_types"],
        json!(["card", "amazon_pay"])
    );

    // Nobody is known yet: the page asks for an email, and offers both.
    let page = open(session["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(r#"name="email""#), "{}", page.html);
    assert!(page.html.contains("Continue to Amazon Pay"));
    assert!(page.html.contains(r#"name="cardNumber""#));

    let authorize_url = continue_to_amazon_pay(&server, &session, Some("saver@example.com")).await;
    decide(&server, &session, &authorize_url, "authorize")
        .await
        .assert_redirect_to(&success_of(&session_id));

    let done = retrieve(&server, &session_id, &["setup_intent"]).await;
    assert_eq!(done["status"], "complete");
    assert!(done["customer"].is_null(), "{done}");
    assert_eq!(done["customer_details"]["email"], "saver@example.com");
    assert_eq!(done["setup_intent"]["status"], "succeeded");
    let pm = done["setup_intent"]["payment_method"]
        .as_str()
        .unwrap()
        .to_owned();
    let loose = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert!(loose["customer"].is_null());
    assert_eq!(loose["type"], "amazon_pay");

    let second = customer(&server, "email=saver%40example.com").await;
    let attached = server
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &format!("customer={second}"),
        )
        .await
        .ok();
    assert_eq!(attached["customer"], second.as_str());

    let paid = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2500&currency=usd&customer={second}&payment_method={pm}&payment_method_types[]=amazon_pay&confirm=true&off_session=true"
            ),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(paid["amount_received"], 2500);

    let subscription = server
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={second}&items[0][price]={MONTHLY_PRICE}&default_payment_method={pm}&expand[]=latest_invoice"
            ),
        )
        .await
        .ok();
    assert_eq!(subscription["status"], "active", "{subscription}");
    assert_eq!(subscription["latest_invoice"]["status"], "paid");
    assert_eq!(subscription["latest_invoice"]["amount_paid"], 1500);
}

// ---- Amazon Pay failing ---------------------------------------------------------

/// Failing on the Amazon Pay page brings the buyer back to the Checkout
/// page with the reason shown and the session still open; a second try
/// succeeds. In setup mode (a SetupIntent) and payment mode (a
/// PaymentIntent).
async fn amazon_pay_failure_then_retry(server: TestServer) {
    for mode in ["setup", "payment"] {
        let session = if mode == "setup" {
            create_session(&server, "mode=setup&payment_method_types[]=amazon_pay").await
        } else {
            payment_session(&server, 1200, 1, "&payment_method_types[]=amazon_pay").await
        };
        let session_id = id(&session);
        let url = session["url"].as_str().unwrap().to_owned();

        let authorize_url =
            continue_to_amazon_pay(&server, &session, Some("amy@example.com")).await;
        let back = decide(&server, &session, &authorize_url, "fail").await;
        back.assert_redirect_to(&url);
        let page = open(&url).await;
        assert_eq!(page.status, StatusCode::OK);
        let error = page
            .error()
            .unwrap_or_else(|| panic!("{mode}: {}", page.html));
        assert!(error.contains("Amazon Pay"), "{mode}: {error}");
        assert_eq!(retrieve(&server, &session_id, &[]).await["status"], "open");
        // The failed attempt's link is spent.
        let (status, _, _) = submit(&authorize_url, "authorize").await;
        assert_eq!(status, StatusCode::CONFLICT, "{mode}");
        assert_eq!(retrieve(&server, &session_id, &[]).await["status"], "open");

        let again = continue_to_amazon_pay(&server, &session, Some("amy@example.com")).await;
        assert_ne!(again, authorize_url);
        decide(&server, &session, &again, "authorize")
            .await
            .assert_redirect_to(&success_of(&session_id));
        let done = retrieve(&server, &session_id, &[]).await;
        assert_eq!(done["status"], "complete", "{mode}");
        if mode == "setup" {
            let intent = server
                .get(&format!(
                    "/v1/setup_intents/{}",
                    done["setup_intent"].as_str().unwrap()
                ))
                .await
                .ok();
            assert_eq!(intent["status"], "succeeded");
        } else {
            assert_eq!(done["payment_status"], "paid");
            let intent = server
                .get(&format!(
                    "/v1/payment_intents/{}",
                    done["payment_intent"].as_str().unwrap()
                ))
                .await
                .ok();
            assert_eq!(intent["status"], "succeeded");
            assert_eq!(intent["amount_received"], 1200);
        }
    }
    // One intent per session, retried rather than replaced.
    let setup_intents = server.get("/v1/setup_intents").await.ok();
    assert_eq!(ids(&setup_intents).len(), 1);
    let payment_intents = server.get("/v1/payment_intents").await.ok();
    assert_eq!(ids(&payment_intents).len(), 1);
    let events = events_in_order(&server).await;
    assert_eq!(count(&events, "checkout.session.completed"), 2);
}

// ---- payment mode ------------------------------------------------------------------

async fn payment_mode_with_a_card(server: TestServer) {
    let session = payment_session(
        &server,
        2000,
        2,
        "&client_reference_id=order-7&metadata[order]=7",
    )
    .await;
    let session_id = id(&session);
    assert_eq!(session["mode"], "payment");
    assert_eq!(session["amount_subtotal"], 4000);
    assert_eq!(session["amount_total"], 4000);
    assert_eq!(session["currency"], "usd");
    assert_eq!(session["payment_status"], "unpaid");
    assert_eq!(session["customer_creation"], "if_required");
    assert_eq!(session["client_reference_id"], "order-7");
    assert_eq!(session["metadata"], json!({"order": "7"}));
    assert!(session["payment_intent"].is_null());

    let page = open(session["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("40.00 USD"), "{}", page.html);
    assert!(page.html.contains(&format!("{PRODUCT_NAME} × 2")));
    for field in [
        "email",
        "cardNumber",
        "cardExpiry",
        "cardCvc",
        "billingName",
    ] {
        assert!(page.html.contains(&format!(r#"name="{field}""#)), "{field}");
    }
    assert!(page.html.contains(r#"value="card""#));
    assert!(page.html.contains("Continue to Amazon Pay"));

    pay_with_card(&server, &session, CARD_OK, Some("jenny@example.com"))
        .await
        .assert_redirect_to(&success_of(&session_id));

    let done = retrieve(&server, &session_id, &["payment_intent"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["payment_status"], "paid");
    assert_eq!(done["amount_total"], 4000);
    assert!(done["url"].is_null());
    assert!(
        done["customer"].is_null(),
        "no customer without customer_creation"
    );
    assert_eq!(done["customer_details"]["email"], "jenny@example.com");
    assert_eq!(done["customer_details"]["name"], "Jenny Rosen");
    let intent = &done["payment_intent"];
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 4000);
    assert_eq!(intent["amount_received"], 4000);
    assert_eq!(intent["currency"], "usd");
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            intent["latest_charge"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["amount"], 4000);
    assert_eq!(charge["payment_method_details"]["card"]["last4"], "4242");

    let events = events_in_order(&server).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("checkout.session.completed"),
        "{events:?}"
    );
    let created = events.iter().position(|e| e == "payment_intent.created");
    let succeeded = events.iter().position(|e| e == "payment_intent.succeeded");
    assert!(created.is_some() && created < succeeded, "{events:?}");
}

async fn payment_mode_decline_then_success(server: TestServer) {
    let session = payment_session(&server, 1500, 1, "&payment_method_types[]=card").await;
    let session_id = id(&session);
    let url = session["url"].as_str().unwrap();

    let declined = pay_with_card(&server, &session, CARD_DECLINED, Some("dee@example.com")).await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined.error().as_deref(), Some("Your card was declined."));
    // No Amazon Pay on a card-only session.
    assert!(!declined.html.contains("Continue to Amazon Pay"));
    let open_session = retrieve(&server, &session_id, &[]).await;
    assert_eq!(open_session["status"], "open");
    assert_eq!(open_session["payment_status"], "unpaid");
    // Reloading the page still shows why.
    let page = open(url).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.error().as_deref(), Some("Your card was declined."));

    pay_with_card(&server, &session, CARD_OK, Some("dee@example.com"))
        .await
        .assert_redirect_to(&success_of(&session_id));
    let done = retrieve(&server, &session_id, &[]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["payment_status"], "paid");
    let intents = server.get("/v1/payment_intents").await.ok();
    assert_eq!(
        ids(&intents),
        vec![done["payment_intent"].as_str().unwrap()]
    );
    let charges = server.get("/v1/charges").await.ok();
    let statuses: Vec<&str> = charges["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["succeeded", "failed"]);
    let events = events_in_order(&server).await;
    assert!(
        events.contains(&"payment_intent.payment_failed".to_owned()),
        "{events:?}"
    );
    assert_eq!(count(&events, "checkout.session.completed"), 1);
}

async fn payment_mode_three_d_secure(server: TestServer) {
    let session = payment_session(&server, 3000, 1, "&customer_email=tds%40example.com").await;
    let session_id = id(&session);
    // The email is known: shown, not asked for.
    let page = open(session["url"].as_str().unwrap()).await;
    assert!(!page.html.contains(r#"name="email""#), "{}", page.html);
    assert!(page.html.contains("tds@example.com"));

    // Failing the challenge comes back to the page with the reason.
    let challenge = pay_with_card(&server, &session, CARD_3DS, None).await;
    assert_eq!(
        challenge.status,
        StatusCode::SEE_OTHER,
        "{}",
        challenge.html
    );
    assert!(challenge.location.starts_with(&server.url("/authorize/")));
    let back = decide(&server, &session, &challenge.location, "fail").await;
    back.assert_redirect_to(session["url"].as_str().unwrap());
    let page = open(session["url"].as_str().unwrap()).await;
    assert!(page.error().is_some(), "{}", page.html);
    assert_eq!(retrieve(&server, &session_id, &[]).await["status"], "open");

    let challenge = pay_with_card(&server, &session, CARD_3DS, None).await;
    assert_eq!(
        challenge.status,
        StatusCode::SEE_OTHER,
        "{}",
        challenge.html
    );
    assert!(challenge.location.starts_with(&server.url("/authorize/")));
    assert_eq!(retrieve(&server, &session_id, &[]).await["status"], "open");
    decide(&server, &session, &challenge.location, "authorize")
        .await
        .assert_redirect_to(&success_of(&session_id));

    let done = retrieve(&server, &session_id, &["payment_intent"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["payment_status"], "paid");
    assert_eq!(done["customer_details"]["email"], "tds@example.com");
    assert_eq!(done["payment_intent"]["status"], "succeeded");
    assert_eq!(done["payment_intent"]["amount_received"], 3000);
}

/// `customer_creation=always` makes a customer from what the buyer typed;
/// `payment_intent_data[setup_future_usage]` with a customer saves the card
/// for later off-session payments.
async fn payment_mode_customers_and_saved_cards(server: TestServer) {
    let session = payment_session(&server, 900, 1, "&customer_creation=always").await;
    assert_eq!(session["customer_creation"], "always");
    assert!(session["customer"].is_null());
    pay_with_card(&server, &session, CARD_OK, Some("new@example.com"))
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = retrieve(&server, &id(&session), &["customer", "payment_intent"]).await;
    let created = &done["customer"];
    assert!(
        created["id"].as_str().unwrap().starts_with("cus_"),
        "{done}"
    );
    assert_eq!(created["email"], "new@example.com");
    assert_eq!(created["name"], "Jenny Rosen");
    assert_eq!(done["payment_intent"]["customer"], created["id"]);
    assert_eq!(done["customer_details"]["email"], "new@example.com");

    let buyer = customer(&server, "email=saved%40example.com&name=Saved").await;
    let session = payment_session(
        &server,
        700,
        3,
        &format!(
            "&customer={buyer}&payment_intent_data[setup_future_usage]=off_session&payment_intent_data[metadata][order]=42&payment_intent_data[description]=Three+things"
        ),
    )
    .await;
    assert_eq!(session["customer"], buyer.as_str());
    assert!(session["customer_creation"].is_null());
    // The customer's email is known: no field for it.
    let page = open(session["url"].as_str().unwrap()).await;
    assert!(!page.html.contains(r#"name="email""#));
    assert!(page.html.contains("saved@example.com"));
    pay_with_card(&server, &session, CARD_OK, None)
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = retrieve(&server, &id(&session), &["payment_intent"]).await;
    assert_eq!(done["customer"], buyer.as_str());
    assert_eq!(done["customer_details"]["email"], "saved@example.com");
    let intent = &done["payment_intent"];
    assert_eq!(intent["amount"], 2100);
    assert_eq!(intent["customer"], buyer.as_str());
    assert_eq!(intent["setup_future_usage"], "off_session");
    assert_eq!(intent["metadata"], json!({"order": "42"}));
    assert_eq!(intent["description"], "Three things");
    let pm = intent["payment_method"].as_str().unwrap();
    let card = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(card["customer"], buyer.as_str());
    let later = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=500&currency=usd&customer={buyer}&payment_method={pm}&confirm=true&off_session=true"
            ),
        )
        .await
        .ok();
    assert_eq!(later["status"], "succeeded");
}

// ---- subscription mode ---------------------------------------------------------------

/// What a completed subscription-mode session created: its subscription
/// (checked active with the collected default payment method) and invoice.
async fn check_subscription_session(server: &TestServer, session_id: &str, kind: &str) -> Value {
    let done = retrieve(server, session_id, &["subscription", "invoice"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["payment_status"], "paid");
    assert_eq!(done["amount_total"], 1500);
    let customer = done["customer"].as_str().unwrap();
    assert!(customer.starts_with("cus_"));
    let subscription = &done["subscription"];
    assert_eq!(subscription["status"], "active", "{subscription}");
    assert_eq!(subscription["customer"], customer);
    assert_eq!(
        subscription["items"]["data"][0]["price"]["id"],
        MONTHLY_PRICE
    );
    let pm = subscription["default_payment_method"]
        .as_str()
        .unwrap_or_else(|| panic!("a default payment method: {subscription}"));
    let method = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(method["type"], kind);
    assert_eq!(method["customer"], customer);
    let invoice = &done["invoice"];
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 1500);
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        subscription["id"]
    );
    assert_eq!(subscription["latest_invoice"], invoice["id"]);
    let events = events_in_order(server).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("checkout.session.completed"),
        "{events:?}"
    );
    assert!(events.contains(&"invoice.paid".to_owned()), "{events:?}");
    let completed = server
        .get("/v1/events?type=checkout.session.completed&limit=1")
        .await
        .ok();
    let object = &completed["data"][0]["data"]["object"];
    assert_eq!(object["id"], session_id);
    assert_eq!(object["subscription"], subscription["id"]);
    assert_eq!(object["invoice"], invoice["id"]);
    assert_eq!(object["customer"], customer);
    done
}

async fn subscription_mode_with_a_card(server: TestServer) {
    let session = create_session(
        &server,
        &format!(
            "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1&payment_method_types[]=card&subscription_data[metadata][plan]=photos"
        ),
    )
    .await;
    assert_eq!(session["amount_total"], 1500);
    assert_eq!(session["payment_status"], "unpaid");
    assert!(session["subscription"].is_null());
    let page = open(session["url"].as_str().unwrap()).await;
    assert!(
        page.html.contains("Subscribe: 15.00 USD due today"),
        "{}",
        page.html
    );
    assert!(page.html.contains("(per month)"));

    pay_with_card(&server, &session, CARD_OK, Some("sub@example.com"))
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = check_subscription_session(&server, &id(&session), "card").await;
    assert_eq!(done["subscription"]["metadata"], json!({"plan": "photos"}));
    assert_eq!(done["customer_details"]["email"], "sub@example.com");
    let customer = server
        .get(&format!(
            "/v1/customers/{}",
            done["customer"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(customer["email"], "sub@example.com");
}

/// A declined first payment leaves the session open; the next card pays
/// the same subscription's first invoice.
async fn subscription_mode_decline_then_success(server: TestServer) {
    let session = create_session(
        &server,
        &format!(
            "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1&payment_method_types[]=card"
        ),
    )
    .await;
    let declined = pay_with_card(&server, &session, CARD_DECLINED, Some("retry@example.com")).await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.html
    );
    assert_eq!(declined.error().as_deref(), Some("Your card was declined."));
    let waiting = retrieve(&server, &id(&session), &[]).await;
    assert_eq!(waiting["status"], "open");
    assert_eq!(waiting["payment_status"], "unpaid");
    pay_with_card(&server, &session, CARD_OK, Some("retry@example.com"))
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = check_subscription_session(&server, &id(&session), "card").await;
    let subscriptions = server.get("/v1/subscriptions?status=all").await.ok();
    assert_eq!(ids(&subscriptions), vec![id(&done["subscription"])]);
    let customers = server
        .get(&format!("/v1/customers?email={}", enc("retry@example.com")))
        .await
        .ok();
    assert_eq!(ids(&customers).len(), 1, "one customer for both tries");
}

async fn subscription_mode_with_amazon_pay(server: TestServer) {
    let session = create_session(
        &server,
        &format!(
            "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1&payment_method_types[]=amazon_pay"
        ),
    )
    .await;
    let authorize_url = continue_to_amazon_pay(&server, &session, Some("amazon@example.com")).await;
    let consent = open(&authorize_url).await;
    assert!(consent.html.contains("15.00 USD"), "{}", consent.html);
    decide(&server, &session, &authorize_url, "authorize")
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    check_subscription_session(&server, &id(&session), "amazon_pay").await;
}

/// A trial charges nothing today: the card (or Amazon Pay) is set up for
/// later and becomes the subscription's default.
async fn subscription_mode_with_a_trial(server: TestServer) {
    for kind in ["card", "amazon_pay"] {
        let session = create_session(
            &server,
            &format!(
                "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1&subscription_data[trial_period_days]=7&payment_method_types[]={kind}"
            ),
        )
        .await;
        let session_id = id(&session);
        assert_eq!(session["amount_total"], 0);
        let email = format!("trial-{kind}@example.com");
        if kind == "card" {
            pay_with_card(&server, &session, CARD_OK, Some(&email))
                .await
                .assert_redirect_to(&success_of(&session_id));
        } else {
            let authorize_url = continue_to_amazon_pay(&server, &session, Some(&email)).await;
            decide(&server, &session, &authorize_url, "authorize")
                .await
                .assert_redirect_to(&success_of(&session_id));
        }
        let done = retrieve(&server, &session_id, &["subscription", "invoice"]).await;
        assert_eq!(done["status"], "complete", "{kind}");
        assert_eq!(done["payment_status"], "no_payment_required", "{kind}");
        let subscription = &done["subscription"];
        assert_eq!(subscription["status"], "trialing", "{kind}");
        let trial = subscription["trial_end"].as_i64().unwrap()
            - subscription["trial_start"].as_i64().unwrap();
        assert_eq!(trial, 7 * 86_400);
        assert!(
            subscription["pending_setup_intent"].is_null(),
            "{subscription}"
        );
        let pm = subscription["default_payment_method"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}: a default payment method: {subscription}"));
        let method = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
        assert_eq!(method["type"], kind);
        assert_eq!(method["customer"], done["customer"]);
        assert_eq!(done["invoice"]["amount_paid"], 0);
    }
}

// ---- creation rules --------------------------------------------------------------------

/// POSTs a create that must fail with this status, code (unless empty) and
/// param, as an invalid_request_error; returns the message.
async fn refused(
    server: &TestServer,
    body: &str,
    status: StatusCode,
    code: &str,
    param: &str,
) -> String {
    let reply = server.post(SESSIONS, body).await;
    assert_eq!(reply.status, status, "{body}: {}", reply.body);
    assert_eq!(
        reply.error_type(),
        "invalid_request_error",
        "{body}: {}",
        reply.body
    );
    assert_eq!(reply.error_param(), param, "{body}: {}", reply.body);
    if !code.is_empty() {
        assert_eq!(reply.error_code(), code, "{body}: {}", reply.body);
    }
    reply.body["error"]["message"].as_str().unwrap().to_owned()
}

/// What a refusal's message must be: Stripe's exact words, or a part of them.
enum Message {
    Exactly(String),
    Contains(&'static str),
}

async fn parameter_rules(server: TestServer) {
    use Message::{Contains, Exactly};
    let bad = StatusCode::BAD_REQUEST;
    let one_time = one_time_price(&server, 1000).await;
    let inactive = one_time_price(&server, 1100).await;
    server
        .post(&format!("/v1/prices/{inactive}"), "active=false")
        .await
        .ok();
    let buyer = customer(&server, "email=rules%40example.com").await;
    let urls = format!(
        "success_url={}&cancel_url={}",
        enc(SUCCESS_URL),
        enc(CANCEL_URL)
    );
    let item = format!("line_items[0][price]={one_time}&line_items[0][quantity]=1");
    let monthly = format!("line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1");
    let return_url = enc("https://example.com/return?session_id={CHECKOUT_SESSION_ID}");

    // Stripe's own words where the rule is Stripe's.
    let soon = now() + 29 * 60;
    let late = now() + 25 * 60 * 60;
    let worded: Vec<(String, &str, &str, Message)> = vec![
        (format!("{urls}&{item}"), "parameter_missing", "mode", Exactly("Missing required param: mode.".to_owned())),
        (format!("mode=payment&{urls}&{monthly}"), "", "line_items[0][price]", Exactly("You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.".to_owned())),
        (format!("mode=subscription&{urls}&{item}"), "", "line_items", Exactly("You must provide at least one recurring price in `subscription` mode when using prices.".to_owned())),
        (format!("mode=setup&currency=usd&{urls}&customer={buyer}&customer_email=a%40example.com"), "parameters_exclusive", "customer_email", Exactly("You may only specify one of these parameters: customer, customer_email.".to_owned())),
        (format!(
            "mode=payment&{urls}&line_items[0][price]=price_missing&line_items[0][quantity]=1"
        ), "resource_missing", "line_items[0][price]", Exactly("No such price: 'price_missing'".to_owned())),
        (format!("mode=payment&{urls}&line_items[0][price]={inactive}&line_items[0][quantity]=1"), "", "line_items[0][price]", Exactly(format!(
            "The price specified ({inactive}) is inactive. This field only accepts active prices."
        ))),
        (format!("mode=setup&currency=usd&{urls}&customer=cus_missing"), "resource_missing", "customer", Exactly("No such customer: 'cus_missing'".to_owned())),
        (format!("mode=setup&currency=usd&{urls}&surprise=1"), "parameter_unknown", "surprise", Exactly("Received unknown parameter: surprise".to_owned())),
        (format!(
            "mode=setup&currency=usd&success_url=not-a-url&cancel_url={}",
            enc(CANCEL_URL)
        ), "", "success_url", Exactly("Not a valid URL".to_owned())),
        (format!("mode=setup&currency=usd&{urls}&expires_at={soon}"), "", "expires_at", Contains("at least 30 minutes")),
        (format!("mode=setup&currency=usd&{urls}&expires_at={late}"), "", "expires_at", Contains("less than 24 hours")),
    ];
    for (body, code, param, expected) in worded {
        let message = refused(&server, &body, bad, code, param).await;
        match expected {
            Message::Exactly(text) => assert_eq!(message, text, "{body}"),
            Message::Contains(part) => assert!(message.contains(part), "{body}: {message}"),
        }
    }

    // Which parameters each mode requires or refuses.
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("mode=setup&currency=usd&{urls}&{item}"),
            "",
            "line_items",
        ),
        (
            format!("mode=payment&{urls}"),
            "parameter_missing",
            "line_items",
        ),
        (
            format!("mode=subscription&{urls}"),
            "parameter_missing",
            "line_items",
        ),
        (
            format!("mode=setup&{urls}"),
            "parameter_missing",
            "currency",
        ),
        (
            format!(
                "mode=setup&currency=usd&{urls}&payment_intent_data[setup_future_usage]=off_session"
            ),
            "",
            "payment_intent_data",
        ),
        (
            format!("mode=payment&{urls}&{item}&setup_intent_data[description]=x"),
            "",
            "setup_intent_data",
        ),
        (
            format!("mode=payment&{urls}&{item}&subscription_data[trial_period_days]=7"),
            "",
            "subscription_data",
        ),
        (
            format!("mode=subscription&{urls}&{monthly}&customer_creation=always"),
            "",
            "customer_creation",
        ),
        (
            format!("mode=payment&{urls}&line_items[0][price]={one_time}"),
            "",
            "line_items[0]",
        ),
        (
            format!("mode=payment&{urls}&line_items[0][quantity]=1"),
            "",
            "line_items[0]",
        ),
        (
            format!("mode=setup&currency=usd&cancel_url={}", enc(CANCEL_URL)),
            "parameter_missing",
            "success_url",
        ),
        (
            format!(
                "mode=payment&{urls}&{item}&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=5&line_items[0][price_data][product]={PRODUCT}"
            ),
            "parameters_exclusive",
            "line_items[0][price_data]",
        ),
        (format!("mode=bogus&currency=usd&{urls}"), "", "mode"),
        (
            format!("mode=setup&currency=usd&{urls}&ui_mode=bogus"),
            "",
            "ui_mode",
        ),
        (
            format!(
                "mode=setup&currency=usd&ui_mode=embedded_page&return_url={return_url}&success_url={}",
                enc(SUCCESS_URL)
            ),
            "",
            "success_url",
        ),
        (
            "mode=setup&currency=usd&ui_mode=embedded_page".to_owned(),
            "parameter_missing",
            "return_url",
        ),
        (
            format!("mode=setup&currency=usd&{urls}&return_url={return_url}"),
            "",
            "return_url",
        ),
        (
            format!("mode=setup&currency=usd&{urls}&customer_email=not-an-email"),
            "",
            "customer_email",
        ),
        (
            format!("mode=setup&{urls}&payment_method_types[]=bitcoin"),
            "",
            "payment_method_types",
        ),
        (
            format!("mode=setup&currency=usd&{urls}&expires_at=soon"),
            "",
            "expires_at",
        ),
    ];
    for (body, code, param) in &cases {
        refused(&server, body, bad, code, param).await;
    }

    // Nothing was created by any of them.
    let list = server.get(SESSIONS).await.ok();
    assert!(ids(&list).is_empty(), "{list}");

    // The edges that are allowed.
    for expires_at in [now() + 31 * 60, now() + 23 * 60 * 60] {
        let session = create_session(
            &server,
            &format!("mode=setup&currency=usd&expires_at={expires_at}"),
        )
        .await;
        assert_eq!(session["expires_at"], expires_at);
    }
    let session = create_session(&server, "mode=setup&payment_method_types[]=card").await;
    assert!(session["currency"].is_null());
    assert_eq!(session["payment_method_types"], json!(["card"]));
}

// ---- expiry ------------------------------------------------------------------------------

async fn expire(server: &TestServer, session_id: &str) -> common::Reply {
    server
        .post(&format!("{SESSIONS}/{session_id}/expire"), "")
        .await
}

async fn expire_endpoint(server: TestServer) {
    let session = create_session(&server, "mode=setup&currency=usd").await;
    let session_id = id(&session);
    let url = session["url"].as_str().unwrap().to_owned();
    let expired = expire(&server, &session_id).await.ok();
    assert_eq!(expired["status"], "expired");
    assert!(expired["url"].is_null());
    assert_eq!(
        retrieve(&server, &session_id, &[]).await["status"],
        "expired"
    );
    // Its SetupIntent, made with it, is canceled with it.
    let intent = server
        .get(&format!(
            "/v1/setup_intents/{}",
            session["setup_intent"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(intent["status"], "canceled");
    assert_eq!(intent["cancellation_reason"], "abandoned");
    let events = events_in_order(&server).await;
    assert_eq!(
        events,
        vec![
            "setup_intent.created",
            "setup_intent.canceled",
            "checkout.session.expired"
        ]
    );
    let notice = server
        .get("/v1/events?type=checkout.session.expired")
        .await
        .ok();
    assert_eq!(
        notice["data"][0]["data"]["object"]["id"],
        session_id.as_str()
    );
    assert_eq!(notice["data"][0]["data"]["object"]["status"], "expired");

    let again = expire(&server, &session_id).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.error_type(), "invalid_request_error");
    assert_eq!(
        again.body["error"]["message"],
        "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of `expired`."
    );
    assert_eq!(events_in_order(&server).await.len(), 3);

    // The page of an expired session says so, and takes nothing.
    let page = open(&url).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.html.contains("expired"), "{}", page.html);
    let paid = pay_with_card(&server, &session, CARD_OK, Some("late@example.com")).await;
    assert_eq!(paid.status, StatusCode::GONE);
    let intents = server.get("/v1/setup_intents").await.ok();
    assert_eq!(ids(&intents), vec![id(&intent)]);
    assert_eq!(intents["data"][0]["status"], "canceled");

    // A complete session cannot expire.
    let session = payment_session(&server, 500, 1, "").await;
    pay_with_card(&server, &session, CARD_OK, Some("done@example.com"))
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let rejected = expire(&server, &id(&session)).await;
    assert_eq!(
        rejected.status,
        StatusCode::BAD_REQUEST,
        "{}",
        rejected.body
    );
    assert!(
        rejected.body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("This Checkout Session has a status of `complete`."),
        "{}",
        rejected.body
    );
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "complete"
    );

    // Unknown sessions.
    let missing = expire(&server, "cs_test_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");
    let missing = server.get(&format!("{SESSIONS}/cs_test_missing")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let page = open(&server.url("/c/pay/cs_test_missing")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

/// Expiring a session while its SetupIntent waits on the Amazon Pay page
/// cancels the SetupIntent: the page has nothing left to authorize.
async fn expire_while_waiting_on_amazon_pay(server: TestServer) {
    let session = create_session(&server, "mode=setup&payment_method_types[]=amazon_pay").await;
    let session_id = id(&session);
    let authorize_url = continue_to_amazon_pay(&server, &session, Some("slow@example.com")).await;
    let intent = newest(&server, "/v1/setup_intents").await;
    assert_eq!(intent["status"], "requires_action");

    let expired = expire(&server, &session_id).await.ok();
    assert_eq!(expired["status"], "expired");
    let intent = server
        .get(&format!("/v1/setup_intents/{}", id(&intent)))
        .await
        .ok();
    assert_eq!(intent["status"], "canceled");
    assert_eq!(intent["cancellation_reason"], "abandoned");
    assert!(intent["next_action"].is_null());
    let events = events_in_order(&server).await;
    assert_eq!(
        &events[events.len() - 2..],
        ["setup_intent.canceled", "checkout.session.expired"]
    );

    let consent = open(&authorize_url).await;
    assert!(
        consent.html.contains("Nothing left to authorize"),
        "{}",
        consent.html
    );
    let (status, _, _) = submit(&authorize_url, "authorize").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        retrieve(&server, &session_id, &[]).await["status"],
        "expired"
    );
    // The way back from the authorization page lands on the expired page.
    let back = open(&format!("{}/return", page_of(&server, &session))).await;
    assert_eq!(back.status, StatusCode::GONE);

    // Payment mode: the PaymentIntent waiting on 3-D Secure is canceled.
    let session = payment_session(&server, 800, 1, "&payment_method_types[]=card").await;
    let challenge = pay_with_card(&server, &session, CARD_3DS, Some("slow@example.com")).await;
    assert_eq!(
        challenge.status,
        StatusCode::SEE_OTHER,
        "{}",
        challenge.html
    );
    expire(&server, &id(&session)).await.ok();
    let intent = newest(&server, "/v1/payment_intents").await;
    assert_eq!(intent["status"], "canceled");
    assert_eq!(intent["cancellation_reason"], "abandoned");
    assert!(intent["canceled_at"].is_i64());
    let events = events_in_order(&server).await;
    assert_eq!(
        &events[events.len() - 2..],
        ["payment_intent.canceled", "checkout.session.expired"]
    );
    let (status, _, _) = submit(&challenge.location, "authorize").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "expired"
    );
    assert_eq!(
        count(
            &events_in_order(&server).await,
            "checkout.session.completed"
        ),
        0
    );
}

/// Rewrites a stored session's `expires_at` into the past, and its expiry
/// item with it, as if its time had come.
async fn make_due(server: &TestServer, session_id: &str) {
    let (account, record) = server
        .store
        .find(session_id)
        .await
        .unwrap()
        .expect("stored");
    let mut doc = record.data.clone();
    doc["expires_at"] = json!(now() - 1);
    let item = checkout_sessions::expiry_item_for(&account, None, &doc);
    let writes = [
        Write::Update(record.with_data(doc)),
        Write::Unschedule {
            id: item.id.clone(),
        },
        Write::Schedule(item),
    ];
    server.store.commit(&account, &writes).await.unwrap();
}

/// Retrieves the session until the scheduler has expired it.
async fn until_expired(server: &TestServer, session_id: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let seen = retrieve(server, session_id, &[]).await;
        if seen["status"] == "expired" || started.elapsed() > Duration::from_secs(10) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A session expires at `expires_at` whether anyone looks or not; its page
/// refuses the buyer from that moment on.
async fn expiry_at_expires_at(server: TestServer) {
    let first = create_session(&server, "mode=setup&currency=usd").await;
    let second = create_session(&server, "mode=setup&currency=usd").await;
    let third = create_session(&server, "mode=setup&currency=usd").await;

    make_due(&server, &id(&first)).await;
    let seen = until_expired(&server, &id(&first)).await;
    assert_eq!(seen["status"], "expired");
    assert!(seen["url"].is_null());
    let events = events_in_order(&server).await;
    assert_eq!(
        &events[events.len() - 2..],
        ["setup_intent.canceled", "checkout.session.expired"]
    );
    // Once only.
    assert_eq!(
        retrieve(&server, &id(&first), &[]).await["status"],
        "expired"
    );
    assert_eq!(events_in_order(&server).await, events);

    make_due(&server, &id(&second)).await;
    until_expired(&server, &id(&second)).await;
    let open_ids = ids(&server.get(&format!("{SESSIONS}?status=open")).await.ok());
    assert_eq!(open_ids, vec![id(&third)]);
    let expired_ids = ids(&server.get(&format!("{SESSIONS}?status=expired")).await.ok());
    assert_eq!(expired_ids, vec![id(&second), id(&first)]);
    assert_eq!(
        count(&events_in_order(&server).await, "checkout.session.expired"),
        2
    );

    make_due(&server, &id(&third)).await;
    let page = open(third["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(
        until_expired(&server, &id(&third)).await["status"],
        "expired"
    );
}

/// A session whose time runs out while the buyer is on the Amazon Pay page
/// is expired, not completed, when the buyer authorizes there.
async fn expires_at_passes_during_authorization(server: TestServer) {
    let session = create_session(&server, "mode=setup&payment_method_types[]=amazon_pay").await;
    let session_id = id(&session);
    let authorize_url = continue_to_amazon_pay(&server, &session, Some("slow@example.com")).await;
    make_due(&server, &session_id).await;
    let (status, location, body) = submit(&authorize_url, "authorize").await;
    let session = until_expired(&server, &session_id).await;
    assert_eq!(
        session["status"], "expired",
        "authorizing after expires_at ({status} {location} {body}) completed the session"
    );
    let intent = newest(&server, "/v1/setup_intents").await;
    assert_ne!(intent["status"], "succeeded");
    let events = events_in_order(&server).await;
    assert_eq!(
        count(&events, "checkout.session.completed"),
        0,
        "{events:?}"
    );
}

/// Expiring a subscription-mode session while its first payment waits on
/// the Amazon Pay page: the buyer can no longer complete it (Stripe: "After
/// it expires, a customer can't complete a Checkout Session"), so nothing
/// is charged.
async fn expire_subscription_session_while_waiting_on_amazon_pay(server: TestServer) {
    let session = create_session(
        &server,
        &format!(
            "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1&payment_method_types[]=amazon_pay"
        ),
    )
    .await;
    let authorize_url = continue_to_amazon_pay(&server, &session, Some("late@example.com")).await;
    expire(&server, &id(&session)).await.ok();
    let (status, location, _) = submit(&authorize_url, "authorize").await;
    let charges = server.get("/v1/charges").await.ok();
    let paid: Vec<&Value> = charges["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "succeeded")
        .collect();
    assert!(
        paid.is_empty(),
        "the buyer was charged for an expired session ({status} {location}): {paid:?}"
    );
    assert_ne!(status, StatusCode::SEE_OTHER, "{location}");
    let subscriptions = server.get("/v1/subscriptions?status=all").await.ok();
    assert_ne!(subscriptions["data"][0]["status"], "active");
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "expired"
    );
}

/// Stripe: "You can't confirm or cancel the PaymentIntent for a Checkout
/// Session. To cancel, expire the Checkout Session instead." (as the
/// session's SetupIntent already refuses).
async fn checkout_payment_intent_moves_only_through_the_session(server: TestServer) {
    let session = payment_session(&server, 1000, 1, "&payment_method_types[]=card").await;
    let challenge = pay_with_card(&server, &session, CARD_3DS, Some("api@example.com")).await;
    assert_eq!(
        challenge.status,
        StatusCode::SEE_OTHER,
        "{}",
        challenge.html
    );
    let intent = newest(&server, "/v1/payment_intents").await;
    assert_eq!(intent["status"], "requires_action");

    let confirm = server
        .post(
            &format!("/v1/payment_intents/{}/confirm", id(&intent)),
            "payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(confirm.status, StatusCode::BAD_REQUEST, "{}", confirm.body);
    assert_eq!(confirm.error_type(), "invalid_request_error");
    let cancel = server
        .post(&format!("/v1/payment_intents/{}/cancel", id(&intent)), "")
        .await;
    assert_eq!(cancel.status, StatusCode::BAD_REQUEST, "{}", cancel.body);
    assert_eq!(cancel.error_type(), "invalid_request_error");

    // The session still completes through its page, charged once.
    decide(&server, &session, &challenge.location, "authorize")
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let charges = server.get("/v1/charges").await.ok();
    assert_eq!(ids(&charges).len(), 1);
}

// ---- lists and line items --------------------------------------------------------

async fn lists_and_line_items(server: TestServer) {
    let start = now();
    let buyer = customer(&server, "email=list%40example.com").await;
    let setup = create_session(
        &server,
        &format!("mode=setup&currency=usd&customer={buyer}"),
    )
    .await;
    let paid = payment_session(&server, 1000, 1, "").await;
    pay_with_card(&server, &paid, CARD_OK, Some("payer@example.com")).await;
    let subscribed = create_session(
        &server,
        &format!(
            "mode=subscription&line_items[0][price]={MONTHLY_PRICE}&line_items[0][quantity]=1"
        ),
    )
    .await;
    pay_with_card(
        &server,
        &subscribed,
        CARD_OK,
        Some("subscriber@example.com"),
    )
    .await;
    let gone = create_session(&server, "mode=setup&currency=usd").await;
    expire(&server, &id(&gone)).await.ok();

    let paid = retrieve(&server, &id(&paid), &[]).await;
    let subscribed = retrieve(&server, &id(&subscribed), &[]).await;
    let all = vec![id(&gone), id(&subscribed), id(&paid), id(&setup)];
    let list = |query: String| {
        let server = &server;
        async move {
            let reply = server.get(&format!("{SESSIONS}?{query}")).await.ok();
            assert_eq!(reply["object"], "list");
            assert_eq!(reply["url"], SESSIONS);
            ids(&reply)
        }
    };
    assert_eq!(list(String::new()).await, all);
    assert_eq!(list(format!("customer={buyer}")).await, vec![id(&setup)]);
    assert_eq!(
        list(format!(
            "customer={}",
            subscribed["customer"].as_str().unwrap()
        ))
        .await,
        vec![id(&subscribed)]
    );
    assert_eq!(
        list(format!(
            "customer_details[email]={}",
            enc("payer@example.com")
        ))
        .await,
        vec![id(&paid)]
    );
    assert_eq!(
        list(format!(
            "payment_intent={}",
            paid["payment_intent"].as_str().unwrap()
        ))
        .await,
        vec![id(&paid)]
    );
    assert_eq!(
        list(format!(
            "subscription={}",
            subscribed["subscription"].as_str().unwrap()
        ))
        .await,
        vec![id(&subscribed)]
    );
    assert_eq!(list("status=open".into()).await, vec![id(&setup)]);
    assert_eq!(
        list("status=complete".into()).await,
        vec![id(&subscribed), id(&paid)]
    );
    assert_eq!(list("status=expired".into()).await, vec![id(&gone)]);
    assert_eq!(list(format!("created[gte]={start}")).await, all);
    assert!(list(format!("created[gt]={}", now() + 10)).await.is_empty());
    assert!(list(format!("created[lt]={start}")).await.is_empty());

    // Pages.
    let first = server.get(&format!("{SESSIONS}?limit=3")).await.ok();
    assert_eq!(ids(&first), all[..3]);
    assert_eq!(first["has_more"], true);
    let rest = server
        .get(&format!("{SESSIONS}?limit=3&starting_after={}", all[2]))
        .await
        .ok();
    assert_eq!(ids(&rest), all[3..]);
    assert_eq!(rest["has_more"], false);
    let before = server
        .get(&format!("{SESSIONS}?limit=2&ending_before={}", all[3]))
        .await
        .ok();
    assert_eq!(ids(&before), all[1..3]);

    // Bad list parameters.
    for (query, param) in [
        ("status=bogus", "status"),
        ("limit=0", "limit"),
        ("surprise=1", "surprise"),
    ] {
        let reply = server.get(&format!("{SESSIONS}?{query}")).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), param, "{query}");
    }

    // Line items.
    let cheap = one_time_price(&server, 250).await;
    let dear = one_time_price(&server, 1999).await;
    let session = create_session(
        &server,
        &format!(
            "mode=payment&line_items[0][price]={cheap}&line_items[0][quantity]=4&line_items[1][price]={dear}&line_items[1][quantity]=1&line_items[2][price_data][currency]=usd&line_items[2][price_data][unit_amount]=300&line_items[2][price_data][product_data][name]=Gift+wrap&line_items[2][quantity]=2"
        ),
    )
    .await;
    assert_eq!(session["amount_subtotal"], 1000 + 1999 + 600);
    assert_eq!(session["amount_total"], 3599);
    let path = format!("{SESSIONS}/{}/line_items", id(&session));
    let all_items = server.get(&path).await.ok();
    assert_eq!(all_items["object"], "list");
    assert_eq!(all_items["url"], path.as_str());
    assert_eq!(all_items["has_more"], false);
    let items = all_items["data"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    for (item, (price, quantity, unit, name)) in items.iter().zip([
        (Some(cheap.as_str()), 4, 250, PRODUCT_NAME),
        (Some(dear.as_str()), 1, 1999, PRODUCT_NAME),
        (None, 2, 300, "Gift wrap"),
    ]) {
        assert_eq!(item["object"], "item");
        assert!(id(item).starts_with("li_"), "{item}");
        assert_eq!(item["quantity"], quantity);
        assert_eq!(item["amount_subtotal"], unit * quantity);
        assert_eq!(item["amount_total"], unit * quantity);
        assert_eq!(item["amount_discount"], 0);
        assert_eq!(item["amount_tax"], 0);
        assert_eq!(item["currency"], "usd");
        assert_eq!(item["description"], name);
        assert_eq!(item["price"]["object"], "price");
        assert_eq!(item["price"]["unit_amount"], unit);
        assert_eq!(item["price"]["type"], "one_time");
        if let Some(price) = price {
            assert_eq!(item["price"]["id"], price);
        }
        assert!(
            item["price"]
                .as_object()
                .unwrap()
                .keys()
                .all(|k| !k.starts_with('_'))
        );
    }
    let page = server.get(&format!("{path}?limit=1")).await.ok();
    assert_eq!(ids(&page), vec![id(&items[0])]);
    assert_eq!(page["has_more"], true);
    let next = server
        .get(&format!("{path}?limit=1&starting_after={}", id(&items[0])))
        .await
        .ok();
    assert_eq!(ids(&next), vec![id(&items[1])]);
    assert_eq!(next["has_more"], true);
    let last = server
        .get(&format!("{path}?limit=5&starting_after={}", id(&items[1])))
        .await
        .ok();
    assert_eq!(ids(&last), vec![id(&items[2])]);
    assert_eq!(last["has_more"], false);
    let missing = server
        .get(&format!("{SESSIONS}/cs_test_missing/line_items"))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Expanded on the session, and on create.
    let expanded = retrieve(&server, &id(&session), &["line_items"]).await;
    assert_eq!(expanded["line_items"]["data"], json!(items));
    assert_eq!(expanded["line_items"]["url"], path.as_str());
    assert!(
        retrieve(&server, &id(&session), &[])
            .await
            .get("line_items")
            .is_none()
    );
    let created = server
        .post(
            SESSIONS,
            &format!(
                "mode=payment&line_items[0][price]={cheap}&line_items[0][quantity]=1&success_url={}&expand[]=line_items",
                enc(SUCCESS_URL)
            ),
        )
        .await
        .ok();
    assert_eq!(created["line_items"]["data"][0]["amount_total"], 250);
    let listed = server
        .get(&format!("{SESSIONS}?limit=1&expand[]=data.line_items"))
        .await
        .ok();
    assert_eq!(
        listed["data"][0]["line_items"]["data"][0]["amount_total"],
        250
    );
}

// ---- the embedded page -------------------------------------------------------------

async fn embedded_page(server: TestServer) {
    let return_url = "https://example.com/return?session_id={CHECKOUT_SESSION_ID}";
    let price = one_time_price(&server, 1250).await;
    let session = server
        .post(
            SESSIONS,
            &format!(
                "mode=payment&ui_mode=embedded_page&return_url={}&line_items[0][price]={price}&line_items[0][quantity]=1",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let session_id = id(&session);
    assert_eq!(session["ui_mode"], "embedded_page");
    assert!(session["url"].is_null());
    assert!(session["success_url"].is_null());
    assert_eq!(session["return_url"], return_url);
    assert_eq!(session["redirect_on_completion"], "always");
    let secret = session["client_secret"].as_str().unwrap();
    assert!(
        secret.starts_with(&format!("{session_id}_secret_")),
        "{secret}"
    );

    pay_with_card(&server, &session, CARD_OK, Some("embedded@example.com"))
        .await
        .assert_redirect_to(&format!(
            "https://example.com/return?session_id={session_id}"
        ));
    let done = retrieve(&server, &session_id, &[]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["client_secret"], secret);

    // Through Amazon Pay too, in setup mode.
    let session = server
        .post(
            SESSIONS,
            &format!(
                "mode=setup&currency=usd&ui_mode=embedded_page&return_url={}",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let authorize_url =
        continue_to_amazon_pay(&server, &session, Some("embedded@example.com")).await;
    decide(&server, &session, &authorize_url, "authorize")
        .await
        .assert_redirect_to(&format!(
            "https://example.com/return?session_id={}",
            id(&session)
        ));

    // redirect_on_completion=never: the buyer stays on the page.
    let session = server
        .post(
            SESSIONS,
            &format!(
                "mode=payment&ui_mode=embedded_page&redirect_on_completion=never&line_items[0][price]={price}&line_items[0][quantity]=1"
            ),
        )
        .await
        .ok();
    assert!(session["return_url"].is_null());
    let page = pay_with_card(&server, &session, CARD_OK, Some("embedded@example.com")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("complete"));
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "complete"
    );
}

// ---- the page itself -----------------------------------------------------------------

/// What the page refuses before anything is paid: each answer is the page
/// again with the reason, and the session stays open.
async fn page_form_errors(server: TestServer) {
    let session = payment_session(&server, 1000, 1, "&payment_method_types[]=card").await;
    let url = session["url"].as_str().unwrap().to_owned();
    let expiry = enc("12 / 34");
    let cases = [
        (
            format!(
                "payment_method_type=card&cardNumber={CARD_OK}&cardExpiry={expiry}&cardCvc=123"
            ),
            "Enter your email address.",
        ),
        (
            format!(
                "payment_method_type=card&cardNumber={CARD_OK}&cardExpiry={expiry}&cardCvc=123&email=nope"
            ),
            "Your email address is invalid.",
        ),
        (
            format!(
                "payment_method_type=card&cardExpiry={expiry}&cardCvc=123&email=a%40example.com"
            ),
            "Your card number is incomplete.",
        ),
        (
            format!(
                "payment_method_type=card&cardNumber={CARD_OK}&cardExpiry=12&cardCvc=123&email=a%40example.com"
            ),
            "Your card's expiration date is incomplete.",
        ),
        (
            format!(
                "payment_method_type=card&cardNumber={CARD_OK}&cardExpiry={expiry}&email=a%40example.com"
            ),
            "Your card's security code is incomplete.",
        ),
        (
            "payment_method_type=amazon_pay&email=a%40example.com".to_owned(),
            "Choose a payment method: this checkout accepts card.",
        ),
    ];
    for (form, message) in &cases {
        let page = post_form(&url, form).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{form}: {}",
            page.html
        );
        assert_eq!(
            page.error().map(|e| e.replace("&#39;", "'")).as_deref(),
            Some(*message),
            "{form}"
        );
        assert!(page.html.contains(r#"name="cardNumber""#));
    }
    let page = post_form(&url, "payment_method_type=card&cardNumber=4242424242424241&cardExpiry=12%20%2F%2034&cardCvc=123&email=a%40example.com").await;
    assert!(page.status.is_client_error(), "{}", page.html);
    assert!(page.error().is_some(), "{}", page.html);
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "open"
    );
    assert!(
        server.get("/v1/payment_intents").await.ok()["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|pi| pi["status"] != "succeeded")
    );

    // Setup mode, card only: no Amazon Pay, a "Save card" button.
    let session = create_session(&server, "mode=setup&payment_method_types[]=card").await;
    let page = open(session["url"].as_str().unwrap()).await;
    assert!(page.html.contains("Set up a payment method"));
    assert!(!page.html.contains("Continue to Amazon Pay"));
    assert!(page.html.contains("Save card"));
    // Without a cancel_url there is no back link.
    let session = server
        .post(
            SESSIONS,
            &format!("mode=setup&currency=usd&success_url={}", enc(SUCCESS_URL)),
        )
        .await
        .ok();
    let page = open(session["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains(r#"id="back""#));
}

/// The fixtures' customer pays in setup mode by card: the card is attached.
async fn setup_mode_with_a_card(server: TestServer) {
    let session = create_session(
        &server,
        "mode=setup&customer=cus_ODQluYFNl44ODI&payment_method_types[]=card&setup_intent_data[description]=For+later&setup_intent_data[metadata][k]=v",
    )
    .await;
    pay_with_card(&server, &session, CARD_OK, None)
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = retrieve(&server, &id(&session), &["setup_intent.payment_method"]).await;
    assert_eq!(done["status"], "complete");
    assert_eq!(done["setup_intent"]["status"], "succeeded");
    assert_eq!(done["setup_intent"]["description"], "For later");
    assert_eq!(done["setup_intent"]["metadata"], json!({"k": "v"}));
    assert_eq!(
        done["setup_intent"]["payment_method"]["customer"],
        "cus_ODQluYFNl44ODI"
    );
    assert_eq!(
        done["setup_intent"]["payment_method"]["card"]["last4"],
        "4242"
    );
    assert_eq!(done["customer_details"]["name"], "Jenny Rosen");

    // customer_creation=always: a customer from what the buyer typed, the
    // card attached to it.
    let session = create_session(
        &server,
        "mode=setup&currency=usd&customer_creation=always&payment_method_types[]=card",
    )
    .await;
    pay_with_card(&server, &session, CARD_OK, Some("made@example.com"))
        .await
        .assert_redirect_to(&success_of(&id(&session)));
    let done = retrieve(
        &server,
        &id(&session),
        &["setup_intent.payment_method", "customer"],
    )
    .await;
    let made = &done["customer"];
    assert_eq!(made["email"], "made@example.com", "{done}");
    assert_eq!(done["setup_intent"]["customer"], made["id"]);
    assert_eq!(
        done["setup_intent"]["payment_method"]["customer"],
        made["id"]
    );

    // The same Idempotency-Key makes one session (and one SetupIntent).
    let body = format!("mode=setup&currency=usd&success_url={}", enc(SUCCESS_URL));
    let before = ids(&server.get("/v1/setup_intents?limit=100").await.ok()).len();
    let first = server
        .call(
            reqwest::Method::POST,
            SESSIONS,
            Some(common::KEY),
            &body,
            &[("idempotency-key", "cs-once")],
        )
        .await
        .ok();
    let second = server
        .call(
            reqwest::Method::POST,
            SESSIONS,
            Some(common::KEY),
            &body,
            &[("idempotency-key", "cs-once")],
        )
        .await
        .ok();
    assert_eq!(first, second);
    let after = ids(&server.get("/v1/setup_intents?limit=100").await.ok()).len();
    assert_eq!(after, before + 1);

    // A declined card in setup mode stays on the page.
    let session = create_session(
        &server,
        "mode=setup&customer=cus_ODQluYFNl44ODI&payment_method_types[]=card",
    )
    .await;
    let page = pay_with_card(&server, &session, CARD_DECLINED, None).await;
    assert_eq!(page.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(page.error().as_deref(), Some("Your card was declined."));
    assert_eq!(
        retrieve(&server, &id(&session), &[]).await["status"],
        "open"
    );
}

// ---- races ---------------------------------------------------------------------------

/// Six buyers' browsers submit the same session at once: one payment, one
/// completion, and every browser lands on the success URL or the
/// "complete" page.
async fn concurrent_card_submits(server: TestServer) {
    let session = payment_session(&server, 4200, 1, "&payment_method_types[]=card").await;
    let session_id = id(&session);
    let pages = futures_util::future::join_all(
        (0..6).map(|_| pay_with_card(&server, &session, CARD_OK, Some("race@example.com"))),
    )
    .await;
    for page in &pages {
        match page.status {
            StatusCode::SEE_OTHER => assert_eq!(page.location, success_of(&session_id)),
            StatusCode::OK => assert!(page.html.contains("complete"), "{}", page.html),
            other => panic!("{other}: {}", page.html),
        }
    }
    let events = events_in_order(&server).await;
    assert_eq!(
        count(&events, "checkout.session.completed"),
        1,
        "{events:?}"
    );
    assert_eq!(count(&events, "payment_intent.succeeded"), 1, "{events:?}");
    let charges = server.get("/v1/charges").await.ok();
    let charges = charges["data"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["status"], "succeeded");
    assert_eq!(charges[0]["amount"], 4200);
    let intents = server.get("/v1/payment_intents").await.ok();
    assert_eq!(ids(&intents).len(), 1);
    let done = retrieve(&server, &session_id, &[]).await;
    assert_eq!(done["payment_intent"], intents["data"][0]["id"]);
}

// ---- escaping -------------------------------------------------------------------------

async fn page_escapes_html(server: TestServer) {
    let name = r#"<script>alert(1)</script> & "q""#;
    let cancel = r#"https://example.com/cancel?a="x"&b=<y>"#;
    let session = server
        .post(
            SESSIONS,
            &format!(
                "mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]={}&line_items[0][quantity]=1&success_url={}&cancel_url={}&customer_email={}",
                enc(name),
                enc(SUCCESS_URL),
                enc(cancel),
                enc("o'brien@example.com"),
            ),
        )
        .await
        .ok();
    let items = server
        .get(&format!("{SESSIONS}/{}/line_items", id(&session)))
        .await
        .ok();
    assert_eq!(items["data"][0]["description"], name);
    let page = open(session["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("<script>alert(1)"), "{}", page.html);
    assert!(!page.html.contains(r#""q""#));
    assert!(
        page.html
            .contains("https://example.com/cancel?a=&quot;x&quot;&amp;b=&lt;y&gt;"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("b=<y>"));
    assert!(page.html.contains("o&#39;brien@example.com"));
}

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap();
    seed_001_setup_mode_with_amazon_pay,
    seed_004_setup_without_customer_then_attach,
    amazon_pay_failure_then_retry,
    payment_mode_with_a_card,
    payment_mode_decline_then_success,
    payment_mode_three_d_secure,
    payment_mode_customers_and_saved_cards,
    subscription_mode_with_a_card,
    subscription_mode_decline_then_success,
    subscription_mode_with_amazon_pay,
    subscription_mode_with_a_trial,
    parameter_rules,
    expire_endpoint,
    expire_while_waiting_on_amazon_pay,
    expiry_at_expires_at,
    expires_at_passes_during_authorization,
    lists_and_line_items,
    embedded_page,
    page_form_errors,
    setup_mode_with_a_card,
    concurrent_card_submits,
    page_escapes_html,
    checkout_payment_intent_moves_only_through_the_session,
    expire_subscription_session_while_waiting_on_amazon_pay,
);
