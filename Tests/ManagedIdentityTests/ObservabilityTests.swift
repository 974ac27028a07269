import Foundation
import InMemoryTracing
import Logging
import ManagedIdentityTesting
import MetricsTestKit
import Synchronization
import Testing
import Tracing

@testable import ManagedIdentity

/// The numbers an operator sees, asserted for each case the issue names: a hit, a miss, a retried
/// request, a failed background refresh and a failing backend; and the spans of a fetch.
struct ObservabilityTests {
    typealias M = ManagedIdentityMetrics
    typealias T = ManagedIdentityTracing

    let environment = TestEnvironment.make()

    struct Harness {
        let metrics = TestMetrics()
        let tracer = InMemoryTracer()
        let clock = ManualClock()
        let endpoint: FakeTokenEndpoint
        let client: ManagedIdentityClient

        init(
            cache: TokenCache = TokenCache(), environment: ManagedIdentityEnvironment,
            onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)? = nil
        ) throws {
            endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
            client = try ManagedIdentityClient(
                configuration: .init(
                    environment: environment, clock: clock, hostDiscriminator: "h", metricsFactory: metrics, tracer: tracer,
                    onBackgroundRefreshCompleted: onBackgroundRefreshCompleted),
                cache: cache, transport: endpoint)
        }

        func lookups(_ result: M.LookupResult) -> Int64 {
            metrics.counterTotal(label: M.tokenLookups, dimensions: [("source", "imds"), ("result", result.rawValue)])
        }

        func requests(_ outcome: String) -> Int64 {
            metrics.counterTotal(label: M.endpointRequests, dimensions: [("source", "imds"), ("outcome", outcome)])
        }

        var fetchSpans: [FinishedInMemorySpan] { tracer.finishedSpans.filter { $0.operationName == T.fetchTokenSpan } }
        var attemptSpans: [FinishedInMemorySpan] { tracer.finishedSpans.filter { $0.operationName == "GET" } }
    }

    @Test func aMissThenAHit() async throws {
        let harness = try Harness(environment: environment)
        _ = try await harness.client.token(for: "https://r")
        _ = try await harness.client.token(for: "https://r")

        #expect(harness.lookups(.miss) == 1)
        #expect(harness.lookups(.hit) == 1)
        #expect(harness.lookups(.refreshDue) == 0)
        #expect(harness.requests("success") == 1)
        #expect(try harness.metrics.expectTimer(M.endpointRequestDuration, [("source", "imds")]).values.count == 1)
        // Both tokens handed out had an hour left.
        let expiresIn = try harness.metrics.expectRecorder(M.tokenExpiresIn, [("source", "imds")]).values
        #expect(expiresIn == [3600, 3600])
        // One fetch span for the miss, none for the hit.
        #expect(harness.fetchSpans.count == 1)
        #expect(harness.attemptSpans.count == 1)
    }

    @Test func aFetchSpanHasTheSourceOutcomeAndCorrelationIDAndOneChildPerAttempt() async throws {
        let harness = try Harness(environment: environment)
        harness.endpoint.failNext(2)
        let token = try await harness.client.token(for: "https://r", options: TokenRequestOptions(correlationID: "corr-1"))
        #expect(token.tokenSource == .identityProvider)

        let fetch = try #require(harness.fetchSpans.first)
        #expect(harness.fetchSpans.count == 1)
        #expect(fetch.kind == .internal)
        #expect(fetch.attributes[T.Attribute.source]?.toSpanAttribute() == .string("imds"))
        #expect(fetch.attributes[T.Attribute.identityKind]?.toSpanAttribute() == .string("system_assigned"))
        #expect(fetch.attributes[T.Attribute.cacheOutcome]?.toSpanAttribute() == .string("miss"))
        #expect(fetch.attributes[T.Attribute.correlationID]?.toSpanAttribute() == .string("corr-1"))
        #expect(fetch.attributes[T.Attribute.attempts]?.toSpanAttribute() == .int64(3))

        let attempts = harness.attemptSpans
        #expect(attempts.count == 3)
        for (index, attempt) in attempts.enumerated() {
            #expect(attempt.kind == .client)
            #expect(attempt.parentSpanID == fetch.spanID)
            #expect(attempt.attributes["http.request.method"]?.toSpanAttribute() == .string("GET"))
            #expect(attempt.attributes["server.address"]?.toSpanAttribute() == .string("127.0.0.1"))
            #expect(attempt.attributes["server.port"]?.toSpanAttribute() == .int64(47999))
            #expect(attempt.attributes["url.full"]?.toSpanAttribute() == .string("http://127.0.0.1:47999/metadata/identity/oauth2/token"))
            #expect(attempt.attributes["http.request.resend_count"]?.toSpanAttribute() == (index == 0 ? nil : .int64(Int64(index))))
        }
        #expect(attempts.map { $0.attributes["http.response.status_code"]?.toSpanAttribute() } == [.int64(500), .int64(500), .int64(200)])
        #expect(attempts.map { $0.attributes["error.type"]?.toSpanAttribute() } == [.string("500"), .string("500"), nil])
    }

    @Test func aRetriedRequestCountsItsRetriesAndOneRequest() async throws {
        let harness = try Harness(environment: environment)
        harness.endpoint.failNext(2)
        _ = try await harness.client.token(for: "https://r")
        #expect(harness.metrics.counterTotal(label: M.endpointRetries, dimensions: [("source", "imds"), ("reason", "500")]) == 2)
        #expect(harness.requests("success") == 1)
        #expect(harness.metrics.counterTotal(label: M.endpointRequests) == 1)
    }

    @Test func aFailedRequestIsCountedByItsStatusAndRecordedOnItsSpan() async throws {
        let harness = try Harness(environment: environment)
        harness.endpoint.failNext(100)
        await #expect(throws: ManagedIdentityError.self) { try await harness.client.token(for: "https://r") }
        #expect(harness.requests("500") == 1)
        #expect(harness.requests("success") == 0)
        let fetch = try #require(harness.fetchSpans.first)
        #expect(fetch.errors.count == 1)
        #expect(fetch.status?.code == .error)
        #expect(fetch.attributes["error.type"]?.toSpanAttribute() == .string("500"))
        // IMDS retries a 500 three times: four attempts.
        #expect(fetch.attributes[T.Attribute.attempts]?.toSpanAttribute() == .int64(4))
    }

    @Test func anUnreachableEndpointIsCountedByItsErrorCode() async throws {
        let metrics = TestMetrics()
        let transport = FakeTransport { (_, _) throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "refused")
        }
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "h", metricsFactory: metrics),
            transport: transport)
        await #expect(throws: ManagedIdentityError.self) { try await client.token(for: "https://r") }
        #expect(
            metrics.counterTotal(label: M.endpointRequests, dimensions: [("outcome", "managed_identity_unreachable_network")]) == 1)
    }

    @Test func aFailedBackgroundRefreshIsCountedAndReachesTheCallback() async throws {
        let outcomes = Mutex<[BackgroundTokenRefresh]>([])
        let harness = try Harness(environment: environment) { refresh in outcomes.withLock { $0.append(refresh) } }
        harness.endpoint.setLifetime(7200, refreshIn: 600)
        let first = try await harness.client.token(for: "https://r")
        harness.clock.advance(by: 601)
        harness.endpoint.failNext(100)
        let served = try await harness.client.token(for: "https://r")
        #expect(served.token == first.token)
        await harness.client.waitForBackgroundRefreshes()

        #expect(harness.lookups(.refreshDue) == 1)
        #expect(
            harness.metrics.counterTotal(
                label: M.backgroundRefreshFailures, dimensions: [("source", "imds"), ("error", "managed_identity_request_failed")])
                == 1)
        let outcome = try #require(outcomes.withLock { $0 }.first)
        #expect(outcomes.withLock { $0.count } == 1)
        #expect(!outcome.succeeded)
        #expect(outcome.resource == "https://r")
        #expect((try? outcome.result.get()) == nil)
        let background = try #require(harness.fetchSpans.last)
        #expect(background.attributes[T.Attribute.background]?.toSpanAttribute() == .bool(true))
        #expect(background.attributes[T.Attribute.cacheOutcome]?.toSpanAttribute() == .string("refresh_due"))
        #expect(background.errors.count == 1)
    }

    @Test func aSuccessfulBackgroundRefreshReachesTheCallbackWithItsToken() async throws {
        let outcomes = Mutex<[BackgroundTokenRefresh]>([])
        let harness = try Harness(environment: environment) { refresh in outcomes.withLock { $0.append(refresh) } }
        harness.endpoint.setLifetime(7200, refreshIn: 600)
        let first = try await harness.client.token(for: "https://r")
        harness.clock.advance(by: 601)
        _ = try await harness.client.token(for: "https://r")
        await harness.client.waitForBackgroundRefreshes()
        let outcome = try #require(outcomes.withLock { $0 }.first)
        let refreshed = try outcome.result.get()
        #expect(refreshed.token != first.token)
        #expect(refreshed.tokenSource == .identityProvider)
        #expect(harness.metrics.counterTotal(label: M.backgroundRefreshFailures) == 0)
    }

    struct FailingBackend: TokenCacheBackend {
        struct Broken: Error {}
        func beforeAccess(_ notification: TokenCacheNotification) async throws { throw Broken() }
        func afterAccess(_ notification: TokenCacheNotification) async throws {}
    }

    @Test func aFailingBackendIsCountedByHook() async throws {
        let harness = try Harness(cache: TokenCache(backend: FailingBackend()), environment: environment)
        _ = try await harness.client.token(for: "https://r")
        // The miss reads (beforeAccess), re-reads under coordination (beforeAccess), then writes (beforeAccess).
        let failures = harness.metrics.counterTotal(
            label: M.backendFailures, dimensions: [("backend", "FailingBackend"), ("hook", "beforeAccess")])
        #expect(failures == 3)
        #expect(harness.metrics.counterTotal(label: M.backendFailures, dimensions: [("hook", "afterAccess")]) == 0)
    }

    @Test func aCoordinatedFetchIsCountedAndItsWaitTimed() async throws {
        struct NoOpBackend: TokenCacheBackend {
            func beforeAccess(_ notification: TokenCacheNotification) async throws {}
            func afterAccess(_ notification: TokenCacheNotification) async throws {}
        }
        let harness = try Harness(cache: TokenCache(backend: NoOpBackend()), environment: environment)
        _ = try await harness.client.token(for: "https://r")
        #expect(
            harness.metrics.counterTotal(
                label: M.coordinatedFetches, dimensions: [("backend", "NoOpBackend"), ("outcome", "fetched")]) == 1)
        #expect(try harness.metrics.expectTimer(M.coordinationWait, [("backend", "NoOpBackend")]).values.count == 1)
    }

    @Test func aForcedRefreshIsCountedAsForced() async throws {
        let harness = try Harness(environment: environment)
        _ = try await harness.client.token(for: "https://r")
        _ = try await harness.client.token(for: "https://r", options: TokenRequestOptions(forceRefresh: true))
        #expect(harness.lookups(.forced) == 1)
        #expect(harness.fetchSpans.last?.attributes[T.Attribute.cacheOutcome]?.toSpanAttribute() == .string("forced"))
    }

    @Test func theCallersSpanIsTheParent() async throws {
        let harness = try Harness(environment: environment)
        let parentID = try await harness.tracer.withSpan("caller") { span in
            _ = try await harness.client.token(for: "https://r")
            return span.spanID
        }
        let fetch = try #require(harness.fetchSpans.first)
        #expect(fetch.parentSpanID == parentID)
        #expect(fetch.parentSpanID != nil)
    }

    @Test func aGlobalFactoryIsUsedWhenNoneIsGiven() throws {
        // No factory given and none bootstrapped: the no-op factory, and no crash.
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "h"), transport: FakeTransport { _, _ in .token() })
        #expect(client.source == .imds)
    }

    @Test func spansCarryNoIdentityIDsFromAnEchoingEndpointButTheCallersErrorDoes() async throws {
        let tracer = InMemoryTracer()
        let body = #"{"error":"invalid_request","error_description":"AADSTS700016: Application with identifier '"#
            + Vectors.clientID + #"' was not found. Request: /metadata/identity/oauth2/token?api-version=2018-02-01&client_id="#
            + Vectors.clientID + #"&mi_res_id="# + Vectors.resourceID + #""}"#
        let client = try ManagedIdentityClient(
            identity: .clientID(Vectors.clientID),
            configuration: .init(environment: environment, retriesEnabled: false, clock: ManualClock(), hostDiscriminator: "h", tracer: tracer),
            cache: TokenCache(), transport: FakeTransport { _, _ in .json(400, body) })
        var callerError: ManagedIdentityError?
        do { _ = try await client.token(for: "https://r") } catch let error as ManagedIdentityError { callerError = error }
        #expect(callerError?.message.contains(Vectors.clientID) == true, "the caller's error names the identity")
        let fetch = try #require(tracer.finishedSpans.first { $0.operationName == T.fetchTokenSpan })
        let recorded = fetch.errors.map { "\($0.error)" }
        #expect(recorded.count == 1)
        for text in recorded + tracer.finishedSpans.flatMap({ $0.errors.map { "\($0.error)" } }) {
            #expect(!text.lowercased().contains(Vectors.clientID))
            #expect(!text.contains("/subscriptions/"))
            #expect(!text.contains("api-version"))
        }
        #expect(recorded.first?.contains("AADSTS700016") == true, "the rest of the endpoint's text stays")
    }
}
