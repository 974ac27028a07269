import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityFileCache
import ManagedIdentityTesting
import TestSupport
import Testing

/// Workload identity against the emulated Microsoft Entra ID over loopback HTTPS, trusting the
/// emulator's CA file: tokens, the cache, a restart, the token file's rotation, every fault and
/// every refusal, and Microsoft's own Python client.
struct WorkloadIdentityEndToEndTests {
    static let user = EmulatedIdentity.defaults[1]
    static let resource = "https://vault.azure.net"

    static func client(
        _ emulator: ManagedIdentityEmulator, identity: ManagedIdentityID = .systemAssigned,
        variables: [String: String]? = nil, cache: TokenCache = TokenCache(),
        clock: any ManagedIdentityClock = FastRetryClock(), reread: Duration = .seconds(300)
    ) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                environment: ManagedIdentityEnvironment(variables: variables ?? emulator.environment),
                requestTimeout: .seconds(10), clock: clock,
                workloadIdentity: WorkloadIdentityOptions(tokenFileRereadInterval: reread, trustedCertificatesFile: emulator.caFile),
                hostDiscriminator: "wi-e2e"),
            cache: cache)
    }

    static var configuration: EmulatorConfiguration { EmulatorConfiguration(source: .workloadIdentity) }

    @Test func theEmulatorReportsTheWebhooksFourVariablesAndItsCAFile() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let variables = emulator.environment
            #expect(variables["AZURE_AUTHORITY_HOST"] == "https://127.0.0.1:\(emulator.port)/")
            #expect(variables["AZURE_TENANT_ID"] == EmulatorConfiguration.defaultTenantID)
            #expect(variables["AZURE_CLIENT_ID"] == Self.user.clientID)
            let tokenFile = try #require(variables["AZURE_FEDERATED_TOKEN_FILE"])
            #expect(tokenFile == emulator.federatedTokenFile)
            let content = try String(contentsOfFile: tokenFile, encoding: .utf8)
            #expect(content.split(separator: ".").count == 3)
            let attributes = try FileManager.default.attributesOfItem(atPath: tokenFile)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            let ca = try String(contentsOfFile: try #require(emulator.caFile), encoding: .utf8)
            #expect(ca.hasPrefix("-----BEGIN CERTIFICATE-----"))
            #expect(ManagedIdentitySource.detect(in: ManagedIdentityEnvironment(variables: variables)) == .workloadIdentity)
        }
    }

    @Test func aTokenThenAHitThenARestartFromTheFileCache() async throws {
        let directory = try TemporaryDirectory.make()
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let first = try Self.client(emulator, cache: TokenCache(backend: try await opened(FileTokenCacheBackend(directory: directory))))
            let issued = try await first.token(for: Self.resource + "/.default")
            #expect(issued.tokenSource == .identityProvider)
            #expect(issued.managedIdentitySource == .workloadIdentity)
            let claims = try #require(EmulatedTokenClaims(token: issued.token))
            #expect(claims.audience == Self.resource)
            #expect(claims.identity == Self.user.label)
            #expect(abs(issued.expiresOn.timeIntervalSinceNow - 3600) < 30)
            #expect(try await first.token(for: Self.resource).tokenSource == .cache)

            // A new process: a new cache over the same directory, a new client.
            let restarted = try Self.client(emulator, cache: TokenCache(backend: try await opened(FileTokenCacheBackend(directory: directory))))
            #expect(restarted.partitionKey == first.partitionKey)
            let again = try await restarted.token(for: Self.resource)
            #expect(again.tokenSource == .cache)
            #expect(again.token == issued.token)
            #expect(emulator.statistics.tokensIssued == 1)
            #expect(emulator.violations.isEmpty, "\(emulator.violations)")
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func aRotatedTokenFileIsPickedUpAfterTheReReadInterval() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let clock = ManualClock(now: Date())
            let client = try Self.client(emulator, clock: clock, reread: .seconds(300))
            let force = TokenRequestOptions(forceRefresh: true)
            _ = try await client.token(for: Self.resource)
            try emulator.rotateFederatedToken()

            // Inside the interval the content read before is sent, and the emulated Entra ID, which
            // takes only the file's current content, refuses it.
            clock.advance(by: 299)
            await #expect {
                try await client.token(for: Self.resource, options: force)
            } throws: { ($0 as? ManagedIdentityError)?.entraErrorCodes == [70021] }

            clock.advance(by: 1)
            let fresh = try await client.token(for: Self.resource, options: force)
            #expect(fresh.tokenSource == .identityProvider)
            #expect(emulator.statistics.tokensIssued == 2)
            #expect(emulator.violations.count == 1, "only the stale assertion is refused")
        }
    }

    @Test func anExpiredTokenFileGetsAADSTS700024WithAHint() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            try emulator.rotateFederatedToken(lifetime: -60)
            await #expect {
                try await Self.client(emulator).token(for: Self.resource)
            } throws: { error in
                let error = try #require(error as? ManagedIdentityError)
                return error.entraErrorCodes == [700024] && error.statusCode == 401
                    && error.message.contains("AZURE_FEDERATED_TOKEN_FILE is outside its validity window")
            }
        }
    }

    @Test(arguments: [70021, 700211, 700212, 700213, 700024, 90061, 700016, 50020])
    func injectedEntraErrorsReachTheCallerWithCodeIDsAndHint(code: Int) async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            emulator.inject(EmulatorFaults(entraErrorNext: 1, entraErrorCode: code))
            let client = try Self.client(emulator)
            let assertion = try String(contentsOfFile: try #require(emulator.federatedTokenFile), encoding: .utf8)
            await #expect {
                try await client.token(for: Self.resource)
            } throws: { error in
                let error = try #require(error as? ManagedIdentityError)
                return error.entraErrorCodes == [code] && error.traceID != nil
                    // Entra's correlation id is the client-request-id the client sent.
                    && error.correlationID != nil && error.correlationID == error.clientRequestID
                    && error.message.contains("AADSTS\(code)") && !error.message.contains(assertion)
            }
            // The fault was one response; the next request gets a token.
            #expect(try await client.token(for: Self.resource).tokenSource == .identityProvider)
            #expect(emulator.violations.isEmpty)
        }
    }

    @Test(arguments: [(429, "2"), (500, nil), (503, "1"), (504, nil)] as [(Int, String?)])
    func throttlingAndServerErrorsAreRetried(status: Int, retryAfter: String?) async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            emulator.failNext(2, status: status, retryAfter: retryAfter)
            let clock = FastRetryClock()
            let token = try await Self.client(emulator, clock: clock).token(for: Self.resource)
            #expect(token.tokenSource == .identityProvider)
            #expect(emulator.requestCount(identity: Self.user, resource: Self.resource) == 3)
            let expected: Duration = .seconds(Int(retryAfter ?? "1") ?? 1)
            #expect(RetryDelays.areJittered(clock.sleeps, around: [expected, expected]), "\(clock.sleeps)")
        }
    }

    @Test func retriesEndAfterThreeAndAMalformedBodyIsAParseFailure() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            emulator.failNext(10, status: 503)
            await #expect {
                try await Self.client(emulator).token(for: Self.resource)
            } throws: { ($0 as? ManagedIdentityError)?.statusCode == 503 }
            #expect(emulator.requestCount(identity: Self.user, resource: Self.resource) == 4)

            emulator.inject(EmulatorFaults(malformedJSONNext: 1))
            await #expect {
                try await Self.client(emulator).token(for: "https://storage.azure.com")
            } throws: { ($0 as? ManagedIdentityError)?.code == .responseParseFailure }
        }
    }

    @Test func aSlowEntraIsATimeoutNotAHang() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 3_000))
            let client = try ManagedIdentityClient(
                configuration: .init(
                    environment: ManagedIdentityEnvironment(variables: emulator.environment), requestTimeout: .milliseconds(300),
                    retriesEnabled: false,
                    workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: emulator.caFile)),
                cache: TokenCache())
            await #expect {
                try await client.token(for: Self.resource)
            } throws: { ($0 as? ManagedIdentityError)?.code == .requestTimeout }
        }
    }

    // MARK: What the emulated Entra ID refuses

    @Test func anUnknownClientIDAndAForeignTenantAreRefusedAsEntraRefusesThem() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            await #expect {
                try await Self.client(emulator, identity: .clientID("00000000-0000-0000-0000-00000000dead")).token(for: Self.resource)
            } throws: { ($0 as? ManagedIdentityError)?.entraErrorCodes == [700016] }

            var foreign = emulator.environment
            foreign["AZURE_TENANT_ID"] = "11111111-0000-4000-8000-000000000000"
            await #expect {
                try await Self.client(emulator, variables: foreign).token(for: Self.resource)
            } throws: { ($0 as? ManagedIdentityError)?.entraErrorCodes == [90002] }
            #expect(emulator.violations.count == 2)
        }
    }

    /// Requests no correct client sends, written by hand: each gets Entra's code and is a violation.
    @Test(arguments: [
        ("grant_type=password", 70003),
        ("client_assertion_type=urn%3Aother", 7_000_216),
        ("scope=https%3A%2F%2Fvault.azure.net", 1_002_012),
        ("scope=https%3A%2F%2Fa%2F.default+https%3A%2F%2Fb%2F.default", 70011),
        ("client_assertion=not-the-file", 70021),
        ("omit=client_id", 900_144),
    ])
    func handWrittenRequestsThatEntraRefuses(change: String, code: Int) async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let assertion = try String(contentsOfFile: try #require(emulator.federatedTokenFile), encoding: .utf8)
            var fields = [
                ("client_assertion", assertion), ("client_assertion_type", "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"),
                ("client_id", Self.user.clientID), ("grant_type", "client_credentials"), ("scope", "https%3A%2F%2Fvault.azure.net%2F.default"),
            ]
            let parts = change.split(separator: "=", maxSplits: 1).map(String.init)
            if parts[0] == "omit" {
                fields.removeAll { $0.0 == parts[1] }
            } else if let index = fields.firstIndex(where: { $0.0 == parts[0] }) {
                fields[index].1 = parts[1]
            }
            let body = fields.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
            let response = try await AsyncHTTPClientTransport().send(
                HTTPTransportRequest(
                    method: "POST", scheme: "https", host: "127.0.0.1", port: emulator.port, path: "/\(EmulatorConfiguration.defaultTenantID)/oauth2/v2.0/token",
                    query: [], headers: [HTTPHeader(name: "Content-Type", value: "application/x-www-form-urlencoded")],
                    body: Array(body.utf8), trustedCertificatesPEM: Array(try String(contentsOfFile: try #require(emulator.caFile), encoding: .utf8).utf8),
                    timeout: .seconds(10)))
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
            #expect((json["error_codes"] as? [Int]) == [code])
            #expect((json["error_description"] as? String)?.hasPrefix("AADSTS\(code):") == true)
            #expect(json["trace_id"] is String && json["correlation_id"] is String && json["timestamp"] is String)
            #expect(emulator.violations.count == 1)
            #expect(emulator.statistics.tokensIssued == 0)
        }
    }

    @Test func withoutTheCAFileTheServerIsNotTrusted() async throws {
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let client = try ManagedIdentityClient(
                configuration: .init(environment: ManagedIdentityEnvironment(variables: emulator.environment), retriesEnabled: false),
                cache: TokenCache())
            await #expect {
                try await client.token(for: Self.resource)
            } throws: { ($0 as? ManagedIdentityError)?.code == .unreachableNetwork }
            #expect(emulator.statistics.requests == 0, "nothing was sent to an untrusted server")
        }
    }

    // MARK: Microsoft's own client

    /// azure-identity's WorkloadIdentityCredential, and its ManagedIdentityCredential falling back to
    /// workload identity, get tokens from the emulator when pointed at its CA file.
    @Test func azureIdentityForPythonGetsTokensFromTheEmulator() async throws {
        // A private virtual environment under the build directory, made on the first run.
        let python = try await PythonPackages.interpreter(with: PythonPackages.azureIdentity, importing: "azure.identity")
        try await ManagedIdentityEmulator.withRunning(Self.configuration) { emulator in
            let script = """
                import os, sys
                from azure.identity import WorkloadIdentityCredential, ManagedIdentityCredential
                wi = WorkloadIdentityCredential(
                    tenant_id=os.environ["AZURE_TENANT_ID"], client_id=os.environ["AZURE_CLIENT_ID"],
                    token_file_path=os.environ["AZURE_FEDERATED_TOKEN_FILE"], authority=os.environ["AZURE_AUTHORITY_HOST"],
                    disable_instance_discovery=True)
                print(wi.get_token("https://vault.azure.net/.default").token)
                mi = ManagedIdentityCredential()
                print(mi.get_token("https://storage.azure.com/.default").token)
                """
            var environment = emulator.environment
            environment["REQUESTS_CA_BUNDLE"] = emulator.caFile
            environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
            environment["HOME"] = ProcessInfo.processInfo.environment["HOME"]
            // Nothing may leave loopback: no proxy, and IMDS (never reached here) pointed at a closed port.
            environment["NO_PROXY"] = "*"
            environment["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
            let result = try await ChildProcess.run(python, ["-c", script], environment: environment)
            #expect(result.status == 0, "azure-identity failed: \(result.errors)")
            let tokens = result.output.split(separator: "\n").map(String.init)
            #expect(tokens.count == 2)
            #expect(tokens.compactMap { EmulatedTokenClaims(token: $0)?.audience } == ["https://vault.azure.net", "https://storage.azure.com"])
            #expect(emulator.violations.isEmpty, "\(emulator.violations)")
        }
    }
}
