import Foundation
import Logging
import Tracing

/// Gets one token from a source's endpoint: waits for its turn at the endpoint's admission point,
/// sends the request, retries per the source's policy with jitter, follows the source's second leg
/// when it has one, and turns the response into a token or an error. Each fetch is one span with a
/// child span per HTTP attempt, and is counted and timed.
///
/// Nothing here asks which source it talks to: what differs is a requirement of ``SourceEndpoint``.
struct TokenAcquirer: Sendable {
    let endpoint: any SourceEndpoint
    let transport: any HTTPTransport
    let clock: any ManagedIdentityClock
    let retriesEnabled: Bool
    /// Whether the source came from detection; an unreachable IMDS then gets a hint.
    let sourceWasDetected: Bool
    /// Where requests to the endpoint wait for their turn; shared by the process's clients.
    let admission: EndpointAdmission
    /// A number in [0, 1) for each retry's jitter.
    let jitter: @Sendable () -> Double
    let instruments: ClientInstruments

    /// What the fetch is for, as its span and metrics tell it.
    struct Purpose: Sendable {
        var lookup: ManagedIdentityMetrics.LookupResult
        /// A background refresh: no caller waits, so it makes one attempt and leaves retrying to the
        /// refresh back-off, which spaces attempts by minutes rather than seconds.
        var background: Bool
    }

    func acquire(_ parameters: TokenRequestParameters, purpose: Purpose, logger: Logger) async throws -> IssuedToken {
        var logger = logger
        logger[metadataKey: "managed-identity.source"] = "\(endpoint.source)"
        logger[metadataKey: "managed-identity.identity-kind"] = "\(parameters.identity.kind.rawValue)"
        logger[metadataKey: "managed-identity.correlation-id"] = "\(parameters.correlationID)"
        let started = ContinuousClock.now
        var attempts = 0
        let outcome: Result<IssuedToken, any Error> = await instruments.tracer.withSpan(
            ManagedIdentityTracing.fetchTokenSpan, ofKind: .internal
        ) { span in
            span.attributes[ManagedIdentityTracing.Attribute.source] = endpoint.source.rawValue
            span.attributes[ManagedIdentityTracing.Attribute.identityKind] = parameters.identity.kind.rawValue
            span.attributes[ManagedIdentityTracing.Attribute.cacheOutcome] = purpose.lookup.rawValue
            span.attributes[ManagedIdentityTracing.Attribute.correlationID] = parameters.correlationID
            span.attributes[ManagedIdentityTracing.Attribute.background] = purpose.background
            defer { span.attributes[ManagedIdentityTracing.Attribute.attempts] = attempts }
            do {
                return .success(try await exchange(parameters, purpose: purpose, attempts: &attempts, logger: logger))
            } catch {
                // Redacted before anything sees it; the span gets a copy without identity ids either
                // (the caller's error keeps them, to say which identity failed).
                let error = redacted(error, parameters: parameters)
                span.attributes[ManagedIdentityTracing.HTTPAttribute.errorType] = ClientInstruments.outcome(of: error)
                span.recordError(TelemetryRedaction.forTelemetry(error, identity: parameters.identity))
                span.setStatus(SpanStatus(code: .error))
                return .failure(error)
            }
        }
        let elapsed = ContinuousClock.now - started
        switch outcome {
        case .success(let token):
            instruments.requested(outcome: "success", duration: elapsed)
            logger.debug(
                "managed identity token acquired",
                metadata: [
                    "managed-identity.outcome": "success", "managed-identity.attempts": "\(attempts)",
                    "managed-identity.duration-ms": "\(Self.milliseconds(elapsed))",
                ])
            return token
        case .failure(let error):
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

    /// The request, the source's second leg when it asks for one, and the parsed answer.
    private func exchange(
        _ parameters: TokenRequestParameters, purpose: Purpose, attempts: inout Int, logger: Logger
    ) async throws -> IssuedToken {
        let requestedAt = clock.now.timeIntervalSince1970
        let policy = retriesEnabled && !purpose.background ? endpoint.retryPolicy : .disabled
        var response = try await send(endpoint.makeRequest(parameters), policy: policy, attempts: &attempts, logger: logger)
        if let next = try await endpoint.followUp(after: response, parameters: parameters) {
            logger.debug("the endpoint asked for a second request (its challenge); sending it")
            response = try await send(next, policy: policy, attempts: &attempts, logger: logger)
        }
        guard response.status == 200 else { throw endpoint.failure(from: response) }
        let fields = try TokenResponseParser.fields(from: response.body, source: endpoint.source)
        try endpoint.verify(fields, for: parameters.identity)
        let now = endpoint.lifetimeStartsAtRequest ? requestedAt : clock.now.timeIntervalSince1970
        return try TokenResponseParser.token(from: fields, now: now, source: endpoint.source)
    }

    /// Sends a request, retrying timeouts and retryable statuses after a jittered delay on the
    /// clock. Each attempt waits for its turn at the admission point and gives it back when answered,
    /// so a retry's wait holds no turn. Returns the first response that is a success or is not to be retried.
    private func send(
        _ request: HTTPTransportRequest, policy: RetryPolicy, attempts: inout Int, logger: Logger
    ) async throws -> HTTPTransportResponse {
        var state = RetryPolicy.State()
        var resends = 0
        while true {
            try Task.checkCancellation()
            try await waitForTurn(logger: logger)
            attempts += 1
            logger.debug(
                "sending managed identity request",
                metadata: [
                    "managed-identity.endpoint": "\(request.origin)", "managed-identity.method": "\(request.method)",
                    "managed-identity.attempt": "\(resends + 1)",
                ])
            let sent = ContinuousClock.now
            let result = await attempt(request, resends: resends)
            admission.release()
            let base: Duration
            switch result {
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
                base = next
                instruments.retried(reason: ClientInstruments.statusName(response.status))
            case .failure(let error):
                switch error.kind {
                case .timeout:
                    guard let next = policy.nextDelay(after: nil, retryAfter: nil, now: clock.now.timeIntervalSince1970, state: &state)
                    else {
                        throw ManagedIdentityError(
                            code: .requestTimeout,
                            message: "[Managed Identity] Request to the endpoint timed out. \(error.message)",
                            source: endpoint.source)
                    }
                    base = next
                    instruments.retried(reason: "timeout")
                case .cancelled:
                    throw CancellationError()
                case .connectionFailed, .refused, .certificatePinMismatch:
                    throw endpoint.unreachable(error, sourceWasDetected: sourceWasDetected)
                }
            }
            let delay = RetryPolicy.jittered(base, random: jitter())
            logger.info(
                "retrying managed identity request",
                metadata: [
                    "managed-identity.status": "\(result.status.map(String.init) ?? "timeout")",
                    "managed-identity.delay": "\(delay)",
                ])
            try await clock.sleep(for: delay)
            resends += 1
        }
    }

    /// Waits at the admission point, counting the wait when there is one.
    private func waitForTurn(logger: Logger) async throws {
        let queued = ContinuousClock.now
        let waited = try await admission.acquire { [instruments] isWaiting in
            instruments.admissionQueue(entered: isWaiting)
        }
        if waited {
            let wait = ContinuousClock.now - queued
            instruments.admissionWaited(wait)
            logger.debug(
                "waited for a turn at the endpoint's admission limits",
                metadata: ["managed-identity.wait-ms": "\(Self.milliseconds(wait))"])
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
                // A transport of one's own may put the URL, query and all, in its message.
                var recorded = error
                recorded.message = TelemetryRedaction.redact(error.message, identity: nil)
                span.recordError(recorded)
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
}

extension Result where Success == HTTPTransportResponse {
    /// The status of a response, `nil` for a transport failure.
    var status: Int? {
        if case .success(let response) = self { return response.status }
        return nil
    }
}
