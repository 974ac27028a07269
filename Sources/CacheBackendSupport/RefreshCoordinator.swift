import Crypto
import Logging
import ManagedIdentity

/// Makes processes that share a cache take turns fetching one token: an `flock` per partition and
/// resource in a lock directory. A process that finds the lock held waits (bounded) and then reads
/// the token the holder stored, instead of sending its own request.
package struct RefreshCoordinator: Sendable {
    package let directory: String
    package let timeout: Duration
    package let logger: Logger

    package init(directory: String, timeout: Duration, logger: Logger) {
        self.directory = directory
        self.timeout = timeout
        self.logger = logger
    }

    package func run<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        let digest = SHA256.hash(data: Array((notification.partitionKey.rawValue + "\n" + notification.resource).utf8))
        let name = digest.prefix(16).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
        let lock = try await FileLock.acquire(path: "\(directory)/\(name).refresh", timeout: timeout)
        defer { lock?.release() }
        if lock == nil {
            logger.warning(
                "another process has been fetching this token for too long; fetching without waiting",
                metadata: ["managed-identity.partition": "\(notification.partitionKey)"])
        }
        return try await body()
    }
}

extension String {
    package func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
