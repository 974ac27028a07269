import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import ManagedIdentityTesting
import Synchronization
import TestSupport

/// The two persistent backends, for tests that hold for both.
enum BackendKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case file, sqlite

    var description: String { rawValue }

    /// A fresh location inside a private temporary directory.
    func makeLocation() throws -> String {
        let directory = try TemporaryDirectory.make()
        return self == .file ? directory + "/cache" : directory + "/tokens.sqlite"
    }

    func open(_ location: String, key: SymmetricKeyBytes? = nil) async throws -> any InspectableTokenCacheBackend {
        switch self {
        case .file:
            try await opened(FileTokenCacheBackend(directory: location, configuration: .init(encryptionKey: key?.key)))
        case .sqlite:
            try await opened(SQLiteTokenCacheBackend(path: location, configuration: .init(encryptionKey: key?.key)))
        }
    }

    /// The files that hold a location's data.
    func dataFiles(_ location: String) -> [String] {
        switch self {
        case .file:
            ((try? FileManager.default.contentsOfDirectory(atPath: location)) ?? [])
                .filter { $0.hasSuffix(".json") }.map { location + "/" + $0 }
        case .sqlite:
            [location, location + "-wal"].filter { FileManager.default.fileExists(atPath: $0) }
        }
    }
}

struct SymmetricKeyBytes: Sendable {
    let key: SymmetricKey
    init() { key = SymmetricKey(size: .bits256) }
}

/// A client of one identity against an in-process token issuer; nothing leaves the process.
func makeClient(
    _ backend: (any TokenCacheBackend)?, identity: ManagedIdentityID = .clientID("persistent-test"),
    endpoint: FakeTokenEndpoint, clock: ManualClock, host: String = "test-host", cap: Int = 1_000
) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
            clock: clock, hostDiscriminator: host),
        cache: TokenCache(backend: backend, maximumEntriesPerPartition: cap),
        transport: endpoint)
}


/// Forwards to a storage and counts the reads that handed stored tokens back (reloads), so a test
/// can tell that an unchanged partition is not read again, without a counter in the backend.
final class ReloadCountingStorage<Storage: TokenCacheStorage>: TokenCacheStorage {
    let storage: Storage
    private let count = Atomic<Int>(0)

    init(_ storage: Storage) { self.storage = storage }

    var reloads: Int { count.load(ordering: .relaxed) }

    func read(_ partition: TokenCachePartitionKey, version: inout Storage.Version?) async throws -> [TokenCacheEntry]? {
        let entries = try await storage.read(partition, version: &version)
        if entries != nil { count.add(1, ordering: .relaxed) }
        return entries
    }

    func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Storage.Version) {
        try await storage.write(entry, in: partition, retention: retention)
    }

    func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        try await storage.remove(keys, from: partition)
    }

    func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        try await storage.withRefreshLock(partition: partition, resource: resource, body)
    }
}

extension BackendKind {
    /// The backend at a location, behind a reload counter.
    func openCounting(_ location: String) async throws -> (backend: any TokenCacheBackend, reloads: @Sendable () -> Int) {
        switch self {
        case .file:
            let counting = ReloadCountingStorage(try await opened(FileTokenCacheBackend(directory: location)))
            return (counting, { counting.reloads })
        case .sqlite:
            let counting = ReloadCountingStorage(try await opened(SQLiteTokenCacheBackend(path: location)))
            return (counting, { counting.reloads })
        }
    }
}
