//! Crash tests for idempotent requests: a store wrapper makes the server
//! stop (its task aborted, as kill -9 would) at a chosen moment of a
//! request, then a new server on the same store gets the client's retry.
//! The retry must replay the first answer or run exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{KEY, TestServer};
use reqwest::{Method, StatusCode};
use stripe_twin::store::{
    Claim, Delivery, FanOutPlan, IdempotencyRequest, ListQuery, Owner, Record, Store, StoreResult,
    Write,
};
use stripe_twin::webhooks::WebhookSettings;
use tokio::sync::Notify;

backend_tests!(
    crash_after_the_commit_replays,
    crash_before_the_commit_runs_once
);

#[derive(Clone, Copy, PartialEq)]
enum Moment {
    /// The transaction that writes the customer committed; nothing after.
    AfterCommit,
    /// The transaction never reaches the database.
    BeforeCommit,
}

/// The real store, except that the first commit creating a customer
/// stops the process at `moment`: that call never returns.
struct CrashingStore {
    inner: Arc<dyn Store>,
    moment: Moment,
    armed: AtomicBool,
    reached: Arc<Notify>,
}

#[async_trait]
impl Store for CrashingStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>> {
        self.inner.get(account, id).await
    }
    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        self.inner.get_many(account, ids).await
    }
    async fn list_per_owner(
        &self,
        account: &str,
        object: &str,
        owner: Owner,
        owners: &[String],
        per_owner: i64,
    ) -> StoreResult<Vec<Record>> {
        self.inner
            .list_per_owner(account, object, owner, owners, per_owner)
            .await
    }
    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>> {
        self.inner.find(id).await
    }
    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>> {
        self.inner.position(account, id).await
    }
    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>> {
        self.inner.list(account, query).await
    }
    async fn commit(&self, account: &str, writes: &[Write]) -> StoreResult<()> {
        let creates_customer = writes
            .iter()
            .any(|w| matches!(w, Write::Insert(r) if r.object == "customer"));
        if !(creates_customer && self.armed.swap(false, Ordering::SeqCst)) {
            return self.inner.commit(account, writes).await;
        }
        if self.moment == Moment::AfterCommit {
            self.inner.commit(account, writes).await?;
        }
        self.reached.notify_one();
        // The process is gone: nothing of this request happens any more.
        std::future::pending().await
    }
    async fn claim_idempotency(&self, request: &IdempotencyRequest<'_>) -> StoreResult<Claim> {
        self.inner.claim_idempotency(request).await
    }
    async fn renew_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
        lease_until: i64,
    ) -> StoreResult<()> {
        self.inner
            .renew_idempotency(account, key, request_id, lease_until)
            .await
    }
    async fn release_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
    ) -> StoreResult<()> {
        self.inner
            .release_idempotency(account, key, request_id)
            .await
    }
    async fn wipe_account(&self, account: &str) -> StoreResult<u64> {
        self.inner.wipe_account(account).await
    }
    async fn fan_out(&self, limit: i64, plan: FanOutPlan<'_>) -> StoreResult<usize> {
        self.inner.fan_out(limit, plan).await
    }
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.inner.claim_deliveries(now, lease_until, limit).await
    }
    async fn record_attempt(&self, delivery: &Delivery, succeeded: bool) -> StoreResult<()> {
        self.inner.record_attempt(delivery, succeeded).await
    }
    async fn list_deliveries(&self, account: &str, limit: i64) -> StoreResult<Vec<Delivery>> {
        self.inner.list_deliveries(account, limit).await
    }
    async fn purge_events(&self, before: i64) -> StoreResult<u64> {
        self.inner.purge_events(before).await
    }
}

const BODY: &str = "email=crash%40example.com&description=crash+test";

/// Sends the first request into a server that stops at `moment`, kills
/// it, and starts a plain server on the same store.
async fn crash_during_create(server: TestServer, moment: Moment) -> TestServer {
    let reached = Arc::new(Notify::new());
    let signal = reached.clone();
    let crashing = server
        .halt()
        .await
        .start_wrapped(WebhookSettings::default(), move |inner| {
            Arc::new(CrashingStore {
                inner,
                moment,
                armed: AtomicBool::new(true),
                reached: signal,
            })
        })
        .await;
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
    tokio::time::timeout(Duration::from_secs(10), reached.notified())
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
    let server = crash_during_create(server, Moment::AfterCommit).await;
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
    let server = crash_during_create(server, Moment::BeforeCommit).await;
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
