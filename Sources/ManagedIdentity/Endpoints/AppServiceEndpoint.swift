/// App Service, Functions, Container Apps and Automation: `GET <IDENTITY_ENDPOINT>`,
/// `api-version=2019-08-01`, header `X-IDENTITY-HEADER`.
struct AppServiceEndpoint: SourceEndpoint {
    static let apiVersion = "2019-08-01"

    let endpoint: EndpointURL
    let identityHeader: Secret
    var source: ManagedIdentitySource { .appService }
    var secrets: [String] { [identityHeader.value] }
    var retryPolicy: RetryPolicy { .standard }

    init(environment: ManagedIdentityEnvironment) throws(ManagedIdentityError) {
        endpoint = try SourceResolver.endpointURL(
            ManagedIdentityVariable.identityEndpoint, in: environment, for: .appService,
            sourceDisplayName: "App Service")
        identityHeader = Secret(
            try SourceResolver.required(ManagedIdentityVariable.identityHeader, in: environment, for: .appService))
    }

    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        var query = endpoint.query
        query.append(QueryItem(name: "api-version", value: Self.apiVersion))
        query.append(QueryItem(name: "resource", value: parameters.resource))
        if let selector = parameters.identity.selector(resourceIDName: "mi_res_id") { query.append(selector) }
        return HTTPTransportRequest(
            method: "GET", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: query,
            headers: [
                HTTPHeader(name: "X-IDENTITY-HEADER", value: identityHeader.value),
                // MSAL Python sends it too; Azure Automation's endpoint requires it and App Service ignores it.
                HTTPHeader(name: "Metadata", value: "true"),
            ],
            timeout: parameters.timeout
        )
    }
}
