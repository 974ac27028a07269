/// The Azure Instance Metadata Service (MSI v1): `GET /metadata/identity/oauth2/token`,
/// `api-version=2018-02-01`, header `Metadata: true`.
struct IMDSEndpoint: SourceEndpoint {
    static let defaultBase = EndpointURL(scheme: "http", host: "169.254.169.254", port: nil, path: "/")
    static let tokenPath = "/metadata/identity/oauth2/token"
    static let apiVersion = "2018-02-01"
    static let clientSKU = "ManagedIdentity.Swift"
    static let clientVersion = "0.1.0"

    let endpoint: EndpointURL
    var source: ManagedIdentitySource { .imds }
    var secrets: [String] { [] }
    var retryPolicy: RetryPolicy { .imds }
    var defaultAdmissionLimits: AdmissionLimits { .imds }

    /// `AZURE_POD_IDENTITY_AUTHORITY_HOST`, when set, replaces the scheme, host and port; the path is
    /// always the token path (MSAL.NET).
    init(environment: ManagedIdentityEnvironment) throws(ManagedIdentityError) {
        var base = Self.defaultBase
        if let override = environment.value(ManagedIdentityVariable.podIdentityAuthorityHost) {
            guard let url = EndpointURL(parsing: override) else {
                throw ManagedIdentityError(
                    code: .invalidEndpoint,
                    message: "[Managed Identity] The environment variable "
                        + "\(ManagedIdentityVariable.podIdentityAuthorityHost) contains an invalid Uri "
                        + "\(SourceResolver.quotedForMessage(override)) in IMDS managed identity source. "
                        + "It must be an absolute URL such as http://127.0.0.1:8080.",
                    source: .imds
                )
            }
            base = url
        }
        endpoint = EndpointURL(scheme: base.scheme, host: base.host, port: base.port, path: Self.tokenPath)
    }

    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        var query = [
            QueryItem(name: "api-version", value: Self.apiVersion),
            QueryItem(name: "resource", value: parameters.resource),
        ]
        if let selector = parameters.identity.selector(resourceIDName: "msi_res_id") { query.append(selector) }
        return HTTPTransportRequest(
            method: "GET", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: query,
            headers: [
                HTTPHeader(name: "Metadata", value: "true"),
                HTTPHeader(name: "x-client-SKU", value: Self.clientSKU),
                HTTPHeader(name: "x-client-Ver", value: Self.clientVersion),
                HTTPHeader(name: "x-ms-client-request-id", value: parameters.correlationID),
            ],
            timeout: parameters.timeout
        )
    }

    /// IMDS's 400 means an identity not assigned to this VM; its 502 and 504 a gateway error.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        var failure = standardFailure(from: response, credentialsHint: true)
        let preamble: String
        switch response.status {
        case 400:
            preamble = "Authentication unavailable. Either the requested identity has not been assigned to this resource, "
                + "or other errors could be present. Ensure the identity is correctly assigned. "
        case 502, 504:
            preamble = "The request failed due to a gateway error. "
        default:
            return failure
        }
        failure.message = "[Managed Identity] " + preamble + failure.message.dropPrefix("[Managed Identity] ")
        return failure
    }

    /// When detection fell through to IMDS, the error says which variables were looked for and where
    /// IMDS was tried: on a machine that is not an Azure VM this is the usual first error.
    func unreachable(_ error: HTTPTransportError, sourceWasDetected: Bool) -> ManagedIdentityError {
        var message = "[Managed Identity] \(error.message)"
        if sourceWasDetected {
            let sourceVariables = ManagedIdentityVariable.all.filter { $0 != ManagedIdentityVariable.podIdentityAuthorityHost }
            message += " No managed identity source variable is set (looked for "
                + sourceVariables.joined(separator: ", ") + "), so the Azure Instance Metadata Service was tried"
            message += endpoint.host == Self.defaultBase.host
                ? "; this host may not be an Azure VM, or its identity endpoint may be blocked."
                : " at \(endpoint.scheme)://\(endpoint.host)\(endpoint.port.map { ":\($0)" } ?? "") "
                    + "(from AZURE_POD_IDENTITY_AUTHORITY_HOST)."
        }
        return ManagedIdentityError(code: .unreachableNetwork, message: message, source: .imds)
    }
}
