-- Work that falls due (a Checkout Session's expiry, the periodic sweeps):
-- written in the same transaction as the change that makes it due, claimed
-- by one server's scheduler at a time (claimed_by, locked_until: a lease,
-- so a dead server's claim runs out) and deleted in the transaction that
-- commits what running it changed. Times are unix milliseconds.
CREATE TABLE due_items (
    id           TEXT    PRIMARY KEY,
    account      TEXT    NOT NULL,
    test_clock   TEXT,
    due_at       INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    claimed_by   TEXT,
    locked_until INTEGER
);
CREATE INDEX due_items_due ON due_items (due_at);
CREATE INDEX due_items_by_account ON due_items (account);
