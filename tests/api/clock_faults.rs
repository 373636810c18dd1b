//! Test clock advances under faults and concurrency: a process killed in
//! the middle of an advance finishes it after a restart, every due item
//! once; two processes on one database advance two clocks at once.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::billing_cycle::{
    DAY, HOUR, T0, advance, clock_customer, invoices_of, monthly_price, new_clock, subscribe,
    wait_ready,
};
use crate::common::observed::{Observed, OnCommit};
use crate::common::{Backend, TestServer, Tune, id};
use stripe_twin::scheduler::SchedulerSettings;
use stripe_twin::store::{Store, Write};
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

crate::backend_tests!(a_killed_advance_finishes_after_restart);
