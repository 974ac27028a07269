import CacheBackendSupport
import Crypto
import Foundation
import Logging
import ManagedIdentity
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A cache backend on PostgreSQL, for services whose hosts come and go: tokens survive container
/// restarts and redeploys, and hosts starting at once send one request per token.
///
/// - **Hits stay in memory.** Every host listens on a channel (`LISTEN`) on which each write names
///   the partition it changed (`NOTIFY`). A hit whose partition nothing changed compares two numbers
///   and touches no network. While the listener is down, every read goes to the database, and
///   every partition counts as changed once it is back.
/// - **One request per token across hosts.** ``coordinateRefresh(_:_:)`` holds a PostgreSQL advisory
///   lock on the token while fetching it; other hosts wait (at most ``Configuration/refreshLockTimeout``),
///   then find the token. A holder that dies releases its lock with its connection.
/// - **Sharing is explicit.** Rows carry a scope: by default this host's id, for every identity, so
///   no token crosses hosts and the database adds durability only. With
///   ``Configuration/sharesUserAssignedIdentities``, user-assigned identities are stored in a shared
///   scope that every host carrying the identity reads; system-assigned identities never are.
/// - **Encrypted unless the operator opts out**: tokens are sealed with AES-GCM under a key kept
///   outside the database, bound to their row; without a key the backend refuses to open unless
///   ``Configuration/allowsPlaintext`` is set.
/// - **Faults are misses.** Every database call is bounded by ``Configuration/operationTimeout``; a
///   database that is down or restarting makes the cache fall back to memory and direct fetches (the
///   failure reaches the cache's failure handler), and the backend reconnects by itself.
/// - The schema is the numbered SQL files of `Migrations/postgres`, embedded in the build, applied in
///   order under an advisory lock and recorded in `mi_schema_migrations`.
///
/// The backend is a swift-service-lifecycle `Service`: run it in your `ServiceGroup`, or use
/// ``withRunning(configuration:logger:_:)`` for a scoped one. Nothing in it blocks a thread.
public final class PostgresTokenCacheBackend: TokenCacheStorage, InspectableTokenCacheBackend, Service {
    /// The version of a partition as this host knows it: the listener's epoch (which changes whenever
    /// the listener reconnects) and the number of changes other writers announced for it.
    public struct Version: Hashable, Sendable {
        let epoch: UInt64
        let generation: UInt64
    }

    /// The connection, this host's id, sharing, encryption and timeouts.
    public let configuration: Configuration
    /// The scope of rows this host writes for partitions it does not share.
    public let hostID: String
    private let instanceID = UUID().uuidString
    private let cipher: AtRestCipher?
    private let logger: Logger
    private let connections: PostgresConnections
    private let state = Mutex(State())

    private struct State {
        /// `nil` while preparing (migrating, checking the key); then ready, or failed for good.
        var readiness: Result<Void, TokenCacheBackendError>?
        var readinessWaiters: [UUID: CheckedContinuation<Result<Void, TokenCacheBackendError>, Never>] = [:]
        var listening = false
        var epoch: UInt64 = 1
        var generations: [TokenCachePartitionKey: UInt64] = [:]
        /// After a failed operation, others fail at once until then instead of each waiting out its
        /// timeout against a database that does not answer.
        var unavailableUntil: ContinuousClock.Instant?
    }

    /// How long operations fail fast after one failed.
    static let failFastPeriod = Duration.seconds(1)

    static let channel = "managed_identity_cache"
    static let encryptionMetadataName = "encryption_key_id"
    /// The advisory lock namespace of this library ('MI'), beside whatever else uses the database.
    static let lockNamespace: Int32 = 0x4D49

    /// Creates the backend; it connects when it runs.
    /// - Throws: ``TokenCacheBackendError`` when no encryption key is given and plaintext is not allowed.
    public init(configuration: Configuration, logger: Logger? = nil) throws(TokenCacheBackendError) {
        guard configuration.encryptionKey != nil || configuration.allowsPlaintext else {
            throw TokenCacheBackendError(
                kind: .missingEncryptionKey,
                message: "the PostgreSQL token cache encrypts tokens: pass an encryption key, or set allowsPlaintext "
                    + "to store them in clear")
        }
        self.configuration = configuration
        self.hostID = configuration.hostID ?? ManagedIdentityClient.defaultHostDiscriminator
        self.cipher = configuration.encryptionKey.map(AtRestCipher.init)
        let logger = logger ?? Logger(label: "managed-identity.postgres-cache", factory: { _ in SwiftLogNoOpLogHandler() })
        self.logger = logger
        self.connections = PostgresConnections(configuration: configuration, logger: logger)
    }

    /// Runs a backend for the duration of `body`, once it is ready (migrated, key checked).
    /// - Throws: ``TokenCacheBackendError`` when the database cannot be prepared within the
    ///   configuration's connect timeout, or the key is wrong; else what `body` throws.
    public static func withRunning<Result: Sendable>(
        configuration: Configuration, logger: Logger? = nil,
        _ body: (PostgresTokenCacheBackend) async throws -> Result
    ) async throws -> Result {
        let backend = try PostgresTokenCacheBackend(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await backend.run() }
            defer { group.cancelAll() }
            try await backend.waitUntilReady(timeout: configuration.connectTimeout)
            return try await body(backend)
        }
    }

    // MARK: Running

    /// Connects, migrates, checks the key and listens for changes until cancelled or a graceful
    /// shutdown, reconnecting whenever the database goes away.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.maintain() }
        await connections.closeAll()
        finishReadiness(.failure(TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache has stopped")))
    }

    /// Waits until the backend is ready to serve.
    /// - Throws: ``TokenCacheBackendError`` when it failed for good or is not ready within `timeout`.
    public func waitUntilReady(timeout: Duration) async throws(TokenCacheBackendError) {
        let readiness: Result<Void, TokenCacheBackendError>
        do {
            readiness = try await bounded(timeout) {
                let id = UUID()
                return await withTaskCancellationHandler {
                    await withCheckedContinuation { (waiter: CheckedContinuation<Result<Void, TokenCacheBackendError>, Never>) in
                        let known = self.state.withLock { state -> Result<Void, TokenCacheBackendError>? in
                            if let readiness = state.readiness { return readiness }
                            if Task.isCancelled { return .failure(TokenCacheBackendError(kind: .io, message: "cancelled")) }
                            state.readinessWaiters[id] = waiter
                            return nil
                        }
                        if let known { waiter.resume(returning: known) }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { $0.readinessWaiters.removeValue(forKey: id) }
                    waiter?.resume(returning: .failure(TokenCacheBackendError(kind: .io, message: "cancelled")))
                }
            }
        } catch {
            throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache could not reach its database in time")
        }
        try readiness.get()
    }

    /// Records the outcome of preparing, or of stopping; the first failure is the one kept.
    private func finishReadiness(_ result: Result<Void, TokenCacheBackendError>) {
        let (waiters, readiness) = state.withLock { state in
            switch state.readiness {
            case nil, .success?: state.readiness = result
            case .failure?: break
            }
            defer { state.readinessWaiters = [:] }
            return (state.readinessWaiters.values, state.readiness ?? result)
        }
        for waiter in waiters { waiter.resume(returning: readiness) }
    }

    /// Prepares the database (retrying while it cannot be reached), then keeps the listener up.
    private func maintain() async {
        var pause = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                try await bounded(configuration.connectTimeout) { try await self.prepare() }
                finishReadiness(.success(()))
                break
            } catch let error as TokenCacheBackendError where error.kind != .io {
                // A wrong or missing key, or a database from a newer version: retrying cannot help.
                finishReadiness(.failure(error))
                return
            } catch {
                logger.warning("the PostgreSQL token cache cannot prepare its database; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
        pause = .milliseconds(50)
        while !Task.isCancelled {
            do {
                try await listen()
            } catch {
                logger.warning("the PostgreSQL token cache lost its listener; reads go to the database until it is back",
                               metadata: ["error": "\(error)"])
            }
            state.withLock { state in
                state.listening = false
                state.epoch &+= 1
            }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(2))
        }
    }

    /// Listens on the channel on a connection of its own until it fails.
    private func listen() async throws {
        let connection = try await connections.connect()
        defer { Task { try? await connection.close() } }
        try await connection.listen(on: Self.channel) { notifications in
            // LISTEN is in place: what changed while nobody listened is unknown, so everything counts as changed.
            state.withLock { state in
                state.listening = true
                state.epoch &+= 1
            }
            for try await notification in notifications { received(notification.payload) }
        }
    }

    /// A write announced by another instance: `<instance id> <partition key>`.
    private func received(_ payload: String) {
        let parts = payload.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] != instanceID, let key = TokenCachePartitionKey(rawValue: String(parts[1])) else { return }
        state.withLock { $0.generations[key, default: 0] &+= 1 }
    }

    private func ensureReady() throws(TokenCacheBackendError) {
        switch state.withLock({ $0.readiness }) {
        case .success?: return
        case .failure(let error)?: throw error
        case nil: throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache is not connected yet")
        }
    }

    /// Runs one database operation, bounded by ``Configuration/operationTimeout``; for a moment
    /// after one fails, the next fail at once (the cache then goes on without the backend).
    private func databaseOperation<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try ensureReady()
        if let until = state.withLock({ $0.unavailableUntil }), ContinuousClock.now < until {
            throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache's database failed a moment ago")
        }
        do {
            let result = try await bounded(configuration.operationTimeout, operation)
            state.withLock { $0.unavailableUntil = nil }
            return result
        } catch {
            if !(error is CancellationError) {
                state.withLock { $0.unavailableUntil = ContinuousClock.now + Self.failFastPeriod }
            }
            throw error
        }
    }

    private func currentVersion(_ partition: TokenCachePartitionKey) -> (version: Version, listening: Bool) {
        state.withLock { state in
            (Version(epoch: state.epoch, generation: state.generations[partition] ?? 0), state.listening)
        }
    }

    // MARK: Storage

    /// The partition's rows when another writer changed them since `version`; no network when the
    /// listener is up and nothing was announced.
    public func read(_ partition: TokenCachePartitionKey, version: inout Version?) async throws -> [TokenCacheEntry]? {
        let (current, listening) = currentVersion(partition)
        if listening, version == current { return nil }
        let entries = try await databaseOperation {
            try await self.connections.withConnection { connection in try await self.entries(connection, partition) }
        }
        // The version taken before the query: a change announced meanwhile makes the next read look again.
        version = current
        return entries
    }

    /// Upserts the token's row (the newer wins) and applies the retention rule to the partition, in
    /// one transaction under a lock on the partition, and announces the change.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        let key = partition.key
        let scope = scope(for: partition.identity)
        let sealed = try SealedToken.seal(entry.accessToken, with: cipher, context: Self.context(scope, key, entry.key))
        let before = currentVersion(key).version
        let entries = try await databaseOperation {
            try await self.connections.withTransaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockNamespace), \(Self.lockID(key.rawValue)))", logger: self.logger)
                try await connection.query(
                    """
                    INSERT INTO mi_partitions (scope, partition_key, source, identity_kind, identity_id, endpoint)
                    VALUES (\(scope), \(key.rawValue), \(partition.source.rawValue), \(partition.identity.kind.rawValue),
                            \(partition.identity.id), \(partition.endpoint))
                    ON CONFLICT (scope, partition_key) DO NOTHING
                    """, logger: self.logger)
                try await connection.query(
                    """
                    INSERT INTO mi_tokens (scope, partition_key, resource, token_type, access_token, expires_on, refresh_on, cached_at)
                    VALUES (\(scope), \(key.rawValue), \(entry.resource), \(entry.tokenType), \(sealed), \(Self.epoch(entry.expiresOn)),
                            \(entry.refreshOn.map(Self.epoch)), \(Self.epoch(entry.cachedAt)))
                    ON CONFLICT (scope, partition_key, resource, token_type) DO UPDATE SET
                        access_token = excluded.access_token, expires_on = excluded.expires_on,
                        refresh_on = excluded.refresh_on, cached_at = excluded.cached_at
                    WHERE excluded.cached_at >= mi_tokens.cached_at
                    """, logger: self.logger)
                try await self.applyRetention(connection, scope: scope, key: key, written: entry.key, retention: retention)
                try await connection.query(
                    "SELECT pg_notify(\(Self.channel), \(self.instanceID + " " + key.rawValue))", logger: self.logger)
                return try await self.entries(connection, key)
            }
        }
        return (entries, announcedOwnWrite(key, since: before))
    }

    /// Removes tokens' rows of a partition in this host's scopes, and announces it.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        let before = currentVersion(partition).version
        try await databaseOperation {
            try await self.connections.withTransaction { connection in
                for removed in keys {
                    try await connection.query(
                        """
                        DELETE FROM mi_tokens WHERE scope = ANY(\(self.readScopes)) AND partition_key = \(partition.rawValue)
                            AND resource = \(removed.resource) AND token_type = \(removed.tokenType)
                        """, logger: self.logger)
                }
                try await connection.query(
                    "SELECT pg_notify(\(Self.channel), \(self.instanceID + " " + partition.rawValue))", logger: self.logger)
            }
        }
        _ = announcedOwnWrite(partition, since: before)
    }

    /// Holds an advisory lock on the token while `body` fetches it, so other hosts wait and read the
    /// result; after ``Configuration/refreshLockTimeout`` a waiter runs `body` anyway.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        try ensureReady()
        if let until = state.withLock({ $0.unavailableUntil }), ContinuousClock.now < until {
            throw TokenCacheBackendError(kind: .io, message: "the PostgreSQL token cache's database failed a moment ago")
        }
        // Hosts that do not share tokens need not take turns either.
        let lock = Self.lockID((configuration.sharesUserAssignedIdentities ? "" : hostID) + "\n" + partition.rawValue + "\n" + resource)
        return try await connections.withConnection { connection in
            let deadline = ContinuousClock.now + configuration.refreshLockTimeout
            var pause = Duration.milliseconds(5)
            var held = false
            while true {
                // Each attempt is bounded: a database that stopped answering must not hold the request.
                held = try await databaseOperation {
                    var acquired = false
                    let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockNamespace), \(lock))", logger: self.logger)
                    for try await value in rows.decode(Bool.self) { acquired = value }
                    return acquired
                }
                if held || ContinuousClock.now >= deadline { break }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(50))
            }
            if !held {
                logger.warning(
                    "another host has been fetching this token for too long; fetching without waiting",
                    metadata: ["managed-identity.partition": "\(partition)"])
            }
            // The holder before us may have committed a moment ago, its notification still on the way:
            // the re-read inside `body` must ask the database, whatever this host has heard.
            state.withLock { $0.generations[partition, default: 0] &+= 1 }
            let outcome: Swift.Result<Result, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            if held {
                _ = try? await databaseOperation {
                    try await connection.query("SELECT pg_advisory_unlock(\(Self.lockNamespace), \(lock))", logger: self.logger)
                }
            }
            return try outcome.get()
        }
    }

    /// The version a writer records after its own write: one more change, unless another writer's
    /// change (or a listener restart) was announced meanwhile, whose rows the write may not have seen.
    private func announcedOwnWrite(_ partition: TokenCachePartitionKey, since before: Version) -> Version {
        state.withLock { state in
            let generation = (state.generations[partition] ?? 0) &+ 1
            state.generations[partition] = generation
            guard state.epoch == before.epoch, generation == before.generation &+ 1 else { return before }
            return Version(epoch: state.epoch, generation: generation)
        }
    }

    // MARK: Inspection

    /// Lists the partitions this host reads, without tokens.
    public func storedPartitions() async throws -> [StoredTokenCachePartition] {
        try await databaseOperation {
            try await self.connections.withConnection { connection in
                var partitions: [TokenCachePartitionKey: StoredTokenCachePartition] = [:]
                let rows = try await connection.query(
                    """
                    SELECT partition_key, source, identity_kind, identity_id, endpoint FROM mi_partitions
                    WHERE scope = ANY(\(self.readScopes))
                    """, logger: self.logger)
                for try await (key, source, kind, id, endpoint) in rows.decode((String, String, String, String?, String).self) {
                    guard let key = TokenCachePartitionKey(rawValue: key), let source = ManagedIdentitySource(rawValue: source),
                        let kind = ManagedIdentityID.Kind(rawValue: kind), let identity = ManagedIdentityID(kind: kind, id: id)
                    else { continue }
                    partitions[key] = StoredTokenCachePartition(
                        descriptor: TokenCachePartitionDescriptor(key: key, source: source, identity: identity, endpoint: endpoint),
                        entries: [])
                }
                for key in partitions.keys {
                    partitions[key]?.entries = try await self.entries(connection, key, unsealing: false).map(StoredTokenCacheEntry.init)
                }
                return partitions.values.sorted { $0.descriptor.key < $1.descriptor.key }
            }
        }
    }

    // MARK: Rows

    /// The scopes this host reads: its own, and the shared one when it shares user-assigned identities.
    private var readScopes: [String] { configuration.sharesUserAssignedIdentities ? [hostID, ""] : [hostID] }

    /// The scope a partition's rows are written in.
    private func scope(for identity: ManagedIdentityID) -> String {
        configuration.sharesUserAssignedIdentities && identity != .systemAssigned ? "" : hostID
    }

    private func entries(_ connection: PostgresConnection, _ key: TokenCachePartitionKey, unsealing: Bool = true) async throws
        -> [TokenCacheEntry]
    {
        let rows = try await connection.query(
            """
            SELECT scope, resource, token_type, access_token, expires_on, refresh_on, cached_at FROM mi_tokens
            WHERE scope = ANY(\(readScopes)) AND partition_key = \(key.rawValue)
            """, logger: logger)
        var entries: [TokenCacheEntry] = []
        for try await (scope, resource, tokenType, stored, expiresOn, refreshOn, cachedAt)
            in rows.decode((String, String, String, String, Int64, Int64?, Int64).self)
        {
            var token = "<not read>"
            if unsealing {
                switch try SealedToken.open(
                    stored, with: cipher, context: Self.context(scope, key, TokenCacheEntryKey(resource: resource, tokenType: tokenType)),
                    location: "in PostgreSQL")
                {
                case .token(let opened): token = opened
                case .unusable(let reason):
                    logger.error("\(reason); ignoring it")
                    continue
                }
            }
            entries.append(
                TokenCacheEntry(
                    partitionKey: key, resource: resource, tokenType: tokenType, accessToken: token,
                    expiresOnEpoch: expiresOn, refreshOnEpoch: refreshOn, cachedAtEpoch: cachedAt))
        }
        return entries
    }

    /// ``TokenCacheRetention`` in SQL, as the SQLite backend writes it (binary collation for ties).
    private func applyRetention(
        _ connection: PostgresConnection, scope: String, key: TokenCachePartitionKey, written: TokenCacheEntryKey,
        retention: TokenCacheRetention
    ) async throws {
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND expires_on <= \(Self.epoch(retention.now))
                AND NOT (resource = \(written.resource) AND token_type = \(written.tokenType))
            """, logger: logger)
        try await connection.query(
            """
            DELETE FROM mi_tokens WHERE scope = \(scope) AND partition_key = \(key.rawValue) AND (resource, token_type) IN (
                SELECT resource, token_type FROM mi_tokens
                WHERE scope = \(scope) AND partition_key = \(key.rawValue)
                    AND NOT (resource = \(written.resource) AND token_type = \(written.tokenType))
                ORDER BY expires_on DESC, resource COLLATE "C" DESC, token_type COLLATE "C" DESC
                OFFSET \(max(retention.maximumEntriesPerPartition, 1) - 1))
            """, logger: logger)
    }

    static func context(_ scope: String, _ key: TokenCachePartitionKey, _ entry: TokenCacheEntryKey) -> String {
        scope + "\n" + key.rawValue + "\n" + entry.resource + "\n" + entry.tokenType
    }

    static func epoch(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// A 32-bit lock id from text (the first bytes of its SHA-256).
    static func lockID(_ text: String) -> Int32 {
        let digest = Array(SHA256.hash(data: Array(text.utf8)))
        return Int32(bitPattern: UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3]))
    }

    // MARK: Preparing

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
        var recorded: String?
        let rows = try await connection.query(
            "SELECT value FROM mi_metadata WHERE name = \(Self.encryptionMetadataName)", logger: logger)
        for try await value in rows.decode(String.self) { recorded = value }
        guard let id = try AtRestCipher.checkKey(cipher, recorded: recorded, location: "in PostgreSQL") else { return }
        try await connection.query(
            "INSERT INTO mi_metadata (name, value) VALUES (\(Self.encryptionMetadataName), \(id)) ON CONFLICT (name) DO NOTHING",
            logger: logger)
        // Another host may have recorded its key first: compare again.
        try await checkEncryptionKey(connection)
    }
}

/// Runs `operation`, or throws when it takes longer than `limit`, so a database that does not answer
/// turns a request into a miss instead of a hang. The caller stops waiting at the limit even when the
/// operation ignores cancellation (a query to a frozen server does): the operation is cancelled and
/// left to end on its own. A value it produces after the caller stopped waiting goes to
/// `disposeOfLate` (a connection must be closed, not dropped).
func bounded<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async throws -> T,
    disposeOfLate: @escaping @Sendable (T) -> Void = { _ in }
) async throws -> T {
    let outcome = BoundedOutcome<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<T, any Error>) in
            outcome.install(waiter)
            let work = Task {
                do {
                    let value = try await operation()
                    if !outcome.finish(.success(value)) { disposeOfLate(value) }
                } catch {
                    outcome.finish(.failure(error))
                }
            }
            outcome.onFinish { work.cancel() }
            Task {
                try? await Task.sleep(for: limit)
                outcome.finish(.failure(TokenCacheBackendError(kind: .io, message: "the database did not answer within \(limit)")))
            }
        }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
    }
}

/// The first of an operation's result, its timeout and its caller's cancellation, delivered once.
private final class BoundedOutcome<T: Sendable>: Sendable {
    private struct State {
        var waiter: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func install(_ waiter: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let early = state.early { return early }
            state.waiter = waiter
            return nil
        }
        if let early { waiter.resume(with: early) }
    }

    func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
        let already = state.withLock { state -> Bool in
            if state.done { return true }
            state.cleanup = cleanup
            return false
        }
        if already { cleanup() }
    }

    /// Delivers `result` unless another outcome came first; says whether it was delivered.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (delivered, waiter, cleanup) = state.withLock {
            state -> (Bool, CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard !state.done else { return (false, nil, nil) }
            state.done = true
            if state.waiter == nil { state.early = result }
            defer { state.waiter = nil; state.cleanup = nil }
            return (true, state.waiter, state.cleanup)
        }
        waiter?.resume(with: result)
        cleanup?()
        return delivered
    }
}
