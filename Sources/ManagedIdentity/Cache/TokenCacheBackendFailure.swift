/// A backend hook that failed. The request it belonged to went on without the backend (a read
/// became a cache miss, a write stayed in memory only), so callers never see it: this is how they
/// learn of it, through the failure handler of ``TokenCache``.
public struct TokenCacheBackendFailure: Error, Sendable, CustomStringConvertible {
    /// The hooks, as reported.
    public enum Hook: String, Sendable, Hashable, CaseIterable {
        /// ``TokenCacheBackend/beforeAccess(_:)``.
        case beforeAccess
        /// ``TokenCacheBackend/beforeWrite(_:)``.
        case beforeWrite
        /// ``TokenCacheBackend/afterAccess(_:)``.
        case afterAccess
        /// ``TokenCacheBackend/coordinateRefresh(_:_:)``.
        case coordinateRefresh
    }

    /// The hook that threw.
    public var hook: Hook
    /// The partition accessed.
    public var partitionKey: TokenCachePartitionKey
    /// Whether it was the access of a write.
    public var duringWrite: Bool
    /// What the backend threw.
    public var error: any Error

    /// Creates a failure report.
    public init(hook: Hook, partitionKey: TokenCachePartitionKey, duringWrite: Bool, error: any Error) {
        self.hook = hook
        self.partitionKey = partitionKey
        self.duringWrite = duringWrite
        self.error = error
    }

    public var description: String {
        "cache backend hook \(hook.rawValue) failed for partition \(partitionKey)\(duringWrite ? " during a write" : ""): \(error)"
    }
}
