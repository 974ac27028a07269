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
/// - **Faults are misses, from the first call.** Every database call is bounded by
///   ``Configuration/operationTimeout``; a database that is down at start, or goes away later, makes
///   the cache serve from memory and fetch what it lacks (the outage reaches the cache's failure
///   handler once); the backend reconnects in the background with backoff and, once the database
///   answers, writes the tokens fetched meanwhile.
/// - The schema is the numbered SQL files of `Migrations/postgres`, embedded in the build, applied in
///   order under an advisory lock and recorded in `mi_schema_migrations`.
///
/// The backend has the lifecycle of every persistent backend (``TokenCacheBackendService``): created
/// without I/O, run as a swift-service-lifecycle `Service` in your `ServiceGroup`, or scoped with
/// ``withRunning(configuration:logger:_:)``. Nothing in it blocks a thread. Its rooms: the change
/// tracker (`PostgresChangeTracker`, a value), the lifecycle and listener
/// (`PostgresTokenCacheBackend+Lifecycle.swift`), rows and SQL (`+Rows.swift`), connections
/// (`PostgresConnections`), the timeout primitive (`Bounded.swift`) and the migrator.
public final class PostgresTokenCacheBackend: TokenCacheStorage, InspectableTokenCacheBackend, TokenCacheBackendService {
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
    let instanceID = UUID().uuidString
    let sealing: TokenRowSealing
    let logger: Logger
    let connections: PostgresConnections
    /// What this host knows of changes, fed by the listener.
    let changes = Mutex(PostgresChangeTracker())
    /// Preparing the database (migrations, key check), retrying it, and the writes kept meanwhile.
    let lifecycle: StoreLifecycle
    /// Tokens that could not be stored yet, the newest per token, stored together: one transaction
    /// per partition instead of one per token, so a backlog after an outage drains in a few round
    /// trips even while other writers queue on the same partition.
    let unstored = Mutex<[String: KeptWrite]>([:])

    struct KeptWrite: Sendable {
        var entry: TokenCacheEntry
        var partition: TokenCachePartitionDescriptor
        var retention: TokenCacheRetention
    }

    static let channel = "managed_identity_cache"
    static let encryptionMetadataName = "encryption_key_id"
    /// The advisory lock namespace of this library ('MI'), beside whatever else uses the database.
    static let lockNamespace: Int32 = 0x4D49

    /// Creates the backend; it connects when it runs or is first used.
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
        self.sealing = TokenRowSealing(encryptionKey: configuration.encryptionKey, location: "in PostgreSQL")
        let logger = logger ?? Logger(label: "managed-identity.postgres-cache", factory: { _ in SwiftLogNoOpLogHandler() })
        self.logger = logger
        self.connections = PostgresConnections(configuration: configuration, logger: logger)
        self.lifecycle = StoreLifecycle(
            name: "the PostgreSQL token cache at \(configuration.host):\(configuration.port)", logger: logger)
        lifecycle.bind(self) { backend in try await backend.prepareBounded() }
    }

    /// Runs one database operation once the database is prepared, bounded by
    /// ``Configuration/operationTimeout``; one that fails for want of the database sends the backend
    /// back to reconnecting, and the next fail at once until it is back.
    func databaseOperation<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try lifecycle.ensureOpen()
        do {
            return try await bounded(configuration.operationTimeout, operation)
        } catch {
            // A slow answer is not a lost server: under load (many writers queued on one partition's
            // lock, a busy machine) closing the store on every timeout made it flap and kept the
            // writes waiting. A timed-out operation is a miss; a broken connection closes the store.
            if !(error is CancellationError), !isBoundedTimeout(error), Self.meansUnreachable(error) { lifecycle.lost(error) }
            throw error
        }
    }

    // MARK: Storage

    /// The partition's rows when another writer changed them since `version`; no network when the
    /// listener is up and nothing was announced.
    public func read(_ partition: TokenCachePartitionKey, version: inout Version?) async throws -> [TokenCacheEntry]? {
        // The hit path: one lookup under the lock, and nothing sent.
        let (current, listening) = changes.withLock { ($0.version(of: partition), $0.listening) }
        if PostgresChangeTracker.isUnchanged(current, listening: listening, since: version) { return nil }
        let entries = try await databaseOperation {
            try await self.connections.withConnection { connection in try await self.entries(connection, partition) }
        }
        // The version taken before the query: a change announced meanwhile makes the next read look again.
        version = current
        return entries
    }

    /// Upserts the token's row (the newer wins) and applies the retention rule to the partition, in
    /// one transaction under a lock on the partition, and announces the change. While the database
    /// cannot be reached the write is kept, and made once it answers.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        do {
            return try await upsert(entry, in: partition, retention: retention)
        } catch let error where !Self.isConfigurationError(error) {
            keep(KeptWrite(entry: entry, partition: partition, retention: retention))
            throw error
        }
    }

    private func keep(_ write: KeptWrite) {
        let key = write.partition.key.rawValue + "\n" + write.entry.resource + "\n" + write.entry.tokenType
        unstored.withLock { unstored in
            if let kept = unstored[key], TokenCacheRetention.storedWins(kept.entry, over: write.entry) { return }
            if unstored[key] == nil, unstored.count >= StoreLifecycle.maximumPendingWrites { return }
            unstored[key] = write
        }
        // One kept write for the lifecycle, whatever the number of tokens: it stores them all.
        lifecycle.keep("unstored tokens") { [weak self] in try await self?.storeUnstored() }
    }

    /// Stores the kept tokens, a transaction per partition; those stored are forgotten, unless a
    /// newer token of the same key was kept meanwhile.
    private func storeUnstored() async throws {
        let kept = unstored.withLock { $0 }
        let byPartition = Dictionary(grouping: kept, by: { $0.value.partition.key })
        for (_, group) in byPartition {
            let writes = group.sorted { $0.value.entry.cachedAt < $1.value.entry.cachedAt }
            // At most 500 tokens a transaction (a few statements each), well inside the operation bound.
            for start in stride(from: 0, to: writes.count, by: 500) {
                let chunk = writes[start..<min(start + 500, writes.count)]
                guard let partition = chunk.first?.value.partition else { continue }
                _ = try await store(chunk.map(\.value), in: partition, returningEntries: false)
                unstored.withLock { unstored in
                    for (key, write) in chunk where unstored[key]?.entry.cachedAt == write.entry.cachedAt { unstored[key] = nil }
                }
            }
        }
    }

    private func upsert(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        let before = changes.withLock { $0.version(of: partition.key) }
        let entries = try await store([KeptWrite(entry: entry, partition: partition, retention: retention)], in: partition, returningEntries: true)
        return (entries, changes.withLock { $0.ownWrite(partition.key, since: before) })
    }

    /// Upserts tokens of one partition (the newer wins) and applies each one's retention, in one
    /// transaction under a lock on the partition, and announces the change.
    /// - Returns: the stored partition, when asked for.
    func store(
        _ writes: [KeptWrite], in partition: TokenCachePartitionDescriptor, returningEntries: Bool
    ) async throws -> [TokenCacheEntry] {
        let key = partition.key
        let scope = scope(for: partition.identity)
        let sealed = try writes.map { try sealing.seal($0.entry.accessToken, context: Self.context(scope, key, $0.entry.key)) }
        return try await databaseOperation {
            try await self.connections.withTransaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockNamespace), \(Self.lockID(key.rawValue)))", logger: self.logger)
                try await connection.query(
                    """
                    INSERT INTO mi_partitions (scope, partition_key, source, identity_kind, identity_id, endpoint)
                    VALUES (\(scope), \(key.rawValue), \(partition.source.rawValue), \(partition.identity.kind.rawValue),
                            \(partition.identity.id), \(partition.endpoint))
                    ON CONFLICT (scope, partition_key) DO NOTHING
                    """, logger: self.logger)
                if writes.count > 1 {
                    // A backlog: one statement for every row and one retention pass, so that a
                    // transaction stays within the operation bound under load (three round trips per
                    // token made each chunk of 50 exceed 5 s on a busy machine, and the backlog never
                    // drained while callers wrote). Keys are unique in a backlog, so no row is
                    // touched twice by the one upsert.
                    try await self.upsertBacklog(connection, scope: scope, key: key, writes: writes, sealed: sealed)
                } else if let write = writes.first, let sealed = sealed.first {
                    let entry = write.entry
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
                    try await self.applyRetention(connection, scope: scope, key: key, written: entry.key, retention: write.retention)
                }
                try await connection.query(
                    "SELECT pg_notify(\(Self.channel), \(self.instanceID + " " + key.rawValue))", logger: self.logger)
                return returningEntries ? try await self.entries(connection, key) : []
            }
        }
    }

    /// Removes tokens' rows of a partition in this host's scopes, and announces it.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        let before = changes.withLock { $0.version(of: partition) }
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
        _ = changes.withLock { $0.ownWrite(partition, since: before) }
    }

    /// Holds an advisory lock on the token while `body` fetches it, so other hosts wait and read the
    /// result; after ``Configuration/refreshLockTimeout`` a waiter runs `body` anyway.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        try lifecycle.ensureOpen()
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
            changes.withLock { $0.invalidate(partition) }
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
}
