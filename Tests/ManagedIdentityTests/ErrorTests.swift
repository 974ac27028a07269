import Testing

@testable import ManagedIdentity

/// TV-14 and §6: errors from the endpoints' bodies, and the guarantee that no secret reaches one.
struct ErrorTests {
    func failure(
        _ body: String, status: Int = 500, variables: [String: String] = TestEnvironment.appService
    ) async throws -> ManagedIdentityError {
        let transport = FakeTransport(responses: [.json(status, body)])
        let client = try makeClient(environment: TestEnvironment.make(variables), transport: transport, retries: false)
        do {
            _ = try await client.token(for: Vectors.resource)
        } catch let error as ManagedIdentityError {
            return error
        }
        Issue.record("no error")
        return ManagedIdentityError(code: .requestFailed, message: "")
    }

    @Test func appServiceFlatBody() async throws {
        let error = try await failure(#"{"statusCode":500,"message":"Error message","correlationId":"GUID"}"#)
        #expect(error.code == .requestFailed)
        #expect(error.statusCode == 500)
        #expect(error.source == .appService)
        #expect(error.correlationID == "GUID")
        #expect(error.message.contains("Error message"))
        #expect(error.message.contains("GUID"))
        #expect(error.message.contains("issued by the 'AppService' managed identity source"))
    }

    @Test func oauthBody() async throws {
        let error = try await failure(#"{"error":"errorCode","error_description":"Error message"}"#)
        #expect(error.message.contains("errorCode"))
        #expect(error.message.contains("Error message"))
    }

    @Test func nestedBody() async throws {
        let error = try await failure(
            #"{"error":{"code":"errorCode","message":"Error message","innererror":{"trace":"trace"}}}"#)
        #expect(error.message.contains("errorCode"))
        #expect(error.message.contains("Error message"))
    }

    @Test(arguments: [#"{"notExpectedJson":"someValue"}"#, "notExpectedJson"])
    func unparseableBody(body: String) async throws {
        let error = try await failure(body)
        #expect(error.message.contains("The error response was either empty or could not be parsed"))
        #expect(error.message.contains("notExpectedJson"))
    }

    @Test(arguments: [ManagedIdentitySource.appService, .imds, .machineLearning, .cloudShell])
    func emptyBody(source: ManagedIdentitySource) async throws {
        let variables: [String: String] =
            switch source {
            case .appService: TestEnvironment.appService
            case .machineLearning: TestEnvironment.machineLearning
            case .cloudShell: TestEnvironment.cloudShell
            default: [:]
            }
        let error = try await failure("", variables: variables)
        #expect(error.message == ErrorResponseParser.noResponseMessage)
        #expect(error.source == source)
    }

    @Test func imdsIdentityNotFound() async throws {
        let error = try await failure(
            #"{"error":"invalid_request","error_description":"Identity not found"}"#, status: 400, variables: [:])
        #expect(error.code == .requestFailed)
        #expect(error.statusCode == 400)
        #expect(error.message.contains("Either the requested identity has not been assigned"))
        #expect(error.message.contains("Identity not found"))
        #expect(!error.isRetryable)
    }

    @Test func serviceFabricNestedBodyWithCorrelationID() {
        let parsed = ErrorResponseParser.parse(
            Array(#"{"error":{"correlationId":"foo","code":"SecretHeaderNotFound","message":"Secret is not found in the request headers."}}"#.utf8),
            source: .serviceFabric)
        #expect(parsed.correlationID == "foo")
        #expect(parsed.message.contains("SecretHeaderNotFound"))
    }

    @Test func anEndpointEchoingTheSecretDoesNotLeakIt() async throws {
        var variables = TestEnvironment.appService
        variables["IDENTITY_HEADER"] = "super-secret-header-value"
        let error = try await failure(
            #"{"statusCode":401,"message":"bad header super-secret-header-value"}"#, status: 401, variables: variables)
        #expect(!error.message.contains("super-secret-header-value"))
        #expect(!error.description.contains("super-secret-header-value"))
        #expect(error.message.contains("<redacted>"))
        #expect(error.message.contains("IDENTITY_HEADER"))
    }

    @Test func hostileBodiesAreClippedAndStrippedOfControlCharacters() {
        let body = "\u{1B}[31mred" + String(repeating: "x", count: 5000)
        let parsed = ErrorResponseParser.parse(Array(body.utf8), source: .imds)
        #expect(!parsed.message.contains("\u{1B}"))
        #expect(parsed.message.count < 1300)
    }

    @Test func aTransportFailureIsUnreachableNetwork() async throws {
        let transport = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "Connection refused")
        }
        let client = try makeClient(environment: TestEnvironment.make(), transport: transport)
        await #expect {
            try await client.token(for: Vectors.resource)
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .unreachableNetwork && error.message.contains("Connection refused")
                && error.message.contains("IDENTITY_ENDPOINT") && error.isRetryable
        }
        #expect(transport.requestCount == 1)
    }

    @Test func aCancelledRequestThrowsCancellationNotANetworkError() async throws {
        let transport = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .cancelled, message: "cancelled")
        }
        let client = try makeClient(environment: TestEnvironment.make(), transport: transport)
        await #expect(throws: CancellationError.self) { try await client.token(for: Vectors.resource) }
    }

    @Test func theRealIMDSAddressIsRefusedByTheTestTransport() async throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try makeClient(
            environment: ManagedIdentityEnvironment(variables: [:]), transport: transport)
        await #expect(throws: ManagedIdentityError(code: .unreachableNetwork, message: "")) {
            try await client.token(for: Vectors.resource)
        }
        #expect(transport.requestCount == 0)
    }

    @Test func errorsCompareByCode() {
        #expect(ManagedIdentityError(code: .requestFailed, message: "a") == ManagedIdentityError(code: .requestFailed, message: "b"))
        #expect(ManagedIdentityError.Code.unreachableNetwork.rawValue == "managed_identity_unreachable_network")
        #expect(ManagedIdentityError(code: .requestTimeout, message: "x").description == "request_timeout: x")
    }
}
