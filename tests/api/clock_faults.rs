//! Test clock advances under faults and concurrency: a process killed in
//! the middle of an advance finishes it after a restart, every due item
//! once; two processes on one database advance two clocks at once.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::billing_cycle::{
    DAY, HOUR, T0, advance, clock_customer, events_since, invoices_of, monthly_price, new_clock,
    subscribe, wait_ready,
};
use crate::common::observed::{Observed, OnCommit};
use crate::common::{Backend, TestServer, Tune, id};
use serde_json::Value;
use stripe_twin::scheduler::SchedulerSettings;
use stripe_twin::store::{DueItem, Store, Write};
use stripe_twin::webhooks::WebhookSettings;

/// A short lease, so a killed server's claims run out within the test.
fn short_lease() -> Option<Tune> {
    Some(Box::new(|state: stripe_twin::AppState| {
        state.with_scheduler(SchedulerSettings {
            poll_interval: Duration::from_millis(100),
            lease: Duration::from_secs(1),
        })
    }))
}

/// A customer on a new clock with three monthly subscriptions, and the
/// subscriptions' ids (Stripe's limits lifted, to advance a year at once).
async fn three_subscriptions(server: &TestServer) -> (String, Vec<String>) {
    server
        .post("/_config/billing", "test_clock_limits=none")
        .await
        .ok();
    let clock = new_clock(server, T0).await;
    let customer = clock_customer(server, &clock, "pm_card_visa").await;
    let mut subs = Vec::new();
    for amount in [1000, 2000, 3000] {
        let price = monthly_price(server, amount).await;
        subs.push(id(&subscribe(server, &customer, &price, "").await));
    }
    (clock, subs)
}

/// Each subscription billed its first month and twelve renewals, each
/// paid once.
async fn assert_a_year_billed(server: &TestServer, subs: &[String]) {
    for sub in subs {
        let invoices = invoices_of(server, sub).await;
        assert_eq!(invoices.len(), 13, "{sub}");
        assert!(invoices.iter().all(|i| i["status"] == "paid"), "{sub}");
        assert!(invoices.iter().all(|i| i["attempt_count"] == 1), "{sub}");
    }
    let charges = server
        .get("/v1/events?type=charge.succeeded&limit=100")
        .await
        .ok();
    assert_eq!(charges["data"].as_array().unwrap().len(), 3 * 13);
}

/// The server dies as it commits the fifth renewal of an advance: the
/// clock stays `advancing`; the next server finishes the advance.
async fn a_killed_advance_finishes_after_restart(server: TestServer) {
    let (clock, subs) = three_subscriptions(&server).await;
    let renewals = Arc::new(AtomicUsize::new(0));
    let counted = renewals.clone();
    let hook = Box::new(move |writes: &[Write]| {
        let renewal = writes.iter().any(
            |w| matches!(w, Write::Done { id, .. } if id.starts_with("due_subscription_renewal_")),
        );
        if renewal && counted.fetch_add(1, Ordering::SeqCst) == 4 {
            OnCommit::StopBefore
        } else {
            OnCommit::Proceed
        }
    });
    let mut crashed = None;
    let crashing = server
        .halt()
        .await
        .start_wrapped_tuned(
            WebhookSettings::default(),
            |inner| {
                let observed = Observed::new(inner, Some(hook));
                crashed = Some(observed.stopped.clone());
                observed as Arc<dyn Store>
            },
            short_lease(),
        )
        .await;
    let target = T0 + 365 * DAY + 2 * HOUR;
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    let started = crashing
        .post(&format!("{path}/advance"), &format!("frozen_time={target}"))
        .await
        .ok();
    assert_eq!(started["status"], "advancing");
    tokio::time::timeout(Duration::from_secs(20), crashed.unwrap().notified())
        .await
        .expect("the advance reaches its fifth renewal");
    let restarted = crashing
        .kill()
        .await
        .start_wrapped_tuned(WebhookSettings::default(), |inner| inner, short_lease())
        .await;
    assert_eq!(restarted.get(&path).await.ok()["status"], "advancing");
    let ready = wait_ready(&restarted, &clock).await;
    assert_eq!(ready["frozen_time"], target);
    assert_eq!(renewals.load(Ordering::SeqCst), 5);
    assert_a_year_billed(&restarted, &subs).await;
}

/// Two server processes on one Postgres database, each advancing its own
/// clock at the same time: both finish, every item run once.
/// (Postgres only: a SQLite file has one writer, nothing runs side by side.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(twin_no_postgres, ignore = "set TEST_DATABASE_URL")]
async fn two_processes_advance_two_clocks() {
    let server = TestServer::start(Backend::Postgres)
        .await
        .expect("TEST_DATABASE_URL is set");
    let other = server.sibling().await;
    let (first, first_subs) = three_subscriptions(&server).await;
    let target = T0 + 365 * DAY + 2 * HOUR;
    let (second, second_subs) = three_subscriptions(&other).await;
    let (a, b) = tokio::join!(
        advance(&server, &first, target),
        advance(&other, &second, target)
    );
    assert_eq!(a["frozen_time"], target);
    assert_eq!(b["frozen_time"], target);
    for sub in first_subs.iter().chain(&second_subs) {
        let invoices = invoices_of(&server, sub).await;
        assert_eq!(invoices.len(), 13, "{sub}");
        assert!(invoices.iter().all(|i| i["status"] == "paid"), "{sub}");
    }
    let charges = server
        .get("/v1/events?type=charge.succeeded&limit=100")
        .await
        .ok();
    assert_eq!(charges["data"].as_array().unwrap().len(), 6 * 13);
    other.stop().await;
}

/// Everything an advance produces reaches `--forward-webhooks-to`, one
/// delivery at a time in the order of simulated time.
async fn an_advance_is_forwarded_in_simulated_time_order(server: TestServer) {
    let received: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let inbox = received.clone();
    let app = axum::Router::new().fallback(move |body: String| {
        let inbox = inbox.clone();
        async move {
            let event: Value = serde_json::from_str(&body).unwrap();
            let created = event["created"].as_i64().unwrap();
            inbox
                .lock()
                .unwrap()
                .push((event["type"].as_str().unwrap().to_owned(), created));
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let settings = WebhookSettings {
        forward_to: Some(url),
        concurrency: 1,
        poll_interval: Duration::from_millis(50),
        ..WebhookSettings::default()
    };
    let server = server.halt().await.start_with_webhooks(settings).await;
    let (clock, _) = three_subscriptions(&server).await;
    let target = T0 + 62 * DAY;
    advance(&server, &clock, target).await;
    let expected = events_since(&server, None).await;
    let started = std::time::Instant::now();
    while received.lock().unwrap().len() < expected.len() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not all delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(got, expected);
    // The advance's events (those on the clock's time after its start)
    // came in simulated time order.
    let billing: Vec<i64> = got
        .iter()
        .map(|(_, created)| *created)
        .filter(|created| *created > T0 && *created <= target)
        .collect();
    assert!(billing.len() > 20, "{got:?}");
    assert!(billing.windows(2).all(|w| w[0] <= w[1]), "{got:?}");
}

/// An item of the clock that cannot run (here: of a kind no handler
/// knows) leaves the clock `internal_failure`, which advances no more.
async fn a_failing_item_leaves_the_clock_in_internal_failure(server: TestServer) {
    let clock = new_clock(&server, T0).await;
    let account = stripe_twin::http::auth::account_of(crate::common::KEY);
    let item = DueItem {
        id: "due_broken".to_owned(),
        account,
        test_clock: Some(clock.clone()),
        due_at: (T0 + HOUR) * 1000,
        kind: "no_such_kind".to_owned(),
        target: String::new(),
        payload: serde_json::json!({}),
        claimed_by: None,
    };
    server
        .store
        .commit("", &[Write::Schedule(item)])
        .await
        .unwrap();
    let path = format!("/v1/test_helpers/test_clocks/{clock}");
    server
        .post(
            &format!("{path}/advance"),
            &format!("frozen_time={}", T0 + DAY),
        )
        .await
        .ok();
    let started = std::time::Instant::now();
    let failed = loop {
        let now = server.get(&path).await.ok();
        if now["status"] != "advancing" {
            break now;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed["status"], "internal_failure");
    assert_eq!(failed["frozen_time"], T0);
    let types = server.event_types("limit=1").await;
    assert_eq!(types, ["test_helpers.test_clock.internal_failure"]);
    let again = server
        .post(
            &format!("{path}/advance"),
            &format!("frozen_time={}", T0 + 2 * DAY),
        )
        .await;
    assert_eq!(
        again.status,
        reqwest::StatusCode::BAD_REQUEST,
        "{}",
        again.body
    );
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot advance again"),
        "{}",
        again.body
    );
}

crate::backend_tests!(
    a_failing_item_leaves_the_clock_in_internal_failure,
    a_killed_advance_finishes_after_restart,
    an_advance_is_forwarded_in_simulated_time_order,
);
