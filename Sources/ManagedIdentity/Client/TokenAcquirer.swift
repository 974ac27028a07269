import Foundation
import Logging

/// Gets one token from a source's endpoint: sends the request, retries per the source's policy,
/// follows Azure Arc's challenge, and turns the response into a token or an error.
struct TokenAcquirer: Sendable {
    let endpoint: any SourceEndpoint
    let transport: any HTTPTransport
    let clock: any ManagedIdentityClock
    let retriesEnabled: Bool
    /// Whether the source came from detection; an unreachable IMDS then gets a hint.
    let sourceWasDetected: Bool

    func acquire(_ parameters: TokenRequestParameters, logger: Logger) async throws -> IssuedToken {
        var logger = logger
        logger[metadataKey: "managed-identity.source"] = "\(endpoint.source)"
        logger[metadataKey: "managed-identity.identity-kind"] = "\(parameters.identity.kind.rawValue)"
        logger[metadataKey: "managed-identity.correlation-id"] = "\(parameters.correlationID)"
        do {
            var response = try await send(endpoint.makeRequest(parameters), logger: logger)
            if let arc = endpoint as? AzureArcEndpoint, response.status == 401 {
                logger.debug("Azure Arc challenge received; reading the key file")
                let key = try arc.readChallengeKey(response)
                response = try await send(arc.makeRequest(parameters, key: key), logger: logger)
            }
            guard response.status == 200 else { throw failure(from: response) }
            let fields = try TokenResponseParser.fields(from: response.body, source: endpoint.source)
            if let arc = endpoint as? AzureArcEndpoint {
                try arc.verifyEcho(of: parameters.identity, in: fields)
            }
            let token = try TokenResponseParser.token(
                from: fields, now: clock.now.timeIntervalSince1970, source: endpoint.source)
            logger.debug("managed identity token acquired", metadata: ["managed-identity.outcome": "success"])
            return token
        } catch var error as ManagedIdentityError {
            error.message = error.message.redacting(endpoint.secrets)
            error.clientRequestID = parameters.correlationID
            error.source = error.source ?? endpoint.source
            logger.debug(
                "managed identity request failed",
                metadata: [
                    "managed-identity.outcome": "\(error.code)",
                    "managed-identity.status": "\(error.statusCode.map(String.init) ?? "none")",
                ])
            throw error
        }
    }

    /// Sends a request, retrying timeouts and retryable statuses with the clock's sleep. Returns the
    /// first response that is a success or is not to be retried.
    private func send(_ request: HTTPTransportRequest, logger: Logger) async throws -> HTTPTransportResponse {
        let policy = retriesEnabled ? endpoint.retryPolicy : .disabled
        var state = RetryPolicy.State()
        var attempt = 1
        while true {
            try Task.checkCancellation()
            logger.debug(
                "sending managed identity request",
                metadata: ["managed-identity.endpoint": "\(request.origin)", "managed-identity.attempt": "\(attempt)"])
            let delay: Duration
            do {
                let response = try await transport.send(request)
                if response.status == 200 { return response }
                guard
                    let next = policy.nextDelay(
                        after: response.status, retryAfter: response.header("Retry-After"),
                        now: clock.now.timeIntervalSince1970, state: &state)
                else { return response }
                delay = next
                logger.debug(
                    "retrying managed identity request",
                    metadata: ["managed-identity.status": "\(response.status)", "managed-identity.delay": "\(delay)"])
            } catch {
                switch error.kind {
                case .timeout:
                    guard
                        let next = policy.nextDelay(
                            after: nil, retryAfter: nil, now: clock.now.timeIntervalSince1970, state: &state)
                    else {
                        throw ManagedIdentityError(
                            code: .requestTimeout,
                            message: "[Managed Identity] Request to the endpoint timed out. \(error.message)",
                            source: endpoint.source)
                    }
                    delay = next
                    logger.debug("retrying managed identity request after a timeout")
                case .cancelled:
                    throw CancellationError()
                case .connectionFailed, .refused, .certificatePinMismatch:
                    throw unreachable(error)
                }
            }
            try await clock.sleep(for: delay)
            attempt += 1
        }
    }

    private func unreachable(_ error: HTTPTransportError) -> ManagedIdentityError {
        var message = "[Managed Identity] \(error.message)"
        if endpoint.source == .imds && sourceWasDetected {
            let sourceVariables = ManagedIdentityVariable.all.filter { $0 != ManagedIdentityVariable.podIdentityAuthorityHost }
            message += " No managed identity source variable is set (looked for "
                + sourceVariables.joined(separator: ", ") + "), so the Azure Instance Metadata Service was tried"
            message += endpoint.endpoint.host == IMDSEndpoint.defaultBase.host
                ? "; this host may not be an Azure VM, or its identity endpoint may be blocked."
                : " at \(endpoint.endpoint.scheme)://\(endpoint.endpoint.host) (from AZURE_POD_IDENTITY_AUTHORITY_HOST)."
        } else if error.kind == .certificatePinMismatch {
            message += " Check that IDENTITY_SERVER_THUMBPRINT is the thumbprint of the cluster's certificate."
        }
        return ManagedIdentityError(code: .unreachableNetwork, message: message, source: endpoint.source)
    }

    /// The error of a final non-200 response, with its message built from the body.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        let parsed = ErrorResponseParser.parse(response.body, source: endpoint.source)
        var message = parsed.message
        if endpoint.source == .imds {
            switch response.status {
            case 400:
                message = "[Managed Identity] Authentication unavailable. Either the requested identity has not been "
                    + "assigned to this resource, or other errors could be present. Ensure the identity is correctly "
                    + "assigned. " + message.dropPrefix("[Managed Identity] ")
            case 502, 504:
                message = "[Managed Identity] The request failed due to a gateway error. "
                    + message.dropPrefix("[Managed Identity] ")
            default: break
            }
        }
        if response.status == 401 || response.status == 403, endpoint.source != .azureArc {
            message += " The endpoint refused the request's credentials: check that the secret variable ("
                + endpoint.source.variables.joined(separator: ", ") + ") belongs to this endpoint."
        }
        return ManagedIdentityError(
            code: .requestFailed,
            message: message.redacting(endpoint.secrets),
            source: endpoint.source,
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
