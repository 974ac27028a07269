/// A store that holds tokens as rows by key (a database, Redis, a directory of files): a few
/// storage verbs, for which this protocol implements every ``TokenCacheBackend`` hook.
///
/// A storage type declares conformance, implements ``read(_:version:)`` and
/// ``write(_:in:retention:)`` (and ``remove(_:from:)``), and is a backend: pass it to
/// ``TokenCache/init(backend:maximumEntriesPerPartition:onBackendFailure:)``. Implement
/// ``withRefreshLock(partition:resource:_:)`` too when several processes or hosts share the store,
/// so that they send one request per token.
///
/// What the hooks do with it: `beforeAccess` calls ``read(_:version:)`` with the version the
/// in-memory partition was loaded at, and replaces the partition when the storage returns entries;
/// `afterAccess` of a write calls ``write(_:in:retention:)`` and replaces the partition with what it
/// returns; `coordinateRefresh` runs in ``withRefreshLock(partition:resource:_:)``.
public protocol TokenCacheStorage: TokenCacheBackend {
    /// The storage's own version of a stored partition: anything that changes whenever the stored
    /// partition does (a generation number, a file's identity and modification time).
    associatedtype Version: Hashable & Sendable

    /// Reads a partition if it changed since `version`.
    ///
    /// Called on every cache access, hits included, so the unchanged case should be cheap (a counter
    /// compared, one `stat`); it may run on the calling thread only if it cannot block.
    /// - Parameters:
    ///   - partition: the partition to read.
    ///   - version: on entry, the version the caller holds (`nil` when it holds none); on return, the
    ///     stored partition's current version.
    /// - Returns: the stored tokens of the partition when they differ from those at the version the
    ///   caller held (an empty array when nothing is stored), or `nil` when they do not. The version
    ///   may change while the tokens do not (a database whose other partitions changed).
    func read(_ partition: TokenCachePartitionKey, version: inout Version?) async throws -> [TokenCacheEntry]?

    /// Stores one token, merged into the stored partition under the store's own lock or transaction:
    /// a stored token of the same key that is newer (``TokenCacheRetention/storedWins(_:over:)``) is
    /// kept, and `retention` purges and caps the partition (``TokenCacheRetention/apply(to:writing:in:)``,
    /// or the same rule in the store's query language).
    /// - Parameters:
    ///   - entry: the token to store.
    ///   - partition: its partition (with the source, identity and endpoint, which a store may keep for listing).
    ///   - retention: the rule of this write.
    /// - Returns: the stored partition after the write, and its version.
    func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: Version)

    /// Removes stored tokens of a partition; keys that are not stored are ignored.
    func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws

    /// Runs `body` while holding a lock on one token (partition and resource) that other processes
    /// and hosts sharing the store also take; a waiter gives up after a bounded time and runs `body`
    /// anyway. The default runs `body` at once (no lock: right for a store used by one process).
    func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result
}

extension TokenCacheStorage {
    /// Runs `body` at once.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        try await body()
    }

    /// Loads the stored partition when it changed since the in-memory one was loaded.
    @inlinable
    public func beforeAccess(_ notification: TokenCacheNotification) async throws {
        let partition = notification.partition
        let held = partition.loadedVersion(as: Version.self)
        var version = held
        if let entries = try await read(partition.key, version: &version) {
            partition.replaceEntries(entries, version: version)
        } else if version != held {
            partition.markLoaded(version: version)
        }
    }

    /// On a write, stores the written token and hands the stored partition back to memory.
    @inlinable
    public func afterAccess(_ notification: TokenCacheNotification) async throws {
        guard notification.hasStateChanged, let entry = notification.writtenEntry else { return }
        let stored = try await write(entry, in: notification.partition.descriptor, retention: notification.retention)
        notification.partition.replaceEntries(stored.entries, version: stored.version)
    }

    /// Runs `body` under ``withRefreshLock(partition:resource:_:)``.
    @inlinable
    public func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await withRefreshLock(partition: notification.partitionKey, resource: notification.resource, body)
    }
}
