import Foundation
import Synchronization

/// What a partition belongs to, for backends and for listing a cache.
public struct TokenCachePartitionDescriptor: Sendable, Hashable {
    /// The partition key.
    public var key: TokenCachePartitionKey
    /// The source whose tokens the partition holds.
    public var source: ManagedIdentitySource
    /// The identity whose tokens the partition holds.
    public var identity: ManagedIdentityID
    /// The source's endpoint URL, without query.
    public var endpoint: String

    /// Creates a descriptor.
    public init(key: TokenCachePartitionKey, source: ManagedIdentitySource, identity: ManagedIdentityID, endpoint: String) {
        self.key = key
        self.source = source
        self.identity = identity
        self.endpoint = endpoint
    }
}

/// The in-memory tokens of one partition, and the requests in flight for it.
final class CachePartition: Sendable {
    let descriptor: TokenCachePartitionDescriptor
    private let state: Mutex<State>
    /// Concurrent misses for one resource share one request.
    let inflight = SingleFlight<TokenCacheEntryKey, AccessToken>()

    struct State {
        var entries: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        var loadedVersion: TokenCacheVersion?
        /// The latest expiry of any entry, kept up to date so notifications need not scan.
        var latestExpiry: Date?
    }

    init(descriptor: TokenCachePartitionDescriptor) {
        self.descriptor = descriptor
        self.state = Mutex(State())
    }

    var key: TokenCachePartitionKey { descriptor.key }

    /// The entry for `entryKey`, re-checked against the partition and resource so that nothing a
    /// backend loaded can answer for another request.
    func lookup(_ entryKey: TokenCacheEntryKey) -> TokenCacheEntry? {
        let entry = state.withLock { $0.entries[entryKey] }
        guard let entry, entry.partitionKey == descriptor.key, entry.resource == entryKey.resource,
            entry.tokenType == entryKey.tokenType || entry.key.tokenType == entryKey.tokenType
        else { return nil }
        return entry
    }

    /// Stores a token: drops expired entries first (writes purge, reads never do), then evicts the
    /// entries closest to expiry while the partition is over `cap`.
    /// - Returns: the keys removed besides the one written.
    func store(_ entry: TokenCacheEntry, now: Date, cap: Int) -> [TokenCacheEntryKey] {
        state.withLock { state in
            var removed: [TokenCacheEntryKey] = []
            for (key, existing) in state.entries where existing.expiresOn <= now && key != entry.key {
                state.entries[key] = nil
                removed.append(key)
            }
            state.entries[entry.key] = entry
            while state.entries.count > max(cap, 1) {
                guard let victim = state.entries.values.filter({ $0.key != entry.key }).min(by: { $0.expiresOn < $1.expiresOn })
                else { break }
                state.entries[victim.key] = nil
                removed.append(victim.key)
            }
            state.latestExpiry = state.entries.values.map(\.expiresOn).max()
            return removed
        }
    }

    /// Replaces the partition's tokens with what a backend loaded, keeping only entries of this partition.
    /// - Returns: how many entries were dropped because they belong elsewhere.
    @discardableResult
    func replace(with entries: [TokenCacheEntry], version: TokenCacheVersion?) -> Int {
        var kept: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        kept.reserveCapacity(entries.count)
        var dropped = 0
        for entry in entries {
            guard entry.partitionKey == descriptor.key, !entry.resource.isEmpty, !entry.accessToken.isEmpty else {
                dropped += 1
                continue
            }
            if let existing = kept[entry.key], existing.expiresOn >= entry.expiresOn { continue }
            kept[entry.key] = entry
        }
        let latest = kept.values.map(\.expiresOn).max()
        state.withLock { state in
            state.entries = kept
            state.loadedVersion = version
            state.latestExpiry = latest
        }
        return dropped
    }

    var entries: [TokenCacheEntry] {
        state.withLock { Array($0.entries.values) }
    }

    var loadedVersion: TokenCacheVersion? {
        get { state.withLock { $0.loadedVersion } }
    }

    func setLoadedVersion(_ version: TokenCacheVersion?) {
        state.withLock { $0.loadedVersion = version }
    }

    /// Whether a token is valid past `threshold`, and the latest expiry, without scanning.
    func summary(validAfter threshold: Date) -> (hasTokens: Bool, latestExpiry: Date?) {
        state.withLock { state in
            guard let latest = state.latestExpiry else { return (false, nil) }
            return (latest > threshold, latest)
        }
    }
}
