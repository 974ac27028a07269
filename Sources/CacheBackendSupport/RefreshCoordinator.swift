import Crypto
import Logging
import ManagedIdentity

/// Makes processes that share a cache take turns fetching one token: an `flock` per partition and
/// resource in a lock directory. A process that finds the lock held waits (bounded) and then reads
/// the token the holder stored, instead of sending its own request.
package struct RefreshCoordinator: Sendable {
    static let slots = 1024
    package let directory: String
    package let timeout: Duration
    package let logger: Logger

    package init(directory: String, timeout: Duration, logger: Logger) {
        self.directory = directory
        self.timeout = timeout
        self.logger = logger
    }

    package func run<Result: Sendable>(
        partition: TokenCachePartitionKey, resource: String, _ body: () async throws -> Result
    ) async throws -> Result {
        // Tokens share a fixed set of lock files, so the directory does not grow with every resource
        // ever fetched; two tokens in one slot only take turns.
        let digest = Array(SHA256.hash(data: Array((partition.rawValue + "\n" + resource).utf8)))
        let slot = (Int(digest[0]) << 8 | Int(digest[1])) % Self.slots
        let lock = try await FileLock.acquire(path: "\(directory)/refresh-\(slot).lock", timeout: timeout)
        defer { lock?.release() }
        if lock == nil {
            logger.warning(
                "another process has been fetching this token for too long; fetching without waiting",
                metadata: ["managed-identity.partition": "\(partition)"])
        }
        return try await body()
    }
}
