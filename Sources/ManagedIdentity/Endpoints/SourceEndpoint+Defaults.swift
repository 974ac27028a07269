/// The behaviour most sources share; a source that differs implements the requirement itself.
extension SourceEndpoint {
    func partitionIdentity(for requested: ManagedIdentityID) -> ManagedIdentityID { requested }

    func followUp(after response: HTTPTransportResponse, parameters: TokenRequestParameters) async throws(ManagedIdentityError)
        -> HTTPTransportRequest?
    { nil }

    func verify(_ fields: TokenResponseFields, for identity: ManagedIdentityID) throws(ManagedIdentityError) {}

    var lifetimeStartsAtRequest: Bool { false }

    var sendsClientCapabilities: Bool { false }

    var defaultAdmissionLimits: AdmissionLimits { .localService }

    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        standardFailure(from: response, credentialsHint: true)
    }

    func unreachable(_ error: HTTPTransportError, sourceWasDetected: Bool) -> ManagedIdentityError {
        ManagedIdentityError(code: .unreachableNetwork, message: "[Managed Identity] \(error.message)", source: source)
    }

    /// The managed identity endpoints' error: the body's message and correlation id, a hint when the
    /// service blamed the resource's form, and (with `credentialsHint`) one for a 401 or 403, which
    /// means the secret variable belongs to another endpoint.
    func standardFailure(from response: HTTPTransportResponse, credentialsHint: Bool) -> ManagedIdentityError {
        let parsed = ErrorResponseParser.parse(response.body, source: source)
        var message = parsed.message
        if EntraErrorResponse.blamesResource(response.body, status: response.status, source: source) {
            message += " " + EntraErrorResponse.resourceHint
        }
        if credentialsHint, response.status == 401 || response.status == 403 {
            message += " The endpoint refused the request's credentials: check that the secret variable ("
                + source.variables.joined(separator: ", ") + ") belongs to this endpoint."
        }
        return ManagedIdentityError(
            code: .requestFailed,
            message: message.redacting(secrets),
            source: source,
            statusCode: response.status,
            correlationID: parsed.correlationID
        )
    }
}

extension String {
    func dropPrefix(_ prefix: String) -> Substring {
        hasPrefix(prefix) ? dropFirst(prefix.count) : self[...]
    }
}
