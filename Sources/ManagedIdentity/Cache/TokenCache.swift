import Synchronization

/// The tokens a client has obtained, in memory, partitioned by identity, and the backend (if any)
/// that persists them.
///
/// Clients share ``shared`` by default, as MSAL shares its managed identity cache process-wide; the
/// partition key keeps every identity's tokens apart, so sharing is safe. Create your own to give a
/// client a backend or an isolated cache.
public final class TokenCache: Sendable {
    /// The process-wide in-memory cache, without backend.
    public static let shared = TokenCache()

    /// The hooks called around every access, or `nil` for a purely in-memory cache.
    public let backend: (any TokenCacheBackend)?
    /// The most entries a partition keeps; past it, the entries closest to expiry are evicted.
    public let maximumEntriesPerPartition: Int

    private let partitions = Mutex<[TokenCachePartitionKey: CachePartition]>([:])

    /// Creates a cache.
    /// - Parameters:
    ///   - backend: the hooks to call around every access, or `nil` to keep tokens in memory only.
    ///   - maximumEntriesPerPartition: the cap of one partition (one identity's resources).
    public init(backend: (any TokenCacheBackend)? = nil, maximumEntriesPerPartition: Int = 1_000) {
        self.backend = backend
        self.maximumEntriesPerPartition = maximumEntriesPerPartition
    }

    /// The partition for a descriptor, created empty on first use.
    func partition(for descriptor: TokenCachePartitionDescriptor) -> CachePartition {
        partitions.withLock { partitions in
            if let existing = partitions[descriptor.key] { return existing }
            let partition = CachePartition(descriptor: descriptor)
            partitions[descriptor.key] = partition
            return partition
        }
    }

    /// The partitions held in memory.
    public var partitionDescriptors: [TokenCachePartitionDescriptor] {
        partitions.withLock { $0.values.map(\.descriptor) }
    }

    /// The entries of one partition held in memory.
    public func entries(in key: TokenCachePartitionKey) -> [TokenCacheEntry] {
        partitions.withLock { $0[key] }?.entries ?? []
    }

    /// The serializer of a partition held in memory, to export it or import into it.
    public func serializer(for key: TokenCachePartitionKey) -> TokenCachePartitionSerializer? {
        partitions.withLock { $0[key] }.map { TokenCachePartitionSerializer(partition: $0) }
    }

    /// Imports a document produced by ``TokenCachePartitionSerializer/export()`` as a partition of
    /// this cache, replacing what it held.
    public func importPartition(_ bytes: [UInt8]) throws(TokenCacheSerializationError) {
        let decoded = try PartitionDocument.decode(bytes)
        partition(for: decoded.descriptor).replace(with: decoded.entries, version: nil)
    }

    /// Forgets every token held in memory (the backend's stored copy is untouched).
    public func removeAll() {
        partitions.withLock { $0.removeAll() }
    }
}
