//! Refunds over HTTP: partial refunds up to the captured amount, Stripe's
//! errors past it, the legacy charge routes, asynchronous refunds (Amazon
//! Pay, the pending and failing refund cards) settling on the scheduler,
//! and two refunds racing for the last amount.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, TestServer, id};

/// A succeeded card payment of `amount` with test card `card`, and its charge id.
async fn paid(server: &TestServer, card: &str, amount: i64) -> (String, String) {
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!("amount={amount}&currency=usd&payment_method={card}&payment_method_types[]=card&confirm=true"),
        )
        .await
        .ok();
    assert_eq!(intent["status"], "succeeded", "{intent}");
    let charge = intent["latest_charge"].as_str().unwrap().to_owned();
    (id(&intent), charge)
}

async fn charge(server: &TestServer, charge: &str) -> Value {
    server.get(&format!("/v1/charges/{charge}")).await.ok()
}

/// Waits until refund `id` has `status`.
async fn wait_for(server: &TestServer, refund: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let now = server.get(&format!("/v1/refunds/{refund}")).await.ok();
        if now["status"] == status {
            return now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn partial_refunds_up_to_the_captured_amount(server: TestServer) {
    let (intent, charge_id) = paid(&server, "pm_card_visa", 2000).await;
    let first = server
        .post(
            "/v1/refunds",
            &format!(
                "payment_intent={intent}&amount=500&reason=requested_by_customer&metadata[order]=7"
            ),
        )
        .await
        .ok();
    assert_eq!(first["object"], "refund");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], 500);
    assert_eq!(first["charge"], charge_id.as_str());
    assert_eq!(first["payment_intent"], intent.as_str());
    assert_eq!(first["reason"], "requested_by_customer");
    assert_eq!(first["metadata"]["order"], "7");
    let after_first = charge(&server, &charge_id).await;
    assert_eq!(after_first["amount_refunded"], 500);
    assert_eq!(after_first["refunded"], false);
    // More than what is left: Stripe's error, nothing changes.
    let refused = server
        .post(&format!("/v1/charges/{charge_id}/refunds"), "amount=1600")
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "amount_too_large");
    assert_eq!(
        refused.body["error"]["message"],
        "Refund amount ($16.00) is greater than unrefunded amount on charge ($15.00)."
    );
    // The legacy route refunds the rest and answers the charge.
    let refunded = server
        .post(&format!("/v1/charges/{charge_id}/refund"), "")
        .await
        .ok();
    assert_eq!(refunded["object"], "charge");
    assert_eq!(refunded["amount_refunded"], 2000);
    assert_eq!(refunded["refunded"], true);
    let again = server
        .post("/v1/refunds", &format!("charge={charge_id}"))
        .await;
    assert_eq!(again.error_code(), "charge_already_refunded");
    assert_eq!(
        again.body["error"]["message"],
        format!("Charge {charge_id} has already been refunded.")
    );
    let listed = server
        .get(&format!("/v1/refunds?payment_intent={intent}"))
        .await
        .ok();
    let amounts: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["amount"])
        .collect();
    assert_eq!(amounts, [1500, 500]);
    let expanded = server
        .get(&format!("/v1/charges/{charge_id}?expand[]=refunds"))
        .await
        .ok();
    assert_eq!(expanded["refunds"]["data"].as_array().unwrap().len(), 2);
    let types = server.event_types("limit=4").await;
    assert_eq!(
        types,
        [
            "refund.created",
            "charge.refunded",
            "refund.created",
            "charge.refunded"
        ]
    );
    // Update (metadata) and the charge's own refund routes.
    let path = format!("/v1/charges/{charge_id}/refunds/{}", id(&first));
    let updated = server.post(&path, "metadata[order]=8").await.ok();
    assert_eq!(updated["metadata"]["order"], "8");
    assert_eq!(server.get(&path).await.ok()["metadata"]["order"], "8");
    let canceled = server
        .post(&format!("/v1/refunds/{}/cancel", id(&first)), "")
        .await;
    assert_eq!(canceled.status, StatusCode::BAD_REQUEST);
    assert_eq!(canceled.error_code(), "refund_cancel_invalid_status");
}

async fn bad_refund_requests_get_stripes_errors(server: TestServer) {
    let (intent, charge_id) = paid(&server, "pm_card_visa", 1000).await;
    let cases = [
        ("", StatusCode::BAD_REQUEST, "", ""),
        (
            &*format!("charge={charge_id}&payment_intent={intent}"),
            StatusCode::BAD_REQUEST,
            "parameters_exclusive",
            "",
        ),
        (
            &*format!("charge={charge_id}&amount=0"),
            StatusCode::BAD_REQUEST,
            "",
            "amount",
        ),
        (
            &*format!("charge={charge_id}&amount=1001"),
            StatusCode::BAD_REQUEST,
            "amount_too_large",
            "amount",
        ),
        (
            &*format!("charge={charge_id}&reason=because"),
            StatusCode::BAD_REQUEST,
            "",
            "reason",
        ),
        (
            &*format!("charge={charge_id}&refund_application_fee=true"),
            StatusCode::BAD_REQUEST,
            "",
            "refund_application_fee",
        ),
        (
            "charge=ch_missing",
            StatusCode::NOT_FOUND,
            "resource_missing",
            "charge",
        ),
    ];
    server.expect_errors("/v1/refunds", &cases).await;
    let over = server
        .post("/v1/refunds", &format!("charge={charge_id}&amount=1001"))
        .await;
    assert_eq!(
        over.body["error"]["message"],
        "Refund amount ($10.01) is greater than charge amount ($10.00)."
    );
    assert_eq!(charge(&server, &charge_id).await["amount_refunded"], 0);
}

async fn asynchronous_refunds_settle_later(server: TestServer) {
    // Amazon Pay: pending, then succeeded.
    let customer = id(&server.post("/v1/customers", "").await.ok());
    let pm = common::amazon_pay_with_mandate(&server, &customer).await;
    let intent = server
        .post(
            "/v1/payment_intents",
            &format!("amount=3000&currency=usd&customer={customer}&payment_method={pm}&payment_method_types[]=amazon_pay&confirm=true&off_session=true"),
        )
        .await
        .ok();
    assert_eq!(intent["status"], "succeeded", "{intent}");
    let refund = server
        .post("/v1/refunds", &format!("payment_intent={}", id(&intent)))
        .await
        .ok();
    assert_eq!(refund["status"], "pending");
    assert_eq!(refund["destination_details"]["type"], "amazon_pay");
    let settled = wait_for(&server, &id(&refund), "succeeded").await;
    assert_eq!(settled["amount"], 3000);
    // The pending-refund card: the same; the refund-fail card: failed
    // later, and the charge no longer counts it refunded.
    let (_, pending_charge) = paid(&server, "pm_card_pendingRefund", 1200).await;
    let pending = server
        .post("/v1/refunds", &format!("charge={pending_charge}"))
        .await
        .ok();
    assert_eq!(pending["status"], "pending");
    wait_for(&server, &id(&pending), "succeeded").await;
    let (_, failing_charge) = paid(&server, "pm_card_refundFail", 1300).await;
    let failing = server
        .post(
            "/v1/refunds",
            &format!("charge={failing_charge}&amount=300"),
        )
        .await
        .ok();
    assert_eq!(failing["status"], "succeeded");
    let failed = wait_for(&server, &id(&failing), "failed").await;
    assert_eq!(failed["failure_reason"], "expired_or_canceled_card");
    assert_eq!(charge(&server, &failing_charge).await["amount_refunded"], 0);
    let updates = server
        .get("/v1/events?type=refund.updated&limit=10")
        .await
        .ok();
    assert_eq!(updates["data"].as_array().unwrap().len(), 3);
    let legacy = server
        .get("/v1/events?type=charge.refund.updated&limit=10")
        .await
        .ok();
    assert_eq!(legacy["data"].as_array().unwrap().len(), 3);
}

/// Two refunds of the last remaining amount at once: exactly one succeeds.
async fn racing_refunds_of_the_last_amount(server: TestServer) {
    let (_, charge_id) = paid(&server, "pm_card_visa", 1000).await;
    server
        .post("/v1/refunds", &format!("charge={charge_id}&amount=400"))
        .await
        .ok();
    let body = format!("charge={charge_id}&amount=600");
    let (a, b) = tokio::join!(
        server.post("/v1/refunds", &body),
        server.post("/v1/refunds", &body)
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{} / {}",
        a.body,
        b.body
    );
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert_eq!(
        loser.error_code(),
        "charge_already_refunded",
        "{}",
        loser.body
    );
    let after = charge(&server, &charge_id).await;
    assert_eq!(after["amount_refunded"], 1000);
    let refunds = server
        .get(&format!("/v1/refunds?charge={charge_id}"))
        .await
        .ok();
    assert_eq!(refunds["data"].as_array().unwrap().len(), 2);
}

/// Refunding a subscription invoice's payment leaves the invoice paid.
async fn refunding_an_invoice_payment_leaves_it_paid(server: TestServer) {
    let customer = id(&server.post("/v1/customers", "").await.ok());
    let sub = server
        .subscribe_with_card(&customer, "pm_card_visa", 1500)
        .await;
    let invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    let charges = server
        .get(&format!("/v1/charges?customer={customer}"))
        .await
        .ok();
    let charge_id = id(&charges["data"][0]);
    let refund = server
        .post("/v1/refunds", &format!("charge={charge_id}"))
        .await
        .ok();
    assert_eq!(refund["status"], "succeeded");
    let invoice = server.get(&format!("/v1/invoices/{invoice}")).await.ok();
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 1500);
}

crate::backend_tests!(
    partial_refunds_up_to_the_captured_amount,
    bad_refund_requests_get_stripes_errors,
    asynchronous_refunds_settle_later,
    racing_refunds_of_the_last_amount,
    refunding_an_invoice_payment_leaves_it_paid,
);
