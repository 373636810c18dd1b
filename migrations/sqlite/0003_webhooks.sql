-- Events waiting to be matched to webhook endpoints: written in the same
-- transaction as the event.
CREATE TABLE webhook_outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    account  TEXT    NOT NULL,
    event_id TEXT    NOT NULL
);

-- One event owed to one endpoint (or to the forwarding URL): a JSON
-- document (attempt log included) plus the columns the worker claims on.
CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    account         TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    next_attempt_at INTEGER,
    locked_until    INTEGER,
    created         INTEGER NOT NULL,
    data            TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_by_account ON webhook_deliveries (account, seq);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
