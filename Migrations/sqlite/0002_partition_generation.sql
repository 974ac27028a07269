-- Version 2: a generation per partition, bumped by every write to it, so a process whose database
-- changed elsewhere reloads only the partitions that did change; an index to purge by expiry; and a
-- metadata table holding the id of the encryption key, so a wrong key is caught when the cache opens.
ALTER TABLE partitions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tokens_by_expiry ON tokens(expires_on);

CREATE TABLE cache_metadata (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
