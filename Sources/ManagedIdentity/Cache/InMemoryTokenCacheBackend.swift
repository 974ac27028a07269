import Foundation
import Synchronization

/// A backend that keeps partitions in memory, shared by every ``TokenCache`` that uses it: the
/// reference implementation of the hook contract, and a way for several caches in one process to
/// see each other's tokens.
///
/// Writes are merged into the stored partition (``TokenCacheEntry/merge(stored:notification:now:cap:)``:
/// the written entry in, expired ones out, the cap kept) rather than overwriting it, so concurrent
/// writers of one partition lose nothing.
public final class InMemoryTokenCacheBackend: TokenCacheBackend {
    private struct Stored {
        var generation: UInt64
        var entries: [TokenCacheEntry]
    }

    private let stored = Mutex<[TokenCachePartitionKey: Stored]>([:])
    private let generations = Atomic<UInt64>(0)
    private let maximumEntriesPerPartition: Int

    /// Creates an empty backend whose partitions keep at most `maximumEntriesPerPartition` tokens.
    public init(maximumEntriesPerPartition: Int = 1_000) {
        self.maximumEntriesPerPartition = maximumEntriesPerPartition
    }

    /// Loads the stored partition when it changed since the cache last loaded it.
    public func beforeAccess(_ notification: TokenCacheNotification) async throws {
        let current = stored.withLock { $0[notification.partitionKey] }
        guard let current else { return }
        let version = TokenCacheVersion(current.generation)
        if notification.serializer.loadedVersion != version {
            notification.serializer.replaceEntries(current.entries, version: version)
        }
    }

    /// Merges the written token into the stored partition and hands the result back to the cache.
    public func afterAccess(_ notification: TokenCacheNotification) async throws {
        guard notification.hasStateChanged else { return }
        let generation = generations.add(1, ordering: .relaxed).newValue
        let now = Date()
        let merged = stored.withLock { stored -> [TokenCacheEntry] in
            let merged = TokenCacheEntry.merge(
                stored: stored[notification.partitionKey]?.entries ?? [], notification: notification, now: now,
                cap: maximumEntriesPerPartition)
            stored[notification.partitionKey] = Stored(generation: generation, entries: merged)
            return merged
        }
        notification.serializer.replaceEntries(merged, version: TokenCacheVersion(generation))
    }

    /// The number of entries stored across partitions.
    public var count: Int {
        stored.withLock { $0.values.reduce(0) { $0 + $1.entries.count } }
    }
}
