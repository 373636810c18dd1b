//! The fake Amazon Pay authorization page in a real browser: headless
//! Chromium driven through chromedriver. Skips, saying so, when chromedriver
//! is not installed, unless `CI` is set (CI installs it: see .ci/run).

use crate::common;

use common::driver::{Browser, has_pair, query_of};
use common::{TestServer, enc};
use fantoccini::Locator;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

/// A description made to break out of the page's HTML if it were not escaped.
const HOSTILE: &str = r#"<script>alert(1)</script> & "quotes""#;

backend_tests!(browser; authorize_in_browser, fail_in_browser, stale_tab_resubmits,);

/// A customer and an Amazon Pay SetupIntent waiting for the buyer.
struct Pending {
    customer: String,
    intent: String,
    secret: String,
    page: String,
    return_url: String,
}

async fn pending_setup(server: &TestServer) -> Pending {
    let email = format!("buyer-{}@example.com", common::random_suffix());
    let customer = server
        .post("/v1/customers", &format!("email={}", enc(&email)))
        .await
        .ok()["id"]
        .as_str()
        .expect("customer id")
        .to_owned();
    let return_url = server.url("/healthz?from=browser");
    let body = format!(
        "confirm=true&return_url={}&usage=off_session&customer={}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&description={}",
        enc(&return_url),
        enc(&customer),
        enc(HOSTILE),
    );
    let intent = server.post("/v1/setup_intents", &body).await.ok();
    assert_eq!(intent["status"], "requires_action", "{intent}");
    assert_eq!(intent["description"], HOSTILE);
    assert_eq!(intent["next_action"]["type"], "redirect_to_url", "{intent}");
    let page = intent["next_action"]["redirect_to_url"]["url"]
        .as_str()
        .expect("redirect url")
        .to_owned();
    assert!(
        page.starts_with(&server.url("/authorize/")),
        "{page} is not on {}",
        server.base
    );
    Pending {
        customer,
        intent: intent["id"].as_str().unwrap().to_owned(),
        secret: intent["client_secret"].as_str().unwrap().to_owned(),
        page,
        return_url,
    }
}

/// Opens the page and checks what the buyer sees, script included.
async fn open_page(browser: &Browser, pending: &Pending) {
    browser.goto(&pending.page).await.expect("page opens");
    assert_eq!(browser.response_status().await, 200);
    let body = browser
        .find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("body text");
    assert!(body.contains("Authorize test setup"), "{body}");
    assert!(body.contains("TEST MODE"), "{body}");
    assert!(body.contains(&pending.intent), "{body}");
    let description = browser
        .find(Locator::XPath(
            "//dt[normalize-space()='Description']/following-sibling::dd[1]",
        ))
        .await
        .expect("a Description row")
        .text()
        .await
        .expect("description text");
    assert_eq!(description, HOSTILE, "shown as literal text");
    // The description's tag stayed text: nothing ran, nothing was parsed.
    browser.assert_no_alert().await;
    let scripts = browser
        .find_all(Locator::Css("script"))
        .await
        .expect("script lookup");
    assert!(
        scripts.is_empty(),
        "the page holds {} script(s)",
        scripts.len()
    );
    let button = browser
        .find(Locator::Id("authorize"))
        .await
        .expect("authorize button");
    assert_eq!(
        button.text().await.expect("button text"),
        "Authorize test setup"
    );
}

/// Clicks a page button and waits for the return_url: it carries the
/// intent, its client secret, `redirect_status` and its own query.
async fn click_and_land(
    browser: &Browser,
    server: &TestServer,
    pending: &Pending,
    button: &str,
    redirect_status: &str,
) -> Url {
    browser
        .find(Locator::Id(button))
        .await
        .expect("the button")
        .click()
        .await
        .expect("click");
    let landed = browser.wait_for_url(&server.url("/healthz")).await;
    let query = query_of(&landed);
    assert!(has_pair(&query, "from", "browser"), "{landed}");
    assert!(
        has_pair(&query, "redirect_status", redirect_status),
        "{landed}"
    );
    assert!(
        has_pair(&query, "setup_intent", &pending.intent),
        "{landed}"
    );
    assert!(
        has_pair(&query, "setup_intent_client_secret", &pending.secret),
        "{landed}"
    );
    landed
}

async fn authorize_in_browser(server: TestServer) {
    let browser = Browser::start().await;
    let pending = pending_setup(&server).await;
    open_page(&browser, &pending).await;

    let landed = click_and_land(&browser, &server, &pending, "authorize", "succeeded").await;
    assert!(
        landed.as_str().starts_with(&pending.return_url),
        "{landed} keeps {}",
        pending.return_url
    );
    browser.assert_no_alert().await;

    let intent = server
        .get(&format!("/v1/setup_intents/{}", pending.intent))
        .await
        .ok();
    assert_eq!(intent["status"], "succeeded", "{intent}");
    assert_eq!(intent["next_action"], Value::Null, "{intent}");
    let mandate_id = intent["mandate"].as_str().expect("a mandate").to_owned();
    let mandate = server.get(&format!("/v1/mandates/{mandate_id}")).await.ok();
    assert_eq!(mandate["type"], "multi_use", "{mandate}");
    assert_eq!(mandate["status"], "active", "{mandate}");
    assert_eq!(mandate["payment_method"], intent["payment_method"]);
    // No mandate_data was sent, so the page's own request is the acceptance.
    let acceptance = &mandate["customer_acceptance"];
    assert_eq!(acceptance["type"], "online", "{mandate}");
    let agent = acceptance["online"]["user_agent"]
        .as_str()
        .unwrap_or_default();
    assert!(
        agent.contains("HeadlessChrome") || agent.contains("Chrome"),
        "user agent {agent:?}"
    );
    assert_eq!(acceptance["online"]["ip_address"], "127.0.0.1", "{mandate}");
    let pm_id = intent["payment_method"].as_str().expect("a payment method");
    let pm = server
        .get(&format!("/v1/payment_methods/{pm_id}"))
        .await
        .ok();
    assert_eq!(pm["type"], "amazon_pay", "{pm}");
    assert_eq!(pm["customer"], json!(pending.customer), "{pm}");

    browser.quit().await;
    server.stop().await;
}

async fn fail_in_browser(server: TestServer) {
    let browser = Browser::start().await;
    let pending = pending_setup(&server).await;
    open_page(&browser, &pending).await;

    click_and_land(&browser, &server, &pending, "fail", "failed").await;

    let intent = server
        .get(&format!("/v1/setup_intents/{}", pending.intent))
        .await
        .ok();
    assert_eq!(intent["status"], "requires_payment_method", "{intent}");
    assert_eq!(
        intent["last_setup_error"]["code"], "payment_method_provider_decline",
        "{intent}"
    );
    assert_eq!(intent["mandate"], Value::Null, "{intent}");

    browser.quit().await;
    server.stop().await;
}

async fn stale_tab_resubmits(server: TestServer) {
    let browser = Browser::start().await;
    let pending = pending_setup(&server).await;
    open_page(&browser, &pending).await;

    // Another tab (here: a plain HTTP client) authorizes first.
    let response = server
        .http
        .post(&pending.page)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=authorize")
        .send()
        .await
        .expect("authorize request");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&pending.return_url) && location.contains("redirect_status=succeeded"),
        "{location}"
    );
    let intent = server
        .get(&format!("/v1/setup_intents/{}", pending.intent))
        .await
        .ok();
    assert_eq!(intent["status"], "succeeded", "{intent}");
    let mandate = intent["mandate"].as_str().expect("a mandate").to_owned();

    // The stale page's button now has nothing left to do.
    browser
        .find(Locator::Id("authorize"))
        .await
        .expect("authorize button")
        .click()
        .await
        .expect("click");
    let source = browser.wait_for_source("Nothing left to authorize").await;
    assert!(source.contains("succeeded"), "{source}");
    assert_eq!(browser.response_status().await, 409);
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        pending.page,
        "no redirect to the return_url"
    );
    assert_eq!(browser.title().await.expect("title"), "Already completed");

    let after = server
        .get(&format!("/v1/setup_intents/{}", pending.intent))
        .await
        .ok();
    assert_eq!(after["status"], "succeeded", "{after}");
    assert_eq!(after["mandate"], json!(mandate), "{after}");

    browser.quit().await;
    server.stop().await;
}
