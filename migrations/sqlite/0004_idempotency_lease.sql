-- The request that holds a key (its Request-Id, replayed as
-- Original-Request) and, while it runs, how long its hold lasts (unix
-- milliseconds): a request renews it, so a dead process's claim runs out
-- within seconds instead of blocking retries.
ALTER TABLE idempotency_keys ADD COLUMN request_id TEXT;
ALTER TABLE idempotency_keys ADD COLUMN locked_until BIGINT;
