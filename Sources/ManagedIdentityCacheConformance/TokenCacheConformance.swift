import Foundation
import ManagedIdentity
import ManagedIdentityTesting
import Synchronization

/// Checks that a cache backend keeps the promises of the hook contract, from outside the backend,
/// through several instances over one store as several processes use it: hook order; isolation of
/// identities, hosts and resources; writes, force refreshes and removals seen through every instance;
/// one request per token across processes; expiry edges; persistence of every field across a
/// restart; no write lost to a concurrent writer; the newer write winning (ties to the write); the
/// retention rule on every order and on ties; versions that change with every write and never
/// repeat, and hits that read nothing when nothing changed; a refresh lock released when its body
/// throws; foreign entries dropped; failing hooks reported; and random interleavings that never serve
/// a token to the wrong request.
///
/// ```swift
/// @Test func myBackendConforms() async throws {
///     let store = try await MyStore.connectForTests()
///     let verdict = try await TokenCacheConformance { MyBackend(store: store) }.run()
///     print(verdict)   // what was checked, and what could not be
/// }
/// ```
///
/// The factory is called once per simulated process or restart; every backend it returns must use
/// the same storage. The suite uses fresh random identities, so the storage need not start empty,
/// but the removal check removes tokens it wrote (through ``TokenCacheStorage/remove(_:from:)``, or
/// ``InspectableTokenCacheBackend/purge(expiredOnly:)`` for a backend of hooks). Clients point at
/// an in-process ``FakeTokenEndpoint``: nothing is sent on the network. A store that takes time per
/// call (100 µs, a networked store) needs no setting: every wait in the suite is a bound, not a
/// measurement.
public struct TokenCacheConformance: Sendable {
    /// Who shares the store a backend keeps tokens in.
    public enum Sharing: Sendable, Hashable {
        /// Several processes or hosts use the store at once (files, a database, Redis): the suite
        /// checks that they send one request per token (``TokenCacheStorage/withRefreshLock(partition:resource:_:)``).
        case betweenProcesses
        /// Only one process ever uses the store: the cross-process refresh lock is not checked, and
        /// the verdict says so.
        case withinOneProcess
    }

    let makeBackend: @Sendable () async throws -> any TokenCacheBackend
    /// Who shares the store.
    public let sharing: Sharing

    /// Creates the suite for a backend.
    /// - Parameters:
    ///   - sharing: whether several processes share the store (the default), or one process only.
    ///   - makeBackend: returns a backend over the shared storage; called for each simulated process.
    public init(sharing: Sharing = .betweenProcesses, makeBackend: @escaping @Sendable () async throws -> any TokenCacheBackend) {
        self.sharing = sharing
        self.makeBackend = makeBackend
    }

    /// Runs every check.
    /// - Returns: what was checked, and what could not be for this backend.
    /// - Throws: ``ConformanceFailure`` naming every property that does not hold, each with what was
    ///   observed and the fix.
    @discardableResult
    public func run(interleavings: Int = 2_000) async throws -> ConformanceVerdict {
        var failures: [ConformanceFailure] = []
        var checked: [String] = []
        var notChecked: [(property: String, reason: String)] = []
        let checks: [(String, @Sendable () async throws -> Void)] = [
            ("hook order", checkHookOrder),
            ("write returns the stored partition", checkWriteReturnsTheStoredPartition),
            ("isolation", checkIsolation),
            ("writes reach other instances", checkWritesReachOtherInstances),
            ("hits read nothing when nothing changed", checkHitsReadNothingWhenNothingChanged),
            ("expiry edges", checkExpiryEdges),
            ("export and import", checkExportImport),
            ("persistence across a restart", checkPersistenceAcrossRestart),
            ("concurrent writers", checkConcurrentWriters),
            ("newer write wins, ties to the write", checkNewerWriteWinsOnTies),
            ("retention", checkRetention),
            ("retention on ties", checkRetentionOnTies),
            ("foreign entries", checkForeignEntriesAreDropped),
            ("failing hooks", checkFailingHooksAreReported),
            ("random interleavings", { try await checkRandomInterleavings(operations: interleavings) }),
        ]
        let conditional: [(String, @Sendable () async throws -> String?)] = [
            ("removal", checkRemoval),
            ("one request per token across processes", checkOneRequestAcrossProcesses),
            ("refresh lock released when its body throws", checkRefreshLockIsReleasedOnAThrow),
        ]
        for (name, check) in checks {
            do {
                try await check()
                checked.append(name)
            } catch let failure as ConformanceFailure {
                failures.append(failure)
            } catch {
                failures.append(ConformanceFailure(check: name, message: "threw \(error) (no check throws for a backend that keeps the contract). Fix: a hook or storage verb must not throw for the suite's ordinary calls; see the error."))
            }
        }
        for (name, check) in conditional {
            do {
                if let reason = try await check() {
                    notChecked.append((name, reason))
                } else {
                    checked.append(name)
                }
            } catch let failure as ConformanceFailure {
                failures.append(failure)
            } catch {
                failures.append(ConformanceFailure(check: name, message: "threw \(error) (no check throws for a backend that keeps the contract). Fix: a hook or storage verb must not throw for the suite's ordinary calls; see the error."))
            }
        }
        if !failures.isEmpty {
            throw ConformanceFailure(
                check: "suite", message: failures.map(\.description).joined(separator: "\n"))
        }
        return ConformanceVerdict(checked: checked, notChecked: notChecked)
    }

    // MARK: - Checks

    /// The documented hook sequence of a miss, a hit, a force refresh, a claims request, a failed
    /// request and a background refresh.
    public func checkHookOrder() async throws {
        let check = "hook order"
        let world = World()
        let recorder = RecordingBackend(wrapping: try await makeBackend())
        let host = world.host("host-a")
        let client = try host.client(.clientID(UUID().uuidString), cache: TokenCache(backend: recorder))
        let resource = "https://order.example/\(UUID().uuidString)"

        _ = try await client.token(for: resource)
        try expectSequence(
            recorder.takeSequence(),
            [
                "beforeAccess(unchanged)", "afterAccess(unchanged)", "coordinateRefresh(unchanged)",
                "beforeAccess(unchanged)", "afterAccess(unchanged)",
                "beforeAccess(changed)", "beforeWrite(changed)", "afterAccess(changed)",
            ], check: check, flow: "miss")

        _ = try await client.token(for: resource)
        try expectSequence(recorder.takeSequence(), ["beforeAccess(unchanged)", "afterAccess(unchanged)"], check: check, flow: "hit")

        _ = try await client.token(for: resource, options: TokenRequestOptions(forceRefresh: true))
        try expectSequence(
            recorder.takeSequence(), ["beforeAccess(changed)", "beforeWrite(changed)", "afterAccess(changed)"],
            check: check, flow: "force refresh")

        _ = try await client.token(for: resource, options: TokenRequestOptions(claims: "{}"))
        try expectSequence(
            recorder.takeSequence(),
            [
                "beforeAccess(unchanged)", "afterAccess(unchanged)",
                "beforeAccess(changed)", "beforeWrite(changed)", "afterAccess(changed)",
            ], check: check, flow: "claims")

        host.endpoint.failNext(10)
        let failing = "https://order.example/failing/\(UUID().uuidString)"
        if (try? await client.token(for: failing)) != nil {
            throw ConformanceFailure(check: check, message: "a failing endpoint produced a token. Fix: a backend must not invent tokens; serve only what was stored.")
        }
        try expectSequence(
            recorder.takeSequence(),
            [
                "beforeAccess(unchanged)", "afterAccess(unchanged)", "coordinateRefresh(unchanged)",
                "beforeAccess(unchanged)", "afterAccess(unchanged)",
            ], check: check, flow: "failed request")
        host.endpoint.failNext(0)

        host.endpoint.setLifetime(86_400, refreshIn: 600)
        let refreshed = "https://order.example/refresh/\(UUID().uuidString)"
        _ = try await client.token(for: refreshed)
        _ = recorder.takeSequence()
        world.clock.advance(by: 601)
        let stale = try await client.token(for: refreshed)
        await client.waitForBackgroundRefreshes()
        guard stale.tokenSource == .cache, stale.cacheRefreshReason == .proactivelyRefreshed else {
            throw ConformanceFailure(check: check, message: "a token past refresh_on was not served from the cache. Fix: keep refreshOn and expiresOn as written; the token stays usable until its expiry.")
        }
        try expectSequence(
            recorder.takeSequence(),
            [
                "beforeAccess(unchanged)", "afterAccess(unchanged)", "coordinateRefresh(unchanged)",
                "beforeAccess(unchanged)", "afterAccess(unchanged)",
                "beforeAccess(changed)", "beforeWrite(changed)", "afterAccess(changed)",
            ], check: check, flow: "background refresh")
        let fresh = try await client.token(for: refreshed)
        guard fresh.token != stale.token, fresh.tokenSource == .cache else {
            throw ConformanceFailure(check: check, message: "the background refresh did not replace the cached token. Fix: a write must replace the stored token of the same resource when its cachedAt is not earlier.")
        }
    }

    /// Two hosts' system-assigned identities, system vs user-assigned, one resource under two
    /// identities, two resources under one identity: each request gets its own token.
    public func checkIsolation() async throws {
        let check = "isolation"
        let world = World()
        let hostA = world.host("host-a-\(UUID().uuidString)")
        let hostB = world.host("host-b-\(UUID().uuidString)")
        let cacheA = TokenCache(backend: try await makeBackend())
        let cacheB = TokenCache(backend: try await makeBackend())
        let resource = "https://isolation.example/\(UUID().uuidString)"
        let other = "https://isolation.example/other/\(UUID().uuidString)"
        let user1 = ManagedIdentityID.clientID(UUID().uuidString)
        let user2 = ManagedIdentityID.clientID(UUID().uuidString)

        // A user-assigned identity's tokens may be shared across hosts that share storage, so the last
        // case may be served from the stored copy; all others must be fresh requests.
        let cases: [(String, FakeHost, TokenCache, ManagedIdentityID, String, Bool)] = [
            ("system-assigned on host A", hostA, cacheA, .systemAssigned, resource, true),
            ("system-assigned on host B", hostB, cacheB, .systemAssigned, resource, true),
            ("user-assigned 1 on host A", hostA, cacheA, user1, resource, true),
            ("user-assigned 2 on host A", hostA, cacheA, user2, resource, true),
            ("user-assigned 1, second resource", hostA, cacheA, user1, other, true),
            ("user-assigned 1 on host B", hostB, cacheB, user1, other, false),
        ]
        var tokens: [String: String] = [:]
        for (label, host, cache, identity, resource, mustBeFresh) in cases {
            let before = host.endpoint.requestCount
            let token = try await host.client(identity, cache: cache).token(for: resource)
            try expectClaims(token, host: host.name, identity: identity, resource: resource, check: check, label: label)
            if mustBeFresh, host.endpoint.requestCount != before + 1 || token.tokenSource != .identityProvider {
                throw ConformanceFailure(check: check, message: "\(label): served another request's token from the cache. Fix: key every stored token by its whole partition key (TokenCachePartitionKey.rawValue), resource and token type.")
            }
            tokens[label] = token.token
        }
        // Each is then served from the cache, still to the right request.
        for (label, host, cache, identity, resource, _) in cases {
            let token = try await host.client(identity, cache: cache).token(for: resource)
            try expectClaims(token, host: host.name, identity: identity, resource: resource, check: check, label: label)
            if token.token != tokens[label] {
                throw ConformanceFailure(
                    check: check,
                    message: "\(label): asked again, the cache returned another token of the right request "
                        + "(\(describe(token)) instead of serial \(TokenClaims(token: tokens[label] ?? "")?.serial ?? 0)), so the first "
                        + "was lost from memory or the store. Fix: key the store by the whole partition key "
                        + "(TokenCachePartitionKey.rawValue; a key cut short or without the host puts several identities' tokens "
                        + "in one place, and each write drops the others'), and return the whole stored partition from write "
                        + "(if \"write returns the stored partition\" fails too, fix that first).")
            }
        }
        // A process that restarts on host B sees host A's user-assigned tokens (shared storage) but
        // never host A's system-assigned one.
        let restartedB = TokenCache(backend: try await makeBackend())
        let system = try await hostB.client(.systemAssigned, cache: restartedB).token(for: resource)
        try expectClaims(system, host: hostB.name, identity: .systemAssigned, resource: resource, check: check, label: "restarted host B")
    }

    /// A token is served only while valid beyond the 5-minute margin, and never after it expires.
    public func checkExpiryEdges() async throws {
        let check = "expiry edges"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let cache = TokenCache(backend: try await makeBackend())
        let client = try host.client(.clientID(UUID().uuidString), cache: cache)
        let resource = "https://expiry.example/\(UUID().uuidString)"

        host.endpoint.setLifetime(301)
        _ = try await client.token(for: resource)
        if try await client.token(for: resource).tokenSource != .cache {
            throw ConformanceFailure(check: check, message: "a token valid for 301 s was not served from the cache. Fix: store expiresOn to the second and return the stored token from read.")
        }
        world.clock.advance(by: 1)
        let atMargin = try await client.token(for: resource)
        if atMargin.tokenSource != .identityProvider || atMargin.cacheRefreshReason != .expired {
            throw ConformanceFailure(check: check, message: "a token valid for exactly 300 s was served from the cache. Fix: store expiresOn as given; do not round it up.")
        }
        host.endpoint.setLifetime(3600)
        // A second later than the previous write, so the newer-write rule's tie (its own check) plays no part.
        world.clock.advance(by: 1)
        _ = try await client.token(for: resource, options: TokenRequestOptions(forceRefresh: true))
        world.clock.advance(by: 3600 - 300 - 1)
        if try await client.token(for: resource).tokenSource != .cache {
            throw ConformanceFailure(check: check, message: "a token valid for 301 s more was not served. Fix: the newer token of a resource must replace the older one in the store and in what write returns.")
        }
        world.clock.advance(by: 2)
        if try await client.token(for: resource).tokenSource != .identityProvider {
            throw ConformanceFailure(check: check, message: "a token inside the margin was served. Fix: store expiresOn as given; do not extend it.")
        }
        // A restarted process does not serve a stored token that has since expired.
        world.clock.advance(by: 4000)
        let restarted = try host.client(client.identity, cache: TokenCache(backend: try await makeBackend()))
        if try await restarted.token(for: resource).tokenSource != .identityProvider {
            throw ConformanceFailure(check: check, message: "an expired stored token was served after a restart. Fix: store expiresOn as given, in seconds since 1970 or an absolute date, never a relative lifetime.")
        }
    }

    /// A partition exported from one cache and imported into a fresh one is served without a request.
    public func checkExportImport() async throws {
        let check = "export and import"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let source = TokenCache(backend: try await makeBackend())
        let identity = ManagedIdentityID.objectID(UUID().uuidString)
        let resource = "https://export.example/\(UUID().uuidString)"
        let first = try await host.client(identity, cache: source).token(for: resource)
        let client = try host.client(identity, cache: source)
        guard let bytes = source.partition(for: client.partitionKey)?.exportDocument() else {
            throw ConformanceFailure(check: check, message: "the partition could not be exported. Fix: load the stored tokens into the partition in beforeAccess.")
        }
        let fresh = TokenCache()
        try fresh.importPartition(bytes)
        let before = host.endpoint.requestCount
        let token = try await host.client(identity, cache: fresh).token(for: resource)
        if host.endpoint.requestCount != before || token.token != first.token || token.tokenSource != .cache {
            throw ConformanceFailure(check: check, message: "an imported partition was not served without a request. Fix: do not replace a partition that is newer in memory with an older stored copy.")
        }
        // Importing a partition's document into another partition's serializer is refused.
        let otherClient = try host.client(.objectID(UUID().uuidString), cache: fresh)
        _ = try await otherClient.token(for: resource)
        do {
            try fresh.partition(for: otherClient.partitionKey)?.importDocument(bytes)
            throw ConformanceFailure(check: check, message: "a document of another partition was imported. Fix: never rekey a document to another partition.")
        } catch is TokenCacheSerializationError {}
    }

    /// A token stored by one process is served by a restarted one, through the backend, without a
    /// request, with every field as written: the resource byte for byte (mixed case), the token
    /// type, the expiry and the refresh time to the second.
    public func checkPersistenceAcrossRestart() async throws {
        let check = "persistence across a restart"
        let world = World()
        let host = world.host("host-\(UUID().uuidString)")
        let identity = ManagedIdentityID.resourceID("/subscriptions/x/\(UUID().uuidString)")
        let resource = "https://Restart.example/Path/\(UUID().uuidString)"
        host.endpoint.setLifetime(86_400, refreshIn: 3_600)
        let first = try await host.client(identity, cache: TokenCache(backend: try await makeBackend())).token(for: resource)
        let before = host.endpoint.requestCount
        let backend = try await makeBackend()
        let restarted = try host.client(identity, cache: TokenCache(backend: backend))
        let token = try await restarted.token(for: resource)
        if host.endpoint.requestCount != before || token.token != first.token {
            let stored = await StoredPartitionProbe.describe(backend, partition: restarted.partitionKey)
            throw ConformanceFailure(
                check: check,
                message: "a restarted instance did not get the token stored before (\(describe(first))): it sent "
                    + "\(host.endpoint.requestCount - before) request(s)\(stored.map { "; the store holds \($0)" } ?? ""). Fix: store "
                    + "each token under its partition key, resource and token type exactly as written (byte for byte: "
                    + "no lowercasing, trimming or normalising), and make write throw rather than return when the store "
                    + "did not take the token (a swallowed error loses it).")
        }
        if token.refreshOn.map(Self.seconds) != first.refreshOn.map(Self.seconds) || Self.seconds(token.expiresOn) != Self.seconds(first.expiresOn)
            || token.tokenType != first.tokenType
        {
            throw ConformanceFailure(
                check: check,
                message: "a restarted instance got the token with other fields: expires \(Self.seconds(token.expiresOn)) "
                    + "(written \(Self.seconds(first.expiresOn))), refresh \(token.refreshOn.map { "\(Self.seconds($0))" } ?? "none") "
                    + "(written \(first.refreshOn.map { "\(Self.seconds($0))" } ?? "none")), type \(token.tokenType) (written "
                    + "\(first.tokenType)). Fix: store expiresOn, refreshOn (optional), cachedAt and tokenType of every entry, at "
                    + "least to the second; a token without its refresh time is never refreshed in the background.")
        }
    }

    static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    /// Random concurrent requests of many identities, hosts and resources against one shared
    /// storage: every token served names the request it was served to.
    public func checkRandomInterleavings(operations: Int = 2_000, seed: UInt64 = 0x5EED) async throws {
        let check = "random interleavings"
        let world = World()
        let hosts = (0..<3).map { world.host("host-\($0)-\(UUID().uuidString)") }
        let identities: [ManagedIdentityID] = [
            .systemAssigned, .clientID(UUID().uuidString), .clientID(UUID().uuidString),
            .objectID(UUID().uuidString), .resourceID("/rid/\(UUID().uuidString)"),
        ]
        let resources = (0..<4).map { "https://random.example/\($0)/\(UUID().uuidString)" }
        var processes: [(FakeHost, TokenCache)] = []
        for host in hosts {
            for _ in 0..<2 { processes.append((host, TokenCache(backend: try await makeBackend()))) }
        }
        var clients: [(FakeHost, ManagedIdentityClient, ManagedIdentityID)] = []
        for (host, cache) in processes {
            for identity in identities { clients.append((host, try host.client(identity, cache: cache), identity)) }
        }
        var generator = SplitMix64(seed: seed)
        var plan: [(Int, Int, Bool)] = []
        for _ in 0..<operations {
            let roll = generator.next() % 100
            plan.append((Int(generator.next() % UInt64(clients.count)), Int(generator.next() % UInt64(resources.count)), roll < 3))
        }
        let batches = stride(from: 0, to: plan.count, by: 50).map { Array(plan[$0..<min($0 + 50, plan.count)]) }
        for (index, batch) in batches.enumerated() {
            if index % 10 == 9 { world.clock.advance(by: 900) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (clientIndex, resourceIndex, force) in batch {
                    let (host, client, identity) = clients[clientIndex]
                    let resource = resources[resourceIndex]
                    group.addTask {
                        let token = try await client.token(for: resource, options: TokenRequestOptions(forceRefresh: force))
                        try expectClaims(token, host: host.name, identity: identity, resource: resource, check: check, label: "operation")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    // MARK: - Helpers

    private func expectSequence(_ actual: [String], _ expected: [String], check: String, flow: String) throws {
        guard actual == expected else {
            throw ConformanceFailure(
                check: check,
                message: "\(flow): expected \(expected.joined(separator: ", ")); got \(actual.joined(separator: ", ")). Fix: a wrapper must call every hook of the backend it wraps, once each, in the order the cache calls them.")
        }
    }
}

/// A token by its claims (serial, identity, audience), never the token itself.
func describe(_ token: AccessToken) -> String {
    guard let claims = TokenClaims(token: token.token) else { return "a token the endpoint did not issue" }
    return "serial \(claims.serial) for \(claims.identity), \(claims.audience)"
}

/// Fails if a token was issued for another host, identity or resource.
func expectClaims(
    _ token: AccessToken, host: String, identity: ManagedIdentityID, resource: String, check: String, label: String
) throws {
    guard let claims = TokenClaims(token: token.token) else {
        throw ConformanceFailure(check: check, message: "\(label): the token served is not one the endpoint issued. Fix: store the token text exactly as given.")
    }
    let expectedHost = identity == .systemAssigned ? host : claims.host
    guard claims.host == expectedHost, claims.identity == TokenClaims.identityClaim(identity), claims.audience == resource,
        token.resource == resource
    else {
        throw ConformanceFailure(
            check: check,
            message: "\(label): WRONG TOKEN: asked for \(identity) on \(host) for \(resource), got \(claims). Fix: key every stored token by its whole partition key, resource and token type, and return only that partition's tokens from read.")
    }
}

/// One failed conformance check.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    /// The check that failed.
    public var check: String
    /// What was wrong.
    public var message: String

    /// Creates a failure.
    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }

    public var description: String { "\(check): \(message)" }
}

/// A simulated host: its IMDS and its name (the system-assigned identity's host discriminator).
struct FakeHost: Sendable {
    let name: String
    let endpoint: FakeTokenEndpoint
    let clock: ManualClock

    func client(_ identity: ManagedIdentityID, cache: TokenCache) throws -> ManagedIdentityClient {
        try client(identity, cache: cache, endpoint: endpoint)
    }

    func client(_ identity: ManagedIdentityID, cache: TokenCache, endpoint: any HTTPTransport) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                source: .imds,
                environment: ManagedIdentityEnvironment(
                    variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
                clock: clock,
                hostDiscriminator: name),
            cache: cache,
            transport: endpoint)
    }
}

/// The suite's clock and hosts.
struct World: Sendable {
    let clock = ManualClock(now: Date())

    func host(_ name: String) -> FakeHost {
        FakeHost(name: name, endpoint: FakeTokenEndpoint(hostName: name, clock: clock), clock: clock)
    }
}

/// A small deterministic generator, so a failing interleaving can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
