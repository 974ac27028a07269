import Foundation
import ManagedIdentity
import ManagedIdentityTesting

/// Microsoft Entra ID's token endpoint, as workload identity uses it: a client-credentials POST
/// whose client assertion must be the federated token file's current, unexpired content. Every
/// request Entra would refuse gets Entra's error shape and AADSTS code and is a violation.
extension EmulatorRequestHandler {
    static let jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    func respondAsEntra(to request: EmulatorRequest) throws -> EmulatorResponse {
        let correlationID = Self.correlationID(of: request)
        func refuse(_ status: Int, _ error: String, _ code: Int, _ description: String) -> Refusal {
            Refusal(
                response: entraError(status: status, error: error, code: code, description: description, correlationID: correlationID),
                reason: "AADSTS\(code): \(description)", isViolation: true)
        }
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count == 5, segments[0].isEmpty, segments[2] == "oauth2", segments[3] == "v2.0", segments[4] == "token" else {
            throw refuse(404, "invalid_request", 900_561, "No Microsoft Entra endpoint at \(request.path); the token endpoint is \(configuration.tokenPath).")
        }
        guard segments[1] == Substring(configuration.tenantID) else {
            throw refuse(
                400, "invalid_request", 90002,
                "Tenant '\(segments[1])' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
        }
        guard request.method == "POST" else {
            throw refuse(400, "invalid_request", 900_561, "The endpoint only accepts POST requests. Received a \(request.method) request.")
        }
        guard request.header("Content-Type")?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true,
            let text = String(validating: request.body, as: UTF8.self), let form = FormDecoding.decode(text)
        else {
            throw refuse(400, "invalid_request", 900_144, "The request body must contain the following parameter: 'grant_type'.")
        }
        func single(_ name: String) throws -> String {
            let values = form.filter { $0.name == name }.map(\.value)
            guard values.count == 1 else {
                throw values.isEmpty
                    ? refuse(400, "invalid_request", 900_144, "The request body must contain the following parameter: '\(name)'.")
                    : refuse(400, "invalid_request", 90014, "The request body has the parameter '\(name)' more than once.")
            }
            return values[0]
        }
        let grantType = try single("grant_type")
        guard grantType == "client_credentials" else {
            throw refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '\(grantType)'.")
        }
        let clientID = try single("client_id")
        guard let identity = configuration.identities.first(where: { $0.clientID.lowercased() == clientID.lowercased() }) else {
            throw refuse(
                400, "unauthorized_client", 700_016,
                "Application with identifier '\(clientID)' was not found in the directory '\(configuration.tenantID)'.")
        }
        guard form.contains(where: { $0.name == "client_assertion" }), form.contains(where: { $0.name == "client_assertion_type" })
        else {
            throw refuse(401, "invalid_client", 7_000_216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
        }
        let assertionType = try single("client_assertion_type")
        guard assertionType == Self.jwtBearer else {
            throw refuse(401, "invalid_client", 7_000_216, "client_assertion_type must be \(Self.jwtBearer), not '\(assertionType)'.")
        }
        let assertion = try single("client_assertion")
        guard let current = state.federatedToken, assertion == current.content else {
            throw refuse(
                401, "invalid_client", 70021,
                "No matching federated identity record found for presented assertion. The assertion is not the "
                    + "current content of the federated token file.")
        }
        let now = now()
        guard current.expires > now else {
            throw refuse(
                401, "invalid_client", 700_024,
                "Client assertion is not within its valid time range. Current time: \(DateText.iso8601(Int(now.timeIntervalSince1970))), "
                    + "expiry time of assertion \(DateText.iso8601(Int(current.expires.timeIntervalSince1970))).")
        }
        let scope = try single("scope")
        let scopes = scope.split(separator: " ")
        guard scopes.count == 1 else {
            throw refuse(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. Client credential flows take one scope.")
        }
        guard scope.hasSuffix("/.default"), scope.count > "/.default".count else {
            throw refuse(
                400, "invalid_scope", 1_002_012,
                "The provided value for scope \(scope) is not valid. Client credential flows must have a scope value "
                    + "with /.default suffixed to the resource identifier (application ID URI).")
        }
        let resource = String(scope.dropLast("/.default".count))
        guard Self.isSupportedResource(resource) else { throw unsupportedResource(resource, correlationID: correlationID) }

        switch state.admit(identity: identity.label, resource: resource) {
        case .fail(let status, let retryAfter):
            var response = entraError(
                status: status, error: status == 429 ? "temporarily_unavailable" : "server_error", code: nil,
                description: "Injected fault (\(status)).", correlationID: correlationID)
            if let retryAfter { response.headers.append(("Retry-After", retryAfter)) }
            return response
        case .malformedJSON:
            return EmulatorResponse(status: 200, headers: [("Content-Type", "application/json")], body: "|\"access_token\":\"x\"")
        case .entraError(let code):
            let canned = Self.cannedEntraError(code, clientID: clientID, tenantID: configuration.tenantID)
            return entraError(status: canned.status, error: canned.error, code: code, description: canned.description, correlationID: correlationID)
        case nil:
            let next = state.nextToken()
            let issuedAt = Int(now.timeIntervalSince1970)
            let claims = TokenClaims(
                audience: resource, identity: identity.label, appID: identity.clientID, objectID: identity.objectID,
                source: configuration.source.rawValue, serial: next.serial, issuedAt: issuedAt,
                expiresAt: issuedAt + next.lifetime)
            state.recordIssued(claims)
            var fields: [(String, Any)] = [
                ("token_type", "Bearer"), ("expires_in", next.lifetime), ("ext_expires_in", next.lifetime),
            ]
            if let refreshIn = next.refreshIn { fields.append(("refresh_in", refreshIn)) }
            fields.append(("access_token", claims.token))
            var headers = [("Content-Type", "application/json; charset=utf-8")]
            if request.header("return-client-request-id") == "true" { headers.append(("client-request-id", correlationID)) }
            return EmulatorResponse(status: 200, headers: headers, body: JSONText.object(fields))
        }
    }

    /// Entra echoes the caller's `client-request-id` as its correlation id, when it is a GUID.
    static func correlationID(of request: EmulatorRequest) -> String {
        if let sent = request.header("client-request-id"), UUID(uuidString: sent) != nil { return sent.lowercased() }
        return UUID().uuidString.lowercased()
    }

    /// Entra's error body: the code in `error_codes` and at the head of the description, which ends
    /// with the trace and correlation ids and a timestamp, as Entra writes it.
    func entraError(status: Int, error: String, code: Int?, description: String, correlationID: String) -> EmulatorResponse {
        let traceID = UUID().uuidString.lowercased()
        let timestamp = DateText.iso8601(Int(now().timeIntervalSince1970))
        let text = (code.map { "AADSTS\($0): " } ?? "") + description
            + " Trace ID: \(traceID) Correlation ID: \(correlationID) Timestamp: \(timestamp)"
        let body = JSONText.object([
            ("error", error), ("error_description", text), ("error_codes", code.map { [$0] } ?? [Int]()),
            ("timestamp", timestamp), ("trace_id", traceID), ("correlation_id", correlationID),
        ])
        return EmulatorResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: body)
    }

    /// What Entra answers for the common workload identity failures, to inject them.
    static func cannedEntraError(_ code: Int, clientID: String, tenantID: String) -> (status: Int, error: String, description: String) {
        switch code {
        case 70021:
            return (400, "invalid_request", "No matching federated identity record found for presented assertion.")
        case 700211:
            return (400, "invalid_request", "No matching federated identity record found for presented assertion issuer 'https://oidc.emulator.invalid/'.")
        case 700212:
            return (400, "invalid_request", "No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchange'.")
        case 700213:
            return (
                400, "invalid_client",
                "No matching federated identity record found for presented assertion subject 'system:serviceaccount:default:workload-identity-sa'. "
                    + "Check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            )
        case 700024:
            return (400, "invalid_client", "Client assertion is not within its valid time range.")
        case 90061:
            return (400, "invalid_request", "Request to External OIDC endpoint failed.")
        case 700016:
            return (400, "unauthorized_client", "Application with identifier '\(clientID)' was not found in the directory '\(tenantID)'.")
        case 50020:
            return (400, "invalid_request", "User account from identity provider does not exist in tenant '\(tenantID)'.")
        default:
            return (400, "invalid_request", "Injected Microsoft Entra error.")
        }
    }
}
