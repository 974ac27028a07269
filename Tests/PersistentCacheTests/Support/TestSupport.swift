import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
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

    func open(_ location: String, key: SymmetricKeyBytes? = nil) throws -> any InspectableTokenCacheBackend {
        switch self {
        case .file:
            try FileTokenCacheBackend(directory: location, configuration: .init(encryptionKey: key?.key))
        case .sqlite:
            try SQLiteTokenCacheBackend(path: location, configuration: .init(encryptionKey: key?.key))
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
    endpoint: FakeTokenEndpoint, clock: ConformanceClock, host: String = "test-host"
) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
            clock: clock, hostDiscriminator: host),
        cache: TokenCache(backend: backend),
        transport: endpoint)
}

