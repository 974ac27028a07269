/// Service Fabric: `GET <IDENTITY_ENDPOINT>` over HTTPS, header `secret`, with the server
/// certificate pinned to `IDENTITY_SERVER_THUMBPRINT` before the secret is sent.
struct ServiceFabricEndpoint: SourceEndpoint {
    let endpoint: EndpointURL
    let identityHeader: Secret
    /// The SHA-1 the server's leaf certificate must have.
    let thumbprint: [UInt8]
    let apiVersion: ServiceFabricAPIVersion
    var source: ManagedIdentitySource { .serviceFabric }
    var secrets: [String] { [identityHeader.value] }
    var retryPolicy: RetryPolicy { .standard }
    /// Service Fabric takes `xms_cc` (MSAL.NET sends it), so the capabilities name the partition.
    var sendsClientCapabilities: Bool { true }

    func unreachable(_ error: HTTPTransportError, sourceWasDetected: Bool) -> ManagedIdentityError {
        var message = "[Managed Identity] \(error.message)"
        if error.kind == .certificatePinMismatch {
            message += " Check that IDENTITY_SERVER_THUMBPRINT is the thumbprint of the cluster's certificate."
        }
        return ManagedIdentityError(code: .unreachableNetwork, message: message, source: .serviceFabric)
    }

    init(
        environment: ManagedIdentityEnvironment, identity: ManagedIdentityID, apiVersion: ServiceFabricAPIVersion
    ) throws(ManagedIdentityError) {
        let endpoint = try SourceResolver.endpointURL(
            ManagedIdentityVariable.identityEndpoint, in: environment, for: .serviceFabric,
            sourceDisplayName: "Service Fabric")
        guard endpoint.scheme == "https" else {
            throw ManagedIdentityError(
                code: .invalidEndpoint,
                message: "[Managed Identity] Service Fabric managed identity endpoint must use HTTPS: "
                    + "IDENTITY_ENDPOINT is \(SourceResolver.quotedForMessage(endpoint.description)). "
                    + "The secret is only ever sent over TLS to a certificate matching IDENTITY_SERVER_THUMBPRINT.",
                source: .serviceFabric
            )
        }
        self.endpoint = endpoint
        identityHeader = Secret(
            try SourceResolver.required(ManagedIdentityVariable.identityHeader, in: environment, for: .serviceFabric))
        let rawThumbprint = try SourceResolver.required(
            ManagedIdentityVariable.identityServerThumbprint, in: environment, for: .serviceFabric)
        guard let thumbprint = Self.parseThumbprint(rawThumbprint) else {
            throw ManagedIdentityError(
                code: .invalidEndpoint,
                message: "[Managed Identity] IDENTITY_SERVER_THUMBPRINT must be a SHA-1 certificate thumbprint: "
                    + "40 hexadecimal characters, optionally separated by colons or spaces; got "
                    + "\(SourceResolver.quotedForMessage(rawThumbprint)).",
                source: .serviceFabric
            )
        }
        self.thumbprint = thumbprint
        self.apiVersion = apiVersion
        switch identity {
        case .systemAssigned, .objectID: break
        case .clientID, .resourceID:
            throw SourceResolver.unsupportedIdentity(
                    source: .serviceFabric, code: .userAssignedNotConfigurableAtRuntime,
                reason: "Service Fabric user assigned managed identity ClientId or ResourceId is not configurable "
                    + "at runtime. Service Fabric only supports selecting a user-assigned identity by object id "
                    + "(sent as principalId); use .objectID(...), or the identity configured for the application.")
        }
    }

    /// Removes colons and whitespace; accepts exactly 40 hexadecimal characters.
    static func parseThumbprint(_ value: String) -> [UInt8]? {
        let hex = value.unicodeScalars.filter { $0 != ":" && !$0.properties.isWhitespace }
        guard hex.count == 40 else { return nil }
        return Hex.decode(String(hex))
    }

    func makeRequest(_ parameters: TokenRequestParameters) -> HTTPTransportRequest {
        var query = endpoint.query
        query.append(QueryItem(name: "api-version", value: apiVersion.rawValue))
        query.append(QueryItem(name: "resource", value: parameters.resource))
        if case .objectID(let id) = parameters.identity {
            query.append(QueryItem(name: "principalId", value: id))
        }
        if !parameters.clientCapabilities.isEmpty {
            query.append(QueryItem(name: "xms_cc", value: parameters.clientCapabilities.joined(separator: ",")))
        }
        if let hash = parameters.revokedTokenHash {
            query.append(QueryItem(name: "token_sha256_to_refresh", value: hash))
        }
        return HTTPTransportRequest(
            method: "GET", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: query,
            headers: [HTTPHeader(name: "secret", value: identityHeader.value)],
            serverCertificatePin: thumbprint,
            timeout: parameters.timeout
        )
    }
}
