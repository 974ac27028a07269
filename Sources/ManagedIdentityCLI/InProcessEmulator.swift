import Foundation
import Logging
import ManagedIdentity
import ManagedIdentityEmulator

/// The emulator `token --emulator` and `doctor --emulator` start in their own process.
enum InProcessEmulator {
    /// The emulator's environment, its Arc key directory and its CA file, for the duration of `body`.
    typealias Body<Result> = (ManagedIdentityEnvironment, String?, String?) async throws -> Result

    /// Runs `body` against an emulator of `source`, on a fixed port per source so a second run finds
    /// the first run's tokens in a persistent cache (its partition names the endpoint).
    static func with<Result: Sendable>(
        source: ManagedIdentitySource, arcKeyDirectory: String?, verbose: Bool, logger: Logger, _ body: Body<Result>
    ) async throws -> Result {
        let port = 47_580 + (ManagedIdentitySource.allCases.firstIndex(of: source) ?? 0)
        let keyDirectory = arcKeyDirectory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("managed-identity-emulator-\(getuid())/tokens").path
        func configuration(port: Int) -> EmulatorConfiguration {
            EmulatorConfiguration(source: source, port: port, arcKeyDirectory: keyDirectory)
        }
        // The emulator's own lifecycle is not the story --verbose tells; its warnings are.
        var emulatorLogger = logger
        emulatorLogger.logLevel = .warning
        var emulator = try ManagedIdentityEmulator(configuration: configuration(port: port), logger: emulatorLogger)
        do {
            try await emulator.start()
        } catch {
            // Another emulator holds the port; a free one works, though the cache cannot be reused across runs.
            logger.notice("emulator port \(port) is busy; using a free port")
            emulator = try ManagedIdentityEmulator(configuration: configuration(port: 0), logger: emulatorLogger)
            try await emulator.start()
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
