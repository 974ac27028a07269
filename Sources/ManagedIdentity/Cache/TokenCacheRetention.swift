import Foundation

/// The one retention rule of every cache, in memory and in every backend: what a partition keeps
/// when a token is written to it.
///
/// 1. The newer write wins: a stored token of the same resource and type with a later
///    ``TokenCacheEntry/cachedAt`` is kept instead of the written one (another process fetched it
///    after this one did). Equal times let the write win.
/// 2. Writes purge: every expired token goes, except the one of the written key.
/// 3. Past ``maximumEntriesPerPartition``, the tokens closest to expiry go (ties broken by resource,
///    then token type, compared as UTF-8 bytes), never the one of the written key.
///
/// Reads never purge. The core hands a backend the retention of each write in
/// ``TokenCacheNotification/retention``, with the cache's clock and cap, so that every backend ends
/// in the same state for the same writes: backends that keep rows in a database express the same
/// rule in their query language (the conformance suite compares the results).
public struct TokenCacheRetention: Sendable, Hashable {
    /// The time of the write, from the cache's clock: tokens expiring at or before it are purged.
    public var now: Date
    /// The most tokens one partition keeps; values below 1 count as 1.
    public var maximumEntriesPerPartition: Int

    /// Creates a retention rule for one write.
    public init(now: Date, maximumEntriesPerPartition: Int) {
        self.now = now
        self.maximumEntriesPerPartition = maximumEntriesPerPartition
    }

    /// Whether a stored token survives a write of the same key: true when it is strictly newer.
    public static func storedWins(_ stored: TokenCacheEntry, over written: TokenCacheEntry) -> Bool {
        stored.cachedAt > written.cachedAt
    }

    /// Applies a write to a partition's stored tokens.
    /// - Parameters:
    ///   - stored: the partition as stored; entries of other partitions than the written one's are dropped.
    ///   - written: the token written, or `nil` to only purge and cap.
    ///   - partition: the partition written; when `nil`, that of `written`.
    /// - Returns: the partition after the write, in no particular order.
    public func apply(
        to stored: [TokenCacheEntry], writing written: TokenCacheEntry?, in partition: TokenCachePartitionKey? = nil
    ) -> [TokenCacheEntry] {
        let partitionKey = partition ?? written?.partitionKey
        var byKey: [TokenCacheEntryKey: TokenCacheEntry] = [:]
        byKey.reserveCapacity(stored.count + 1)
        for entry in stored where entry.partitionKey == partitionKey {
            // Two stored rows of one key (a hand-edited file): keep the newer, as a write would.
            if let existing = byKey[entry.key], Self.storedWins(existing, over: entry) { continue }
            byKey[entry.key] = entry
        }
        apply(to: &byKey, writing: written)
        return Array(byKey.values)
    }

    /// Applies a write, in place, to a partition's tokens by key (all of one partition): the same
    /// rule as ``apply(to:writing:in:)``, for a caller that holds the partition as a dictionary.
    public func apply(to byKey: inout [TokenCacheEntryKey: TokenCacheEntry], writing written: TokenCacheEntry?) {
        let protected = written?.key
        if let written {
            if let existing = byKey[written.key], Self.storedWins(existing, over: written) {
                // Another writer stored a newer token meanwhile; it stays.
            } else {
                byKey[written.key] = written
            }
        }
        if byKey.values.contains(where: { $0.expiresOn <= now && $0.key != protected }) {
            byKey = byKey.filter { $0.value.expiresOn > now || $0.key == protected }
        }
        let cap = max(maximumEntriesPerPartition, 1)
        guard byKey.count > cap else { return }
        // Keep the written key first, then the latest expiries.
        let evicted = byKey.values.sorted { lhs, rhs in
            if lhs.key == protected { return rhs.key != protected }
            if rhs.key == protected { return false }
            return Self.evictsLater(lhs, than: rhs)
        }.dropFirst(cap)
        for entry in evicted { byKey[entry.key] = nil }
    }

    /// The eviction order: `true` when `lhs` is kept longer than `rhs` (a later expiry; on a tie the
    /// greater resource, then token type, as UTF-8 bytes, as SQL's binary collation orders them).
    static func evictsLater(_ lhs: TokenCacheEntry, than rhs: TokenCacheEntry) -> Bool {
        if lhs.expiresOn != rhs.expiresOn { return lhs.expiresOn > rhs.expiresOn }
        if lhs.resource != rhs.resource { return rhs.resource.utf8.lexicographicallyPrecedes(lhs.resource.utf8) }
        return rhs.tokenType.utf8.lexicographicallyPrecedes(lhs.tokenType.utf8)
    }
}
