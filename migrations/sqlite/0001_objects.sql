-- Every Stripe object of every account: a JSON document plus the columns
-- lists filter and order on. `seq` orders lists (newest first).
CREATE TABLE objects (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    account  TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    object   TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    customer TEXT,
    deleted  INTEGER NOT NULL DEFAULT 0,
    version  INTEGER NOT NULL DEFAULT 0,
    data     TEXT    NOT NULL,
    UNIQUE (account, id)
);
CREATE INDEX objects_by_type ON objects (account, object, seq);
CREATE INDEX objects_by_customer ON objects (account, customer, object, seq);

-- Idempotency keys, per account. `status` is NULL while the first request
-- with the key is still running.
CREATE TABLE idempotency_keys (
    account     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    method_path TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    status      INTEGER,
    body        TEXT,
    PRIMARY KEY (account, key)
);
