-- Version 1: one row per token, keyed by (scope, partition, resource, token type). The scope is
-- the host id of the host that wrote the row, or '' for a user-assigned identity shared across the
-- hosts that carry it (only when the operator turns sharing on). Times are seconds since 1970.
CREATE TABLE mi_partitions (
    scope TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    source TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    identity_id TEXT,
    endpoint TEXT NOT NULL,
    PRIMARY KEY (scope, partition_key)
);

CREATE TABLE mi_tokens (
    scope TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    resource TEXT NOT NULL,
    token_type TEXT NOT NULL,
    access_token TEXT NOT NULL,
    expires_on BIGINT NOT NULL,
    refresh_on BIGINT,
    cached_at BIGINT NOT NULL,
    PRIMARY KEY (scope, partition_key, resource, token_type),
    FOREIGN KEY (scope, partition_key) REFERENCES mi_partitions (scope, partition_key) ON DELETE CASCADE
);
