//! Test clocks over HTTP: create (and its checks), retrieve, list,
//! delete (with its customers), advance (and Stripe's limits), customers
//! on a clock's time, the limits lifted through `/_config/billing`, and
//! changes refused while a clock advances.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_twin::store::Write;

use crate::billing_cycle::wait_ready;
use crate::common::{Reply, TestServer, id, utc};

const DAY: i64 = 86_400;
/// 2026-01-01 00:00:00 UTC.
const T0: i64 = 1_767_225_600;
/// 2028-01-01 00:00:00 UTC: two years after T0, the furthest one advance
/// of a clock without subscriptions reaches.
const T0_PLUS_TWO_YEARS: i64 = 1_830_297_600;
const CLOCKS: &str = "/v1/test_helpers/test_clocks";

backend_tests!(
    create_checks_its_params,
    create_attaches_an_existing_customer,
    retrieve_and_list_with_pagination,
    delete_deletes_its_customers,
    advance_runs_until_ready,
    advance_is_limited_to_two_years_without_subscriptions,
    clock_customers_live_on_its_time,
    customer_limit_and_lifted_limits,
    billing_settings_round_trip,
    missing_clock_on_customer_create,
    changes_are_refused_while_advancing,
);

async fn new_clock(server: &TestServer, frozen: i64) -> Value {
    server
        .post(CLOCKS, &format!("frozen_time={frozen}"))
        .await
        .ok()
}

async fn clock_customer(server: &TestServer, clock: &str) -> Reply {
    server
        .post("/v1/customers", &format!("test_clock={clock}"))
        .await
}

/// The events of the account, oldest first.
async fn events(server: &TestServer) -> Vec<Value> {
    let list = server.get("/v1/events?limit=100").await.ok();
    let mut all = list["data"].as_array().unwrap().clone();
    all.reverse();
    all
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(id).collect()
}

async fn create_checks_its_params(server: TestServer) {
    let missing = server.post(CLOCKS, "name=No+time").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.error_code(), "parameter_missing");
    assert_eq!(missing.error_param(), "frozen_time");
    assert_eq!(
        missing.body["error"]["message"],
        "Missing required param: frozen_time."
    );

    let long = "a".repeat(301);
    let refused = server
        .post(CLOCKS, &format!("frozen_time={T0}&name={long}"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "name");
    assert_eq!(
        refused.body["error"]["message"],
        format!(
            "Invalid string: {}...; must be at most 300 characters",
            &long[..20]
        )
    );
    let longest = "a".repeat(300);
    let clock = server
        .post(CLOCKS, &format!("frozen_time={T0}&name={longest}"))
        .await
        .ok();
    assert_eq!(clock["name"], longest.as_str());

    let clock_id = id(&clock);
    assert!(clock_id.starts_with("clock_"), "{clock_id}");
    let created = clock["created"].as_i64().unwrap();
    assert_eq!(
        clock,
        json!({
            "id": clock_id,
            "object": "test_helpers.test_clock",
            "created": created,
            "deletes_after": created + 30 * DAY,
            "frozen_time": T0,
            "livemode": false,
            "name": longest,
            "status": "ready",
            "status_details": {},
        })
    );
    // Only the one that was valid exists.
    let list = server.get(CLOCKS).await.ok();
    assert_eq!(ids(&list), vec![clock_id]);
}

async fn create_attaches_an_existing_customer(server: TestServer) {
    let customer = server.post("/v1/customers", "name=Jenny").await.ok();
    let customer = id(&customer);
    let clock = server
        .post(CLOCKS, &format!("frozen_time={T0}&customer={customer}"))
        .await
        .ok();
    let clock = id(&clock);
    let moved = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(moved["test_clock"], clock.as_str());
    assert_eq!(moved["name"], "Jenny");
    let listed = server
        .get(&format!("/v1/customers?test_clock={clock}"))
        .await
        .ok();
    assert_eq!(ids(&listed), vec![customer.clone()]);
    let updated = events(&server)
        .await
        .into_iter()
        .find(|e| e["type"] == "customer.updated")
        .expect("customer.updated");
    assert_eq!(updated["data"]["object"]["test_clock"], clock.as_str());
    assert_eq!(
        updated["data"]["previous_attributes"],
        json!({"test_clock": null})
    );

    // A customer cannot leave its clock for another.
    let refused = server
        .post(CLOCKS, &format!("frozen_time={T0}&customer={customer}"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "customer");
    assert_eq!(
        refused.body["error"]["message"],
        format!(
            "The customer {customer} already belongs to the test clock {clock}, and a customer cannot leave its test clock."
        )
    );
    let unknown = server
        .post(CLOCKS, &format!("frozen_time={T0}&customer=cus_missing"))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert_eq!(unknown.error_code(), "resource_missing");
    assert_eq!(unknown.error_param(), "customer");
    // Neither refused create made a clock.
    let list = server.get(CLOCKS).await.ok();
    assert_eq!(ids(&list), vec![clock]);
}

async fn retrieve_and_list_with_pagination(server: TestServer) {
    let mut made = Vec::new();
    for n in 0..3 {
        made.push(id(&new_clock(&server, T0 + n).await));
    }
    let one = server.get(&format!("{CLOCKS}/{}", made[1])).await.ok();
    assert_eq!(one["id"], made[1].as_str());
    assert_eq!(one["frozen_time"], T0 + 1);
    assert_eq!(one["status"], "ready");

    let first = server.get(&format!("{CLOCKS}?limit=2")).await.ok();
    assert_eq!(first["object"], "list");
    assert_eq!(first["url"], CLOCKS);
    assert_eq!(first["has_more"], true);
    assert_eq!(ids(&first), vec![made[2].clone(), made[1].clone()]);
    let rest = server
        .get(&format!("{CLOCKS}?limit=2&starting_after={}", made[1]))
        .await
        .ok();
    assert_eq!(rest["has_more"], false);
    assert_eq!(ids(&rest), vec![made[0].clone()]);
    let back = server
        .get(&format!("{CLOCKS}?limit=1&ending_before={}", made[0]))
        .await
        .ok();
    assert_eq!(ids(&back), vec![made[1].clone()]);
    assert_eq!(back["has_more"], true);

    let missing = server.get(&format!("{CLOCKS}/clock_nope")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    assert_eq!(missing.error_code(), "resource_missing");
    assert_eq!(
        missing.body["error"]["message"],
        "No such billingclock: 'clock_nope'"
    );
}

async fn delete_deletes_its_customers(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    let on_clock = id(&clock_customer(&server, &clock).await.ok());
    let other = id(&server.post("/v1/customers", "").await.ok());
    let attached_clock = server
        .post(CLOCKS, &format!("frozen_time={T0}&customer={other}"))
        .await
        .ok();
    let attached_clock = id(&attached_clock);

    let deleted = server.delete(&format!("{CLOCKS}/{clock}")).await.ok();
    assert_eq!(
        deleted,
        json!({"id": clock, "object": "test_helpers.test_clock", "deleted": true})
    );
    let gone = server.get(&format!("{CLOCKS}/{clock}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    assert_eq!(gone.error_code(), "resource_missing");
    assert_eq!(
        gone.body["error"]["message"],
        format!("No such billingclock: '{clock}'")
    );
    let again = server.delete(&format!("{CLOCKS}/{clock}")).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);

    let customer = server.get(&format!("/v1/customers/{on_clock}")).await.ok();
    assert_eq!(
        customer,
        json!({"id": on_clock, "object": "customer", "deleted": true})
    );
    // The other clock and its customer are untouched.
    let kept = server.get(&format!("/v1/customers/{other}")).await.ok();
    assert_eq!(kept["test_clock"], attached_clock.as_str());
    assert_eq!(kept.get("deleted"), None);
    let clocks = server.get(CLOCKS).await.ok();
    assert_eq!(ids(&clocks), vec![attached_clock]);

    let all = events(&server).await;
    let tail: Vec<(&str, &str)> = all
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["data"]["object"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tail,
        vec![
            ("customer.deleted", on_clock.as_str()),
            ("test_helpers.test_clock.deleted", clock.as_str()),
        ]
    );
}

async fn advance_runs_until_ready(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    let target = T0 + DAY;
    let started = server
        .post(
            &format!("{CLOCKS}/{clock}/advance"),
            &format!("frozen_time={target}"),
        )
        .await
        .ok();
    assert_eq!(started["status"], "advancing");
    assert_eq!(started["frozen_time"], T0);
    assert_eq!(
        started["status_details"],
        json!({"advancing": {"target_frozen_time": target}})
    );
    let ready = wait_ready(&server, &clock).await;
    assert_eq!(ready["frozen_time"], target);
    assert_eq!(ready["status_details"], json!({}));

    let seen: Vec<(String, Value)> = events(&server)
        .await
        .into_iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["data"]["object"]["frozen_time"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("test_helpers.test_clock.created".to_owned(), json!(T0)),
            ("test_helpers.test_clock.advancing".to_owned(), json!(T0)),
            ("test_helpers.test_clock.ready".to_owned(), json!(target)),
        ]
    );

    // Only forward.
    for to in [target, target - 1] {
        let refused = server
            .post(
                &format!("{CLOCKS}/{clock}/advance"),
                &format!("frozen_time={to}"),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.error_param(), "frozen_time");
        assert_eq!(
            refused.body["error"]["message"],
            format!(
                "The frozen time of this clock is {target} ({}). You can only advance it to a later time; {to} ({}) is not after it.",
                utc(target),
                utc(to)
            )
        );
    }
    let missing = server.post(&format!("{CLOCKS}/{clock}/advance"), "").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.error_code(), "parameter_missing");
    assert_eq!(missing.error_param(), "frozen_time");
}

async fn advance_is_limited_to_two_years_without_subscriptions(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    let advance = format!("{CLOCKS}/{clock}/advance");
    let too_far = T0_PLUS_TWO_YEARS + 1;
    let refused = server
        .post(&advance, &format!("frozen_time={too_far}"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "frozen_time");
    let message = refused.body["error"]["message"].as_str().unwrap();
    let expected = format!(
        "The frozen time of this clock is {T0} (2026-01-01 00:00:00 UTC). You can only advance it up to {T0_PLUS_TWO_YEARS} (2028-01-01 00:00:00 UTC). "
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        message.ends_with("If the test clock has no subscriptions or subscription schedules, you can advance up to 2 years from the current frozen time."),
        "{message}"
    );
    let unchanged = server.get(&format!("{CLOCKS}/{clock}")).await.ok();
    assert_eq!(unchanged["status"], "ready");
    assert_eq!(unchanged["frozen_time"], T0);

    // Exactly two years is allowed.
    server
        .post(&advance, &format!("frozen_time={T0_PLUS_TWO_YEARS}"))
        .await
        .ok();
    let ready = wait_ready(&server, &clock).await;
    assert_eq!(ready["frozen_time"], T0_PLUS_TWO_YEARS);

    // Without Stripe's limits, five years at once.
    server
        .post("/_config/billing", "test_clock_limits=none")
        .await
        .ok();
    let five_years = T0_PLUS_TWO_YEARS + 5 * 365 * DAY;
    let started = server
        .post(&advance, &format!("frozen_time={five_years}"))
        .await
        .ok();
    assert_eq!(started["status"], "advancing");
    let ready = wait_ready(&server, &clock).await;
    assert_eq!(ready["frozen_time"], five_years);
}

async fn clock_customers_live_on_its_time(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    let customer = clock_customer(&server, &clock).await.ok();
    let customer_id = id(&customer);
    assert_eq!(customer["created"], T0);
    assert_eq!(customer["test_clock"], clock.as_str());
    let again = server
        .get(&format!("/v1/customers/{customer_id}"))
        .await
        .ok();
    assert_eq!(again["created"], T0);
    assert_eq!(again["test_clock"], clock.as_str());

    // Its event carries the clock's time, and is listed all the same.
    let listed = server.get("/v1/events?type=customer.created").await.ok();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    assert_eq!(data[0]["created"], T0);
    assert_eq!(data[0]["data"]["object"]["id"], customer_id.as_str());
    let event = server
        .get(&format!("/v1/events/{}", id(&data[0])))
        .await
        .ok();
    assert_eq!(event["created"], T0);
    // The clock's own event is on real time.
    let created = events(&server).await[0].clone();
    assert_eq!(created["type"], "test_helpers.test_clock.created");
    assert!(created["created"].as_i64().unwrap() > T0 + 100 * DAY);

    // A customer not on the clock is on real time.
    let plain = server.post("/v1/customers", "").await.ok();
    assert!(plain["created"].as_i64().unwrap() > T0 + 100 * DAY);
    assert_eq!(plain["test_clock"], Value::Null);
}

async fn customer_limit_and_lifted_limits(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    for _ in 0..3 {
        clock_customer(&server, &clock).await.ok();
    }
    let refused = clock_customer(&server, &clock).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "test_clock");
    assert_eq!(
        refused.body["error"]["message"],
        format!(
            "The test clock {clock} already has the maximum of 3 customers. Stripe limits each test clock to 3 customers."
        )
    );
    let listed = server
        .get(&format!("/v1/customers?test_clock={clock}"))
        .await
        .ok();
    assert_eq!(ids(&listed).len(), 3);

    let lifted = server
        .post("/_config/billing", "test_clock_limits=none")
        .await
        .ok();
    assert_eq!(lifted["test_clock_limits"], "none");
    let fourth = clock_customer(&server, &clock).await.ok();
    assert_eq!(fourth["test_clock"], clock.as_str());
    assert_eq!(fourth["created"], T0);
    let listed = server
        .get(&format!("/v1/customers?test_clock={clock}"))
        .await
        .ok();
    assert_eq!(ids(&listed).len(), 4);

    // Back to Stripe's limits: a fifth is refused again.
    server
        .post("/_config/billing", "test_clock_limits=stripe")
        .await
        .ok();
    let refused = clock_customer(&server, &clock).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_param(), "test_clock");
}

async fn billing_settings_round_trip(server: TestServer) {
    let defaults = json!({
        "object": "twin.billing_settings",
        "retry_schedule": "smart",
        "after_retries": "cancel",
        "incomplete_expires_after_hours": 23,
        "upcoming_renewal_days": 7,
        "test_clock_limits": "stripe",
    });
    assert_eq!(server.get("/_config/billing").await.ok(), defaults);
    let changed = json!({
        "object": "twin.billing_settings",
        "retry_schedule": "3,5,7",
        "after_retries": "unpaid",
        "incomplete_expires_after_hours": 48,
        "upcoming_renewal_days": 0,
        "test_clock_limits": "none",
    });
    let answer = server
        .post(
            "/_config/billing",
            "retry_schedule=3%2C5%2C7&after_retries=unpaid&incomplete_expires_after_hours=48&upcoming_renewal_days=0&test_clock_limits=none",
        )
        .await
        .ok();
    assert_eq!(answer, changed);
    assert_eq!(server.get("/_config/billing").await.ok(), changed);
    // Only what a request names changes.
    let partial = server
        .post(
            "/_config/billing",
            "retry_schedule=none&after_retries=past_due",
        )
        .await
        .ok();
    assert_eq!(partial["retry_schedule"], "none");
    assert_eq!(partial["after_retries"], "past_due");
    assert_eq!(partial["incomplete_expires_after_hours"], 48);

    refuses_bad_billing_settings(&server).await;
    // The refused requests changed nothing.
    let after = server.get("/_config/billing").await.ok();
    assert_eq!(after["retry_schedule"], "none");
    assert_eq!(after["after_retries"], "past_due");
    assert_eq!(after["incomplete_expires_after_hours"], 48);
    assert_eq!(after["upcoming_renewal_days"], 0);
    assert_eq!(after["test_clock_limits"], "none");
}

/// Each bad value of `/_config/billing` answers 400 naming its field.
async fn refuses_bad_billing_settings(server: &TestServer) {
    server
        .expect_errors(
            "/_config/billing",
            &[
                (
                    "retry_schedule=soon",
                    StatusCode::BAD_REQUEST,
                    "",
                    "retry_schedule",
                ),
                (
                    "retry_schedule=1%2C2%2C3%2C4",
                    StatusCode::BAD_REQUEST,
                    "",
                    "retry_schedule",
                ),
                (
                    "retry_schedule=0",
                    StatusCode::BAD_REQUEST,
                    "",
                    "retry_schedule",
                ),
                (
                    "after_retries=never",
                    StatusCode::BAD_REQUEST,
                    "",
                    "after_retries",
                ),
                (
                    "incomplete_expires_after_hours=0",
                    StatusCode::BAD_REQUEST,
                    "",
                    "incomplete_expires_after_hours",
                ),
                (
                    "incomplete_expires_after_hours=721",
                    StatusCode::BAD_REQUEST,
                    "",
                    "incomplete_expires_after_hours",
                ),
                (
                    "upcoming_renewal_days=61",
                    StatusCode::BAD_REQUEST,
                    "",
                    "upcoming_renewal_days",
                ),
                (
                    "upcoming_renewal_days=-1",
                    StatusCode::BAD_REQUEST,
                    "",
                    "upcoming_renewal_days",
                ),
                (
                    "test_clock_limits=maybe",
                    StatusCode::BAD_REQUEST,
                    "",
                    "test_clock_limits",
                ),
                (
                    "surprise=1",
                    StatusCode::BAD_REQUEST,
                    "parameter_unknown",
                    "surprise",
                ),
            ],
        )
        .await;
}

async fn missing_clock_on_customer_create(server: TestServer) {
    let refused = clock_customer(&server, "clock_missing").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_code(), "resource_missing");
    assert_eq!(refused.error_param(), "test_clock");
    assert_eq!(
        refused.body["error"]["message"],
        "No such billingclock: 'clock_missing'"
    );
    let customers = server.get("/v1/customers").await.ok();
    assert_eq!(customers["data"], json!([]));
}

/// Writes the clock's status as an advance leaves it while it runs (no
/// advance is scheduled, so it stays so until `set_status` again).
async fn set_status(server: &TestServer, clock: &str, status: &str) {
    let (account, record) = server.store.find(clock).await.unwrap().expect("stored");
    let mut doc = record.data.clone();
    doc["status"] = json!(status);
    doc["status_details"] = match status {
        "advancing" => json!({"advancing": {"target_frozen_time": T0 + DAY}}),
        _ => json!({}),
    };
    server
        .store
        .commit(&account, &[Write::Update(record.with_data(doc))])
        .await
        .unwrap();
}

async fn changes_are_refused_while_advancing(server: TestServer) {
    let clock = id(&new_clock(&server, T0).await);
    let customer = id(&clock_customer(&server, &clock).await.ok());
    set_status(&server, &clock, "advancing").await;
    let message = format!(
        "The test clock {clock} is advancing. Wait until its status is `ready` before changing objects that belong to it."
    );
    let expect_refused = |reply: Reply| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.error_code(), "test_clock_advancing", "{}", reply.body);
        assert_eq!(reply.body["error"]["message"], message.as_str());
    };
    expect_refused(
        server
            .post(&format!("/v1/customers/{customer}"), "name=Changed")
            .await,
    );
    expect_refused(clock_customer(&server, &clock).await);
    expect_refused(
        server
            .post(
                &format!("{CLOCKS}/{clock}/advance"),
                &format!("frozen_time={}", T0 + 2 * DAY),
            )
            .await,
    );
    expect_refused(server.delete(&format!("{CLOCKS}/{clock}")).await);
    // Reading is fine.
    let seen = server.get(&format!("/v1/customers/{customer}")).await.ok();
    assert_eq!(seen["name"], Value::Null);
    let seen = server.get(&format!("{CLOCKS}/{clock}")).await.ok();
    assert_eq!(seen["status"], "advancing");

    set_status(&server, &clock, "ready").await;
    let changed = server
        .post(&format!("/v1/customers/{customer}"), "name=Changed")
        .await
        .ok();
    assert_eq!(changed["name"], "Changed");
}
