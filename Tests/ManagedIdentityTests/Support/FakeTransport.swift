import Foundation
import Synchronization

import ManagedIdentityTesting

@testable import ManagedIdentity

/// An in-process transport: records every request and answers from a script. It refuses any host
/// but loopback, so a test that would reach the real IMDS address fails loudly instead.
final class FakeTransport: HTTPTransport {
    /// A fake: no endpoint behind it to protect, so no admission limits unless a test sets them.
    var isBoundByEndpointLimits: Bool { false }

    typealias Responder = @Sendable (HTTPTransportRequest, Int) throws(HTTPTransportError) -> HTTPTransportResponse

    private let state = Mutex<[HTTPTransportRequest]>([])
    private let responder: Responder

    /// Answers with `responder`, given the request and its 0-based index.
    init(_ responder: @escaping Responder) {
        self.responder = responder
    }

    /// Answers the scripted responses in order, then repeats the last one.
    convenience init(responses: [HTTPTransportResponse]) {
        self.init { _, index in responses[min(index, responses.count - 1)] }
    }

    var requests: [HTTPTransportRequest] { state.withLock { $0 } }
    var requestCount: Int { state.withLock { $0.count } }

    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        guard Self.isLoopback(request.host) else {
            throw HTTPTransportError(
                kind: .refused, message: "test transport refuses non-loopback host \(request.host)")
        }
        let index = state.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
        return try responder(request, index)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

extension HTTPTransportResponse {
    static func json(_ status: Int, _ body: String, headers: [HTTPHeader] = []) -> HTTPTransportResponse {
        HTTPTransportResponse(status: status, headers: headers, body: Array(body.utf8))
    }

    /// A success body expiring `lifetime` seconds after `now`.
    static func token(_ token: String = "some-access-token", expiresIn lifetime: Int = 3600) -> HTTPTransportResponse {
        .json(200, #"{"access_token":"\#(token)","expires_in":\#(lifetime),"token_type":"Bearer","resource":"R"}"#)
    }
}

/// Environments of the test vectors, always pointing IMDS at a loopback address.
enum TestEnvironment {
    static let loopbackIMDS = "http://127.0.0.1:47999"

    static func make(_ variables: [String: String] = [:], arc: Bool = false) -> ManagedIdentityEnvironment {
        var variables = variables
        if variables[ManagedIdentityVariable.podIdentityAuthorityHost] == nil {
            variables[ManagedIdentityVariable.podIdentityAuthorityHost] = loopbackIMDS
        }
        return ManagedIdentityEnvironment(variables: variables, arcAgentInstalled: arc)
    }

    static let appService = [
        "IDENTITY_ENDPOINT": "http://127.0.0.1:41564/msi/token", "IDENTITY_HEADER": "secret",
    ]
    static let machineLearning = [
        "MSI_ENDPOINT": "http://localhost:7071/msi/token", "MSI_SECRET": "secret",
        "DEFAULT_IDENTITY_CLIENT_ID": "fake_DEFAULT_IDENTITY_CLIENT_ID",
    ]
    static let cloudShell = ["MSI_ENDPOINT": "http://localhost:40342/metadata/identity/oauth2/token"]
    static let serviceFabric = [
        "IDENTITY_ENDPOINT": "https://localhost:2377/metadata/identity/oauth2/token", "IDENTITY_HEADER": "secret",
        "IDENTITY_SERVER_THUMBPRINT": "ABABABABABABABABABABABABABABABABABABABAB",
    ]
    static let azureArc = ["IDENTITY_ENDPOINT": "http://localhost:40342/token", "IMDS_ENDPOINT": "http://localhost:40342"]
}

/// The constants of MSAL.NET's tests.
enum Vectors {
    static let resource = "https://management.azure.com"
    static let clientID = "d3adb33f-c0de-ed0c-c0de-deadb33fc0d3"
    static let objectID = "593b2662-5af7-4a90-a9cb-5a9de615b82f"
    static let resourceID =
        "/subscriptions/ffa4aaa2-4444-4444-5555-e3ccedd3d046/resourcegroups/UAMI_group/providers/Microsoft.ManagedIdentityClient/userAssignedIdentities/UAMI"
}

func makeClient(
    _ identity: ManagedIdentityID = .systemAssigned,
    environment: ManagedIdentityEnvironment,
    source: ManagedIdentitySource? = nil,
    transport: FakeTransport,
    clock: ManualClock = ManualClock(),
    cache: TokenCache = TokenCache(),
    capabilities: [String] = [],
    arcKeyDirectory: String? = nil,
    retries: Bool = true
) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: source, environment: environment, clientCapabilities: capabilities, retriesEnabled: retries,
            clock: clock, arcKeyDirectory: arcKeyDirectory, hostDiscriminator: "test-host"),
        cache: cache,
        transport: transport
    )
}
