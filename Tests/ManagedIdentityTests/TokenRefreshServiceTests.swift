import Foundation
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import ManagedIdentity

/// The refresher as a swift-service-lifecycle service.
struct TokenRefreshServiceTests {
    /// A clock whose sleep suspends until the test advances time past the wake-up.
    final class SteppedClock: ManagedIdentityClock {
        private let state = Mutex<(now: Date, sleepers: [(Date, CheckedContinuation<Void, any Error>)])>(
            (Date(timeIntervalSince1970: 1_767_225_600), []))

        var now: Date { state.withLock { $0.now } }
        var sleeperCount: Int { state.withLock { $0.sleepers.count } }

        func sleep(for duration: Duration) async throws {
            try await withCheckedThrowingContinuation { continuation in
                state.withLock { state in
                    state.sleepers.append((state.now.addingTimeInterval(ManagedIdentityClient.seconds(duration)), continuation))
                }
            }
        }

        func advance(by seconds: TimeInterval) {
            let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
                state.now = state.now.addingTimeInterval(seconds)
                let due = state.sleepers.filter { $0.0 <= state.now }.map(\.1)
                state.sleepers.removeAll { $0.0 <= state.now }
                return due
            }
            for continuation in due { continuation.resume() }
        }

        func cancelAll() {
            let all = state.withLock { state in
                defer { state.sleepers.removeAll() }
                return state.sleepers.map(\.1)
            }
            for continuation in all { continuation.resume(throwing: CancellationError()) }
        }
    }

    @Test func keepsTokensFreshAndStopsOnGracefulShutdown() async throws {
        let transport = FakeTransport { _, index in
            .json(200, #"{"access_token":"T\#(index)","expires_in":86400,"refresh_in":3600}"#)
        }
        let clock = SteppedClock()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: TestEnvironment.make(), clock: clock, hostDiscriminator: "h"),
            cache: TokenCache(), transport: transport)
        let service = TokenRefreshService(client: client, resources: ["https://a", "https://b"])

        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await service.run() }
                while clock.sleeperCount == 0 { await Task.yield() }
                #expect(transport.requestCount == 2)
                #expect(try await client.token(for: "https://a").token == "T0")

                clock.advance(by: 3600)
                while transport.requestCount < 4 || clock.sleeperCount == 0 { await Task.yield() }
                let refreshed = try await client.token(for: "https://a")
                #expect(refreshed.tokenSource == .cache)
                #expect(refreshed.token != "T0")

                trigger.triggerGracefulShutdown()
                clock.cancelAll()
                try await group.waitForAll()
            }
        }
        #expect(transport.requestCount == 4)
    }
}
