import Foundation
import InMemoryLogging
import InMemoryTracing
import Logging
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityTesting
import MetricsTestKit
import Testing
import Tracing

/// Every metric dimension, span attribute, span error and log line of a run against each source's
/// emulator, searched for the run's tokens and secrets.
struct TelemetryHoldsNoSecretTests {
    /// Everything a run emitted, as text.
    struct Telemetry {
        let logs = InMemoryLogHandler()
        let metrics = TestMetrics()
        let tracer = InMemoryTracer()

        var logger: Logger {
            var logger = Logger(label: "telemetry-test", factory: { _ in logs })
            logger.logLevel = .trace
            return logger
        }

        var texts: [String] {
            var texts: [String] = []
            for entry in logs.entries {
                texts.append("\(entry.message)")
                texts += Self.flatten(entry.metadata)
                if let error = entry.error { texts.append("\(error)") }
            }
            for counter in metrics.counters { texts.append(counter.label); texts += counter.dimensions.flatMap { [$0.0, $0.1] } }
            for recorder in metrics.recorders { texts.append(recorder.label); texts += recorder.dimensions.flatMap { [$0.0, $0.1] } }
            for timer in metrics.timers { texts.append(timer.label); texts += timer.dimensions.flatMap { [$0.0, $0.1] } }
            for span in tracer.finishedSpans {
                texts.append(span.operationName)
                span.attributes.forEach { name, value in texts += [name, "\(value)"] }
                texts += span.errors.map { "\($0.error)" }
                texts += span.events.map(\.name)
            }
            return texts
        }

        static func flatten(_ metadata: Logger.Metadata) -> [String] {
            metadata.flatMap { key, value in [key] + flatten(value) }
        }

        static func flatten(_ value: Logger.MetadataValue) -> [String] {
            switch value {
            case .string(let text): [text]
            case .stringConvertible(let convertible): [convertible.description]
            case .array(let values): values.flatMap(flatten)
            case .dictionary(let dictionary): flatten(dictionary)
            }
        }
    }

    @Test(arguments: ManagedIdentitySource.allCases)
    func noTokenSecretOrArcKeyReachesAMetricSpanOrLogLine(source: ManagedIdentitySource) async throws {
        let telemetry = Telemetry()
        let keyDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("arc-telemetry-\(UUID().uuidString)").path
        var tokens: [String] = []
        var secrets: [String] = []
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: source, arcKeyDirectory: keyDirectory)) { emulator in
            secrets.append(emulator.secret)
            func client(_ identity: ManagedIdentityID = .systemAssigned) throws -> ManagedIdentityClient {
                try ManagedIdentityClient(
                    identity: identity,
                    configuration: .init(
                        environment: ManagedIdentityEnvironment(variables: emulator.environment), requestTimeout: .seconds(10),
                        clock: FastRetryClock(), arcKeyDirectory: emulator.arcKeyDirectory,
                        workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: emulator.caFile),
                        hostDiscriminator: "telemetry",
                        metricsFactory: telemetry.metrics, tracer: telemetry.tracer),
                    cache: TokenCache(), logger: telemetry.logger)
            }
            let system = try client()
            // A miss, a hit, a forced refresh, and a request retried after two faults.
            tokens.append(try await system.token(for: "https://vault.azure.net/.default").token)
            tokens.append(try await system.token(for: "https://vault.azure.net").token)
            tokens.append(try await system.token(for: "https://vault.azure.net", options: .init(forceRefresh: true)).token)
            emulator.failNext(2, status: 500, retryAfter: source == .imds ? nil : "1")
            tokens.append(try await system.token(for: "https://storage.azure.com").token)
            // A refused request: an identity this host does not have, where the source takes one.
            if source.supports(.objectID) {
                await #expect(throws: ManagedIdentityError.self) { try await client(.objectID("not-assigned")).token(for: "https://r") }
            }
            // Workload identity: the federated assertion, and an Entra refusal whose error is logged and traced.
            if let tokenFile = emulator.federatedTokenFile {
                secrets.append(try String(contentsOfFile: tokenFile, encoding: .utf8))
                emulator.inject(EmulatorFaults(entraErrorNext: 1, entraErrorCode: 700213))
                await #expect(throws: ManagedIdentityError.self) {
                    try await system.token(for: "https://graph.microsoft.com", options: .init(forceRefresh: true))
                }
            }
            // The Arc keys the emulator handed out, read from its key files before it removes them.
            let keyFiles = (try? FileManager.default.contentsOfDirectory(atPath: keyDirectory)) ?? []
            secrets += keyFiles.compactMap { try? String(contentsOfFile: keyDirectory + "/" + $0, encoding: .utf8) }
            if source == .azureArc { #expect(keyFiles.count >= 3, "the run took fewer Arc challenges than fetches") }
        }
        try? FileManager.default.removeItem(atPath: keyDirectory)

        let texts = telemetry.texts
        // The run was observed: without this the search below would prove nothing.
        #expect(telemetry.tracer.finishedSpans.count >= 3)
        #expect(telemetry.metrics.counterTotal(label: ManagedIdentityMetrics.tokenLookups) >= 4)
        #expect(telemetry.logs.entries.count >= 4)
        for secret in Set(tokens + secrets) where !secret.isEmpty {
            // The message says where, never what: a failing run must not print the secret either.
            let leaks = texts.filter { $0.contains(secret) }
            #expect(leaks.isEmpty, "\(leaks.count) telemetry texts of \(source) hold a token or secret")
            // A token's claims identify it without its signature.
            let parts = secret.split(separator: ".")
            if parts.count == 3 {
                #expect(!texts.contains { $0.contains(parts[1]) }, "a token's claims of \(source) reached telemetry")
            }
        }
    }
}
