import Foundation
import ManagedIdentity
import ManagedIdentityTesting
import Synchronization

/// The checks of a store shared by several instances, as processes share it: each makes one
/// instance per simulated process with the suite's factory and looks from outside, through clients.
extension TokenCacheConformance {
    /// Two tokens written through one instance: the first is still served from memory afterwards,
    /// which holds only if `write` hands back the whole stored partition.
    public func checkWriteReturnsTheStoredPartition() async throws {
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let client = try host.client(.clientID(UUID().uuidString), cache: TokenCache(backend: try await makeBackend()))
        let first = "https://partition.example/first/\(UUID().uuidString)"
        let firstToken = try await client.token(for: first)
        _ = try await client.token(for: "https://partition.example/second/\(UUID().uuidString)")
        let before = host.endpoint.requestCount
        let again = try await client.token(for: first)
        if host.endpoint.requestCount != before || again.token != firstToken.token {
            throw ConformanceFailure(
                check: "write returns the stored partition",
                message: "after two tokens of one partition were written through one instance, the first "
                    + "(\(describe(firstToken))) was fetched again (\(host.endpoint.requestCount - before) request(s)). Fix: write "
                    + "must return every token of the stored partition after the write, not only the written entry; the "
                    + "cache replaces its memory with what write returns.")
        }
    }

    /// Instance B loads a partition; a token written through instance A is then served through B
    /// with no request, and a force refresh through A is seen by B's next hit.
    public func checkWritesReachOtherInstances() async throws {
        let check = "writes reach other instances"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let a = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let b = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let loaded = "https://shared.example/loaded/\(UUID().uuidString)"
        let written = "https://shared.example/written/\(UUID().uuidString)"
        _ = try await b.token(for: loaded)
        let fromA = try await a.token(for: written)
        let before = host.endpoint.requestCount
        let throughB = try await b.token(for: written)
        if host.endpoint.requestCount != before || throughB.token != fromA.token {
            throw ConformanceFailure(
                check: check,
                message: "a token stored through instance A (\(describe(fromA))) was not served through instance B, which "
                    + "had loaded the partition before: B sent \(host.endpoint.requestCount - before) request(s). Fix: read(_:version:) "
                    + "must return the stored entries whenever the stored partition changed since the version it is given "
                    + "(nil only when nothing changed); a read that answers nil after its first load, or a version that "
                    + "does not change on every write, hides other processes' tokens.")
        }
        world.clock.advance(by: 1)
        let forced = try await a.token(for: loaded, options: TokenRequestOptions(forceRefresh: true))
        // A store that learns of changes by notification (PostgreSQL's LISTEN) sees them a moment
        // later: B's hits are repeated for at most 2 s, a bound on that delay, not a measurement.
        var seen = try await b.token(for: loaded)
        let deadline = ContinuousClock.now + .seconds(2)
        while seen.token != forced.token, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            seen = try await b.token(for: loaded)
        }
        if seen.token != forced.token {
            throw ConformanceFailure(
                check: check,
                message: "after instance A force-refreshed a token (now \(describe(forced))), instance B still served "
                    + "\(describe(seen)). Fix: the version must change whenever a stored token changes, including one "
                    + "replaced by a newer token of the same resource: a count of entries or a set of resources is not a "
                    + "version; a generation number or a modification time is.")
        }
    }

    /// Hits with nothing changed leave the partition's recorded version alone and, for a
    /// ``TokenCacheStorage``, a read with the version it returned answers `nil`: otherwise every hit
    /// reads the whole partition. The cost is measured and reported.
    public func checkHitsReadNothingWhenNothingChanged() async throws {
        let check = "hits read nothing when nothing changed"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let backend = try await makeBackend()
        let observer = VersionObserver(wrapped: backend)
        let cache = TokenCache(backend: observer)
        let client = try host.client(.clientID(UUID().uuidString), cache: cache)
        let resource = "https://hits.example/\(UUID().uuidString)"
        _ = try await client.token(for: resource)
        _ = try await client.token(for: resource)
        observer.reset()
        let hits = 50
        for _ in 0..<hits { _ = try await client.token(for: resource) }
        let versions = observer.versions
        let changes = zip(versions, versions.dropFirst()).filter { $0 != $1 }.count
        let unrecorded = versions.filter { $0 == nil }.count
        let rereads = try await StoredPartitionProbe.rereadsUnchanged(backend, partition: client.partitionKey) ?? false
        guard changes > hits / 10 || unrecorded == versions.count || rereads else { return }

        let cost = try await measuredCost(client: client, resource: resource, host: host, world: world)
        let observed =
            rereads
            ? "read(_:version:) returned the entries again when given the version it had just returned"
            : unrecorded == versions.count
                ? "after each of \(hits) hits the partition's recorded version was nil"
                : "the recorded version changed on \(changes) of \(hits - 1) hits in a row with nothing written"
        throw ConformanceFailure(
            check: check,
            message: "\(observed), so every hit reads the whole partition: \(cost). Fix: return nil from read when "
                + "the stored partition did not change, and keep the version the same while it does not; a backend of "
                + "hooks must record the version it loaded (replaceEntries(_:version:), importDocument(_:version:), or "
                + "markLoaded(version:) when it finds nothing changed).")
    }

    /// A hit's cost through the backend against a memory-only cache's, measured over 200 hits.
    private func measuredCost(client: ManagedIdentityClient, resource: String, host: FakeHost, world: World) async throws -> String {
        func perHit(_ client: ManagedIdentityClient) async throws -> Double {
            let started = ContinuousClock.now
            for _ in 0..<200 { _ = try await client.token(for: resource) }
            let elapsed = ContinuousClock.now - started
            return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / 200
        }
        let memoryOnly = try host.client(client.identity, cache: TokenCache())
        _ = try await memoryOnly.token(for: resource)
        let through = try await perHit(client)
        let baseline = try await perHit(memoryOnly)
        return String(format: "a hit took %.1f µs through this backend against %.1f µs from memory alone", through, baseline)
    }

    /// Tokens removed through the store (``TokenCacheStorage/remove(_:from:)``, or `purge` of an
    /// ``InspectableTokenCacheBackend``) stay removed through every instance and after a restart,
    /// and the versions of a partition removed and written again never repeat an earlier one.
    /// - Returns: why this was not checked, or `nil` when it was.
    public func checkRemoval() async throws -> String? {
        let check = "removal"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let resource = "https://removal.example/\(UUID().uuidString)"
        let remover = try await makeBackend()
        guard remover is any TokenCacheStorage || remover is any InspectableTokenCacheBackend else {
            return "the backend is neither a TokenCacheStorage nor an InspectableTokenCacheBackend, so nothing can remove "
                + "its tokens (the tool's cache purge cannot either)"
        }
        let writer = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let holder = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let removed = try await writer.token(for: resource)
        _ = try await holder.token(for: resource)

        if let storage = remover as? any TokenCacheStorage {
            try await storage.remove([TokenCacheEntryKey(resource: resource)], from: writer.partitionKey)
        } else if let inspectable = remover as? any InspectableTokenCacheBackend {
            _ = try await inspectable.purge(expiredOnly: false)
        }
        if let inspectable = remover as? any InspectableTokenCacheBackend,
            let listed = try await inspectable.storedPartitions().first(where: { $0.descriptor.key == writer.partitionKey }),
            listed.entries.contains(where: { $0.resource == resource })
        {
            throw ConformanceFailure(
                check: check,
                message: "after its removal the token is still listed by storedPartitions(). Fix: remove(_:from:) must "
                    + "delete the stored rows (the tool's cache purge reports them removed).")
        }
        let before = host.endpoint.requestCount
        let restarted = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let afterRestart = try await restarted.token(for: resource)
        if host.endpoint.requestCount == before || afterRestart.token == removed.token {
            throw ConformanceFailure(
                check: check,
                message: "a removed token (\(describe(removed))) was served by an instance started after the removal, "
                    + "with no request. Fix: remove(_:from:) must delete the stored tokens and change the partition's version.")
        }
        // The holder still has the removed token in memory, loaded at a version from before the
        // removal; the partition has since been written again by the restarted instance.
        let held = try await holder.token(for: resource)
        if held.token == removed.token {
            throw ConformanceFailure(
                check: check,
                message: "an instance that had loaded the partition before the removal went on serving the removed token "
                    + "(\(describe(removed))) after the partition was removed and written again (now \(describe(afterRestart))). "
                    + "Fix: versions must never repeat: a partition removed and written again must not get a version it had "
                    + "before (use a store-wide counter or a random generation, not a per-partition count that restarts).")
        }
        return nil
    }

    /// Eight instances over the store starting at once on one token send one request: the refresh
    /// lock makes the others wait and read the token the first stored.
    /// - Returns: why this was not checked, or `nil` when it was.
    public func checkOneRequestAcrossProcesses() async throws -> String? {
        guard sharing == .betweenProcesses else {
            return "the suite was created with sharing: .withinOneProcess, so the refresh lock across processes "
                + "was not checked; a store shared by processes needs it"
        }
        let instances = 8
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let resource = "https://coldstart.example/\(UUID().uuidString)"
        var clients: [ManagedIdentityClient] = []
        for _ in 0..<instances { clients.append(try host.client(identity, cache: TokenCache(backend: try await makeBackend()))) }
        host.endpoint.closeGate()
        let all = clients
        let tokens = Task {
            try await withThrowingTaskGroup(of: String.self) { group in
                for client in all { group.addTask { try await client.token(for: resource).token } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
        }
        // The gate holds the first request; without a lock the others reach it too. 2 s is a bound
        // on that wait, not a measurement: a lock keeps the count at 1 for all of it.
        let deadline = ContinuousClock.now + .seconds(2)
        while host.endpoint.waitingCount < instances, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        host.endpoint.openGate()
        let served = try await tokens.value
        if host.endpoint.requestCount != 1 || served.count != 1 {
            throw ConformanceFailure(
                check: "one request per token across processes",
                message: "\(instances) instances over one store asked for one token at once and sent "
                    + "\(host.endpoint.requestCount) requests, not 1 (\(served.count) different tokens served). Fix: implement "
                    + "withRefreshLock(partition:resource:_:) with a lock that every process sharing the store takes (an "
                    + "advisory lock, flock, SET NX with a lease), held while the body runs, given up after a bounded wait; "
                    + "or, if no other process ever uses this store, create the suite with sharing: .withinOneProcess.")
        }
        return nil
    }

    /// A fetch that fails inside the refresh lock releases it: another instance then gets the token
    /// at once, not after the lock's bound.
    /// - Returns: `nil`: this is checked for every backend.
    public func checkRefreshLockIsReleasedOnAThrow() async throws -> String? {
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let resource = "https://lock.example/\(UUID().uuidString)"
        let failingBackend = try await makeBackend()
        let otherBackend = try await makeBackend()
        let failing = try host.client(identity, cache: TokenCache(backend: failingBackend))
        let other = try host.client(identity, cache: TokenCache(backend: otherBackend))
        // The cache's own bodies never throw; a storage's lock is also taken here directly, with a
        // body that throws, as a caller's cancellation or another wrapper's error would.
        if let holder = failingBackend as? any TokenCacheStorage, let waiter = otherBackend as? any TokenCacheStorage {
            let partition = failing.partitionKey
            let lockResource = resource + "/direct"
            _ = try? await holder.withRefreshLock(partition: partition, resource: lockResource) { () async throws -> Int in
                throw CancellationError()
            }
            let started = ContinuousClock.now
            let took = Task { () async throws -> Bool in
                try await waiter.withRefreshLock(partition: partition, resource: lockResource) { () async throws -> Bool in true }
            }
            let done = Mutex(false)
            let watchdog = Task {
                try? await Task.sleep(for: .seconds(5))
                if !done.withLock({ $0 }) { took.cancel() }
            }
            let result = await took.result
            done.withLock { $0 = true }
            watchdog.cancel()
            let waited = ContinuousClock.now - started
            if waited >= .seconds(3) || (try? result.get()) != true {
                throw ConformanceFailure(
                    check: "refresh lock released when its body throws",
                    message: "after a body threw inside withRefreshLock on one instance, another instance waited "
                        + "\(waited.components.seconds * 1_000 + waited.components.attoseconds / 1_000_000_000_000_000) ms for the "
                        + "same lock. Fix: release the lock whether the body returns or throws (defer, or do/catch around "
                        + "the body), and let a lease end the lock of a holder that dies.")
            }
        }
        host.endpoint.failNext(1_000)
        _ = try? await failing.token(for: resource)
        host.endpoint.failNext(0)
        let started = ContinuousClock.now
        let fetch = Task { try await other.token(for: resource) }
        // A bound on a real wait: a released lock answers in milliseconds, a lock left held makes
        // the waiter sit out its whole timeout.
        let bound = Duration.seconds(5)
        let finished = Mutex(false)
        let watchdog = Task {
            try? await Task.sleep(for: bound)
            if !finished.withLock({ $0 }) { fetch.cancel() }
        }
        let outcome = await fetch.result
        finished.withLock { $0 = true }
        watchdog.cancel()
        let waited = ContinuousClock.now - started
        if waited >= .seconds(3) || (try? outcome.get()) == nil {
            throw ConformanceFailure(
                check: "refresh lock released when its body throws",
                message: "after a fetch failed inside withRefreshLock on one instance, another instance's request for the "
                    + "same token waited \(waited.components.seconds * 1_000 + waited.components.attoseconds / 1_000_000_000_000_000) ms "
                    + "(\((try? outcome.get()) == nil ? "and got no token" : "then got its token")). Fix: release the lock "
                    + "whether the body returns or throws (defer, or a lease that ends with the holder).")
        }
        return nil
    }

    /// Two tokens of one resource written at the same second through two instances: the one
    /// written last is stored (equal `cachedAt` lets the write win), in both orders.
    public func checkNewerWriteWinsOnTies() async throws {
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let resource = "https://ties.example/\(UUID().uuidString)"
        let a = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let b = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        let force = TokenRequestOptions(forceRefresh: true)
        for (first, second) in [(a, b), (b, a)] {
            world.clock.advance(by: 10)
            let earlier = try await first.token(for: resource, options: force)
            let later = try await second.token(for: resource, options: force)
            let stored = try await host.client(identity, cache: TokenCache(backend: try await makeBackend())).token(for: resource)
            if stored.token != later.token {
                throw ConformanceFailure(
                    check: "newer write wins, ties to the write",
                    message: "two tokens of one resource were written at the same second, \(describe(earlier)) then "
                        + "\(describe(later)); the store serves \(stored.token == earlier.token ? "the first" : describe(stored)). "
                        + "Fix: on equal cachedAt the written token replaces the stored one; keep the stored token only "
                        + "when its cachedAt is strictly later (TokenCacheRetention.storedWins(_:over:), or "
                        + "WHERE excluded.cached_at >= cached_at in SQL).")
            }
        }
    }

    /// Three tokens of equal expiry written in each of the six orders to a partition capped at 2:
    /// the store keeps what ``TokenCacheRetention`` keeps.
    public func checkRetentionOnTies() async throws {
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let cap = 2
        let names = ["b", "a", "c"]
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]].map { $0.map { names[$0] } }
        for order in orders {
            let identity = ManagedIdentityID.clientID(UUID().uuidString)
            let prefix = "https://tie.example/\(UUID().uuidString)/"
            let client = try host.client(identity, cache: TokenCache(backend: try await makeBackend(), maximumEntriesPerPartition: cap))
            var model: [TokenCacheEntry] = []
            for name in order {
                let token = try await client.token(for: prefix + name)
                let entry = TokenCacheEntry(
                    partitionKey: client.partitionKey, resource: prefix + name, accessToken: token.token, expiresOn: token.expiresOn,
                    cachedAt: world.clock.now)
                model = TokenCacheRetention(now: world.clock.now, maximumEntriesPerPartition: cap).apply(to: model, writing: entry)
            }
            let readerCache = TokenCache(backend: try await makeBackend(), maximumEntriesPerPartition: cap)
            let reader = try host.client(identity, cache: readerCache)
            _ = try await reader.token(for: prefix + (order.last ?? ""))
            let stored = (readerCache.partition(for: reader.partitionKey)?.entries ?? []).map { String($0.resource.dropFirst(prefix.count)) }
            let expected = model.map { String($0.resource.dropFirst(prefix.count)) }
            if Set(stored) != Set(expected) {
                throw ConformanceFailure(
                    check: "retention on ties",
                    message: "after writing tokens of equal expiry for resources \(order.joined(separator: ", ")) (in that order) "
                        + "to a partition capped at \(cap), the store keeps \(stored.sorted().joined(separator: ", ")); the rule "
                        + "keeps \(expected.sorted().joined(separator: ", ")). Fix: past the cap, of tokens with equal expiry the "
                        + "one whose resource sorts first as UTF-8 bytes goes first (then by token type), and the token just "
                        + "written always stays: TokenCacheRetention.apply, or in SQL ORDER BY expires_on DESC, resource DESC, "
                        + "token_type DESC in a binary collation, keeping the first cap - 1 besides the written one.")
            }
        }
    }
}

/// Records the partition's version after each `beforeAccess` of the wrapped backend.
final class VersionObserver: TokenCacheBackend {
    let wrapped: any TokenCacheBackend
    /// Each version as text: enough to tell whether it changed, and Sendable.
    private let recorded = Mutex<[String?]>([])

    init(wrapped: any TokenCacheBackend) { self.wrapped = wrapped }

    var versions: [String?] { recorded.withLock { $0 } }
    func reset() { recorded.withLock { $0 = [] } }

    func beforeAccess(_ notification: TokenCacheNotification) async throws {
        try await wrapped.beforeAccess(notification)
        let version = notification.partition.loadedVersion.map { String(describing: $0) }
        recorded.withLock { $0.append(version) }
    }

    func beforeWrite(_ notification: TokenCacheNotification) async throws { try await wrapped.beforeWrite(notification) }
    func afterAccess(_ notification: TokenCacheNotification) async throws { try await wrapped.afterAccess(notification) }
    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await wrapped.coordinateRefresh(notification, body)
    }
}
