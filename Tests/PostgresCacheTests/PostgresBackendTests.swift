import CacheBackendSupport
import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityTesting
import Synchronization
import Testing
import TestSupport

@testable import ManagedIdentityPostgresCache

/// The PostgreSQL backend against a real server the tests start themselves.
struct PostgresBackendTests {
    @Test func passesTheConformanceSuite() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        try await TokenCacheConformance { try await backends.start(database.configuration()) }.run(interleavings: 500)
    }

    @Test func aHitWithNothingChangedSendsNothingToTheServer() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(TokenCache(backend: try await backends.start(database.configuration())), endpoint: endpoint, clock: clock)
        _ = try await client.token(for: "https://quiet")
        let marker = "marker_\(UUID().uuidString.prefix(8))"
        try await database.server.sql("SELECT '\(marker)_start'", database: database.name)
        for _ in 0..<200 { #expect(try await client.token(for: "https://quiet").tokenSource == .cache) }
        try await database.server.sql("SELECT '\(marker)_end'", database: database.name)
        let log = database.server.log
        let between = try #require(log.range(of: "\(marker)_start").flatMap { start in
            log.range(of: "\(marker)_end").map { log[start.upperBound..<$0.lowerBound] }
        })
        // Every line names its database (the server runs with log_line_prefix=%d:); other tests use others.
        let ours = between.split(separator: "\n").filter { $0.hasPrefix("\(database.name):") }
        #expect(!ours.contains { $0.contains("mi_tokens") }, "a hit queried the database: \(ours)")
    }

    @Test func aWriteByOneHostReachesAnotherHostsNextHits() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let shared = database.configuration(sharing: true)
        let a = try makeClient(TokenCache(backend: try await backends.start(shared)), endpoint: endpoint, clock: clock)
        var hostB = shared
        hostB.hostID = "host-b"
        let b = try makeClient(TokenCache(backend: try await backends.start(hostB)), endpoint: endpoint, clock: clock, host: "host-b")
        let first = try await a.token(for: "https://seen")
        #expect(try await b.token(for: "https://seen").token == first.token)
        // A forced refresh on A: B's memory holds the old token until the notification arrives.
        let second = try await a.token(for: "https://seen", options: TokenRequestOptions(forceRefresh: true))
        var seen = false
        for _ in 0..<500 where !seen {
            seen = try await b.token(for: "https://seen").token == second.token
            if !seen { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(seen, "host B never saw host A's newer token")
        #expect(endpoint.requestCount == 2)
    }

    @Test func byDefaultNoTokenCrossesHostsAndSystemAssignedNeverDoes() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        for sharing in [false, true] {
            var configurationA = database.configuration(hostID: "a-\(sharing)", sharing: sharing)
            var configurationB = configurationA
            configurationB.hostID = "b-\(sharing)"
            configurationA.hostID = "a-\(sharing)"
            let cacheA = TokenCache(backend: try await backends.start(configurationA))
            let cacheB = TokenCache(backend: try await backends.start(configurationB))
            let user = ManagedIdentityID.clientID("shared-\(sharing)")
            let onA = try await makeClient(cacheA, identity: user, endpoint: endpoint, clock: clock, host: "a-\(sharing)").token(for: "https://r")
            let onB = try await makeClient(cacheB, identity: user, endpoint: endpoint, clock: clock, host: "b-\(sharing)").token(for: "https://r")
            #expect((onB.token == onA.token) == sharing, "sharing \(sharing): user-assigned tokens crossed hosts: \(onB.token == onA.token)")
            let systemA = try await makeClient(cacheA, identity: .systemAssigned, endpoint: endpoint, clock: clock, host: "a-\(sharing)")
                .token(for: "https://r")
            let systemB = try await makeClient(cacheB, identity: .systemAssigned, endpoint: endpoint, clock: clock, host: "b-\(sharing)")
                .token(for: "https://r")
            #expect(systemA.token != systemB.token)
            #expect(systemB.tokenSource == .identityProvider, "host B's system identity was served host A's stored token")
        }
    }

    /// Tokens kept while the database was down are stored in one statement when it is back; the
    /// rules of a single write still hold: the newer token wins, expired rows go, the cap holds.
    @Test func aBacklogKeepsTheRulesOfSingleWrites() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        let backend = try await backends.start(database.configuration())
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let key = TokenCachePartitionKey(
            source: .imds, endpoint: "http://127.0.0.1:9/", identity: .clientID("backlog"), hostDiscriminator: "h")
        let partition = TokenCachePartitionDescriptor(
            key: key, source: .imds, identity: .clientID("backlog"), endpoint: "http://127.0.0.1:9/")
        func entry(_ resource: String, _ token: String, expiresIn: TimeInterval, cachedAgo: TimeInterval = 0) -> TokenCacheEntry {
            TokenCacheEntry(
                partitionKey: key, resource: resource, accessToken: token,
                expiresOn: now + expiresIn, cachedAt: now - cachedAgo)
        }
        let earlier = TokenCacheRetention(now: now - 100, maximumEntriesPerPartition: 10)
        for stored in [
            entry("https://expired", "t-expired", expiresIn: -10, cachedAgo: 200),
            entry("https://far", "t-far", expiresIn: 3_600, cachedAgo: 50),
            entry("https://newer", "t-stored-newer", expiresIn: 1_800),
        ] {
            _ = try await backend.write(stored, in: partition, retention: earlier)
        }
        let retention = TokenCacheRetention(now: now, maximumEntriesPerPartition: 3)
        let backlog = [
            entry("https://newer", "t-stale", expiresIn: 1_800, cachedAgo: 60),
            entry("https://a", "t-a", expiresIn: 600),
            entry("https://b", "t-b", expiresIn: 1_200),
        ].map { PostgresTokenCacheBackend.KeptWrite(entry: $0, partition: partition, retention: retention) }
        let stored = try await backend.store(backlog, in: partition, returningEntries: true)
        // The expired row went, the stale token lost to the stored newer one, and the cap of 3 kept
        // the written tokens over the one not written.
        #expect(Dictionary(uniqueKeysWithValues: stored.map { ($0.resource, $0.accessToken) }) == [
            "https://a": "t-a", "https://b": "t-b", "https://newer": "t-stored-newer",
        ])

        // More written tokens than the cap: those furthest from expiry stay, and the cap holds.
        let tight = TokenCacheRetention(now: now, maximumEntriesPerPartition: 2)
        let overflow = [
            entry("https://c", "t-c", expiresIn: 4_000), entry("https://d", "t-d", expiresIn: 100),
            entry("https://e", "t-e", expiresIn: 5_000),
        ].map { PostgresTokenCacheBackend.KeptWrite(entry: $0, partition: partition, retention: tight) }
        let capped = try await backend.store(overflow, in: partition, returningEntries: true)
        #expect(Set(capped.map(\.resource)) == ["https://c", "https://e"])
    }

    @Test func tokensAreSealedAndTheKeyIsRequiredAndChecked() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        #expect { try PostgresTokenCacheBackend(configuration: database.configuration(key: nil, plaintext: false).withoutKey) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .missingEncryptionKey
        }
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let token = try await makeClient(TokenCache(backend: try await backends.start(database.configuration())), endpoint: endpoint, clock: clock)
            .token(for: "https://sealed")
        let stored = try await database.server.sql("SELECT access_token FROM mi_tokens", database: database.name)
        #expect(stored.hasPrefix("sealed:"))
        #expect(!stored.contains(token.token))
        await #expect { try await backends.start(database.configuration(key: SymmetricKey(size: .bits256))) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .wrongEncryptionKey
        }
        await #expect { try await backends.start(database.configuration(plaintext: true)) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .missingEncryptionKey
        }
    }

    @Test func aDatabaseOfTheFirstSchemaMigratesWithNoTokenLost() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        // Made as the first version made it: schema 0001 only, one sealed token.
        let first = try #require(embeddedMigrations.first)
        for statement in PostgresMigrator.statements(first.sql) { try await database.server.sql(statement, database: database.name) }
        try await database.server.sql(
            "CREATE TABLE mi_schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL); "
                + "INSERT INTO mi_schema_migrations VALUES ('\(first.identifier)', 0)", database: database.name)
        let clock = ManualClock(now: Date())
        let partition = try makeClient(TokenCache(), endpoint: FakeTokenEndpoint(hostName: "h", clock: clock), clock: clock).partitionKey
        let sealed = try SealedToken.seal(
            "v1-token", with: AtRestCipher(key: database.key),
            context: PostgresTokenCacheBackend.context("host-test", partition, TokenCacheEntryKey(resource: "https://v1")))
        let now = Int64(clock.now.timeIntervalSince1970)
        try await database.server.sql(
            "INSERT INTO mi_partitions VALUES ('host-test', '\(partition.rawValue)', 'imds', 'client_id', 'postgres-test', 'http://x'); "
                + "INSERT INTO mi_tokens VALUES ('host-test', '\(partition.rawValue)', 'https://v1', 'Bearer', '\(sealed)', \(now + 3600), NULL, \(now))",
            database: database.name)

        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(TokenCache(backend: try await backends.start(database.configuration())), endpoint: endpoint, clock: clock)
        #expect(try await client.token(for: "https://v1").token == "v1-token")
        #expect(endpoint.requestCount == 0)
        let applied = try await database.server.sql("SELECT version FROM mi_schema_migrations ORDER BY version", database: database.name)
        #expect(applied.split(separator: "\n").map(String.init) == embeddedMigrations.map(\.identifier))
    }

    @Test func hostsStartingAtOnceMigrateOnce() async throws {
        let database = try await TestDatabase.make()
        let backends = RunningBackends()
        defer { backends.stopAll() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<6 {
                group.addTask { _ = try await backends.start(database.configuration(hostID: "h\(index)")) }
            }
            try await group.waitForAll()
        }
        let applied = try await database.server.sql("SELECT count(*) FROM mi_schema_migrations", database: database.name)
        #expect(applied.trimmingCharacters(in: .whitespacesAndNewlines) == "\(embeddedMigrations.count)")
    }

    @Test func configurationsAreReadFromURLs() throws {
        let key = SymmetricKey(size: .bits256)
        let full = try #require(
            PostgresTokenCacheBackend.Configuration(url: "postgres://svc:p%40ss@db.internal:6543/app?sslmode=require", encryptionKey: key))
        #expect(full.host == "db.internal" && full.port == 6543 && full.username == "svc" && full.database == "app")
        #expect(full.password == "p@ss" && full.tls == .require && !full.allowsPlaintext && !full.sharesUserAssignedIdentities)
        let short = try #require(PostgresTokenCacheBackend.Configuration(url: "postgresql://svc@db", encryptionKey: nil, allowsPlaintext: true))
        #expect(short.port == 5432 && short.database == nil && short.tls == .prefer && short.password == nil && short.allowsPlaintext)
        for bad in ["http://svc@db/app", "postgres://db/app", "postgres://svc@db/app?sslmode=verify-full", "postgres://svc@:5432/app"] {
            #expect(PostgresTokenCacheBackend.Configuration(url: bad, encryptionKey: key) == nil, "\(bad)")
        }
    }

    @Test func theSQLSplitterKeepsStatementsWhole() {
        #expect(PostgresMigrator.statements("-- a comment\nCREATE TABLE a (x INT);\n\n-- another\nCREATE INDEX i ON a (x);\n")
            == ["CREATE TABLE a (x INT)", "CREATE INDEX i ON a (x)"])
    }

    @Test func theEmbeddedMigrationsAreTheFilesOfMigrationsPostgres() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("Migrations/postgres").path
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(files.map { String($0.dropLast(4)) } == embeddedMigrations.map(\.identifier))
        for (file, migration) in zip(files, embeddedMigrations) {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            #expect(text == migration.sql + "\n", "\(file) differs from the embedded copy: run scripts/embed-migrations")
        }
    }
}

extension PostgresTokenCacheBackend.Configuration {
    var withoutKey: Self {
        var copy = self
        copy.encryptionKey = nil
        copy.allowsPlaintext = false
        return copy
    }
}

/// ``IsolationProperty`` over PostgreSQL: 10,000 random operations, two hosts on one database, with
/// per-host partitions and with user-assigned identities shared between the hosts.
struct PostgresIsolationPropertyTests {
    @Test(arguments: [false, true])
    func noRequestIsAnsweredWithAnotherIdentitysHostsOrResourcesTokenNorAnExpiredOne(sharing: Bool) async throws {
        let database = try await TestDatabase.make()
        // A restarted host's previous backend is stopped first, as a restarted process's is, so
        // the run holds two backends' connections at most.
        let running = Mutex<[String: Task<Void, any Error>]>([:])
        defer { for task in running.withLock({ $0.values }) { task.cancel() } }
        let outcome = try await IsolationProperty(seed: sharing ? 0x5EED_0000_0000_0011 : 0x5EED_0000_0000_0010, restarts: true).run { host in
            let previous = running.withLock { $0.removeValue(forKey: host) }
            previous?.cancel()
            _ = await previous?.result
            let backend = try PostgresTokenCacheBackend(configuration: database.configuration(hostID: host, sharing: sharing))
            running.withLock { $0[host] = Task { try await backend.run() } }
            try await backend.waitUntilReady(timeout: .seconds(30))
            return TokenCache(backend: backend)
        }
        #expect(outcome.violations.isEmpty, "\(outcome.violations.prefix(5))")
        #expect(outcome.served > 8_000)
        #expect(outcome.fromCache > outcome.served / 4, "\(outcome.fromCache) of \(outcome.served) served from the cache")
        #expect(outcome.restarts > 50)
    }
}
