import ManagedIdentityTesting
import TestSupport
import Testing

@testable import ManagedIdentity

/// TV-16: how many requests each source sends under faults, and the delays between them (through
/// the test clock, so no test waits).
struct RetryTests {
    func run(
        _ statuses: [Int], variables: [String: String] = [:], headers: [HTTPHeader] = [], retries: Bool = true
    ) async throws -> (requests: Int, sleeps: [Duration], error: ManagedIdentityError?) {
        let responses = statuses.map { status in
            status == 200 ? HTTPTransportResponse.token() : .json(status, #"{"error":"e"}"#, headers: headers)
        }
        let transport = FakeTransport(responses: responses)
        let clock = ManualClock()
        let client = try makeClient(
            environment: TestEnvironment.make(variables), transport: transport, clock: clock, retries: retries)
        do {
            _ = try await client.token(for: Vectors.resource)
            return (transport.requestCount, clock.sleeps, nil)
        } catch let error as ManagedIdentityError {
            return (transport.requestCount, clock.sleeps, error)
        }
    }

    @Test func imds404ThenSuccess() async throws {
        let result = try await run([404, 404, 200])
        #expect(result.requests == 3)
        #expect(result.error == nil)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(1), .seconds(2)]), "\(result.sleeps)")
    }

    @Test func imds410FourTimesThenSuccess() async throws {
        let result = try await run([410, 410, 410, 410, 200])
        #expect(result.requests == 5)
        #expect(result.error == nil)
        #expect(RetryDelays.areJittered(result.sleeps, around: Array(repeating: .seconds(10), count: 4)), "\(result.sleeps)")
    }

    @Test func imds410EightTimes() async throws {
        let result = try await run(Array(repeating: 410, count: 8) + [200])
        #expect(result.requests == 8)
        #expect(result.error?.code == .requestFailed)
        #expect(result.error?.statusCode == 410)
    }

    @Test func imds504FourTimes() async throws {
        let result = try await run([504, 504, 504, 504, 200])
        #expect(result.requests == 4)
        #expect(result.error?.statusCode == 504)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(1), .seconds(2), .seconds(4)]), "\(result.sleeps)")
        #expect(result.error?.message.contains("gateway error") == true)
    }

    @Test func imdsLater410WaitsTenSecondsWithinThreeRetries() async throws {
        let result = try await run([500, 410, 500, 500, 200])
        #expect(result.requests == 4)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(1), .seconds(10), .seconds(4)]), "\(result.sleeps)")
    }

    @Test func imds400IsNotRetried() async throws {
        let result = try await run([400, 200])
        #expect(result.requests == 1)
        #expect(result.error?.statusCode == 400)
    }

    @Test func imdsRetriesDisabled() async throws {
        let result = try await run([500, 200], retries: false)
        #expect(result.requests == 1)
        #expect(result.error?.statusCode == 500)
    }

    static let otherSources: [[String: String]] = [
        TestEnvironment.appService, TestEnvironment.machineLearning, TestEnvironment.cloudShell,
    ]

    @Test(arguments: otherSources)
    func otherSource500ThenSuccess(variables: [String: String]) async throws {
        let result = try await run([500, 200], variables: variables)
        #expect(result.requests == 2)
        #expect(result.error == nil)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(1)]), "\(result.sleeps)")
    }

    @Test(arguments: otherSources)
    func otherSourceHonoursRetryAfterSeconds(variables: [String: String]) async throws {
        let result = try await run([500, 200], variables: variables, headers: [HTTPHeader(name: "Retry-After", value: "3")])
        #expect(result.requests == 2)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(3)]), "\(result.sleeps)")
    }

    @Test func otherSourceRetryAfterBelowOneSecondWaitsOneSecond() async throws {
        let result = try await run(
            [429, 200], variables: TestEnvironment.appService, headers: [HTTPHeader(name: "Retry-After", value: "0.2")])
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(1)]), "\(result.sleeps)")
    }

    @Test func otherSourceHonoursRetryAfterHTTPDate() async throws {
        // The test clock starts at 2026-01-01T00:00:00Z.
        let result = try await run(
            [503, 200], variables: TestEnvironment.appService,
            headers: [HTTPHeader(name: "Retry-After", value: "Thu, 01 Jan 2026 00:00:03 GMT")])
        #expect(result.requests == 2)
        #expect(RetryDelays.areJittered(result.sleeps, around: [.seconds(3)]), "\(result.sleeps)")
    }

    @Test(arguments: otherSources)
    func otherSource500FourTimes(variables: [String: String]) async throws {
        let result = try await run([500, 500, 500, 500, 200], variables: variables)
        #expect(result.requests == 4)
        #expect(result.error?.statusCode == 500)
    }

    @Test(arguments: [400, 401, 403, 502])
    func otherSourceNonRetryableStatus(status: Int) async throws {
        let result = try await run([status, 200], variables: TestEnvironment.appService)
        #expect(result.requests == 1)
        #expect(result.error?.statusCode == status)
    }

    @Test func timeoutsAreRetriedThenReportedAsTimeouts() async throws {
        let transport = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .timeout, message: "no answer")
        }
        let clock = ManualClock()
        let client = try makeClient(environment: TestEnvironment.make(), transport: transport, clock: clock)
        await #expect(throws: ManagedIdentityError(code: .requestTimeout, message: "")) {
            try await client.token(for: Vectors.resource)
        }
        #expect(transport.requestCount == 4)
        #expect(RetryDelays.areJittered(clock.sleeps, around: [.seconds(1), .seconds(2), .seconds(4)]), "\(clock.sleeps)")
    }

    @Test func everyRequestCarriesTheConfiguredTimeout() async throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try ManagedIdentityClient(
            configuration: .init(environment: TestEnvironment.make(), requestTimeout: .seconds(7), clock: ManualClock()),
            cache: TokenCache(), transport: transport)
        _ = try await client.token(for: Vectors.resource)
        #expect(transport.requests.first?.timeout == .seconds(7))
    }

    @Test func retryStateIsPerRequest() async throws {
        let transport = FakeTransport(responses: [.json(500, ""), .json(500, ""), .json(500, ""), .json(500, ""), .token()])
        let client = try makeClient(environment: TestEnvironment.make(TestEnvironment.appService), transport: transport)
        await #expect(throws: ManagedIdentityError.self) { try await client.token(for: Vectors.resource) }
        let token = try await client.token(for: Vectors.resource)
        #expect(token.tokenSource == .identityProvider)
        #expect(transport.requestCount == 5)
    }
}
