import Foundation
import ManagedIdentityTesting
import TestSupport
import Testing

@testable import ManagedIdentity

/// Workload identity's request, configuration errors, error messages and partition, against a
/// fake transport on loopback and a token file in a private directory.
struct WorkloadIdentityTests {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let clientID = "d3adb33f-c0de-ed0c-c0de-deadb33fc0d3"
    static let assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDp3aSJ9.c2lnbmF0dXJl"

    /// A token file holding `content`, and the webhook's variables pointing at it and a loopback authority.
    static func environment(
        content: String? = assertion, authority: String = "https://127.0.0.1:47998/", clientID: String? = clientID
    ) throws -> (variables: [String: String], path: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wi-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = directory + "/azure-identity-token"
        if let content { try content.write(toFile: path, atomically: true, encoding: .utf8) }
        var variables = [
            "AZURE_FEDERATED_TOKEN_FILE": path, "AZURE_TENANT_ID": tenant, "AZURE_AUTHORITY_HOST": authority,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": TestEnvironment.loopbackIMDS,
        ]
        if let clientID { variables["AZURE_CLIENT_ID"] = clientID }
        return (variables, path)
    }

    static func client(
        _ variables: [String: String], identity: ManagedIdentityID = .systemAssigned, transport: FakeTransport,
        clock: any ManagedIdentityClock = ManualClock(now: Date()), reread: Duration = .seconds(300), capabilities: [String] = []
    ) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            identity: identity,
            configuration: .init(
                environment: ManagedIdentityEnvironment(variables: variables), clientCapabilities: capabilities, clock: clock,
                workloadIdentity: WorkloadIdentityOptions(tokenFileRereadInterval: reread), hostDiscriminator: "wi-tests"),
            cache: TokenCache(), transport: transport)
    }

    static func form(_ request: HTTPTransportRequest) -> [String: String] {
        let items = PercentEncoding.decodeQuery(String(decoding: request.body ?? [], as: UTF8.self)[...], plusIsSpace: true) ?? []
        return Dictionary(items.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    static let entraSuccess = HTTPTransportResponse.json(
        200, #"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"wi-access-token"}"#)

    // MARK: The request (spec §3)

    @Test func theRequestIsAClientCredentialsPostWithTheFileAsAssertion() async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport(responses: [Self.entraSuccess])
        let client = try Self.client(variables, transport: transport)
        #expect(client.source == .workloadIdentity)
        let token = try await client.token(for: "https://vault.azure.net/.default")
        #expect(token.token == "wi-access-token")

        let request = try #require(transport.requests.first)
        #expect(request.method == "POST")
        #expect(request.origin == "https://127.0.0.1:47998")
        #expect(request.path == "/\(Self.tenant)/oauth2/v2.0/token")
        #expect(request.query.isEmpty)
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
        #expect(request.header("Metadata") == nil)
        #expect(
            Self.form(request) == [
                "client_assertion": Self.assertion,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_id": Self.clientID, "grant_type": "client_credentials", "scope": "https://vault.azure.net/.default",
            ])
        let requestID = try #require(request.header("client-request-id"))
        #expect(UUID(uuidString: requestID) != nil && requestID == requestID.lowercased())
        #expect(request.header("return-client-request-id") == "true")
    }

    @Test func expiresInCountsFromTheRequestAndLongTokensRefreshAtHalfLife() async throws {
        let (variables, _) = try Self.environment()
        let clock = ManualClock(now: Date(timeIntervalSince1970: 1_800_000_000))
        let transport = FakeTransport(responses: [
            .json(200, #"{"token_type":"Bearer","expires_in":86399,"access_token":"long"}"#)
        ])
        let token = try await Self.client(variables, transport: transport, clock: clock).token(for: "https://r")
        #expect(token.expiresOn == Date(timeIntervalSince1970: 1_800_000_000 + 86399))
        #expect(token.refreshOn == Date(timeIntervalSince1970: 1_800_000_000 + 43199))
    }

    @Test func aClientIDInCodeWinsOverAZURE_CLIENT_ID() async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport(responses: [Self.entraSuccess])
        let client = try Self.client(variables, identity: .clientID("from-code"), transport: transport)
        _ = try await client.token(for: "https://r")
        #expect(Self.form(try #require(transport.requests.first))["client_id"] == "from-code")
        #expect(client.partitionDescriptor.identity == .clientID("from-code"))
    }

    @Test func capabilitiesAreSentAsClaims() async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport(responses: [Self.entraSuccess])
        _ = try await Self.client(variables, transport: transport, capabilities: ["CP1"]).token(for: "https://r")
        #expect(Self.form(try #require(transport.requests.first))["claims"] == #"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#)
    }

    @Test(arguments: [
        ("login.microsoftonline.com", "https://login.microsoftonline.com"),
        ("https://login.microsoftonline.us/", "https://login.microsoftonline.us"),
        ("https://login.chinacloudapi.cn//", "https://login.chinacloudapi.cn"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
    ])
    func theAuthorityGetsHttpsAndLosesItsTrailingSlash(host: String, expected: String) throws {
        #expect(try WorkloadIdentityEndpoint.authority(fromHost: host) == expected)
    }

    // MARK: Configuration errors, before any request

    @Test(arguments: ["http://login.microsoftonline.com/", "ftp://x", "https://", "https://x/?a=b", "https://user@x/"])
    func anAuthorityThatIsNotHttpsIsRefused(host: String) throws {
        let (variables, _) = try Self.environment(authority: host)
        let transport = FakeTransport(responses: [Self.entraSuccess])
        #expect {
            try Self.client(variables, transport: transport)
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .invalidAuthority && error.message.contains("must be a TLS protected (https) URL")
        }
        #expect(transport.requestCount == 0)
    }

    @Test(arguments: [ManagedIdentityID.objectID("o"), .resourceID("/subscriptions/s/r")])
    func objectAndResourceIDsFailBeforeAnyRequest(identity: ManagedIdentityID) throws {
        let (variables, _) = try Self.environment()
        #expect {
            try Self.client(variables, identity: identity, transport: FakeTransport(responses: [Self.entraSuccess]))
        } throws: { ($0 as? ManagedIdentityError)?.code == .invalidIDType }
    }

    @Test func withoutAnyClientIDItIsAConfigurationError() throws {
        let (variables, _) = try Self.environment(clientID: nil)
        #expect {
            try Self.client(variables, transport: FakeTransport(responses: [Self.entraSuccess]))
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .missingEnvironmentVariable && error.message.contains("AZURE_CLIENT_ID")
        }
    }

    @Test(arguments: ["../other", "a/b", "t?x", ".."])
    func aTenantThatIsNotAPathSegmentIsRefused(tenant: String) throws {
        var (variables, _) = try Self.environment()
        variables["AZURE_TENANT_ID"] = tenant
        #expect(throws: ManagedIdentityError(code: .invalidAuthority, message: "")) {
            try Self.client(variables, transport: FakeTransport(responses: [Self.entraSuccess]))
        }
    }

    @Test func namedExplicitlyWithoutItsVariablesItSaysWhichAreMissing() throws {
        #expect {
            try ManagedIdentityClient(
                configuration: .init(source: .workloadIdentity, environment: ManagedIdentityEnvironment(variables: ["AZURE_CLIENT_ID": "c"])),
                transport: FakeTransport(responses: [Self.entraSuccess]))
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .missingEnvironmentVariable && error.message.contains("AZURE_FEDERATED_TOKEN_FILE")
        }
    }

    @Test func aTrustFileWithoutCertificatesIsRefused() throws {
        let (variables, path) = try Self.environment()
        #expect {
            try ManagedIdentityClient(
                configuration: .init(
                    environment: ManagedIdentityEnvironment(variables: variables),
                    workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: path)),
                transport: FakeTransport(responses: [Self.entraSuccess]))
        } throws: { ($0 as? ManagedIdentityError)?.code == .invalidTrustedCertificates }
    }

    /// A missing, empty or unusable file names the path and sends nothing.
    @Test(arguments: ["missing", "empty", "whitespace", "directory", "binary", "huge"])
    func aBrokenTokenFileIsAConfigurationErrorNamingThePath(kind: String) async throws {
        let (variables, path) = try Self.environment(content: nil)
        switch kind {
        case "empty": try "".write(toFile: path, atomically: true, encoding: .utf8)
        case "whitespace": try " \n\t\n".write(toFile: path, atomically: true, encoding: .utf8)
        case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        case "binary": #expect(FileManager.default.createFile(atPath: path, contents: Data([0xFF, 0xFE, 0x00, 0xC3])))
        case "huge": #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x41, count: 70_000)))
        default: break
        }
        let transport = FakeTransport(responses: [Self.entraSuccess])
        let client = try Self.client(variables, transport: transport)
        await #expect {
            try await client.token(for: "https://r")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .federatedTokenFileUnreadable && error.message.contains(path)
                && error.message.contains("AZURE_FEDERATED_TOKEN_FILE")
        }
        #expect(transport.requestCount == 0)
    }

    // MARK: Re-reading the file

    @Test func theFileIsReReadOnlyAfterTheIntervalOnTheInjectedClock() async throws {
        let (variables, path) = try Self.environment(content: "first-assertion")
        let clock = ManualClock(now: Date(timeIntervalSince1970: 1_800_000_000))
        let transport = FakeTransport(responses: [Self.entraSuccess])
        let client = try Self.client(variables, transport: transport, clock: clock, reread: .seconds(120))
        let force = TokenRequestOptions(forceRefresh: true)
        _ = try await client.token(for: "https://r")
        try "second-assertion".write(toFile: path, atomically: true, encoding: .utf8)
        clock.advance(by: 119)
        _ = try await client.token(for: "https://r", options: force)
        clock.advance(by: 1)
        _ = try await client.token(for: "https://r", options: force)
        // A clock that goes backwards re-reads rather than trusting an age it cannot know.
        try "third-assertion".write(toFile: path, atomically: true, encoding: .utf8)
        clock.advance(by: -10)
        _ = try await client.token(for: "https://r", options: force)
        #expect(
            transport.requests.map { Self.form($0)["client_assertion"] }
                == ["first-assertion", "first-assertion", "second-assertion", "third-assertion"])
    }

    // MARK: Errors (spec §4)

    static func entraError(_ code: Int, status: Int = 400, error: String = "invalid_client") -> HTTPTransportResponse {
        .json(
            status,
            #"{"error":"\#(error)","error_description":"AADSTS\#(code): Something is wrong with '\#(assertion)'. Trace ID: 0b1c Correlation ID: c0rr Timestamp: 2026-12-01 10:00:00Z","error_codes":[\#(code)],"timestamp":"2026-12-01 10:00:00Z","trace_id":"0b1c-trace","correlation_id":"c0rr-correlation"}"#
        )
    }

    @Test(arguments: [70021, 700211, 700212, 700213, 700024, 90061, 700016, 50020])
    func entraErrorsCarryTheCodeTheIDsAndAHintButNeverTheAssertion(code: Int) async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport(responses: [Self.entraError(code)])
        let client = try Self.client(variables, transport: transport)
        await #expect {
            try await client.token(for: "https://r")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            let hint = try #require(EntraErrorResponse.hint(for: code))
            return error.code == .requestFailed && error.statusCode == 400 && error.entraErrorCodes == [code]
                && error.traceID == "0b1c-trace" && error.correlationID == "c0rr-correlation"
                && error.message.contains("AADSTS\(code)") && error.message.contains(hint)
                && error.message.contains("Trace ID: 0b1c-trace") && !error.message.contains(Self.assertion)
                && !"\(error)".contains(Self.assertion)
        }
        #expect(transport.requestCount == 1, "a refusal is not retried")
    }

    @Test func aBodyThatIsNotEntrasShapeIsQuotedSafely() async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport(responses: [.json(400, "<html>\u{1B}[31mproxy says no</html>")])
        await #expect {
            try await Self.client(variables, transport: transport).token(for: "https://r")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.statusCode == 400 && error.message.contains("proxy says no") && !error.message.contains("\u{1B}")
        }
    }

    @Test(arguments: [(429, true), (500, true), (502, true), (503, true), (504, true), (408, true), (404, false), (501, false), (400, false)])
    func throttlingAndServerErrorsAreRetriedWithRetryAfter(status: Int, retried: Bool) async throws {
        let (variables, _) = try Self.environment()
        let transport = FakeTransport { _, index throws(HTTPTransportError) in
            index == 0 ? .json(status, #"{"error":"temporarily_unavailable"}"#, headers: [HTTPHeader(name: "Retry-After", value: "7")]) : Self.entraSuccess
        }
        let clock = ManualClock(now: Date())
        let client = try Self.client(variables, transport: transport, clock: clock)
        if retried {
            #expect(try await client.token(for: "https://r").token == "wi-access-token")
            #expect(RetryDelays.areJittered(clock.sleeps, around: [.seconds(7)]), "\(clock.sleeps)")
        } else {
            await #expect(throws: ManagedIdentityError.self) { try await client.token(for: "https://r") }
            #expect(transport.requestCount == 1)
        }
    }

    // MARK: The partition (spec §5)

    @Test func thePartitionIsNamedBySourceAuthorityTenantAndClientID() throws {
        func key(
            authority: String = "https://login.microsoftonline.com/", tenant: String = WorkloadIdentityTests.tenant,
            client: String = WorkloadIdentityTests.clientID
        ) throws
            -> TokenCachePartitionKey
        {
            var (variables, _) = try Self.environment(authority: authority, clientID: client)
            variables["AZURE_TENANT_ID"] = tenant
            return try Self.client(variables, transport: FakeTransport(responses: [Self.entraSuccess])).partitionKey
        }
        let base = try key()
        #expect(try key() == base, "the token file's path is not part of it")
        #expect(try key(authority: "login.microsoftonline.com") == base, "a host without scheme is the same authority")
        #expect(try key(authority: "https://login.microsoftonline.us/") != base)
        #expect(try key(tenant: "other-tenant") != base)
        #expect(try key(client: "other-client") != base)
        let user = TokenCachePartitionKey(
            source: .appService, endpoint: "https://login.microsoftonline.com/\(WorkloadIdentityTests.tenant)/oauth2/v2.0/token",
            identity: .clientID(WorkloadIdentityTests.clientID), hostDiscriminator: "wi-tests")
        #expect(user != base, "another source with the same endpoint text and id is another partition")
    }
}

/// A claims challenge reaches Entra, merged with the capabilities; managed identity endpoints never get it.
struct WorkloadIdentityClaimsTests {
    @Test func aClaimsChallengeIsSentMergedWithTheCapabilities() async throws {
        let (variables, _) = try WorkloadIdentityTests.environment()
        let transport = FakeTransport(responses: [WorkloadIdentityTests.entraSuccess])
        let client = try WorkloadIdentityTests.client(variables, transport: transport, capabilities: ["CP1"])
        let challenge = #"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#
        _ = try await client.token(for: "https://r", options: TokenRequestOptions(claims: challenge))
        let request = try #require(transport.requests.first)
        let sent = try #require(WorkloadIdentityTests.form(request)["claims"])
        #expect(sent == #"{"access_token":{"nbf":{"essential":true,"value":"1700000000"},"xms_cc":{"values":["CP1"]}}}"#)
    }

    @Test(arguments: [
        (nil as String?, [] as [String], nil as String?),
        (nil, ["CP1"], #"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#),
        (#"{"id_token":{}}"#, [], #"{"id_token":{}}"#),
        ("not json", ["CP1"], "not json"),
    ])
    func theClaimsParameter(challenge: String?, capabilities: [String], expected: String?) {
        #expect(WorkloadIdentityEndpoint.claims(challenge: challenge, capabilities: capabilities) == expected)
    }

    @Test func managedIdentityEndpointsAreNotSentTheChallenge() async throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try makeClient(environment: TestEnvironment.make(TestEnvironment.appService), transport: transport)
        _ = try await client.token(for: "https://r", options: TokenRequestOptions(claims: #"{"access_token":{}}"#))
        let request = try #require(transport.requests.first)
        #expect(request.body == nil && request.queryValue("claims") == nil)
    }
}
