import Benchmark
import CoreMetrics
import Foundation
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import ManagedIdentityTesting
import Synchronization

// Every client here talks to an in-process transport (QuietIssuer or FakeTokenEndpoint), except the
// burst, which talks to an emulator on 127.0.0.1: nothing leaves loopback.

let environment = ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"])

func client(
    _ identity: ManagedIdentityID, cache: TokenCache, endpoint: any HTTPTransport, clock: ManualClock,
    metricsFactory: (any MetricsFactory)? = nil
) -> ManagedIdentityClient {
    // The configuration is valid by construction; a failure here is a bug in the benchmark.
    try! ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: .imds, environment: environment, clock: clock, hostDiscriminator: "bench", metricsFactory: metricsFactory),
        cache: cache, transport: endpoint)
}

/// A hook backend that does nothing: the cost of the hook machinery alone.
struct NoOpBackend: TokenCacheBackend {
    func beforeAccess(_ notification: TokenCacheNotification) async throws {}
    func afterAccess(_ notification: TokenCacheNotification) async throws {}
}

func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("mi-bench-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    return path
}

/// Resource names made once, so no benchmark loop pays for building a string.
let resourceNames = (0..<100).map { "https://resource-\($0).example" }

let timeMetrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput]

/// `resources` tokens for each of `identities` identities, all in one cache.
func populated(
    identities: Int, resources: Int, cache: TokenCache, metricsFactory: (any MetricsFactory)? = nil
) async -> [ManagedIdentityClient] {
    let clock = ManualClock(now: Date())
    // The quiet issuer costs next to nothing, so what is measured is the library.
    let endpoint = QuietIssuer()
    var clients: [ManagedIdentityClient] = []
    for index in 0..<identities {
        let client = client(
            .clientID("identity-\(index)"), cache: cache, endpoint: endpoint, clock: clock, metricsFactory: metricsFactory)
        for resource in 0..<resources { _ = try! await client.token(for: resourceNames[resource]) }
        clients.append(client)
    }
    return clients
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: timeMetrics, maxDuration: .seconds(3), maxIterations: 100_000)
    registerPostgresBenchmarks()
    registerBurstBenchmarks()
    registerOutageBenchmarks()
    registerMiddlewareBenchmarks()

    // MARK: In-memory hits

    Benchmark("In-memory hit, 1 token", configuration: .init(scalingFactor: .kilo)) { benchmark, clients in
        let client = clients[0]
        for _ in benchmark.scaledIterations {
            blackHole(try await client.token(for: resourceNames[0]))
        }
    } setup: {
        await populated(identities: 1, resources: 1, cache: TokenCache())
    }

    // The same hit with a metrics backend that counts: each hit increments a counter and records
    // the token's remaining lifetime on handlers made when the client was.
    Benchmark("In-memory hit, 1 token, counting metrics backend", configuration: .init(scalingFactor: .kilo)) { benchmark, clients in
        let client = clients[0]
        for _ in benchmark.scaledIterations {
            blackHole(try await client.token(for: resourceNames[0]))
        }
    } setup: {
        await populated(identities: 1, resources: 1, cache: TokenCache(), metricsFactory: CountingMetrics())
    }

    Benchmark("In-memory hit, 100,000 tokens across 10,000 identities", configuration: .init(scalingFactor: .kilo)) {
        benchmark, clients in
        // Requests stride over every identity and resource, so the whole cache is the working set.
        var index = 0
        for _ in benchmark.scaledIterations {
            index = (index &+ 7919) % clients.count
            blackHole(try await clients[index].token(for: resourceNames[index % 10]))
        }
    } setup: {
        await populated(identities: 10_000, resources: 10, cache: TokenCache())
    }

    Benchmark("In-memory hit of one key, 100,000 tokens cached", configuration: .init(scalingFactor: .kilo)) {
        benchmark, clients in
        let client = clients[4_321]
        for _ in benchmark.scaledIterations {
            blackHole(try await client.token(for: resourceNames[3]))
        }
    } setup: {
        await populated(identities: 10_000, resources: 10, cache: TokenCache())
    }

    Benchmark("Hit through a no-op hook backend", configuration: .init(scalingFactor: .kilo)) { benchmark, clients in
        let client = clients[0]
        for _ in benchmark.scaledIterations {
            blackHole(try await client.token(for: resourceNames[0]))
        }
    } setup: {
        await populated(identities: 1, resources: 1, cache: TokenCache(backend: NoOpBackend()))
    }

    // MARK: Single-flight

    Benchmark(
        "1,000 concurrent callers on a cold key",
        configuration: .init(metrics: [.wallClock, .custom("requests to the endpoint", useScalingFactor: false)], maxIterations: 50)
    ) { benchmark in
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "bench", clock: clock)
        let client = client(.systemAssigned, cache: TokenCache(), endpoint: endpoint, clock: clock)
        benchmark.startMeasurement()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<1000 {
                group.addTask { blackHole(try? await client.token(for: "https://cold.example")) }
            }
        }
        benchmark.stopMeasurement()
        benchmark.measurement(.custom("requests to the endpoint", useScalingFactor: false), endpoint.requestCount)
    }

    // MARK: Memory
    // Bytes still allocated when the window closes (requested sizes, counted by the malloc
    // interposer). Per token = (cache - strings alone) / 100,000; BENCHMARKS.md shows the division.

    Benchmark(
        "Memory: 100,000 cached tokens across 1,000 identities",
        configuration: .init(
            metrics: [.memoryLeakedBytes, .mallocCountTotal], units: [.memoryLeakedBytes: .count, .mallocCountTotal: .count],
            warmupIterations: 0, maxIterations: 1)
    ) { (benchmark: Benchmark, clients: [ManagedIdentityClient]) in
        benchmark.startMeasurement()
        for client in clients {
            for resource in resourceNames { _ = try! await client.token(for: resource) }
        }
        benchmark.stopMeasurement()
        Retained.keep(clients)
    } setup: { () -> [ManagedIdentityClient] in
        let cache = TokenCache()
        return (0..<1000).map {
            try! ManagedIdentityClient(
                identity: .clientID("memory-\($0)"),
                configuration: .init(source: .imds, environment: environment, hostDiscriminator: "bench"),
                cache: cache, transport: QuietIssuer())
        }
    }

    Benchmark(
        "Memory: 100,000 token strings alone",
        configuration: .init(
            metrics: [.memoryLeakedBytes, .mallocCountTotal], units: [.memoryLeakedBytes: .count, .mallocCountTotal: .count],
            warmupIterations: 0, maxIterations: 1)
    ) { benchmark in
        let bytes = Array(String(repeating: "t", count: QuietIssuer.tokenLength).utf8)
        benchmark.startMeasurement()
        // Made as the JSON decoder makes a token: a string of exactly the token's bytes.
        let strings = (0..<100_000).map { _ in String(decoding: bytes, as: UTF8.self) }
        benchmark.stopMeasurement()
        Retained.keep(strings)
    }

    // MARK: Persistent backends

    for kind in ["file", "sqlite"] {
        func open(_ location: String) async -> any TokenCacheBackend {
            let backend: any TokenCacheBackendService =
                kind == "file" ? FileTokenCacheBackend(directory: location) : SQLiteTokenCacheBackend(path: location)
            try! await backend.start(within: .seconds(30))
            return backend
        }
        func location() -> String {
            temporaryDirectory() + (kind == "file" ? "/cache" : "/tokens.sqlite")
        }

        Benchmark("\(kind): hit with nothing changed on disk", configuration: .init(scalingFactor: .kilo)) { benchmark, clients in
            let client = clients[0]
            for _ in benchmark.scaledIterations {
                blackHole(try await client.token(for: resourceNames[0]))
            }
        } setup: {
            await populated(identities: 1, resources: 1, cache: TokenCache(backend: await open(location())))
        }

        Benchmark(
            "\(kind): add one token to a cache of 10,000 tokens across 100 identities",
            configuration: .init(maxDuration: .seconds(5), maxIterations: 2_000)
        ) { benchmark, state in
            // Every iteration adds a token no one has: a miss, a request to the in-process endpoint, a write.
            for _ in benchmark.scaledIterations {
                let serial = state.serial.add(1, ordering: .relaxed).newValue
                let resource = "https://added-\(serial).example"
                benchmark.startMeasurement()
                let token = try await state.clients[serial % state.clients.count].token(for: resource)
                benchmark.stopMeasurement()
                precondition(token.tokenSource == .identityProvider)
            }
        } setup: {
            // Each identity's partition holds 100 tokens, as 10,000 tokens over 100 identities do.
            AddState(clients: await populated(identities: 100, resources: 100, cache: TokenCache(backend: await open(location()))))
        }

        Benchmark(
            "\(kind): cold start with 1,000 cached tokens, first token served",
            configuration: .init(metrics: [.wallClock, .custom("requests to the endpoint", useScalingFactor: false)], maxIterations: 500)
        ) { benchmark, stored in
            let clock = ManualClock(now: Date())
            let endpoint = FakeTokenEndpoint(hostName: "bench", clock: clock)
            benchmark.startMeasurement()
            // What a restarted process does: open the cache, make a client, get a token.
            let restarted = client(.clientID("identity-3"), cache: TokenCache(backend: await open(stored)), endpoint: endpoint, clock: clock)
            blackHole(try await restarted.token(for: resourceNames[5]))
            precondition(endpoint.requestCount == 0)
            benchmark.stopMeasurement()
            benchmark.measurement(.custom("requests to the endpoint", useScalingFactor: false), endpoint.requestCount)
        } setup: {
            let stored = location()
            _ = await populated(identities: 10, resources: 100, cache: TokenCache(backend: await open(stored)))
            return stored
        }
    }
}

/// Issues fixed-length tokens and records nothing, so only the cache's own memory is measured.
struct QuietIssuer: HTTPTransport {
    /// A fake: no endpoint behind it to protect, so no admission limits unless a test sets them.
    var isBoundByEndpointLimits: Bool { false }

    static let tokenLength = 64
    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        let token = String(repeating: "t", count: Self.tokenLength - 6) + String(Int.random(in: 100_000...999_999))
        return HTTPTransportResponse(status: 200, body: Array(#"{"access_token":"\#(token)","expires_in":3600}"#.utf8))
    }
}

/// The clients of the add benchmark and a counter that survives between its runs.
final class AddState: Sendable {
    let clients: [ManagedIdentityClient]
    let serial = Atomic<Int>(0)
    init(clients: [ManagedIdentityClient]) { self.clients = clients }
}

/// Keeps what a memory benchmark built alive past its measurement window.
enum Retained {
    private static let objects = Mutex<[any Sendable]>([])
    static func keep(_ object: any Sendable) { objects.withLock { $0.append(object) } }
}
