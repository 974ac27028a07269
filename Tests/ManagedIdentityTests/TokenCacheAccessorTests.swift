import Foundation
import Logging
import ManagedIdentityTesting
import MetricsTestKit
import Synchronization
import Testing
import TestSupport

@testable import ManagedIdentity

/// The accessor's own duties: cancellation of waiters, one fetch per miss whatever fails, and
/// reporting backend failures to the cache's handler.
struct TokenCacheAccessorTests {
    let environment = TestEnvironment.make()

    @Test func aCallerWaitingOnAnotherCallersRequestStopsWhenItsTaskIsCancelled() async throws {
        let clock = ManualClock()
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        endpoint.closeGate()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: clock, hostDiscriminator: "h"), cache: TokenCache(),
            transport: endpoint)
        let first = Task { try await client.token(for: "https://slow.example") }
        while endpoint.waitingCount == 0 { await Task.yield() }
        let waiter = Task { try await client.token(for: "https://slow.example") }
        for _ in 0..<100 { await Task.yield() }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        // The request went on for the first caller, and its token is cached.
        endpoint.openGate()
        let token = try await first.value
        #expect(token.tokenSource == .identityProvider)
        #expect(try await client.token(for: "https://slow.example").token == token.token)
        #expect(endpoint.requestCount == 1)
    }

    /// Runs `body`, then throws: a backend whose lock release fails, say.
    struct ThrowsAfterBodyBackend: TokenCacheBackend {
        struct ReleaseFailed: Error {}
        func beforeAccess(_ notification: TokenCacheNotification) async throws {}
        func afterAccess(_ notification: TokenCacheNotification) async throws {}
        func coordinateRefresh<Result: Sendable>(
            _ notification: TokenCacheNotification, _ body: () async throws -> Result
        ) async throws -> Result {
            _ = try await body()
            throw ReleaseFailed()
        }
    }

    struct UnexpectedFetchError: Error {}

    func makeAccessor(backend: any TokenCacheBackend, fetches: Counter, fail: Bool)
        -> TokenCacheAccessor
    {
        let clock = ManualClock()
        let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")
        let cache = TokenCache(backend: backend)
        return TokenCacheAccessor(
            cache: cache, descriptor: TokenCachePartitionDescriptor(key: key, source: .imds, identity: .systemAssigned, endpoint: "http://e"),
            policy: TokenCachePolicy(margin: 300), clock: clock,
            instruments: ClientInstruments(source: .imds, backend: backend, factory: nil, tracer: nil),
            fetcher: { _, _ in
                fetches.increment()
                if fail { throw UnexpectedFetchError() }
                return IssuedToken(
                    accessToken: "T", tokenType: "Bearer", expiresOn: clock.now.timeIntervalSince1970 + 3600, refreshOn: nil)
            })
    }

    /// Holds the first write until released, as a backend whose disk or lock stalls does.
    final class StallingBackend: TokenCacheBackend {
        let stalled = Counter()
        private let release: AsyncStream<Void>
        let releaser: AsyncStream<Void>.Continuation
        init() { (release, releaser) = AsyncStream.makeStream(of: Void.self) }
        func beforeAccess(_ notification: TokenCacheNotification) async throws {}
        func afterAccess(_ notification: TokenCacheNotification) async throws {}
        func beforeWrite(_ notification: TokenCacheNotification) async throws {
            guard stalled.value == 0 else { return }
            stalled.increment()
            for await _ in release { break }
        }
    }

    /// Found by the isolation property test: a caller that joined a request whose token expired
    /// while the request's write stalled was handed that expired token. Both callers now get a
    /// valid one.
    @Test func aTokenThatExpiredWhileItsRequestStalledIsNotHandedOut() async throws {
        let clock = ManualClock()
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        endpoint.setLifetime(400)
        let backend = StallingBackend()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: clock, hostDiscriminator: "h"),
            cache: TokenCache(backend: backend), transport: endpoint)
        let first = Task { try await client.token(for: "https://stall.example") }
        while backend.stalled.value == 0 { await Task.yield() }
        let second = Task { try await client.token(for: "https://stall.example") }
        for _ in 0..<100 { await Task.yield() }
        clock.advance(by: 500)
        backend.releaser.yield()
        for token in [try await first.value, try await second.value] {
            #expect(token.expiresOn > clock.now, "an expired token was handed out")
            #expect(token.tokenSource == .identityProvider)
        }
        #expect(endpoint.requestCount >= 2)
    }

    @Test func anErrorOfTheFetchIsTheAnswerNeverAReasonToFetchAgain() async throws {
        let fetches = Counter()
        let accessor = makeAccessor(backend: InMemoryTokenCacheBackend(), fetches: fetches, fail: true)
        await #expect(throws: UnexpectedFetchError.self) {
            try await accessor.token(resource: "R", options: TokenRequestOptions(), logger: Logger(label: "test"))
        }
        #expect(fetches.value == 1)
    }

    @Test func aCoordinationThatFailsAfterItsBodyRanDoesNotFetchAgain() async throws {
        let fetches = Counter()
        let accessor = makeAccessor(backend: ThrowsAfterBodyBackend(), fetches: fetches, fail: false)
        let token = try await accessor.token(resource: "R", options: TokenRequestOptions(), logger: Logger(label: "test"))
        #expect(token.token == "T")
        #expect(fetches.value == 1)
        let failing = makeAccessor(backend: ThrowsAfterBodyBackend(), fetches: fetches, fail: true)
        await #expect(throws: UnexpectedFetchError.self) {
            try await failing.token(resource: "R", options: TokenRequestOptions(), logger: Logger(label: "test"))
        }
        #expect(fetches.value == 2)
    }

    @Test func anOutageReachesTheFailureHandlerOnceAndEveryFailingHookIsCounted() async throws {
        let reported = Mutex<[TokenCacheBackendFailure]>([])
        let metrics = TestMetrics()
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let backend = SwitchableBackend()
        let cache = TokenCache(backend: backend, onBackendFailure: { failure in reported.withLock { $0.append(failure) } })
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "h", metricsFactory: metrics),
            cache: cache, transport: transport)
        #expect(try await client.token(for: "R").token == "T0")
        #expect(try await client.token(for: "S").token == "T1")
        var failures = reported.withLock { $0 }
        #expect(failures.map(\.hook) == [.beforeAccess], "the outage's first failure only")
        #expect(failures.allSatisfy { $0.partitionKey == client.partitionKey })
        #expect(!failures.map(\.description).joined().contains("T0"))
        // Every failing hook is still counted: per miss a read pair, the coordination, the re-read,
        // the write's beforeAccess and afterAccess.
        func counted(_ hook: TokenCacheBackendFailure.Hook) -> Int64 {
            metrics.counterTotal(
                label: ManagedIdentityMetrics.backendFailures, dimensions: [("backend", "SwitchableBackend"), ("hook", hook.rawValue)])
        }
        #expect(counted(.beforeAccess) == 6, "\(counted(.beforeAccess))")
        #expect(counted(.afterAccess) == 6, "\(counted(.afterAccess))")
        #expect(counted(.coordinateRefresh) == 2)
        // The store answers again: the outage is over; failing again at once is a flap of the same
        // trouble, not reported again (BackendHealthTests: a later outage is).
        backend.failing.store(false, ordering: .relaxed)
        _ = try await client.token(for: "R")
        backend.failing.store(true, ordering: .relaxed)
        _ = try await client.token(for: "U")
        failures = reported.withLock { $0 }
        #expect(failures.count == 1)
    }

    /// Fails every hook while `failing` is set.
    final class SwitchableBackend: TokenCacheBackend {
        let failing = Atomic<Bool>(true)
        func beforeAccess(_ notification: TokenCacheNotification) async throws {
            if failing.load(ordering: .relaxed) { throw TokenCacheTests.FailingBackend.Broken() }
        }
        func afterAccess(_ notification: TokenCacheNotification) async throws {
            if failing.load(ordering: .relaxed) { throw TokenCacheTests.FailingBackend.Broken() }
        }
        func coordinateRefresh<Result: Sendable>(
            _ notification: TokenCacheNotification, _ body: () async throws -> Result
        ) async throws -> Result {
            if failing.load(ordering: .relaxed) { throw TokenCacheTests.FailingBackend.Broken() }
            return try await body()
        }
    }
}
