-- Client secrets and page tokens name an object without naming its account.
CREATE INDEX objects_by_id ON objects (id);
