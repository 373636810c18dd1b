//! The scheduler: due items run at their time whether or not anyone reads
//! the objects, at start-up when they fell due while no server ran, again
//! after a crash mid-run (once), and once with several servers on one
//! store. Checkout Session expiry is the item these tests schedule.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::observed::{Observed, OnCommit};
use common::{TestServer, Tune, id};
use serde_json::json;
use stripe_twin::clock::{wall as now, wall_ms as now_ms};
use stripe_twin::resources::checkout::sessions as checkout_sessions;
use stripe_twin::resources::payments::balance_transactions;
use stripe_twin::scheduler::{self, SchedulerSettings};
use stripe_twin::store::{DueScope, Record, Store, Write};
use stripe_twin::webhooks::{self, WebhookSettings};

backend_tests!(
    past_due_item_runs_at_start_up,
    item_due_soon_runs_at_its_time,
    crash_while_running_runs_again_once,
    several_servers_run_each_item_once,
    periodic_sweep_purges_and_comes_back,
    balance_transaction_becomes_available_at_its_time,
);

async fn create_session(server: &TestServer) -> String {
    let body = "mode=setup&currency=usd&success_url=https%3A%2F%2Fexample.com%2Fok";
    id(&server.post("/v1/checkout/sessions", body).await.ok())
}

/// Moves a session's `expires_at` (unix seconds) and its expiry item there.
async fn expire_at(store: &dyn Store, session_id: &str, at: i64) {
    let (account, record) = store.find(session_id).await.unwrap().expect("stored");
    let mut doc = record.data.clone();
    doc["expires_at"] = json!(at);
    let item = checkout_sessions::expiry_item_for(&account, None, &doc);
    let writes = [
        Write::Update(record.with_data(doc)),
        Write::Unschedule {
            id: item.id.clone(),
        },
        Write::Schedule(item),
    ];
    store.commit(&account, &writes).await.unwrap();
}

/// The sessions named by `checkout.session.expired` events, with how many
/// events each got: read from /v1/events, never from the sessions.
async fn expired_events(server: &TestServer) -> HashMap<String, usize> {
    let events = server
        .get("/v1/events?type=checkout.session.expired&limit=100")
        .await
        .ok();
    let mut seen = HashMap::new();
    for event in events["data"].as_array().unwrap() {
        let session = event["data"]["object"]["id"].as_str().unwrap().to_owned();
        *seen.entry(session).or_default() += 1;
    }
    seen
}

/// Waits until `expected` sessions have their expiry event (or 10 s).
async fn until_expired(server: &TestServer, expected: usize) -> HashMap<String, usize> {
    let started = Instant::now();
    loop {
        let seen = expired_events(server).await;
        if seen.len() >= expected || started.elapsed() > Duration::from_secs(10) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A short lease, so a crashed server's claim runs out within the test.
fn short_lease() -> Option<Tune> {
    Some(Box::new(|state: stripe_twin::AppState| {
        state.with_scheduler(SchedulerSettings {
            poll_interval: Duration::from_millis(100),
            lease: Duration::from_secs(1),
        })
    }))
}

/// An item that fell due while no server ran runs when one starts.
async fn past_due_item_runs_at_start_up(server: TestServer) {
    let session = create_session(&server).await;
    let store = server.store.clone();
    let stopped = server.halt().await;
    expire_at(store.as_ref(), &session, now() - 60).await;
    drop(store);
    let server = stopped
        .start_with_webhooks(WebhookSettings::default())
        .await;
    let seen = until_expired(&server, 1).await;
    assert_eq!(seen.get(&session), Some(&1), "{seen:?}");
    let stored = server
        .get(&format!("/v1/checkout/sessions/{session}"))
        .await;
    assert_eq!(stored.ok()["status"], "expired");
}

/// An item runs at its time, not before, without anyone reading the session.
async fn item_due_soon_runs_at_its_time(server: TestServer) {
    let session = create_session(&server).await;
    let due = now() + 1;
    expire_at(server.store.as_ref(), &session, due).await;
    assert!(expired_events(&server).await.is_empty());
    let seen = until_expired(&server, 1).await;
    assert!(now_ms() >= due * 1000, "ran before its time");
    assert_eq!(seen.get(&session), Some(&1), "{seen:?}");
    let events = server
        .get("/v1/events?type=checkout.session.expired")
        .await
        .ok();
    assert_eq!(events["data"][0]["data"]["object"]["status"], "expired");
    assert!(events["data"][0]["request"]["id"].is_null());
    let stored = server
        .get(&format!("/v1/checkout/sessions/{session}"))
        .await;
    assert_eq!(stored.ok()["status"], "expired");
}

/// A server that dies after claiming an item, before committing what
/// running it changed: the next server runs it, once.
async fn crash_while_running_runs_again_once(server: TestServer) {
    let session = create_session(&server).await;
    let store = server.store.clone();
    let stopped = server.halt().await;
    expire_at(store.as_ref(), &session, now() - 1).await;
    drop(store);
    let item_id = format!("due_expire_{session}");
    let armed = AtomicBool::new(true);
    let hook = Box::new(move |writes: &[Write]| {
        let finishes = writes
            .iter()
            .any(|w| matches!(w, Write::Done { id, .. } if *id == item_id));
        if finishes && armed.swap(false, Ordering::SeqCst) {
            OnCommit::StopBefore
        } else {
            OnCommit::Proceed
        }
    });
    let mut crashed = None;
    let crashing = stopped
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
    tokio::time::timeout(Duration::from_secs(10), crashed.unwrap().notified())
        .await
        .expect("the scheduler reaches the item's commit");
    assert!(expired_events(&crashing).await.is_empty());
    let restarted = crashing
        .kill()
        .await
        .start_wrapped_tuned(WebhookSettings::default(), |inner| inner, short_lease())
        .await;
    let seen = until_expired(&restarted, 1).await;
    assert_eq!(seen.get(&session), Some(&1), "{seen:?}");
    // Past another lease and several polls: still once.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(expired_events(&restarted).await.get(&session), Some(&1));
}

/// Two servers on one store: each item runs once, whichever claims it.
async fn several_servers_run_each_item_once(server: TestServer) {
    let sibling = server
        .sibling_with_webhooks(WebhookSettings::default())
        .await;
    let mut sessions = Vec::new();
    for _ in 0..12 {
        sessions.push(create_session(&server).await);
    }
    for session in &sessions {
        expire_at(server.store.as_ref(), session, now() - 1).await;
    }
    let seen = until_expired(&server, sessions.len()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let again = expired_events(&sibling).await;
    assert_eq!(seen, again, "items ran again");
    for session in &sessions {
        assert_eq!(again.get(session), Some(&1), "{again:?}");
    }
    sibling.stop().await;
}

/// The events sweep exists once per store; it forgets events past their
/// retention and schedules its next run.
async fn periodic_sweep_purges_and_comes_back(server: TestServer) {
    let sibling = server
        .sibling_with_webhooks(WebhookSettings::default())
        .await;
    // The start-up runs of the sweeps (due at once) are over within a few
    // polls: the run below is the one this test schedules.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let old = Record::new(
        "event",
        json!({"id": "evt_old_one", "object": "event", "created": now() - webhooks::EVENT_RETENTION - 60, "type": "customer.created", "data": {"object": {}}}),
    );
    let account = "acct_sweep";
    server
        .store
        .commit(account, &[Write::Insert(old)])
        .await
        .unwrap();
    // Its next run (an hour away) moved to now.
    let item = scheduler::periodic_item(webhooks::RETENTION_KIND, now_ms());
    let writes = [
        Write::Unschedule {
            id: item.id.clone(),
        },
        Write::Schedule(item.clone()),
    ];
    server.store.commit("", &writes).await.unwrap();
    let started = Instant::now();
    while server
        .store
        .get(account, "evt_old_one")
        .await
        .unwrap()
        .is_some()
    {
        assert!(started.elapsed() < Duration::from_secs(10), "not purged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything scheduled, seen by claiming as from two hours on (again
    // while a worker holds an item a moment: the claims expire at once).
    let later = now_ms() + 2 * 3600 * 1000;
    let started = Instant::now();
    let all = loop {
        let all = server
            .store
            .claim_due(DueScope::Wall, later, later - 1, "test", 1000)
            .await
            .unwrap();
        let mut sweeps: Vec<&str> = all
            .iter()
            .filter(|i| i.kind.starts_with("sweep_"))
            .map(|i| i.id.as_str())
            .collect();
        sweeps.sort();
        if sweeps == ["due_sweep_events", "due_sweep_idempotency_keys"] {
            break all;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let next = all.iter().find(|i| i.id == item.id).unwrap();
    assert!(next.due_at > now_ms() + 3000 * 1000, "{next:?}");
    sibling.stop().await;
}

/// A charge's balance transaction is `pending` until its `available_on`,
/// when the scheduler makes it `available`: nobody has to read it.
async fn balance_transaction_becomes_available_at_its_time(server: TestServer) {
    let body = "amount=1500&currency=usd&payment_method=pm_card_visa&confirm=true&payment_method_types[]=card";
    let intent = server.post("/v1/payment_intents", body).await.ok();
    let charge = intent["latest_charge"].as_str().unwrap();
    let charge = server.get(&format!("/v1/charges/{charge}")).await.ok();
    let bt_id = charge["balance_transaction"].as_str().unwrap().to_owned();
    let path = format!("/v1/balance_transactions/{bt_id}");
    let pending = server.get(&path).await.ok();
    assert_eq!(pending["status"], "pending");
    assert!(pending["available_on"].as_i64().unwrap() > now() + 24 * 3600);
    // Bring its due item to now, as if two days had passed.
    let (account, record) = server.store.find(&bt_id).await.unwrap().expect("stored");
    let mut item = balance_transactions::available_item_for(&account, None, &record);
    assert_eq!(
        item.due_at,
        pending["available_on"].as_i64().unwrap() * 1000
    );
    item.due_at = now_ms();
    let writes = [
        Write::Unschedule {
            id: item.id.clone(),
        },
        Write::Schedule(item),
    ];
    server.store.commit(&account, &writes).await.unwrap();
    let started = Instant::now();
    loop {
        let seen = server.get(&path).await.ok();
        if seen["status"] == "available" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
