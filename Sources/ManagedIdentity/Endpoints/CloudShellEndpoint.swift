/// Azure Cloud Shell: `POST <MSI_ENDPOINT>` with the form body `resource=...`, header `Metadata: true`.
/// It serves the signed-in user's identity only, so no user-assigned identity can be asked for.
struct CloudShellEndpoint: SourceEndpoint {
    let endpoint: EndpointURL
    var source: ManagedIdentitySource { .cloudShell }
    var secrets: [String] { [] }
    var retryPolicy: RetryPolicy { .standard }

    init(environment: ManagedIdentityEnvironment, identity: ManagedIdentityID) throws(ManagedIdentityError) {
        endpoint = try SourceResolver.endpointURL(
            ManagedIdentityVariable.msiEndpoint, in: environment, for: .cloudShell, sourceDisplayName: "Cloud Shell")
        if identity.isUserAssigned {
            throw SourceResolver.unsupportedIdentity(
                    source: .cloudShell, code: .userAssignedNotSupported,
                reason: "User assigned identity is not supported by the Cloud Shell Managed Identity. "
                    + "Use the system-assigned identity (.systemAssigned) in Cloud Shell.")
        }
    }

    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        HTTPTransportRequest(
            method: "POST", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: endpoint.query,
            headers: [
                HTTPHeader(name: "Metadata", value: "true"),
                HTTPHeader(name: "Content-Type", value: "application/x-www-form-urlencoded"),
            ],
            body: Array(("resource=" + PercentEncoding.encode(parameters.resource)).utf8),
            timeout: parameters.timeout
        )
    }
}
