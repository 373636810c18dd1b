//! SetupIntents over real HTTP: the seed document's Amazon Pay flow
//! verbatim, the authorization page, card outcomes, the state machine's
//! rules, publishable-key confirmation, races and bad input.
use crate::common;

use common::{KEY, Reply, TestServer, browser, enc, events_in_order, redirect_url, submit};
use reqwest::StatusCode;
use serde_json::Value;

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn customer(server: &TestServer) -> String {
    server
        .post("/v1/customers", "email=buyer%40example.com&name=Buyer")
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The seed document's curl command, byte for byte as curl sends it, with
/// `-u sk_test_…:` basic auth; then the buyer authorizes on the page.
async fn seed_flow_verbatim(server: TestServer) {
    let key = "sk_test_Gx4mWEgHtCMr4DYMUIqfIrsz";
    let http = reqwest::Client::new();
    let customer: Value = http
        .post(server.url("/v1/customers"))
        .basic_auth(key, Some(""))
        .send()
        .await
        .map(json)
        .unwrap()
        .await;
    let customer_id = customer["id"].as_str().unwrap();
    let body = format!(
        "confirm=true&return_url=https%3A%2F%2Fwww.stripe.com&usage=off_session&customer={customer_id}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device"
    );
    let response = http
        .post(server.url("/v1/setup_intents"))
        .basic_auth(key, Some(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let intent: Value = json(response).await;
    let id = intent["id"].as_str().unwrap().to_owned();
    let secret = intent["client_secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("seti_"));
    assert!(secret.starts_with(&format!("{id}_secret_")));
    assert_eq!(intent["status"], "requires_action");
    assert_eq!(intent["usage"], "off_session");
    assert_eq!(
        intent["payment_method_types"],
        serde_json::json!(["amazon_pay"])
    );
    assert_eq!(intent["next_action"]["type"], "redirect_to_url");
    assert_eq!(
        intent["next_action"]["redirect_to_url"]["return_url"],
        "https://www.stripe.com"
    );
    let url = redirect_url(&intent);
    assert!(
        url.starts_with(&format!("{}/authorize/", server.base)),
        "{url}"
    );
    let pm_id = intent["payment_method"].as_str().unwrap().to_owned();
    for hidden in [
        "_twin_return_url",
        "_twin_redirect",
        "_twin_mandate_acceptance",
        "_twin",
    ] {
        assert!(intent.get(hidden).is_none(), "{hidden} leaked");
    }

    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Authorize test setup") && html.contains("Fail test setup"));
    assert!(
        html.contains("recurring"),
        "off_session says recurring: {html}"
    );

    let (status, location, _) = submit(&url, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        format!(
            "https://www.stripe.com/?setup_intent={id}&setup_intent_client_secret={secret}&redirect_status=succeeded"
        )
    );

    let get = |path: String| {
        let http = http.clone();
        let url = server.url(&path);
        async move {
            let response = http.get(url).basic_auth(key, Some("")).send().await;
            json(response.unwrap()).await
        }
    };
    let intent = get(format!("/v1/setup_intents/{id}")).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["payment_method"], pm_id.as_str());
    assert!(intent["next_action"].is_null());
    let mandate_id = intent["mandate"].as_str().expect("a mandate").to_owned();

    let mandate = get(format!("/v1/mandates/{mandate_id}")).await;
    assert_eq!(mandate["object"], "mandate");
    assert_eq!(mandate["type"], "multi_use");
    assert_eq!(mandate["status"], "active");
    assert_eq!(mandate["payment_method"], pm_id.as_str());
    assert_eq!(mandate["customer_acceptance"]["type"], "online");
    assert_eq!(
        mandate["customer_acceptance"]["online"]["ip_address"],
        "127.0.0.0"
    );
    assert_eq!(
        mandate["customer_acceptance"]["online"]["user_agent"],
        "device"
    );
    assert_eq!(
        mandate["payment_method_details"],
        serde_json::json!({"amazon_pay": {}, "type": "amazon_pay"})
    );

    let methods = get(format!("/v1/customers/{customer_id}/payment_methods")).await;
    assert_eq!(methods["data"][0]["id"], pm_id.as_str());
    assert_eq!(methods["data"][0]["type"], "amazon_pay");
    assert_eq!(methods["data"][0]["amazon_pay"], serde_json::json!({}));
    assert_eq!(methods["data"][0]["customer"], customer_id);

    let expanded = get(format!(
        "/v1/setup_intents/{id}?expand[]=mandate&expand[]=payment_method"
    ))
    .await;
    assert_eq!(expanded["mandate"]["id"], mandate_id.as_str());
    assert_eq!(expanded["payment_method"]["id"], pm_id.as_str());

    let events = get("/v1/events?limit=20".to_owned()).await;
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "setup_intent.created",
            "setup_intent.requires_action",
            "payment_method.attached",
            "setup_intent.succeeded"
        ]
    );
}

async fn amazon_pay_intent(server: &TestServer, customer: &str, extra: &str) -> Value {
    let reply = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&return_url={}&usage=off_session&customer={customer}&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay{extra}",
                enc("https://shop.example/done?order=7#top")
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn buyer_declines_on_the_page(server: TestServer) {
    let customer = customer(&server).await;
    let intent = amazon_pay_intent(&server, &customer, "").await;
    let id = intent["id"].as_str().unwrap();
    let url = redirect_url(&intent);
    let (status, location, _) = submit(&url, "fail").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with("https://shop.example/done?order=7&setup_intent=")
            && location.ends_with("&redirect_status=failed#top"),
        "{location}"
    );
    let failed = server.get(&format!("/v1/setup_intents/{id}")).await.ok();
    assert_eq!(failed["status"], "requires_payment_method");
    assert!(failed["payment_method"].is_null());
    assert_eq!(
        failed["last_setup_error"]["code"],
        "payment_method_provider_decline"
    );
    assert_eq!(failed["last_setup_error"]["type"], "invalid_request_error");
    assert!(
        failed["last_setup_error"]["message"]
            .as_str()
            .unwrap()
            .contains("Amazon Pay")
    );
    assert!(
        events_in_order(&server)
            .await
            .ends_with(&["setup_intent.setup_failed".to_owned()])
    );

    // The used page is dead: GET says so, POST changes nothing (409).
    let (status, _, html) = submit(&url, "authorize").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("Nothing left to authorize"));
    let page = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("requires_payment_method"));

    // A new attempt gets a new page; the buyer authorizes this time.
    let retried = server
        .post(
            &format!("/v1/setup_intents/{id}/confirm"),
            "payment_method_data[type]=amazon_pay",
        )
        .await
        .ok();
    assert_eq!(retried["status"], "requires_action");
    assert!(retried["last_setup_error"].is_null());
    let second = redirect_url(&retried);
    assert_ne!(second, url);
    assert_eq!(submit(&url, "authorize").await.0, StatusCode::CONFLICT);
    assert_eq!(submit(&second, "authorize").await.0, StatusCode::SEE_OTHER);
    let done = server.get(&format!("/v1/setup_intents/{id}")).await.ok();
    assert_eq!(done["status"], "succeeded");
    // No mandate_data: the page's own request is the online acceptance.
    let mandate = server
        .get(&format!(
            "/v1/mandates/{}",
            done["mandate"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(
        mandate["customer_acceptance"]["online"]["user_agent"],
        "TestBrowser/1.0"
    );
    assert_eq!(
        mandate["customer_acceptance"]["online"]["ip_address"],
        "127.0.0.1"
    );
}

async fn card_outcomes(server: TestServer) {
    let customer = customer(&server).await;
    let visa = server
        .post(
            "/v1/setup_intents",
            &format!("confirm=true&customer={customer}&payment_method=pm_card_visa"),
        )
        .await
        .ok();
    assert_eq!(visa["status"], "succeeded");
    let pm = visa["payment_method"].as_str().unwrap();
    assert!(pm.starts_with("pm_") && pm != "pm_card_visa");
    let pm = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(pm["customer"], customer.as_str());
    assert_eq!(pm["card"]["last4"], "4242");
    assert!(
        visa["mandate"].is_null(),
        "cards get no mandate without mandate_data"
    );

    let declined = server
        .post(
            "/v1/setup_intents",
            &format!("confirm=true&customer={customer}&payment_method=pm_card_chargeDeclined"),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined.error_type(), "card_error");
    assert_eq!(declined.error_code(), "card_declined");
    assert_eq!(declined.body["error"]["decline_code"], "generic_decline");
    let intent = &declined.body["error"]["setup_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    let stored = server
        .get(&format!(
            "/v1/setup_intents/{}",
            intent["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(stored["status"], "requires_payment_method");
    assert_eq!(stored["last_setup_error"]["code"], "card_declined");
    assert_eq!(
        stored["last_setup_error"]["payment_method"]["card"]["last4"],
        "0002"
    );

    let insufficient = server
        .post(
            "/v1/setup_intents",
            "confirm=true&payment_method_data[type]=card&payment_method_data[card][number]=4000000000009995&payment_method_data[card][exp_month]=12&payment_method_data[card][exp_year]=2040",
        )
        .await;
    assert_eq!(insufficient.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        insufficient.body["error"]["decline_code"],
        "insufficient_funds"
    );

    // 0341 sets up fine: only later charges fail.
    let renewals_fail = server
        .post(
            "/v1/setup_intents",
            &format!("confirm=true&customer={customer}&payment_method=pm_card_chargeCustomerFail"),
        )
        .await
        .ok();
    assert_eq!(renewals_fail["status"], "succeeded");

    // 3155 needs the buyer: a 3-D Secure stand-in page, then success.
    let needs_auth = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&customer={customer}&payment_method=pm_card_authenticationRequired&return_url={}",
                enc("http://127.0.0.1:9/back")
            ),
        )
        .await
        .ok();
    assert_eq!(needs_auth["status"], "requires_action");
    let url = redirect_url(&needs_auth);
    let page = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("3D Secure"));
    let (status, location, _) = submit(&url, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("redirect_status=succeeded"));
    let done = server
        .get(&format!(
            "/v1/setup_intents/{}",
            needs_auth["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(done["status"], "succeeded");

    // Failing authentication: Stripe's authentication failure.
    let again = server
        .post(
            "/v1/setup_intents",
            "confirm=true&payment_method=pm_card_authenticationRequired",
        )
        .await
        .ok();
    let (status, _, html) = submit(&redirect_url(&again), "fail").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "no return_url: a page says how it ended"
    );
    assert!(html.contains("Setup failed"));
    let failed = server
        .get(&format!(
            "/v1/setup_intents/{}",
            again["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(
        failed["last_setup_error"]["code"],
        "setup_intent_authentication_failure"
    );
}

async fn state_machine_rules(server: TestServer) {
    // Without a payment method: requires_payment_method; with: requires_confirmation.
    let bare = server.post("/v1/setup_intents", "").await.ok();
    assert_eq!(bare["status"], "requires_payment_method");
    assert_eq!(bare["automatic_payment_methods"]["enabled"], true);
    let id = bare["id"].as_str().unwrap().to_owned();
    let missing = server
        .post(&format!("/v1/setup_intents/{id}/confirm"), "")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), "setup_intent_unexpected_state");

    let updated = server
        .post(
            &format!("/v1/setup_intents/{id}"),
            "payment_method=pm_card_visa&metadata[order]=42",
        )
        .await
        .ok();
    assert_eq!(updated["status"], "requires_confirmation");
    assert_eq!(updated["metadata"]["order"], "42");

    let bad_reason = server
        .post(
            &format!("/v1/setup_intents/{id}/cancel"),
            "cancellation_reason=bored",
        )
        .await;
    assert_eq!(bad_reason.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_reason.error_param(), "cancellation_reason");

    let canceled = server
        .post(
            &format!("/v1/setup_intents/{id}/cancel"),
            "cancellation_reason=requested_by_customer",
        )
        .await
        .ok();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "requested_by_customer");
    for action in ["confirm", "cancel"] {
        let refused = server
            .post(&format!("/v1/setup_intents/{id}/{action}"), "")
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{action}");
        assert_eq!(refused.error_code(), "setup_intent_unexpected_state");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("status of canceled")
        );
    }

    let succeeded = server
        .post(
            "/v1/setup_intents",
            "confirm=true&payment_method=pm_card_visa",
        )
        .await
        .ok();
    let done = succeeded["id"].as_str().unwrap();
    let confirm = server
        .post(&format!("/v1/setup_intents/{done}/confirm"), "")
        .await;
    assert_eq!(confirm.error_code(), "setup_intent_unexpected_state");
    assert_eq!(
        confirm.body["error"]["message"],
        "You cannot confirm this SetupIntent because it has already succeeded."
    );
    let cancel = server
        .post(&format!("/v1/setup_intents/{done}/cancel"), "")
        .await;
    assert_eq!(cancel.error_code(), "setup_intent_unexpected_state");
    // Notes may still change on a finished intent; the payment method may not.
    assert_eq!(
        server
            .post(&format!("/v1/setup_intents/{done}"), "description=done")
            .await
            .status,
        StatusCode::OK
    );
    let change = server
        .post(
            &format!("/v1/setup_intents/{done}"),
            "payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(change.error_code(), "setup_intent_unexpected_state");

    // A canceled intent's page is dead.
    let customer = customer(&server).await;
    let pending = amazon_pay_intent(&server, &customer, "").await;
    let pending_id = pending["id"].as_str().unwrap();
    server
        .post(&format!("/v1/setup_intents/{pending_id}/cancel"), "")
        .await
        .ok();
    assert_eq!(
        submit(&redirect_url(&pending), "authorize").await.0,
        StatusCode::CONFLICT
    );

    let types = events_in_order(&server).await;
    assert!(types.contains(&"setup_intent.canceled".to_owned()));
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "setup_intent.created")
            .count(),
        3
    );

    let listed = server
        .get(&format!("/v1/setup_intents?customer={customer}"))
        .await
        .ok();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["url"], "/v1/setup_intents");
    let by_pm = server
        .get(&format!(
            "/v1/setup_intents?payment_method={}",
            succeeded["payment_method"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(by_pm["data"][0]["id"], done);
}

async fn publishable_key_confirms_with_client_secret(server: TestServer) {
    let customer = customer(&server).await;
    let created = server
        .post(
            "/v1/setup_intents",
            &format!(
                "customer={customer}&payment_method_types[]=amazon_pay&metadata[secret]=internal"
            ),
        )
        .await
        .ok();
    let id = created["id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();

    // Stripe.js style: the key as a parameter, no Authorization header.
    let body = format!(
        "key=pk_test_anything&client_secret={secret}&payment_method_data[type]=amazon_pay&payment_method_data[payment_user_agent]=stripe.js&return_url={}&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][infer_from_client]=true&expected_payment_method_type=amazon_pay&use_stripe_sdk=true",
        enc("https://example.com/setup/complete")
    );
    let confirmed = server
        .call(
            reqwest::Method::POST,
            &format!("/v1/setup_intents/{id}/confirm"),
            None,
            &body,
            &[("user-agent", "StripeJsBrowser/2")],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "requires_action");
    assert!(
        confirmed.body.get("customer").is_none(),
        "secret fields stay hidden"
    );
    assert!(confirmed.body.get("metadata").is_none());

    // Retrieve with the key as a Bearer token plus the client secret.
    let retrieved = server
        .get_as(
            "pk_test_other",
            &format!("/v1/setup_intents/{id}?client_secret={secret}"),
        )
        .await;
    assert_eq!(retrieved.status, StatusCode::OK);
    assert_eq!(retrieved.body["status"], "requires_action");
    let wrong = server
        .get_as(
            "pk_test_other",
            &format!("/v1/setup_intents/{id}?client_secret={id}_secret_nope"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.error_param(), "client_secret");
    let without = server
        .get_as("pk_test_other", &format!("/v1/setup_intents/{id}"))
        .await;
    assert_eq!(without.error_code(), "parameter_missing");
    let expand = server
        .get_as(
            "pk_test_other",
            &format!("/v1/setup_intents/{id}?client_secret={secret}&expand[]=customer"),
        )
        .await;
    assert_eq!(expand.status, StatusCode::BAD_REQUEST);
    // A publishable key reaches nothing else.
    assert_eq!(
        server.get_as("pk_test_other", "/v1/customers").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .post_as(
                "pk_test_other",
                &format!("/v1/setup_intents/{id}/cancel"),
                ""
            )
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // A secret key may not travel as a parameter.
    let secret_param = server
        .call(
            reqwest::Method::GET,
            &format!("/v1/setup_intents/{id}?key={KEY}"),
            None,
            "",
            &[],
        )
        .await;
    assert_eq!(secret_param.status, StatusCode::UNAUTHORIZED);

    let (status, location, _) = submit(&redirect_url(&confirmed.body), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("https://example.com/setup/complete?setup_intent="));
    let done = server.get(&format!("/v1/setup_intents/{id}")).await.ok();
    let mandate = server
        .get(&format!(
            "/v1/mandates/{}",
            done["mandate"].as_str().unwrap()
        ))
        .await
        .ok();
    // infer_from_client: the confirming browser's address and agent.
    assert_eq!(
        mandate["customer_acceptance"]["online"]["user_agent"],
        "StripeJsBrowser/2"
    );
    assert_eq!(
        mandate["customer_acceptance"]["online"]["ip_address"],
        "127.0.0.1"
    );
}

async fn concurrent_confirms_one_wins(server: TestServer) {
    let customer = customer(&server).await;
    let created = server
        .post(
            "/v1/setup_intents",
            &format!("customer={customer}&payment_method=pm_card_visa"),
        )
        .await
        .ok();
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/setup_intents/{id}/confirm");
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..8).map(|_| server.post(&path, ""))).await;
    let won = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(
            lost.error_code(),
            "setup_intent_unexpected_state",
            "{}",
            lost.body
        );
    }
    let types = events_in_order(&server).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "setup_intent.succeeded")
            .count(),
        1
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "payment_method.attached")
            .count(),
        1
    );

    // Two tabs submitting one page at once: one redirect, the rest 409.
    let pending = amazon_pay_intent(&server, &customer, "").await;
    let url = redirect_url(&pending);
    let outcomes = futures_util::future::join_all(
        (0..6).map(|i| submit(&url, if i % 2 == 0 { "authorize" } else { "fail" })),
    )
    .await;
    let redirected = outcomes
        .iter()
        .filter(|o| o.0 == StatusCode::SEE_OTHER)
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|o| o.0 == StatusCode::CONFLICT)
        .count();
    assert_eq!((redirected, conflicts), (1, 5));
}

async fn bad_input_gets_stripe_errors(server: TestServer) {
    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            "payment_method_types[]=bitcoin",
            StatusCode::BAD_REQUEST,
            "",
            "payment_method_types",
        ),
        ("usage=sometimes", StatusCode::BAD_REQUEST, "", "usage"),
        (
            "customer=cus_missing",
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "customer",
        ),
        (
            "payment_method=pm_missing",
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "payment_method",
        ),
        (
            "confirm=true&payment_method_data[type]=amazon_pay",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "confirm=true&payment_method_data[type]=amazon_pay&return_url=notaurl",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "return_url=https%3A%2F%2Fx.example",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "confirm=true&payment_method=pm_card_visa&mandate_data[customer_acceptance][online][ip_address]=1.2.3.4",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "mandate_data[customer_acceptance][type]",
        ),
        (
            "confirm=true&payment_method=pm_card_visa&mandate_data[customer_acceptance][type]=online",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "mandate_data[customer_acceptance][online]",
        ),
        (
            "payment_method=pm_card_visa&payment_method_data[type]=card",
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "payment_method_data",
        ),
        (
            "payment_method_data[type]=paypal",
            StatusCode::BAD_REQUEST,
            "",
            "payment_method_data[type]",
        ),
        (
            "payment_method_data[type]=card&payment_method_data[card][number]=4111111111111111&payment_method_data[card][exp_month]=1&payment_method_data[card][exp_year]=2040",
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
            "payment_method_data[card][number]",
        ),
        (
            "flow_directions[]=sideways",
            StatusCode::BAD_REQUEST,
            "",
            "flow_directions",
        ),
        ("confirm=maybe", StatusCode::BAD_REQUEST, "", "confirm"),
        (
            "surprise=1",
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            "surprise",
        ),
        (
            "payment_method_types[]=card&automatic_payment_methods[enabled]=true",
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "automatic_payment_methods",
        ),
    ];
    server.expect_errors("/v1/setup_intents", cases).await;
    assert_eq!(
        server.get("/v1/setup_intents").await.ok()["data"],
        serde_json::json!([]),
        "no bad request left an intent behind"
    );
    let missing = server.get("/v1/setup_intents/seti_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");

    // An amazon_pay method on a card-only intent.
    let card_only = server
        .post("/v1/setup_intents", "payment_method_types[]=card")
        .await
        .ok();
    let wrong_type = server
        .post(
            &format!(
                "/v1/setup_intents/{}/confirm",
                card_only["id"].as_str().unwrap()
            ),
            "payment_method_data[type]=amazon_pay&return_url=https%3A%2F%2Fx.example",
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong_type.error_param(), "payment_method");

    // The page: unknown tokens and unknown outcomes.
    let unknown = browser()
        .get(server.url("/authorize/rdr_doesnotexist"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.text().await.unwrap().contains("not valid"));
    let customer = customer(&server).await;
    let pending = amazon_pay_intent(&server, &customer, "").await;
    let url = redirect_url(&pending);
    assert_eq!(submit(&url, "maybe").await.0, StatusCode::BAD_REQUEST);
    let garbage = browser()
        .post(&url)
        .body(vec![0xff, 0xfe, b'%', b'z'])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let still = server
        .get(&format!(
            "/v1/setup_intents/{}",
            pending["id"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(still["status"], "requires_action");
}

/// Customer-supplied text on the page is escaped.
async fn page_escapes_user_text(server: TestServer) {
    let reply = server
        .post(
            "/v1/customers",
            &format!("name={}&email=x%40example.com", enc("<b>Eve</b> & \"co\"")),
        )
        .await
        .ok();
    let customer = reply["id"].as_str().unwrap();
    let intent = amazon_pay_intent(
        &server,
        customer,
        &format!(
            "&description={}&metadata[{}]={}",
            enc("<script>alert(1)</script>"),
            enc("k<i>"),
            enc("v'\"")
        ),
    )
    .await;
    let html = browser()
        .get(redirect_url(&intent))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;Eve&lt;/b&gt; &amp; &quot;co&quot;"));
    assert!(html.contains("k&lt;i&gt;: v&#39;&quot;"));
}

backend_tests!(
    seed_flow_verbatim,
    buyer_declines_on_the_page,
    card_outcomes,
    state_machine_rules,
    publishable_key_confirms_with_client_secret,
    concurrent_confirms_one_wins,
    bad_input_gets_stripe_errors,
    page_escapes_user_text,
);
