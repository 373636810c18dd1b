//! PaymentMethods over real HTTP: test cards, attach/detach, updates,
//! customer lists and the customer's default payment method.
use crate::common;

use common::TestServer;
use reqwest::StatusCode;
use serde_json::json;

const VISA: &str =
    "type=card&card[number]=4242424242424242&card[exp_month]=8&card[exp_year]=2040&card[cvc]=123";

async fn customer(server: &TestServer) -> String {
    server.post("/v1/customers", "name=Holder").await.id()
}

async fn test_cards(server: TestServer) {
    let first = server.post("/v1/payment_methods", VISA).await.ok();
    assert_eq!(first["object"], "payment_method");
    assert_eq!(first["type"], "card");
    assert_eq!(first["card"]["brand"], "visa");
    assert_eq!(first["card"]["last4"], "4242");
    assert_eq!(first["card"]["exp_month"], 8);
    assert_eq!(first["card"]["exp_year"], 2040);
    assert_eq!(first["card"]["funding"], "credit");
    assert_eq!(first["card"]["checks"]["cvc_check"], "pass");
    assert!(first["customer"].is_null());
    assert!(
        first.get("_twin_behavior").is_none(),
        "bookkeeping stays hidden"
    );
    assert!(first.get("_twin").is_none(), "bookkeeping stays hidden");
    let second = server
        .post(
            "/v1/payment_methods",
            "type=card&card[number]=4242 4242 4242 4242&card[exp_month]=1&card[exp_year]=41",
        )
        .await
        .ok();
    assert_ne!(first["id"], second["id"]);
    assert_eq!(first["card"]["fingerprint"], second["card"]["fingerprint"]);
    assert_eq!(second["card"]["exp_year"], 2041);
    let other_account = server
        .post_as("sk_test_another_account", "/v1/payment_methods", VISA)
        .await
        .ok();
    assert_ne!(
        first["card"]["fingerprint"],
        other_account["card"]["fingerprint"]
    );

    let token = server
        .post(
            "/v1/payment_methods",
            "type=card&card[token]=tok_mastercard",
        )
        .await
        .ok();
    assert_eq!(token["card"]["brand"], "mastercard");
    let amazon = server
        .post(
            "/v1/payment_methods",
            "type=amazon_pay&billing_details[email]=a%40b.example",
        )
        .await
        .ok();
    assert_eq!(amazon["amazon_pay"], json!({}));
    assert_eq!(amazon["billing_details"]["email"], "a@b.example");
    assert!(amazon.get("card").is_none());

    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            "type=card&card[number]=4111111111111111&card[exp_month]=1&card[exp_year]=2040",
            StatusCode::PAYMENT_REQUIRED,
            "card_declined",
            "card[number]",
        ),
        (
            "type=card&card[number]=4242424242424241&card[exp_month]=1&card[exp_year]=2040",
            StatusCode::PAYMENT_REQUIRED,
            "incorrect_number",
            "card[number]",
        ),
        (
            "type=card&card[number]=4242424242424242&card[exp_month]=13&card[exp_year]=2040",
            StatusCode::PAYMENT_REQUIRED,
            "invalid_expiry_month",
            "card[exp_month]",
        ),
        (
            "type=card&card[number]=4242424242424242&card[exp_month]=1&card[exp_year]=2001",
            StatusCode::PAYMENT_REQUIRED,
            "invalid_expiry_year",
            "card[exp_year]",
        ),
        (
            "type=card&card[number]=4242424242424242&card[exp_month]=1",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "card[exp_year]",
        ),
        (
            "type=card",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "card",
        ),
        (
            "type=card&card[token]=tok_nothing",
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "card[token]",
        ),
        (
            "card[number]=4242424242424242",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "type",
        ),
        (
            "type=amazon_pay&card[number]=4242424242424242",
            StatusCode::BAD_REQUEST,
            "",
            "card",
        ),
        (
            "type=amazon_pay&amazon_pay[x]=1",
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            "amazon_pay[x]",
        ),
        (
            "type=amazon_pay&allow_redisplay=never",
            StatusCode::BAD_REQUEST,
            "",
            "allow_redisplay",
        ),
    ];
    server.expect_errors("/v1/payment_methods", cases).await;
    let live = server.post("/v1/payment_methods", cases[0].0).await;
    assert_eq!(live.error_type(), "card_error");
    assert_eq!(live.body["error"]["decline_code"], "test_mode_live_card");
}

async fn attach_and_detach(server: TestServer) {
    let alice = customer(&server).await;
    let bob = customer(&server).await;
    // The ready-made test IDs stand for a fresh PaymentMethod each time.
    let attached = server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={alice}"),
        )
        .await
        .ok();
    let pm = attached["id"].as_str().unwrap().to_owned();
    assert!(pm.starts_with("pm_") && pm != "pm_card_visa");
    assert_eq!(attached["customer"], alice.as_str());
    let again = server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={alice}"),
        )
        .await
        .ok();
    assert_ne!(again["id"], attached["id"]);

    let listed = server
        .get(&format!(
            "/v1/customers/{alice}/payment_methods?type=card&limit=1"
        ))
        .await
        .ok();
    assert_eq!(listed["data"][0]["id"], again["id"]);
    assert_eq!(listed["has_more"], true);
    assert_eq!(
        listed["url"],
        format!("/v1/customers/{alice}/payment_methods")
    );
    let none = server
        .get(&format!(
            "/v1/customers/{alice}/payment_methods?type=amazon_pay"
        ))
        .await
        .ok();
    assert_eq!(none["data"], json!([]));
    let by_customer = server
        .get(&format!("/v1/payment_methods?customer={alice}"))
        .await
        .ok();
    assert_eq!(by_customer["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        server
            .get(&format!("/v1/customers/{alice}/payment_methods/{pm}"))
            .await
            .ok()["id"],
        pm.as_str()
    );
    let not_bobs = server
        .get(&format!("/v1/customers/{bob}/payment_methods/{pm}"))
        .await;
    assert_eq!(not_bobs.status, StatusCode::NOT_FOUND);

    let taken = server
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &format!("customer={bob}"),
        )
        .await;
    assert_eq!(taken.status, StatusCode::BAD_REQUEST);
    assert!(
        taken.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already been attached")
    );
    let missing_customer = server
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            "customer=cus_nobody",
        )
        .await;
    assert_eq!(missing_customer.error_code(), "resource_missing");
    assert_eq!(missing_customer.error_param(), "customer");
    let no_customer = server
        .post(&format!("/v1/payment_methods/{pm}/attach"), "")
        .await;
    assert_eq!(no_customer.error_code(), "parameter_missing");
    // Named by the URL: 404; named by a parameter (above): 400.
    let unknown_path = server.get("/v1/customers/cus_nobody/payment_methods").await;
    assert_eq!(unknown_path.status, StatusCode::NOT_FOUND);
    let unknown_pm = server
        .post(
            "/v1/payment_methods/pm_nothing/attach",
            &format!("customer={alice}"),
        )
        .await;
    assert_eq!(unknown_pm.status, StatusCode::NOT_FOUND);
    assert_eq!(missing_customer.status, StatusCode::BAD_REQUEST);

    // Declining cards fail already when attached; 0341 attaches.
    let declined = server
        .post(
            "/v1/payment_methods/pm_card_chargeDeclinedInsufficientFunds/attach",
            &format!("customer={alice}"),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined.body["error"]["decline_code"], "insufficient_funds");
    let renewals_fail = server
        .post(
            "/v1/payment_methods",
            "type=card&card[number]=4000000000000341&card[exp_month]=1&card[exp_year]=2040",
        )
        .await
        .ok();
    let attached_0341 = server
        .post(
            &format!(
                "/v1/payment_methods/{}/attach",
                renewals_fail["id"].as_str().unwrap()
            ),
            &format!("customer={alice}"),
        )
        .await
        .ok();
    assert_eq!(attached_0341["customer"], alice.as_str());

    let detached = server
        .post(&format!("/v1/payment_methods/{pm}/detach"), "")
        .await
        .ok();
    assert!(detached["customer"].is_null());
    let twice = server
        .post(&format!("/v1/payment_methods/{pm}/detach"), "")
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert!(
        twice.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not attached")
    );
    let reuse = server
        .post(
            &format!("/v1/payment_methods/{pm}/attach"),
            &format!("customer={bob}"),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::BAD_REQUEST);
    assert!(
        reuse.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("may not be used again")
    );

    let events = server.get("/v1/events?type=payment_method.*").await.ok();
    let types = server.event_types("type=payment_method.*").await;
    assert_eq!(
        types,
        [
            "payment_method.detached",
            "payment_method.attached",
            "payment_method.attached",
            "payment_method.attached"
        ]
    );
    assert_eq!(
        events["data"][0]["data"]["previous_attributes"]["customer"],
        alice.as_str()
    );
}

async fn update_needs_a_customer(server: TestServer) {
    let loose = server.post("/v1/payment_methods", VISA).await.ok();
    let id = loose["id"].as_str().unwrap();
    let refused = server
        .post(&format!("/v1/payment_methods/{id}"), "metadata[k]=v")
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let holder = customer(&server).await;
    server
        .post(
            &format!("/v1/payment_methods/{id}/attach"),
            &format!("customer={holder}"),
        )
        .await
        .ok();
    let updated = server
        .post(
            &format!("/v1/payment_methods/{id}"),
            "billing_details[name]=Jenny%20Rosen&metadata[k]=v&card[exp_month]=3&allow_redisplay=always",
        )
        .await
        .ok();
    assert_eq!(updated["billing_details"]["name"], "Jenny Rosen");
    assert_eq!(updated["metadata"]["k"], "v");
    assert_eq!(updated["card"]["exp_month"], 3);
    assert_eq!(updated["allow_redisplay"], "always");
    let event = &server
        .get("/v1/events?type=payment_method.updated")
        .await
        .ok()["data"][0];
    assert_eq!(event["data"]["previous_attributes"]["card"]["exp_month"], 8);
    assert_eq!(
        event["data"]["previous_attributes"]["billing_details"]["name"],
        json!(null)
    );
    let bad = server
        .post(&format!("/v1/payment_methods/{id}"), "card[exp_month]=0")
        .await;
    assert_eq!(bad.error_param(), "card[exp_month]");
    let unknown = server.get("/v1/payment_methods/pm_unknown").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "resource_missing");
}

async fn default_payment_method_must_be_attached(server: TestServer) {
    let holder = customer(&server).await;
    let loose = server.post("/v1/payment_methods", VISA).await.ok();
    let loose_id = loose["id"].as_str().unwrap();
    let refused = server
        .post(
            &format!("/v1/customers/{holder}"),
            &format!("invoice_settings[default_payment_method]={loose_id}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.error_param(),
        "invoice_settings[default_payment_method]"
    );
    server
        .post(
            &format!("/v1/payment_methods/{loose_id}/attach"),
            &format!("customer={holder}"),
        )
        .await
        .ok();
    let set = server
        .post(
            &format!("/v1/customers/{holder}"),
            &format!("invoice_settings[default_payment_method]={loose_id}&expand[]=invoice_settings.default_payment_method"),
        )
        .await
        .ok();
    assert_eq!(
        set["invoice_settings"]["default_payment_method"]["id"],
        loose_id
    );
    // Detaching the default leaves the customer without one.
    server
        .post(&format!("/v1/payment_methods/{loose_id}/detach"), "")
        .await
        .ok();
    let after = server.get(&format!("/v1/customers/{holder}")).await.ok();
    assert!(after["invoice_settings"]["default_payment_method"].is_null());
}

backend_tests!(
    test_cards,
    attach_and_detach,
    update_needs_a_customer,
    default_payment_method_must_be_attached,
);
