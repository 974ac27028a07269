import CacheBackendSupport
import Foundation
import Logging
import ManagedIdentity
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Starting, preparing (migrations, key check), the listener, and stopping.
extension PostgresTokenCacheBackend {
    /// Runs a backend for the duration of `body`, which starts once the first attempt to prepare the
    /// database ended (at most a second): at once with a database that is down, which is then a miss
    /// until it answers.
    /// - Throws: ``TokenCacheBackendError`` when the configuration is wrong (no key and no plaintext,
    ///   a wrong key, a wrong password, a schema newer than this library); else what `body` throws.
    public static func withRunning<Result: Sendable>(
        configuration: Configuration, logger: Logger? = nil,
        _ body: (PostgresTokenCacheBackend) async throws -> Result
    ) async throws -> Result {
        let backend = try PostgresTokenCacheBackend(configuration: configuration, logger: logger)
        return try await backend.withRunning(startWithin: .seconds(1), body)
    }

    /// Prepares the database, retrying while it cannot be reached, and keeps the listener up until
    /// cancelled or a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.lifecycle.run() }
                group.addTask { await self.maintainListener() }
                await group.waitForAll()
            }
        }
        lifecycle.stop()
        await connections.closeAll()
    }

    /// Starts preparing the database and waits for the first attempt, at most `within`.
    /// - Throws: ``TokenCacheBackendError`` when the configuration is wrong; a database that cannot be
    ///   reached yet is not an error here.
    public func start(within: Duration = .seconds(1)) async throws(TokenCacheBackendError) {
        try await lifecycle.started(within: within)
    }

    /// Where the database is: prepared, being reached, or failed for good.
    public var state: TokenCacheBackendState { lifecycle.publicState }

    /// Waits until the backend is ready to serve.
    /// - Throws: ``TokenCacheBackendError`` when it failed for good or is not ready within `timeout`.
    public func waitUntilReady(timeout: Duration) async throws(TokenCacheBackendError) {
        switch await lifecycle.waitUntilSettled(within: timeout) {
        case .open: return
        case .failed(let error): throw error
        case .stopped: throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache has stopped")
        case .closed, .opening:
            throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache could not reach its database in time")
        }
    }

    // MARK: Preparing

    /// One attempt to prepare the database, bounded by ``Configuration/connectTimeout``; its error
    /// says whether waiting can mend it.
    func prepareBounded() async throws {
        do {
            try await bounded(configuration.connectTimeout) { try await self.prepare() }
        } catch let error as TokenCacheBackendError {
            throw error
        } catch let error as PSQLError where Self.isMisconfiguration(error) {
            throw TokenCacheBackendError(
                kind: .misconfigured,
                message: "the PostgreSQL server refused the cache's configuration: \(Self.serverMessage(error))")
        }
    }

    /// Migrates under an advisory lock and checks the encryption key.
    private func prepare() async throws {
        try await connections.withConnection { connection in
            try await PostgresMigrator.migrate(connection, logger: logger)
        }
        try await connections.withConnection { connection in
            try await checkEncryptionKey(connection)
        }
    }

    private func checkEncryptionKey(_ connection: PostgresConnection) async throws {
        try await sealing.settleKey(
            recorded: {
                var recorded: String?
                let rows = try await connection.query(
                    "SELECT value FROM mi_metadata WHERE name = \(Self.encryptionMetadataName)", logger: logger)
                for try await value in rows.decode(String.self) { recorded = value }
                return recorded
            },
            recordIfAbsent: { id in
                try await connection.query(
                    "INSERT INTO mi_metadata (name, value) VALUES (\(Self.encryptionMetadataName), \(id)) ON CONFLICT (name) DO NOTHING",
                    logger: logger)
            })
    }

    /// SQLSTATEs no wait mends: a wrong password or authorization, a database or role that does not exist.
    static let misconfigurationStates: Set<String> = ["28P01", "28000", "3D000", "3F000", "42501"]

    static func isMisconfiguration(_ error: PSQLError) -> Bool {
        error.serverInfo?[.sqlState].map { misconfigurationStates.contains($0) } ?? false
    }

    static func isConfigurationError(_ error: any Error) -> Bool {
        if let error = error as? TokenCacheBackendError { return error.isConfigurationError }
        if let error = error as? PSQLError { return isMisconfiguration(error) }
        return false
    }

    /// Whether a failed operation means the database cannot be reached (rather than, say, a bad row).
    static func meansUnreachable(_ error: any Error) -> Bool {
        switch error {
        case let error as TokenCacheBackendError: error.kind == .io
        case let error as PSQLError: error.serverInfo == nil || error.code == .connectionError || error.code == .serverClosedConnection
        default: true
        }
    }

    /// What the server said, without anything the client sent.
    static func serverMessage(_ error: PSQLError) -> String {
        let state = error.serverInfo?[.sqlState] ?? "?"
        let message = error.serverInfo?[.message] ?? "\(error.code)"
        return "\(message) (SQLSTATE \(state))"
    }

    // MARK: The listener

    /// Once the database is prepared, keeps a listener on the channel, reconnecting with backoff
    /// whenever it goes away.
    private func maintainListener() async {
        var pause = Duration.milliseconds(50)
        while !Task.isCancelled {
            guard case .open = lifecycle.phase else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            do {
                try await listen()
                pause = .milliseconds(50)
            } catch {
                logger.warning(
                    "the PostgreSQL token cache lost its listener; reads go to the database until it is back",
                    metadata: ["error": "\(error)"])
            }
            changes.withLock { $0.listenerLost() }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    /// Listens on the channel on a connection of its own until it fails.
    private func listen() async throws {
        let connection = try await connections.connect()
        defer { Task { try? await connection.close() } }
        try await connection.listen(on: Self.channel) { notifications in
            changes.withLock { $0.listenerStarted() }
            for try await notification in notifications { received(notification.payload) }
        }
    }

    /// A write announced by another instance: `<instance id> <partition key>`.
    private func received(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] != instanceID, let key = TokenCachePartitionKey(rawValue: String(parts[1])) else { return }
        changes.withLock { $0.received(key) }
    }
}
