/// What a partition belongs to: its key, and the source, identity and endpoint it was computed from
/// (for listing a cache; backends may store them beside the tokens).
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
