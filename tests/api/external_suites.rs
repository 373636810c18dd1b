//! Wrong answers that test suites written against real Stripe found:
//! detached PaymentMethods still listed, NUL in an ID, product types,
//! `payment_method` on customer create, canceling an incomplete
//! subscription, and what a card decline's error body carries.
use crate::common;

use common::{TestServer, events_in_order, id};
use reqwest::StatusCode;
use serde_json::{Value, json};

const VISA: &str =
    "type=card&card[number]=4242424242424242&card[exp_month]=8&card[exp_year]=2040&card[cvc]=123";

async fn customer(server: &TestServer) -> String {
    id(&server.post("/v1/customers", "name=Holder").await.ok())
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(id).collect()
}

async fn detached_payment_methods_leave_the_lists(server: TestServer) {
    let customer = customer(&server).await;
    let keep = server
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let leave = server
        .post(
            "/v1/payment_methods/pm_card_mastercard/attach",
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let listed = server
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await
        .ok();
    assert_eq!(ids(&listed), [id(&leave), id(&keep)]);
    let detached = server
        .post(&format!("/v1/payment_methods/{}/detach", id(&leave)), "")
        .await
        .ok();
    assert!(detached["customer"].is_null());
    for path in [
        format!("/v1/customers/{customer}/payment_methods"),
        format!("/v1/payment_methods?customer={customer}"),
        format!("/v1/customers/{customer}/payment_methods?type=card"),
    ] {
        let listed = server.get(&path).await.ok();
        assert_eq!(ids(&listed), [id(&keep)], "{path}");
    }
    let gone = server
        .get(&format!(
            "/v1/customers/{customer}/payment_methods/{}",
            id(&leave)
        ))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

async fn nul_in_an_id_is_not_found(server: TestServer) {
    let customer = customer(&server).await;
    for path in [
        "/v1/customers/cus_%00abc".to_owned(),
        "/v1/payment_methods/pm_%00".to_owned(),
        "/v1/customers/cus_%00/payment_methods".to_owned(),
        format!("/v1/customers/{customer}/payment_methods/pm_%00x"),
        "/v1/subscriptions/sub_%00".to_owned(),
        "/v1/payment_intents/pi_%00".to_owned(),
        "/v1/checkout/sessions/cs_%00".to_owned(),
    ] {
        let reply = server.get(&path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.error_code(), "resource_missing", "{path}");
    }
    let update = server.post("/v1/customers/cus_%00abc", "name=x").await;
    assert_eq!(update.status, StatusCode::NOT_FOUND, "{}", update.body);
    let message = &server.get("/v1/customers/cus_%00abc").await.body["error"]["message"];
    assert_eq!(message, "No such customer: 'cus_\u{0}abc'");
}

async fn products_take_a_type(server: TestServer) {
    let good = server.post("/v1/products", "name=Mug&type=good").await.ok();
    assert_eq!(good["type"], "good");
    let service = server
        .post("/v1/products", "name=Hosting&type=service")
        .await
        .ok();
    assert_eq!(service["type"], "service");
    let fetched = server
        .get(&format!("/v1/products/{}", id(&good)))
        .await
        .ok();
    assert_eq!(fetched["type"], "good");
    assert_eq!(
        server.post("/v1/products", "name=Default").await.ok()["type"],
        "service"
    );
    let bad = server.post("/v1/products", "name=x&type=thing").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_param(), "type");
}

async fn customer_create_attaches_its_payment_method(server: TestServer) {
    let pm = server.post("/v1/payment_methods", VISA).await.ok();
    let created = server
        .post(
            "/v1/customers",
            &format!(
                "name=Jo&payment_method={0}&invoice_settings[default_payment_method]={0}",
                id(&pm)
            ),
        )
        .await
        .ok();
    let customer = id(&created);
    assert_eq!(
        created["invoice_settings"]["default_payment_method"],
        id(&pm)
    );
    let attached = server
        .get(&format!("/v1/payment_methods/{}", id(&pm)))
        .await
        .ok();
    assert_eq!(attached["customer"], customer.as_str());
    let listed = server
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await
        .ok();
    assert_eq!(ids(&listed), [id(&pm)]);
    assert_eq!(
        events_in_order(&server).await,
        ["customer.created", "payment_method.attached"]
    );

    // A ready-made test method stands for the PaymentMethod it becomes.
    let from_test = server
        .post(
            "/v1/customers",
            "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
        )
        .await
        .ok();
    let default = from_test["invoice_settings"]["default_payment_method"]
        .as_str()
        .unwrap();
    assert!(
        default.starts_with("pm_") && default != "pm_card_visa",
        "{default}"
    );
    let fresh = server
        .get(&format!("/v1/payment_methods/{default}"))
        .await
        .ok();
    assert_eq!(fresh["customer"], id(&from_test).as_str());

    // Without a default, the method is attached and nothing more.
    let plain = server
        .post("/v1/customers", "payment_method=pm_card_mastercard")
        .await
        .ok();
    assert!(plain["invoice_settings"]["default_payment_method"].is_null());
    let methods = server
        .get(&format!("/v1/customers/{}/payment_methods", id(&plain)))
        .await
        .ok();
    assert_eq!(methods["data"][0]["card"]["brand"], "mastercard");

    let before = server.get("/v1/customers?limit=100").await.ok()["data"]
        .as_array()
        .unwrap()
        .len();
    let missing = server
        .post("/v1/customers", "payment_method=pm_missing")
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(missing.error_param(), "payment_method");
    let taken = server
        .post("/v1/customers", &format!("payment_method={}", id(&pm)))
        .await;
    assert_eq!(
        taken.status,
        StatusCode::BAD_REQUEST,
        "already attached: {}",
        taken.body
    );
    let declined = server
        .post("/v1/customers", "payment_method=pm_card_chargeDeclined")
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined.error_type(), "card_error");
    let after = server.get("/v1/customers?limit=100").await.ok()["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a refused create leaves no customer");
    // The default must still be a method the customer has.
    let other = server.post("/v1/payment_methods", VISA).await.ok();
    let mismatch = server
        .post(
            "/v1/customers",
            &format!(
                "payment_method=pm_card_visa&invoice_settings[default_payment_method]={}",
                id(&other)
            ),
        )
        .await;
    assert_eq!(
        mismatch.error_param(),
        "invoice_settings[default_payment_method]"
    );
    // Update takes no `payment_method` (Stripe's update has none).
    let update = server
        .post(
            &format!("/v1/customers/{customer}"),
            "payment_method=pm_card_visa",
        )
        .await;
    assert_eq!(update.error_code(), "parameter_unknown");
}

async fn canceling_an_incomplete_subscription_expires_it(server: TestServer) {
    let customer = customer(&server).await;
    let sub = server
        .subscribe_with_card(&customer, "pm_card_chargeCustomerFail", 1500)
        .await;
    assert_eq!(sub["status"], "incomplete");
    let invoice_id = sub["latest_invoice"].as_str().unwrap().to_owned();
    let canceled = server
        .delete(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .ok();
    assert_eq!(canceled["status"], "incomplete_expired");
    assert!(canceled["ended_at"].is_i64());
    let invoice = server.get(&format!("/v1/invoices/{invoice_id}")).await.ok();
    assert_eq!(invoice["status"], "void");
    assert!(invoice["status_transitions"]["voided_at"].is_i64());
    let payments = server
        .get(&format!("/v1/invoice_payments?invoice={invoice_id}"))
        .await
        .ok();
    assert_eq!(payments["data"][0]["status"], "canceled");
    let intent_id = payments["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap();
    let intent = server
        .get(&format!("/v1/payment_intents/{intent_id}"))
        .await
        .ok();
    assert_eq!(intent["status"], "canceled");
    assert_eq!(intent["cancellation_reason"], "void_invoice");
    let events = events_in_order(&server).await;
    assert!(
        events.ends_with(&[
            "customer.subscription.deleted".to_owned(),
            "payment_intent.canceled".to_owned(),
            "invoice.voided".to_owned(),
        ]),
        "{events:?}"
    );
    let deleted = server
        .get("/v1/events?type=customer.subscription.deleted")
        .await
        .ok();
    assert_eq!(
        deleted["data"][0]["data"]["object"]["status"],
        "incomplete_expired"
    );
    let voided = server.get("/v1/events?type=invoice.voided").await.ok();
    assert_eq!(voided["data"][0]["data"]["object"]["status"], "void");
    // Ended: it cannot be canceled again, nor its invoice paid.
    let again = server
        .delete(&format!("/v1/subscriptions/{}", id(&sub)))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let pay = server
        .post(&format!("/v1/invoices/{invoice_id}/pay"), "")
        .await;
    assert_eq!(pay.status, StatusCode::BAD_REQUEST, "{}", pay.body);
    // An active subscription still cancels as `canceled`.
    let active = server
        .subscribe_with_card(&customer, "pm_card_visa", 1500)
        .await;
    assert_eq!(active["status"], "active");
    let ended = server
        .delete(&format!("/v1/subscriptions/{}", id(&active)))
        .await
        .ok();
    assert_eq!(ended["status"], "canceled");
    let paid = server
        .get(&format!(
            "/v1/invoices/{}",
            active["latest_invoice"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(paid["status"], "paid");
}

async fn card_declines_name_the_payment_method(server: TestServer) {
    let customer = customer(&server).await;
    let declined = server
        .post(
            "/v1/payment_intents",
            &format!("amount=900&currency=usd&customer={customer}&payment_method=pm_card_visa_chargeDeclined&confirm=true"),
        )
        .await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let error = &declined.body["error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["decline_code"], "generic_decline");
    assert_eq!(error["payment_method"]["object"], "payment_method");
    assert_eq!(error["payment_method"]["card"]["last4"], "0002");
    assert!(error["payment_method"].get("_twin_behavior").is_none());
    assert!(error["payment_method"].get("_twin").is_none());
    assert_eq!(error["payment_intent"]["object"], "payment_intent");
    let stored = server
        .get(&format!(
            "/v1/payment_intents/{}",
            id(&error["payment_intent"])
        ))
        .await
        .ok();
    assert_eq!(
        stored["last_payment_error"]["payment_method"]["id"],
        error["payment_method"]["id"]
    );
    assert!(error["charge"].as_str().unwrap().starts_with("ch_"));

    let setup = server
        .post(
            "/v1/setup_intents",
            &format!("customer={customer}&payment_method=pm_card_chargeDeclinedInsufficientFunds&confirm=true"),
        )
        .await;
    assert_eq!(setup.status, StatusCode::PAYMENT_REQUIRED);
    let error = &setup.body["error"];
    assert_eq!(error["decline_code"], "insufficient_funds");
    assert_eq!(error["setup_intent"]["object"], "setup_intent");
    assert_eq!(error["payment_method"]["card"]["last4"], "9995");
    assert_eq!(
        error["setup_intent"]["last_setup_error"]["payment_method"]["id"],
        error["payment_method"]["id"]
    );
    assert_eq!(
        json!(error["setup_intent"]["status"]),
        json!("requires_payment_method")
    );
}

backend_tests!(
    detached_payment_methods_leave_the_lists,
    nul_in_an_id_is_not_found,
    products_take_a_type,
    customer_create_attaches_its_payment_method,
    canceling_an_incomplete_subscription_expires_it,
    card_declines_name_the_payment_method,
);
