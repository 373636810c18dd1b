//! Postgres: the store for real deployments and for several server
//! processes sharing one state. Nothing is cached in-process, so every
//! process sees every other one's writes at once.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::{
    Claim, Cursor, Delivery, DueItem, DueScope, FanOutPlan, Filter, IdempotencyRequest, ListQuery,
    Owner, Record, Store, StoreError, StoreResult, Write, existing_claim, literal, path_segments,
};

pub struct PostgresStore {
    pool: PgPool,
    /// Rows inserted by this process since it last refreshed the planner's
    /// statistics (see `note_inserts`).
    inserted_since_analyze: AtomicU64,
}

/// Test suites write bursts into fresh databases faster than autovacuum
/// notices; with stale statistics Postgres sorts a whole account's objects
/// to list ten of them. Re-analyzing every few thousand inserts keeps the
/// index-ordered plan.
const ANALYZE_EVERY_INSERTS: u64 = 2_000;

const STATEMENT_TIMEOUT_MS: &str = "5000";
/// How long a request waits for a free (or new) connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl PostgresStore {
    /// Connects and migrates. `schema`, when given, isolates this store in
    /// its own Postgres schema (created if missing): tests use one per test.
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<Self> {
        let mut options = PgConnectOptions::from_str(url)?;
        if let Some(schema) = schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&admin)
                .await?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        // A statement that runs this long is stuck (locks, a dying server):
        // it fails, and the request answers 503, instead of holding on.
        options = options.options([("statement_timeout", STATEMENT_TIMEOUT_MS)]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        // Several processes may start at once on one database: the advisory
        // lock sqlx takes makes migrations run once.
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Db(e.into()))?;
        Ok(Self {
            pool,
            inserted_since_analyze: AtomicU64::new(0),
        })
    }

    fn note_inserts(&self, count: u64) {
        let before = self
            .inserted_since_analyze
            .fetch_add(count, Ordering::Relaxed);
        if before / ANALYZE_EVERY_INSERTS != (before + count) / ANALYZE_EVERY_INSERTS {
            let pool = self.pool.clone();
            tokio::spawn(async move {
                if let Err(err) = sqlx::query("ANALYZE objects").execute(&pool).await {
                    tracing::warn!(%err, "refreshing statistics failed");
                }
            });
        }
    }
}

fn record_from_row(row: &PgRow) -> StoreResult<Record> {
    let data: String = row.try_get("data")?;
    Ok(Record {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        created: row.try_get("created")?,
        customer: row.try_get("customer")?,
        deleted: row.try_get("deleted")?,
        version: row.try_get("version")?,
        seq: row.try_get("seq")?,
        data: serde_json::from_str(&data)?,
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// JSON scalars compared as the text `#>>` yields.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const COLUMNS: &str = "seq, id, object, created, customer, deleted, version, data::text AS data";

/// Postgres text cannot hold NUL, so a value with one (`cus_%00abc` in a
/// URL) is refused by the database; no stored object can match it anyway.
fn unmatchable(text: &str) -> bool {
    text.contains('\0')
}

fn filter_unmatchable(filter: &Filter) -> bool {
    let value_unmatchable = |value: &Value| value.as_str().is_some_and(unmatchable);
    match filter {
        Filter::Customer(text)
        | Filter::FieldPrefix(_, text)
        | Filter::ArrayContains(_, text)
        | Filter::Folded(_, text) => unmatchable(text),
        // Any one value with a NUL would fail the whole query.
        Filter::Field(_, values) => values.iter().any(value_unmatchable),
        Filter::FieldRange(..) | Filter::Absent(_) => false,
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>> {
        if unmatchable(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE account = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        let ids: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !unmatchable(id))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE account = $1 AND id = ANY($2)"
        ))
        .bind(account)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn list_per_owner(
        &self,
        account: &str,
        object: &str,
        owner: Owner,
        owners: &[String],
        per_owner: i64,
    ) -> StoreResult<Vec<Record>> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let owner_column = match owner {
            Owner::Customer => "customer".to_owned(),
            Owner::Field(field) => format!("(data ->> '{}')", literal(field)),
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {owner_column} ORDER BY seq DESC) AS rank
             FROM objects WHERE account = $1 AND object = $2 AND NOT deleted AND {owner_column} = ANY($3)) ranked
             WHERE rank <= $4 ORDER BY seq DESC"
        ))
        .bind(account)
        .bind(object)
        .bind(owners)
        .bind(per_owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>> {
        if unmatchable(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT account, {COLUMNS} FROM objects WHERE id = $1 LIMIT 1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((row.try_get("account")?, record_from_row(&row)?))),
            None => Ok(None),
        }
    }

    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>> {
        if unmatchable(id) {
            return Ok(None);
        }
        Ok(
            sqlx::query_scalar("SELECT seq FROM objects WHERE account = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>> {
        if query.filters.iter().any(filter_unmatchable) {
            return Ok(Vec::new());
        }
        let mut sql: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM objects WHERE account = "));
        sql.push_bind(account)
            .push(" AND object = ")
            .push_bind(query.object);
        if !query.include_deleted {
            sql.push(" AND NOT deleted");
        }
        for filter in &query.filters {
            match filter {
                Filter::Customer(customer) => {
                    sql.push(" AND customer = ").push_bind(customer.clone());
                }
                Filter::Absent(path) => {
                    sql.push(" AND (data #>> ")
                        .push_bind(path_segments(path))
                        .push(") IS NULL");
                }
                Filter::Field(path, values) => {
                    sql.push(" AND (data #>> ")
                        .push_bind(path_segments(path))
                        .push(") = ANY(")
                        .push_bind(values.iter().map(as_text).collect::<Vec<_>>())
                        .push(")");
                }
                Filter::FieldPrefix(path, prefix) => {
                    sql.push(" AND starts_with(data #>> ")
                        .push_bind(path_segments(path))
                        .push(", ")
                        .push_bind(prefix.clone())
                        .push(")");
                }
                Filter::ArrayContains(path, value) => {
                    sql.push(" AND (data #> ")
                        .push_bind(path_segments(path))
                        .push(") @> jsonb_build_array(")
                        .push_bind(value.clone())
                        .push("::text)");
                }
                Filter::Folded(field, text) => {
                    // Written as the index is, so Postgres uses it.
                    sql.push(format!(" AND lower(data ->> '{}') = ", literal(field)))
                        .push_bind(text.clone());
                }
                Filter::FieldRange(path, range) => {
                    for (op, bound) in range.bounds() {
                        sql.push(" AND (data #>> ")
                            .push_bind(path_segments(path))
                            .push(format!(")::bigint {op} "))
                            .push_bind(bound);
                    }
                }
            }
        }
        let range = &query.created;
        for (op, bound) in [
            (">", range.gt),
            (">=", range.gte),
            ("<", range.lt),
            ("<=", range.lte),
        ] {
            if let Some(bound) = bound {
                sql.push(format!(" AND created {op} ")).push_bind(bound);
            }
        }
        match query.cursor {
            Cursor::Start => {
                sql.push(" ORDER BY seq DESC");
            }
            Cursor::After(seq) => {
                sql.push(" AND seq < ")
                    .push_bind(seq)
                    .push(" ORDER BY seq DESC");
            }
            Cursor::Before(seq) => {
                sql.push(" AND seq > ")
                    .push_bind(seq)
                    .push(" ORDER BY seq ASC");
            }
        }
        sql.push(" LIMIT ").push_bind(query.limit);
        let rows = sql.build().fetch_all(&self.pool).await?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        if matches!(query.cursor, Cursor::Before(_)) {
            records.reverse();
        }
        Ok(records)
    }

    async fn commit(&self, account: &str, writes: &[Write]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for write in writes {
            match write {
                Write::Insert(record) => {
                    let inserted = sqlx::query(
                        "INSERT INTO objects (account, id, object, created, customer, deleted, version, data) VALUES ($1, $2, $3, $4, $5, $6, 0, $7::jsonb)",
                    )
                    .bind(account)
                    .bind(&record.id)
                    .bind(&record.object)
                    .bind(record.created)
                    .bind(&record.customer)
                    .bind(record.deleted)
                    .bind(record.data.to_string())
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Err(err) if is_unique_violation(&err) => return Err(StoreError::Conflict),
                        other => other?,
                    };
                    if record.object == "event" {
                        sqlx::query(
                            "INSERT INTO webhook_outbox (account, event_id) VALUES ($1, $2)",
                        )
                        .bind(account)
                        .bind(&record.id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                Write::Update(record) => {
                    let done = sqlx::query(
                        "UPDATE objects SET customer = $1, deleted = $2, version = version + 1, data = $3::jsonb WHERE account = $4 AND id = $5 AND version = $6",
                    )
                    .bind(&record.customer)
                    .bind(record.deleted)
                    .bind(record.data.to_string())
                    .bind(account)
                    .bind(&record.id)
                    .bind(record.version)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict);
                    }
                }
                Write::Answer(answer) => {
                    let done = sqlx::query(
                        "UPDATE idempotency_keys SET status = $1, body = $2, locked_until = NULL
                         WHERE account = $3 AND key = $4 AND request_id = $5 AND status IS NULL",
                    )
                    .bind(i32::from(answer.status))
                    .bind(&answer.body)
                    .bind(&answer.account)
                    .bind(&answer.key)
                    .bind(&answer.request_id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(StoreError::ClaimLost);
                    }
                }
                Write::Schedule(_)
                | Write::Unschedule { .. }
                | Write::Done { .. }
                | Write::UnscheduleClock { .. }
                | Write::Purge(_) => super::postgres_due::apply(&mut tx, write).await?,
            }
        }
        tx.commit().await?;
        let inserts = writes
            .iter()
            .filter(|w| matches!(w, Write::Insert(_)))
            .count();
        self.note_inserts(inserts as u64);
        Ok(())
    }

    async fn claim_idempotency(&self, request: &IdempotencyRequest<'_>) -> StoreResult<Claim> {
        for _ in 0..3 {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (account, key, method_path, fingerprint, created, status, body, request_id, locked_until)
                 VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6, $7)
                 ON CONFLICT (account, key) DO UPDATE SET
                    method_path = excluded.method_path, fingerprint = excluded.fingerprint,
                    created = excluded.created, status = NULL, body = NULL,
                    request_id = excluded.request_id, locked_until = excluded.locked_until
                 WHERE idempotency_keys.created < $8
                    OR (idempotency_keys.status IS NULL
                        AND COALESCE(idempotency_keys.locked_until, 0) < $9)",
            )
            .bind(request.account)
            .bind(request.key)
            .bind(request.method_path)
            .bind(request.fingerprint)
            .bind(request.now)
            .bind(request.request_id)
            .bind(request.lease_until)
            .bind(request.expired_before)
            .bind(request.now_ms)
            .execute(&self.pool)
            .await?;
            if claimed.rows_affected() == 1 {
                return Ok(Claim::Claimed);
            }
            let row = sqlx::query(
                "SELECT method_path, fingerprint, status, body, request_id FROM idempotency_keys WHERE account = $1 AND key = $2",
            )
            .bind(request.account)
            .bind(request.key)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                continue; // released between the two statements: claim again
            };
            return Ok(existing_claim(
                request,
                row.try_get("method_path")?,
                row.try_get("fingerprint")?,
                row.try_get::<Option<i32>, _>("status")?.map(i64::from),
                row.try_get("body")?,
                row.try_get("request_id")?,
            ));
        }
        Ok(Claim::InProgress)
    }

    async fn renew_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
        lease_until: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET locked_until = $1 WHERE account = $2 AND key = $3 AND request_id = $4 AND status IS NULL",
        )
        .bind(lease_until)
        .bind(account)
        .bind(key)
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release_idempotency(
        &self,
        account: &str,
        key: &str,
        request_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE account = $1 AND key = $2 AND request_id = $3 AND status IS NULL",
        )
        .bind(account)
        .bind(key)
        .bind(request_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn wipe_account(&self, account: &str) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // The worker locks outbox rows, then the events they name: take the
        // tables in the same order, so a wipe waits instead of deadlocking.
        for table in [
            "webhook_outbox",
            "webhook_deliveries",
            "idempotency_keys",
            "due_items",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE account = $1"))
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        let removed = sqlx::query("DELETE FROM objects WHERE account = $1")
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    async fn fan_out(&self, limit: i64, plan: FanOutPlan<'_>) -> StoreResult<usize> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: another server's worker takes other events meanwhile.
        let taken: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, account, event_id FROM webhook_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut endpoints: std::collections::HashMap<String, Vec<Record>> = Default::default();
        for (seq, account, event_id) in &taken {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM objects WHERE account = $1 AND id = $2"
            ))
            .bind(account)
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(event) = row.as_ref().map(record_from_row).transpose()? {
                if !endpoints.contains_key(account) {
                    let rows = sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM objects WHERE account = $1 AND object = 'webhook_endpoint' AND NOT deleted ORDER BY seq"
                    ))
                    .bind(account)
                    .fetch_all(&mut *tx)
                    .await?;
                    let records = rows
                        .iter()
                        .map(record_from_row)
                        .collect::<StoreResult<_>>()?;
                    endpoints.insert(account.clone(), records);
                }
                let deliveries = plan(account, &event, &endpoints[account]);
                for delivery in &deliveries {
                    insert_delivery(&mut tx, delivery).await?;
                }
                sqlx::query(
                    "UPDATE objects SET data = jsonb_set(data, '{pending_webhooks}', to_jsonb($1::bigint)) WHERE account = $2 AND id = $3",
                )
                .bind(deliveries.len() as i64)
                .bind(account)
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM webhook_outbox WHERE seq = $1")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(taken.len())
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET locked_until = $2 WHERE seq IN (
                SELECT seq FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= $1
                  AND (locked_until IS NULL OR locked_until < $1)
                ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, delivery: &Delivery, succeeded: bool) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, locked_until = NULL, data = $3::jsonb WHERE id = $4",
        )
        .bind(&delivery.status)
        .bind(delivery.next_attempt_at)
        .bind(delivery.data.to_string())
        .bind(&delivery.id)
        .execute(&mut *tx)
        .await?;
        if succeeded {
            sqlx::query(
                "UPDATE objects SET data = jsonb_set(data, '{pending_webhooks}', to_jsonb(GREATEST(COALESCE((data->>'pending_webhooks')::bigint, 0) - 1, 0))) WHERE account = $1 AND id = $2",
            )
            .bind(&delivery.account)
            .bind(&delivery.event_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_deliveries(&self, account: &str, limit: i64) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE account = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(account)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn claim_due(
        &self,
        scope: DueScope<'_>,
        now: i64,
        lease_until: i64,
        claimer: &str,
        limit: i64,
    ) -> StoreResult<Vec<DueItem>> {
        super::postgres_due::claim(&self.pool, scope, now, lease_until, claimer, limit).await
    }

    async fn clock_has_due(&self, test_clock: &str, up_to: i64) -> StoreResult<bool> {
        super::postgres_due::clock_has_due(&self.pool, test_clock, up_to).await
    }
}

const DELIVERY_COLUMNS: &str =
    "id, account, event_id, status, next_attempt_at, created, data::text AS data";

fn delivery_from_row(row: &PgRow) -> StoreResult<Delivery> {
    let data: String = row.try_get("data")?;
    let data: Value = serde_json::from_str(&data)?;
    Ok(Delivery {
        id: row.try_get("id")?,
        account: row.try_get("account")?,
        event_id: row.try_get("event_id")?,
        status: row.try_get("status")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created: row.try_get("created")?,
        data,
    })
}

async fn insert_delivery(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    delivery: &Delivery,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, account, event_id, status, next_attempt_at, locked_until, created, data)
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7::jsonb)",
    )
    .bind(&delivery.id)
    .bind(&delivery.account)
    .bind(&delivery.event_id)
    .bind(&delivery.status)
    .bind(delivery.next_attempt_at)
    .bind(delivery.created)
    .bind(delivery.data.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
