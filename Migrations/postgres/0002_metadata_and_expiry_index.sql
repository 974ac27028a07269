-- Version 2: the id of the encryption key the tokens are sealed with, so a wrong or missing key is
-- caught when the cache opens; an index to purge expired tokens without scanning every row.
CREATE TABLE mi_metadata (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE INDEX mi_tokens_by_expiry ON mi_tokens (expires_on);
