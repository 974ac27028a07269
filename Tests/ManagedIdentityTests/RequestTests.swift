import Testing

@testable import ManagedIdentity

/// The exact requests of TV-01 to TV-08, per source and identity kind.
struct RequestTests {
    func parameters(_ identity: ManagedIdentityID = .systemAssigned, capabilities: [String] = [], hash: String? = nil)
        -> TokenRequestParameters
    {
        TokenRequestParameters(
            resource: Vectors.resource, identity: identity, correlationID: "00000000-0000-0000-0000-000000000001",
            clientCapabilities: capabilities, revokedTokenHash: hash, timeout: .seconds(30))
    }

    func request(
        _ source: ManagedIdentitySource, _ variables: [String: String], identity: ManagedIdentityID = .systemAssigned,
        capabilities: [String] = [], hash: String? = nil, podHost: String? = nil
    ) async throws -> HTTPTransportRequest {
        var variables = variables
        if let podHost { variables["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = podHost }
        let endpoint = try SourceResolver.resolve(
            source, identity: identity, environment: ManagedIdentityEnvironment(variables: variables),
            options: SourceResolutionOptions())
        return try await endpoint.makeRequest(parameters(identity, capabilities: capabilities, hash: hash))
    }

    func queryDictionary(_ request: HTTPTransportRequest) -> [String: String] {
        Dictionary(request.query.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
    }

    // TV-01: the default IMDS request, inspected as built; it is never sent.
    @Test func imdsSystemAssigned() async throws {
        let request = try await request(.imds, [:])
        #expect(request.method == "GET")
        #expect(request.origin == "http://169.254.169.254")
        #expect(request.path == "/metadata/identity/oauth2/token")
        #expect(request.query == [
            QueryItem(name: "api-version", value: "2018-02-01"), QueryItem(name: "resource", value: Vectors.resource),
        ])
        #expect(request.header("Metadata") == "true")
        #expect(request.header("x-client-SKU")?.isEmpty == false)
        #expect(request.header("x-client-Ver")?.isEmpty == false)
        #expect(request.header("x-ms-client-request-id") == "00000000-0000-0000-0000-000000000001")
        #expect(request.body == nil)
        #expect(request.serverCertificatePin == nil)
        #expect(request.url == "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com")
    }

    // TV-02
    @Test(arguments: [
        (ManagedIdentityID.clientID(Vectors.clientID), "client_id", Vectors.clientID),
        (.resourceID(Vectors.resourceID), "msi_res_id", Vectors.resourceID),
        (.objectID(Vectors.objectID), "object_id", Vectors.objectID),
        (.resourceID("1234"), "msi_res_id", "1234"),
    ])
    func imdsUserAssignedSelectors(identity: ManagedIdentityID, name: String, value: String) async throws {
        let request = try await request(.imds, [:], identity: identity)
        #expect(queryDictionary(request) == ["api-version": "2018-02-01", "resource": Vectors.resource, name: value])
    }

    // TV-03: the pod identity host replaces scheme, host and port; the path is always the token path.
    @Test(arguments: [
        ("http://localhost:1234//", "http://localhost:1234"),
        ("http://custom-imds-host-1.example.com", "http://custom-imds-host-1.example.com"),
        ("http://169.254.169.254/metadata/identity/oauth2/token", "http://169.254.169.254"),
        ("http://127.0.0.1:8080/some/other/path?x=1", "http://127.0.0.1:8080"),
    ])
    func imdsPodIdentityOverride(value: String, origin: String) async throws {
        let request = try await request(.imds, [:], podHost: value)
        #expect(request.origin == origin)
        #expect(request.path == "/metadata/identity/oauth2/token")
        #expect(request.query.count == 2)
    }

    @Test(arguments: ["not a url", "169.254.169.254", "ftp://host", "http://", "http://host:99999"])
    func imdsMalformedPodIdentityHostIsRejected(value: String) async {
        await #expect(throws: ManagedIdentityError(code: .invalidEndpoint, message: "")) {
            try await request(.imds, [:], podHost: value)
        }
    }

    // TV-04
    @Test(arguments: [
        (ManagedIdentityID.systemAssigned, nil as (String, String)?),
        (.clientID(Vectors.clientID), ("client_id", Vectors.clientID)),
        (.resourceID(Vectors.resourceID), ("mi_res_id", Vectors.resourceID)),
        (.objectID(Vectors.objectID), ("object_id", Vectors.objectID)),
    ])
    func appService(identity: ManagedIdentityID, selector: (String, String)?) async throws {
        let request = try await request(.appService, TestEnvironment.appService, identity: identity)
        #expect(request.method == "GET")
        #expect(request.origin == "http://127.0.0.1:41564")
        #expect(request.path == "/msi/token")
        var expected = ["api-version": "2019-08-01", "resource": Vectors.resource]
        if let selector { expected[selector.0] = selector.1 }
        #expect(queryDictionary(request) == expected)
        #expect(request.header("X-IDENTITY-HEADER") == "secret")
        #expect(request.header("x-ms-client-request-id") == nil)
    }

    @Test(arguments: ["127.0.0.1:41564/msi/token", "localhost/token", "http//x", "http://user@host/x", " http://x/y"])
    func appServiceInvalidEndpoint(value: String) async {
        await #expect {
            try await request(.appService, ["IDENTITY_ENDPOINT": value, "IDENTITY_HEADER": "secret"])
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .invalidEndpoint && error.message.contains("IDENTITY_ENDPOINT")
                && error.message.contains("App Service") && !error.message.contains("secret'")
        }
    }

    // TV-05
    @Test func machineLearning() async throws {
        let system = try await request(.machineLearning, TestEnvironment.machineLearning)
        #expect(system.origin == "http://localhost:7071")
        #expect(system.path == "/msi/token")
        #expect(queryDictionary(system) == [
            "api-version": "2017-09-01", "resource": Vectors.resource, "clientid": "fake_DEFAULT_IDENTITY_CLIENT_ID",
        ])
        #expect(system.header("Metadata") == "true")
        #expect(system.header("secret") == "secret")

        let user = try await request(.machineLearning, TestEnvironment.machineLearning, identity: .clientID(Vectors.clientID))
        #expect(user.queryValue("clientid") == Vectors.clientID)
        #expect(user.queryValue("client_id") == nil)
    }

    @Test(arguments: [ManagedIdentityID.resourceID(Vectors.resourceID), .objectID(Vectors.objectID)])
    func machineLearningRejectsOtherUserAssignedKinds(identity: ManagedIdentityID) async {
        await #expect(throws: ManagedIdentityError(code: .invalidIDType, message: "")) {
            try await request(.machineLearning, TestEnvironment.machineLearning, identity: identity)
        }
    }

    @Test func machineLearningSystemAssignedNeedsTheDefaultClientID() async {
        var variables = TestEnvironment.machineLearning
        variables["DEFAULT_IDENTITY_CLIENT_ID"] = nil
        await #expect(throws: ManagedIdentityError(code: .invalidIDType, message: "")) {
            try await request(.machineLearning, variables)
        }
    }

    // TV-06
    @Test func cloudShell() async throws {
        let request = try await request(.cloudShell, TestEnvironment.cloudShell)
        #expect(request.method == "POST")
        #expect(request.origin == "http://localhost:40342")
        #expect(request.path == "/metadata/identity/oauth2/token")
        #expect(request.query.isEmpty)
        #expect(request.header("Metadata") == "true")
        #expect(request.header("Content-Type") == "application/x-www-form-urlencoded")
        let body = String(decoding: try #require(request.body), as: UTF8.self)
        #expect(PercentEncoding.decodeQuery(body[...], plusIsSpace: true) == [QueryItem(name: "resource", value: Vectors.resource)])
    }

    @Test(arguments: [
        ManagedIdentityID.clientID(Vectors.clientID), .resourceID(Vectors.resourceID), .objectID(Vectors.objectID),
    ])
    func cloudShellRejectsUserAssigned(identity: ManagedIdentityID) async {
        await #expect(throws: ManagedIdentityError(code: .userAssignedNotSupported, message: "")) {
            try await request(.cloudShell, TestEnvironment.cloudShell, identity: identity)
        }
    }

    // TV-07
    @Test func serviceFabric() async throws {
        let request = try await request(.serviceFabric, TestEnvironment.serviceFabric)
        #expect(request.method == "GET")
        #expect(request.origin == "https://localhost:2377")
        #expect(request.path == "/metadata/identity/oauth2/token")
        #expect(queryDictionary(request) == ["api-version": "2020-05-01", "resource": Vectors.resource])
        #expect(request.header("secret") == "secret")
        #expect(request.serverCertificatePin == [UInt8](repeating: 0xAB, count: 20))
    }

    @Test func serviceFabricCapabilitiesClaimsAndObjectID() async throws {
        let hash = TokenCacheAccessor.sha256Hex("some-access-token")
        #expect(hash == "0912ef3b6dc2ea579c68fac784f8c2dd942edc5892808c9d6af6e6b47115d126")
        let request = try await request(
            .serviceFabric, TestEnvironment.serviceFabric, identity: .objectID(Vectors.objectID),
            capabilities: ["cp1", "cp2"], hash: hash)
        #expect(request.query.map(\.name) == [
            "api-version", "resource", "principalId", "xms_cc", "token_sha256_to_refresh",
        ])
        #expect(request.queryValue("principalId") == Vectors.objectID)
        #expect(request.queryValue("xms_cc") == "cp1,cp2")
        #expect(request.queryValue("token_sha256_to_refresh") == hash)
    }

    @Test func serviceFabricOlderAPIVersionCanBeChosen() async throws {
        let endpoint = try SourceResolver.resolve(
            .serviceFabric, identity: .systemAssigned,
            environment: ManagedIdentityEnvironment(variables: TestEnvironment.serviceFabric),
            options: SourceResolutionOptions(serviceFabricAPIVersion: .v2019_07_01_preview))
        #expect(try await endpoint.makeRequest(parameters()).queryValue("api-version") == "2019-07-01-preview")
    }

    @Test(arguments: [ManagedIdentityID.clientID(Vectors.clientID), .resourceID(Vectors.resourceID)])
    func serviceFabricRejectsClientAndResourceIDs(identity: ManagedIdentityID) async {
        await #expect(throws: ManagedIdentityError(code: .userAssignedNotConfigurableAtRuntime, message: "")) {
            try await request(.serviceFabric, TestEnvironment.serviceFabric, identity: identity)
        }
    }

    @Test(arguments: [
        "http://localhost:2377/token",  // not HTTPS
        "localhost/token",
    ])
    func serviceFabricEndpointMustBeHTTPS(endpoint: String) async {
        var variables = TestEnvironment.serviceFabric
        variables["IDENTITY_ENDPOINT"] = endpoint
        await #expect(throws: ManagedIdentityError(code: .invalidEndpoint, message: "")) {
            try await request(.serviceFabric, variables)
        }
    }

    @Test(arguments: [
        ("ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab", true),
        ("AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB AB", true),
        ("abababababababababababababababababababab", true),
        ("thumbprint", false),
        ("abababababababababababababababababababa", false),
        ("zzababababababababababababababababababab", false),
    ])
    func serviceFabricThumbprintNormalisation(value: String, valid: Bool) async {
        var variables = TestEnvironment.serviceFabric
        variables["IDENTITY_SERVER_THUMBPRINT"] = value
        if valid {
            #expect((try? await request(.serviceFabric, variables))?.serverCertificatePin == [UInt8](repeating: 0xAB, count: 20))
        } else {
            await #expect(throws: ManagedIdentityError(code: .invalidEndpoint, message: "")) { try await request(.serviceFabric, variables) }
        }
    }

    // TV-09 first leg.
    @Test func azureArcFirstLeg() async throws {
        let request = try await request(.azureArc, TestEnvironment.azureArc)
        #expect(request.origin == "http://localhost:40342")
        #expect(request.path == "/token")
        #expect(queryDictionary(request) == ["api-version": "2020-06-01", "resource": Vectors.resource])
        #expect(request.header("Metadata") == "true")
        #expect(request.header("Authorization") == nil)
    }

    @Test(arguments: [
        (ManagedIdentityID.clientID(Vectors.clientID), "client_id"), (.resourceID(Vectors.resourceID), "msi_res_id"),
        (.objectID(Vectors.objectID), "object_id"),
    ])
    func azureArcForwardsUserAssignedSelectors(identity: ManagedIdentityID, name: String) async throws {
        let request = try await request(.azureArc, TestEnvironment.azureArc, identity: identity)
        #expect(request.queryValue(name) == identity.id)
    }

    @Test(arguments: ["", "   "])
    func emptyUserAssignedIDsAreRejectedBeforeAnyRequest(id: String) async {
        for identity in [ManagedIdentityID.clientID(id), .resourceID(id), .objectID(id)] {
            let transport = FakeTransport(responses: [.token()])
            #expect(throws: ManagedIdentityError(code: .invalidManagedIdentityID, message: "")) {
                try makeClient(identity, environment: TestEnvironment.make(), transport: transport)
            }
            #expect(transport.requestCount == 0)
        }
    }

    @Test func existingQueryParametersOfTheEndpointAreKept() async throws {
        let request = try await request(
            .appService, ["IDENTITY_ENDPOINT": "http://127.0.0.1:8081/msi/token?tenant=abc", "IDENTITY_HEADER": "h"])
        #expect(request.query.first == QueryItem(name: "tenant", value: "abc"))
        #expect(request.queryValue("api-version") == "2019-08-01")
    }
}
