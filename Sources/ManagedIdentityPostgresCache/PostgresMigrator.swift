import Foundation
import Logging
import ManagedIdentity
import PostgresNIO

/// Applies the embedded migrations of `Migrations/postgres` in order, each in its own transaction,
/// under a session advisory lock so hosts starting at once do not race, and records each in
/// `mi_schema_migrations`.
enum PostgresMigrator {
    static let lock: Int32 = 0x4D49_0001

    /// Migrates the database, up to and including `last` when given (for tests of old schemas).
    static func migrate(_ connection: PostgresConnection, upTo last: String? = nil, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_lock(\(PostgresTokenCacheBackend.lockNamespace), \(lock))", logger: logger)
        do {
            try await migrateLocked(connection, upTo: last, logger: logger)
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(PostgresTokenCacheBackend.lockNamespace), \(lock))", logger: logger)
            throw error
        }
        try await connection.query("SELECT pg_advisory_unlock(\(PostgresTokenCacheBackend.lockNamespace), \(lock))", logger: logger)
    }

    private static func migrateLocked(_ connection: PostgresConnection, upTo last: String?, logger: Logger) async throws {
        try await connection.query(
            "CREATE TABLE IF NOT EXISTS mi_schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            logger: logger)
        var applied: Set<String> = []
        for try await version in try await connection.query("SELECT version FROM mi_schema_migrations", logger: logger)
            .decode(String.self)
        {
            applied.insert(version)
        }
        let known = Set(embeddedMigrations.map(\.identifier))
        guard applied.isSubset(of: known) else {
            throw TokenCacheBackendError(
                kind: .unsupportedSchema,
                message: "the database was migrated by a newer version of this library (\(applied.subtracting(known).sorted())); "
                    + "upgrade it, or point it at another database")
        }
        for migration in embeddedMigrations where !applied.contains(migration.identifier) {
            try await connection.withTransaction(logger: logger) { connection in
                for statement in statements(migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO mi_schema_migrations (version, applied_at) VALUES (\(migration.identifier), \(Int64(Date().timeIntervalSince1970)))",
                    logger: logger)
            }
            logger.info("applied PostgreSQL token cache migration", metadata: ["migration": "\(migration.identifier)"])
            if migration.identifier == last { break }
        }
    }

    /// The statements of a migration file: its text split at semicolons that end a line, without
    /// comment-only parts (the extended query protocol takes one statement at a time).
    static func statements(_ sql: String) -> [String] {
        sql.components(separatedBy: ";\n").map { part in
            part.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }.joined(separator: "\n")
        }.map { $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: ";")) }
            .filter { !$0.isEmpty }
    }
}
