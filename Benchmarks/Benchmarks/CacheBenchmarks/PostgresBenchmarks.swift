import Benchmark
import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityPostgresCache
import ManagedIdentityTesting

// The PostgreSQL backend's benchmarks run when MI_BENCH_POSTGRES_URL names a database, as
// scripts/bench-postgres does with a private server on 127.0.0.1.

/// A running backend over the benchmark database, sharing user-assigned identities across host ids.
func runningPostgresBackend(url: String, key: SymmetricKey, hostID: String) async -> PostgresTokenCacheBackend {
    await startedPostgresBackend(url: url, key: key, hostID: hostID).backend
}

/// A running backend and the task running it, to stop it.
func startedPostgresBackend(url: String, key: SymmetricKey, hostID: String) async
    -> (backend: PostgresTokenCacheBackend, task: Task<Void, any Error>)
{
    // A configuration that cannot be made, or a database that cannot be reached, is a broken benchmark setup.
    var configuration = PostgresTokenCacheBackend.Configuration(url: url, encryptionKey: key)!
    configuration.hostID = hostID
    configuration.sharesUserAssignedIdentities = true
    let backend = try! PostgresTokenCacheBackend(configuration: configuration)
    let task = Task { try await backend.run() }
    try! await backend.waitUntilReady(timeout: .seconds(30))
    return (backend, task)
}

func registerPostgresBenchmarks() {
    guard let url = ProcessInfo.processInfo.environment["MI_BENCH_POSTGRES_URL"] else { return }
    // One key for every benchmark process: the database records the first key it is opened with.
    let key = SymmetricKey(data: SHA256.hash(data: Array("managed-identity benchmark key".utf8)))

    Benchmark("postgres: hit with nothing changed", configuration: .init(scalingFactor: .kilo)) { (benchmark: Benchmark, clients: [ManagedIdentityClient]) in
        let client = clients[0]
        for _ in benchmark.scaledIterations {
            blackHole(try await client.token(for: resourceNames[0]))
        }
    } setup: { () -> [ManagedIdentityClient] in
        let backend = await runningPostgresBackend(url: url, key: key, hostID: "bench-hit")
        return await populated(identities: 1, resources: 1, cache: TokenCache(backend: backend))
    }

    Benchmark(
        "postgres: add one token to a cache of 10,000 tokens across 100 identities",
        configuration: .init(maxDuration: .seconds(5), maxIterations: 1_000)
    ) { (benchmark: Benchmark, state: AddState) in
        for _ in benchmark.scaledIterations {
            let serial = state.serial.add(1, ordering: .relaxed).newValue
            benchmark.startMeasurement()
            let token = try await state.clients[serial % state.clients.count].token(for: "https://pg-added-\(serial).example")
            benchmark.stopMeasurement()
            precondition(token.tokenSource == .identityProvider)
        }
    } setup: { () -> AddState in
        let backend = await runningPostgresBackend(url: url, key: key, hostID: "bench-add")
        return AddState(clients: await populated(identities: 100, resources: 100, cache: TokenCache(backend: backend)))
    }

    Benchmark(
        "postgres: cold start of a new host with 1,000 stored tokens, first token served",
        configuration: .init(metrics: [.wallClock, .custom("requests to the endpoint", useScalingFactor: false)], maxIterations: 100)
    ) { (benchmark: Benchmark, _: Void) in
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "bench", clock: clock)
        benchmark.startMeasurement()
        // What a new replica does: connect, check the schema and key, listen, make a client, get a token.
        let (backend, running) = await startedPostgresBackend(url: url, key: key, hostID: "bench-new-\(UUID().uuidString)")
        let restarted = client(.clientID("identity-3"), cache: TokenCache(backend: backend), endpoint: endpoint, clock: clock)
        blackHole(try await restarted.token(for: resourceNames[5]))
        benchmark.stopMeasurement()
        // The replica goes away again, closing its connections.
        running.cancel()
        _ = await running.result
        precondition(endpoint.requestCount == 0)
        benchmark.measurement(.custom("requests to the endpoint", useScalingFactor: false), endpoint.requestCount)
    } setup: { () -> Void in
        let backend = await runningPostgresBackend(url: url, key: key, hostID: "bench-cold")
        _ = await populated(identities: 10, resources: 100, cache: TokenCache(backend: backend))
    }

    Benchmark(
        "postgres: a write on one host reaches another host's next hit",
        configuration: .init(metrics: [.wallClock], maxIterations: 200)
    ) { (benchmark: Benchmark, pair: (ManagedIdentityClient, ManagedIdentityClient)) in
        let (writer, reader) = pair
        for _ in benchmark.scaledIterations {
            benchmark.startMeasurement()
            let written = try await writer.token(for: resourceNames[1], options: TokenRequestOptions(forceRefresh: true))
            while try await reader.token(for: resourceNames[1]).token != written.token { await Task.yield() }
            benchmark.stopMeasurement()
        }
    } setup: { () -> (ManagedIdentityClient, ManagedIdentityClient) in
        let clock = ManualClock(now: Date())
        let endpoint = QuietIssuer()
        let a = client(.clientID("visibility"), cache: TokenCache(backend: await runningPostgresBackend(url: url, key: key, hostID: "bench-a")),
                       endpoint: endpoint, clock: clock)
        let b = client(.clientID("visibility"), cache: TokenCache(backend: await runningPostgresBackend(url: url, key: key, hostID: "bench-b")),
                       endpoint: endpoint, clock: clock)
        _ = try! await a.token(for: resourceNames[1])
        _ = try! await b.token(for: resourceNames[1])
        return (a, b)
    }
}
