import Foundation
import GRDB
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityTesting
import TestSupport
import Testing

@testable import ManagedIdentitySQLiteCache

/// The schema: the embedded SQL is the files', migrations apply in order, and a version-1 database
/// migrates without losing a token.
struct MigrationTests {
    /// The package's root, from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theEmbeddedSQLIsExactlyTheMigrationFiles() throws {
        let directory = Self.root.appendingPathComponent("Migrations/sqlite").path
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.map { String($0.dropLast(4)) } == embeddedMigrations.map(\.identifier))
        for (file, migration) in zip(files, embeddedMigrations) {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            #expect(text == migration.sql + "\n", "\(file) differs from the embedded copy: run scripts/embed-migrations")
        }
        #expect(embeddedMigrations.map(\.identifier) == embeddedMigrations.map(\.identifier).sorted())
    }

    @Test func aVersionOneDatabaseMigratesWithNoTokenLost() async throws {
        let path = try BackendKind.sqlite.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "fixture-host", clock: clock)
        let system = try makeClient(nil, identity: .systemAssigned, endpoint: endpoint, clock: clock, host: "fixture-host")
        let user = try makeClient(nil, identity: .clientID("fixture-client"), endpoint: endpoint, clock: clock, host: "fixture-host")

        let fixture = try #require(Bundle.module.url(forResource: "Fixtures/cache-v1", withExtension: "sql"))
        var sql = try String(contentsOf: fixture, encoding: .utf8)
        sql = sql.replacingOccurrences(of: "@SYSTEM@", with: system.partitionKey.rawValue)
            .replacingOccurrences(of: "@USER@", with: user.partitionKey.rawValue)
            .replacingOccurrences(of: "@EXPIRES@", with: String(Int(clock.now.timeIntervalSince1970) + 7200))
            .replacingOccurrences(of: "@CACHED@", with: String(Int(clock.now.timeIntervalSince1970) - 60))
        let queue = try DatabaseQueue(path: path)
        let dump = sql
        try await queue.writeWithoutTransaction { try $0.execute(sql: dump) }
        try queue.close()

        let migratedSystem = try makeClient(
            try await opened(SQLiteTokenCacheBackend(path: path)), identity: .systemAssigned, endpoint: endpoint, clock: clock, host: "fixture-host")
        let migratedUser = try makeClient(
            try await opened(SQLiteTokenCacheBackend(path: path)), identity: .clientID("fixture-client"), endpoint: endpoint, clock: clock,
            host: "fixture-host")
        #expect(try await migratedSystem.token(for: "https://vault.azure.net").token == "v1-system-vault")
        #expect(try await migratedSystem.token(for: "https://management.azure.com").token == "v1-system-arm")
        #expect(try await migratedUser.token(for: "https://vault.azure.net").token == "v1-user-vault")
        #expect(endpoint.requestCount == 0)

        let check = try DatabaseQueue(path: path)
        let applied = try await check.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        #expect(applied == embeddedMigrations.map(\.identifier))
        let generation = try await check.read { try Int.fetchOne($0, sql: "SELECT generation FROM partitions LIMIT 1") }
        #expect(generation == 0)
        try check.close()
    }

    @Test func processesOpeningANewDatabaseAtOnceDoNotRace() async throws {
        let path = try BackendKind.sqlite.makeLocation()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { _ = try await opened(SQLiteTokenCacheBackend(path: path)) }
            }
            try await group.waitForAll()
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        #expect(!names.contains { $0.contains(".corrupt-") })
    }
}
