import Synchronization

/// A storage that keeps partitions in memory, shared by every ``TokenCache`` that uses it: the
/// reference implementation of ``TokenCacheStorage``, and a way for several caches in one process
/// to see each other's tokens. Caches that share it take turns on a token's refresh, so they send
/// one request per token between them.
public final class InMemoryTokenCacheBackend: TokenCacheStorage {
    private struct Stored {
        var generation: UInt64
        var entries: [TokenCacheEntry]
    }

    private let stored = Mutex<[TokenCachePartitionKey: Stored]>([:])
    private let generations = Atomic<UInt64>(0)
    private let refreshLocks = RefreshLocks()
    /// How long a cache waits for another's refresh of the same token before fetching anyway.
    public let refreshLockTimeout: Duration

    /// Creates an empty store.
    /// - Parameter refreshLockTimeout: how long a cache waits for another cache's refresh of the same
    ///   token before fetching it anyway.
    public init(refreshLockTimeout: Duration = .seconds(10)) {
        self.refreshLockTimeout = refreshLockTimeout
    }

    /// The stored partition, when its generation differs from `version`.
    public func read(_ partition: TokenCachePartitionKey, version: inout UInt64?) async throws -> [TokenCacheEntry]? {
        let current = stored.withLock { $0[partition] }
        let generation = current?.generation ?? 0
        defer { version = generation }
        return generation == version ? nil : current?.entries ?? []
    }

    /// Merges the token into the stored partition under the retention rule.
    public func write(
        _ entry: TokenCacheEntry, in partition: TokenCachePartitionDescriptor, retention: TokenCacheRetention
    ) async throws -> (entries: [TokenCacheEntry], version: UInt64) {
        stored.withLock { stored in
            let generation = generations.add(1, ordering: .relaxed).newValue
            let merged = retention.apply(to: stored[partition.key]?.entries ?? [], writing: entry, in: partition.key)
            stored[partition.key] = Stored(generation: generation, entries: merged)
            return (merged, generation)
        }
    }

    /// Removes tokens of a partition.
    public func remove(_ keys: [TokenCacheEntryKey], from partition: TokenCachePartitionKey) async throws {
        stored.withLock { stored in
            guard var current = stored[partition] else { return }
            let removed = Set(keys)
            current.entries.removeAll { removed.contains($0.key) }
            current.generation = generations.add(1, ordering: .relaxed).newValue
            stored[partition] = current
        }
    }

    /// Runs `body` while no other cache sharing this store refreshes the same token; a waiter gives
    /// up after ``refreshLockTimeout`` and runs `body` anyway. The lock is released however `body` ends.
    public func withRefreshLock<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        let name = partition.rawValue + "\n" + resource
        let held = await refreshLocks.acquire(name, timeout: refreshLockTimeout)
        defer { if held { refreshLocks.release(name) } }
        return try await body()
    }
}
