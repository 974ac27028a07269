import Crypto
import Foundation
import Logging
import ManagedIdentity
import ManagedIdentityPostgresCache
import ManagedIdentityTesting
import Synchronization
import TestSupport

/// Backends a test runs, each with its `run()` in a task of its own, cancelled by ``stopAll()``.
final class RunningBackends: Sendable {
    private let tasks = Mutex<[Task<Void, any Error>]>([])

    /// Starts a backend and waits until it is ready.
    func start(_ configuration: PostgresTokenCacheBackend.Configuration) async throws -> PostgresTokenCacheBackend {
        // MI_TEST_LOG=1 shows the backend's log on stderr, for a test that needs explaining.
        var logger = Logger(label: "debug-pg", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = ProcessInfo.processInfo.environment["MI_TEST_LOG"] == nil ? .critical : .debug
        let backend = try PostgresTokenCacheBackend(configuration: configuration, logger: logger)
        tasks.withLock { $0.append(Task { try await backend.run() }) }
        try await backend.waitUntilReady(timeout: .seconds(30))
        return backend
    }

    func stopAll() {
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    deinit { stopAll() }
}

/// One test's database on the shared server, and a key to encrypt with.
struct TestDatabase {
    let server: PostgresServer
    let name: String
    let key = SymmetricKey(size: .bits256)

    /// A new database on `server`, or on the shared server.
    static func make(server: PostgresServer? = nil) async throws -> TestDatabase {
        let server = if let server { server } else { try await PostgresServer.shared() }
        return TestDatabase(server: server, name: try await server.makeDatabase())
    }

    func configuration(
        hostID: String = "host-test", sharing: Bool = false, key: SymmetricKey? = nil, plaintext: Bool = false
    ) -> PostgresTokenCacheBackend.Configuration {
        PostgresTokenCacheBackend.Configuration(
            host: "127.0.0.1", port: server.port, username: server.user, database: name, tls: .disable,
            encryptionKey: plaintext ? nil : key ?? self.key, allowsPlaintext: plaintext, hostID: hostID,
            sharesUserAssignedIdentities: sharing, operationTimeout: .seconds(5))
    }
}

/// A client of one identity against an in-process issuer; nothing leaves the process.
func makeClient(
    _ cache: TokenCache, identity: ManagedIdentityID = .clientID("postgres-test"), endpoint: FakeTokenEndpoint,
    clock: ManualClock, host: String = "host-test"
) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
            clock: clock, hostDiscriminator: host),
        cache: cache, transport: endpoint)
}
