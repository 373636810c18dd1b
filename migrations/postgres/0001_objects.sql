-- Every Stripe object of every account: a JSON document plus the columns
-- lists filter and order on. `seq` orders lists (newest first).
CREATE TABLE objects (
    seq      BIGSERIAL PRIMARY KEY,
    account  TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    object   TEXT    NOT NULL,
    created  BIGINT  NOT NULL,
    customer TEXT,
    deleted  BOOLEAN NOT NULL DEFAULT FALSE,
    version  BIGINT  NOT NULL DEFAULT 0,
    data     JSONB   NOT NULL,
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
    created     BIGINT  NOT NULL,
    status      INTEGER,
    body        TEXT,
    PRIMARY KEY (account, key)
);
