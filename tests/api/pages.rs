//! The server-rendered pages over plain HTTP, as curl or a test suite sees
//! them: what the Checkout page keeps of a rejected form (escaped, never the
//! card), the authorization pages' wording for payments, and the links out
//! of the expired and stale pages.

use crate::common;

use common::{TestServer, browser, enc, id, redirect_url, submit};
use reqwest::StatusCode;
use serde_json::Value;

backend_tests!(
    kept_fields_are_escaped_and_card_data_dropped,
    payment_authorization_pages_speak_of_a_payment,
    dead_ends_link_back,
);

const NUMBER: &str = "4000000000000002";
const CVC: &str = "918";

async fn post_form(url: &str, form: &str) -> (StatusCode, String) {
    let response = browser()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("the page answers");
    (response.status(), response.text().await.unwrap())
}

async fn open(url: &str) -> (StatusCode, String) {
    let response = browser().get(url).send().await.expect("the page answers");
    (response.status(), response.text().await.unwrap())
}

async fn card_session(server: &TestServer, types: &str) -> Value {
    server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=payment&{types}&line_items[0][quantity]=1&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=700&line_items[0][price_data][product_data][name]=Pen&success_url={}&cancel_url={}",
                enc(&server.url("/healthz?ok=1")),
                enc(&server.url("/healthz?checkout=cancel&a=\"b\"")),
            ),
        )
        .await
        .ok()
}

fn card_form(email: &str, name: &str, number: &str) -> String {
    format!(
        "payment_method_type=card&email={}&billingName={}&cardNumber={number}&cardExpiry={}&cardCvc={CVC}",
        enc(email),
        enc(name),
        enc("12 / 34")
    )
}

/// An invalid email, a declined card, a missing payment method: each page
/// comes back with the email and name, escaped, and without the card.
async fn kept_fields_are_escaped_and_card_data_dropped(server: TestServer) {
    let session = card_session(&server, "payment_method_types[]=card").await;
    let url = session["url"].as_str().unwrap();
    let hostile = r#""><i id="x">bad</i>@example.com"#;
    let name = r#"O'Brien & <Sons>"#;

    let (status, html) = post_form(url, &card_form(hostile, name, NUMBER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Your email address is invalid."), "{html}");
    assert!(
        html.contains(r#"value="&quot;&gt;&lt;i id=&quot;x&quot;&gt;bad&lt;/i&gt;@example.com""#),
        "the email, escaped: {html}"
    );
    assert!(
        html.contains(r#"value="O&#39;Brien &amp; &lt;Sons&gt;""#),
        "the name, escaped: {html}"
    );
    assert!(!html.contains(r#"<i id="x">"#), "{html}");
    assert!(!html.contains(NUMBER) && !html.contains(CVC), "{html}");

    let email = "kept@example.com";
    let (status, html) = post_form(url, &card_form(email, name, NUMBER)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{html}");
    assert!(html.contains("Your card was declined."), "{html}");
    assert!(html.contains(r#"value="kept@example.com""#), "{html}");
    assert!(html.contains(r#"value="O&#39;Brien &amp; &lt;Sons&gt;""#));
    assert!(!html.contains(NUMBER) && !html.contains(CVC), "{html}");
    assert!(!html.contains("12 / 34"), "no expiry either: {html}");

    let (status, html) = post_form(url, &format!("email={}", enc(email))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Choose a payment method"), "{html}");
    assert!(html.contains(r#"value="kept@example.com""#), "{html}");
}

/// An Amazon Pay PaymentIntent's page: payment wording from the heading
/// to the buttons, and to the page once it moved on.
async fn payment_authorization_pages_speak_of_a_payment(server: TestServer) {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1500&currency=usd&confirm=true&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&return_url={}",
                enc("https://shop.example/back")
            ),
        )
        .await
        .ok();
    let page = redirect_url(&intent);
    let (status, html) = open(&page).await;
    assert_eq!(status, StatusCode::OK);
    for words in [
        "<h1>Amazon Pay: authorize test payment</h1>",
        ">Authorize test payment</button>",
        ">Fail test payment</button>",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
    assert!(!html.to_lowercase().contains("setup"), "{html}");
    let (status, _, _) = submit(&page, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, html) = submit(&page, "fail").await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("This payment is no longer waiting"), "{html}");
    assert!(!html.to_lowercase().contains("setup"), "{html}");
    assert!(!html.contains(r#"id="checkout""#), "no session: {html}");
}

/// The expired page links to the cancel_url (escaped); a stale
/// authorization page links to its Checkout page.
async fn dead_ends_link_back(server: TestServer) {
    let session = card_session(&server, "payment_method_types[]=amazon_pay").await;
    let url = session["url"].as_str().unwrap().to_owned();
    let response = browser()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("payment_method_type=amazon_pay&email=a%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let authorize = response.headers()["location"].to_str().unwrap().to_owned();
    let (status, _, _) = submit(&authorize, "fail").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let link = format!(r#"<a id="checkout" href="{url}">"#);
    let (status, html) = open(&authorize).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&link), "{html}");
    let (status, _, html) = submit(&authorize, "authorize").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains(&link), "{html}");

    server
        .post(
            &format!("/v1/checkout/sessions/{}/expire", id(&session)),
            "",
        )
        .await
        .ok();
    let (status, html) = open(&url).await;
    assert_eq!(status, StatusCode::GONE);
    let cancel = server
        .url("/healthz?checkout=cancel&a=\"b\"")
        .replace('&', "&amp;")
        .replace('"', "&quot;");
    assert!(
        html.contains(&format!(r#"<a id="back" href="{cancel}">"#)),
        "{html}"
    );
    // The stale page still leads to the session's page, now expired.
    let (_, html) = open(&authorize).await;
    assert!(html.contains(&link), "{html}");
}
