//! Every store call within a time limit: a database that stops answering
//! (a network black hole, a locked file) turns into a prompt 503 instead of
//! requests that hang until the client gives up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Claim, Delivery, DueItem, DueScope, FanOutPlan, IdempotencyRequest, ListQuery, Owner, Record,
    Store, StoreError, StoreResult, Write,
};

/// How long any store call may take.
pub const CALL_LIMIT: Duration = Duration::from_secs(10);
/// How long `/healthz`'s ping may take.
pub const PING_LIMIT: Duration = Duration::from_secs(2);

pub struct Deadline {
    inner: Arc<dyn Store>,
}

impl Deadline {
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self { inner })
    }

    async fn within<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the {} store did not answer within {} s",
                self.inner.backend(),
                limit.as_secs()
            )))
        })
    }
}

#[async_trait]
impl Store for Deadline {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.within(PING_LIMIT, self.inner.ping()).await
    }
    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>> {
        self.within(CALL_LIMIT, self.inner.get(account, id)).await
    }
    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        self.within(CALL_LIMIT, self.inner.get_many(account, ids))
            .await
    }
    async fn list_per_owner(
        &self,
        account: &str,
        object: &str,
        owner: Owner,
        owners: &[String],
        per_owner: i64,
    ) -> StoreResult<Vec<Record>> {
        let call = self
            .inner
            .list_per_owner(account, object, owner, owners, per_owner);
        self.within(CALL_LIMIT, call).await
    }
    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>> {
        self.within(CALL_LIMIT, self.inner.find(id)).await
    }
    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>> {
        self.within(CALL_LIMIT, self.inner.position(account, id))
            .await
    }
    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>> {
        self.within(CALL_LIMIT, self.inner.list(account, query))
            .await
    }
    async fn commit(&self, account: &str, writes: &[Write]) -> StoreResult<()> {
        self.within(CALL_LIMIT, self.inner.commit(account, writes))
            .await
    }
    async fn claim_idempotency(&self, request: &IdempotencyRequest<'_>) -> StoreResult<Claim> {
        self.within(CALL_LIMIT, self.inner.claim_idempotency(request))
            .await
    }
    async fn renew_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
        lease_until: i64,
    ) -> StoreResult<()> {
        let call = self
            .inner
            .renew_idempotency(account, key, request_id, lease_until);
        self.within(CALL_LIMIT, call).await
    }
    async fn release_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
    ) -> StoreResult<()> {
        let call = self.inner.release_idempotency(account, key, request_id);
        self.within(CALL_LIMIT, call).await
    }
    async fn wipe_account(&self, account: &str) -> StoreResult<u64> {
        self.within(CALL_LIMIT, self.inner.wipe_account(account))
            .await
    }
    async fn fan_out(&self, limit: i64, plan: FanOutPlan<'_>) -> StoreResult<usize> {
        self.within(CALL_LIMIT, self.inner.fan_out(limit, plan))
            .await
    }
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.within(
            CALL_LIMIT,
            self.inner.claim_deliveries(now, lease_until, limit),
        )
        .await
    }
    async fn record_attempt(&self, delivery: &Delivery, succeeded: bool) -> StoreResult<()> {
        self.within(CALL_LIMIT, self.inner.record_attempt(delivery, succeeded))
            .await
    }
    async fn list_deliveries(&self, account: &str, limit: i64) -> StoreResult<Vec<Delivery>> {
        self.within(CALL_LIMIT, self.inner.list_deliveries(account, limit))
            .await
    }
    async fn claim_due(
        &self,
        scope: DueScope<'_>,
        now: i64,
        lease_until: i64,
        claimer: &str,
        limit: i64,
    ) -> StoreResult<Vec<DueItem>> {
        let call = self
            .inner
            .claim_due(scope, now, lease_until, claimer, limit);
        self.within(CALL_LIMIT, call).await
    }
    async fn clock_has_due(&self, test_clock: &str, up_to: i64) -> StoreResult<bool> {
        self.within(CALL_LIMIT, self.inner.clock_has_due(test_clock, up_to))
            .await
    }
}
