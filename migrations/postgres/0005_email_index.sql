-- Exact email lookups (the customers list's `email=` filter, search's
-- `email:'…'`) use this instead of scanning an account's objects.
CREATE INDEX objects_by_email ON objects (account, object, lower(data ->> 'email'));
