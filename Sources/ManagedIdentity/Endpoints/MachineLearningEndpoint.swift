/// Azure Machine Learning: `GET <MSI_ENDPOINT>`, `api-version=2017-09-01`, `clientid` (no
/// underscore), headers `Metadata: true` and `secret`.
struct MachineLearningEndpoint: SourceEndpoint {
    static let apiVersion = "2017-09-01"

    let endpoint: EndpointURL
    let secret: Secret
    /// The client id sent for the system-assigned identity (`DEFAULT_IDENTITY_CLIENT_ID`).
    let defaultClientID: String
    var source: ManagedIdentitySource { .machineLearning }
    var secrets: [String] { [secret.value] }
    var retryPolicy: RetryPolicy { .standard }

    init(environment: ManagedIdentityEnvironment, identity: ManagedIdentityID) throws(ManagedIdentityError) {
        endpoint = try SourceResolver.endpointURL(
            ManagedIdentityVariable.msiEndpoint, in: environment, for: .machineLearning,
            sourceDisplayName: "Machine learning")
        secret = Secret(
            try SourceResolver.required(ManagedIdentityVariable.msiSecret, in: environment, for: .machineLearning))
        switch identity {
        case .systemAssigned:
            guard let clientID = environment.value(ManagedIdentityVariable.defaultIdentityClientID) else {
                throw SourceResolver.unsupportedIdentity(
                    source: .machineLearning, code: .invalidIDType,
                    reason: "The DEFAULT_IDENTITY_CLIENT_ID environment variable is null. Azure Machine Learning "
                        + "sets it for the compute's system-assigned identity; set it, or ask for a user-assigned "
                        + "identity by client id.")
            }
            defaultClientID = clientID
        case .clientID:
            defaultClientID = environment.value(ManagedIdentityVariable.defaultIdentityClientID) ?? ""
        case .resourceID, .objectID:
            throw SourceResolver.unsupportedIdentity(
                    source: .machineLearning, code: .invalidIDType,
                reason: "Only client id is supported for user-assigned managed identity in Machine Learning. "
                    + "Use .clientID(...) instead of a \(identity.kind.displayName).")
        }
    }

    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        var query = endpoint.query
        query.append(QueryItem(name: "api-version", value: Self.apiVersion))
        query.append(QueryItem(name: "resource", value: parameters.resource))
        if case .clientID(let id) = parameters.identity {
            query.append(QueryItem(name: "clientid", value: id))
        } else {
            query.append(QueryItem(name: "clientid", value: defaultClientID))
        }
        return HTTPTransportRequest(
            method: "GET", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: query,
            headers: [
                HTTPHeader(name: "Metadata", value: "true"),
                HTTPHeader(name: "secret", value: secret.value),
            ],
            timeout: parameters.timeout
        )
    }
}
