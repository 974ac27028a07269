import ManagedIdentity
import Synchronization

/// Wraps a backend and records every hook call, in order, before forwarding it.
public final class RecordingBackend: TokenCacheBackend {
    /// One recorded call.
    public struct Call: Sendable, Hashable, CustomStringConvertible {
        /// The hooks.
        public enum Hook: String, Sendable { case beforeAccess, beforeWrite, afterAccess, coordinateRefresh }
        /// Which hook was called.
        public var hook: Hook
        /// The notification's `hasStateChanged`.
        public var hasStateChanged: Bool
        /// The resource of the request.
        public var resource: String
        /// The partition accessed.
        public var partitionKey: TokenCachePartitionKey

        public var description: String { "\(hook.rawValue)(\(hasStateChanged ? "changed" : "unchanged"))" }
    }

    private let wrapped: (any TokenCacheBackend)?
    private let log = Mutex<[Call]>([])

    /// Records calls and forwards them to `wrapped` (or nowhere).
    public init(wrapping wrapped: (any TokenCacheBackend)?) {
        self.wrapped = wrapped
    }

    /// The calls so far.
    public var calls: [Call] { log.withLock { $0 } }

    /// The calls so far as `hook(changed)` strings, and forgets them.
    public func takeSequence() -> [String] {
        log.withLock { calls in
            defer { calls.removeAll() }
            return calls.map(\.description)
        }
    }

    private func record(_ hook: Call.Hook, _ notification: TokenCacheNotification) {
        log.withLock {
            $0.append(
                Call(
                    hook: hook, hasStateChanged: notification.hasStateChanged, resource: notification.resource,
                    partitionKey: notification.partitionKey))
        }
    }

    /// Records the call, then forwards it.
    public func beforeAccess(_ notification: TokenCacheNotification) async throws {
        record(.beforeAccess, notification)
        try await wrapped?.beforeAccess(notification)
    }

    /// Records the call, then forwards it.
    public func beforeWrite(_ notification: TokenCacheNotification) async throws {
        record(.beforeWrite, notification)
        try await wrapped?.beforeWrite(notification)
    }

    /// Records the call, then forwards it.
    public func afterAccess(_ notification: TokenCacheNotification) async throws {
        record(.afterAccess, notification)
        try await wrapped?.afterAccess(notification)
    }

    /// Records the call, then forwards it.
    public func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        record(.coordinateRefresh, notification)
        if let wrapped { return try await wrapped.coordinateRefresh(notification, body) }
        return try await body()
    }
}
