import CacheBackendSupport
import Crypto
import Foundation
import ManagedIdentity
import PostgresNIO

/// Rows, scopes and the SQL of the retention rule.
extension PostgresTokenCacheBackend {
    /// The scopes this host reads: its own, and the shared one when it shares user-assigned identities.
    var readScopes: [String] { configuration.sharesUserAssignedIdentities ? [hostID, ""] : [hostID] }

    /// The scope a partition's rows are written in.
    func scope(for identity: ManagedIdentityID) -> String {
        configuration.sharesUserAssignedIdentities && identity != .systemAssigned ? "" : hostID
    }

    func entries(_ connection: PostgresConnection, _ key: TokenCachePartitionKey, unsealing: Bool = true) async throws
        -> [TokenCacheEntry]
    {
        let rows = try await connection.query(
            """
            SELECT scope, resource, token_type, access_token, expires_on, refresh_on, cached_at FROM mi_tokens
            WHERE scope = ANY(\(readScopes)) AND partition_key = \(key.rawValue)
            """, logger: logger)
        var entries: [TokenCacheEntry] = []
        for try await (scope, resource, tokenType, stored, expiresOn, refreshOn, cachedAt)
            in rows.decode((String, String, String, String, Int64, Int64?, Int64).self)
        {
            var token = "<not read>"
            if unsealing {
                let context = Self.context(scope, key, TokenCacheEntryKey(resource: resource, tokenType: tokenType))
                guard let opened = try sealing.open(stored, context: context, logger: logger) else { continue }
                token = opened
            }
            entries.append(
                TokenCacheEntry(
                    partitionKey: key, resource: resource, tokenType: tokenType, accessToken: token,
                    expiresOnEpoch: expiresOn, refreshOnEpoch: refreshOn, cachedAtEpoch: cachedAt))
        }
        return entries
    }

    /// ``TokenCacheRetention`` in SQL, as the SQLite backend writes it (binary collation for ties).
    func applyRetention(
        _ connection: PostgresConnection, scope: String, key: TokenCachePartitionKey, written: TokenCacheEntryKey,
        retention: TokenCacheRetention
    ) async throws {
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND expires_on <= \(Self.epoch(retention.now))
                AND NOT (resource = \(written.resource) AND token_type = \(written.tokenType))
            """, logger: logger)
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND (resource, token_type) IN (
                SELECT resource, token_type FROM mi_tokens
                WHERE scope = \(scope) AND partition_key = \(key.rawValue)
                    AND NOT (resource = \(written.resource) AND token_type = \(written.tokenType))
                ORDER BY expires_on DESC, resource COLLATE "C" DESC, token_type COLLATE "C" DESC
                OFFSET \(max(retention.maximumEntriesPerPartition, 1) - 1))
            """, logger: logger)
    }

    /// Upserts kept tokens of one partition in one statement (the newer wins, as for one token), then
    /// applies the retention rule once for all of them: expired rows go but those written; past the
    /// cap, the rows closest to expiry go, those written last (and only when they alone exceed it).
    func upsertBacklog(
        _ connection: PostgresConnection, scope: String, key: TokenCachePartitionKey, writes: [KeptWrite], sealed: [String]
    ) async throws {
        let resources = writes.map(\.entry.resource)
        let tokenTypes = writes.map(\.entry.tokenType)
        let expiresOn = writes.map { Self.epoch($0.entry.expiresOn) }
        // -1 stands for "no refresh time": an array of optional integers is not bound by postgres-nio.
        let refreshOn = writes.map { $0.entry.refreshOn.map(Self.epoch) ?? -1 }
        let cachedAt = writes.map { Self.epoch($0.entry.cachedAt) }
        try await connection.query(
            """
            INSERT INTO mi_tokens (scope, partition_key, resource, token_type, access_token, expires_on, refresh_on, cached_at)
            SELECT \(scope), \(key.rawValue), r, t, a, e, NULLIF(f, -1), c
            FROM UNNEST(\(resources)::text[], \(tokenTypes)::text[], \(sealed)::text[], \(expiresOn)::int8[], \(refreshOn)::int8[], \(cachedAt)::int8[])
                AS kept(r, t, a, e, f, c)
            ON CONFLICT (scope, partition_key, resource, token_type) DO UPDATE SET
                access_token = excluded.access_token, expires_on = excluded.expires_on,
                refresh_on = excluded.refresh_on, cached_at = excluded.cached_at
            WHERE excluded.cached_at >= mi_tokens.cached_at
            """, logger: logger)
        guard let retention = writes.map(\.retention).max(by: { $0.now < $1.now }) else { return }
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND expires_on <= \(Self.epoch(retention.now))
                AND (resource, token_type) NOT IN (SELECT * FROM UNNEST(\(resources)::text[], \(tokenTypes)::text[]))
            """, logger: logger)
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND (resource, token_type) IN (
                SELECT resource, token_type FROM mi_tokens
                WHERE scope = \(scope) AND partition_key = \(key.rawValue)
                ORDER BY (resource, token_type) IN (SELECT * FROM UNNEST(\(resources)::text[], \(tokenTypes)::text[])) DESC,
                    expires_on DESC, resource COLLATE "C" DESC, token_type COLLATE "C" DESC
                OFFSET \(max(retention.maximumEntriesPerPartition, 1)))
            """, logger: logger)
    }

    static func context(_ scope: String, _ key: TokenCachePartitionKey, _ entry: TokenCacheEntryKey) -> String {
        TokenRowSealing.context(scope: scope, partition: key, resource: entry.resource, tokenType: entry.tokenType)
    }

    static func epoch(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// A 32-bit lock id from text (the first bytes of its SHA-256).
    static func lockID(_ text: String) -> Int32 {
        let digest = Array(SHA256.hash(data: Array(text.utf8)))
        return Int32(bitPattern: UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3]))
    }
}
