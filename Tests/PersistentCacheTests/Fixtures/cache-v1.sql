-- A cache database written by schema version 1 (Migrations/0001_create_tokens.sql only), with two
-- partitions and three tokens (the test fills in keys and times, since a fixed expiry would lapse), to test migrating without losing a token.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
INSERT INTO grdb_migrations VALUES('0001_create_tokens');
CREATE TABLE partitions (
    partition_key TEXT PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    identity_kind TEXT NOT NULL,
    identity_id TEXT,
    endpoint TEXT NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO partitions VALUES('@SYSTEM@','imds','system_assigned',NULL,'http://127.0.0.1:1/metadata/identity/oauth2/token');
INSERT INTO partitions VALUES('@USER@','imds','client_id','fixture-client','http://127.0.0.1:1/metadata/identity/oauth2/token');
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
INSERT INTO tokens VALUES('@SYSTEM@','https://vault.azure.net','Bearer','v1-system-vault',@EXPIRES@,NULL,@CACHED@);
INSERT INTO tokens VALUES('@SYSTEM@','https://management.azure.com','Bearer','v1-system-arm',@EXPIRES@,NULL,@CACHED@);
INSERT INTO tokens VALUES('@USER@','https://vault.azure.net','Bearer','v1-user-vault',@EXPIRES@,NULL,@CACHED@);
COMMIT;
