//! Hostile input and browsers: idempotency keys, request ids, money that
//! would overflow, paths that are not UTF-8, CORS for secret keys, page
//! headers, bounded expansions, concurrent confirms.

use crate::common;

use std::sync::Arc;

use common::observed::Observed;
use common::{KEY, TestServer, enc, id};
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stripe_twin::store::Store;

backend_tests!(
    fixtures = stripe_twin::fixtures::Fixtures::embedded(&stripe_twin::REGISTRY).unwrap();
    idempotency_keys_are_checked,
    request_ids_are_ours,
    money_cannot_overflow,
    undecodable_path_ids_are_missing_objects,
    secret_keys_from_web_pages_are_refused,
    pages_say_what_may_frame_and_load_them,
    expansions_are_bounded_and_batched,
    losing_confirms_say_unexpected_state,
    out_of_range_delivery_limits_are_refused,
    long_strings_are_refused,
    exact_email_lookups,
);

const PRICE: &str = "price_G0FvDp6vZvdwRZ";

async fn post_with(server: &TestServer, path: &str, body: &str, key: HeaderValue) -> common::Reply {
    let response = server
        .http
        .post(server.url(path))
        .bearer_auth(KEY)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    common::Reply {
        status,
        headers,
        body,
    }
}

async fn count(server: &TestServer, path: &str) -> usize {
    server.get(path).await.ok()["data"]
        .as_array()
        .unwrap()
        .len()
}

async fn idempotency_keys_are_checked(server: TestServer) {
    let before = count(&server, "/v1/customers").await;
    // Not visible ASCII: refused, and nothing is created (twice).
    for _ in 0..2 {
        let reply = post_with(
            &server,
            "/v1/customers",
            "email=k%40example.com",
            HeaderValue::from_bytes("clé-1".as_bytes()).unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.error_param(), "idempotency_key");
        assert_eq!(reply.error_type(), "idempotency_error");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ASCII")
        );
    }
    let too_long = "k".repeat(256);
    let reply = post_with(
        &server,
        "/v1/customers",
        "",
        HeaderValue::from_str(&too_long).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("255")
    );
    assert_eq!(count(&server, "/v1/customers").await, before);
    // 255 visible characters, spaces and punctuation included, are a key.
    let longest: String = (0..255).map(|i| (b' ' + (i % 95) as u8) as char).collect();
    let key = HeaderValue::from_str(longest.trim()).unwrap();
    let first = post_with(&server, "/v1/customers", "", key.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = post_with(&server, "/v1/customers", "", key).await;
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(
        again.headers["original-request"],
        first.headers["request-id"]
    );
    assert_eq!(again.body, first.body);
    assert_eq!(count(&server, "/v1/customers").await, before + 1);
}

async fn request_ids_are_ours(server: TestServer) {
    let reply = server
        .call(
            Method::POST,
            "/v1/customers",
            Some(KEY),
            "email=r%40example.com",
            &[("request-id", "req_chosen_by_client")],
        )
        .await;
    let ours = reply.headers["request-id"].to_str().unwrap().to_owned();
    assert_ne!(ours, "req_chosen_by_client");
    assert!(ours.starts_with("req_") && ours.len() == 18, "{ours}");
    let events = server.get("/v1/events?type=customer.created").await.ok();
    assert_eq!(events["data"][0]["request"]["id"], ours.as_str());
}

async fn money_cannot_overflow(server: TestServer) {
    let customer = server.post("/v1/customers", "").await.ok();
    let customer = id(&customer);
    let pm = server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let pm = id(&pm);
    for quantity in ["9223372036854775807", "6148914691236517206", "6666667"] {
        let reply = server
            .post(
                "/v1/subscriptions",
                &format!(
                    "customer={customer}&default_payment_method={pm}&items[0][price]={PRICE}&items[0][quantity]={quantity}"
                ),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{quantity}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "amount_too_large");
        assert_eq!(reply.error_param(), "items[0][quantity]");
        assert_eq!(
            reply.body["error"]["message"],
            "Amount must be no more than $999,999.99"
        );
    }
    assert_eq!(count(&server, "/v1/subscriptions?status=all").await, 0);
    assert_eq!(count(&server, "/v1/invoices").await, 0);
    // An update to such a quantity, prorated and invoiced now: refused,
    // and nothing about the subscription or the customer changes.
    let sub = server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&default_payment_method={pm}&items[0][price]={PRICE}"),
        )
        .await
        .ok();
    let item = sub["items"]["data"][0]["id"].as_str().unwrap().to_owned();
    let reply = server
        .post(
            &format!("/v1/subscriptions/{}", id(&sub)),
            &format!(
                "items[0][id]={item}&items[0][quantity]=9223372036854775807&proration_behavior=always_invoice"
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.error_code(), "amount_too_large");
    let after = server
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .ok();
    assert_eq!(after["items"]["data"][0]["quantity"], 1);
    assert_eq!(count(&server, "/v1/invoices").await, 1);
    let customer_now = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(customer_now["balance"], 0);
}

async fn undecodable_path_ids_are_missing_objects(server: TestServer) {
    for (path, kind) in [
        ("/v1/customers/%ff%fe", "customer"),
        ("/v1/payment_methods/%C3%28", "PaymentMethod"),
        ("/v1/checkout/sessions/cs_%ff", "checkout.session"),
    ] {
        let reply = server.get(path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "resource_missing");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("No such {kind}: '")),
            "{message}"
        );
    }
    let reply = server.post("/v1/customers/%ff%fe", "name=x").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

async fn secret_keys_from_web_pages_are_refused(server: TestServer) {
    let from_page = |origin: &'static str| {
        server
            .http
            .post(server.url("/v1/webhook_endpoints"))
            .bearer_auth(KEY)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "url={}&enabled_events[]=*",
                enc("https://attacker.example/hook")
            ))
            .send()
    };
    let refused = from_page("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    let body: Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("--cors-allow-origin https://evil.example"),
        "{message}"
    );
    assert_eq!(count(&server, "/v1/webhook_endpoints").await, 0);
    // Without an Origin (SDKs, curl) nothing changes.
    server.post("/v1/customers", "").await.ok();
    // A publishable key with a client secret works from any page.
    let intent = server
        .post("/v1/setup_intents", "payment_method_types[]=card")
        .await
        .ok();
    let retrieved = server
        .http
        .get(server.url(&format!(
            "/v1/setup_intents/{}?client_secret={}",
            id(&intent),
            intent["client_secret"].as_str().unwrap()
        )))
        .bearer_auth("pk_test_twin_browser")
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(retrieved.status(), StatusCode::OK);
    // Origins the server was started with may use secret keys.
    let tuned = TestServer::start_tuned(
        server.backend,
        Box::new(|state| state.with_cors_origins(vec!["http://localhost:3000".to_owned()])),
    )
    .await
    .unwrap();
    for (origin, status) in [
        ("http://localhost:3000", StatusCode::OK),
        ("http://localhost:3001", StatusCode::FORBIDDEN),
    ] {
        let reply = tuned
            .call(
                Method::POST,
                "/v1/customers",
                Some(KEY),
                "",
                &[("origin", origin)],
            )
            .await;
        assert_eq!(reply.status, status, "{origin}: {}", reply.body);
    }
    tuned.stop().await;
    let open = TestServer::start_tuned(
        server.backend,
        Box::new(|state| state.with_cors_origins(vec!["*".to_owned()])),
    )
    .await
    .unwrap();
    let reply = open
        .call(
            Method::POST,
            "/v1/customers",
            Some(KEY),
            "",
            &[("origin", "https://any.example")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    open.stop().await;
}

async fn pages_say_what_may_frame_and_load_them(server: TestServer) {
    let hosted = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&currency=usd&payment_method_types[]=card&success_url={}",
                enc("https://shop.example/done")
            ),
        )
        .await
        .ok();
    let page = common::browser()
        .get(hosted["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");

    let embedded = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&currency=usd&payment_method_types[]=card&ui_mode=embedded_page&return_url={}",
                enc("https://shop.example/back")
            ),
        )
        .await
        .ok();
    let (_, secret) = embedded["client_secret"]
        .as_str()
        .unwrap()
        .split_once("_secret_")
        .unwrap();
    let page = common::browser()
        .get(server.url(&format!("/c/pay/{}/{secret}", id(&embedded))))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors *"), "{policy}");
    assert!(page.headers().get("x-frame-options").is_none());

    // The authorization page may not be framed.
    let intent = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&payment_method=pm_card_authenticationRequired&payment_method_types[]=card&return_url={}",
                enc("https://shop.example/3ds")
            ),
        )
        .await
        .ok();
    let page = common::browser()
        .get(common::redirect_url(&intent))
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
}

async fn expansions_are_bounded_and_batched(server: TestServer) {
    let mut observed = None;
    let server = server
        .halt()
        .await
        .start_wrapped(Default::default(), |inner| {
            let store = Observed::new(inner, None);
            observed = Some(store.clone());
            store as Arc<dyn Store>
        })
        .await;
    let observed = observed.unwrap();
    let before = count(&server, "/v1/customers?limit=100").await;
    for n in 0..5 {
        let customer = server
            .post("/v1/customers", &format!("email=e{n}%40example.com"))
            .await
            .ok();
        let pm = server
            .post(
                "/v1/payment_methods/pm_card_visa/attach",
                &format!("customer={}", id(&customer)),
            )
            .await
            .ok();
        server
            .post(
                &format!("/v1/customers/{}", id(&customer)),
                &format!("invoice_settings[default_payment_method]={}", id(&pm)),
            )
            .await
            .ok();
    }
    // The same paths a thousand times are two paths, each loaded for the
    // whole page in one query.
    let repeated = [
        "data.subscriptions",
        "data.invoice_settings.default_payment_method",
    ]
    .repeat(500)
    .iter()
    .map(|p| format!("expand[]={p}"))
    .collect::<Vec<_>>()
    .join("&");
    observed.reset();
    let list = server
        .get(&format!("/v1/customers?limit=100&{repeated}"))
        .await
        .ok();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), before + 5);
    assert_eq!(data[0]["subscriptions"]["object"], "list");
    assert_eq!(
        data[0]["invoice_settings"]["default_payment_method"]["object"],
        "payment_method"
    );
    let calls = observed.calls();
    assert_eq!(calls.get("list_per_owner"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("get_many"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("get"), None, "{calls:?}");
    // Too many different paths: refused, saying so.
    let many: Vec<String> = (0..40).map(|i| format!("expand[]=data.p{i}")).collect();
    let reply = server
        .get(&format!("/v1/customers?{}", many.join("&")))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_param(), "expand");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("different properties")
    );
    server.stop().await;
}

async fn losing_confirms_say_unexpected_state(server: TestServer) {
    for _ in 0..5 {
        let intent = server
            .post(
                "/v1/payment_intents",
                "amount=1000&currency=usd&payment_method=pm_card_visa&payment_method_types[]=card",
            )
            .await
            .ok();
        let path = format!("/v1/payment_intents/{}/confirm", id(&intent));
        let replies = futures_util::future::join_all((0..6).map(|_| server.post(&path, ""))).await;
        let won = replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(won, 1);
        for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
            assert_eq!(
                lost.error_code(),
                "payment_intent_unexpected_state",
                "{}",
                lost.body
            );
        }
    }
}

async fn out_of_range_delivery_limits_are_refused(server: TestServer) {
    for limit in ["0", "1001", "-5"] {
        let reply = server
            .get(&format!("/_config/webhook_deliveries?limit={limit}"))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{limit}");
        assert_eq!(reply.error_param(), "limit");
    }
    server
        .get("/_config/webhook_deliveries?limit=1000")
        .await
        .ok();
}

async fn long_strings_are_refused(server: TestServer) {
    let customer = server.post("/v1/customers", "").await.ok();
    let huge = "x".repeat(900_000);
    for (path, body, param) in [
        (
            "/v1/customers".to_owned(),
            format!("description={huge}"),
            "description",
        ),
        (
            format!("/v1/customers/{}", id(&customer)),
            format!("description={}", "d".repeat(5001)),
            "description",
        ),
        (
            "/v1/customers".to_owned(),
            format!("email={}%40example.com", "e".repeat(520)),
            "email",
        ),
        (
            "/v1/customers".to_owned(),
            format!("address[line1]={}", "l".repeat(5001)),
            "address[line1]",
        ),
        (
            "/v1/customers".to_owned(),
            format!("phone={}", "1".repeat(21)),
            "phone",
        ),
    ] {
        let reply = server.post(&path, &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{param}: {}",
            reply.body
        );
        assert_eq!(reply.error_param(), param);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("must be at most"), "{message}");
    }
    let unchanged = server
        .get(&format!("/v1/customers/{}", id(&customer)))
        .await
        .ok();
    assert_eq!(unchanged["description"], Value::Null);
    // 5000 characters (not bytes) are fine.
    let reply = server
        .post(
            &format!("/v1/customers/{}", id(&customer)),
            &format!("description={}", enc(&"é".repeat(5000))),
        )
        .await
        .ok();
    assert_eq!(reply["description"].as_str().unwrap().chars().count(), 5000);
}

async fn exact_email_lookups(server: TestServer) {
    for email in [
        "Mixed.Case@example.com",
        "other@example.com",
        "mixed.case@example.com",
    ] {
        server
            .post("/v1/customers", &format!("email={}", enc(email)))
            .await
            .ok();
    }
    // The list filter is case-sensitive, as Stripe's is.
    let listed = server
        .get("/v1/customers?email=Mixed.Case%40example.com")
        .await
        .ok();
    let emails: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["Mixed.Case@example.com"]);
    // Search's exact match ignores case.
    let found = server
        .get(&format!(
            "/v1/customers/search?query={}",
            enc("email:'MIXED.case@example.com'")
        ))
        .await
        .ok();
    assert_eq!(found["data"].as_array().unwrap().len(), 2);
    let found = server
        .get(&format!(
            "/v1/customers/search?query={}",
            enc("email:'mixed.case@example.com' AND -name:'x'")
        ))
        .await
        .ok();
    assert_eq!(found["data"].as_array().unwrap().len(), 2);
    let found = server
        .get(&format!(
            "/v1/customers/search?query={}",
            enc("email:'other@example.com' OR email:'mixed.case@example.com'")
        ))
        .await
        .ok();
    assert_eq!(found["data"].as_array().unwrap().len(), 3);
}
