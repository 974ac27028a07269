import Foundation
import Logging
import Tracing

/// Gets one token from a source's endpoint: sends the request, retries per the source's policy,
/// follows Azure Arc's challenge, and turns the response into a token or an error. Each fetch is
/// one span with a child span per HTTP attempt, and is counted and timed.
struct TokenAcquirer: Sendable {
    let endpoint: any SourceEndpoint
    let transport: any HTTPTransport
    let clock: any ManagedIdentityClock
    let retriesEnabled: Bool
    /// Whether the source came from detection; an unreachable IMDS then gets a hint.
    let sourceWasDetected: Bool
    let instruments: ClientInstruments

    /// What the fetch is for, as its span and metrics tell it.
    struct Purpose: Sendable {
        var lookup: ManagedIdentityMetrics.LookupResult
        var background: Bool
    }

    func acquire(_ parameters: TokenRequestParameters, purpose: Purpose, logger: Logger) async throws -> IssuedToken {
        var logger = logger
        logger[metadataKey: "managed-identity.source"] = "\(endpoint.source)"
        logger[metadataKey: "managed-identity.identity-kind"] = "\(parameters.identity.kind.rawValue)"
        logger[metadataKey: "managed-identity.correlation-id"] = "\(parameters.correlationID)"
        let started = ContinuousClock.now
        var attempts = 0
        do {
            let token = try await instruments.tracer.withSpan(ManagedIdentityTracing.fetchTokenSpan, ofKind: .internal) { span in
                span.attributes[ManagedIdentityTracing.Attribute.source] = endpoint.source.rawValue
                span.attributes[ManagedIdentityTracing.Attribute.identityKind] = parameters.identity.kind.rawValue
                span.attributes[ManagedIdentityTracing.Attribute.cacheOutcome] = purpose.lookup.rawValue
                span.attributes[ManagedIdentityTracing.Attribute.correlationID] = parameters.correlationID
                span.attributes[ManagedIdentityTracing.Attribute.background] = purpose.background
                defer { span.attributes[ManagedIdentityTracing.Attribute.attempts] = attempts }
                do {
                    return try await exchange(parameters, attempts: &attempts, logger: logger)
                } catch {
                    // Redacted before the span records it, as before anything else sees it.
                    let error = redacted(error, parameters: parameters)
                    span.attributes[ManagedIdentityTracing.HTTPAttribute.errorType] = ClientInstruments.outcome(of: error)
                    throw error
                }
            }
            let elapsed = ContinuousClock.now - started
            instruments.requested(outcome: "success", duration: elapsed)
            logger.debug(
                "managed identity token acquired",
                metadata: [
                    "managed-identity.outcome": "success", "managed-identity.attempts": "\(attempts)",
                    "managed-identity.duration-ms": "\(Self.milliseconds(elapsed))",
                ])
            return token
        } catch {
            let elapsed = ContinuousClock.now - started
            instruments.requested(outcome: ClientInstruments.outcome(of: error), duration: elapsed)
            guard let error = error as? ManagedIdentityError else { throw error }
            logger.debug(
                "managed identity request failed",
                metadata: [
                    "managed-identity.outcome": "\(error.code)",
                    "managed-identity.status": "\(error.statusCode.map(String.init) ?? "none")",
                    "managed-identity.attempts": "\(attempts)",
                    "managed-identity.duration-ms": "\(Self.milliseconds(elapsed))",
                ])
            throw error
        }
    }

    /// The error as callers see it: no secret in its message, the request's correlation id and source set.
    private func redacted(_ error: any Error, parameters: TokenRequestParameters) -> any Error {
        guard var error = error as? ManagedIdentityError else { return error }
        error.message = error.message.redacting(endpoint.secrets)
        error.clientRequestID = parameters.correlationID
        error.source = error.source ?? endpoint.source
        return error
    }

    /// The request, Arc's second leg when challenged, and the parsed answer.
    private func exchange(_ parameters: TokenRequestParameters, attempts: inout Int, logger: Logger) async throws -> IssuedToken {
        // Entra's expires_in counts from when it was asked (workload identity spec §4).
        let requestedAt = clock.now.timeIntervalSince1970
        var response = try await send(endpoint.makeRequest(parameters), attempts: &attempts, logger: logger)
        if let arc = endpoint as? AzureArcEndpoint, response.status == 401 {
            logger.debug("Azure Arc challenge received; reading the key file")
            let key = try await arc.readChallengeKey(response)
            response = try await send(arc.makeRequest(parameters, key: key), attempts: &attempts, logger: logger)
        }
        guard response.status == 200 else { throw failure(from: response) }
        let fields = try TokenResponseParser.fields(from: response.body, source: endpoint.source)
        if let arc = endpoint as? AzureArcEndpoint {
            try arc.verifyEcho(of: parameters.identity, in: fields)
        }
        let now = endpoint.source == .workloadIdentity ? requestedAt : clock.now.timeIntervalSince1970
        return try TokenResponseParser.token(from: fields, now: now, source: endpoint.source)
    }

    /// Sends a request, retrying timeouts and retryable statuses with the clock's sleep. Returns the
    /// first response that is a success or is not to be retried.
    private func send(_ request: HTTPTransportRequest, attempts: inout Int, logger: Logger) async throws -> HTTPTransportResponse {
        let policy = retriesEnabled ? endpoint.retryPolicy : .disabled
        var state = RetryPolicy.State()
        var resends = 0
        while true {
            try Task.checkCancellation()
            attempts += 1
            logger.debug(
                "sending managed identity request",
                metadata: [
                    "managed-identity.endpoint": "\(request.origin)", "managed-identity.method": "\(request.method)",
                    "managed-identity.attempt": "\(resends + 1)",
                ])
            let sent = ContinuousClock.now
            let delay: Duration
            switch await attempt(request, resends: resends) {
            case .success(let response):
                logger.debug(
                    "managed identity endpoint answered",
                    metadata: [
                        "managed-identity.status": "\(response.status)",
                        "managed-identity.duration-ms": "\(Self.milliseconds(ContinuousClock.now - sent))",
                    ])
                if response.status == 200 { return response }
                guard
                    let next = policy.nextDelay(
                        after: response.status, retryAfter: response.header("Retry-After"),
                        now: clock.now.timeIntervalSince1970, state: &state)
                else { return response }
                delay = next
                instruments.retried(reason: ClientInstruments.statusName(response.status))
                logger.info(
                    "retrying managed identity request",
                    metadata: ["managed-identity.status": "\(response.status)", "managed-identity.delay": "\(delay)"])
            case .failure(let error):
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
                    instruments.retried(reason: "timeout")
                    logger.info("retrying managed identity request after a timeout", metadata: ["managed-identity.delay": "\(delay)"])
                case .cancelled:
                    throw CancellationError()
                case .connectionFailed, .refused, .certificatePinMismatch:
                    throw unreachable(error)
                }
            }
            try await clock.sleep(for: delay)
            resends += 1
        }
    }

    /// One HTTP exchange in its own client span, named after the method as OpenTelemetry's HTTP
    /// conventions say. The query (resource, identity ids) and the headers (secrets) are left out.
    private func attempt(_ request: HTTPTransportRequest, resends: Int) async -> Result<HTTPTransportResponse, HTTPTransportError> {
        await instruments.tracer.withSpan(request.method, ofKind: .client) { span in
            typealias HTTP = ManagedIdentityTracing.HTTPAttribute
            span.attributes[HTTP.requestMethod] = request.method
            span.attributes[HTTP.urlScheme] = request.scheme
            span.attributes[HTTP.serverAddress] = request.host
            span.attributes[HTTP.serverPort] = request.port ?? (request.scheme == "https" ? 443 : 80)
            span.attributes[HTTP.urlFull] = request.origin + request.path
            if resends > 0 { span.attributes[HTTP.resendCount] = resends }
            do throws(HTTPTransportError) {
                let response = try await transport.send(request)
                span.attributes[HTTP.responseStatusCode] = response.status
                if response.status >= 400 {
                    span.attributes[HTTP.errorType] = String(response.status)
                    span.setStatus(SpanStatus(code: .error))
                }
                return .success(response)
            } catch {
                span.attributes[HTTP.errorType] = Self.errorType(error.kind)
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
                return .failure(error)
            }
        }
    }

    static func errorType(_ kind: HTTPTransportError.Kind) -> String {
        switch kind {
        case .connectionFailed: "connection_failed"
        case .timeout: "timeout"
        case .certificatePinMismatch: "certificate_pin_mismatch"
        case .refused: "refused"
        case .cancelled: "cancelled"
        }
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        ClientInstruments.nanoseconds(duration) / 1_000_000
    }

    private func unreachable(_ error: HTTPTransportError) -> ManagedIdentityError {
        var message = "[Managed Identity] \(error.message)"
        if endpoint.source == .imds && sourceWasDetected {
            let sourceVariables = ManagedIdentityVariable.all.filter { $0 != ManagedIdentityVariable.podIdentityAuthorityHost }
            message += " No managed identity source variable is set (looked for "
                + sourceVariables.joined(separator: ", ") + "), so the Azure Instance Metadata Service was tried"
            message += endpoint.endpoint.host == IMDSEndpoint.defaultBase.host
                ? "; this host may not be an Azure VM, or its identity endpoint may be blocked."
                : " at \(endpoint.endpoint.scheme)://\(endpoint.endpoint.host)\(endpoint.endpoint.port.map { ":\($0)" } ?? "") "
                    + "(from AZURE_POD_IDENTITY_AUTHORITY_HOST)."
        } else if endpoint.source == .workloadIdentity {
            message += " Microsoft Entra ID was tried at \(endpoint.endpoint.scheme)://\(endpoint.endpoint.host) (from "
                + "\(ManagedIdentityVariable.authorityHost)); check that the pod can reach it (egress rules, DNS, proxy)."
        } else if error.kind == .certificatePinMismatch {
            message += " Check that IDENTITY_SERVER_THUMBPRINT is the thumbprint of the cluster's certificate."
        }
        return ManagedIdentityError(code: .unreachableNetwork, message: message, source: endpoint.source)
    }

    /// The error of a final non-200 response, with its message built from the body.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        if endpoint.source == .workloadIdentity {
            var failure =
                EntraErrorResponse(body: response.body)?.failure(status: response.status)
                ?? .requestFailed(
                    "Microsoft Entra ID answered the workload identity token request with HTTP \(response.status) "
                        + "and a body that is not its error shape: \(ErrorResponseParser.quote(response.body)).",
                    source: .workloadIdentity, statusCode: response.status)
            failure.message = failure.message.redacting(endpoint.secrets)
            return failure
        }
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
        if EntraErrorResponse.blamesResource(response.body, status: response.status, source: endpoint.source) {
            message += " " + EntraErrorResponse.resourceHint
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
