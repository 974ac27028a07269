import Foundation
import GRDB
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityTesting
import Synchronization
import Testing
import TestSupport

@testable import ManagedIdentityFileCache
@testable import ManagedIdentitySQLiteCache

/// Both persistent backends: the conformance suite, file modes, change detection, purging, caps,
/// corruption and encryption.
struct BackendTests {
    @Test(arguments: BackendKind.allCases)
    func passesTheConformanceSuite(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        try await TokenCacheConformance { try await kind.open(location) }.run(interleavings: 1_000)
    }

    @Test(arguments: BackendKind.allCases)
    func filesAreOwnerOnly(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let clock = ManualClock(now: Date())
        _ = try await makeClient(try await kind.open(location), endpoint: FakeTokenEndpoint(hostName: "h", clock: clock), clock: clock)
            .token(for: "https://modes")
        for file in kind.dataFiles(location) {
            let mode = try #require(FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
            #expect(mode & 0o077 == 0, "\(file) has mode \(String(mode, radix: 8))")
        }
        let directory = kind == .file ? location : (location as NSString).deletingLastPathComponent
        let mode = try #require(FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0)
    }

    @Test func aSymlinkedOrSharedDirectoryIsRefusedAtStart() async throws {
        // `start(within:)` reports the first attempt's verdict when it comes within the bound, and
        // returns without one after it; a busy machine's thread pool can take a second to get to
        // the attempt, so the bound here is a generous one on that real wait.
        let within = Duration.seconds(60)
        let base = try TemporaryDirectory.make()
        let real = base + "/real"
        try FileManager.default.createDirectory(atPath: real, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: real)
        await #expect { try await FileTokenCacheBackend(directory: base + "/link").start(within: within) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .insecureDirectory
        }
        let shared = base + "/shared"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        chmod(shared, 0o777)
        await #expect { try await FileTokenCacheBackend(directory: shared).start(within: within) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .insecureDirectory && "\($0)".contains("chmod 700")
        }
        await #expect { try await SQLiteTokenCacheBackend(path: shared + "/tokens.sqlite").start(within: within) } throws: {
            ($0 as? TokenCacheBackendError)?.kind == .insecureDirectory
        }
    }

    @Test(arguments: BackendKind.allCases)
    func anUnchangedCacheIsNotReread(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let (backend, reloads) = try await kind.openCounting(location)
        let client = try makeClient(backend, endpoint: endpoint, clock: clock)
        _ = try await client.token(for: "https://a")
        let before = reloads()
        for _ in 0..<100 { #expect(try await client.token(for: "https://a").tokenSource == .cache) }
        #expect(reloads() == before)

        // Another process (another backend instance) writes: the next read sees it.
        let other = try makeClient(try await kind.open(location), endpoint: endpoint, clock: clock)
        _ = try await other.token(for: "https://b")
        #expect(try await client.token(for: "https://b").tokenSource == .cache)
        #expect(reloads() == before + 1)
        #expect(endpoint.requestCount == 2)
    }


    @Test(arguments: BackendKind.allCases)
    func expiredTokensArePurgedOnWriteNotOnRead(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(try await kind.open(location), endpoint: endpoint, clock: clock)
        _ = try await client.token(for: "https://valid")
        _ = try await client.token(for: "https://old")
        try await expireInStorage(kind, location, resource: "https://old", partition: client.partitionKey)

        let reader = try makeClient(try await kind.open(location), endpoint: endpoint, clock: clock)
        #expect(try await reader.token(for: "https://valid").tokenSource == .cache)
        #expect(try await stored(kind, location).contains("https://old"))
        _ = try await reader.token(for: "https://new")
        let after = try await stored(kind, location)
        #expect(!after.contains("https://old"))
        #expect(Set(after) == ["https://valid", "https://new"])
    }

    /// Rewrites one stored token's expiry to the past, as if time had passed.
    func expireInStorage(_ kind: BackendKind, _ location: String, resource: String, partition: TokenCachePartitionKey) async throws {
        let past = Date().addingTimeInterval(-60)
        switch kind {
        case .file:
            let path = location + "/" + partition.rawValue + ".json"
            let decoded = try PartitionDocument.decode(Array(try #require(FileManager.default.contents(atPath: path))))
            let entries = decoded.entries.map { entry -> TokenCacheEntry in
                var entry = entry
                if entry.resource == resource { entry.expiresOn = past }
                return entry
            }
            try Data(PartitionDocument.encode(descriptor: decoded.descriptor, entries: entries)).write(to: URL(fileURLWithPath: path))
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            try await queue.write { db in
                try db.execute(
                    sql: "UPDATE tokens SET expires_on = ? WHERE resource = ?", arguments: [Int(past.timeIntervalSince1970), resource])
            }
            try queue.close()
        }
    }

    func stored(_ kind: BackendKind, _ location: String) async throws -> [String] {
        try await kind.open(location).storedPartitions().flatMap { $0.entries.map(\.resource) }
    }

    @Test(arguments: BackendKind.allCases)
    func aPartitionKeepsAtMostItsCap(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(try await kind.open(location), endpoint: endpoint, clock: clock, cap: 3)
        for index in 0..<5 {
            endpoint.setLifetime(3600 + index * 60)
            _ = try await client.token(for: "https://r\(index)")
        }
        #expect(Set(try await stored(kind, location)) == ["https://r2", "https://r3", "https://r4"])
    }

    @Test(arguments: BackendKind.allCases)
    func listingNeverShowsTokensAndPurgeRemovesThem(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let clock = ManualClock(now: Date())
        let client = try makeClient(try await kind.open(location), endpoint: FakeTokenEndpoint(hostName: "h", clock: clock), clock: clock)
        let token = try await client.token(for: "https://listed")
        let partitions = try await kind.open(location).storedPartitions()
        #expect(partitions.count == 1)
        #expect(partitions[0].descriptor.identity == .clientID("persistent-test"))
        #expect(!"\(partitions)".contains(token.token))
        #expect(try await kind.open(location).purge(expiredOnly: true) == 0)
        #expect(try await kind.open(location).purge(expiredOnly: false) == 1)
        #expect(try await stored(kind, location).isEmpty)
    }

    // MARK: Encryption

    @Test(arguments: BackendKind.allCases)
    func encryptedCachesHoldNoTokenInClearAndRefuseAWrongKey(kind: BackendKind) async throws {
        let location = try kind.makeLocation()
        let key = SymmetricKeyBytes()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let token = try await makeClient(try await kind.open(location, key: key), endpoint: endpoint, clock: clock).token(for: "https://secret")
        for file in kind.dataFiles(location) {
            let bytes = try #require(FileManager.default.contents(atPath: file))
            #expect(!String(decoding: bytes, as: UTF8.self).contains(token.token))
        }
        let restarted = try makeClient(try await kind.open(location, key: key), endpoint: endpoint, clock: clock)
        #expect(try await restarted.token(for: "https://secret").token == token.token)

        await #expect { try await kind.open(location, key: SymmetricKeyBytes()) } throws: { error in
            (error as? TokenCacheBackendError)?.kind == .wrongEncryptionKey
        }
        await #expect { try await kind.open(location) } throws: { error in
            (error as? TokenCacheBackendError)?.kind == .missingEncryptionKey
        }
        #expect(endpoint.requestCount == 1)
    }
}
