import Foundation
import ManagedIdentity
import Testing
import TestSupport

/// ``IsolationProperty`` over the in-memory cache and the file and SQLite backends: 10,000 random
/// operations each, two hosts sharing one store.
struct IsolationPropertyTests {
    enum Store: String, CaseIterable, CustomStringConvertible {
        case memory, file, sqlite
        var description: String { rawValue }
    }

    @Test(arguments: Store.allCases)
    func noRequestIsAnsweredWithAnotherIdentitysHostsOrResourcesTokenNorAnExpiredOne(store: Store) async throws {
        let seed: UInt64 = 0x5EED_0000_0000_0000 | UInt64(Store.allCases.firstIndex(of: store) ?? 0)
        let location = try TemporaryDirectory.make() + (store == .file ? "/cache" : "/tokens.sqlite")
        let sharedMemory = TokenCache()
        let outcome = try await IsolationProperty(seed: seed, restarts: store != .memory).run { _ in
            switch store {
            case .memory: sharedMemory
            case .file: TokenCache(backend: try await BackendKind.file.open(location))
            case .sqlite: TokenCache(backend: try await BackendKind.sqlite.open(location))
            }
        }
        #expect(outcome.violations.isEmpty, "\(outcome.violations.prefix(5))")
        // The run exercised both paths: it is not a property of an empty cache.
        #expect(outcome.served > 8_000)
        #expect(outcome.fromCache > outcome.served / 4, "\(outcome.fromCache) of \(outcome.served) served from the cache")
        #expect(outcome.fromCache < outcome.served)
        if store != .memory { #expect(outcome.restarts > 50) }
    }
}
