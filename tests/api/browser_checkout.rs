//! The hosted Checkout page (`session.url`) in a real browser: headless
//! Chromium, driven through chromedriver, types and clicks through it like a
//! buyer, from the page to the success or cancel URL (this test server's
//! own `/healthz`, so the browser lands on a real page). Skips, saying so,
//! when chromedriver is not installed, unless `CI` is set.

use crate::common;

use common::driver::{Browser, has_pair, query_of};
use common::{TestServer, enc, id};
use reqwest::Url;
use serde_json::{Value, json};

/// A product name made to break out of the page's HTML if it were not
/// escaped.
const PRODUCT: &str = r#"Cotton tee <b>"XL"</b> & socks"#;
/// The embedded fixtures' monthly price (15.00 USD) and its product's name.
const FIXTURE_PRICE: &str = "price_G0FvDp6vZvdwRZ";
const FIXTURE_PRODUCT: &str = "Stock photo subscription";

const CARD_OK: &str = "4242 4242 4242 4242";
const CARD_DECLINED: &str = "4000 0000 0000 0002";
const CARD_3DS: &str = "4000 0025 0000 3155";
const EXPIRY: &str = "12 / 34";
const NAME: &str = "Jenny Rosen";

backend_tests!(
    browser;
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap();
    setup_with_amazon_pay,
    amazon_pay_declined_then_authorized,
    setup_with_card,
    payment_with_card,
    subscription_with_card,
    card_declined_then_paid,
    three_d_secure_card,
    cancel_link,
    stale_tab_after_expiry,
);

fn success_url(server: &TestServer) -> String {
    server.url("/healthz?checkout=success&session_id={CHECKOUT_SESSION_ID}")
}

fn cancel_url(server: &TestServer) -> String {
    server.url("/healthz?checkout=cancel")
}

fn email() -> String {
    format!("buyer-{}@example.com", common::random_suffix())
}

/// Creates a session (`body` plus the success and cancel URLs) whose page
/// is on this server.
async fn create_session(server: &TestServer, body: &str) -> Value {
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "{body}&success_url={}&cancel_url={}",
                enc(&success_url(server)),
                enc(&cancel_url(server))
            ),
        )
        .await
        .ok();
    assert_eq!(session["status"], "open", "{session}");
    let prefix = server.url(&format!("/c/pay/{}/", id(&session)));
    assert!(
        session["url"].as_str().unwrap().starts_with(&prefix),
        "{session}"
    );
    session
}

async fn retrieve(server: &TestServer, session: &Value, expand: &[&str]) -> Value {
    let query: Vec<String> = expand.iter().map(|e| format!("expand[]={e}")).collect();
    server
        .get(&format!(
            "/v1/checkout/sessions/{}?{}",
            id(session),
            query.join("&")
        ))
        .await
        .ok()
}

fn page_url(session: &Value) -> &str {
    session["url"].as_str().expect("a page url")
}

/// Opens the session's page and checks what every Checkout page shows:
/// a 200, the test-mode merchant, `heading`, no script and no alert.
async fn open_checkout(browser: &Browser, session: &Value, heading: &str) {
    browser.goto(page_url(session)).await.expect("page opens");
    assert_eq!(browser.response_status().await, 200);
    assert_eq!(
        browser.title().await.expect("title"),
        "stripe-twin Checkout"
    );
    assert!(
        browser.text_of(".brand").await.contains("TEST MODE"),
        "no test-mode badge"
    );
    assert_eq!(browser.text_of("h1").await, heading);
    browser.assert_no_alert().await;
    assert!(!browser.has("script").await, "the page holds a script");
}

/// The line items as shown: one `(what, amount)` per row, then the total.
async fn shown_items(browser: &Browser) -> (Vec<(String, String)>, String) {
    let mut items = Vec::new();
    for row in browser
        .find_all(fantoccini::Locator::Css("tr.line-item"))
        .await
        .expect("rows")
    {
        let cells = row
            .find_all(fantoccini::Locator::Css("td"))
            .await
            .expect("cells");
        assert_eq!(cells.len(), 2, "a row of what and amount");
        items.push((
            cells[0].text().await.expect("text"),
            cells[1].text().await.expect("text"),
        ));
    }
    (
        items,
        browser.by_id("total").await.text().await.expect("total"),
    )
}

/// Fills in the card form (and the email when given) and clicks the button.
async fn pay_with_card(browser: &Browser, email: Option<&str>, number: &str) {
    if let Some(email) = email {
        browser.type_into("email", email).await;
    }
    browser.type_into("cardNumber", number).await;
    browser.type_into("cardExpiry", EXPIRY).await;
    browser.type_into("cardCvc", "123").await;
    browser.type_into("billingName", NAME).await;
    browser.click_id("submit").await;
}

/// Waits for the success URL, with the session's ID in place of the template.
async fn land_on_success(browser: &Browser, server: &TestServer, session: &Value) -> Url {
    let landed = browser
        .wait_for_url(&server.url("/healthz?checkout=success"))
        .await;
    let query = query_of(&landed);
    assert!(has_pair(&query, "session_id", &id(session)), "{landed}");
    assert_eq!(
        landed.as_str(),
        success_url(server).replace("{CHECKOUT_SESSION_ID}", &id(session))
    );
    assert_eq!(browser.response_status().await, 200, "{landed}");
    landed
}

/// Seeds 001 and 004: a known customer saves Amazon Pay in setup mode.
async fn setup_with_amazon_pay(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let customer = server
        .post("/v1/customers", &format!("email={}", enc(&email)))
        .await
        .ok();
    let customer = id(&customer);
    let session = create_session(
        &server,
        &format!("mode=setup&customer={customer}&payment_method_types[]=amazon_pay"),
    )
    .await;

    open_checkout(&browser, &session, "Set up a payment method").await;
    assert!(!browser.has("table").await, "no line items in setup mode");
    assert_eq!(browser.text_of("#known-email").await, email);
    assert!(
        !browser.has("#email").await,
        "the customer's email is known"
    );
    assert!(!browser.has("#submit").await, "cards are not offered");
    let back = browser.by_id("back").await;
    assert_eq!(
        back.attr("href").await.expect("href"),
        Some(cancel_url(&server))
    );
    let button = browser.by_id("amazon-pay").await;
    assert_eq!(button.text().await.expect("text"), "Continue to Amazon Pay");
    button.click().await.expect("click");

    browser.wait_for_url(&server.url("/authorize/")).await;
    assert_eq!(browser.response_status().await, 200);
    browser.wait_for_source("Authorize test setup").await;
    browser.click_id("authorize").await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(
        &server,
        &session,
        &["setup_intent.payment_method", "setup_intent.mandate"],
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "no_payment_required", "{done}");
    assert_eq!(done["url"], Value::Null, "{done}");
    assert_eq!(done["customer"], json!(customer), "{done}");
    assert_eq!(done["customer_details"]["email"], json!(email), "{done}");
    let intent = &done["setup_intent"];
    assert_eq!(intent["status"], "succeeded", "{done}");
    assert_eq!(intent["customer"], json!(customer), "{done}");
    let pm = &intent["payment_method"];
    assert_eq!(pm["type"], "amazon_pay", "{done}");
    assert_eq!(pm["customer"], json!(customer), "attached: {done}");
    let mandate = &intent["mandate"];
    assert_eq!(mandate["status"], "active", "{done}");
    assert_eq!(mandate["payment_method"], pm["id"], "{done}");
    let agent = mandate["customer_acceptance"]["online"]["user_agent"]
        .as_str()
        .unwrap_or_default();
    assert!(
        agent.contains("Chrome"),
        "accepted in the browser: {agent:?}"
    );

    // The customer's saved payment methods now hold it.
    let listed = server
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await
        .ok();
    assert_eq!(listed["data"][0]["id"], pm["id"], "{listed}");

    // The page of a completed session says so, and links on.
    browser.goto(page_url(&session)).await.expect("page opens");
    browser
        .wait_for_source("This checkout session is complete.")
        .await;
    assert!(!browser.has("form").await, "nothing left to submit");

    browser.quit().await;
    server.stop().await;
}

/// Setup mode without a customer: the buyer declines on Amazon Pay, sees
/// why back on the Checkout page, then authorizes; the PaymentMethod, not
/// attached, is then attached to a customer as seed 004 does.
async fn amazon_pay_declined_then_authorized(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = create_session(&server, "mode=setup&payment_method_types[]=amazon_pay").await;

    open_checkout(&browser, &session, "Set up a payment method").await;
    assert!(!browser.has("#error").await, "no error yet");
    browser.type_into("email", &email).await;
    browser.click_id("amazon-pay").await;
    browser.wait_for_url(&server.url("/authorize/")).await;
    browser.click_id("fail").await;

    let error = browser
        .wait_for_text("error", "declined the authorization on Amazon Pay")
        .await;
    assert_eq!(
        error,
        "The customer declined the authorization on Amazon Pay, so the payment method was not set up."
    );
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        page_url(&session),
        "back on the Checkout page"
    );
    let open = retrieve(&server, &session, &[]).await;
    assert_eq!(open["status"], "open", "{open}");
    assert_eq!(open["url"], session["url"], "{open}");

    // Try again, and authorize this time.
    browser.type_into("email", &email).await;
    browser.click_id("amazon-pay").await;
    browser.wait_for_url(&server.url("/authorize/")).await;
    browser.click_id("authorize").await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(&server, &session, &["setup_intent.payment_method"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["customer"], Value::Null, "no customer: {done}");
    assert_eq!(done["customer_details"]["email"], json!(email), "{done}");
    let intent = &done["setup_intent"];
    assert_eq!(intent["status"], "succeeded", "{done}");
    assert_eq!(intent["last_setup_error"], Value::Null, "{done}");
    let pm = &intent["payment_method"];
    assert_eq!(pm["type"], "amazon_pay", "{done}");
    assert_eq!(pm["customer"], Value::Null, "{done}");

    let customer = server
        .post("/v1/customers", &format!("email={}", enc(&email)))
        .await
        .ok();
    let attached = server
        .post(
            &format!("/v1/payment_methods/{}/attach", id(pm)),
            &format!("customer={}", id(&customer)),
        )
        .await
        .ok();
    assert_eq!(attached["customer"], json!(id(&customer)), "{attached}");

    browser.quit().await;
    server.stop().await;
}

/// Payment mode, price_data line item, a 4242 card typed by the buyer.
async fn payment_with_card(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = create_session(
        &server,
        &format!(
            "mode=payment&payment_method_types[]=card&line_items[0][quantity]=2&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1000&line_items[0][price_data][product_data][name]={}",
            enc(PRODUCT)
        ),
    )
    .await;
    assert_eq!(session["amount_total"], 2000, "{session}");

    open_checkout(&browser, &session, "Pay 20.00 USD").await;
    let (items, total) = shown_items(&browser).await;
    assert_eq!(
        items,
        vec![(format!("{PRODUCT} × 2"), "20.00 USD".to_owned())],
        "shown as literal text"
    );
    assert_eq!(total, "20.00 USD");
    assert!(!browser.has("tr.line-item b").await, "the name stayed text");
    assert!(!browser.has("#amazon-pay").await, "only cards");
    assert!(!browser.has("#known-email").await);
    assert_eq!(
        browser.by_id("submit").await.text().await.expect("text"),
        "Pay"
    );
    pay_with_card(&browser, Some(&email), CARD_OK).await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(&server, &session, &["payment_intent.payment_method"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "paid", "{done}");
    assert_eq!(done["url"], Value::Null, "{done}");
    assert_eq!(done["amount_total"], 2000, "{done}");
    assert_eq!(done["customer_details"]["email"], json!(email), "{done}");
    assert_eq!(done["customer_details"]["name"], NAME, "{done}");
    let intent = &done["payment_intent"];
    assert_eq!(intent["status"], "succeeded", "{done}");
    assert_eq!(intent["amount"], 2000, "{done}");
    assert_eq!(intent["currency"], "usd", "{done}");
    let pm = &intent["payment_method"];
    assert_eq!(pm["type"], "card", "{done}");
    assert_eq!(pm["card"]["last4"], "4242", "{done}");
    assert_eq!(pm["card"]["exp_month"], 12, "{done}");
    assert_eq!(pm["card"]["exp_year"], 2034, "{done}");
    assert_eq!(pm["billing_details"]["name"], NAME, "{done}");
    let newest = server.event_types("limit=1").await;
    assert_eq!(newest, ["checkout.session.completed"]);

    browser.quit().await;
    server.stop().await;
}

/// Subscription mode with the fixtures' monthly price, paid by card.
async fn subscription_with_card(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = create_session(
        &server,
        &format!(
            "mode=subscription&payment_method_types[]=card&line_items[0][price]={FIXTURE_PRICE}&line_items[0][quantity]=1"
        ),
    )
    .await;

    open_checkout(&browser, &session, "Subscribe: 15.00 USD due today").await;
    let (items, total) = shown_items(&browser).await;
    assert_eq!(
        items,
        vec![(
            format!("{FIXTURE_PRODUCT} × 1 (per month)"),
            "15.00 USD".to_owned()
        )]
    );
    assert_eq!(total, "15.00 USD");
    assert_eq!(
        browser.by_id("submit").await.text().await.expect("text"),
        "Subscribe"
    );
    pay_with_card(&browser, Some(&email), CARD_OK).await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(
        &server,
        &session,
        &["subscription.default_payment_method", "customer", "invoice"],
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "paid", "{done}");
    let customer = &done["customer"];
    assert_eq!(customer["email"], json!(email), "a new customer: {done}");
    assert_eq!(customer["name"], NAME, "{done}");
    let sub = &done["subscription"];
    assert_eq!(sub["status"], "active", "{done}");
    assert_eq!(sub["customer"], customer["id"], "{done}");
    assert_eq!(
        sub["items"]["data"][0]["price"]["id"], FIXTURE_PRICE,
        "{done}"
    );
    let pm = &sub["default_payment_method"];
    assert_eq!(pm["card"]["last4"], "4242", "{done}");
    assert_eq!(pm["customer"], customer["id"], "{done}");
    let invoice = &done["invoice"];
    assert_eq!(invoice["status"], "paid", "{done}");
    assert_eq!(invoice["amount_paid"], 1500, "{done}");
    assert_eq!(sub["latest_invoice"], invoice["id"], "{done}");

    browser.quit().await;
    server.stop().await;
}

/// A declined card: the page shows why and stays; another card then pays.
async fn card_declined_then_paid(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = create_session(
        &server,
        &format!(
            "mode=payment&customer_email={}&payment_method_types[]=card&line_items[0][quantity]=1&line_items[0][price_data][currency]=eur&line_items[0][price_data][unit_amount]=1250&line_items[0][price_data][product_data][name]=Mug",
            enc(&email)
        ),
    )
    .await;

    open_checkout(&browser, &session, "Pay 12.50 EUR").await;
    let (items, total) = shown_items(&browser).await;
    assert_eq!(items, vec![("Mug × 1".to_owned(), "12.50 EUR".to_owned())]);
    assert_eq!(total, "12.50 EUR");
    assert_eq!(browser.text_of("#known-email").await, email);
    assert!(!browser.has("#email").await, "customer_email is known");
    pay_with_card(&browser, None, CARD_DECLINED).await;

    let error = browser.wait_for_text("error", "declined").await;
    assert_eq!(error, "Your card was declined.");
    assert_eq!(browser.response_status().await, 402);
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        page_url(&session),
        "still on the Checkout page"
    );
    assert_eq!(browser.text_of("h1").await, "Pay 12.50 EUR");
    let number = browser
        .by_id("cardNumber")
        .await
        .prop("value")
        .await
        .expect("value");
    assert_eq!(number.as_deref(), Some(""), "the card number is not echoed");
    let open = retrieve(&server, &session, &[]).await;
    assert_eq!(open["status"], "open", "{open}");
    assert_eq!(open["payment_status"], "unpaid", "{open}");

    pay_with_card(&browser, None, CARD_OK).await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(&server, &session, &["payment_intent.payment_method"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "paid", "{done}");
    assert_eq!(done["customer_details"]["email"], json!(email), "{done}");
    let intent = &done["payment_intent"];
    assert_eq!(intent["status"], "succeeded", "{done}");
    assert_eq!(intent["amount"], 1250, "{done}");
    assert_eq!(intent["currency"], "eur", "{done}");
    assert_eq!(intent["payment_method"]["card"]["last4"], "4242", "{done}");
    // The declined attempt and the paid one are the same PaymentIntent.
    let intents = server.get("/v1/payment_intents").await.ok();
    let ids: Vec<&Value> = intents["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&intent["id"]], "{intents}");

    browser.quit().await;
    server.stop().await;
}

/// The back link leads to cancel_url; the session stays open.
async fn cancel_link(server: TestServer) {
    let browser = Browser::start().await;
    // No payment_method_types: every type this server takes is offered.
    let session = create_session(
        &server,
        "mode=payment&line_items[0][quantity]=3&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=500&line_items[0][price_data][product_data][name]=Sticker",
    )
    .await;

    open_checkout(&browser, &session, "Pay 15.00 USD").await;
    let (items, total) = shown_items(&browser).await;
    assert_eq!(
        items,
        vec![("Sticker × 3".to_owned(), "15.00 USD".to_owned())]
    );
    assert_eq!(total, "15.00 USD");
    assert!(browser.has("#email").await);
    assert!(browser.has("#submit").await, "cards are offered");
    assert!(browser.has("#amazon-pay").await, "Amazon Pay is offered");
    browser.type_into("email", &email()).await;
    browser.click_id("back").await;

    let landed = browser.wait_for_url(&cancel_url(&server)).await;
    assert_eq!(landed.as_str(), cancel_url(&server));
    assert_eq!(browser.response_status().await, 200);
    let open = retrieve(&server, &session, &[]).await;
    assert_eq!(open["status"], "open", "{open}");
    assert_eq!(open["payment_status"], "unpaid", "{open}");
    assert_eq!(open["url"], session["url"], "{open}");
    assert_eq!(open["payment_intent"], Value::Null, "{open}");

    // Back to the page: still there to pay.
    browser.back().await.expect("history back");
    browser.wait_for_url(page_url(&session)).await;
    assert_eq!(browser.text_of("h1").await, "Pay 15.00 USD");
    assert!(browser.has("#submit").await);

    browser.quit().await;
    server.stop().await;
}

/// A card that needs 3-D Secure: the buyer fails the challenge, sees it on
/// the Checkout page, then passes it and the session is paid.
async fn three_d_secure_card(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = create_session(
        &server,
        "mode=payment&payment_method_types[]=card&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=4200&line_items[0][price_data][product_data][name]=Lamp",
    )
    .await;

    open_checkout(&browser, &session, "Pay 42.00 USD").await;
    pay_with_card(&browser, Some(&email), CARD_3DS).await;
    browser.wait_for_url(&server.url("/authorize/")).await;
    assert_eq!(
        browser.text_of("h1").await,
        "3D Secure: authenticate test payment"
    );
    browser.wait_for_source("42.00 USD").await;
    browser.click_id("fail").await;

    let error = browser
        .wait_for_text("error", "unable to authenticate your payment method")
        .await;
    assert!(!error.is_empty());
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        page_url(&session),
        "back on the Checkout page"
    );
    let open = retrieve(&server, &session, &[]).await;
    assert_eq!(open["status"], "open", "{open}");
    assert_eq!(open["payment_status"], "unpaid", "{open}");

    pay_with_card(&browser, Some(&email), CARD_3DS).await;
    browser.wait_for_url(&server.url("/authorize/")).await;
    browser.click_id("authorize").await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(&server, &session, &["payment_intent"]).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "paid", "{done}");
    assert_eq!(done["payment_intent"]["status"], "succeeded", "{done}");
    assert_eq!(done["payment_intent"]["amount"], 4200, "{done}");

    browser.quit().await;
    server.stop().await;
}

/// A tab left open on a session that expired meanwhile: paying shows the
/// expired page and charges nothing. An unknown session's page is a 404.
async fn stale_tab_after_expiry(server: TestServer) {
    let browser = Browser::start().await;
    let session = create_session(
        &server,
        "mode=payment&payment_method_types[]=card&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=900&line_items[0][price_data][product_data][name]=Poster",
    )
    .await;

    open_checkout(&browser, &session, "Pay 9.00 USD").await;
    let expired = server
        .post(
            &format!("/v1/checkout/sessions/{}/expire", id(&session)),
            "",
        )
        .await
        .ok();
    assert_eq!(expired["status"], "expired", "{expired}");
    pay_with_card(&browser, Some(&email()), CARD_OK).await;

    browser
        .wait_for_source("This checkout session has expired")
        .await;
    assert_eq!(browser.response_status().await, 410);
    assert!(!browser.has("form").await, "nothing left to submit");
    let after = retrieve(&server, &session, &[]).await;
    assert_eq!(after["status"], "expired", "{after}");
    assert_eq!(after["payment_status"], "unpaid", "{after}");
    let intents = server.get("/v1/payment_intents").await.ok();
    assert_eq!(intents["data"], json!([]), "nothing charged: {intents}");

    // Reloading shows the same.
    browser.goto(page_url(&session)).await.expect("page opens");
    assert_eq!(browser.response_status().await, 410);
    assert_eq!(
        browser.text_of("h1").await,
        "This checkout session has expired"
    );

    browser
        .goto(&server.url("/c/pay/cs_test_doesnotexist"))
        .await
        .expect("page opens");
    assert_eq!(browser.response_status().await, 404);
    assert_eq!(
        browser.text_of("h1").await,
        "This checkout link is not valid"
    );

    browser.quit().await;
    server.stop().await;
}

/// Setup mode with a card and `customer_creation=always`: the buyer's card
/// is saved to the customer Checkout creates.
async fn setup_with_card(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    // No payment_method_types: every type this server takes is offered.
    let session = create_session(&server, "mode=setup&currency=usd&customer_creation=always").await;

    open_checkout(&browser, &session, "Set up a payment method").await;
    assert!(browser.has("#amazon-pay").await, "Amazon Pay is offered");
    assert_eq!(
        browser.by_id("submit").await.text().await.expect("text"),
        "Save card"
    );
    pay_with_card(&browser, Some(&email), CARD_OK).await;
    land_on_success(&browser, &server, &session).await;

    let done = retrieve(
        &server,
        &session,
        &["setup_intent.payment_method", "customer"],
    )
    .await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["payment_status"], "no_payment_required", "{done}");
    let customer = &done["customer"];
    assert_eq!(customer["email"], json!(email), "a new customer: {done}");
    assert_eq!(done["customer_details"]["email"], json!(email), "{done}");
    let intent = &done["setup_intent"];
    assert_eq!(intent["status"], "succeeded", "{done}");
    assert_eq!(intent["customer"], customer["id"], "{done}");
    let pm = &intent["payment_method"];
    assert_eq!(pm["card"]["last4"], "4242", "{done}");
    assert_eq!(pm["billing_details"]["name"], NAME, "{done}");
    assert_eq!(pm["customer"], customer["id"], "attached: {done}");

    browser.quit().await;
    server.stop().await;
}
