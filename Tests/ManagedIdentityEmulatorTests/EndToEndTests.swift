import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityTesting
import Synchronization
import TestSupport
import Testing

/// The client against the emulator over real loopback HTTP, for every source and identity kind the
/// source supports.
struct EndToEndTests {
    static let system = EmulatedIdentity.defaults[0]
    static let user = EmulatedIdentity.defaults[1]

    /// Each source with the identity kinds it takes.
    static let cases: [(ManagedIdentitySource, ManagedIdentityID, EmulatedIdentity)] = {
        var cases: [(ManagedIdentitySource, ManagedIdentityID, EmulatedIdentity)] = []
        for source in ManagedIdentitySource.allCases {
            // Workload identity's "system-assigned" is the client id in AZURE_CLIENT_ID: a user-assigned identity.
            cases.append((source, .systemAssigned, source == .workloadIdentity ? user : system))
            if source.supports(.clientID) { cases.append((source, .clientID(user.clientID), user)) }
            if source.supports(.objectID) { cases.append((source, .objectID(user.objectID), user)) }
            if source.supports(.resourceID) { cases.append((source, .resourceID(user.resourceID), user)) }
        }
        return cases
    }()

    static func arcDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("arc-e2e-\(UUID().uuidString)").path
    }

    static func client(
        _ emulator: ManagedIdentityEmulator, identity: ManagedIdentityID = .systemAssigned,
        environment: [String: String]? = nil, cache: TokenCache = TokenCache()
    ) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                environment: ManagedIdentityEnvironment(variables: environment ?? emulator.environment),
                requestTimeout: .seconds(10), clock: FastRetryClock(), arcKeyDirectory: emulator.arcKeyDirectory,
                workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: emulator.caFile),
                hostDiscriminator: "e2e"),
            cache: cache)
    }

    @Test(arguments: cases)
    func everySourceAndIdentityKind(source: ManagedIdentitySource, identity: ManagedIdentityID, emulated: EmulatedIdentity) async throws {
        let configuration = EmulatorConfiguration(source: source, arcKeyDirectory: Self.arcDirectory())
        try await ManagedIdentityEmulator.withRunning(configuration) { emulator in
            let client = try Self.client(emulator, identity: identity)
            #expect(client.source == source)
            let resource = "https://vault.azure.net"
            let first = try await client.token(for: resource + "/.default")
            let claims = try #require(EmulatedTokenClaims(token: first.token))
            #expect(claims.audience == resource)
            #expect(claims.identity == emulated.label)
            #expect(claims.source == source.rawValue)
            #expect(first.tokenSource == .identityProvider)
            #expect(abs(first.expiresOn.timeIntervalSinceNow - 3600) < 30)

            let second = try await client.token(for: resource)
            #expect(second.tokenSource == .cache)
            #expect(second.token == first.token)
            #expect(emulator.requestCount(identity: emulated, resource: resource) == 1)
            #expect(emulator.violations.isEmpty, "\(emulator.violations)")
            if source == .azureArc { #expect(emulator.statistics.challenges == 1) }
        }
    }

    @Test(arguments: ManagedIdentitySource.allCases)
    func unassignedUserIdentityIsAnErrorNotAToken(source: ManagedIdentitySource) async throws {
        guard source.supports(.objectID) else { return }
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: source, arcKeyDirectory: Self.arcDirectory())) { emulator in
            let client = try Self.client(emulator, identity: .objectID("not-assigned"))
            await #expect {
                try await client.token(for: "https://vault.azure.net")
            } throws: { error in
                let error = try #require(error as? ManagedIdentityError)
                return error.code == .requestFailed && error.statusCode == 400
            }
            #expect(emulator.violations.isEmpty)
        }
    }

    /// Every source refuses a resource in the wrong form, as its real service does, and the error says
    /// what the right forms are; the emulator does not count it as a protocol violation.
    @Test(arguments: ManagedIdentitySource.allCases)
    func aResourceInTheWrongFormIsRefusedWithAHint(source: ManagedIdentitySource) async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: source, arcKeyDirectory: Self.arcDirectory())) { emulator in
            let client = try Self.client(emulator)
            await #expect {
                try await client.token(for: "management.azure.com")
            } throws: { error in
                let error = try #require(error as? ManagedIdentityError)
                return error.code == .requestFailed && error.message.contains("https://management.azure.com/.default")
            }
            #expect(emulator.violations.isEmpty, "\(emulator.violations)")
            #expect(emulator.statistics.tokensIssued == 0)
        }
    }

    @Test(arguments: [ManagedIdentitySource.imds, .appService, .azureArc, .serviceFabric])
    func retriesUnderInjectedFaults(source: ManagedIdentitySource) async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: source, arcKeyDirectory: Self.arcDirectory())) { emulator in
            emulator.failNext(2, status: source == .imds ? 503 : 500, retryAfter: source == .imds ? nil : "1")
            let clock = FastRetryClock()
            let client = try ManagedIdentityClient(
                configuration: .init(
                    environment: ManagedIdentityEnvironment(variables: emulator.environment), clock: clock,
                    arcKeyDirectory: emulator.arcKeyDirectory, hostDiscriminator: "e2e"),
                cache: TokenCache())
            let token = try await client.token(for: "https://storage.azure.com")
            #expect(token.tokenSource == .identityProvider)
            #expect(emulator.requestCount(identity: Self.system, resource: "https://storage.azure.com") == 3)
            #expect(emulator.statistics.tokensIssued == 1)
            #expect(clock.sleeps.count == 2)
        }
    }

    @Test func retriesEndAfterThreeAndReportTheStatus() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .appService)) { emulator in
            emulator.failNext(10, status: 429)
            let client = try Self.client(emulator)
            await #expect {
                try await client.token(for: "https://storage.azure.com")
            } throws: { ($0 as? ManagedIdentityError)?.statusCode == 429 }
            #expect(emulator.requestCount(identity: Self.system, resource: "https://storage.azure.com") == 4)
        }
    }

    @Test func imdsGone410IsRetriedSevenTimes() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds)) { emulator in
            emulator.failNext(7, status: 410)
            let clock = FastRetryClock()
            let client = try ManagedIdentityClient(
                configuration: .init(
                    environment: ManagedIdentityEnvironment(variables: emulator.environment), clock: clock,
                    hostDiscriminator: "e2e"),
                cache: TokenCache())
            _ = try await client.token(for: "https://storage.azure.com")
            #expect(emulator.statistics.requests == 8)
            #expect(RetryDelays.areJittered(clock.sleeps, around: Array(repeating: .seconds(10), count: 7)), "\(clock.sleeps)")
        }
    }

    @Test(arguments: ExpiresOnFormat.allCases)
    func everyExpiryFormat(format: ExpiresOnFormat) async throws {
        try await ManagedIdentityEmulator.withRunning(
            EmulatorConfiguration(source: .appService, tokenLifetime: 7890, expiresOnFormat: format)
        ) { emulator in
            let token = try await Self.client(emulator).token(for: "https://vault.azure.net")
            #expect(abs(token.expiresOn.timeIntervalSinceNow - 7890) < 30)
            let refreshOn = try #require(token.refreshOn)
            #expect(abs(refreshOn.timeIntervalSinceNow - 3945) < 30)
        }
    }

    @Test func refreshInAndMalformedResponses() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds, refreshIn: 600)) { emulator in
            let client = try Self.client(emulator)
            let token = try await client.token(for: "https://a")
            #expect(abs((token.refreshOn ?? .distantPast).timeIntervalSinceNow - 600) < 30)

            emulator.inject(EmulatorFaults(malformedJSONNext: 1))
            await #expect(throws: ManagedIdentityError(code: .responseParseFailure, message: "")) {
                try await client.token(for: "https://b")
            }
            emulator.setTokenSettings(lifetime: 120)
            await #expect(throws: Never.self) { try await client.token(for: "https://c") }
            // A 120 s token is inside the 5-minute margin: it is returned but not served again from the cache.
            #expect(try await client.token(for: "https://c").tokenSource == .identityProvider)
        }
    }

    @Test func serviceFabricWithTheWrongThumbprintSendsNothing() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .serviceFabric)) { emulator in
            var environment = emulator.environment
            environment["IDENTITY_SERVER_THUMBPRINT"] = String(repeating: "AB", count: 20)
            let client = try Self.client(emulator, environment: environment)
            await #expect {
                try await client.token(for: "https://vault.azure.net")
            } throws: { error in
                let error = try #require(error as? ManagedIdentityError)
                return error.code == .unreachableNetwork && error.message.contains("IDENTITY_SERVER_THUMBPRINT")
                    && !error.message.contains(emulator.secret)
            }
            #expect(emulator.statistics.requests == 0)
        }
    }

    @Test func serviceFabricThumbprintWithColonsAndLowerCase() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .serviceFabric)) { emulator in
            var environment = emulator.environment
            let thumbprint = try #require(emulator.thumbprint).lowercased()
            environment["IDENTITY_SERVER_THUMBPRINT"] = stride(from: 0, to: 40, by: 2).map {
                String(thumbprint.dropFirst($0).prefix(2))
            }.joined(separator: ":")
            _ = try await Self.client(emulator, environment: environment).token(for: "https://vault.azure.net")
        }
    }

    @Test func aWrongSecretIsRefusedAndCountedAsAViolation() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .appService)) { emulator in
            var environment = emulator.environment
            environment["IDENTITY_HEADER"] = "wrong"
            await #expect {
                try await Self.client(emulator, environment: environment).token(for: "https://vault.azure.net")
            } throws: { ($0 as? ManagedIdentityError)?.statusCode == 401 }
            #expect(emulator.violations.count == 1)
        }
    }

    @Test func azureArcRejectsASecondLegWithoutTheRightKey() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .azureArc, arcKeyDirectory: Self.arcDirectory())) { emulator in
            let transport = AsyncHTTPClientTransport()
            let url = try #require(URLComponents(string: emulator.endpoint))
            let request = HTTPTransportRequest(
                method: "GET", scheme: "http", host: "127.0.0.1", port: url.port, path: url.path,
                query: [QueryItem(name: "api-version", value: "2020-06-01"), QueryItem(name: "resource", value: "https://r")],
                headers: [HTTPHeader(name: "Metadata", value: "true"), HTTPHeader(name: "Authorization", value: "Basic guessed")],
                timeout: .seconds(5))
            let response = try await transport.send(request)
            #expect(response.status == 401)
            #expect(emulator.violations.count == 1)
        }
    }

    @Test func anIMDSThatCannotBeReachedNamesTheVariables() async throws {
        // A loopback port nothing listens on stands in for an unreachable IMDS.
        let client = try ManagedIdentityClient(
            configuration: .init(
                environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"]),
                hostDiscriminator: "e2e"),
            cache: TokenCache())
        await #expect {
            try await client.token(for: "https://vault.azure.net")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .unreachableNetwork && error.message.contains("IDENTITY_ENDPOINT")
                && error.message.contains("MSI_ENDPOINT")
        }
    }

    @Test func theEmulatorReportsItsEnvironment() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .serviceFabric)) { emulator in
            #expect(emulator.endpoint.hasPrefix("https://127.0.0.1:"))
            #expect(emulator.exportLines.contains("export IDENTITY_SERVER_THUMBPRINT='\(emulator.thumbprint ?? "")'"))
            let json = try JSONSerialization.jsonObject(with: Data(emulator.environmentJSON.utf8)) as? [String: String]
            #expect(json?["IDENTITY_HEADER"] == emulator.secret)
            #expect(emulator.thumbprint?.count == 40)
        }
    }
}

/// Retries sleep through this clock, so fault tests take no time; wall time is real.
final class FastRetryClock: ManagedIdentityClock {
    private let recorded = Mutex<[Duration]>([])
    var now: Date { Date() }
    var sleeps: [Duration] { recorded.withLock { $0 } }
    func sleep(for duration: Duration) async throws {
        recorded.withLock { $0.append(duration) }
    }
}
