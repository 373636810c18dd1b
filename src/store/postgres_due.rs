//! Postgres's share of the scheduler: due items, their claims and the
//! retention sweeps, applied inside `commit`'s transaction.

use sqlx::{PgConnection, PgPool, Row};

use super::{DueItem, DueScope, Purge, StoreError, StoreResult, Write};

const DUE_COLUMNS: &str =
    "id, account, test_clock, due_at, kind, target, payload::text AS payload, claimed_by";

/// Applies one of the scheduler's writes (any other write is a bug).
pub async fn apply(tx: &mut PgConnection, write: &Write) -> StoreResult<()> {
    match write {
        Write::Schedule(item) => {
            sqlx::query(
                "INSERT INTO due_items (id, account, test_clock, due_at, kind, target, payload, claimed_by, locked_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, NULL, NULL) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&item.id)
            .bind(&item.account)
            .bind(&item.test_clock)
            .bind(item.due_at)
            .bind(&item.kind)
            .bind(&item.target)
            .bind(item.payload.to_string())
            .execute(&mut *tx)
            .await?;
        }
        Write::Unschedule { id } => {
            sqlx::query("DELETE FROM due_items WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        Write::UnscheduleClock { test_clock } => {
            sqlx::query("DELETE FROM due_items WHERE test_clock = $1")
                .bind(test_clock)
                .execute(&mut *tx)
                .await?;
        }
        Write::Done { id, claimed_by } => {
            let done = sqlx::query("DELETE FROM due_items WHERE id = $1 AND claimed_by = $2")
                .bind(id)
                .bind(claimed_by)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::ClaimLost);
            }
        }
        Write::Purge(purge) => self::purge(tx, *purge).await?,
        Write::Insert(_) | Write::Update(_) | Write::Answer(_) => {
            unreachable!("not a scheduler write")
        }
    }
    Ok(())
}

async fn purge(tx: &mut PgConnection, purge: Purge) -> StoreResult<()> {
    match purge {
        Purge::Events { before } => {
            // Deliveries before events: the order record_attempt locks them in.
            sqlx::query("DELETE FROM webhook_deliveries WHERE created < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM objects WHERE object = 'event' AND created < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
        }
        Purge::IdempotencyKeys { before } => {
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE created < $1
                 AND (status IS NOT NULL OR COALESCE(locked_until, 0) < $2)",
            )
            .bind(before)
            .bind(before.saturating_mul(1000))
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// SKIP LOCKED: another server's scheduler claims other items meanwhile.
/// A clock's items are claimed by the one scheduler running its advance.
pub async fn claim(
    writer: &PgPool,
    scope: DueScope<'_>,
    now: i64,
    lease_until: i64,
    claimer: &str,
    limit: i64,
) -> StoreResult<Vec<DueItem>> {
    let rows = match scope {
        DueScope::Wall => {
            let sql = format!(
            "UPDATE due_items SET claimed_by = $1, locked_until = $2 WHERE id IN (
                SELECT id FROM due_items
                WHERE test_clock IS NULL AND due_at <= $3 AND (locked_until IS NULL OR locked_until < $3)
                ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING {DUE_COLUMNS}"
            );
            sqlx::query(&sql)
                .bind(claimer)
                .bind(lease_until)
                .bind(now)
                .bind(limit)
                .fetch_all(writer)
                .await?
        }
        // In order: an item held by a claim holds back every later one.
        DueScope::Clock { test_clock, up_to } => {
            let sql = format!(
            "UPDATE due_items SET claimed_by = $1, locked_until = $2 WHERE id IN (
                SELECT id FROM due_items AS item
                WHERE test_clock = $3 AND due_at <= $4 AND (locked_until IS NULL OR locked_until < $5)
                AND NOT EXISTS (SELECT 1 FROM due_items AS held
                    WHERE held.test_clock = item.test_clock AND held.locked_until >= $5
                    AND (held.due_at, held.id) < (item.due_at, item.id))
                ORDER BY due_at, id LIMIT $6 FOR UPDATE)
             RETURNING {DUE_COLUMNS}"
            );
            sqlx::query(&sql)
                .bind(claimer)
                .bind(lease_until)
                .bind(test_clock)
                .bind(up_to)
                .bind(now)
                .bind(limit)
                .fetch_all(writer)
                .await?
        }
    };
    let mut items = rows
        .iter()
        .map(|row| {
            let payload: String = row.try_get("payload")?;
            Ok(DueItem {
                id: row.try_get("id")?,
                account: row.try_get("account")?,
                test_clock: row.try_get("test_clock")?,
                due_at: row.try_get("due_at")?,
                kind: row.try_get("kind")?,
                target: row.try_get("target")?,
                payload: serde_json::from_str(&payload)?,
                claimed_by: row.try_get("claimed_by")?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING keeps no order.
    items.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
    Ok(items)
}

pub async fn clock_has_due(pool: &PgPool, test_clock: &str, up_to: i64) -> StoreResult<bool> {
    let found =
        sqlx::query("SELECT 1 FROM due_items WHERE test_clock = $1 AND due_at <= $2 LIMIT 1")
            .bind(test_clock)
            .bind(up_to)
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}
