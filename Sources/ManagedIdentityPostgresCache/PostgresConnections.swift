import Logging
import PostgresNIO
import Synchronization

/// The few connections the backend needs, kept simply: an operation takes an idle connection or
/// opens one, and gives it back only if nothing failed on it. A database that went away and came
/// back is reached again by the next operation, without a backoff schedule or circuit breaker to
/// wait out (postgres-nio's pool trips one while the server is down and was seen to stay open long
/// after it returned). Only misses and writes come here; hits never do.
final class PostgresConnections: Sendable {
    private let configuration: PostgresTokenCacheBackend.Configuration
    private let logger: Logger
    private let idle = Mutex<[PostgresConnection]>([])
    private let identifiers = Atomic<Int>(1)
    private let maximumIdle = 4

    init(configuration: PostgresTokenCacheBackend.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs `body` on a connection; a connection on which anything failed is closed, not reused.
    func withConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let connection = try await lease()
        do {
            let result = try await body(connection)
            giveBack(connection)
            return result
        } catch {
            // Not awaited: a server that stopped answering must not hold the caller here either.
            Task { try? await connection.close() }
            throw error
        }
    }

    /// Runs `body` in a transaction, committed when it returns and rolled back when it throws.
    func withTransaction<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            let result = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return result
        }
    }

    /// A new connection of the caller's own, as the listener needs.
    func connect() async throws -> PostgresConnection {
        let connectionConfiguration = try configuration.connectionConfiguration()
        let id = identifiers.add(1, ordering: .relaxed).newValue
        let logger = logger
        // The whole handshake is bounded, not only the TCP connect: a server that accepts and then
        // never answers must not hold the request either. A connection that completes after the
        // caller stopped waiting is closed; dropped open, postgres-nio would trap.
        return try await bounded(
            configuration.operationTimeout,
            { try await PostgresConnection.connect(configuration: connectionConfiguration, id: id, logger: logger) },
            disposeOfLate: { connection in Task { try? await connection.close() } })
    }

    /// A connection given back after ``closeAll()`` (an operation still in flight when the backend
    /// stopped) is idle when the backend goes: postgres-nio traps on a connection dropped open, so
    /// each is closed, holding it until the close is done.
    deinit {
        let remaining = idle.withLock { idle in
            defer { idle.removeAll() }
            return idle
        }
        for connection in remaining where !connection.isClosed {
            Task { try? await connection.close() }
        }
    }

    /// Closes the idle connections.
    func closeAll() async {
        for connection in idle.withLock({ idle in defer { idle.removeAll() }; return idle }) {
            try? await connection.close()
        }
    }

    private func lease() async throws -> PostgresConnection {
        while let connection = idle.withLock({ $0.popLast() }) {
            if !connection.isClosed { return connection }
        }
        return try await connect()
    }

    private func giveBack(_ connection: PostgresConnection) {
        let kept = idle.withLock { idle -> Bool in
            guard idle.count < maximumIdle, !connection.isClosed else { return false }
            idle.append(connection)
            return true
        }
        if !kept { Task { try? await connection.close() } }
    }
}
