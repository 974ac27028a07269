import ArgumentParser
import Foundation
import Logging
import ManagedIdentity
import ManagedIdentityEmulator
import ServiceLifecycle
import UnixSignals

struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run a strict local emulator of one managed identity source until stopped.",
        discussion: """
            Prints one JSON line when ready, with the endpoint and the environment variables a client needs.
            Binds to 127.0.0.1 only. Faults can also be changed while it runs:
              curl -X POST http://127.0.0.1:PORT/__emulator/faults -d '{"fail_next":2,"status":503}'
              curl http://127.0.0.1:PORT/__emulator/stats
            With --source workload-identity it plays Microsoft Entra ID's token endpoint over HTTPS, writes its
            CA certificate (ca_file) and a federated token file, and reports the four AZURE_* variables:
              curl --cacert CA_FILE -X POST https://127.0.0.1:PORT/__emulator/rotate
            With --protected-resource AUDIENCE it also serves a Key Vault-shaped API over HTTPS (resource_url,
            trusting resource_ca_file) that accepts only the tokens it issued for AUDIENCE, and can challenge
            or revoke them:
              curl --cacert RESOURCE_CA_FILE -H "Authorization: Bearer $TOKEN" RESOURCE_URL/secrets/db-password
              curl -X POST http://127.0.0.1:PORT/__emulator/resource/challenge -d '{"count":1}'
              curl -X POST http://127.0.0.1:PORT/__emulator/resource/revoke
            """
    )

    @Option(help: "The source to emulate: \(ManagedIdentitySource.allValueStrings.joined(separator: ", ")).")
    var source: ManagedIdentitySource = .imds

    @Option(help: "The port to listen on; 0 picks a free one.")
    var port: Int = 0

    @Option(help: "Write the environment as export NAME='value' lines to this file.")
    var envFile: String?

    @Option(help: "Where Azure Arc key files are written (default: /var/opt/azcmagent/tokens, as a real agent).")
    var arcKeyDir: String?

    @Option(help: "The lifetime of issued tokens, in seconds.")
    var lifetime: Int = 3600

    @Option(help: "Add refresh_in (seconds) to responses.")
    var refreshIn: Int?

    @Option(help: "How expires_on is written: \(ExpiresOnFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var expiresOnFormat: ExpiresOnFormat = .sourceDefault

    @Option(help: "Fail this many of the next token requests.")
    var failNext: Int = 0

    @Option(help: "The status of injected failures.")
    var failStatus: Int = 500

    @Option(help: "The Retry-After header of injected failures.")
    var retryAfter: String?

    @Option(help: "Answer this many of the next token requests with malformed JSON.")
    var malformedJSONNext: Int = 0

    @Option(help: "Wait this many milliseconds before answering each request.")
    var delayMs: Int = 0

    @Option(help: "Workload identity: refuse this many of the next token requests with Microsoft Entra's error for --entra-error-code.")
    var entraErrorNext: Int = 0

    @Option(help: "Workload identity: the AADSTS code of those refusals (70021, 700211, 700212, 700213, 700024, 90061, 700016, 50020).")
    var entraErrorCode: Int = 700213

    @Option(help: "Workload identity: the tenant it plays.")
    var tenantID: String = EmulatorConfiguration.defaultTenantID

    @Option(help: "Workload identity: where ca.pem and the federated token file are written (default: a private temporary directory).")
    var workloadIdentityDir: String?

    @Option(help: "Workload identity: the lifetime of the federated token it writes, in seconds (negative writes an expired one).")
    var federatedTokenLifetime: Int = 3600

    @Option(help: "The secret clients must send (default: random).")
    var secret: String?

    @Option(
        name: .customLong("user-assigned"),
        help: ArgumentHelp(
            "A user-assigned identity of the host, instead of the default ones; repeatable.",
            valueName: "client-id[,object-id[,resource-id]]"))
    var userAssigned: [String] = []

    @Flag(help: "The host has no system-assigned identity.")
    var noSystemAssigned = false

    @Flag(help: "Enforce IMDS's managed identity limits: 5 concurrent token requests and 20 per second, 429 beyond.")
    var imdsLimits = false

    @Option(help: "Also serve a protected resource over HTTPS that accepts only tokens issued for this audience (such as https://vault.azure.net).")
    var protectedResource: String?

    @Option(help: "The protected resource's port; 0 picks a free one.")
    var protectedResourcePort: Int = 0

    /// The default identities, or those given on the command line.
    var identities: [EmulatedIdentity] {
        var identities = EmulatedIdentity.defaults.filter { $0.isSystemAssigned && !noSystemAssigned }
        if userAssigned.isEmpty {
            identities += EmulatedIdentity.defaults.filter { !$0.isSystemAssigned }
        }
        for value in userAssigned {
            let parts = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            identities.append(
                .userAssigned(clientID: parts[0], objectID: parts.count > 1 ? parts[1] : nil, resourceID: parts.count > 2 ? parts[2] : nil))
        }
        return identities
    }

    @Flag(help: "Log requests on stderr (never a token or a secret).")
    var verbose = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535.") }
        guard (0...65535).contains(protectedResourcePort) else {
            throw ValidationError("--protected-resource-port must be between 0 and 65535.")
        }
        if let protectedResource, URL(string: protectedResource)?.scheme == nil {
            throw ValidationError("--protected-resource is an audience URI, such as https://vault.azure.net.")
        }
        guard lifetime > 0 else { throw ValidationError("--lifetime must be positive.") }
        for value in userAssigned where value.split(separator: ",", omittingEmptySubsequences: false).first?.isEmpty != false {
            throw ValidationError("--user-assigned needs a client id: client-id[,object-id[,resource-id]].")
        }
    }

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        do {
            let emulator = try ManagedIdentityEmulator(
                configuration: EmulatorConfiguration(
                    source: source, port: port, identities: identities, arcKeyDirectory: arcKeyDir, secret: secret,
                    tokenLifetime: lifetime,
                    expiresOnFormat: expiresOnFormat, refreshIn: refreshIn, tenantID: tenantID,
                    workloadIdentityDirectory: workloadIdentityDir, federatedTokenLifetime: federatedTokenLifetime,
                    throttle: imdsLimits ? .imds : nil,
                    protectedResource: protectedResource.map { ProtectedResource(audience: $0, port: protectedResourcePort) }),
                logger: logger)
            emulator.inject(
                EmulatorFaults(
                    failNext: failNext, status: failStatus, retryAfter: retryAfter, malformedJSONNext: malformedJSONNext,
                    delayMilliseconds: delayMs, entraErrorNext: entraErrorNext, entraErrorCode: entraErrorCode))
            let service = EmulatorService(emulator: emulator, envFile: envFile)
            let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        } catch {
            reportAndExit(error)
        }
    }
}

/// Runs the emulator until a graceful shutdown (SIGINT or SIGTERM).
struct EmulatorService: Service {
    let emulator: ManagedIdentityEmulator
    let envFile: String?

    func run() async throws {
        try await emulator.start()
        if let envFile {
            try emulator.exportLines.write(toFile: envFile, atomically: true, encoding: .utf8)
        }
        // The protected resource's CA, for curl --cacert and other processes' trust: a private directory.
        var resourceCAFile: String?
        if emulator.resourceURL != nil, let pem = emulator.certificateAuthorityPEM {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mi-emulator-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            resourceCAFile = directory + "/ca.pem"
            try pem.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        }
        defer { if let resourceCAFile { try? FileManager.default.removeItem(atPath: (resourceCAFile as NSString).deletingLastPathComponent) } }
        // Straight to the descriptor: stdout is buffered when it is a pipe, and the reader waits for this line.
        FileHandle.standardOutput.write(Data((readyLine(resourceCAFile: resourceCAFile) + "\n").utf8))
        try? await gracefulShutdown()
        await emulator.stop()
    }

    func readyLine(resourceCAFile: String?) -> String {
        let ready = ReadyLine(
            event: "ready", source: emulator.configuration.source.rawValue, endpoint: emulator.endpoint,
            port: emulator.port, environment: emulator.environment, thumbprint: emulator.thumbprint,
            arcKeyDirectory: emulator.arcKeyDirectory, caFile: emulator.caFile,
            federatedTokenFile: emulator.federatedTokenFile, identities: emulator.configuration.identities,
            resourceURL: emulator.resourceURL, resourceCAFile: resourceCAFile)
        return (try? jsonLine(ready)) ?? #"{"event":"ready"}"#
    }

    struct ReadyLine: Encodable {
        var event: String
        var source: String
        var endpoint: String
        var port: Int
        var environment: [String: String]
        var thumbprint: String?
        var arcKeyDirectory: String?
        var caFile: String?
        var federatedTokenFile: String?
        var identities: [EmulatedIdentity]
        var resourceURL: String?
        var resourceCAFile: String?

        enum CodingKeys: String, CodingKey {
            case event, source, endpoint, port, environment, thumbprint, identities
            case arcKeyDirectory = "arc_key_directory"
            case caFile = "ca_file"
            case federatedTokenFile = "federated_token_file"
            case resourceURL = "resource_url"
            case resourceCAFile = "resource_ca_file"
        }
    }
}

extension ExpiresOnFormat: ExpressibleByArgument {}
