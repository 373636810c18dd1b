//! The billing cycle on test clocks, over HTTP: renewals and their event
//! order, failed renewals and the end of dunning, incomplete expiry,
//! trials, scheduled cancellation, send_invoice due dates, a year of
//! Amazon Pay renewals, and advances surviving a restart and running in
//! two processes at once.
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, TestServer, id};

pub(crate) const DAY: i64 = 86_400;
pub(crate) const HOUR: i64 = 3600;
/// 2026-01-01 00:00:00 UTC.
pub(crate) const T0: i64 = 1_767_225_600;

pub(crate) async fn new_clock(server: &TestServer, frozen: i64) -> String {
    let clock = server
        .post(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={frozen}"),
        )
        .await
        .ok();
    id(&clock)
}

/// Advances `clock` to `to` and waits until it is ready again.
pub(crate) async fn advance(server: &TestServer, clock: &str, to: i64) -> Value {
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    let started = server
        .post(&format!("{path}/advance"), &format!("frozen_time={to}"))
        .await
        .ok();
    assert_eq!(started["status"], "advancing", "{started}");
    wait_ready(server, clock).await
}

pub(crate) async fn wait_ready(server: &TestServer, clock: &str) -> Value {
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    let started = Instant::now();
    loop {
        let now = server.get(&path).await.ok();
        if now["status"] != "advancing" {
            assert_eq!(now["status"], "ready", "{now}");
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still advancing: {now}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A customer on `clock` whose invoices are charged to a copy of `card`.
pub(crate) async fn clock_customer(server: &TestServer, clock: &str, card: &str) -> String {
    let customer = server
        .post(
            "/v1/customers",
            &format!("test_clock={clock}&payment_method={card}&invoice_settings[default_payment_method]={card}"),
        )
        .await
        .ok();
    id(&customer)
}

/// A fresh copy of test card `card` attached to `customer`: its id.
async fn attach(server: &TestServer, customer: &str, card: &str) -> String {
    let path = format!("/v1/payment_methods/{card}/attach");
    id(&server
        .post(&path, &format!("customer={customer}"))
        .await
        .ok())
}

pub(crate) async fn monthly_price(server: &TestServer, amount: i64) -> String {
    let price = server
        .post(
            "/v1/prices",
            &format!("currency=usd&unit_amount={amount}&recurring[interval]=month&product_data[name]=Plan"),
        )
        .await
        .ok();
    id(&price)
}

pub(crate) async fn subscribe(
    server: &TestServer,
    customer: &str,
    price: &str,
    extra: &str,
) -> Value {
    server
        .post(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={price}{extra}"),
        )
        .await
        .ok()
}

/// The subscription's invoices, oldest first.
pub(crate) async fn invoices_of(server: &TestServer, sub: &str) -> Vec<Value> {
    let list = server
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .ok();
    let mut all = list["data"].as_array().unwrap().clone();
    all.reverse();
    all
}

pub(crate) async fn subscription(server: &TestServer, sub: &str) -> Value {
    server.get(&format!("/v1/subscriptions/{sub}")).await.ok()
}

pub(crate) fn period_end(sub: &Value) -> i64 {
    sub["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap()
}

/// Events newer than `after` (an event id, or all), oldest first, as
/// (type, created).
pub(crate) async fn events_since(server: &TestServer, after: Option<&str>) -> Vec<(String, i64)> {
    let query = match after {
        Some(id) => format!("limit=100&ending_before={id}"),
        None => "limit=100".to_owned(),
    };
    let events = server.get(&format!("/v1/events?{query}")).await.ok();
    let mut all: Vec<(String, i64)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["created"].as_i64().unwrap(),
            )
        })
        .collect();
    all.reverse();
    all
}

/// The PaymentIntent collecting an invoice.
async fn intent_of(server: &TestServer, invoice: &Value) -> Value {
    let expanded = server
        .get(&format!("/v1/invoices/{}?expand[]=payments", id(invoice)))
        .await
        .ok();
    let intent = expanded["payments"]["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .get(&format!("/v1/payment_intents/{intent}"))
        .await
        .ok()
}

async fn newest_event(server: &TestServer) -> String {
    let events = server.get("/v1/events?limit=1").await.ok();
    id(&events["data"][0])
}

async fn renewal_is_paid_an_hour_after_the_period_ends(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(&server, &customer, &price, "").await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["test_clock"], clock);
    assert_eq!(sub["created"], T0);
    let end = period_end(&sub);
    assert_eq!(common::utc(end), "2026-02-01 00:00:00 UTC");
    let on_clock = server
        .get(&format!("/v1/subscriptions?test_clock={clock}"))
        .await
        .ok();
    assert_eq!(on_clock["data"].as_array().unwrap().len(), 1);
    assert_eq!(on_clock["data"][0]["id"], sub["id"]);
    let elsewhere = server
        .get("/v1/subscriptions?test_clock=clock_other")
        .await
        .ok();
    assert_eq!(elsewhere["data"].as_array().unwrap().len(), 0);
    // As in Stripe, lists leave a clock's objects out unless asked for them.
    for path in ["/v1/customers", "/v1/subscriptions", "/v1/invoices"] {
        let all = server.get(path).await.ok();
        assert_eq!(all["data"].as_array().unwrap().len(), 0, "{path}: {all}");
    }
    let by_customer = server
        .get(&format!("/v1/invoices?customer={customer}"))
        .await
        .ok();
    assert_eq!(by_customer["data"].as_array().unwrap().len(), 1);
    let customers = server
        .get(&format!("/v1/customers?test_clock={clock}"))
        .await
        .ok();
    assert_eq!(customers["data"][0]["id"], customer.as_str());
    let before = newest_event(&server).await;
    // At the period's end: the next period, its invoice a draft.
    advance(&server, &clock, end).await;
    let sub_now = subscription(&server, &id(&sub)).await;
    assert_eq!(sub_now["items"]["data"][0]["current_period_start"], end);
    assert_eq!(common::utc(period_end(&sub_now)), "2026-03-01 00:00:00 UTC");
    let invoices = invoices_of(&server, &id(&sub)).await;
    assert_eq!(invoices.len(), 2);
    let renewal = &invoices[1];
    assert_eq!(renewal["billing_reason"], "subscription_cycle");
    assert_eq!(renewal["status"], "draft");
    assert_eq!(renewal["created"], end);
    assert_eq!(renewal["automatically_finalizes_at"], end + HOUR);
    assert_eq!(renewal["test_clock"], clock);
    assert_eq!(sub_now["latest_invoice"], renewal["id"]);
    // An hour later: finalized and paid.
    advance(&server, &clock, end + HOUR).await;
    let renewal = server
        .get(&format!("/v1/invoices/{}", id(renewal)))
        .await
        .ok();
    assert_eq!(renewal["status"], "paid", "{renewal}");
    assert_eq!(renewal["amount_paid"], 1500);
    assert_eq!(renewal["status_transitions"]["paid_at"], end + HOUR);
    assert!(renewal["automatically_finalizes_at"].is_null());
    let events = events_since(&server, Some(&before)).await;
    let billing: Vec<(&str, i64)> = events
        .iter()
        .filter(|(t, _)| !t.starts_with("test_helpers."))
        .map(|(t, c)| (t.as_str(), *c))
        .collect();
    assert_eq!(
        billing,
        [
            ("invoice.upcoming", end - 7 * DAY),
            ("customer.subscription.updated", end),
            ("invoice.created", end),
            ("invoice.finalized", end + HOUR),
            ("payment_intent.created", end + HOUR),
            ("charge.succeeded", end + HOUR),
            ("payment_intent.succeeded", end + HOUR),
            ("invoice_payment.paid", end + HOUR),
            ("invoice.paid", end + HOUR),
            ("invoice.payment_succeeded", end + HOUR),
        ]
    );
    // The clock's own events bracket each advance.
    let clock_events: Vec<&str> = events
        .iter()
        .filter(|(t, _)| t.starts_with("test_helpers."))
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(
        clock_events,
        [
            "test_helpers.test_clock.advancing",
            "test_helpers.test_clock.ready",
            "test_helpers.test_clock.advancing",
            "test_helpers.test_clock.ready"
        ]
    );
}

async fn failed_renewals_are_retried_then_the_subscription_ends(server: TestServer) {
    server
        .post(
            "/_config/billing",
            "retry_schedule=1,2&after_retries=unpaid",
        )
        .await
        .ok();
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 2000).await;
    let sub = subscribe(&server, &customer, &price, "").await;
    // The card fails from now on.
    let failing = attach(&server, &customer, "pm_card_chargeCustomerFail").await;
    server
        .post(
            &format!("/v1/customers/{customer}"),
            &format!("invoice_settings[default_payment_method]={failing}"),
        )
        .await
        .ok();
    let end = period_end(&sub);
    advance(&server, &clock, end + HOUR).await;
    let sub_now = subscription(&server, &id(&sub)).await;
    assert_eq!(sub_now["status"], "past_due");
    let renewal = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(renewal["status"], "open");
    assert_eq!(renewal["attempt_count"], 1);
    assert_eq!(renewal["next_payment_attempt"], end + HOUR + DAY);
    // The first retry a day later, the second two days after it.
    advance(&server, &clock, end + HOUR + DAY).await;
    let renewal = server
        .get(&format!("/v1/invoices/{}", id(&renewal)))
        .await
        .ok();
    assert_eq!(renewal["attempt_count"], 2);
    assert_eq!(renewal["next_payment_attempt"], end + HOUR + 3 * DAY);
    advance(&server, &clock, end + HOUR + 3 * DAY).await;
    let renewal = server
        .get(&format!("/v1/invoices/{}", id(&renewal)))
        .await
        .ok();
    assert_eq!(renewal["attempt_count"], 3);
    assert!(renewal["next_payment_attempt"].is_null());
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "unpaid");
    // An unpaid subscription's next invoice stays a draft.
    let next_end = period_end(&sub_now);
    advance(&server, &clock, next_end + 2 * HOUR).await;
    let next = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(next["status"], "draft");
    assert_eq!(next["auto_advance"], false);
    // Paying the open invoice with a working card brings it back.
    let visa = attach(&server, &customer, "pm_card_visa").await;
    let paid = server
        .post(
            &format!("/v1/invoices/{}/pay", id(&renewal)),
            &format!("payment_method={visa}"),
        )
        .await
        .ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "active");
}

async fn smart_retries_cancel_after_eight_tries(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_chargeCustomerFail").await;
    let price = monthly_price(&server, 1500).await;
    // A trial, so that the first charge is the one at its end.
    let sub = subscribe(&server, &customer, &price, "&trial_period_days=7").await;
    assert_eq!(sub["status"], "trialing");
    let trial_end = T0 + 7 * DAY;
    advance(&server, &clock, trial_end + HOUR).await;
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "past_due");
    let first = trial_end + HOUR;
    let mut attempts = vec![first];
    for days in [1, 3, 5, 7, 9, 11, 14] {
        attempts.push(first + days * DAY);
        advance(&server, &clock, first + days * DAY).await;
    }
    let renewal = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(renewal["attempt_count"], 8);
    assert!(renewal["next_payment_attempt"].is_null());
    let ended = subscription(&server, &id(&sub)).await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["cancellation_details"]["reason"], "payment_failed");
    assert_eq!(ended["canceled_at"], first + 14 * DAY);
    let failures = server
        .get("/v1/events?type=invoice.payment_failed&limit=100")
        .await
        .ok();
    let mut times: Vec<i64> = failures["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["created"].as_i64().unwrap())
        .collect();
    times.reverse();
    assert_eq!(times, attempts);
}

async fn incomplete_subscriptions_expire_after_23_hours(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_threeDSecure2Required").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(
        &server,
        &customer,
        &price,
        "&payment_behavior=allow_incomplete",
    )
    .await;
    assert_eq!(sub["status"], "incomplete");
    advance(&server, &clock, T0 + 22 * HOUR).await;
    assert_eq!(
        subscription(&server, &id(&sub)).await["status"],
        "incomplete"
    );
    advance(&server, &clock, T0 + DAY).await;
    let expired = subscription(&server, &id(&sub)).await;
    assert_eq!(expired["status"], "incomplete_expired");
    let first = invoices_of(&server, &id(&sub)).await.remove(0);
    assert_eq!(first["status"], "void");
    assert_eq!(first["status_transitions"]["voided_at"], T0 + 23 * HOUR);
}

async fn trials_warn_three_days_ahead_then_charge(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(&server, &customer, &price, "&trial_period_days=14").await;
    let trial_end = T0 + 14 * DAY;
    assert_eq!(sub["trial_end"], trial_end);
    advance(&server, &clock, T0 + 12 * DAY).await;
    let warned = server
        .get("/v1/events?type=customer.subscription.trial_will_end")
        .await
        .ok();
    assert_eq!(warned["data"].as_array().unwrap().len(), 1);
    assert_eq!(warned["data"][0]["created"], trial_end - 3 * DAY);
    advance(&server, &clock, trial_end + HOUR).await;
    let active = subscription(&server, &id(&sub)).await;
    assert_eq!(active["status"], "active");
    assert_eq!(
        active["items"]["data"][0]["current_period_start"],
        trial_end
    );
    let invoices = invoices_of(&server, &id(&sub)).await;
    assert_eq!(invoices.len(), 2);
    assert_eq!(invoices[0]["amount_due"], 0);
    assert_eq!(invoices[1]["billing_reason"], "subscription_cycle");
    assert_eq!(invoices[1]["status"], "paid");
    assert_eq!(invoices[1]["amount_paid"], 1500);
}

async fn trials_without_a_payment_method_pause_then_resume(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = server
        .post("/v1/customers", &format!("test_clock={clock}"))
        .await
        .ok();
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(
        &server,
        &id(&customer),
        &price,
        "&trial_period_days=7&trial_settings[end_behavior][missing_payment_method]=pause",
    )
    .await;
    assert_eq!(
        sub["trial_settings"]["end_behavior"]["missing_payment_method"],
        "pause"
    );
    advance(&server, &clock, T0 + 7 * DAY).await;
    let paused = subscription(&server, &id(&sub)).await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(invoices_of(&server, &id(&sub)).await.len(), 1);
    let types = server.event_types("limit=5").await;
    assert!(
        types.contains(&"customer.subscription.paused".to_owned()),
        "{types:?}"
    );
    // Resumed with a card: a new period from now, billed at once.
    let pm = attach(&server, &id(&customer), "pm_card_visa").await;
    server
        .post(
            &format!("/v1/subscriptions/{}", id(&sub)),
            &format!("default_payment_method={pm}"),
        )
        .await
        .ok();
    let resumed = server
        .post(&format!("/v1/subscriptions/{}/resume", id(&sub)), "")
        .await
        .ok();
    assert_eq!(resumed["status"], "active", "{resumed}");
    assert_eq!(
        resumed["items"]["data"][0]["current_period_start"],
        T0 + 7 * DAY
    );
    let last = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(last["status"], "paid");
    assert_eq!(last["amount_paid"], 1500);
}

async fn cancel_at_period_end_cancels_at_the_period_end(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(&server, &customer, &price, "").await;
    let end = period_end(&sub);
    let updated = server
        .post(
            &format!("/v1/subscriptions/{}", id(&sub)),
            "cancel_at_period_end=true",
        )
        .await
        .ok();
    assert_eq!(updated["cancel_at"], end);
    // Stripe's canceled_at: when the cancellation was requested.
    assert_eq!(updated["canceled_at"], T0);
    advance(&server, &clock, end + 2 * HOUR).await;
    let ended = subscription(&server, &id(&sub)).await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["canceled_at"], T0);
    assert_eq!(ended["ended_at"], end);
    assert_eq!(invoices_of(&server, &id(&sub)).await.len(), 1);
}

async fn send_invoice_renewals_fall_past_due_after_their_due_date(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(
        &server,
        &customer,
        &price,
        "&collection_method=send_invoice&days_until_due=7",
    )
    .await;
    assert_eq!(sub["status"], "active");
    let end = period_end(&sub);
    advance(&server, &clock, end + HOUR).await;
    let renewal = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(renewal["status"], "open");
    assert_eq!(renewal["due_date"], end + HOUR + 7 * DAY);
    assert!(renewal["next_payment_attempt"].is_null());
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "active");
    advance(&server, &clock, end + HOUR + 7 * DAY).await;
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "past_due");
}

/// Seed 000: a monthly subscription charged off-session on the saved
/// Amazon Pay mandate, renewing every month for a year.
async fn amazon_pay_subscription_renews_for_a_year(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = server
        .post("/v1/customers", &format!("test_clock={clock}"))
        .await
        .ok();
    let customer = id(&customer);
    let pm = common::amazon_pay_with_mandate(&server, &customer).await;
    server
        .post(
            &format!("/v1/customers/{customer}"),
            &format!("invoice_settings[default_payment_method]={pm}"),
        )
        .await
        .ok();
    let price = monthly_price(&server, 2500).await;
    let sub = subscribe(&server, &customer, &price, "&off_session=true").await;
    assert_eq!(sub["status"], "active", "{sub}");
    let mut now = T0;
    for month in 1..=12 {
        let end = period_end(&subscription(&server, &id(&sub)).await);
        assert!(end > now);
        now = end + HOUR;
        advance(&server, &clock, now).await;
        let invoices = invoices_of(&server, &id(&sub)).await;
        assert_eq!(invoices.len(), month + 1);
        let last = invoices.last().unwrap();
        assert_eq!(last["status"], "paid", "month {month}: {last}");
        assert_eq!(last["amount_paid"], 2500);
    }
    assert_eq!(common::utc(now), "2027-01-01 01:00:00 UTC");
    let charges = server
        .get(&format!("/v1/charges?customer={customer}&limit=100"))
        .await
        .ok();
    let charges = charges["data"].as_array().unwrap();
    assert_eq!(charges.len(), 13);
    assert!(
        charges
            .iter()
            .all(|c| c["payment_method_details"]["type"] == "amazon_pay")
    );
    // The buyer closes the recurring charge permission on Amazon: the next
    // renewal fails, and Amazon Pay is not retried.
    let close = format!("/_config/customers/{customer}/amazon_pay/close_charge_permission");
    server.post(&close, "").await.ok();
    let end = period_end(&subscription(&server, &id(&sub)).await);
    advance(&server, &clock, end + HOUR).await;
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "past_due");
    let failed = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(failed["status"], "open");
    assert_eq!(failed["attempt_count"], 1);
    assert!(failed["next_payment_attempt"].is_null());
    let intent = intent_of(&server, &failed).await;
    assert_eq!(
        intent["last_payment_error"]["code"],
        "payment_intent_mandate_invalid"
    );
    // A new SetupIntent through the authorization page recovers.
    let renewed = common::amazon_pay_with_mandate(&server, &customer).await;
    let pay = format!("/v1/invoices/{}/pay", id(&failed));
    let paid = server
        .post(&pay, &format!("payment_method={renewed}"))
        .await
        .ok();
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "active");
}

/// A renewal whose card needs authentication waits for the customer:
/// past due, its PaymentIntent `requires_action`, no retries; the customer
/// authenticating on the page pays it.
async fn renewals_needing_authentication_wait_for_the_customer(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(&server, &customer, &price, "").await;
    let card = attach(&server, &customer, "pm_card_authenticationRequired").await;
    server
        .post(
            &format!("/v1/subscriptions/{}", id(&sub)),
            &format!("default_payment_method={card}"),
        )
        .await
        .ok();
    let end = period_end(&sub);
    advance(&server, &clock, end + HOUR).await;
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "past_due");
    let renewal = invoices_of(&server, &id(&sub)).await.pop().unwrap();
    assert_eq!(renewal["status"], "open");
    assert!(renewal["next_payment_attempt"].is_null());
    let waiting = server
        .get("/v1/events?type=invoice.payment_action_required")
        .await
        .ok();
    assert_eq!(waiting["data"][0]["created"], end + HOUR);
    let intent = intent_of(&server, &renewal).await;
    assert_eq!(intent["status"], "requires_action");
    // No return_url (nobody was there when it was charged): the page
    // itself says it is done.
    let (status, _, _) = common::submit(&common::redirect_url(&intent), "authorize").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let paid = server
        .get(&format!("/v1/invoices/{}", id(&renewal)))
        .await
        .ok();
    assert_eq!(paid["status"], "paid");
    assert_eq!(subscription(&server, &id(&sub)).await["status"], "active");
}

/// Deleting a customer cancels its subscriptions, as Stripe does: nothing
/// of theirs renews afterwards.
async fn deleting_a_customer_cancels_its_subscriptions(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(&server, &customer, &price, "").await;
    let deleted = server
        .delete(&format!("/v1/customers/{customer}"))
        .await
        .ok();
    assert_eq!(deleted["deleted"], true);
    let canceled = subscription(&server, &id(&sub)).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["canceled_at"], T0);
    let types = server.event_types("limit=2").await;
    assert_eq!(types, ["customer.deleted", "customer.subscription.deleted"]);
    let ready = advance(&server, &clock, period_end(&sub) + HOUR).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(invoices_of(&server, &id(&sub)).await.len(), 1);
}

/// `cancel_at` in the middle of a period cancels then; trials without a
/// payment method end as `end_behavior` says: `cancel` cancels,
/// `create_invoice` (the default) invoices and falls past due.
async fn scheduled_ends_and_trials_without_a_payment_method(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = clock_customer(&server, &clock, "pm_card_visa").await;
    let price = monthly_price(&server, 1500).await;
    let sub = subscribe(
        &server,
        &customer,
        &price,
        &format!("&cancel_at={}", T0 + 10 * DAY),
    )
    .await;
    advance(&server, &clock, T0 + 10 * DAY).await;
    let ended = subscription(&server, &id(&sub)).await;
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], T0 + 10 * DAY);
    let bare = server
        .post("/v1/customers", &format!("test_clock={clock}"))
        .await
        .ok();
    let canceling = subscribe(
        &server,
        &id(&bare),
        &price,
        "&trial_period_days=3&trial_settings[end_behavior][missing_payment_method]=cancel",
    )
    .await;
    let invoicing = subscribe(&server, &id(&bare), &price, "&trial_period_days=3").await;
    advance(&server, &clock, T0 + 13 * DAY + HOUR).await;
    let canceled = subscription(&server, &id(&canceling)).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["canceled_at"], T0 + 13 * DAY);
    assert_eq!(invoices_of(&server, &id(&canceling)).await.len(), 1);
    assert_eq!(
        subscription(&server, &id(&invoicing)).await["status"],
        "past_due"
    );
    let open = invoices_of(&server, &id(&invoicing)).await.pop().unwrap();
    assert_eq!(open["status"], "open");
    assert_eq!(open["attempt_count"], 1);
    assert!(open["next_payment_attempt"].is_null());
}

/// A Checkout Session of a clock's customer expires on the clock's time.
async fn checkout_sessions_expire_on_their_customers_clock(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let customer = server
        .post("/v1/customers", &format!("test_clock={clock}"))
        .await
        .ok();
    let session = server
        .post(
            "/v1/checkout/sessions",
            &format!(
                "mode=setup&currency=usd&customer={}&success_url=https://shop.example/ok",
                id(&customer)
            ),
        )
        .await
        .ok();
    assert_eq!(session["created"], T0);
    assert_eq!(session["expires_at"], T0 + 24 * HOUR);
    let path = format!("/v1/checkout/sessions/{}", id(&session));
    advance(&server, &clock, T0 + 23 * HOUR).await;
    assert_eq!(server.get(&path).await.ok()["status"], "open");
    // Its hosted page is on the clock's time too: still open, a year
    // before real time.
    let page = common::browser()
        .get(session["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("has expired"), "{page}");
    advance(&server, &clock, T0 + 24 * HOUR).await;
    assert_eq!(server.get(&path).await.ok()["status"], "expired");
    let expired = server
        .get("/v1/events?type=checkout.session.expired")
        .await
        .ok();
    assert_eq!(expired["data"][0]["created"], T0 + 24 * HOUR);
}

crate::backend_tests!(
    amazon_pay_subscription_renews_for_a_year,
    checkout_sessions_expire_on_their_customers_clock,
    renewals_needing_authentication_wait_for_the_customer,
    deleting_a_customer_cancels_its_subscriptions,
    scheduled_ends_and_trials_without_a_payment_method,
    renewal_is_paid_an_hour_after_the_period_ends,
    failed_renewals_are_retried_then_the_subscription_ends,
    smart_retries_cancel_after_eight_tries,
    incomplete_subscriptions_expire_after_23_hours,
    trials_warn_three_days_ahead_then_charge,
    trials_without_a_payment_method_pause_then_resume,
    cancel_at_period_end_cancels_at_the_period_end,
    send_invoice_renewals_fall_past_due_after_their_due_date,
);
