import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityTesting
import MetricsTestKit
import Synchronization
import TestSupport
import Testing

/// Many tokens at once and a failing endpoint, against the emulator over loopback: a healthy
/// endpoint never costs a caller an error, IMDS's limits hold without a 429 storm, and a failing
/// endpoint is not stormed by background refreshes. Real time only where the limits are real time
/// (20 per second); the refresh back-off runs on an injected clock.
struct LoadAndOutageTests {
    static let system = EmulatedIdentity.defaults[0]

    static func client(
        _ emulator: ManagedIdentityEmulator, clock: any ManagedIdentityClock = SystemClock(), metrics: TestMetrics? = nil,
        onBackgroundRefreshCompleted: (@Sendable (BackgroundTokenRefresh) -> Void)? = nil
    ) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            configuration: .init(
                environment: ManagedIdentityEnvironment(variables: emulator.environment), requestTimeout: .seconds(30),
                clock: clock, hostDiscriminator: "load", metricsFactory: metrics,
                onBackgroundRefreshCompleted: onBackgroundRefreshCompleted),
            cache: TokenCache())
    }

    /// Asks for `count` distinct resources at once; returns how many got a token and the errors.
    static func burst(_ client: ManagedIdentityClient, count: Int) async -> (tokens: Int, errors: [String]) {
        await withTaskGroup(of: Result<AccessToken, any Error>.self) { group in
            for index in 0..<count {
                group.addTask {
                    do { return .success(try await client.token(for: "https://resource-\(index).example")) } catch { return .failure(error) }
                }
            }
            var tokens = 0
            var errors: [String] = []
            for await result in group {
                switch result {
                case .success: tokens += 1
                case .failure(let error): errors.append("\(error)")
                }
            }
            return (tokens, errors)
        }
    }

    @Test func twoHundredResourcesAtOnceAgainstAHealthyEndpointAllGetATokenWithinIMDSsLimits() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds, throttle: .imds)) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 200))
            let metrics = TestMetrics()
            let client = try Self.client(emulator, metrics: metrics)
            let started = ContinuousClock.now
            let result = await Self.burst(client, count: 200)
            let elapsed = ContinuousClock.now - started
            #expect(result.tokens == 200, "\(Set(result.errors))")
            let statistics = emulator.statistics
            #expect(statistics.tokensIssued == 200)
            #expect(statistics.peakConcurrentRequests <= 5)
            #expect(statistics.throttled < 20, "IMDS answered \(statistics.throttled) requests with 429")
            // 20 per second allow 200 in about 10 s; the bound is generous for a busy machine.
            #expect(elapsed >= .seconds(9) && elapsed < .seconds(120), "\(elapsed)")
            // The waits are visible: requests that waited for their turn were timed, and none waits now.
            let waits = try metrics.expectTimer(ManagedIdentityMetrics.admissionWait, [("source", "imds")]).values
            #expect(waits.count >= 150)
            let depth = try metrics.expectMeter(ManagedIdentityMetrics.admissionQueueDepth, [("source", "imds")])
            #expect(depth.values.contains { $0 >= 100 })
            #expect(depth.lastValue == 0)
        }
    }

    @Test func sixteenResourcesAgainstAnEndpointThatTakesTwoAndAHalfSecondsAllGetAToken() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds, throttle: .imds)) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 2500))
            let result = await Self.burst(try Self.client(emulator), count: 16)
            #expect(result.tokens == 16, "\(Set(result.errors))")
            #expect(emulator.statistics.throttled == 0)
            #expect(emulator.statistics.peakConcurrentRequests <= 5)
        }
    }

    @Test func aLocalTokenServiceTakesSixteenAtOnceAndNoMore() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .appService)) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 200))
            let result = await Self.burst(try Self.client(emulator), count: 64)
            #expect(result.tokens == 64, "\(Set(result.errors))")
            #expect(emulator.statistics.peakConcurrentRequests <= 16)
        }
    }

    /// Reports of background refreshes, and the metrics they moved.
    final class Reports: Sendable {
        let all = Mutex<[BackgroundTokenRefresh]>([])
        var values: [BackgroundTokenRefresh] { all.withLock { $0 } }
        func add(_ report: BackgroundTokenRefresh) { all.withLock { $0.append(report) } }
    }

    static let resource = "https://vault.azure.net"

    /// A client whose day-long token of ``resource`` is just past its refresh time (an hour), with
    /// the endpoint failing every request with `status` from then on.
    static func pastRefreshTime(
        failing status: Int, delayMilliseconds: Int = 0, metrics: TestMetrics? = nil,
        _ body: (ManagedIdentityEmulator, ManualClock, ManagedIdentityClient, Reports, AccessToken) async throws -> Void
    ) async throws {
        let configuration = EmulatorConfiguration(source: .imds, tokenLifetime: 86_400, refreshIn: 3600)
        try await ManagedIdentityEmulator.withRunning(configuration) { emulator in
            let clock = ManualClock(now: Date())
            let reports = Reports()
            let client = try Self.client(emulator, clock: clock, metrics: metrics, onBackgroundRefreshCompleted: reports.add)
            let first = try await client.token(for: resource)
            #expect(first.tokenSource == .identityProvider)
            emulator.inject(EmulatorFaults(failNext: 100_000, status: status, delayMilliseconds: delayMilliseconds))
            emulator.resetStatistics()
            // From the token's own times, not the clock's start: the emulator stamped them on its
            // clock, a moment (seconds, on a busy machine) after this clock was made.
            let refreshOn = try #require(first.refreshOn)
            clock.advance(by: refreshOn.timeIntervalSince(clock.now) + 1)
            try await body(emulator, clock, client, reports, first)
        }
    }

    @Test func aTenMinuteOutageInTheRefreshWindowCostsAtMostThreeRequestsAndNoCallerAnError() async throws {
        let metrics = TestMetrics()
        try await Self.pastRefreshTime(failing: 500, metrics: metrics) { emulator, clock, client, reports, first in
            let resource = Self.resource
            // Ten minutes of callers, one a second, all through the outage.
            for _ in 0..<600 {
                let token = try await client.token(for: resource)
                #expect(token.token == first.token)
                await client.waitForBackgroundRefreshes()
                clock.advance(by: 1)
            }
            let requests = emulator.requestCount(identity: Self.system, resource: resource)
            // The first attempt, then one every 5-10 minutes: one to three in ten minutes.
            #expect(requests >= 1 && requests <= 3, "\(requests) requests in the outage")
            // One report per refresh made, each with the correlation id it sent and when the next comes.
            let made = reports.values
            #expect(made.count == requests)
            #expect(Set(made.map(\.correlationID)).count == made.count)
            #expect(made.allSatisfy { !$0.succeeded && $0.nextAttempt != nil })
            #expect(
                metrics.counterTotal(
                    label: ManagedIdentityMetrics.backgroundRefreshFailures,
                    dimensions: [("source", "imds"), ("error", "managed_identity_request_failed")]) == Int64(requests))
            let backoffs = try metrics.expectRecorder(ManagedIdentityMetrics.backgroundRefreshBackoff, [("source", "imds")]).values
            #expect(backoffs.count == requests && backoffs.allSatisfy { $0 >= 300 && $0 <= 600 })

            // The endpoint comes back: the next attempt after the back-off gets a new token.
            emulator.inject(EmulatorFaults())
            clock.advance(by: 600)
            _ = try await client.token(for: resource)
            await client.waitForBackgroundRefreshes()
            #expect(reports.values.last?.succeeded == true)
            #expect(try await client.token(for: resource).token != first.token)
        }
    }

    @Test func manyCallersPastTheRefreshTimeStartOneRefreshReportedOnce() async throws {
        try await Self.pastRefreshTime(failing: 500, delayMilliseconds: 300) { emulator, _, client, reports, _ in
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<50 { group.addTask { _ = try? await client.token(for: "https://vault.azure.net") } }
            }
            await client.waitForBackgroundRefreshes()
            #expect(emulator.requestCount(identity: Self.system, resource: "https://vault.azure.net") == 1)
            #expect(reports.values.count == 1)
        }
    }

    @Test func anErrorNoRetryMendsIsReportedOnceAndTheCallerFetchesWhenTheTokenIsNoLongerUsable() async throws {
        try await Self.pastRefreshTime(failing: 400) { emulator, clock, client, reports, first in
            for _ in 0..<100 {
                #expect(try await client.token(for: "https://vault.azure.net").token == first.token)
                await client.waitForBackgroundRefreshes()
                clock.advance(by: 60)
            }
            #expect(emulator.requestCount(identity: Self.system, resource: "https://vault.azure.net") == 1)
            #expect(reports.values.count == 1)
            #expect(reports.values.first?.nextAttempt == nil)
            // Past the usable window the caller's own request goes out, back-off or not, and the
            // endpoint, mended meanwhile, answers it.
            emulator.inject(EmulatorFaults())
            // Leave the first token 299 s, inside the 5-minute margin.
            clock.advance(by: first.expiresOn.timeIntervalSince(clock.now) - 299)
            let fresh = try await client.token(for: "https://vault.azure.net")
            #expect(fresh.tokenSource == .identityProvider)
        }
    }
}
