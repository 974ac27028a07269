import ArgumentParser
import Foundation
import Logging
import ManagedIdentity
import ManagedIdentityEmulator

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Get a token for a resource, from the cache or from the host's managed identity source.",
        discussion: """
            The source is detected from the environment as MSAL.NET does (Service Fabric, App Service,
            Machine Learning, Cloud Shell, Azure Arc, workload identity, then IMDS). With --emulator, a
            local emulator of the source is started in this process and the client is pointed at it.
            """
    )

    @Option(help: "The resource, or a scope ending in /.default.")
    var resource: String

    @OptionGroup var identityOptions: IdentityOptions

    var identity: ManagedIdentityID { identityOptions.identity }
    var source: ManagedIdentitySource? { identityOptions.source }
    var caFile: String? { identityOptions.caFile }
    var arcKeyDir: String? { identityOptions.arcKeyDir }

    @OptionGroup var cacheOptions: CacheOptions

    @Flag(help: "Ask the endpoint even when the cache holds a valid token.")
    var forceRefresh = false

    @Flag(help: "Start an emulator of the source in this process and use it (no Azure needed).")
    var emulator = false

    @Option(help: "What to print: json (the token and its details) or token (the token alone).")
    var output: OutputFormat = .json

    @Option(help: "Seconds one HTTP exchange may take.")
    var timeout: Int = 30

    @Flag(help: "Tell on stderr what happens: the source and why, the cache's answer, each attempt and its time (never a token or a secret).")
    var verbose = false

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case json, token
    }

    func validate() throws {
        if timeout < 1 { throw ValidationError("--timeout must be at least 1 second.") }
    }

    func run() async throws {
        let started = ContinuousClock.now
        let logger =
            verbose
            ? Logger(label: "managed-identity", factory: { _ in NarratingLogHandler(started: started) }) : makeLogger(verbose: false)
        do {
            let token = try await cacheOptions.withBackend { backend in
                let cache = backend.map { TokenCache(backend: $0) } ?? TokenCache()
                if emulator {
                    return try await InProcessEmulator.with(
                        source: source ?? .imds, cache: cacheOptions.cache.description, arcKeyDirectory: arcKeyDir, verbose: verbose, logger: logger) {
                        environment, keyDirectory, emulatorCA in
                        try await fetch(
                            environment: environment, arcKeyDirectory: keyDirectory, caFile: caFile ?? emulatorCA, cache: cache,
                            logger: logger)
                    }
                }
                return try await fetch(environment: .current, arcKeyDirectory: arcKeyDir, caFile: caFile, cache: cache, logger: logger)
            }
            print(try render(token))
        } catch let error as ManagedIdentityError where error.code == .unreachableNetwork && !emulator {
            var hinted = error
            hinted.message += " To try without Azure, run the same command with --emulator."
            reportAndExit(hinted)
        } catch {
            reportAndExit(error)
        }
    }

    private func fetch(
        environment: ManagedIdentityEnvironment, arcKeyDirectory: String?, caFile: String?, cache: TokenCache, logger: Logger
    ) async throws -> AccessToken {
        let client = try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                source: source, environment: environment, requestTimeout: .seconds(timeout),
                arcKeyDirectory: arcKeyDirectory, workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: caFile),
                hostDiscriminator: cacheOptions.hostID),
            cache: cache,
            logger: logger)
        if verbose {
            let why = source == nil ? ManagedIdentitySource.detectionReason(in: environment) : "chosen with --source"
            logger.info("source: \(client.source) (\(why))")
            logger.info("identity: \(client.partitionDescriptor.identity.kind.rawValue), cache: \(cacheOptions.cache.description)")
        }
        let started = ContinuousClock.now
        let token = try await client.token(for: resource, options: TokenRequestOptions(forceRefresh: forceRefresh))
        if verbose {
            let elapsed = ContinuousClock.now - started
            let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
            let origin = token.tokenSource == .cache ? "from the cache" : "from the identity endpoint"
            let why: String =
                switch token.cacheRefreshReason {
                case .notApplicable: "a cache hit"
                case .proactivelyRefreshed: "past its refresh time: served, and refreshed in the background"
                case .noCachedAccessToken: "nothing was cached"
                case .expired: "the cached token was about to expire"
                case .forceRefreshOrClaims: "--force-refresh"
                }
            logger.info(
                "token \(origin) (\(why)) in \(milliseconds) ms; it expires in \(Int(token.expiresOn.timeIntervalSinceNow)) s")
        }
        return token
    }

    private func render(_ token: AccessToken) throws -> String {
        switch output {
        case .token:
            return token.token
        case .json:
            let output = TokenOutput(
                accessToken: token.token,
                expiresOn: Int64(token.expiresOn.timeIntervalSince1970),
                refreshOn: token.refreshOn.map { Int64($0.timeIntervalSince1970) },
                tokenType: token.tokenType,
                resource: token.resource,
                source: token.managedIdentitySource.rawValue,
                tokenSource: token.tokenSource.rawValue,
                cache: cacheOptions.cache.description)
            return try jsonLine(output)
        }
    }

    struct TokenOutput: Encodable {
        var accessToken: String
        var expiresOn: Int64
        var refreshOn: Int64?
        var tokenType: String
        var resource: String
        var source: String
        var tokenSource: String
        var cache: String

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case expiresOn = "expires_on"
            case refreshOn = "refresh_on"
            case tokenType = "token_type"
            case resource, source, cache
            case tokenSource = "token_source"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(accessToken, forKey: .accessToken)
            try container.encode(expiresOn, forKey: .expiresOn)
            // Always present, null when the token needs no early refresh.
            try container.encode(refreshOn, forKey: .refreshOn)
            try container.encode(tokenType, forKey: .tokenType)
            try container.encode(resource, forKey: .resource)
            try container.encode(source, forKey: .source)
            try container.encode(tokenSource, forKey: .tokenSource)
            try container.encode(cache, forKey: .cache)
        }
    }
}

/// Logs to stderr at debug level with --verbose; otherwise nothing.
func makeLogger(verbose: Bool) -> Logger {
    guard verbose else { return Logger(label: "managed-identity", factory: { _ in SwiftLogNoOpLogHandler() }) }
    var logger = Logger(label: "managed-identity", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = .debug
    return logger
}
