import Foundation

/// What a backend's hooks are told about one cache access.
public struct TokenCacheNotification: Sendable {
    /// The in-memory partition accessed: load stored tokens into it, read written ones from it.
    public let partition: TokenCachePartition
    /// The resource the request is for.
    public let resource: String
    /// `true` on the three hooks of a write, `false` on the two of a read.
    public let hasStateChanged: Bool
    /// The token being written, on the hooks of a write. A backend that stores rows stores this one
    /// row, merged with what is stored, under ``retention``.
    public let writtenEntry: TokenCacheEntry?
    /// The retention rule of this access, with the cache's clock and cap: apply it to what is stored
    /// when writing, so stored tokens are purged and capped exactly as in memory.
    public let retention: TokenCacheRetention

    /// The partition's key: never empty, safe as a file name or a database key.
    public var partitionKey: TokenCachePartitionKey { partition.key }

    init(
        partition: TokenCachePartition, resource: String, hasStateChanged: Bool, writtenEntry: TokenCacheEntry?,
        retention: TokenCacheRetention
    ) {
        self.partition = partition
        self.resource = resource
        self.hasStateChanged = hasStateChanged
        self.writtenEntry = writtenEntry
        self.retention = retention
    }
}
