import Foundation
import NIOPosix

/// Azure Arc: `GET <IDENTITY_ENDPOINT>`, `api-version=2020-06-01`, header `Metadata: true`; the agent
/// answers 401 with `WWW-Authenticate: Basic realm=<key file>`, and the request is sent again with
/// `Authorization: Basic <key file content>`.
struct AzureArcEndpoint: SourceEndpoint {
    static let apiVersion = "2020-06-01"
    static let defaultEndpoint = EndpointURL(
        scheme: "http", host: "127.0.0.1", port: 40342, path: "/metadata/identity/oauth2/token")

    let endpoint: EndpointURL
    /// The only directory a challenge may point into; `nil` on platforms the agent does not run on.
    let keyDirectory: String?
    var source: ManagedIdentitySource { .azureArc }
    var secrets: [String] { [] }
    var retryPolicy: RetryPolicy { .standard }
    /// The agent hands requests to the same managed identity service as IMDS; its limits are taken
    /// to be IMDS's (Microsoft documents none of its own).
    var defaultAdmissionLimits: AdmissionLimits { .imds }

    /// The agent's key directory on this platform.
    static var platformKeyDirectory: String? {
        #if os(Linux)
        return "/var/opt/azcmagent/tokens"
        #elseif os(Windows)
        let programData = ProcessInfo.processInfo.environment["ProgramData"] ?? "C:\\ProgramData"
        return programData + "\\AzureConnectedMachineAgent\\Tokens"
        #else
        return nil
        #endif
    }

    init(environment: ManagedIdentityEnvironment, keyDirectory: String?) throws(ManagedIdentityError) {
        if environment.value(ManagedIdentityVariable.identityEndpoint) != nil {
            endpoint = try SourceResolver.endpointURL(
                ManagedIdentityVariable.identityEndpoint, in: environment, for: .azureArc,
                sourceDisplayName: "Azure Arc")
        } else {
            endpoint = Self.defaultEndpoint
        }
        self.keyDirectory = keyDirectory ?? Self.platformKeyDirectory
    }

    /// The first leg, and with `key` the second. User-assigned selectors go on both legs, spelled as
    /// IMDS spells them (the agent ignores `mi_res_id`).
    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        makeRequest(parameters, key: nil)
    }

    func makeRequest(_ parameters: TokenRequestParameters, key: Secret?) -> HTTPTransportRequest {
        var query = endpoint.query
        query.append(QueryItem(name: "api-version", value: Self.apiVersion))
        query.append(QueryItem(name: "resource", value: parameters.resource))
        if let selector = parameters.identity.selector(resourceIDName: "msi_res_id") { query.append(selector) }
        var headers = [HTTPHeader(name: "Metadata", value: "true")]
        if let key { headers.append(HTTPHeader(name: "Authorization", value: "Basic " + key.value)) }
        return HTTPTransportRequest(
            method: "GET", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: query, headers: headers, timeout: parameters.timeout
        )
    }

    /// The agent's 401 is its challenge: the second leg carries the key the challenge points to.
    func followUp(after response: HTTPTransportResponse, parameters: TokenRequestParameters) async throws(ManagedIdentityError)
        -> HTTPTransportRequest?
    {
        guard response.status == 401 else { return nil }
        return makeRequest(parameters, key: try await readChallengeKey(response))
    }

    /// A 401 after the second leg means a wrong key, not a secret variable of another endpoint.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        standardFailure(from: response, credentialsHint: false)
    }

    /// Reads the key the challenge points to, under every rule of the agent's protocol.
    func readChallengeKey(_ response: HTTPTransportResponse) async throws(ManagedIdentityError) -> Secret {
        guard let challenge = response.header("WWW-Authenticate") else {
            throw .requestFailed(
                "Did not receive expected WWW-Authenticate header in the response from Azure Arc Managed Identity "
                    + "Endpoint. Is IDENTITY_ENDPOINT the Azure Connected Machine agent's endpoint?",
                source: .azureArc, statusCode: response.status)
        }
        guard let keyDirectory else {
            throw .requestFailed(
                "The platform is not supported by Azure Arc. Azure Arc managed identity works on Linux and Windows.",
                source: .azureArc)
        }
        let path = try ArcChallenge.keyFilePath(fromHeader: challenge)
        // The key file's checks and read are file system calls: they run on NIO's blocking pool, not
        // on the cooperative pool.
        let read: Result<Secret, ManagedIdentityError>
        do {
            read = try await NIOThreadPool.singleton.runIfActive {
                Result { () throws(ManagedIdentityError) in try ArcChallenge.readKey(atPath: path, allowedDirectory: keyDirectory) }
            }
        } catch {
            throw .requestFailed("The Azure Arc key file could not be read: \(error).", source: .azureArc)
        }
        return try read.get()
    }

    /// A user-assigned identity is honoured only if the agent's answer names it: an agent that
    /// ignored the selector would otherwise hand out the system-assigned identity's token.
    func verify(_ response: TokenResponseFields, for identity: ManagedIdentityID) throws(ManagedIdentityError) {
        guard let requested = identity.id else { return }
        let echoed: [String?]
        switch identity {
        case .clientID: echoed = [response.clientID]
        case .objectID: echoed = [response.objectID]
        case .resourceID: echoed = [response.msiResourceID, response.miResourceID]
        case .systemAssigned: return
        }
        let confirmed = echoed.contains { $0?.lowercased() == requested.lowercased() }
        if !confirmed {
            throw ManagedIdentityError(
                code: .userAssignedNotSupported,
                message: "[Managed Identity] Azure Arc did not confirm the requested user-assigned managed identity "
                    + "(\(identity.kind.displayName)): its response does not name it, so no token is returned. "
                    + "The Connected Machine agent may be too old to support user-assigned identities.",
                source: .azureArc
            )
        }
    }
}
