import Benchmark
import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityPostgresCache
import ManagedIdentityTesting
import Synchronization

// What a store that is down costs a miss. Both benchmarks fetch a token no one has from the
// in-process issuer; the first has no backend, the second a PostgreSQL backend whose database is
// not there (127.0.0.1:1 refuses every connection, so the backend stays opening and retries in the
// background). The difference is the price of the outage on a request: the backend's answer "not
// open", the write kept for later, the memory layer serving meanwhile. Nothing leaves loopback.

/// Clients over one cache and a counter that survives between runs, so every iteration is a miss.
final class MissState: Sendable {
    let client: ManagedIdentityClient
    let serial = Atomic<Int>(0)
    let keepRunning: Task<Void, Never>?
    init(client: ManagedIdentityClient, keepRunning: Task<Void, Never>? = nil) {
        self.client = client
        self.keepRunning = keepRunning
    }
}

func registerOutageBenchmarks() {
    func misses(_ benchmark: Benchmark, _ state: MissState, prefix: String) async throws {
        for _ in benchmark.scaledIterations {
            let serial = state.serial.add(1, ordering: .relaxed).newValue
            let resource = "https://\(prefix)-\(serial).example"
            benchmark.startMeasurement()
            let token = try await state.client.token(for: resource)
            benchmark.stopMeasurement()
            precondition(token.tokenSource == .identityProvider)
        }
    }
    let configuration = Benchmark.Configuration(maxDuration: .seconds(3), maxIterations: 10_000)

    Benchmark("Miss, memory only, in-process endpoint", configuration: configuration) { benchmark, state in
        try await misses(benchmark, state, prefix: "memory-miss")
    } setup: {
        MissState(client: client(.clientID("miss"), cache: TokenCache(), endpoint: QuietIssuer(), clock: ManualClock(now: Date())))
    }

    Benchmark("Miss, PostgreSQL down (connection refused), in-process endpoint", configuration: configuration) { benchmark, state in
        try await misses(benchmark, state, prefix: "down-miss")
    } setup: {
        let key = SymmetricKey(size: .bits256)
        // Port 1 on loopback has no server: every connection attempt is refused at once.
        let configuration = PostgresTokenCacheBackend.Configuration(
            host: "127.0.0.1", port: 1, username: "mi", tls: .disable, encryptionKey: key)
        let backend = try PostgresTokenCacheBackend(configuration: configuration)
        let running = Task { _ = try? await backend.run() }
        return MissState(
            client: client(.clientID("miss"), cache: TokenCache(backend: backend), endpoint: QuietIssuer(), clock: ManualClock(now: Date())),
            keepRunning: running)
    }
}
