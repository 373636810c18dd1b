//! PaymentIntents over real HTTP: the state machine, test-card outcomes,
//! charges, the authorization page for 3-D Secure and Amazon Pay,
//! off-session charges through a mandate, publishable-key access, races
//! and bad input.
use crate::common;

use common::{
    Reply, TestServer, amazon_pay_with_mandate, browser, enc, events_in_order, id, redirect_url,
    submit,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn customer(server: &TestServer) -> String {
    server
        .post("/v1/customers", "email=payer%40example.com&name=Payer")
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Attaches a fresh copy of a ready-made test method (`pm_card_visa`) to
/// the customer and returns the new PaymentMethod's ID.
async fn attach(server: &TestServer, test_pm: &str, customer: &str) -> String {
    let attached = server
        .post(
            &format!("/v1/payment_methods/{test_pm}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    assert_eq!(attached["customer"], customer);
    let pm = id(&attached);
    assert_ne!(pm, test_pm);
    pm
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn create_without_confirm(server: TestServer) {
    let created = server
        .post(
            "/v1/payment_intents",
            "amount=2000&currency=usd&metadata[order]=A-1&description=Order%20A-1",
        )
        .await
        .ok();
    let pi = id(&created);
    assert!(pi.starts_with("pi_"), "{pi}");
    assert_eq!(created["object"], "payment_intent");
    assert_eq!(created["status"], "requires_payment_method");
    assert_eq!(created["amount"], 2000);
    assert_eq!(created["currency"], "usd");
    assert_eq!(created["amount_received"], 0);
    assert!(created["latest_charge"].is_null());
    assert!(created["payment_method"].is_null());
    assert_eq!(created["metadata"], json!({"order": "A-1"}));
    assert_eq!(created["description"], "Order A-1");
    assert_eq!(created["automatic_payment_methods"]["enabled"], true);
    let types = created["payment_method_types"].as_array().unwrap();
    assert!(types.contains(&json!("card")) && types.contains(&json!("amazon_pay")));
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{pi}_secret_"))
    );
    for key in created.as_object().unwrap().keys() {
        assert!(!key.starts_with('_'), "{key} leaked");
    }

    let retrieved = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(retrieved, created);

    // A payment method without confirming: requires_confirmation.
    let with_pm = server
        .post(
            "/v1/payment_intents",
            "amount=1500&currency=eur&payment_method=pm_card_visa",
        )
        .await
        .ok();
    assert_eq!(with_pm["status"], "requires_confirmation");
    let pm = with_pm["payment_method"].as_str().unwrap();
    assert!(pm.starts_with("pm_") && pm != "pm_card_visa", "{pm}");
    let stored_pm = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(stored_pm["card"]["last4"], "4242");
    let confirmed = server
        .post(&format!("/v1/payment_intents/{}/confirm", id(&with_pm)), "")
        .await
        .ok();
    assert_eq!(confirmed["status"], "succeeded");
    assert_eq!(confirmed["amount_received"], 1500);
    assert_eq!(confirmed["payment_method"], pm);
    // Used once without a customer, the method may not be used again.
    let reused = server
        .post(
            "/v1/payment_intents",
            &format!("amount=1500&currency=eur&payment_method={pm}&confirm=true"),
        )
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST, "{}", reused.body);
    assert_eq!(reused.error_param(), "payment_method");

    assert_eq!(
        events_in_order(&server).await,
        [
            "payment_intent.created",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]
    );
}

async fn confirm_with_visa_and_charge(server: TestServer) {
    let customer = customer(&server).await;
    let paid = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=4200&currency=usd&customer={customer}&confirm=true&payment_method=pm_card_visa&metadata[k]=v&receipt_email=r%40example.com"
            ),
        )
        .await
        .ok();
    let pi = id(&paid);
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["amount_received"], 4200);
    assert_eq!(paid["customer"], customer.as_str());
    assert!(paid["last_payment_error"].is_null());
    assert!(paid["next_action"].is_null());
    let charge_id = paid["latest_charge"].as_str().expect("a charge").to_owned();
    assert!(charge_id.starts_with("ch_"));
    let pm = paid["payment_method"].as_str().unwrap().to_owned();

    let charge = server.get(&format!("/v1/charges/{charge_id}")).await.ok();
    assert_eq!(charge["object"], "charge");
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["paid"], true);
    assert_eq!(charge["captured"], true);
    assert_eq!(charge["amount"], 4200);
    assert_eq!(charge["amount_captured"], 4200);
    assert_eq!(charge["currency"], "usd");
    assert_eq!(charge["customer"], customer.as_str());
    assert_eq!(charge["payment_intent"], pi.as_str());
    assert_eq!(charge["payment_method"], pm.as_str());
    assert_eq!(charge["metadata"], json!({"k": "v"}));
    assert_eq!(charge["receipt_email"], "r@example.com");
    assert_eq!(charge["payment_method_details"]["type"], "card");
    assert_eq!(charge["payment_method_details"]["card"]["last4"], "4242");
    assert_eq!(charge["payment_method_details"]["card"]["brand"], "visa");
    assert!(charge["failure_code"].is_null());
    assert_eq!(charge["outcome"]["type"], "authorized");

    let expanded = server
        .get(&format!(
            "/v1/payment_intents/{pi}?expand[]=latest_charge&expand[]=payment_method"
        ))
        .await
        .ok();
    assert_eq!(expanded["latest_charge"]["id"], charge_id.as_str());
    assert_eq!(expanded["payment_method"]["card"]["last4"], "4242");

    let by_intent = server
        .get(&format!("/v1/charges?payment_intent={pi}"))
        .await
        .ok();
    assert_eq!(by_intent["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_intent["data"][0]["id"], charge_id.as_str());
    let by_customer = server
        .get(&format!("/v1/charges?customer={customer}"))
        .await
        .ok();
    assert_eq!(by_customer["data"][0]["id"], charge_id.as_str());

    let missing_charge = server.get("/v1/charges/ch_missing").await;
    assert_eq!(missing_charge.status, StatusCode::NOT_FOUND);
    assert_eq!(missing_charge.error_code(), "resource_missing");

    // A succeeded intent can be neither confirmed again nor canceled.
    let again = server
        .post(&format!("/v1/payment_intents/{pi}/confirm"), "")
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code(), "payment_intent_unexpected_state");
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already succeeded"),
        "{}",
        again.body
    );
    let cancel = server
        .post(&format!("/v1/payment_intents/{pi}/cancel"), "")
        .await;
    assert_eq!(cancel.status, StatusCode::BAD_REQUEST, "{}", cancel.body);
    assert_eq!(cancel.error_code(), "payment_intent_unexpected_state");
    assert!(
        cancel.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("status of succeeded")
    );
    let amount = server
        .post(&format!("/v1/payment_intents/{pi}"), "amount=100")
        .await;
    assert_eq!(amount.error_code(), "payment_intent_unexpected_state");
    // Notes may still change.
    let noted = server
        .post(
            &format!("/v1/payment_intents/{pi}"),
            "metadata[note]=shipped",
        )
        .await
        .ok();
    assert_eq!(noted["metadata"], json!({"k": "v", "note": "shipped"}));
    assert_eq!(noted["status"], "succeeded");

    let types = events_in_order(&server).await;
    assert_eq!(
        types,
        [
            "customer.created",
            "payment_intent.created",
            "charge.succeeded",
            "payment_intent.succeeded",
            "payment_intent.updated",
        ]
    );

    // setup_future_usage saves the card to the customer for later
    // off-session charges.
    let saving = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1000&currency=usd&customer={customer}&confirm=true&payment_method=pm_card_visa&setup_future_usage=off_session"
            ),
        )
        .await
        .ok();
    assert_eq!(saving["status"], "succeeded");
    assert_eq!(saving["setup_future_usage"], "off_session");
    let saved = saving["payment_method"].as_str().unwrap();
    let listed = server
        .get(&format!("/v1/customers/{customer}/payment_methods"))
        .await
        .ok();
    assert_eq!(ids_of(&listed), [saved]);
    let later = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2000&currency=usd&customer={customer}&confirm=true&payment_method={saved}&off_session=true"
            ),
        )
        .await
        .ok();
    assert_eq!(later["status"], "succeeded");
    assert!(
        events_in_order(&server)
            .await
            .contains(&"payment_method.attached".to_owned())
    );
}

fn ids_of(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect()
}

async fn declines(server: TestServer) {
    let customer = customer(&server).await;
    let declined = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1000&currency=usd&customer={customer}&confirm=true&payment_method=pm_card_chargeDeclined"
            ),
        )
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.body
    );
    assert_eq!(declined.error_type(), "card_error");
    assert_eq!(declined.error_code(), "card_declined");
    assert_eq!(declined.body["error"]["decline_code"], "generic_decline");
    let charge_id = declined.body["error"]["charge"].as_str().expect("a charge");
    let in_error = &declined.body["error"]["payment_intent"];
    assert_eq!(in_error["status"], "requires_payment_method");
    assert_eq!(in_error["last_payment_error"]["code"], "card_declined");
    let pi = id(in_error);
    for key in in_error.as_object().unwrap().keys() {
        assert!(!key.starts_with('_'), "{key} leaked into the error");
    }

    let stored = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(stored["status"], "requires_payment_method");
    assert!(stored["payment_method"].is_null());
    assert_eq!(stored["amount_received"], 0);
    assert_eq!(stored["latest_charge"], charge_id);
    let error = &stored["last_payment_error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "generic_decline");
    assert_eq!(error["charge"], charge_id);
    assert_eq!(error["payment_method"]["card"]["last4"], "0002");
    assert_eq!(error["payment_method_type"], "card");
    assert!(error["payment_method"].get("_twin_behavior").is_none());
    assert!(error["payment_method"].get("_twin").is_none());

    let charge = server.get(&format!("/v1/charges/{charge_id}")).await.ok();
    assert_eq!(charge["status"], "failed");
    assert_eq!(charge["paid"], false);
    assert_eq!(charge["captured"], false);
    assert_eq!(charge["amount_captured"], 0);
    assert_eq!(charge["failure_code"], "card_declined");
    assert_eq!(charge["failure_message"], "Your card was declined.");
    assert_eq!(charge["outcome"]["reason"], "generic_decline");
    assert_eq!(charge["payment_intent"], pi.as_str());

    let types = events_in_order(&server).await;
    assert_eq!(
        types,
        [
            "customer.created",
            "payment_intent.created",
            "charge.failed",
            "payment_intent.payment_failed",
        ]
    );

    // The next attempt with a good card succeeds and clears the error.
    let retried = server
        .post(
            &format!("/v1/payment_intents/{pi}/confirm"),
            "payment_method=pm_card_visa",
        )
        .await
        .ok();
    assert_eq!(retried["status"], "succeeded");
    assert!(retried["last_payment_error"].is_null());
    assert_ne!(retried["latest_charge"], charge_id);
    let charges = server
        .get(&format!("/v1/charges?payment_intent={pi}"))
        .await
        .ok();
    assert_eq!(charges["data"].as_array().unwrap().len(), 2);

    // Insufficient funds, and a card that attaches but whose charges fail.
    let poor = server
        .post(
            "/v1/payment_intents",
            "amount=1000&currency=usd&confirm=true&payment_method=pm_card_chargeDeclinedInsufficientFunds",
        )
        .await;
    assert_eq!(poor.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(poor.body["error"]["decline_code"], "insufficient_funds");
    let renewals_fail = attach(&server, "pm_card_chargeCustomerFail", &customer).await;
    let fails = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1000&currency=usd&customer={customer}&confirm=true&payment_method={renewals_fail}&off_session=true"
            ),
        )
        .await;
    assert_eq!(fails.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(fails.error_code(), "card_declined");
    assert_eq!(
        fails.body["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    // The attached method survives its failed charge.
    let still = server
        .get(&format!("/v1/payment_methods/{renewals_fail}"))
        .await
        .ok();
    assert_eq!(still["customer"], customer.as_str());
}

async fn three_d_secure_on_session(server: TestServer) {
    let customer = customer(&server).await;
    let return_url = "https://shop.example/paid?order=9";
    let pending = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=3100&currency=usd&customer={customer}&confirm=true&payment_method=pm_card_authenticationRequired&return_url={}",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let pi = id(&pending);
    let secret = pending["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(pending["status"], "requires_action");
    assert_eq!(pending["next_action"]["type"], "redirect_to_url");
    assert_eq!(
        pending["next_action"]["redirect_to_url"]["return_url"],
        return_url
    );
    let url = redirect_url(&pending);
    assert!(
        url.starts_with(&format!("{}/authorize/", server.base)),
        "{url}"
    );
    assert!(pending["latest_charge"].is_null());
    assert!(pending.get("_twin_redirect").is_none());
    assert!(pending.get("_twin").is_none());

    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("3D Secure"), "{html}");
    assert!(html.contains("31.00 USD"), "{html}");

    let (status, location, _) = submit(&url, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        format!(
            "{return_url}&payment_intent={pi}&payment_intent_client_secret={secret}&redirect_status=succeeded"
        )
    );
    let done = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["amount_received"], 3100);
    assert!(done["next_action"].is_null());
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            done["latest_charge"].as_str().expect("a charge")
        ))
        .await
        .ok();
    assert_eq!(charge["status"], "succeeded");
    // pm_card_authenticationRequired is Stripe's "always authenticate" card.
    assert_eq!(charge["payment_method_details"]["card"]["last4"], "3184");
    // The page is used up.
    assert_eq!(submit(&url, "authorize").await.0, StatusCode::CONFLICT);

    let types = events_in_order(&server).await;
    assert_eq!(
        types,
        [
            "customer.created",
            "payment_intent.created",
            "payment_intent.requires_action",
            "charge.succeeded",
            "payment_intent.succeeded",
        ]
    );

    // Failing authentication: back to requires_payment_method.
    let again = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=3100&currency=usd&confirm=true&payment_method=pm_card_authenticationRequired&return_url={}",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let (status, location, _) = submit(&redirect_url(&again), "fail").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.ends_with("&redirect_status=failed"), "{location}");
    let failed = server
        .get(&format!("/v1/payment_intents/{}", id(&again)))
        .await
        .ok();
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_intent_authentication_failure"
    );
    assert!(failed["payment_method"].is_null());
    assert!(events_in_order(&server).await.ends_with(&[
        "charge.failed".to_owned(),
        "payment_intent.payment_failed".to_owned()
    ]));
}

async fn three_d_secure_off_session_fails(server: TestServer) {
    let customer = customer(&server).await;
    let pm = attach(&server, "pm_card_authenticationRequired", &customer).await;
    let reply = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=999&currency=usd&customer={customer}&payment_method={pm}&confirm=true&off_session=true"
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYMENT_REQUIRED, "{}", reply.body);
    assert_eq!(reply.error_type(), "card_error");
    assert_eq!(reply.error_code(), "authentication_required");
    assert_eq!(
        reply.body["error"]["decline_code"],
        "authentication_required"
    );
    let intent = &reply.body["error"]["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert!(intent["next_action"].is_null());
    let stored = server
        .get(&format!("/v1/payment_intents/{}", id(intent)))
        .await
        .ok();
    assert_eq!(
        stored["last_payment_error"]["code"],
        "authentication_required"
    );
    // The customer comes back on-session and authenticates.
    let on_session = server
        .post(
            &format!("/v1/payment_intents/{}/confirm", id(intent)),
            &format!(
                "payment_method={pm}&return_url={}",
                enc("https://shop.example/back")
            ),
        )
        .await
        .ok();
    assert_eq!(on_session["status"], "requires_action");
    assert!(on_session["last_payment_error"].is_null());
    assert_eq!(
        submit(&redirect_url(&on_session), "authorize").await.0,
        StatusCode::SEE_OTHER
    );
    let done = server
        .get(&format!("/v1/payment_intents/{}", id(intent)))
        .await
        .ok();
    assert_eq!(done["status"], "succeeded");

    // Off-session needs a customer.
    let anonymous = server
        .post(
            "/v1/payment_intents",
            "amount=999&currency=usd&payment_method=pm_card_visa&confirm=true&off_session=true",
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::BAD_REQUEST);
    assert_eq!(anonymous.error_param(), "off_session");

    // error_on_requires_action: the attempt fails instead of waiting.
    let no_action = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=999&currency=usd&customer={customer}&payment_method={pm}&confirm=true&error_on_requires_action=true"
            ),
        )
        .await;
    assert_eq!(
        no_action.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        no_action.body
    );
    assert_eq!(no_action.error_code(), "payment_intent_action_required");
    let intent = &no_action.body["error"]["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert!(intent["next_action"].is_null());
    // Only that confirmation: the next one may wait for the customer.
    let waits = server
        .post(
            &format!("/v1/payment_intents/{}/confirm", id(intent)),
            &format!(
                "payment_method={pm}&return_url={}",
                enc("https://shop.example/back")
            ),
        )
        .await
        .ok();
    assert_eq!(waits["status"], "requires_action");
    let amazon = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=999&currency=usd&confirm=true&payment_method_data[type]=amazon_pay&return_url={}&error_on_requires_action=true",
                enc("https://shop.example/back")
            ),
        )
        .await;
    assert!(amazon.status.is_client_error(), "{}", amazon.body);
    assert_eq!(amazon.error_code(), "payment_intent_action_required");
    assert_eq!(
        amazon.body["error"]["payment_intent"]["status"],
        "requires_payment_method"
    );
    // A card that needs nothing is not affected.
    let plain = server
        .post(
            "/v1/payment_intents",
            "amount=999&currency=usd&confirm=true&payment_method=pm_card_visa&error_on_requires_action=true",
        )
        .await
        .ok();
    assert_eq!(plain["status"], "succeeded");
}

async fn amazon_pay_on_session(server: TestServer) {
    let customer = customer(&server).await;
    let return_url = "https://shop.example/amazon/done";
    let pending = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2500&currency=usd&customer={customer}&confirm=true&payment_method_data[type]=amazon_pay&payment_method_types[]=amazon_pay&return_url={}&setup_future_usage=off_session",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let pi = id(&pending);
    assert_eq!(pending["status"], "requires_action");
    assert_eq!(pending["payment_method_types"], json!(["amazon_pay"]));
    let pm = pending["payment_method"].as_str().unwrap().to_owned();
    let stored_pm = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(stored_pm["type"], "amazon_pay");
    let url = redirect_url(&pending);
    let html = browser()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Amazon Pay"), "{html}");
    assert!(html.contains("25.00 USD"), "{html}");

    let (status, location, _) = submit(&url, "authorize").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!("{return_url}?payment_intent={pi}&"))
            && location.ends_with("&redirect_status=succeeded"),
        "{location}"
    );
    let done = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["amount_received"], 2500);
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            done["latest_charge"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(charge["payment_method_details"]["type"], "amazon_pay");
    assert_eq!(charge["payment_method"], pm.as_str());

    // setup_future_usage saved the method to the customer with a mandate:
    // it now charges off-session without the buyer.
    let saved = server.get(&format!("/v1/payment_methods/{pm}")).await.ok();
    assert_eq!(saved["customer"], customer.as_str());
    let later = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=700&currency=usd&customer={customer}&payment_method={pm}&confirm=true&off_session=true"
            ),
        )
        .await
        .ok();
    assert_eq!(later["status"], "succeeded");

    // Declining on the page.
    let declined = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=2500&currency=usd&confirm=true&payment_method_data[type]=amazon_pay&return_url={}",
                enc(return_url)
            ),
        )
        .await
        .ok();
    let (_, location, _) = submit(&redirect_url(&declined), "fail").await;
    assert!(location.ends_with("redirect_status=failed"), "{location}");
    let failed = server
        .get(&format!("/v1/payment_intents/{}", id(&declined)))
        .await
        .ok();
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(
        failed["last_payment_error"]["code"],
        "payment_method_provider_decline"
    );
}

async fn amazon_pay_off_session(server: TestServer) {
    let customer = customer(&server).await;
    let pm = amazon_pay_with_mandate(&server, &customer).await;
    let paid = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1299&currency=usd&customer={customer}&payment_method={pm}&payment_method_types[]=amazon_pay&confirm=true&off_session=true"
            ),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "succeeded");
    assert!(paid["next_action"].is_null());
    assert_eq!(paid["payment_method"], pm.as_str());
    let charge = server
        .get(&format!(
            "/v1/charges/{}",
            paid["latest_charge"].as_str().unwrap()
        ))
        .await
        .ok();
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["payment_method_details"]["type"], "amazon_pay");
    assert_eq!(charge["amount"], 1299);

    // Without a mandate there is nothing to charge off-session.
    let bare = server
        .post("/v1/payment_methods", "type=amazon_pay")
        .await
        .ok();
    let bare = id(&bare);
    server
        .post(
            &format!("/v1/payment_methods/{bare}/attach"),
            &format!("customer={customer}"),
        )
        .await
        .ok();
    let refused = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1299&currency=usd&customer={customer}&payment_method={bare}&confirm=true&off_session=true"
            ),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_type(), "card_error");
    assert_eq!(refused.error_code(), "payment_method_provider_decline");
    let intent = &refused.body["error"]["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["code"],
        "payment_method_provider_decline"
    );

    // A detached method's mandate lapses: no more off-session charges.
    server
        .post(&format!("/v1/payment_methods/{pm}/detach"), "")
        .await
        .ok();
    let after_detach = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1299&currency=usd&customer={customer}&payment_method={pm}&confirm=true&off_session=true"
            ),
        )
        .await;
    assert!(
        after_detach.status.is_client_error(),
        "{}",
        after_detach.body
    );
}

async fn update_cancel_and_list(server: TestServer) {
    let alice = customer(&server).await;
    let bob = customer(&server).await;
    let created = server
        .post(
            "/v1/payment_intents",
            &format!("amount=1000&currency=usd&customer={alice}"),
        )
        .await
        .ok();
    let pi = id(&created);
    let updated = server
        .post(
            &format!("/v1/payment_intents/{pi}"),
            "amount=3000&currency=eur&description=bigger&metadata[a]=1",
        )
        .await
        .ok();
    assert_eq!(updated["amount"], 3000);
    assert_eq!(updated["currency"], "eur");
    assert_eq!(updated["description"], "bigger");
    assert_eq!(updated["status"], "requires_payment_method");
    let event = &server.get("/v1/events?limit=1").await.ok()["data"][0];
    assert_eq!(event["type"], "payment_intent.updated");
    assert_eq!(event["data"]["object"]["amount"], 3000);
    assert_eq!(event["data"]["previous_attributes"]["amount"], 1000);
    assert_eq!(event["data"]["previous_attributes"]["currency"], "usd");

    let too_small = server
        .post(&format!("/v1/payment_intents/{pi}"), "amount=10")
        .await;
    assert_eq!(too_small.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_small.error_code(), "amount_too_small");
    assert_eq!(too_small.error_param(), "amount");
    let other_customer = server
        .post(
            &format!("/v1/payment_intents/{pi}"),
            &format!("customer={bob}"),
        )
        .await;
    assert_eq!(other_customer.status, StatusCode::BAD_REQUEST);
    assert_eq!(other_customer.error_param(), "customer");

    let canceled = server
        .post(
            &format!("/v1/payment_intents/{pi}/cancel"),
            "cancellation_reason=requested_by_customer",
        )
        .await
        .ok();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "requested_by_customer");
    assert!(canceled["canceled_at"].as_i64().unwrap() >= created["created"].as_i64().unwrap());
    for (path, body) in [
        (format!("/v1/payment_intents/{pi}/cancel"), ""),
        (
            format!("/v1/payment_intents/{pi}/confirm"),
            "payment_method=pm_card_visa",
        ),
        (format!("/v1/payment_intents/{pi}"), "amount=5000"),
    ] {
        let refused = server.post(&path, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            refused.error_code(),
            "payment_intent_unexpected_state",
            "{path}"
        );
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("status of canceled"),
            "{}",
            refused.body
        );
    }
    let bad_reason = server
        .post(
            &format!(
                "/v1/payment_intents/{}/cancel",
                id(&server
                    .post("/v1/payment_intents", "amount=1000&currency=usd")
                    .await
                    .ok())
            ),
            "cancellation_reason=bored",
        )
        .await;
    assert_eq!(bad_reason.error_param(), "cancellation_reason");
    assert!(
        events_in_order(&server)
            .await
            .contains(&"payment_intent.canceled".to_owned())
    );

    for _ in 0..2 {
        server
            .post(
                "/v1/payment_intents",
                &format!("amount=1000&currency=usd&customer={bob}"),
            )
            .await
            .ok();
    }
    let of_alice = server
        .get(&format!("/v1/payment_intents?customer={alice}"))
        .await
        .ok();
    assert_eq!(of_alice["url"], "/v1/payment_intents");
    let ids: Vec<&Value> = of_alice["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert_eq!(ids, [&json!(pi)]);
    let of_bob = server
        .get(&format!("/v1/payment_intents?customer={bob}&limit=1"))
        .await
        .ok();
    assert_eq!(of_bob["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_bob["has_more"], true);
    assert_eq!(of_bob["data"][0]["customer"], bob.as_str());
    let all = server.get("/v1/payment_intents?limit=100").await.ok();
    assert_eq!(all["data"].as_array().unwrap().len(), 4);
}

async fn publishable_key_access(server: TestServer) {
    let customer = customer(&server).await;
    let created = server
        .post(
            "/v1/payment_intents",
            &format!("amount=1800&currency=usd&customer={customer}&metadata[internal]=yes"),
        )
        .await
        .ok();
    let pi = id(&created);
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    let retrieved = server
        .get_as(
            "pk_test_shop",
            &format!("/v1/payment_intents/{pi}?client_secret={secret}"),
        )
        .await;
    assert_eq!(retrieved.status, StatusCode::OK, "{}", retrieved.body);
    assert_eq!(retrieved.body["id"], pi.as_str());
    assert_eq!(retrieved.body["amount"], 1800);
    assert_eq!(retrieved.body["status"], "requires_payment_method");
    assert_eq!(retrieved.body["client_secret"], secret.as_str());
    for hidden in ["customer", "metadata", "latest_charge"] {
        assert!(retrieved.body.get(hidden).is_none(), "{hidden} shown");
    }
    let wrong = server
        .get_as(
            "pk_test_shop",
            &format!("/v1/payment_intents/{pi}?client_secret={pi}_secret_nope"),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.error_param(), "client_secret");
    let without = server
        .get_as("pk_test_shop", &format!("/v1/payment_intents/{pi}"))
        .await;
    assert_eq!(without.status, StatusCode::BAD_REQUEST);
    assert_eq!(without.error_code(), "parameter_missing");
    let expand = server
        .get_as(
            "pk_test_shop",
            &format!("/v1/payment_intents/{pi}?client_secret={secret}&expand[]=customer"),
        )
        .await;
    assert_eq!(expand.status, StatusCode::BAD_REQUEST);
    assert_eq!(expand.error_param(), "expand");
    assert_eq!(
        server
            .get_as("pk_test_shop", "/v1/payment_intents")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .post_as(
                "pk_test_shop",
                &format!("/v1/payment_intents/{pi}/cancel"),
                ""
            )
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .post_as(
                "pk_test_shop",
                &format!("/v1/payment_intents/{pi}"),
                "amount=1"
            )
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Stripe.js confirms with the key as a parameter and the client secret.
    let body = format!(
        "key=pk_test_shop&client_secret={secret}&payment_method_data[type]=card&payment_method_data[card][number]=4242424242424242&payment_method_data[card][exp_month]=12&payment_method_data[card][exp_year]=2040&payment_method_data[card][cvc]=123&payment_method_data[payment_user_agent]=stripe.js&return_url={}",
        enc("https://shop.example/complete")
    );
    let confirmed = server
        .call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{pi}/confirm"),
            None,
            &body,
            &[],
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "succeeded");
    assert!(confirmed.body.get("customer").is_none());
    assert!(confirmed.body.get("metadata").is_none());
    let done = server.get(&format!("/v1/payment_intents/{pi}")).await.ok();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["customer"], customer.as_str());
}

async fn concurrent_confirms_charge_once(server: TestServer) {
    let customer = customer(&server).await;
    let pm = attach(&server, "pm_card_visa", &customer).await;
    let created = server
        .post(
            "/v1/payment_intents",
            &format!("amount=5000&currency=usd&customer={customer}&payment_method={pm}"),
        )
        .await
        .ok();
    let pi = id(&created);
    let path = format!("/v1/payment_intents/{pi}/confirm");
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..6).map(|_| server.post(&path, ""))).await;
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
        assert_eq!(lost.status, StatusCode::BAD_REQUEST, "{}", lost.body);
        assert_eq!(lost.error_code(), "payment_intent_unexpected_state");
    }
    let charges = server
        .get(&format!("/v1/charges?payment_intent={pi}"))
        .await
        .ok();
    assert_eq!(charges["data"].as_array().unwrap().len(), 1);
    let types = events_in_order(&server).await;
    assert_eq!(count(&types, "payment_intent.succeeded"), 1);
    assert_eq!(count(&types, "charge.succeeded"), 1);
}

async fn bad_input_gets_stripe_errors(server: TestServer) {
    let customer = customer(&server).await;
    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            "amount=10&currency=usd",
            StatusCode::BAD_REQUEST,
            "amount_too_small",
            "amount",
        ),
        (
            "amount=49&currency=eur",
            StatusCode::BAD_REQUEST,
            "amount_too_small",
            "amount",
        ),
        (
            "amount=29&currency=gbp",
            StatusCode::BAD_REQUEST,
            "amount_too_small",
            "amount",
        ),
        (
            "amount=399&currency=hkd",
            StatusCode::BAD_REQUEST,
            "amount_too_small",
            "amount",
        ),
        (
            "amount=100000000&currency=usd",
            StatusCode::BAD_REQUEST,
            "amount_too_large",
            "amount",
        ),
        (
            "amount=1000",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "currency",
        ),
        (
            "currency=usd",
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            "amount",
        ),
        (
            "amount=ten&currency=usd",
            StatusCode::BAD_REQUEST,
            "",
            "amount",
        ),
        (
            "amount=1000&currency=zzz",
            StatusCode::BAD_REQUEST,
            "",
            "currency",
        ),
        (
            "amount=1000&currency=usd&surprise=1",
            StatusCode::BAD_REQUEST,
            "parameter_unknown",
            "surprise",
        ),
        (
            "amount=1000&currency=usd&customer=cus_missing",
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "customer",
        ),
        (
            "amount=1000&currency=usd&payment_method=pm_missing",
            StatusCode::BAD_REQUEST,
            "resource_missing",
            "payment_method",
        ),
        (
            "amount=1000&currency=usd&payment_method_types[]=bitcoin",
            StatusCode::BAD_REQUEST,
            "",
            "payment_method_types",
        ),
        (
            "amount=1000&currency=usd&payment_method_types[]=card&automatic_payment_methods[enabled]=true",
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "automatic_payment_methods",
        ),
        (
            "amount=1000&currency=usd&payment_method=pm_card_visa&payment_method_data[type]=card",
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "payment_method_data",
        ),
        (
            "amount=1000&currency=usd&return_url=https%3A%2F%2Fx.example",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "amount=1000&currency=usd&confirm=true&payment_method=pm_card_visa&return_url=notaurl",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "amount=1000&currency=usd&confirm=true&payment_method_data[type]=amazon_pay",
            StatusCode::BAD_REQUEST,
            "",
            "return_url",
        ),
        (
            "amount=1000&currency=usd&confirm=true",
            StatusCode::BAD_REQUEST,
            "payment_intent_unexpected_state",
            "",
        ),
        (
            "amount=1000&currency=usd&capture_method=manual",
            StatusCode::BAD_REQUEST,
            "",
            "capture_method",
        ),
        (
            "amount=1000&currency=usd&confirm=true&payment_method=pm_card_visa&off_session=maybe",
            StatusCode::BAD_REQUEST,
            "",
            "off_session",
        ),
        (
            "amount=1000&currency=usd&confirm=true&payment_method=pm_card_visa&payment_method_types[]=amazon_pay",
            StatusCode::BAD_REQUEST,
            "",
            "payment_method",
        ),
        (
            "amount=1000&currency=usd&setup_future_usage=sometimes",
            StatusCode::BAD_REQUEST,
            "",
            "setup_future_usage",
        ),
        (
            "amount=1000&currency=usd&confirm=maybe",
            StatusCode::BAD_REQUEST,
            "",
            "confirm",
        ),
    ];
    server.expect_errors("/v1/payment_intents", cases).await;
    // Stripe's minimums differ by currency.
    let mut minimums = Vec::new();
    for (amount, currency) in [(50, "usd"), (30, "gbp"), (50, "jpy"), (400, "hkd")] {
        let ok = server
            .post(
                "/v1/payment_intents",
                &format!("amount={amount}&currency={currency}"),
            )
            .await
            .ok();
        assert_eq!(ok["amount"], amount);
        minimums.push(id(&ok));
    }
    for pi in &minimums {
        server
            .post(&format!("/v1/payment_intents/{pi}/cancel"), "")
            .await
            .ok();
    }
    let left: Vec<String> = server.get("/v1/payment_intents?limit=100").await.ok()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .filter(|pi| !minimums.contains(pi))
        .collect();
    assert!(
        left.is_empty(),
        "a bad request left an intent behind: {left:?}"
    );

    // A method attached to another customer.
    let other = attach(&server, "pm_card_visa", &customer).await;
    let stranger = server.post("/v1/customers", "name=Stranger").await.ok();
    let wrong_owner = server
        .post(
            "/v1/payment_intents",
            &format!(
                "amount=1000&currency=usd&customer={}&payment_method={other}&confirm=true",
                id(&stranger)
            ),
        )
        .await;
    assert_eq!(
        wrong_owner.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_owner.body
    );
    assert_eq!(wrong_owner.error_param(), "payment_method");

    let missing = server.get("/v1/payment_intents/pi_missing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "resource_missing");
    let missing_confirm = server
        .post("/v1/payment_intents/pi_missing/confirm", "")
        .await;
    assert_eq!(missing_confirm.status, StatusCode::NOT_FOUND);
    let missing_cancel = server
        .post("/v1/payment_intents/pi_missing/cancel", "")
        .await;
    assert_eq!(missing_cancel.status, StatusCode::NOT_FOUND);
    let unknown_on_confirm = server
        .post(
            &format!(
                "/v1/payment_intents/{}/confirm",
                id(&server
                    .post("/v1/payment_intents", "amount=1000&currency=usd")
                    .await
                    .ok())
            ),
            "amount=5",
        )
        .await;
    assert_eq!(unknown_on_confirm.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_on_confirm.error_code(), "parameter_unknown");
}

backend_tests!(
    create_without_confirm,
    confirm_with_visa_and_charge,
    declines,
    three_d_secure_on_session,
    three_d_secure_off_session_fails,
    amazon_pay_on_session,
    amazon_pay_off_session,
    update_cancel_and_list,
    publishable_key_access,
    concurrent_confirms_charge_once,
    bad_input_gets_stripe_errors,
);
