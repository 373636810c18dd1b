//! A store wrapper for tests: counts the calls made to the real store and
//! can make a commit stop the process (never return) before or after it
//! reaches the database, as a kill -9 at that moment would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use stripe_twin::store::{
    Claim, Delivery, DueItem, DueScope, FanOutPlan, IdempotencyRequest, ListQuery, Owner, Record,
    Store, StoreResult, Write,
};
use tokio::sync::Notify;

/// What a commit does, decided by the test's hook from its writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OnCommit {
    Proceed,
    /// The process stops before the transaction reaches the database.
    StopBefore,
    /// The transaction commits, then the process stops.
    StopAfter,
}

pub type CommitHook = Box<dyn Fn(&[Write]) -> OnCommit + Send + Sync>;

pub struct Observed {
    inner: Arc<dyn Store>,
    hook: Option<CommitHook>,
    calls: Mutex<HashMap<&'static str, usize>>,
    /// Notified when a commit stopped the process.
    pub stopped: Arc<Notify>,
}

impl Observed {
    pub fn new(inner: Arc<dyn Store>, hook: Option<CommitHook>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hook,
            calls: Mutex::new(HashMap::new()),
            stopped: Arc::new(Notify::new()),
        })
    }

    /// How many times each store method was called so far.
    pub fn calls(&self) -> HashMap<&'static str, usize> {
        self.calls.lock().unwrap().clone()
    }

    pub fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn note(&self, method: &'static str) {
        *self.calls.lock().unwrap().entry(method).or_default() += 1;
    }
}

#[async_trait]
impl Store for Observed {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>> {
        self.note("get");
        self.inner.get(account, id).await
    }
    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        self.note("get_many");
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
        self.note("list_per_owner");
        self.inner
            .list_per_owner(account, object, owner, owners, per_owner)
            .await
    }
    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>> {
        self.note("find");
        self.inner.find(id).await
    }
    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>> {
        self.note("position");
        self.inner.position(account, id).await
    }
    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>> {
        self.note("list");
        self.inner.list(account, query).await
    }
    async fn commit(&self, account: &str, writes: &[Write]) -> StoreResult<()> {
        self.note("commit");
        let action = self
            .hook
            .as_ref()
            .map_or(OnCommit::Proceed, |hook| hook(writes));
        if action == OnCommit::Proceed {
            return self.inner.commit(account, writes).await;
        }
        if action == OnCommit::StopAfter {
            self.inner.commit(account, writes).await?;
        }
        self.stopped.notify_one();
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
    async fn claim_due(
        &self,
        scope: DueScope<'_>,
        now: i64,
        lease_until: i64,
        claimer: &str,
        limit: i64,
    ) -> StoreResult<Vec<DueItem>> {
        self.inner
            .claim_due(scope, now, lease_until, claimer, limit)
            .await
    }
    async fn clock_has_due(&self, test_clock: &str, up_to: i64) -> StoreResult<bool> {
        self.inner.clock_has_due(test_clock, up_to).await
    }
}
