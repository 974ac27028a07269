import Foundation

/// A backend whose stored tokens can be listed and purged, by the command-line tool for example.
/// Listings never include the tokens themselves.
public protocol InspectableTokenCacheBackend: TokenCacheBackend {
    /// Every stored partition with its entries, without the tokens.
    func storedPartitions() async throws -> [StoredTokenCachePartition]
    /// Removes stored entries: the expired ones, or all.
    /// - Returns: how many entries were removed.
    func purge(expiredOnly: Bool) async throws -> Int
}

/// A stored partition, as listed.
public struct StoredTokenCachePartition: Sendable, Hashable {
    /// What the partition belongs to.
    public var descriptor: TokenCachePartitionDescriptor
    /// Its entries, without tokens.
    public var entries: [StoredTokenCacheEntry]

    /// Creates a listing.
    public init(descriptor: TokenCachePartitionDescriptor, entries: [StoredTokenCacheEntry]) {
        self.descriptor = descriptor
        self.entries = entries
    }
}

/// A stored entry, as listed: everything but the token.
public struct StoredTokenCacheEntry: Sendable, Hashable {
    /// The resource the token is for.
    public var resource: String
    /// The token type.
    public var tokenType: String
    /// When the token expires.
    public var expiresOn: Date
    /// When the token should be refreshed.
    public var refreshOn: Date?
    /// When the token was stored.
    public var cachedAt: Date

    /// The listing of an entry: everything but its token.
    public init(_ entry: TokenCacheEntry) {
        resource = entry.resource
        tokenType = entry.tokenType
        expiresOn = entry.expiresOn
        refreshOn = entry.refreshOn
        cachedAt = entry.cachedAt
    }
}

extension InspectableTokenCacheBackend where Self: TokenCacheStorage {
    /// Removes stored entries through ``TokenCacheStorage/remove(_:from:)``: the expired ones (by the
    /// wall clock), or all.
    public func purge(expiredOnly: Bool) async throws -> Int {
        let now = Date()
        var removed = 0
        for partition in try await storedPartitions() {
            let keys = partition.entries.filter { !expiredOnly || $0.expiresOn <= now }.map {
                TokenCacheEntryKey(resource: $0.resource, tokenType: $0.tokenType)
            }
            guard !keys.isEmpty else { continue }
            try await remove(keys, from: partition.descriptor.key)
            removed += keys.count
        }
        return removed
    }
}
