-- Version 1: one row per token, keyed by (partition, resource, token type), with its expiry in
-- columns so expired tokens can be purged in SQL. Partitions hold what identifies them, for listing.
-- STRICT makes SQLite refuse a value of the wrong type instead of storing it.
CREATE TABLE partitions (
    partition_key TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    identity_id TEXT,
    endpoint TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE tokens (
    partition_key TEXT NOT NULL REFERENCES partitions(partition_key) ON DELETE CASCADE,
    resource TEXT NOT NULL,
    token_type TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_on INTEGER NOT NULL,
    refresh_on INTEGER,
    cached_at INTEGER NOT NULL,
    PRIMARY KEY (partition_key, resource, token_type)
) STRICT, WITHOUT ROWID;
