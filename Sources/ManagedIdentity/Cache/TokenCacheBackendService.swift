import ServiceLifecycle

/// The one lifecycle of the persistent backends (file, SQLite, PostgreSQL), as swift-service-lifecycle
/// services: created without I/O, then opened in the background, when the service runs or at first
/// use, with every wait bounded.
///
/// A store that cannot be reached (a database that is down, a file locked past its bound, a
/// directory not writable for a moment) is a miss: requests go on from memory and the endpoint, the
/// first failure of the outage reaches ``TokenCache``'s failure handler, and the backend keeps
/// retrying with backoff; once the store answers, the tokens fetched meanwhile are written and the
/// store serves again. A configuration that no wait mends (``TokenCacheBackendError/isConfigurationError``)
/// fails ``start(within:)`` and every operation with its typed error.
///
/// ```swift
/// let backend = SQLiteTokenCacheBackend(path: "/var/cache/myservice/tokens.sqlite")
/// // In a ServiceGroup with the rest of the service, or scoped:
/// try await backend.withRunning { backend in
///     let client = try ManagedIdentityClient(cache: TokenCache(backend: backend))
///     _ = try await client.token(for: "https://vault.azure.net")
/// }
/// ```
public protocol TokenCacheBackendService: TokenCacheBackend, Service {
    /// Starts opening the store if nobody is, and waits for the first attempt's outcome, at most `within`.
    /// - Throws: ``TokenCacheBackendError`` when the configuration is wrong; a store that cannot be
    ///   reached yet is not an error here (the backend serves misses and keeps trying).
    func start(within: Duration) async throws(TokenCacheBackendError)

    /// Where the store is now.
    var state: TokenCacheBackendState { get }
}

/// Where a backend's store is.
public enum TokenCacheBackendState: Sendable, Equatable {
    /// Open: reads and writes go to the store.
    case open
    /// Not open yet, or lost and being opened again; `reason` is the last failure, when there was one.
    case opening(reason: String?)
    /// A configuration error no wait mends; every operation fails with it.
    case failed(reason: String)
    /// Stopped: the service ended.
    case stopped
}

extension TokenCacheBackendService {
    /// Runs the backend for the duration of `body`, which starts once the first open attempt ended
    /// (at most `startWithin`): at once with a store that is down, which is then a miss until it answers.
    /// - Throws: a configuration error of the store; else what `body` throws.
    public func withRunning<Result: Sendable>(
        startWithin: Duration = .seconds(1), _ body: (Self) async throws -> Result
    ) async throws -> Result {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            defer { group.cancelAll() }
            try await start(within: startWithin)
            return try await body(self)
        }
    }
}
