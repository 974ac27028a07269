import Foundation
import Logging
import Synchronization

/// The one owner of a partition's cache rules for a client: it decides what each request gets
/// (``TokenCachePolicy``), runs the backend's hooks in their documented order, applies the
/// retention rule, shares one request among concurrent misses, and runs background refreshes.
///
/// The client hands it a fetcher (the endpoint request) and asks it for tokens; it never calls a
/// hook itself.
final class TokenCacheAccessor: Sendable {
    /// What one fetch from the endpoint is for.
    struct Fetch: Sendable {
        var resource: String
        var correlationID: CorrelationID
        /// SHA-256 of the cached token being replaced because of claims.
        var revokedTokenHash: String?
        /// Why the endpoint is asked (`miss`, `forced`, or `refreshDue` for a background refresh).
        var lookup: ManagedIdentityMetrics.LookupResult
        /// Whether no caller waits for it.
        var background = false
        /// The caller's claims challenge; only workload identity sends it (to Entra).
        var claims: String? = nil
    }

    typealias Fetcher = @Sendable (Fetch, Logger) async throws -> IssuedToken

    let cache: TokenCache
    let partition: TokenCachePartition
    let policy: TokenCachePolicy
    let clock: any ManagedIdentityClock
    let source: ManagedIdentitySource
    let instruments: ClientInstruments
    private let fetcher: Fetcher
    private let onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)?
    private let backgroundRefreshes = Mutex<BackgroundRefreshes>(BackgroundRefreshes())
    /// A number in [0, 1) for the refresh back-off's jitter.
    private let random: @Sendable () -> Double

    /// The background refreshes of this client's tokens: which run, which wait out a back-off.
    private struct BackgroundRefreshes {
        /// Per token: whether a refresh runs, and after a failure when the next may start. The state
        /// belongs to one cached token (by its expiry): a new token starts with none.
        struct Schedule {
            var expiresOn: Date
            var running = false
            /// `nil` before any failure; `.distantFuture` after an error no retry mends.
            var notBefore: Date?
        }
        var schedules: [TokenCacheEntryKey: Schedule] = [:]
        var next: UInt64 = 0
        var tasks: [UInt64: Task<Void, Never>] = [:]
    }

    init(
        cache: TokenCache, descriptor: TokenCachePartitionDescriptor, policy: TokenCachePolicy,
        clock: any ManagedIdentityClock, instruments: ClientInstruments,
        onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)? = nil,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }, fetcher: @escaping Fetcher
    ) {
        self.random = random
        self.cache = cache
        self.partition = cache.partition(for: descriptor)
        self.policy = policy
        self.clock = clock
        self.source = descriptor.source
        self.instruments = instruments
        self.onBackgroundRefreshCompleted = onBackgroundRefreshCompleted
        self.fetcher = fetcher
    }

    // MARK: - Requests

    /// The hit path of a cache without backend: memory only, synchronous, no hooks, no correlation
    /// id made. `nil` sends the request down ``token(resource:options:logger:)``.
    @inline(__always)
    func tokenFromMemory(resource: String, options: TokenRequestOptions, logger: @autoclosure () -> Logger) -> AccessToken? {
        guard cache.backend == nil, !options.forceRefresh, options.claims == nil,
            let entry = partition.lookup(TokenCacheEntryKey(resource: resource))
        else { return nil }
        let now = clock.now
        switch policy.decide(entry, now: now, request: .normal) {
        case .serve:
            instruments.lookedUp(.hit)
            instruments.served(expiresOn: entry.expiresOn, now: now)
            logger().trace("managed identity token served from the cache")
            return served(entry, reason: .notApplicable, correlationID: options.correlationID)
        case .serveAndRefreshInBackground:
            instruments.lookedUp(.refreshDue)
            instruments.served(expiresOn: entry.expiresOn, now: now)
            return servedAndRefreshed(entry, correlationID: options.correlationID, logger: logger())
        case .fetch: return nil
        }
    }

    /// The token for a request: from memory, from the backend, or from the endpoint.
    func token(resource: String, options: TokenRequestOptions, logger: Logger) async throws -> AccessToken {
        let entryKey = TokenCacheEntryKey(resource: resource)
        let request: TokenCachePolicy.Request = options.forceRefresh ? .forceRefresh : options.claims != nil ? .claims : .normal
        if options.forceRefresh, options.claims != nil {
            logger.warning("both force refresh and claims were given; force refresh wins")
        }
        let correlationID = options.correlationID.map(CorrelationID.init) ?? CorrelationID.next()
        let cached =
            TokenCachePolicy.readsCache(request)
            ? await read(entryKey, resource: resource, correlationID: correlationID, logger: logger) : nil
        let reason: AccessToken.CacheRefreshReason
        let revoking: TokenCacheEntry?
        let now = clock.now
        switch (policy.decide(cached, now: now, request: request), cached) {
        case (.serve, let cached?):
            instruments.lookedUp(.hit)
            instruments.served(expiresOn: cached.expiresOn, now: now)
            logger.trace("managed identity token served from the cache")
            return served(cached, reason: .notApplicable, correlationID: options.correlationID)
        case (.serveAndRefreshInBackground, let cached?):
            instruments.lookedUp(.refreshDue)
            instruments.served(expiresOn: cached.expiresOn, now: now)
            return servedAndRefreshed(cached, correlationID: options.correlationID, logger: logger)
        case (.fetch(let why, let revoked), _):
            (reason, revoking) = (why, revoked)
        case (.serve, nil), (.serveAndRefreshInBackground, nil):
            // The policy serves only an entry it was given; with none, this is a miss.
            (reason, revoking) = (.noCachedAccessToken, nil)
        }
        let lookup: ManagedIdentityMetrics.LookupResult = request == .normal ? .miss : .forced
        instruments.lookedUp(lookup)
        let fetch = Fetch(
            resource: resource, correlationID: correlationID, revokedTokenHash: revoking.map { Self.sha256Hex($0.accessToken) },
            lookup: lookup, claims: options.claims)
        if request != .normal {
            // A forced request wants a new token, not the result of one already in flight.
            return handedOut(try await fetchAndStore(fetch, entryKey: entryKey, reason: reason, logger: logger))
        }
        let (shared, started) = try await partition.inflight.run(entryKey) { [self] in
            try await fetchCoordinated(fetch, entryKey: entryKey, request: .normal, reason: reason, logger: logger)
        }
        var token = shared
        if token.expiresOn <= clock.now {
            // The request this caller waited on got its token long enough ago (a backend write that
            // hung, a refresh that waited on another host) for it to have expired since: it is
            // nobody's answer. Ask again, alone.
            logger.info("the token of the request waited on expired meanwhile; asking the endpoint again")
            token = try await fetchAndStore(fetch, entryKey: entryKey, reason: reason, logger: logger)
        }
        handedOut(token)
        if started { return token }
        // Callers that joined another's request get its token with their own correlation id.
        var joined = token
        joined.correlationID = correlationID.string
        return joined
    }

    /// Waits until the background refreshes started so far have finished.
    func waitForBackgroundRefreshes() async {
        let tasks = backgroundRefreshes.withLock { Array($0.tasks.values) }
        for task in tasks { await task.value }
    }

    // MARK: - Fetching

    /// Fetches under the backend's cross-process coordination, first checking whether another
    /// request (in this process or another) stored the token meanwhile.
    private func fetchCoordinated(
        _ fetch: Fetch, entryKey: TokenCacheEntryKey, request: TokenCachePolicy.Request,
        reason: AccessToken.CacheRefreshReason, logger: Logger
    ) async throws -> AccessToken {
        // Whether the token was found stored (by another request or process) rather than fetched.
        let recheck: () async -> (result: Result<AccessToken, any Error>, found: Bool) = { [self] in
            let cached = await read(entryKey, resource: fetch.resource, correlationID: fetch.correlationID, logger: logger)
            let now = clock.now
            if let cached, case .serve = policy.decide(cached, now: now, request: request) {
                return (.success(served(cached, reason: .notApplicable, correlationID: fetch.correlationID.string)), true)
            }
            do {
                return (.success(try await fetchAndStore(fetch, entryKey: entryKey, reason: reason, logger: logger)), false)
            } catch {
                return (.failure(error), false)
            }
        }
        guard let backend = cache.backend else { return try await recheck().result.get() }
        let notification = notification(resource: fetch.resource, written: nil)
        // The body's own outcome, kept apart from the backend's: an error of the fetch is the
        // caller's answer, never a reason to fetch a second time.
        var outcome: Result<AccessToken, any Error>?
        let waitStarted = ContinuousClock.now
        do {
            try await backend.coordinateRefresh(notification) { [instruments] in
                let waited = ContinuousClock.now - waitStarted
                let (result, found) = await recheck()
                instruments.coordinated(found: found, waited: waited)
                outcome = result
            }
        } catch is CancellationError where outcome == nil {
            throw CancellationError()
        } catch {
            report(.coordinateRefresh, error, duringWrite: false, logger: logger)
        }
        if let outcome { return try outcome.get() }
        return try await recheck().result.get()
    }

    /// Asks the endpoint, then stores the token through the write hooks.
    private func fetchAndStore(
        _ fetch: Fetch, entryKey: TokenCacheEntryKey, reason: AccessToken.CacheRefreshReason, logger: Logger
    ) async throws -> AccessToken {
        let issued = try await fetcher(fetch, logger)
        let now = clock.now
        let entry = TokenCacheEntry(
            partitionKey: partition.key,
            resource: fetch.resource,
            tokenType: entryKey.tokenType,
            accessToken: issued.accessToken,
            expiresOn: Date(timeIntervalSince1970: issued.expiresOn.rounded(.down)),
            refreshOn: issued.refreshOn.map { Date(timeIntervalSince1970: $0.rounded(.down)) },
            cachedAt: Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        )
        await write(entry, correlationID: fetch.correlationID, logger: logger)
        return AccessToken(
            token: issued.accessToken,
            tokenType: issued.tokenType,
            expiresOn: entry.expiresOn,
            refreshOn: entry.refreshOn,
            resource: fetch.resource,
            tokenSource: .identityProvider,
            managedIdentitySource: source,
            cacheRefreshReason: reason,
            correlationID: fetch.correlationID.string
        )
    }

    // MARK: - Serving

    /// Records how long a token handed to a caller has left.
    @discardableResult
    private func handedOut(_ token: AccessToken) -> AccessToken {
        instruments.served(expiresOn: token.expiresOn, now: clock.now)
        return token
    }

    private func served(_ entry: TokenCacheEntry, reason: AccessToken.CacheRefreshReason, correlationID: String?) -> AccessToken {
        AccessToken(
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

    private func servedAndRefreshed(_ entry: TokenCacheEntry, correlationID: String?, logger: Logger) -> AccessToken {
        startBackgroundRefresh(of: entry, logger: logger)
        return served(entry, reason: .proactivelyRefreshed, correlationID: correlationID)
    }

    /// Starts one background refresh of `entry`, unless one runs or its back-off has not passed.
    /// The claim is taken under the lock, so callers that arrive together start one refresh, and
    /// that refresh is reported once, with the correlation id it sent.
    private func startBackgroundRefresh(of entry: TokenCacheEntry, logger: Logger) {
        let entryKey = entry.key
        guard !partition.inflight.isRunning(entryKey) else { return }
        let now = clock.now
        let fetch = Fetch(
            resource: entry.resource, correlationID: CorrelationID.next(), revokedTokenHash: nil, lookup: .refreshDue,
            background: true)
        backgroundRefreshes.withLock { state in
            var schedule = state.schedules[entryKey]
            if schedule?.expiresOn != entry.expiresOn { schedule = .init(expiresOn: entry.expiresOn) }
            guard var schedule, !schedule.running, schedule.notBefore.map({ now >= $0 }) ?? true else { return }
            schedule.running = true
            state.schedules[entryKey] = schedule
            state.next &+= 1
            let id = state.next
            state.tasks[id] = Task { [self] in
                let result: Result<AccessToken, any Error>
                do {
                    let (token, _) = try await partition.inflight.run(entryKey) { [self] in
                        try await fetchCoordinated(
                            fetch, entryKey: entryKey, request: .backgroundRefresh, reason: .proactivelyRefreshed, logger: logger)
                    }
                    result = .success(token)
                } catch {
                    result = .failure(error)
                }
                let nextAttempt = finishBackgroundRefresh(of: entry, result: result, logger: logger, correlationID: fetch.correlationID)
                onBackgroundRefreshCompleted?(
                    BackgroundTokenRefresh(
                        resource: entry.resource, source: source, correlationID: fetch.correlationID.string, result: result,
                        nextAttempt: nextAttempt))
                _ = backgroundRefreshes.withLock { $0.tasks.removeValue(forKey: id) }
            }
        }
    }

    /// Records a background refresh's end: a success forgets the schedule; a failure sets the
    /// back-off. Returns when the next attempt may start, for the report.
    private func finishBackgroundRefresh(
        of entry: TokenCacheEntry, result: Result<AccessToken, any Error>, logger: Logger, correlationID: CorrelationID
    ) -> Date? {
        guard case .failure(let error) = result else {
            backgroundRefreshes.withLock { _ = $0.schedules.removeValue(forKey: entry.key) }
            return nil
        }
        let now = clock.now
        let usableUntil = entry.expiresOn.addingTimeInterval(-policy.margin)
        let nextAttempt = RefreshBackoff.nextAttempt(after: error, now: now, usableUntil: usableUntil, random: random())
        backgroundRefreshes.withLock { state in
            guard state.schedules[entry.key]?.expiresOn == entry.expiresOn else { return }
            state.schedules[entry.key]?.running = false
            state.schedules[entry.key]?.notBefore = nextAttempt ?? .distantFuture
        }
        instruments.backgroundRefreshFailed(error)
        if let nextAttempt { instruments.backgroundRefreshBackedOff(seconds: nextAttempt.timeIntervalSince(now)) }
        let next = nextAttempt.map { "the next attempt is in \(Int($0.timeIntervalSince(now).rounded())) s" }
            ?? (RefreshBackoff.isPermanent(error) ? "no retry mends this error, so none is made" : "too little time is left for another")
        // The cached token stays usable until it expires; a caller whose token is no longer usable fetches itself.
        logger.warning(
            "background token refresh failed; the cached token stays in use until it expires; \(next)",
            metadata: [
                "managed-identity.source": "\(source)",
                "managed-identity.correlation-id": "\(correlationID)",
                "managed-identity.error": "\((error as? ManagedIdentityError)?.code.rawValue ?? "\(type(of: error))")",
            ])
        return nextAttempt
    }

    // MARK: - Hooks

    /// A read: `beforeAccess`, lookup, `afterAccess`. When `beforeAccess` fails the lookup is of
    /// what memory holds (the tokens this process loaded or fetched): a store that is down costs the
    /// first request of each token a fetch, not every request.
    // Inlined: every hit of a cache with a backend comes through here, and as an async function of
    // its own it cost a frame and about 130 ns a hit (measured in the issue 17 A/B, BENCHMARKS.md).
    @inline(__always)
    private func read(
        _ entryKey: TokenCacheEntryKey, resource: String, correlationID: CorrelationID, logger: Logger
    ) async -> TokenCacheEntry? {
        guard let backend = cache.backend else { return partition.lookup(entryKey) }
        let notification = notification(resource: resource, written: nil)
        let mark = cache.backendHealth.mark()
        do {
            try await backend.beforeAccess(notification)
            cache.backendHealth.succeeded(since: mark, logger: logger)
        } catch {
            report(.beforeAccess, error, duringWrite: false, logger: logger)
        }
        let entry = partition.lookup(entryKey)
        do {
            try await backend.afterAccess(notification)
        } catch {
            report(.afterAccess, error, duringWrite: false, logger: logger)
        }
        return entry
    }

    /// A write: `beforeAccess`, `beforeWrite`, store, `afterAccess`. Hook failures are reported; the
    /// token is kept in memory and returned regardless.
    private func write(_ entry: TokenCacheEntry, correlationID: CorrelationID, logger: Logger) async {
        let notification = notification(resource: entry.resource, written: entry)
        guard let backend = cache.backend else {
            partition.store(entry, retention: notification.retention)
            return
        }
        let mark = cache.backendHealth.mark()
        do {
            try await backend.beforeAccess(notification)
            do {
                try await backend.beforeWrite(notification)
            } catch {
                report(.beforeWrite, error, duringWrite: true, logger: logger)
            }
        } catch {
            report(.beforeAccess, error, duringWrite: true, logger: logger)
        }
        partition.store(entry, retention: notification.retention)
        do {
            try await backend.afterAccess(notification)
            cache.backendHealth.succeeded(since: mark, logger: logger)
        } catch {
            report(.afterAccess, error, duringWrite: true, logger: logger)
        }
    }

    private func notification(resource: String, written: TokenCacheEntry?) -> TokenCacheNotification {
        TokenCacheNotification(
            partition: partition, resource: resource, hasStateChanged: written != nil, writtenEntry: written,
            retention: TokenCacheRetention(now: clock.now, maximumEntriesPerPartition: cache.maximumEntriesPerPartition))
    }

    /// Counts every failure; logs and reports the first of an outage (the failures until a hook
    /// succeeds again), and logs the rest at debug only.
    // Kept out of line: the cold path, which would otherwise make `read` too big to inline.
    @inline(never)
    private func report(_ hook: TokenCacheBackendFailure.Hook, _ error: any Error, duringWrite: Bool, logger: Logger) {
        instruments.backendFailed(hook)
        guard cache.backendHealth.failed() else {
            logger.debug(
                "cache backend hook failed again during the outage",
                metadata: ["managed-identity.hook": "\(hook.rawValue)", "managed-identity.error": "\(error)"])
            return
        }
        logger.warning(
            "cache backend hook failed; continuing from memory and the endpoint until the backend answers again",
            metadata: [
                "managed-identity.hook": "\(hook.rawValue)",
                "managed-identity.partition": "\(partition.key)",
                "managed-identity.error": "\(error)",
            ])
        cache.onBackendFailure?(
            TokenCacheBackendFailure(hook: hook, partitionKey: partition.key, duringWrite: duringWrite, error: error))
    }

    static func sha256Hex(_ text: String) -> String {
        Hex.sha256(Array(text.utf8))
    }
}
