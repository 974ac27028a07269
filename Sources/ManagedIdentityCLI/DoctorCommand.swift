import ArgumentParser
import Foundation
import Logging
import ManagedIdentity

/// `managed-identity doctor`: tells an operator which source was picked and why, whether it
/// answers, whether the cache is usable, and what to fix. The checks are decided by
/// ``Diagnostics`` from facts this command gathers; it never prints a token or a secret's value.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Say which source this host offers and why, whether it answers, whether the cache works, and what to fix.",
        discussion: """
            Exits 0 only when every check passes and a token could be had (the token is not printed and
            not cached: the attempt uses a memory cache). With --emulator, the checks run against an
            emulator of the source started in this process.
            """
    )

    @Option(help: "The resource to try to get a token for.")
    var resource: String = "https://management.azure.com"

    @OptionGroup var identityOptions: IdentityOptions

    var identity: ManagedIdentityID { identityOptions.identity }
    var source: ManagedIdentitySource? { identityOptions.source }
    var caFile: String? { identityOptions.caFile }
    var arcKeyDir: String? { identityOptions.arcKeyDir }

    @OptionGroup var cacheOptions: CacheOptions

    @Option(help: "Seconds the token attempt may take.")
    var timeout: Int = 10

    @Option(help: "Milliseconds the IMDS probe may take.")
    var probeTimeoutMs: Int = 1000

    @Flag(help: "Check against an emulator of the source started in this process (no Azure needed).")
    var emulator = false

    @Option(help: "What to print: text (a line per check) or json.")
    var output: OutputFormat = .text

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func validate() throws {
        if timeout < 1 { throw ValidationError("--timeout must be at least 1 second.") }
        if probeTimeoutMs < 1 { throw ValidationError("--probe-timeout-ms must be positive.") }
    }

    func run() async throws {
        let logger = makeLogger(verbose: false)
        let checks: [DiagnosticCheck]
        do {
            if emulator {
                checks = try await InProcessEmulator.with(
                    source: source ?? .imds, cache: cacheOptions.cache.description, arcKeyDirectory: arcKeyDir, verbose: false, logger: logger) {
                    environment, keyDirectory, emulatorCA in
                    await diagnose(environment: environment, arcKeyDirectory: keyDirectory, caFile: caFile ?? emulatorCA)
                }
            } else {
                checks = await diagnose(environment: .current, arcKeyDirectory: arcKeyDir, caFile: caFile)
            }
        } catch {
            reportAndExit(error)
        }
        let obtained = checks.contains { $0.name == "token" && $0.verdict == .ok }
        let healthy = obtained && !checks.contains { $0.verdict == .problem }
        print(try render(checks, healthy: healthy))
        if !healthy { throw ExitCode(1) }
    }

    /// Every check, in the order an operator reads them.
    func diagnose(environment: ManagedIdentityEnvironment, arcKeyDirectory: String?, caFile: String?) async -> [DiagnosticCheck] {
        let picked = source ?? ManagedIdentitySource.detect(in: environment)
        var checks = [Diagnostics.source(picked, chosen: source != nil, environment: environment), Diagnostics.variables(environment)]

        var capabilities: ManagedIdentityCapabilities?
        if picked == .imds {
            let discovery = ManagedIdentityDiscovery(environment: environment, probeTimeout: .milliseconds(probeTimeoutMs))
            capabilities = await discovery.capabilities()
        }
        checks.append(Diagnostics.probe(capabilities))

        switch picked {
        case .workloadIdentity:
            if let path = environment.variables[ManagedIdentityVariable.federatedTokenFile], !path.isEmpty {
                checks.append(
                    Diagnostics.tokenFile(path: path, read: await DoctorFacts.readTokenFile(path), now: Date()))
            }
        case .azureArc:
            let directory = arcKeyDirectory ?? Diagnostics.arcKeyDirectory
            let facts = directory.map(DoctorFacts.directoryAccess)
            checks.append(Diagnostics.arcKeyDirectory(path: directory, exists: facts?.exists ?? false, readable: facts?.readable ?? false))
        default:
            break
        }

        checks.append(await DoctorFacts.cacheCheck(cacheOptions))

        if let capabilities, !capabilities.isAvailable, source == nil {
            checks.append(
                DiagnosticCheck(
                    "token", .problem, "not tried: the probe found no Instance Metadata Service",
                    fix: Diagnostics.probe(capabilities).fix))
        } else {
            checks.append(Diagnostics.token(resource: resource, result: await attempt(environment, arcKeyDirectory, caFile), now: Date()))
        }
        return checks
    }

    /// One attempt at a token through a memory cache: the user's cache is neither read nor written.
    func attempt(_ environment: ManagedIdentityEnvironment, _ arcKeyDirectory: String?, _ caFile: String?) async -> Result<AccessToken, any Error> {
        do {
            let client = try ManagedIdentityClient(
                identity: identity,
                configuration: .init(
                    source: source, environment: environment, requestTimeout: .seconds(timeout), arcKeyDirectory: arcKeyDirectory,
                    workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: caFile), hostDiscriminator: cacheOptions.hostID),
                cache: TokenCache())
            return .success(try await client.token(for: resource))
        } catch {
            return .failure(error)
        }
    }

    func render(_ checks: [DiagnosticCheck], healthy: Bool) throws -> String {
        switch output {
        case .json:
            struct Report: Encodable {
                var checks: [DiagnosticCheck]
                var tokenObtainable: Bool
                enum CodingKeys: String, CodingKey {
                    case checks
                    case tokenObtainable = "token_obtainable"
                }
            }
            return try jsonLine(Report(checks: checks, tokenObtainable: healthy))
        case .text:
            var lines: [String] = []
            for check in checks {
                let verdict = check.verdict.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)
                let name = check.name.padding(toLength: 11, withPad: " ", startingAt: 0)
                lines.append("\(verdict) \(name) \(check.detail)")
                if let fix = check.fix { lines.append(String(repeating: " ", count: 21) + "fix: \(fix)") }
            }
            lines.append(healthy ? "result: a token can be had" : "result: no token can be had until the problems above are fixed")
            return lines.joined(separator: "\n")
        }
    }
}
