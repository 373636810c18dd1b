//! Crash tests for idempotent requests: a store wrapper makes the server
//! stop (its task aborted, as kill -9 would) at a chosen moment of a
//! request, then a new server on the same store gets the client's retry.
//! The retry must replay the first answer or run exactly once.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::observed::{Observed, OnCommit};
use common::{KEY, TestServer};
use reqwest::{Method, StatusCode};
use stripe_twin::store::{Store, Write};
use stripe_twin::webhooks::WebhookSettings;

backend_tests!(
    crash_after_the_commit_replays,
    crash_before_the_commit_runs_once
);

const BODY: &str = "email=crash%40example.com&description=crash+test";

/// Sends the first request into a server that stops at `moment` of the
/// first commit creating a customer, kills it, and starts a plain server
/// on the same store.
async fn crash_during_create(server: TestServer, moment: OnCommit) -> TestServer {
    let armed = AtomicBool::new(true);
    let hook = Box::new(move |writes: &[Write]| {
        let creates_customer = writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.object == "customer"));
        if creates_customer && armed.swap(false, Ordering::SeqCst) {
            moment
        } else {
            OnCommit::Proceed
        }
    });
    let mut stopped = None;
    let crashing = server
        .halt()
        .await
        .start_wrapped(WebhookSettings::default(), |inner| {
            let observed = Observed::new(inner, Some(hook));
            stopped = Some(observed.stopped.clone());
            observed as Arc<dyn Store>
        })
        .await;
    let stopped = stopped.unwrap();
    let url = crashing.url("/v1/customers");
    let first = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .bearer_auth(KEY)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("idempotency-key", "crash-key-1")
            .body(BODY)
            .send()
            .await
    });
    tokio::time::timeout(Duration::from_secs(10), stopped.notified())
        .await
        .expect("the request reaches the crash point");
    let restarted = crashing
        .kill()
        .await
        .start_with_webhooks(WebhookSettings::default())
        .await;
    let lost = first.await.expect("the client task");
    assert!(lost.is_err(), "the first request got no answer: {lost:?}");
    restarted
}

/// Retries until the key is free (a dead server's hold runs out within
/// seconds), failing after `limit`.
async fn retry(server: &TestServer, limit: Duration) -> common::Reply {
    let started = std::time::Instant::now();
    loop {
        let reply = server
            .call(
                Method::POST,
                "/v1/customers",
                Some(KEY),
                BODY,
                &[("idempotency-key", "crash-key-1")],
            )
            .await;
        if reply.status != StatusCode::CONFLICT {
            return reply;
        }
        assert_eq!(
            reply.error_code(),
            "idempotency_key_in_use",
            "{}",
            reply.body
        );
        assert!(
            started.elapsed() < limit,
            "the key is still held after {limit:?}: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn customers(server: &TestServer) -> Vec<String> {
    let list = server
        .get("/v1/customers?email=crash%40example.com")
        .await
        .ok();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::id)
        .collect()
}

async fn crash_after_the_commit_replays(server: TestServer) {
    let server = crash_during_create(server, OnCommit::StopAfter).await;
    // The answer committed with the customer: replayed at once.
    let reply = retry(&server, Duration::from_millis(1)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers["idempotent-replayed"], "true");
    let original = reply.headers["original-request"].to_str().unwrap();
    assert!(original.starts_with("req_"), "{original}");
    assert_ne!(original, reply.headers["request-id"].to_str().unwrap());
    assert_eq!(customers(&server).await, [reply.id()]);
    // Its created event was committed with it, once.
    let events = server.get("/v1/events?type=customer.created").await.ok();
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
    assert_eq!(events["data"][0]["request"]["id"], original);
    // Again: the same answer, byte for byte.
    let again = retry(&server, Duration::from_millis(1)).await;
    assert_eq!(again.body, reply.body);
    server.stop().await;
}

async fn crash_before_the_commit_runs_once(server: TestServer) {
    let server = crash_during_create(server, OnCommit::StopBefore).await;
    // Nothing was written; the dead server's hold runs out, then the
    // retry runs, once.
    let reply = retry(&server, Duration::from_secs(10)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.headers.get("idempotent-replayed").is_none());
    assert_eq!(customers(&server).await, [reply.id()]);
    let replay = retry(&server, Duration::from_millis(1)).await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, reply.body);
    assert_eq!(customers(&server).await, [reply.id()]);
    server.stop().await;
}
