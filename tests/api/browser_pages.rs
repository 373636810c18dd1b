//! The server-rendered pages away from their main flows, in a real browser
//! (headless Chromium through chromedriver): the authorization page's
//! wording for payments, what the Checkout page keeps after an error, a
//! phone-width window, and the links out of the pages where nothing is left
//! to do. Ignored where chromedriver is not installed, except under CI.

use crate::common;

use common::driver::Browser;
use common::{TestServer, enc, id, redirect_url};
use serde_json::{Value, json};

backend_tests!(
    browser;
    authorization_wording,
    kept_after_decline,
    kept_after_form_error,
    phone_width,
    expired_page_links_to_cancel_url,
    stale_authorization_links_to_checkout,
);

/// A cardholder name made to break out of an attribute if it were not
/// escaped.
const HOSTILE_NAME: &str = r#"Jenny "J" Rosen'><b id="injected">x</b> & co"#;
const CARD_OK: &str = "4242 4242 4242 4242";
const CARD_DECLINED: &str = "4000 0000 0000 0002";
const EXPIRY: &str = "12 / 34";
const CVC: &str = "987";
/// A product name with no place to break a line.
const LONG_NAME: &str = "Extraordinarilylongproductnamewithoutanyplacetobreakitonaphonescreen";

fn email() -> String {
    format!("buyer-{}@example.com", common::random_suffix())
}

fn cancel_url(server: &TestServer) -> String {
    server.url("/healthz?checkout=cancel&from=expired")
}

/// A session on this server (`body` plus the success and cancel URLs).
async fn create_session(server: &TestServer, body: &str) -> Value {
    let success = server.url("/healthz?checkout=success");
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "{body}&success_url={}&cancel_url={}",
                enc(&success),
                enc(&cancel_url(server))
            ),
        )
        .await
        .ok();
    assert_eq!(session["status"], "open", "{session}");
    session
}

/// A one-item payment session taking `types` (e.g. `card`).
async fn payment_session(server: &TestServer, types: &str, name: &str) -> Value {
    create_session(
        server,
        &format!(
            "mode=payment&payment_method_types[]={types}&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=1250&line_items[0][price_data][product_data][name]={}",
            enc(name)
        ),
    )
    .await
}

fn page_url(session: &Value) -> &str {
    session["url"].as_str().expect("a page url")
}

async fn value_of(browser: &Browser, id: &str) -> String {
    browser
        .by_id(id)
        .await
        .prop("value")
        .await
        .expect("value")
        .unwrap_or_default()
}

/// Fills in the Checkout form, leaving out what is `None`, and submits it.
async fn fill_and_submit(browser: &Browser, email: &str, number: &str, cvc: Option<&str>) {
    browser.type_into("email", email).await;
    browser.type_into("cardNumber", number).await;
    browser.type_into("cardExpiry", EXPIRY).await;
    if let Some(cvc) = cvc {
        browser.type_into("cardCvc", cvc).await;
    }
    browser.type_into("billingName", HOSTILE_NAME).await;
    browser.click_id("submit").await;
}

/// The page kept the buyer's email and name (as typed, as text), never
/// their card number or CVC.
async fn assert_kept(browser: &Browser, email: &str, number: &str) {
    assert_eq!(value_of(browser, "email").await, email);
    assert_eq!(value_of(browser, "billingName").await, HOSTILE_NAME);
    assert!(!browser.has("#injected").await, "the name stayed text");
    assert_eq!(value_of(browser, "cardNumber").await, "", "no card number");
    assert_eq!(value_of(browser, "cardCvc").await, "", "no CVC");
    let source = browser.source().await.expect("source");
    let digits: String = number.split_whitespace().collect();
    assert!(
        !source.contains(&digits) && !source.contains(number),
        "the card number is in the page"
    );
    assert!(!source.contains(CVC), "the CVC is in the page");
}

/// The text of the whole page.
async fn body_text(browser: &Browser) -> String {
    browser.text_of("body").await
}

/// An Amazon Pay PaymentIntent waiting on its authorization page.
async fn pending_payment(server: &TestServer) -> Value {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2500&currency=usd&confirm=true&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&return_url={}",
                enc(&server.url("/healthz?from=payment"))
            ),
        )
        .await
        .ok();
    assert_eq!(intent["status"], "requires_action", "{intent}");
    intent
}

/// A SetupIntent for a card that needs 3-D Secure, waiting on its page.
async fn pending_setup(server: &TestServer) -> Value {
    let intent = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&payment_method=pm_card_authenticationRequired&return_url={}&description={}",
                enc(&server.url("/healthz?from=setup")),
                enc(LONG_NAME)
            ),
        )
        .await
        .ok();
    assert_eq!(intent["status"], "requires_action", "{intent}");
    intent
}

/// A PaymentIntent's page speaks of a payment; a SetupIntent's of a setup.
async fn authorization_wording(server: TestServer) {
    let browser = Browser::start().await;
    let amazon = pending_payment(&server).await;
    browser.goto(&redirect_url(&amazon)).await.expect("opens");
    assert_eq!(
        browser.text_of("h1").await,
        "Amazon Pay: authorize test payment"
    );
    assert_eq!(
        browser.by_id("authorize").await.text().await.unwrap(),
        "Authorize test payment"
    );
    assert_eq!(
        browser.by_id("fail").await.text().await.unwrap(),
        "Fail test payment"
    );
    let text = body_text(&browser).await;
    assert!(!text.to_lowercase().contains("setup"), "{text}");
    browser.click_id("fail").await;
    browser
        .wait_for_url(&server.url("/healthz?from=payment"))
        .await;
    // The page again, now that the payment moved on.
    browser.goto(&redirect_url(&amazon)).await.expect("opens");
    let text = browser.wait_for_source("Nothing left to authorize").await;
    assert!(text.contains("This payment is no longer waiting"), "{text}");
    assert!(!text.to_lowercase().contains("setup"), "{text}");

    let three_ds = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=800&currency=usd&confirm=true&payment_method=pm_card_authenticationRequired&return_url={}",
                enc(&server.url("/healthz?from=payment"))
            ),
        )
        .await
        .ok();
    browser.goto(&redirect_url(&three_ds)).await.expect("opens");
    assert_eq!(
        browser.text_of("h1").await,
        "3D Secure: authenticate test payment"
    );
    assert_eq!(
        browser.by_id("authorize").await.text().await.unwrap(),
        "Authorize test payment"
    );
    assert_eq!(
        browser.by_id("fail").await.text().await.unwrap(),
        "Fail test payment"
    );

    let setup = pending_setup(&server).await;
    browser.goto(&redirect_url(&setup)).await.expect("opens");
    assert_eq!(
        browser.text_of("h1").await,
        "3D Secure: authenticate test setup"
    );
    assert_eq!(
        browser.by_id("authorize").await.text().await.unwrap(),
        "Authorize test setup"
    );
    assert_eq!(
        browser.by_id("fail").await.text().await.unwrap(),
        "Fail test setup"
    );
    // Not from a Checkout session: no way back to one.
    browser.click_id("authorize").await;
    browser
        .wait_for_url(&server.url("/healthz?from=setup"))
        .await;
    browser.goto(&redirect_url(&setup)).await.expect("opens");
    let text = browser.wait_for_source("Nothing left to authorize").await;
    assert!(text.contains("This setup is no longer waiting"), "{text}");
    assert!(!browser.has("#checkout").await, "no Checkout page to go to");

    browser.quit().await;
    server.stop().await;
}

/// A declined card: the page comes back with the email and name as typed,
/// the card number and CVC gone; the name then reaches the session.
async fn kept_after_decline(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = payment_session(&server, "card", "Mug").await;
    browser.goto(page_url(&session)).await.expect("opens");
    fill_and_submit(&browser, &email, CARD_DECLINED, Some(CVC)).await;

    browser
        .wait_for_text("error", "Your card was declined.")
        .await;
    assert_eq!(browser.response_status().await, 402);
    assert_kept(&browser, &email, CARD_DECLINED).await;

    // Only the card is typed again.
    browser.type_into("cardNumber", CARD_OK).await;
    browser.type_into("cardExpiry", EXPIRY).await;
    browser.type_into("cardCvc", CVC).await;
    browser.click_id("submit").await;
    browser
        .wait_for_url(&server.url("/healthz?checkout=success"))
        .await;
    let done = server
        .get(&format!("/v1/checkout/sessions/{}", id(&session)))
        .await
        .ok();
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["customer_details"]["email"], email.as_str(), "{done}");
    assert_eq!(done["customer_details"]["name"], HOSTILE_NAME, "{done}");

    browser.quit().await;
    server.stop().await;
}

/// A form error (no CVC) keeps the rest, too.
async fn kept_after_form_error(server: TestServer) {
    let browser = Browser::start().await;
    let email = email();
    let session = payment_session(&server, "card", "Mug").await;
    browser.goto(page_url(&session)).await.expect("opens");
    fill_and_submit(&browser, &email, CARD_OK, None).await;

    browser
        .wait_for_text("error", "Your card's security code is incomplete.")
        .await;
    assert_eq!(browser.response_status().await, 400);
    assert_kept(&browser, &email, CARD_OK).await;

    browser.quit().await;
    server.stop().await;
}

/// A phone's width, in CSS pixels.
const PHONE: u64 = 390;

/// Finds the elements whose content is wider than their box (form fields,
/// which scroll their own text, aside).
const OVERFLOWING: &str = r#"
const found = [];
for (const el of document.querySelectorAll('body *')) {
  if (['INPUT', 'TEXTAREA', 'SELECT', 'OPTION'].includes(el.tagName)) continue;
  if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
    found.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className ? '.' + el.className : ''}: ${el.scrollWidth}px in ${el.clientWidth}px`);
  }
}
return found;
"#;

/// The page is no wider than the phone's 390 px screen: nothing scrolls
/// sideways, and nothing spills out of its box either.
async fn assert_fits(browser: &Browser, what: &str) {
    let widths = browser
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("script runs");
    let scroll = widths[0].as_u64().expect("a width");
    let inner = widths[1].as_u64().expect("a width");
    // A phone shows a page too wide for it zoomed out: more than 390 CSS
    // pixels in its window.
    assert!(
        scroll <= PHONE && inner == PHONE,
        "{what} scrolls sideways: {scroll}px of content, {inner}px shown on a {PHONE}px screen"
    );
    let overflowing = browser
        .execute(OVERFLOWING, vec![])
        .await
        .expect("script runs");
    assert_eq!(overflowing, json!([]), "{what}: too wide for their box");
}

/// At 390 px, every page fits: Checkout (open, after a decline, complete,
/// expired) and the authorization pages (payment, setup, stale).
async fn phone_width(server: TestServer) {
    let browser = Browser::start_phone(PHONE).await;
    let session =
        payment_session(&server, "card&payment_method_types[]=amazon_pay", LONG_NAME).await;
    browser.goto(page_url(&session)).await.expect("opens");
    assert_fits(&browser, "the Checkout page").await;
    fill_and_submit(&browser, &email(), CARD_DECLINED, Some(CVC)).await;
    browser.wait_for_text("error", "declined").await;
    assert_fits(&browser, "the Checkout page after a decline").await;
    browser.click_id("amazon-pay").await;
    let authorize = browser.wait_for_url(&server.url("/authorize/")).await;
    assert_fits(&browser, "the Amazon Pay payment page").await;
    browser.click_id("authorize").await;
    browser
        .wait_for_url(&server.url("/healthz?checkout=success"))
        .await;
    browser.goto(authorize.as_str()).await.expect("opens");
    browser.wait_for_source("Nothing left to authorize").await;
    assert_fits(&browser, "the stale authorization page").await;
    browser.goto(page_url(&session)).await.expect("opens");
    browser
        .wait_for_source("This checkout session is complete.")
        .await;
    assert_fits(&browser, "the complete Checkout page").await;

    let setup = pending_setup(&server).await;
    browser.goto(&redirect_url(&setup)).await.expect("opens");
    assert_fits(&browser, "the 3-D Secure setup page").await;

    let expiring = payment_session(&server, "card", LONG_NAME).await;
    server
        .post(
            &format!("/v1/checkout/sessions/{}/expire", id(&expiring)),
            "",
        )
        .await
        .ok();
    browser.goto(page_url(&expiring)).await.expect("opens");
    browser
        .wait_for_source("This checkout session has expired")
        .await;
    assert_fits(&browser, "the expired Checkout page").await;

    browser.quit().await;
    server.stop().await;
}

/// The expired page links back to the merchant's cancel_url (escaped in
/// the page, intact in the link); a session without one has no link.
async fn expired_page_links_to_cancel_url(server: TestServer) {
    let browser = Browser::start().await;
    let session = payment_session(&server, "card", "Poster").await;
    browser.goto(page_url(&session)).await.expect("opens");
    let expired = server
        .post(
            &format!("/v1/checkout/sessions/{}/expire", id(&session)),
            "",
        )
        .await
        .ok();
    assert_eq!(expired["status"], "expired", "{expired}");
    // The tab left open submits: the expired page.
    fill_and_submit(&browser, &email(), CARD_OK, Some(CVC)).await;
    browser
        .wait_for_source("This checkout session has expired")
        .await;
    assert_eq!(browser.response_status().await, 410);
    let source = browser.source().await.expect("source");
    assert!(
        source.contains("checkout=cancel&amp;from=expired"),
        "escaped: {source}"
    );
    let back = browser.by_id("back").await;
    assert_eq!(back.attr("href").await.unwrap(), Some(cancel_url(&server)));
    back.click().await.expect("click");
    let landed = browser.wait_for_url(&cancel_url(&server)).await;
    assert_eq!(landed.as_str(), cancel_url(&server));

    // Without a cancel_url there is nowhere to link to.
    let bare = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&currency=usd&payment_method_types[]=card&success_url={}",
                enc(&server.url("/healthz"))
            ),
        )
        .await
        .ok();
    server
        .post(&format!("/v1/checkout/sessions/{}/expire", id(&bare)), "")
        .await
        .ok();
    browser.goto(page_url(&bare)).await.expect("opens");
    assert_eq!(browser.response_status().await, 410);
    assert!(!browser.has("#back").await, "no cancel_url, no link");

    browser.quit().await;
    server.stop().await;
}

/// An authorization page left open after its payment moved on (authorized
/// in another tab) links back to its Checkout page, which says where the
/// session stands.
async fn stale_authorization_links_to_checkout(server: TestServer) {
    let browser = Browser::start().await;
    let session = payment_session(&server, "amazon_pay", "Lamp").await;
    browser.goto(page_url(&session)).await.expect("opens");
    browser.type_into("email", &email()).await;
    browser.click_id("amazon-pay").await;
    let authorize = browser.wait_for_url(&server.url("/authorize/")).await;
    assert!(
        !browser.has("#checkout").await,
        "pending: nothing to go back to"
    );

    // Another tab (a plain HTTP client) fails it first.
    let (status, _, _) = common::submit(authorize.as_str(), "fail").await;
    assert_eq!(status.as_u16(), 303);
    browser.click_id("authorize").await;
    browser.wait_for_source("Nothing left to authorize").await;
    assert_eq!(browser.response_status().await, 409);
    let link = browser.by_id("checkout").await;
    assert_eq!(
        link.attr("href").await.unwrap().as_deref(),
        Some(page_url(&session))
    );
    link.click().await.expect("click");
    browser.wait_for_url(page_url(&session)).await;
    browser
        .wait_for_text("error", "The customer declined the payment on Amazon Pay.")
        .await;
    assert!(browser.has("#amazon-pay").await, "open: pay again");

    // Paid meanwhile: the stale page (reloaded) links to the page that
    // says so.
    browser.type_into("email", &email()).await;
    browser.click_id("amazon-pay").await;
    let again = browser.wait_for_url(&server.url("/authorize/")).await;
    let (status, _, _) = common::submit(again.as_str(), "authorize").await;
    assert_eq!(status.as_u16(), 303);
    browser.refresh().await.expect("reload");
    browser.wait_for_source("Nothing left to authorize").await;
    browser.click_id("checkout").await;
    browser
        .wait_for_source("This checkout session is complete.")
        .await;

    browser.quit().await;
    server.stop().await;
}
