//! Amazon Pay mandates the buyer ends outside Stripe: the control
//! `POST /_config/customers/{customer}/amazon_pay/close_charge_permission`
//! makes them inactive (as when the buyer closes the recurring charge
//! permission on Amazon), off-session charges through them then fail, and
//! setting the method up again gives a new mandate that charges.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, amazon_pay_with_mandate, enc, id, redirect_url, submit};

backend_tests!(
    closing_the_charge_permission_inactivates_the_mandates,
    a_closed_permission_fails_off_session_until_set_up_again,
);

fn close_path(customer: &str) -> String {
    format!("/_config/customers/{customer}/amazon_pay/close_charge_permission")
}

async fn new_customer(server: &TestServer) -> String {
    id(&server.post("/v1/customers", "name=Buyer").await.ok())
}

/// The active mandate `payment_method` was set up with, through a
/// SetupIntent of `customer`'s: its id.
async fn mandate_of(server: &TestServer, customer: &str, payment_method: &str) -> String {
    let intents = server
        .get(&format!("/v1/setup_intents?customer={customer}&limit=100"))
        .await
        .ok();
    let intent = intents["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["payment_method"] == payment_method)
        .unwrap_or_else(|| panic!("a setup intent of {payment_method}: {intents}"));
    intent["mandate"].as_str().unwrap().to_owned()
}

async fn charge_off_session(server: &TestServer, customer: &str, pm: &str) -> crate::common::Reply {
    server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1500&currency=usd&customer={customer}&payment_method={pm}&payment_method_types[]=amazon_pay&confirm=true&off_session=true"
            ),
        )
        .await
}

async fn closing_the_charge_permission_inactivates_the_mandates(server: TestServer) {
    let customer = new_customer(&server).await;
    let first = amazon_pay_with_mandate(&server, &customer).await;
    let second = amazon_pay_with_mandate(&server, &customer).await;
    let first_mandate = mandate_of(&server, &customer, &first).await;
    let second_mandate = mandate_of(&server, &customer, &second).await;
    // Another customer's mandate stays active.
    let other = new_customer(&server).await;
    let others = amazon_pay_with_mandate(&server, &other).await;
    let other_mandate = mandate_of(&server, &other, &others).await;

    let closed = server.post(&close_path(&customer), "").await.ok();
    assert_eq!(closed["object"], "list");
    let data = closed["data"].as_array().unwrap();
    let seen: Vec<(String, &str, &str)> = data
        .iter()
        .map(|m| {
            (
                id(m),
                m["payment_method"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (first_mandate.clone(), first.as_str(), "inactive"),
            (second_mandate.clone(), second.as_str(), "inactive"),
        ]
    );
    for mandate in [&first_mandate, &second_mandate] {
        let stored = server.get(&format!("/v1/mandates/{mandate}")).await.ok();
        assert_eq!(stored["status"], "inactive");
        assert_eq!(stored["object"], "mandate");
        assert_eq!(stored["payment_method_details"]["type"], "amazon_pay");
    }
    let kept = server
        .get(&format!("/v1/mandates/{other_mandate}"))
        .await
        .ok();
    assert_eq!(kept["status"], "active");

    let events = server.get("/v1/events?type=mandate.updated").await.ok();
    let updates: Vec<(String, Value)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            (
                e["data"]["object"]["id"].as_str().unwrap().to_owned(),
                e["data"]["previous_attributes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        vec![
            (first_mandate, json!({"status": "active"})),
            (second_mandate, json!({"status": "active"})),
        ]
    );

    // Nothing left to close.
    let again = server.post(&close_path(&customer), "").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert_eq!(again.error_param(), "customer");
    assert_eq!(
        again.body["error"]["message"],
        format!(
            "The customer {customer} has no active Amazon Pay mandate: there is no recurring charge permission to close."
        )
    );
    let without = new_customer(&server).await;
    let none = server.post(&close_path(&without), "").await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{}", none.body);
    let unknown = server.post(&close_path("cus_missing"), "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(unknown.error_code(), "resource_missing");
    assert_eq!(
        unknown.body["error"]["message"],
        "No such customer: 'cus_missing'"
    );
}

async fn a_closed_permission_fails_off_session_until_set_up_again(server: TestServer) {
    let customer = new_customer(&server).await;
    let pm = amazon_pay_with_mandate(&server, &customer).await;
    let mandate = mandate_of(&server, &customer, &pm).await;
    server.post(&close_path(&customer), "").await.ok();

    let refused = charge_off_session(&server, &customer, &pm).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_type(), "invalid_request_error");
    assert_eq!(refused.error_code(), "payment_intent_mandate_invalid");
    let message = format!(
        "The mandate {mandate} is inactive: the buyer closed the recurring charge permission on Amazon Pay, so this payment method cannot be charged off-session. Set it up again with a SetupIntent."
    );
    assert_eq!(refused.body["error"]["message"], message.as_str());
    let intent = &refused.body["error"]["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "payment_intent_mandate_invalid"
    );
    let stored = server
        .get(&format!("/v1/payment_intents/{}", id(intent)))
        .await
        .ok();
    assert_eq!(stored["status"], "requires_payment_method");
    assert_eq!(stored["last_payment_error"]["message"], message.as_str());
    let mandate_now = server.get(&format!("/v1/mandates/{mandate}")).await.ok();
    assert_eq!(mandate_now["status"], "inactive");

    // The buyer authorizes again on the page: a new mandate, and the
    // method charges off-session again.
    let setup = server
        .post(
            "/v1/setup_intents",
            &format!(
                "confirm=true&return_url={}&usage=off_session&customer={customer}&payment_method={pm}&payment_method_types[]=amazon_pay&mandate_data[customer_acceptance][type]=online&mandate_data[customer_acceptance][online][ip_address]=127.0.0.0&mandate_data[customer_acceptance][online][user_agent]=device",
                enc("https://shop.example/setup")
            ),
        )
        .await
        .ok();
    assert_eq!(setup["status"], "requires_action");
    let (status, _, _) = submit(&redirect_url(&setup), "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let done = server
        .get(&format!("/v1/setup_intents/{}", id(&setup)))
        .await
        .ok();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["payment_method"], pm.as_str());
    let renewed = done["mandate"].as_str().unwrap().to_owned();
    assert_ne!(renewed, mandate);
    let renewed_doc = server.get(&format!("/v1/mandates/{renewed}")).await.ok();
    assert_eq!(renewed_doc["status"], "active");
    assert_eq!(renewed_doc["payment_method"], pm.as_str());

    let paid = charge_off_session(&server, &customer, &pm).await.ok();
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount_received"], 1500);
    assert_eq!(paid["payment_method"], pm.as_str());
}
