//! The embedded default: one SQLite file (or memory) per server.
//!
//! Writes go through a single connection so they queue in-process instead of
//! spinning on SQLite's busy lock; reads use a pool (WAL lets them run beside
//! the writer).

use std::os::unix::fs::MetadataExt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    Claim, Cursor, Delivery, DueItem, DueScope, FanOutPlan, Filter, IdempotencyRequest, ListQuery,
    Owner, Record, Store, StoreError, StoreResult, Write, existing_claim, literal,
};

pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    /// The file and its identity at start-up: one deleted or replaced under
    /// a running server must not take writes that vanish at restart.
    file: Option<FileIdentity>,
}

struct FileIdentity {
    path: String,
    device: u64,
    inode: u64,
}

impl FileIdentity {
    fn of(path: &str) -> StoreResult<Self> {
        let meta = std::fs::metadata(path).map_err(|e| {
            StoreError::Unavailable(format!("the SQLite file {path} cannot be read: {e}"))
        })?;
        Ok(Self {
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    fn check(&self) -> StoreResult<()> {
        let path = &self.path;
        match std::fs::metadata(path) {
            Ok(meta) if meta.dev() == self.device && meta.ino() == self.inode => Ok(()),
            Ok(_) => Err(StoreError::Unavailable(format!(
                "the SQLite file {path} was replaced while the server runs; restart stripe-twin to use the new one"
            ))),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the SQLite file {path} was deleted while the server runs; restart stripe-twin to start a new one"
            ))),
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path` and migrates it.
    pub async fn open_file(path: &str) -> StoreResult<Self> {
        Self::open_writable(path).await.map_err(|err| match err {
            StoreError::Db(sqlx::Error::Database(db)) if is_read_only(db.code().as_deref()) => {
                read_only(path)
            }
            other => other,
        })
    }

    async fn open_writable(path: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(false);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(8))
            .connect_with(options.clone())
            .await?;
        probe_writable(&writer).await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&writer)
            .await
            .map_err(|e| StoreError::Db(e.into()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            reader,
            writer,
            file: Some(FileIdentity::of(path)?),
        })
    }

    /// Fails when the file is gone or another one took its place.
    fn check_file(&self) -> StoreResult<()> {
        self.file.as_ref().map_or(Ok(()), FileIdentity::check)
    }

    /// A throwaway store that lives as long as the server.
    pub async fn open_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection that never closes: a memory database dies with it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Db(e.into()))?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            file: None,
        })
    }
}

/// SQLITE_READONLY and its extended codes (a read-only file, directory,
/// or database moved away).
fn is_read_only(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 8)
}

fn read_only(path: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "the SQLite file {path} is read-only: stripe-twin must be able to write it and its directory (check their permissions, or choose another --db-path)"
    ))
}

/// SQLite opens a file it may not write read-only, silently: find out now,
/// not at the first write.
async fn probe_writable(writer: &SqlitePool) -> StoreResult<()> {
    let mut tx = writer.begin().await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS store_probe (at INTEGER)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO store_probe (at) VALUES (1)")
        .execute(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(())
}

fn json_path(path: &str) -> String {
    format!("$.{path}")
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Record> {
    let data: String = row.try_get("data")?;
    Ok(Record {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        created: row.try_get("created")?,
        customer: row.try_get("customer")?,
        deleted: row.try_get::<i64, _>("deleted")? != 0,
        version: row.try_get("version")?,
        seq: row.try_get("seq")?,
        data: serde_json::from_str(&data)?,
    })
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

const COLUMNS: &str = "seq, id, object, created, customer, deleted, version, data";

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        self.check_file()?;
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn get(&self, account: &str, id: &str) -> StoreResult<Option<Record>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM objects WHERE account = ? AND id = ?"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn get_many(&self, account: &str, ids: &[String]) -> StoreResult<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM objects WHERE account = "));
        sql.push_bind(account).push(" AND id IN (");
        let mut list = sql.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        sql.push(")");
        let rows = sql.build().fetch_all(&self.reader).await?;
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
            Owner::Field(field) => format!("json_extract(data, '{}')", json_path(literal(field))),
        };
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {COLUMNS} FROM (SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY {owner_column} ORDER BY seq DESC) AS rank
             FROM objects WHERE account = "
        ));
        sql.push_bind(account)
            .push(" AND object = ")
            .push_bind(object.to_owned())
            .push(format!(" AND deleted = 0 AND {owner_column} IN ("));
        let mut list = sql.separated(", ");
        for id in owners {
            list.push_bind(id.clone());
        }
        sql.push(")) WHERE rank <= ")
            .push_bind(per_owner)
            .push(" ORDER BY seq DESC");
        let rows = sql.build().fetch_all(&self.reader).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn find(&self, id: &str) -> StoreResult<Option<(String, Record)>> {
        let row = sqlx::query(&format!(
            "SELECT account, {COLUMNS} FROM objects WHERE id = ? LIMIT 1"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(Some((row.try_get("account")?, record_from_row(&row)?))),
            None => Ok(None),
        }
    }

    async fn position(&self, account: &str, id: &str) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM objects WHERE account = ? AND id = ?")
                .bind(account)
                .bind(id)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn list(&self, account: &str, query: &ListQuery) -> StoreResult<Vec<Record>> {
        let mut sql: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM objects WHERE account = "));
        sql.push_bind(account)
            .push(" AND object = ")
            .push_bind(query.object);
        if !query.include_deleted {
            sql.push(" AND deleted = 0");
        }
        for filter in &query.filters {
            push_filter(&mut sql, filter);
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
        let rows = sql.build().fetch_all(&self.reader).await?;
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
        self.check_file()?;
        let mut tx = self.writer.begin().await?;
        for write in writes {
            match write {
                Write::Insert(record) => {
                    let inserted = sqlx::query(
                        "INSERT INTO objects (account, id, object, created, customer, deleted, version, data) VALUES (?, ?, ?, ?, ?, ?, 0, ?)",
                    )
                    .bind(account)
                    .bind(&record.id)
                    .bind(&record.object)
                    .bind(record.created)
                    .bind(&record.customer)
                    .bind(i64::from(record.deleted))
                    .bind(record.data.to_string())
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        Err(err) if is_unique_violation(&err) => return Err(StoreError::Conflict),
                        other => other?,
                    };
                    if record.object == "event" {
                        sqlx::query("INSERT INTO webhook_outbox (account, event_id) VALUES (?, ?)")
                            .bind(account)
                            .bind(&record.id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Write::Update(record) => {
                    let done = sqlx::query(
                        "UPDATE objects SET customer = ?, deleted = ?, version = version + 1, data = ? WHERE account = ? AND id = ? AND version = ?",
                    )
                    .bind(&record.customer)
                    .bind(i64::from(record.deleted))
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
                        "UPDATE idempotency_keys SET status = ?, body = ?, locked_until = NULL
                         WHERE account = ? AND key = ? AND request_id = ? AND status IS NULL",
                    )
                    .bind(i64::from(answer.status))
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
                | Write::Purge(_) => super::sqlite_due::apply(&mut tx, write).await?,
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_idempotency(&self, request: &IdempotencyRequest<'_>) -> StoreResult<Claim> {
        self.check_file()?;
        for _ in 0..3 {
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys (account, key, method_path, fingerprint, created, status, body, request_id, locked_until)
                 VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)
                 ON CONFLICT (account, key) DO UPDATE SET
                    method_path = excluded.method_path, fingerprint = excluded.fingerprint,
                    created = excluded.created, status = NULL, body = NULL,
                    request_id = excluded.request_id, locked_until = excluded.locked_until
                 WHERE idempotency_keys.created < ?
                    OR (idempotency_keys.status IS NULL
                        AND coalesce(idempotency_keys.locked_until, 0) < ?)",
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
            .execute(&self.writer)
            .await?;
            if claimed.rows_affected() == 1 {
                return Ok(Claim::Claimed);
            }
            let row = sqlx::query(
                "SELECT method_path, fingerprint, status, body, request_id FROM idempotency_keys WHERE account = ? AND key = ?",
            )
            .bind(request.account)
            .bind(request.key)
            .fetch_optional(&self.writer)
            .await?;
            let Some(row) = row else {
                continue; // released between the two statements: claim again
            };
            return Ok(existing_claim(
                request,
                row.try_get("method_path")?,
                row.try_get("fingerprint")?,
                row.try_get::<Option<i64>, _>("status")?,
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
            "UPDATE idempotency_keys SET locked_until = ? WHERE account = ? AND key = ? AND request_id = ? AND status IS NULL",
        )
        .bind(lease_until)
        .bind(account)
        .bind(key)
        .bind(request_id)
        .execute(&self.writer)
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
            "DELETE FROM idempotency_keys WHERE account = ? AND key = ? AND request_id = ? AND status IS NULL",
        )
        .bind(account)
        .bind(key)
        .bind(request_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn wipe_account(&self, account: &str) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        // The worker locks outbox rows, then the events they name: take the
        // tables in the same order, so a wipe waits instead of deadlocking.
        for table in [
            "webhook_outbox",
            "webhook_deliveries",
            "idempotency_keys",
            "due_items",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE account = ?"))
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        let removed = sqlx::query("DELETE FROM objects WHERE account = ?")
            .bind(account)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    async fn fan_out(&self, limit: i64, plan: FanOutPlan<'_>) -> StoreResult<usize> {
        // The single writer connection serializes this with every other write.
        let mut tx = self.writer.begin().await?;
        let taken: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT seq, account, event_id FROM webhook_outbox ORDER BY seq LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut endpoints: std::collections::HashMap<String, Vec<Record>> = Default::default();
        for (seq, account, event_id) in &taken {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM objects WHERE account = ? AND id = ?"
            ))
            .bind(account)
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(event) = row.as_ref().map(record_from_row).transpose()? {
                if !endpoints.contains_key(account) {
                    let rows = sqlx::query(&format!(
                        "SELECT {COLUMNS} FROM objects WHERE account = ? AND object = 'webhook_endpoint' AND deleted = 0 ORDER BY seq"
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
                    sqlx::query(
                        "INSERT INTO webhook_deliveries (id, account, event_id, status, next_attempt_at, locked_until, created, data)
                         VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                    )
                    .bind(&delivery.id)
                    .bind(&delivery.account)
                    .bind(&delivery.event_id)
                    .bind(&delivery.status)
                    .bind(delivery.next_attempt_at)
                    .bind(delivery.created)
                    .bind(delivery.data.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE objects SET data = json_set(data, '$.pending_webhooks', ?) WHERE account = ? AND id = ?",
                )
                .bind(deliveries.len() as i64)
                .bind(account)
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM webhook_outbox WHERE seq = ?")
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
            "UPDATE webhook_deliveries SET locked_until = ? WHERE seq IN (
                SELECT seq FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= ?
                  AND (locked_until IS NULL OR locked_until < ?)
                ORDER BY next_attempt_at, seq LIMIT ?)
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn record_attempt(&self, delivery: &Delivery, succeeded: bool) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, locked_until = NULL, data = ? WHERE id = ?",
        )
        .bind(&delivery.status)
        .bind(delivery.next_attempt_at)
        .bind(delivery.data.to_string())
        .bind(&delivery.id)
        .execute(&mut *tx)
        .await?;
        if succeeded {
            sqlx::query(
                "UPDATE objects SET data = json_set(data, '$.pending_webhooks', max(coalesce(json_extract(data, '$.pending_webhooks'), 0) - 1, 0)) WHERE account = ? AND id = ?",
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
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE account = ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(account)
        .bind(limit)
        .fetch_all(&self.reader)
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
        super::sqlite_due::claim(&self.writer, scope, now, lease_until, claimer, limit).await
    }

    async fn clock_has_due(&self, test_clock: &str, up_to: i64) -> StoreResult<bool> {
        super::sqlite_due::clock_has_due(&self.writer, test_clock, up_to).await
    }
}

/// One list filter as SQL, appended to `sql`.
fn push_filter(sql: &mut QueryBuilder<'_, Sqlite>, filter: &Filter) {
    match filter {
        Filter::Customer(customer) => {
            sql.push(" AND customer = ").push_bind(customer.clone());
        }
        Filter::Field(path, values) => {
            sql.push(" AND json_extract(data, ")
                .push_bind(json_path(path))
                .push(") IN (");
            let mut list = sql.separated(", ");
            for value in values {
                match value {
                    Value::Bool(b) => list.push_bind(i64::from(*b)),
                    Value::Number(n) => list.push_bind(n.as_i64().unwrap_or_default()),
                    other => list.push_bind(other.as_str().unwrap_or_default().to_owned()),
                };
            }
            sql.push(")");
        }
        Filter::Absent(path) => {
            sql.push(" AND json_extract(data, ")
                .push_bind(json_path(path))
                .push(") IS NULL");
        }
        Filter::FieldPrefix(path, prefix) => {
            sql.push(" AND substr(json_extract(data, ")
                .push_bind(json_path(path))
                .push("), 1, ")
                .push_bind(prefix.chars().count() as i64)
                .push(") = ")
                .push_bind(prefix.clone());
        }
        Filter::ArrayContains(path, value) => {
            sql.push(" AND EXISTS (SELECT 1 FROM json_each(data, ")
                .push_bind(json_path(path))
                .push(") WHERE json_each.value = ")
                .push_bind(value.clone())
                .push(")");
        }
        Filter::Folded(field, text) => {
            // Written as the index is, so SQLite uses it.
            sql.push(format!(
                " AND lower(json_extract(data, '{}')) = ",
                json_path(literal(field))
            ))
            .push_bind(text.clone());
        }
        Filter::FieldRange(path, range) => {
            for (op, bound) in range.bounds() {
                sql.push(" AND json_extract(data, ")
                    .push_bind(json_path(path))
                    .push(format!(") {op} "))
                    .push_bind(bound);
            }
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, account, event_id, status, next_attempt_at, created, data";

fn delivery_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Delivery> {
    let data: String = row.try_get("data")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        account: row.try_get("account")?,
        event_id: row.try_get("event_id")?,
        status: row.try_get("status")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created: row.try_get("created")?,
        data: serde_json::from_str(&data)?,
    })
}
