-- Bookkeeping moves under one hidden key: every top-level `_twin_<name>`
-- key of a stored document becomes `_twin.<name>` (src/core/bookkeeping.rs
-- names the fields). Only `objects` holds documents with bookkeeping:
-- idempotent answers and webhook deliveries hold answers and events,
-- which never carry it.
UPDATE objects
SET data = (data - ARRAY(SELECT key FROM jsonb_object_keys(data) AS key
                          WHERE starts_with(key, '_twin_')))
        || jsonb_build_object('_twin', (SELECT jsonb_object_agg(substr(key, 7), value)
                                          FROM jsonb_each(data)
                                         WHERE starts_with(key, '_twin_')))
WHERE EXISTS (SELECT 1 FROM jsonb_object_keys(data) AS key WHERE starts_with(key, '_twin_'));
