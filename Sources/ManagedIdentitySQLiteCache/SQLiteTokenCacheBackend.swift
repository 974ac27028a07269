import CacheBackendSupport
import Crypto
import Foundation
import GRDB
import Logging
import ManagedIdentity
import ServiceLifecycle
import Synchronization

/// A cache backend on a SQLite database (the system's libsqlite3, through GRDB), for services and for
/// many processes sharing one cache.
///
/// - One row per token, keyed by (partition, resource, token type), with expiry columns; a write
///   touches its token's row only, in a `BEGIN IMMEDIATE` transaction that also applies the cache's
///   retention rule (``TokenCacheRetention``) in SQL: the newer row wins, expired rows go, and past
///   the cap the rows closest to expiry go, never the one written.
/// - Every database call runs on NIO's thread pool, never on the cooperative pool; only the hit
///   path's `PRAGMA data_version` on its read-only probe runs on the caller's thread.
/// - WAL, `busy_timeout`, `synchronous=NORMAL`: a killed process loses no committed token.
/// - A read that finds the database unchanged since the partition was loaded costs one
///   `PRAGMA data_version`; when it changed elsewhere, a per-partition generation tells whether this
///   partition did.
/// - The schema is the numbered SQL files of `Migrations/sqlite`, embedded in the build, applied in order
///   under a cross-process lock and recorded by GRDB's migrator.
/// - A database that is not SQLite, damaged, from a newer version of this library, or with another
///   schema is moved aside (`.corrupt-<timestamp>`) and replaced by an empty one.
/// - With an encryption key, access tokens are sealed with AES-GCM, bound to their row.
/// - Created without I/O and opened in the background (``TokenCacheBackendService``): when its service
///   runs, at ``start(within:)``, or at first use, on the thread pool, with every lock wait bounded. A
///   database locked by another process past the bound is a miss: the tokens fetched meanwhile stay in
///   memory and are written once it can be.
public final class SQLiteTokenCacheBackend: TokenCacheStorage, InspectableTokenCacheBackend, TokenCacheBackendService {
    /// Options of the backend.
    public struct Configuration: Sendable {
        /// A 256-bit key to encrypt access tokens with, or `nil` to store them in clear.
        public var encryptionKey: SymmetricKey?
        /// How long a process waits for another that is fetching the same token before fetching itself.
        public var refreshLockTimeout: Duration
        /// How long a write waits for another connection's write to finish, and opening for another
        /// process's migration.
        public var busyTimeout: Duration

        /// Creates options; no encryption, 10 s for the refresh lock (another process is fetching the
        /// token meanwhile) and 1 s for the database's write lock by default (a write that waits longer
        /// is kept and written later: the caller has its token already). The partition cap is the
        /// cache's (``TokenCache/maximumEntriesPerPartition``).
        public init(
            encryptionKey: SymmetricKey? = nil, refreshLockTimeout: Duration = .seconds(10),
            busyTimeout: Duration = .seconds(1)
        ) {
            self.encryptionKey = encryptionKey
            self.refreshLockTimeout = refreshLockTimeout
            self.busyTimeout = busyTimeout
        }
    }

    /// The database file.
    public let path: String
    let configuration: Configuration
    let sealing: TokenRowSealing
    let logger: Logger
    let refreshCoordinator: RefreshCoordinator
    /// `nil` until the lifecycle opened it.
    private let database: Mutex<DatabaseQueue?>
    /// Answers "did anything change?" on a hit without going through GRDB; replaced with the database.
    private let probe: Mutex<DataVersionProbe?>
    /// Counts this instance's own writes, which `data_version` does not see, so other caches in this
    /// process that share the backend still notice them.
    private let localWrites = Atomic<UInt64>(0)

    /// The version of a stored partition: the database's data version and this instance's write
    /// count when it was read (which tell whether anything at all changed), and the partition's
    /// generation (which tells whether it did). Opaque outside this backend.
    public struct Version: Hashable, Sendable {
        let dataVersion: UInt64
        let localWrites: UInt64
        /// The partition's generation; -1 when it has no row (a partition written by the first schema
        /// version has generation 0).
        let generation: Int64
    }

    static let encryptionMetadataName = "encryption_key_id"

    /// Opening the database, retrying it, and the writes kept while it cannot be written.
    private let lifecycle: StoreLifecycle

    /// Creates the backend for a database file; nothing is touched until it opens (see ``TokenCacheBackendService``).
    public init(path: String, configuration: Configuration = Configuration(), logger: Logger? = nil) {
        self.path = path
        self.configuration = configuration
        self.sealing = TokenRowSealing(encryptionKey: configuration.encryptionKey, location: path)
        let logger = logger ?? Logger(label: "managed-identity.sqlite-cache", factory: { _ in SwiftLogNoOpLogHandler() })
        self.logger = logger
        self.refreshCoordinator = RefreshCoordinator(
            directory: path + ".locks", timeout: configuration.refreshLockTimeout, logger: logger)
        self.database = Mutex(nil)
        self.probe = Mutex(nil)
        self.lifecycle = StoreLifecycle(name: "the SQLite token cache at \(path)", logger: logger)
        lifecycle.bind(self) { backend in try await BlockingWork.run { try backend.prepare() } }
    }

    /// Creates the directory, opens and migrates the database (moving a bad one aside), checks the
    /// key: on the thread pool, every lock wait bounded by ``Configuration/busyTimeout``.
    private func prepare() throws(TokenCacheBackendError) {
        let directory = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let lockDirectory = path + ".locks"
        try SecureDirectory.prepare(directory)
        try SecureDirectory.prepare(lockDirectory)
        let queue = try Self.openMigrated(path: path, lockDirectory: lockDirectory, configuration: configuration, logger: logger)
        database.withLock { $0 = queue }
        probe.withLock { $0 = DataVersionProbe(path: path) }
        try checkEncryptionKey()
    }

    // MARK: Lifecycle

    /// Opens the database and keeps retrying while it cannot be opened, until cancelled or a graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.lifecycle.run() }
        lifecycle.stop()
    }

    /// Starts opening the database and waits for the first attempt, at most `within`.
    /// - Throws: ``TokenCacheBackendError`` when the directory is unsafe or not a directory, or the key
    ///   does not match the cache's.
    public func start(within: Duration = .seconds(1)) async throws(TokenCacheBackendError) {
        try await lifecycle.started(within: within)
    }

    /// Where the database is: open, being opened, or failed for good.
    public var state: TokenCacheBackendState { lifecycle.publicState }

    deinit {
        // The probe closes first, so GRDB's connection is the last one and checkpoints the WAL into
        // the database file as it closes.
        probe.withLock { $0 = nil }
    }

    // MARK: Storage

    /// The partition's rows when the database changed since `version` and the partition with it
    /// (one `PRAGMA data_version` when nothing changed).
    public func read(_ partition: TokenCachePartitionKey, version: inout Version?) async throws -> [TokenCacheEntry]? {
        let held = version
        let writes = localWrites.load(ordering: .acquiring)
        // The hit path: one step of a prepared statement on the probe's own connection.
        if let held, held.localWrites == writes, let current = probe.withLock({ $0 })?.dataVersion(),
            held.dataVersion == current
        {
            return nil
        }
        // Past the hit path (whose probe exists only once the database opened), the store must be open.
        try lifecycle.ensureOpen()
        let (current, entries) = try await withDatabase { db -> (Version, [TokenCacheEntry]?) in
            let dataVersion = try self.currentDataVersion(db)
            let generation =
                try Int64.fetchOne(
                    db.cachedStatement(sql: "SELECT generation FROM partitions WHERE partition_key = ?"),
                    arguments: [partition.rawValue]) ?? -1
            let current = Version(dataVersion: dataVersion, localWrites: writes, generation: generation)
            if let held, held.generation == generation { return (current, nil) }
            return (current, generation < 0 ? [] : try self.entries(db, key: partition))
        }
        version = current
        return entries
    }

    /// Upserts the token's row and applies the retention rule to the partition, in one transaction.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        do {
            try lifecycle.ensureOpen()
            return try await upsert(entry, in: partition, retention: retention)
        } catch let error where !Self.isConfigurationError(error) {
            // The database cannot be written now (locked past the bound, gone): the token stays in
            // memory and is written later.
            lifecycle.keep(partition.key.rawValue + "\n" + entry.resource + "\n" + entry.tokenType) { [weak self] in
                _ = try await self?.upsert(entry, in: partition, retention: retention)
            }
            lifecycle.lost(error)
            throw error
        }
    }

    private static func isConfigurationError(_ error: any Error) -> Bool {
        (error as? TokenCacheBackendError)?.isConfigurationError ?? false
    }

    private func upsert(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version) {
        let key = partition.key
        let sealed = try seal(entry)
        let (dataVersion, generation, entries) = try await withDatabase { db -> (UInt64, Int64, [TokenCacheEntry]) in
            // Writes queue on the one connection: once one of them found the store locked past the
            // bound, the ones behind it give up at once instead of each waiting the bound again.
            try self.lifecycle.ensureOpen()
            // Read before the transaction: anything committed after it makes the next read look again.
            let dataVersion = try self.currentDataVersion(db)
            var generation: Int64 = 0
            var entries: [TokenCacheEntry] = []
            try db.inTransaction(.immediate) {
                generation = try Self.touchPartition(db, partition)
                try db.execute(
                    sql: """
                        INSERT INTO tokens (partition_key, resource, token_type, access_token, expires_on, refresh_on, cached_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(partition_key, resource, token_type) DO UPDATE SET
                            access_token = excluded.access_token, expires_on = excluded.expires_on,
                            refresh_on = excluded.refresh_on, cached_at = excluded.cached_at
                        WHERE excluded.cached_at >= tokens.cached_at
                        """,
                    arguments: [
                        key.rawValue, entry.resource, entry.tokenType, sealed, Self.epoch(entry.expiresOn),
                        entry.refreshOn.map(Self.epoch), Self.epoch(entry.cachedAt),
                    ])
                try Self.applyRetention(db, key: key, written: entry.key, retention: retention)
                entries = try self.entries(db, key: key)
                return .commit
            }
            return (dataVersion, generation, entries)
        }
        let writes = localWrites.add(1, ordering: .acquiringAndReleasing).newValue
        return (entries, Version(dataVersion: dataVersion, localWrites: writes, generation: generation))
    }

    /// Removes tokens' rows, and the partition's row when none is left.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        try lifecycle.ensureOpen()
        try await withDatabase { db in
            try db.inTransaction(.immediate) {
                for removed in keys {
                    try db.execute(
                        sql: "DELETE FROM tokens WHERE partition_key = ? AND resource = ? AND token_type = ?",
                        arguments: [partition.rawValue, removed.resource, removed.tokenType])
                }
                try db.execute(
                    sql: "UPDATE partitions SET generation = ? WHERE partition_key = ?", arguments: [try Self.nextGeneration(db), partition.rawValue])
                try db.execute(
                    sql: "DELETE FROM partitions WHERE partition_key = ? AND NOT EXISTS (SELECT 1 FROM tokens WHERE partition_key = ?)",
                    arguments: [partition.rawValue, partition.rawValue])
                return .commit
            }
        }
        localWrites.add(1, ordering: .acquiringAndReleasing)
    }

    /// Holds a per-token `flock` while `body` fetches, so other processes wait and read the result.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        // Processes starting together take turns on the token even while their databases are still
        // opening (on a busy machine that can outlast the first request): the lock is a file beside
        // the database, so this waits for the open at most the busy timeout, then goes on.
        do {
            try lifecycle.ensureOpen()
        } catch where !error.isConfigurationError {
            if case .failed(let failure) = await lifecycle.waitUntilSettled(within: configuration.busyTimeout) { throw failure }
        }
        return try await refreshCoordinator.run(partition: partition, resource: resource, body)
    }

    /// Creates the partition's row, or gives it a new generation, and returns that generation (which
    /// the rest of the write's transaction does not change: no statement to read it back).
    private static func touchPartition(_ db: Database, _ partition: TokenCachePartitionDescriptor) throws -> Int64 {
        let generation = try nextGeneration(db)
        try db.execute(
            sql: """
                INSERT INTO partitions (partition_key, source, identity_kind, identity_id, endpoint, generation)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(partition_key) DO UPDATE SET generation = excluded.generation
                """,
            arguments: [
                partition.key.rawValue, partition.source.rawValue, partition.identity.kind.rawValue,
                partition.identity.id, partition.endpoint, generation,
            ])
        return generation
    }

    /// A generation no partition of this database ever had: a partition removed and written again
    /// must not get one it had before, or a process that loaded it then would take the new tokens
    /// for the old ones. One counter for the database; a database from before the counter starts
    /// it above every generation it holds and above the time in milliseconds, which the old
    /// per-partition counts never reach.
    private static func nextGeneration(_ db: Database) throws -> Int64 {
        // Every write takes one: a single statement when the counter exists (the common case), so a
        // write does not scan the partitions for their highest generation.
        var text = try String.fetchOne(
            db, sql: "UPDATE cache_metadata SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE name = ? RETURNING value",
            arguments: [generationMetadataName])
        if text == nil {
            text = try String.fetchOne(
                db,
                sql: """
                    INSERT INTO cache_metadata (name, value)
                    VALUES (?, CAST(MAX((SELECT COALESCE(MAX(generation), 0) FROM partitions),
                                        CAST(strftime('%s', 'now') AS INTEGER) * 1000) + 1 AS TEXT))
                    RETURNING value
                    """,
                arguments: [generationMetadataName])
        }
        guard let text, let generation = Int64(text) else {
            throw TokenCacheBackendError(kind: .io, message: "the generation counter of the cache database is damaged")
        }
        return generation
    }

    static let generationMetadataName = "partition_generation"

    /// ``TokenCacheRetention`` in SQL, after the written row: expired rows go, except the written
    /// one; past the cap, the rows closest to expiry go (ties: the smaller resource, then token type,
    /// in binary collation, as the Swift rule orders them), never the written one.
    static func applyRetention(
        _ db: Database, key: TokenCachePartitionKey, written: TokenCacheEntryKey, retention: TokenCacheRetention
    ) throws {
        try db.execute(
            sql: """
                DELETE FROM tokens WHERE partition_key = ?1 AND expires_on <= ?2
                    AND NOT (resource = ?3 AND token_type = ?4)
                """,
            arguments: [key.rawValue, epoch(retention.now), written.resource, written.tokenType])
        try db.execute(
            sql: """
                DELETE FROM tokens WHERE partition_key = ?1 AND (resource, token_type) IN (
                    SELECT resource, token_type FROM tokens
                    WHERE partition_key = ?1 AND NOT (resource = ?3 AND token_type = ?4)
                    ORDER BY expires_on DESC, resource DESC, token_type DESC
                    LIMIT -1 OFFSET ?2)
                """,
            arguments: [key.rawValue, max(retention.maximumEntriesPerPartition, 1) - 1, written.resource, written.tokenType])
    }

    // MARK: Inspection

    /// Lists the stored partitions, without tokens.
    public func storedPartitions() async throws -> [StoredTokenCachePartition] {
        try await start()
        return try await withDatabase { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT partition_key, source, identity_kind, identity_id, endpoint FROM partitions ORDER BY partition_key")
            return try rows.compactMap { row -> StoredTokenCachePartition? in
                guard let descriptor = PartitionRow(row)?.descriptor else { return nil }
                let key = descriptor.key
                let entries = try self.entries(db, key: key, unsealing: false)
                return StoredTokenCachePartition(descriptor: descriptor, entries: entries.map(StoredTokenCacheEntry.init))
            }
        }
    }

    // MARK: Rows

    private func entries(_ db: Database, key: TokenCachePartitionKey, unsealing: Bool = true) throws -> [TokenCacheEntry] {
        let rows = try Row.fetchAll(
            db.cachedStatement(sql: "SELECT \(TokenRow.columns) FROM tokens WHERE partition_key = ?"), arguments: [key.rawValue])
        var entries: [TokenCacheEntry] = []
        entries.reserveCapacity(rows.count)
        for row in rows {
            guard let fields = TokenRow(row) else {
                logger.error("a row of the token cache holds a value of the wrong type; ignoring it")
                continue
            }
            let token: String
            if unsealing {
                guard let opened = try unseal(fields.storedToken, key: key, resource: fields.resource, tokenType: fields.tokenType)
                else { continue }
                token = opened
            } else {
                token = "<not read>"
            }
            entries.append(
                TokenCacheEntry(
                    partitionKey: key, resource: fields.resource, tokenType: fields.tokenType, accessToken: token,
                    expiresOnEpoch: fields.expiresOn, refreshOnEpoch: fields.refreshOn, cachedAtEpoch: fields.cachedAt))
        }
        return entries
    }

    private func seal(_ entry: TokenCacheEntry) throws -> String {
        try sealing.seal(
            entry.accessToken,
            context: TokenRowSealing.context(partition: entry.partitionKey, resource: entry.resource, tokenType: entry.tokenType))
    }

    /// The token of a row; `nil` (and a log line) for a row that does not open, which is then ignored.
    private func unseal(_ stored: String, key: TokenCachePartitionKey, resource: String, tokenType: String) throws -> String? {
        try sealing.open(stored, context: TokenRowSealing.context(partition: key, resource: resource, tokenType: tokenType), logger: logger)
    }

    static func epoch(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// The data version as the probe sees it, so versions recorded on writes and compared on hits
    /// come from one connection; GRDB's connection answers when there is no probe.
    func currentDataVersion(_ db: Database) throws -> UInt64 {
        if let version = probe.withLock({ $0 })?.dataVersion() { return version }
        return UInt64(try Int64.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? 0)
    }

    // MARK: Opening, migrating, recovering

    /// Runs `body` on the connection, on NIO's thread pool.
    private func withDatabase<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await BlockingWork.run { try self.withDatabaseBlocking(body) }
    }

    /// Runs `body` on the connection, on the calling thread; a database found corrupt is moved aside
    /// and replaced, once.
    private func withDatabaseBlocking<T>(_ body: (Database) throws -> T) throws -> T {
        guard let queue = database.withLock({ $0 }) else {
            throw TokenCacheBackendError(kind: .io, message: "the SQLite token cache at \(path) is not open")
        }
        do {
            return try queue.inDatabase(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            throw TokenCacheBackendError(
                kind: .lockTimeout, message: "another process held \(path)'s write lock longer than \(configuration.busyTimeout)")
        } catch let error as DatabaseError where Self.isCorruption(error) {
            logger.error(
                "the cache database is damaged; moving it aside and starting empty",
                metadata: ["managed-identity.database": "\(path)", "managed-identity.error": "\(error.resultCode)"])
            let replacement = try database.withLock { queue in
                try? queue?.close()
                let replacement = try Self.openMigrated(
                    path: path, lockDirectory: path + ".locks", configuration: configuration, logger: logger,
                    quarantineFirst: true)
                queue = replacement
                return replacement
            }
            probe.withLock { $0 = DataVersionProbe(path: path) }
            return try replacement.inDatabase(body)
        }
    }

    static func isCorruption(_ error: DatabaseError) -> Bool {
        [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in embeddedMigrations {
            migrator.registerMigration(migration.identifier) { db in try db.execute(sql: migration.sql) }
        }
        return migrator
    }

    /// Opens and migrates the database under a cross-process lock, so processes opening a new file at
    /// once do not race; moves aside a database that cannot be used.
    static func openMigrated(
        path: String, lockDirectory: String, configuration: Configuration, logger: Logger, quarantineFirst: Bool = false
    ) throws(TokenCacheBackendError) -> DatabaseQueue {
        let lock: FileLock
        do {
            guard let held = try FileLock.acquireBlocking(path: lockDirectory + "/open.lock", timeout: configuration.busyTimeout) else {
                throw TokenCacheBackendError(
                    kind: .lockTimeout, message: "another process was opening \(path) for longer than \(configuration.busyTimeout)")
            }
            lock = held
        } catch let error as TokenCacheBackendError {
            throw error
        } catch {
            throw TokenCacheBackendError(kind: .io, message: "\(error)")
        }
        defer { lock.release() }
        if quarantineFirst { quarantine(path: path, reason: "damaged", logger: logger) }
        do {
            return try open(path: path, configuration: configuration)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            throw TokenCacheBackendError(
                kind: .lockTimeout, message: "another process held \(path)'s write lock longer than \(configuration.busyTimeout)")
        } catch let failure as Unusable {
            quarantine(path: path, reason: failure.reason, logger: logger)
        } catch let error as DatabaseError where isCorruption(error) {
            quarantine(path: path, reason: "not a SQLite database (\(error.resultCode))", logger: logger)
        } catch {
            throw TokenCacheBackendError(kind: .io, message: "cannot open \(path): \(error)")
        }
        do {
            return try open(path: path, configuration: configuration)
        } catch {
            throw TokenCacheBackendError(kind: .io, message: "cannot create a new cache at \(path): \(error)")
        }
    }

    struct Unusable: Error { var reason: String }

    private static func open(path: String, configuration: Configuration) throws -> DatabaseQueue {
        // Create the file 0600 before SQLite does (it would use the umask); its -wal and -shm files
        // take the same mode.
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Unusable(reason: "cannot open: \(POSIX.describeErrno())") }
        close(fd)
        var grdb = GRDB.Configuration()
        grdb.journalMode = .wal
        let (seconds, attoseconds) = configuration.busyTimeout.components
        grdb.busyMode = .timeout(Double(seconds) + Double(attoseconds) / 1e18)
        grdb.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        let queue = try DatabaseQueue(path: path, configuration: grdb)
        try queue.writeWithoutTransaction { db in
            let result = try String.fetchOne(db, sql: "PRAGMA quick_check(1)")
            guard result == "ok" else { throw Unusable(reason: "integrity check failed: \(result ?? "nothing")") }
            let known = Set(migrator.migrations)
            let applied = try migrator.appliedIdentifiers(db)
            guard applied.isSubset(of: known) else {
                throw Unusable(reason: "written by a newer version (migrations \(applied.subtracting(known).sorted()))")
            }
        }
        do {
            try migrator.migrate(queue)
        } catch let error as DatabaseError where isCorruption(error) || error.resultCode == .SQLITE_BUSY {
            // Damage is moved aside by the caller; a lock held by another process is waited out later.
            throw error
        } catch {
            throw Unusable(reason: "its schema is not this cache's (\(error))")
        }
        try queue.inDatabase { db in try checkSchema(db) }
        return queue
    }

    /// The tables and columns this version reads, with their types.
    private static func checkSchema(_ db: Database) throws {
        let expected: [String: [String: String]] = [
            "partitions": [
                "partition_key": "TEXT", "source": "TEXT", "identity_kind": "TEXT", "identity_id": "TEXT", "endpoint": "TEXT",
                "generation": "INTEGER",
            ],
            "tokens": [
                "partition_key": "TEXT", "resource": "TEXT", "token_type": "TEXT", "access_token": "TEXT",
                "expires_on": "INTEGER", "refresh_on": "INTEGER", "cached_at": "INTEGER",
            ],
            "cache_metadata": ["name": "TEXT", "value": "TEXT"],
        ]
        for (table, columns) in expected {
            let rows = try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?)", arguments: [table])
            let actual = Dictionary(rows.map { (String($0["name"] as String), (String($0["type"] as String)).uppercased()) }, uniquingKeysWith: { a, _ in a })
            for (column, type) in columns where actual[column] != type {
                throw Unusable(reason: "table \(table) has no \(type) column \(column)")
            }
        }
    }

    private static func quarantine(path: String, reason: String, logger: Logger) {
        let target = Quarantine.moveAside(path)
        for suffix in ["-wal", "-shm"] where target != nil {
            if let target { rename(path + suffix, target + suffix) }
        }
        logger.error(
            "the cache database could not be used and has been moved aside; the cache starts empty",
            metadata: ["managed-identity.database": "\(path)", "managed-identity.moved-to": "\(target ?? "nowhere")", "managed-identity.reason": "\(reason)"])
    }

    /// Compares the key with the one the cache was first written with, so a wrong key fails at start-up.
    private func checkEncryptionKey() throws(TokenCacheBackendError) {
        do {
            try sealing.settleKey(
                recorded: {
                    try withDatabaseBlocking { db in
                        try String.fetchOne(db, sql: "SELECT value FROM cache_metadata WHERE name = ?", arguments: [Self.encryptionMetadataName])
                    }
                },
                recordIfAbsent: { id in
                    try withDatabaseBlocking { db in
                        try db.execute(
                            sql: "INSERT OR IGNORE INTO cache_metadata (name, value) VALUES (?, ?)", arguments: [Self.encryptionMetadataName, id])
                    }
                })
        } catch let error as TokenCacheBackendError {
            throw error
        } catch {
            throw TokenCacheBackendError(kind: .io, message: "cannot read or write \(path): \(error)")
        }
    }
}
