import Benchmark
import Foundation
import ManagedIdentity
import ManagedIdentityEmulator

// A burst of distinct resources against the emulator on loopback, enforcing IMDS's limits
// (5 concurrent, 20 per second, 429 beyond) and answering in 200 ms: the time to 200 tokens, and
// the 429s it cost. 20 per second allow 200 in about 10 s.

/// The 429s of the last burst, for the custom metric.
func burstOfTwoHundred(emulator: ManagedIdentityEmulator) async throws -> Int {
    emulator.resetStatistics()
    let client = try ManagedIdentityClient(
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: emulator.environment), hostDiscriminator: "bench-burst"),
        cache: TokenCache())
    try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<200 {
            group.addTask { blackHole(try await client.token(for: "https://burst-\(index).example")) }
        }
        try await group.waitForAll()
    }
    return emulator.statistics.throttled
}

func registerBurstBenchmarks() {
    Benchmark(
        "Burst: 200 resources at once under IMDS's limits, endpoint at 200 ms",
        configuration: .init(
            metrics: [.wallClock, .custom("throttled (429)", polarity: .prefersSmaller)], timeUnits: .milliseconds,
            maxDuration: .seconds(60),
            maxIterations: 5)
    ) { benchmark, emulator in
        for _ in benchmark.scaledIterations {
            let throttled = try await burstOfTwoHundred(emulator: emulator)
            benchmark.measurement(.custom("throttled (429)", polarity: .prefersSmaller), throttled)
        }
    } setup: {
        let emulator = try ManagedIdentityEmulator(configuration: EmulatorConfiguration(source: .imds, throttle: .imds))
        try await emulator.start()
        emulator.inject(EmulatorFaults(delayMilliseconds: 200))
        return emulator
    }
}
