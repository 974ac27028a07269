import Foundation
import ManagedIdentity
import ManagedIdentityTesting
import Synchronization

extension TokenCacheConformance {
    /// Two backend instances over one store (two processes) write one partition at once, each having
    /// read it before the other wrote: first tokens of two resources (both must survive), then two
    /// tokens of one resource (the newer must win, whichever is stored last).
    public func checkConcurrentWriters() async throws {
        let check = "concurrent writers"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let first = "https://writers.example/first/\(UUID().uuidString)"
        let second = "https://writers.example/second/\(UUID().uuidString)"
        let force = TokenRequestOptions(forceRefresh: true)

        // Different resources: A stores first, then B, each from what it read before either wrote.
        let barrier = WriteBarrier(order: ["A", "B"])
        let clientA = try host.client(identity, cache: TokenCache(backend: barrier.wrap(try await makeBackend(), as: "A")))
        let clientB = try host.client(identity, cache: TokenCache(backend: barrier.wrap(try await makeBackend(), as: "B")))
        async let tokenA = clientA.token(for: first, options: force)
        async let tokenB = clientB.token(for: second, options: force)
        let (a, b) = try await (tokenA, tokenB)
        let reader = try host.client(identity, cache: TokenCache(backend: try await makeBackend()))
        var lost: [String] = []
        for (resource, token) in [(first, a), (second, b)] {
            let before = host.endpoint.requestCount
            let served = try await reader.token(for: resource)
            if served.token != token.token || host.endpoint.requestCount != before { lost.append(resource) }
        }
        if !lost.isEmpty {
            throw ConformanceFailure(
                check: check,
                message: "two processes wrote tokens of different resources to one partition at once, and the store lost "
                    + "\(lost.count == 2 ? "both" : "one") of them (\(lost.joined(separator: ", "))). Fix: a backend must merge the "
                    + "written entry (TokenCacheNotification.writtenEntry) into the partition as stored, under the store's own "
                    + "lock or transaction, with TokenCacheNotification.retention; storing the in-memory partition whole "
                    + "(as exported in afterAccess) overwrites what other processes stored since beforeAccess. Implementing "
                    + "TokenCacheStorage does this for you.")
        }

        // One resource: the newer token (B, fetched a second later) is stored first; A's older one
        // arrives after it and must not replace it.
        let reversed = WriteBarrier(order: ["B", "A"])
        let olderClient = try host.client(identity, cache: TokenCache(backend: reversed.wrap(try await makeBackend(), as: "A")))
        let newerClient = try host.client(identity, cache: TokenCache(backend: reversed.wrap(try await makeBackend(), as: "B")))
        async let olderA = olderClient.token(for: first, options: force)
        await reversed.waitForArrivals(1)
        world.clock.advance(by: 1)
        async let newerB = newerClient.token(for: first, options: force)
        let (older, newer) = try await (olderA, newerB)
        let stored = try await host.client(identity, cache: TokenCache(backend: try await makeBackend())).token(for: first)
        if stored.token != newer.token {
            throw ConformanceFailure(
                check: check,
                message: stored.token == older.token
                    ? "an older token of a resource, stored after a newer one, replaced it. Fix: keep the stored token when its "
                        + "cachedAt is later than the written one's (TokenCacheRetention.storedWins(_:over:))."
                    : "after two concurrent writes of one resource the store serves neither token. Fix: merge the written token into the stored partition with retention.apply, under the store's lock or transaction.")
        }
    }

    /// A partition capped at 3 tokens: the tokens closest to expiry go, expired tokens are purged on
    /// write, and the token just written survives even when it expires first. The stored partition,
    /// as a fresh process reads it, must equal what ``TokenCacheRetention`` computes.
    public func checkRetention() async throws {
        let check = "retention"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let cap = 3
        let client = try host.client(identity, cache: TokenCache(backend: try await makeBackend(), maximumEntriesPerPartition: cap))
        var model: [TokenCacheEntry] = []
        // The third write purges the first (expired by then); the fifth, closest to expiry of all,
        // must stay while the cap evicts the third.
        let steps: [(lifetime: Int, advance: TimeInterval)] = [(1000, 0), (7200, 0), (3600, 1100), (5400, 0), (600, 0)]
        var last = ""
        for (index, step) in steps.enumerated() {
            world.clock.advance(by: step.advance)
            host.endpoint.setLifetime(step.lifetime)
            let resource = "https://retention.example/\(index)/\(UUID().uuidString)"
            let token = try await client.token(for: resource)
            let entry = TokenCacheEntry(
                partitionKey: client.partitionKey, resource: resource, accessToken: token.token, expiresOn: token.expiresOn,
                cachedAt: Date(timeIntervalSince1970: world.clock.now.timeIntervalSince1970.rounded(.down)))
            model = TokenCacheRetention(now: world.clock.now, maximumEntriesPerPartition: cap).apply(to: model, writing: entry)
            last = resource
        }
        let readerCache = TokenCache(backend: try await makeBackend(), maximumEntriesPerPartition: cap)
        let reader = try host.client(identity, cache: readerCache)
        let before = host.endpoint.requestCount
        _ = try await reader.token(for: last)
        if host.endpoint.requestCount != before {
            throw ConformanceFailure(check: check, message: "the token just written was evicted by the partition cap. Fix: the cap never evicts the written token (TokenCacheRetention.apply).")
        }
        let stored = Set((readerCache.partition(for: reader.partitionKey)?.entries ?? []).map { "\($0.resource) \($0.accessToken)" })
        let expected = Set(model.map { "\($0.resource) \($0.accessToken)" })
        if stored != expected {
            throw ConformanceFailure(
                check: check,
                message: "after five writes to a partition capped at 3, the store holds \(stored.count) tokens that differ from "
                    + "what TokenCacheRetention.apply keeps (\(expected.count)). Fix: apply the notification's retention to the "
                    + "stored partition on every write (the newer write wins, expired tokens go, past the cap the tokens "
                    + "closest to expiry go, never the one written)")
        }
    }

    /// A backend that hands one identity's stored tokens to another identity's partition is never
    /// served: the core drops them and fetches the right token.
    public func checkForeignEntriesAreDropped() async throws {
        let check = "foreign entries"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let resource = "https://foreign.example/\(UUID().uuidString)"
        let victimCache = TokenCache(backend: try await makeBackend())
        let victim = try host.client(.clientID(UUID().uuidString), cache: victimCache)
        _ = try await victim.token(for: resource)
        let stolen = victimCache.partition(for: victim.partitionKey)?.entries ?? []
        let poisoned = TokenCache(backend: ForeignEntriesBackend(wrapped: try await makeBackend(), foreign: stolen))
        let identity = ManagedIdentityID.clientID(UUID().uuidString)
        let token = try await host.client(identity, cache: poisoned).token(for: resource)
        try expectClaims(token, host: host.name, identity: identity, resource: resource, check: check, label: "poisoned read")
    }

    /// Each hook in turn throws: every request still gets the right token, and each failure reaches
    /// the cache's failure handler naming the hook.
    public func checkFailingHooksAreReported() async throws {
        let check = "failing hooks"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        for hook in TokenCacheBackendFailure.Hook.allCases {
            let reported = Mutex<[TokenCacheBackendFailure.Hook]>([])
            let backend = ThrowingBackend(wrapped: try await makeBackend(), failing: hook)
            let cache = TokenCache(backend: backend, onBackendFailure: { failure in reported.withLock { $0.append(failure.hook) } })
            let identity = ManagedIdentityID.clientID(UUID().uuidString)
            let resource = "https://failing.example/\(hook.rawValue)/\(UUID().uuidString)"
            let token = try await host.client(identity, cache: cache).token(for: resource)
            try expectClaims(token, host: host.name, identity: identity, resource: resource, check: check, label: "\(hook.rawValue) throwing")
            let hooks = reported.withLock { $0 }
            if !hooks.contains(hook) {
                throw ConformanceFailure(
                    check: check, message: "a throwing \(hook.rawValue) was not reported to the cache's failure handler. Fix: let errors of the wrapped backend propagate from each hook; do not catch them.")
            }
        }
    }
}

/// Holds writers at `beforeWrite` until all have read the partition, then lets them store in a
/// given order, each after the previous one's `afterAccess`, so that two processes' writes interleave
/// deterministically. A writer waits at most 15 s for the others (a backend that locks in
/// `beforeAccess` serialises writers itself).
final class WriteBarrier: Sendable {
    private let order: [String]
    private let state = Mutex<(arrived: [String], done: Int, waiters: [CheckedContinuation<Void, Never>])>(([], 0, []))

    init(order: [String]) { self.order = order }

    func wrap(_ backend: any TokenCacheBackend, as name: String) -> any TokenCacheBackend {
        BarrierBackend(wrapped: backend, barrier: self, name: name)
    }

    /// Waits until `count` writers reached `beforeWrite`.
    func waitForArrivals(_ count: Int) async {
        await waitUntil { $0.arrived.count >= count }
    }

    fileprivate func arrive(_ name: String) async {
        update { $0.arrived.append(name) }
        let turn = order.firstIndex(of: name) ?? 0
        let order = order
        await waitUntil(orAfter: .seconds(15)) { $0.arrived.count >= order.count && $0.done >= turn }
    }

    fileprivate func finished() { update { $0.done += 1 } }

    private func update(_ body: (inout (arrived: [String], done: Int, waiters: [CheckedContinuation<Void, Never>])) -> Void) {
        let waiters = state.withLock { state in
            body(&state)
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    private func waitUntil(
        orAfter limit: Duration? = nil,
        _ condition: @escaping @Sendable ((arrived: [String], done: Int, waiters: [CheckedContinuation<Void, Never>])) -> Bool
    ) async {
        let deadline = limit.map { ContinuousClock.now + $0 }
        while true {
            if state.withLock({ condition($0) }) { return }
            if let deadline, ContinuousClock.now >= deadline { return }
            // Woken by the next change, or after a short while to look at the deadline again.
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await withCheckedContinuation { waiter in
                        let ready = self.state.withLock { state -> Bool in
                            if condition(state) { return true }
                            state.waiters.append(waiter)
                            return false
                        }
                        if ready { waiter.resume() }
                    }
                }
                group.addTask { try? await Task.sleep(for: .milliseconds(50)) }
                await group.next()
                group.cancelAll()
                // The sleeper ends when cancelled; a waiter left behind is resumed by the next change.
                self.update { _ in }
            }
        }
    }
}

private struct BarrierBackend: TokenCacheBackend {
    let wrapped: any TokenCacheBackend
    let barrier: WriteBarrier
    let name: String

    func beforeAccess(_ notification: TokenCacheNotification) async throws {
        try await wrapped.beforeAccess(notification)
    }

    func beforeWrite(_ notification: TokenCacheNotification) async throws {
        await barrier.arrive(name)
        try await wrapped.beforeWrite(notification)
    }

    func afterAccess(_ notification: TokenCacheNotification) async throws {
        defer { if notification.hasStateChanged { barrier.finished() } }
        try await wrapped.afterAccess(notification)
    }

    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await wrapped.coordinateRefresh(notification, body)
    }
}

/// After the wrapped backend loads a partition, adds another partition's entries to it.
private struct ForeignEntriesBackend: TokenCacheBackend {
    let wrapped: any TokenCacheBackend
    let foreign: [TokenCacheEntry]

    func beforeAccess(_ notification: TokenCacheNotification) async throws {
        try await wrapped.beforeAccess(notification)
        let rekeyed = foreign.map { entry -> TokenCacheEntry in
            var copy = entry
            copy.resource = notification.resource
            return copy
        }
        notification.partition.replaceEntries(notification.partition.entries + rekeyed, version: notification.partition.loadedVersion)
    }

    func beforeWrite(_ notification: TokenCacheNotification) async throws { try await wrapped.beforeWrite(notification) }
    func afterAccess(_ notification: TokenCacheNotification) async throws { try await wrapped.afterAccess(notification) }
    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        try await wrapped.coordinateRefresh(notification, body)
    }
}

/// Throws from one hook, forwarding the others.
private struct ThrowingBackend: TokenCacheBackend {
    struct InjectedFailure: Error, CustomStringConvertible {
        var hook: TokenCacheBackendFailure.Hook
        var description: String { "injected failure of \(hook.rawValue)" }
    }

    let wrapped: any TokenCacheBackend
    let failing: TokenCacheBackendFailure.Hook

    func beforeAccess(_ notification: TokenCacheNotification) async throws {
        if failing == .beforeAccess { throw InjectedFailure(hook: failing) }
        try await wrapped.beforeAccess(notification)
    }

    func beforeWrite(_ notification: TokenCacheNotification) async throws {
        if failing == .beforeWrite { throw InjectedFailure(hook: failing) }
        try await wrapped.beforeWrite(notification)
    }

    func afterAccess(_ notification: TokenCacheNotification) async throws {
        if failing == .afterAccess { throw InjectedFailure(hook: failing) }
        try await wrapped.afterAccess(notification)
    }

    func coordinateRefresh<Result: Sendable>(
        _ notification: TokenCacheNotification, _ body: () async throws -> Result
    ) async throws -> Result {
        if failing == .coordinateRefresh { throw InjectedFailure(hook: failing) }
        return try await wrapped.coordinateRefresh(notification, body)
    }
}
