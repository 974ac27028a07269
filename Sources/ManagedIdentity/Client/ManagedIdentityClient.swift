import Crypto
import Foundation
import Logging
import Synchronization

/// Gets access tokens for one managed identity from the host's managed identity source, and caches them.
///
/// ```swift
/// let client = try ManagedIdentityClient(identity: .systemAssigned)
/// let token = try await client.token(for: "https://vault.azure.net/.default")
/// ```
///
/// The source is detected from the environment when the client is created (or named in the
/// configuration); configuration mistakes (a malformed endpoint variable, an identity kind the source
/// cannot take, an empty id) throw then, before any request. Tokens are served from the ``cache``
/// while they are valid for more than the expiry margin; concurrent requests for one resource share
/// one HTTP request; past a token's refresh time the cached token is returned at once and refreshed
/// in the background.
public final class ManagedIdentityClient: Sendable {
    /// The identity this client gets tokens for.
    public let identity: ManagedIdentityID
    /// The source it gets them from.
    public let source: ManagedIdentitySource
    /// The cache it keeps them in.
    public let cache: TokenCache
    /// The partition of ``cache`` that holds this client's tokens.
    public let partitionDescriptor: TokenCachePartitionDescriptor

    let acquirer: TokenAcquirer
    let partition: CachePartition
    let clock: any ManagedIdentityClock
    let margin: TimeInterval
    let clientCapabilities: [String]
    let requestTimeout: Duration
    let logger: Logger
    private let backgroundRefreshes = Mutex<[UInt64: Task<Void, Never>]>([:])
    private let backgroundRefreshIDs = Atomic<UInt64>(0)

    /// A logger that discards everything: the library is silent unless given a logger.
    static let silentLogger = Logger(label: "managed-identity", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Creates a client.
    /// - Parameters:
    ///   - identity: the identity to get tokens for.
    ///   - configuration: the source, environment, timeouts and clock.
    ///   - cache: where tokens are kept; ``TokenCache/shared`` (memory only) by default.
    ///   - transport: how requests are sent; ``AsyncHTTPClientTransport`` by default.
    ///   - logger: where the client logs; nothing is logged by default. No token or secret is ever logged.
    /// - Throws: ``ManagedIdentityError`` when the configuration cannot work.
    public init(
        identity: ManagedIdentityID = .systemAssigned,
        configuration: Configuration = Configuration(),
        cache: TokenCache = .shared,
        transport: any HTTPTransport = AsyncHTTPClientTransport(),
        logger: Logger? = nil
    ) throws(ManagedIdentityError) {
        let source = configuration.source ?? ManagedIdentitySource.detect(in: configuration.environment)
        let endpoint = try SourceResolver.resolve(
            source, identity: identity, environment: configuration.environment,
            options: SourceResolutionOptions(
                serviceFabricAPIVersion: configuration.serviceFabricAPIVersion,
                arcKeyDirectory: configuration.arcKeyDirectory))
        let endpointText = endpoint.endpoint.description
        let key = TokenCachePartitionKey(
            source: source, endpoint: endpointText, identity: identity,
            hostDiscriminator: configuration.hostDiscriminator ?? Self.defaultHostDiscriminator,
            clientCapabilities: source == .serviceFabric ? configuration.clientCapabilities : [])
        let descriptor = TokenCachePartitionDescriptor(
            key: key, source: source, identity: identity, endpoint: endpointText)

        self.identity = identity
        self.source = source
        self.cache = cache
        self.partitionDescriptor = descriptor
        self.partition = cache.partition(for: descriptor)
        self.acquirer = TokenAcquirer(
            endpoint: endpoint, transport: transport, clock: configuration.clock,
            retriesEnabled: configuration.retriesEnabled, sourceWasDetected: configuration.source == nil)
        self.clock = configuration.clock
        self.margin = Self.seconds(configuration.expiryMargin)
        self.clientCapabilities = configuration.clientCapabilities
        self.requestTimeout = configuration.requestTimeout
        self.logger = logger ?? Self.silentLogger
    }

    /// The key of this client's cache partition.
    public var partitionKey: TokenCachePartitionKey { partitionDescriptor.key }

    /// Gets a token for a resource.
    ///
    /// - Parameters:
    ///   - scope: the resource, or a scope ending in `/.default` (one trailing `/.default` is removed).
    ///   - options: force refresh, claims, correlation id.
    ///   - logger: a logger for this request, instead of the client's.
    /// - Returns: the token, saying whether it came from the cache or the endpoint.
    /// - Throws: ``ManagedIdentityError``, or `CancellationError` when the task is cancelled.
    public func token(
        for scope: String, options: TokenRequestOptions = TokenRequestOptions(), logger: Logger? = nil
    ) async throws -> AccessToken {
        let resource = try Self.resource(fromScope: scope)
        let entryKey = TokenCacheEntryKey(resource: resource)
        // The fast path: memory only, no hooks to call, no correlation id to make.
        if cache.backend == nil, !options.forceRefresh, options.claims == nil {
            let now = clock.now
            if let entry = partition.lookup(entryKey), isUsable(entry, now: now) {
                return served(entry, now: now, correlationID: options.correlationID, logger: logger ?? self.logger)
            }
        }
        return try await tokenFromCacheOrEndpoint(
            resource: resource, entryKey: entryKey, options: options, logger: logger ?? self.logger)
    }

    /// Waits until the background refreshes started so far have finished.
    public func waitForBackgroundRefreshes() async {
        let tasks = backgroundRefreshes.withLock { Array($0.values) }
        for task in tasks { await task.value }
    }

    // MARK: - The token path

    private func tokenFromCacheOrEndpoint(
        resource: String, entryKey: TokenCacheEntryKey, options: TokenRequestOptions, logger: Logger
    ) async throws -> AccessToken {
        let correlationID = options.correlationID.map(CorrelationID.init) ?? CorrelationID.next()
        var reason = AccessToken.CacheRefreshReason.forceRefreshOrClaims
        var revokedTokenHash: String?
        if options.forceRefresh {
            if options.claims != nil {
                logger.warning("both force refresh and claims were given; force refresh wins")
            }
        } else {
            let now = clock.now
            let cached = await readCache(entryKey: entryKey, resource: resource, correlationID: correlationID, logger: logger)
            if let cached, isUsable(cached, now: now) {
                if options.claims == nil {
                    return served(cached, now: now, correlationID: options.correlationID, logger: logger)
                }
                revokedTokenHash = Self.sha256Hex(cached.accessToken)
            } else if options.claims == nil {
                reason = cached == nil ? .noCachedAccessToken : .expired
            }
        }

        let request = FetchRequest(
            resource: resource, entryKey: entryKey, correlationID: correlationID, reason: reason,
            revokedTokenHash: revokedTokenHash, proactive: false)
        if options.forceRefresh || options.claims != nil {
            // A forced request wants a new token, not the result of one already in flight.
            return try await fetchAndStore(request, logger: logger)
        }
        let (token, started) = try await partition.inflight.run(entryKey) { [self] in
            try await fetchCoordinated(request, logger: logger)
        }
        if started { return token }
        // Callers that joined another's request get its token as it was served to the first caller.
        var joined = token
        joined.correlationID = correlationID.string
        return joined
    }

    /// What one fetch is for.
    struct FetchRequest: Sendable {
        var resource: String
        var entryKey: TokenCacheEntryKey
        var correlationID: CorrelationID
        var reason: AccessToken.CacheRefreshReason
        var revokedTokenHash: String?
        /// A background refresh: a cached token that is valid but past its refresh time is not enough.
        var proactive: Bool
    }

    /// Fetches under the backend's cross-process coordination, first checking whether another
    /// request (in this process or another) stored the token meanwhile.
    private func fetchCoordinated(_ request: FetchRequest, logger: Logger) async throws -> AccessToken {
        guard let backend = cache.backend else {
            let now = clock.now
            if let entry = partition.lookup(request.entryKey), isFresh(entry, now: now, proactive: request.proactive) {
                return served(entry, now: now, correlationID: request.correlationID.string, logger: logger)
            }
            return try await fetchAndStore(request, logger: logger)
        }
        let notification = makeNotification(
            resource: request.resource, correlationID: request.correlationID, changed: false)
        let inner: () async -> Result<AccessToken, any Error> = { [self] in
            let cached = await readCache(
                entryKey: request.entryKey, resource: request.resource, correlationID: request.correlationID,
                logger: logger)
            let now = clock.now
            if let cached, isFresh(cached, now: now, proactive: request.proactive) {
                return .success(served(cached, now: now, correlationID: request.correlationID.string, logger: logger))
            }
            return await Result(catching: { try await fetchAndStore(request, logger: logger) })
        }
        do {
            return try await backend.coordinateRefresh(notification) { await inner() }.get()
        } catch let error as ManagedIdentityError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // Only the backend's coordination can fail this way; go on without it.
            logger.warning(
                "cache backend failed to coordinate the refresh; fetching without it",
                metadata: ["managed-identity.error": "\(error)"])
            return try await fetchAndStore(request, logger: logger)
        }
    }

    /// Asks the endpoint, then stores the token through the write hooks.
    private func fetchAndStore(_ request: FetchRequest, logger: Logger) async throws -> AccessToken {
        let parameters = TokenRequestParameters(
            resource: request.resource, identity: identity, correlationID: request.correlationID.string,
            clientCapabilities: clientCapabilities, revokedTokenHash: request.revokedTokenHash,
            timeout: requestTimeout)
        let issued = try await acquirer.acquire(parameters, logger: logger)
        let now = clock.now
        let entry = TokenCacheEntry(
            partitionKey: partition.key,
            resource: request.resource,
            tokenType: request.entryKey.tokenType,
            accessToken: issued.accessToken,
            expiresOn: Date(timeIntervalSince1970: issued.expiresOn.rounded(.down)),
            refreshOn: issued.refreshOn.map { Date(timeIntervalSince1970: $0.rounded(.down)) },
            cachedAt: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        )
        await writeCache(entry, correlationID: request.correlationID, now: now, logger: logger)
        return AccessToken(
            token: issued.accessToken,
            tokenType: issued.tokenType,
            expiresOn: entry.expiresOn,
            refreshOn: entry.refreshOn,
            resource: request.resource,
            tokenSource: .identityProvider,
            managedIdentitySource: source,
            cacheRefreshReason: request.reason,
            correlationID: request.correlationID.string
        )
    }

    /// A cached token as served to a caller; starts a background refresh once it is past its refresh time.
    private func served(_ entry: TokenCacheEntry, now: Date, correlationID: String?, logger: Logger) -> AccessToken {
        var reason = AccessToken.CacheRefreshReason.notApplicable
        if let refreshOn = entry.refreshOn, refreshOn <= now {
            reason = .proactivelyRefreshed
            startBackgroundRefresh(resource: entry.resource, entryKey: entry.key, logger: logger)
        }
        return AccessToken(
            token: entry.accessToken,
            tokenType: entry.tokenType,
            expiresOn: entry.expiresOn,
            refreshOn: entry.refreshOn,
            resource: entry.resource,
            tokenSource: .cache,
            managedIdentitySource: source,
            cacheRefreshReason: reason,
            correlationID: correlationID
        )
    }

    private func startBackgroundRefresh(resource: String, entryKey: TokenCacheEntryKey, logger: Logger) {
        guard !partition.inflight.isRunning(entryKey) else { return }
        let id = backgroundRefreshIDs.add(1, ordering: .relaxed).newValue
        let request = FetchRequest(
            resource: resource, entryKey: entryKey, correlationID: CorrelationID.next(),
            reason: .proactivelyRefreshed, revokedTokenHash: nil, proactive: true)
        backgroundRefreshes.withLock { tasks in
            tasks[id] = Task { [self] in
                do {
                    _ = try await partition.inflight.run(entryKey) { [self] in
                        try await fetchCoordinated(request, logger: logger)
                    }
                } catch {
                    // The cached token stays usable until it expires; the next call past refresh_on tries again.
                    logger.warning(
                        "background token refresh failed; the cached token stays in use until it expires",
                        metadata: [
                            "managed-identity.source": "\(source)",
                            "managed-identity.correlation-id": "\(request.correlationID)",
                            "managed-identity.error": "\((error as? ManagedIdentityError)?.code.rawValue ?? "\(type(of: error))")",
                        ])
                }
                _ = backgroundRefreshes.withLock { $0.removeValue(forKey: id) }
            }
        }
    }

    // MARK: - Hooks

    /// A read: `beforeAccess`, lookup, `afterAccess`. A failing `beforeAccess` makes it a miss.
    private func readCache(
        entryKey: TokenCacheEntryKey, resource: String, correlationID: CorrelationID, logger: Logger
    ) async -> TokenCacheEntry? {
        guard let backend = cache.backend else { return partition.lookup(entryKey) }
        let notification = makeNotification(resource: resource, correlationID: correlationID, changed: false)
        var entry: TokenCacheEntry?
        do {
            try await backend.beforeAccess(notification)
            entry = partition.lookup(entryKey)
        } catch {
            logHookFailure("beforeAccess", error, logger: logger)
        }
        do {
            try await backend.afterAccess(notification)
        } catch {
            logHookFailure("afterAccess", error, logger: logger)
        }
        return entry
    }

    /// A write: `beforeAccess`, `beforeWrite`, store, `afterAccess`. Hook failures are logged; the
    /// token is kept in memory and returned regardless.
    private func writeCache(_ entry: TokenCacheEntry, correlationID: CorrelationID, now: Date, logger: Logger) async {
        guard let backend = cache.backend else {
            _ = partition.store(entry, now: now, cap: cache.maximumEntriesPerPartition)
            return
        }
        let before = makeNotification(
            resource: entry.resource, correlationID: correlationID, changed: true, written: entry)
        do {
            try await backend.beforeAccess(before)
            try await backend.beforeWrite(before)
        } catch {
            logHookFailure("beforeAccess/beforeWrite", error, logger: logger)
        }
        let removed = partition.store(entry, now: now, cap: cache.maximumEntriesPerPartition)
        let after = makeNotification(
            resource: entry.resource, correlationID: correlationID, changed: true, written: entry, removed: removed)
        do {
            try await backend.afterAccess(after)
        } catch {
            logHookFailure("afterAccess", error, logger: logger)
        }
    }

    private func makeNotification(
        resource: String, correlationID: CorrelationID, changed: Bool, written: TokenCacheEntry? = nil,
        removed: [TokenCacheEntryKey] = []
    ) -> TokenCacheNotification {
        let summary = partition.summary(validAfter: clock.now.addingTimeInterval(margin))
        return TokenCacheNotification(
            partitionKey: partition.key,
            source: source,
            identity: identity,
            resource: resource,
            hasStateChanged: changed,
            hasTokens: summary.hasTokens,
            suggestedCacheExpiry: summary.latestExpiry,
            correlation: correlationID,
            writtenEntry: written,
            removedEntries: removed,
            serializer: TokenCachePartitionSerializer(partition: partition)
        )
    }

    private func logHookFailure(_ hook: String, _ error: any Error, logger: Logger) {
        logger.warning(
            "cache backend hook failed; continuing as a cache miss",
            metadata: [
                "managed-identity.hook": "\(hook)",
                "managed-identity.partition": "\(partition.key)",
                "managed-identity.error": "\(error)",
            ])
    }

    // MARK: - Validity

    /// Valid beyond the margin, and not absurd (MSAL ignores tokens expiring more than 10 years out).
    private func isUsable(_ entry: TokenCacheEntry, now: Date) -> Bool {
        let remaining = entry.expiresOn.timeIntervalSince(now)
        return remaining > margin && remaining < 315_360_000
    }

    private func isFresh(_ entry: TokenCacheEntry, now: Date, proactive: Bool) -> Bool {
        guard isUsable(entry, now: now) else { return false }
        guard proactive, let refreshOn = entry.refreshOn else { return true }
        return refreshOn > now
    }

    // MARK: - Helpers

    /// Removes one trailing `/.default`, exactly and case-sensitively, as MSAL.NET and Go do.
    static func resource(fromScope scope: String) throws(ManagedIdentityError) -> String {
        let resource = scope.utf8.reversed().starts(with: "/.default".utf8.reversed())
            ? String(scope.dropLast("/.default".count)) : scope
        // A first byte that is not a space settles it without walking the characters of the resource.
        guard let first = resource.utf8.first, first > 0x20 || !resource.allSatisfy(\.isWhitespace) else {
            throw ManagedIdentityError(
                code: .invalidResource,
                message: "The resource is empty. Pass the resource (for example https://management.azure.com) "
                    + "or a scope ending in /.default.")
        }
        return resource
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
