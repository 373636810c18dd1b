-- Bookkeeping moves under one hidden key: every top-level `_twin_<name>`
-- key of a stored document becomes `_twin.<name>` (src/core/bookkeeping.rs
-- names the fields). Values are read with `->` so that JSON true, false
-- and null stay JSON (json_each's value column gives 1, 0 and SQL NULL);
-- a merge patch of nulls takes the old keys out. Only `objects` holds
-- documents with bookkeeping: idempotent answers and webhook deliveries
-- hold answers and events, which never carry it.
UPDATE objects
SET data = json_set(
    json_patch(
        data,
        (SELECT json_group_object(key, json('null'))
           FROM json_each(objects.data)
          WHERE substr(key, 1, 6) = '_twin_')
    ),
    '$._twin',
    (SELECT json_group_object(substr(key, 7), json(objects.data -> fullkey))
       FROM json_each(objects.data)
      WHERE substr(key, 1, 6) = '_twin_')
)
WHERE EXISTS (
    SELECT 1 FROM json_each(objects.data) WHERE substr(key, 1, 6) = '_twin_'
);
