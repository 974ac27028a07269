import Synchronization

/// The tokens clients have obtained, in memory, partitioned by identity, and the backend (if any)
/// that persists them.
///
/// Clients share ``shared`` by default, as MSAL shares its managed identity cache process-wide; the
/// partition key keeps every identity's tokens apart, so sharing is safe. Create your own to give
/// clients a backend or an isolated cache.
///
/// The cache owns the rules: when a token is served, refreshed in the background or fetched, the
/// order of the backend's hooks, and the retention rule (``TokenCacheRetention``). Clients ask it for
/// tokens; backends only store them.
public final class TokenCache: Sendable {
    /// The process-wide in-memory cache, without backend.
    public static let shared = TokenCache()

    /// The hooks called around every access, or `nil` for a purely in-memory cache.
    public let backend: (any TokenCacheBackend)?
    /// The most tokens a partition keeps; past it, the tokens closest to expiry go.
    public let maximumEntriesPerPartition: Int
    /// Called for the first backend hook that fails in an outage.
    let onBackendFailure: (@Sendable (TokenCacheBackendFailure) -> Void)?
    /// Whether the backend is in an outage, so that it is reported once per outage.
    let backendHealth = BackendHealth()

    private let partitions = Mutex<[TokenCachePartitionKey: TokenCachePartition]>([:])

    /// Creates a cache.
    /// - Parameters:
    ///   - backend: the hooks to call around every access, or `nil` to keep tokens in memory only.
    ///   - maximumEntriesPerPartition: the cap of one partition (one identity's resources).
    ///   - onBackendFailure: called, on the task of the request, for the first backend hook that
    ///     throws in an outage (until a hook succeeds again); the request itself goes on from memory
    ///     and the endpoint. That first failure is also logged as a warning; every failure is counted
    ///   in `managed_identity_cache_backend_failures_total`.
    public init(
        backend: (any TokenCacheBackend)? = nil, maximumEntriesPerPartition: Int = 1_000,
        onBackendFailure: (@Sendable (TokenCacheBackendFailure) -> Void)? = nil
    ) {
        self.backend = backend
        self.maximumEntriesPerPartition = maximumEntriesPerPartition
        self.onBackendFailure = onBackendFailure
    }

    /// The partition for a descriptor, created empty on first use.
    func partition(for descriptor: TokenCachePartitionDescriptor) -> TokenCachePartition {
        partitions.withLock { partitions in
            if let existing = partitions[descriptor.key] { return existing }
            let partition = TokenCachePartition(descriptor: descriptor)
            partitions[descriptor.key] = partition
            return partition
        }
    }

    /// The partitions held in memory.
    public var partitionDescriptors: [TokenCachePartitionDescriptor] {
        partitions.withLock { $0.values.map(\.descriptor) }
    }

    /// A partition held in memory, to list, export or import its tokens.
    public func partition(for key: TokenCachePartitionKey) -> TokenCachePartition? {
        partitions.withLock { $0[key] }
    }

    /// Imports a document made by ``TokenCachePartition/exportDocument()`` as a partition of this
    /// cache, replacing what it held.
    public func importPartition(_ bytes: [UInt8]) throws(TokenCacheSerializationError) {
        let decoded = try PartitionDocument.decode(bytes)
        partition(for: decoded.descriptor).replaceEntries(decoded.entries, version: nil)
    }

    /// Forgets every token held in memory (the backend's stored copy is untouched).
    public func removeAll() {
        partitions.withLock { $0.removeAll() }
    }
}
