import Foundation
import Logging
import ManagedIdentity
import ManagedIdentityEmulator

/// The emulator `token --emulator` and `doctor --emulator` start in their own process.
enum InProcessEmulator {
    /// The port for a source and a cache: below the kernel's ephemeral range (32768 and up here), so
    /// no outgoing connection holds it, 8 ports per cache (one per source), 1,000 caches apart.
    static func port(source: ManagedIdentitySource, cache: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in cache.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return 20_000 + 8 * Int(hash % 1_000) + (ManagedIdentitySource.allCases.firstIndex(of: source) ?? 0)
    }

    /// How long a run waits for its source's port when another run of the tool holds it.
    static let portWait: Duration = .seconds(30)

    /// The emulator's environment, its Arc key directory and its CA file, for the duration of `body`.
    typealias Body<Result> = (ManagedIdentityEnvironment, String?, String?) async throws -> Result

    /// Runs `body` against an emulator of `source`, on a port fixed by the source and the cache, so a
    /// second run with the same cache finds the first run's tokens (the partition names the
    /// endpoint), while runs with other caches (other users, other tests) do not contend for it.
    static func with<Result: Sendable>(
        source: ManagedIdentitySource, cache: String, arcKeyDirectory: String?, verbose: Bool, logger: Logger, _ body: Body<Result>
    ) async throws -> Result {
        let port = port(source: source, cache: cache)
        let keyDirectory = arcKeyDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("managed-identity-emulator-\(getuid())/tokens").path
        func configuration(port: Int) -> EmulatorConfiguration {
            EmulatorConfiguration(source: source, port: port, arcKeyDirectory: keyDirectory)
        }
        // The emulator's own lifecycle is not the story --verbose tells; its warnings are.
        var emulatorLogger = logger
        emulatorLogger.logLevel = .warning
        // The port is per source so that a second run finds the first run's tokens; another run of
        // the tool may hold it for a moment (two terminals, parallel scripts), so wait for it before
        // giving up on the cache with a free port.
        var emulator = try ManagedIdentityEmulator(configuration: configuration(port: port), logger: emulatorLogger)
        let waitUntil = ContinuousClock.now + portWait
        var waited = false
        while true {
            do {
                try await emulator.start()
                break
            } catch {
                if ContinuousClock.now < waitUntil {
                    if !waited { logger.notice("emulator port \(port) is busy; waiting up to \(portWait) for it") }
                    waited = true
                    // A failed start leaves the emulator as it was made: starting it again binds anew.
                    try await Task.sleep(for: .milliseconds(100))
                    continue
                }
                // Still held: a free port works, though this run's cache cannot be reused by the next.
                logger.notice("emulator port \(port) is still busy; using a free port")
                emulator = try ManagedIdentityEmulator(configuration: configuration(port: 0), logger: emulatorLogger)
                try await emulator.start()
                break
            }
        }
        if verbose { logger.info("emulator of \(source) started at \(emulator.endpoint)") }
        do {
            let result = try await body(
                ManagedIdentityEnvironment(variables: emulator.environment), emulator.arcKeyDirectory, emulator.caFile)
            await emulator.stop()
            return result
        } catch {
            await emulator.stop()
            throw error
        }
    }
}
