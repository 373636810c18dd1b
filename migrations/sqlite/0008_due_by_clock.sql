-- A test clock's advance claims its items in time order: they are found
-- by clock, then due time.
CREATE INDEX due_items_by_clock ON due_items (test_clock, due_at, id);
