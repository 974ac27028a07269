import ManagedIdentityTesting
import Foundation
import ManagedIdentity

/// A request as the handler sees it, independent of the HTTP server.
struct EmulatorRequest: Sendable {
    var method: String
    var path: String
    /// Decoded query parameters, in order.
    var query: [(name: String, value: String)]
    /// Header names lower-cased.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.name == lowered }?.value
    }

    func values(_ name: String) -> [String] {
        query.filter { $0.name == name }.map(\.value)
    }
}

/// A response, independent of the HTTP server.
struct EmulatorResponse: Sendable {
    var status: Int
    var headers: [(name: String, value: String)] = []
    var body: String
}

/// Plays one source strictly: every request the real service would refuse gets that service's error
/// response and is recorded as a violation; everything Microsoft's clients send is accepted.
struct EmulatorRequestHandler: Sendable {
    let configuration: EmulatorConfiguration
    let state: EmulatorState
    let secret: String
    let arcKeyDirectory: String?
    let now: @Sendable () -> Date
    /// Workload identity: writes a new federated token file (the `rotate` control endpoint).
    var rotateFederatedToken: (@Sendable () throws -> Void)? = nil

    /// Every parameter name any source uses to select a user-assigned identity.
    static let identityParameterNames: Set<String> = [
        "client_id", "clientid", "object_id", "principal_id", "principalId", "msi_res_id", "mi_res_id",
    ]

    enum IdentityField { case clientID, objectID, resourceID }

    /// The selector names a source accepts, and what they select by.
    var acceptedIdentityParameters: [String: IdentityField] {
        switch configuration.source {
        case .imds: ["client_id": .clientID, "object_id": .objectID, "msi_res_id": .resourceID, "mi_res_id": .resourceID]
        case .appService: ["client_id": .clientID, "object_id": .objectID, "principal_id": .objectID, "mi_res_id": .resourceID]
        // MSAL Python sends object_id and msi_res_id here; the service's answer to them is not known, so accept.
        case .machineLearning: ["clientid": .clientID, "object_id": .objectID, "msi_res_id": .resourceID]
        case .cloudShell: [:]
        // The agent ignores mi_res_id: a client sending it would silently get the system identity's token.
        case .azureArc: ["client_id": .clientID, "object_id": .objectID, "msi_res_id": .resourceID]
        case .serviceFabric: ["principalId": .objectID]
        case .workloadIdentity: [:]
        }
    }

    var acceptedAPIVersions: Set<String> {
        switch configuration.source {
        case .imds: ["2018-02-01", "2019-03-11", "2019-06-01", "2019-08-01", "2019-11-01", "2020-06-01", "2021-02-01"]
        case .appService: ["2019-08-01", "2025-03-30"]
        case .machineLearning: ["2017-09-01"]
        case .cloudShell: []
        case .azureArc: ["2019-11-01", "2020-06-01"]
        case .serviceFabric: ["2019-07-01-preview", "2020-05-01"]
        case .workloadIdentity: []
        }
    }

    func handle(_ request: EmulatorRequest) async -> EmulatorResponse {
        state.countRequest()
        let delay = state.delay
        if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
        do {
            return try respond(to: request)
        } catch let refusal as Refusal {
            if refusal.isViolation {
                state.recordViolation(EmulatorViolation(reason: refusal.reason, method: request.method, path: request.path))
            }
            return refusal.response
        } catch {
            return EmulatorResponse(status: 500, body: #"{"error":"emulator_error"}"#)
        }
    }

    /// A refused request: the response the real service gives, and whether the client broke the protocol.
    struct Refusal: Error {
        var response: EmulatorResponse
        var reason: String
        var isViolation: Bool
    }

    private func respond(to request: EmulatorRequest) throws -> EmulatorResponse {
        if configuration.source == .workloadIdentity { return try respondAsEntra(to: request) }
        guard request.path == configuration.tokenPath else {
            throw violation(404, code: "not_found", "No managed identity endpoint at \(request.path); the token path is \(configuration.tokenPath).")
        }
        let expectedMethod = configuration.source == .cloudShell ? "POST" : "GET"
        guard request.method == expectedMethod else {
            throw violation(405, code: "method_not_allowed", "\(configuration.source) expects \(expectedMethod), not \(request.method).")
        }
        try checkCredentials(request)

        var parameters = request.query
        if configuration.source == .cloudShell {
            guard let body = String(validating: request.body, as: UTF8.self), let form = FormDecoding.decode(body) else {
                throw violation(400, code: "invalid_request", "Cloud Shell expects a form body resource=<resource>.")
            }
            parameters += form
        }
        func single(_ name: String) throws -> String? {
            let values = parameters.filter { $0.name == name }.map(\.value)
            guard values.count <= 1 else { throw violation(400, code: "invalid_request", "\(name) is given more than once.") }
            return values.first
        }

        if !acceptedAPIVersions.isEmpty {
            guard let version = try single("api-version") else {
                throw violation(400, code: "invalid_request", "Required api-version parameter not specified.")
            }
            guard acceptedAPIVersions.contains(version) else {
                throw violation(
                    400, code: "invalid_request",
                    "api-version \(version) is not supported by \(configuration.source); use one of "
                        + acceptedAPIVersions.sorted().joined(separator: ", ") + ".")
            }
        }
        guard let resource = try single("resource"), !resource.isEmpty else {
            throw violation(400, code: "invalid_request", "Required audience parameter not specified.")
        }
        guard Self.isSupportedResource(resource) else { throw unsupportedResource(resource, correlationID: UUID().uuidString.lowercased()) }

        let selectors = parameters.filter { Self.identityParameterNames.contains($0.name) }
        for selector in selectors where acceptedIdentityParameters[selector.name] == nil {
            if configuration.source == .cloudShell {
                throw violation(400, code: "invalid_request", "Cloud Shell does not support user-assigned managed identities.")
            }
            throw violation(
                400, code: "invalid_request",
                "\(selector.name) is not an identity parameter of \(configuration.source); it takes "
                    + acceptedIdentityParameters.keys.sorted().joined(separator: ", ") + ".")
        }
        guard selectors.count <= 1 else {
            throw violation(400, code: "invalid_request", "More than one identity selector was given.")
        }
        let identity = try resolveIdentity(selectors.first, request: request)

        if configuration.source == .azureArc {
            if let response = try arcChallenge(request) { return response }
        }

        switch state.admit(identity: identity.label, resource: resource) {
        case .fail(let status, let retryAfter):
            var response = errorResponse(status: status, code: "injected_fault", message: "Injected fault (\(status)).")
            if let retryAfter { response.headers.append(("Retry-After", retryAfter)) }
            return response
        case .malformedJSON:
            return EmulatorResponse(status: 200, headers: [("Content-Type", "application/json")], body: "|\"access_token\":\"x\"")
        case .entraError:
            // Only workload identity's Entra answers with AADSTS codes; elsewhere the fault is a plain 400.
            return errorResponse(status: 400, code: "invalid_request", message: "Injected fault (400).")
        case nil:
            return issue(for: identity, resource: resource, selector: selectors.first?.name)
        }
    }

    private func checkCredentials(_ request: EmulatorRequest) throws {
        switch configuration.source {
        case .imds, .azureArc, .cloudShell:
            guard request.header("Metadata")?.lowercased() == "true" else {
                throw violation(400, code: "invalid_request", "Required metadata header not specified")
            }
        case .appService:
            guard request.header("X-IDENTITY-HEADER") == secret else {
                throw violation(401, code: "unauthorized", "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER.")
            }
        case .machineLearning:
            guard request.header("secret") == secret else {
                throw violation(401, code: "unauthorized", "The secret header is missing or does not match MSI_SECRET.")
            }
        case .serviceFabric:
            guard request.header("secret") == secret else {
                throw violation(401, code: "SecretHeaderNotFound", "Secret is not found in the request headers.")
            }
        case .workloadIdentity:
            break  // The assertion is the credential; respondAsEntra checks it.
        }
    }

    private func resolveIdentity(_ selector: (name: String, value: String)?, request: EmulatorRequest) throws -> EmulatedIdentity {
        guard let selector else {
            guard let system = configuration.identities.first(where: \.isSystemAssigned) else {
                throw notFound("No system-assigned managed identity is enabled on this host.")
            }
            return system
        }
        let field = acceptedIdentityParameters[selector.name] ?? .clientID
        let wanted = selector.value.lowercased()
        let match = configuration.identities.first { identity in
            switch field {
            case .clientID: identity.clientID.lowercased() == wanted
            case .objectID: identity.objectID.lowercased() == wanted
            case .resourceID: identity.resourceID.lowercased() == wanted
            }
        }
        // Machine Learning names its system-assigned identity by client id (DEFAULT_IDENTITY_CLIENT_ID).
        guard let match, match.isSystemAssigned == false || configuration.source == .machineLearning else {
            throw notFound("Identity not found")
        }
        return match
    }

    /// A resource the real services can issue for: an absolute URI (`https://vault.azure.net`,
    /// `api://app`) or an application id; not a bare host name, not a scope, no spaces.
    static func isSupportedResource(_ resource: String) -> Bool {
        if UUID(uuidString: resource) != nil { return true }
        guard let schemeEnd = resource.range(of: "://"), !resource[..<schemeEnd.lowerBound].isEmpty,
            resource[schemeEnd.upperBound...].first.map({ $0 != "/" }) == true
        else { return false }
        return !resource.contains(" ") && !resource.contains("/.default")
    }

    /// What each service answers for a resource it cannot issue for (protocol spec §6.1): App Service
    /// its 500, Cloud Shell its `AudienceNotSupported`, the others Entra's AADSTS500011. The caller
    /// sent a wrong value, not a wrong request: no violation.
    func unsupportedResource(_ resource: String, correlationID: String) -> Refusal {
        let response: EmulatorResponse
        let aadsts500011 = "AADSTS500011: The resource principal named \(resource) was not found in the tenant named emulator. "
            + "This can happen if the application has not been installed by the administrator of the tenant or consented "
            + "to by any user in the tenant."
        switch configuration.source {
        case .appService:
            response = EmulatorResponse(
                status: 500, headers: [("Content-Type", "application/json")],
                body: JSONText.object([
                    ("statusCode", 500), ("message", "An unexpected error occured while fetching the AAD Token."),
                    ("correlationId", correlationID),
                ]))
        case .cloudShell:
            response = errorResponse(
                status: 400, code: "AudienceNotSupported",
                message: "Audience scope is not a supported MSI token audience.Supported audiences: https://management.azure.com/")
        case .workloadIdentity:
            response = entraError(
                status: 400, error: "invalid_resource", code: 500_011,
                description: "The resource principal named \(resource) was not found in the tenant named \(configuration.tenantID).",
                correlationID: correlationID)
        case .imds, .azureArc, .machineLearning, .serviceFabric:
            response = EmulatorResponse(
                status: 400, headers: [("Content-Type", "application/json")],
                body: JSONText.object([
                    ("error", "invalid_resource"), ("error_description", aadsts500011), ("error_codes", [500_011]),
                    ("correlation_id", correlationID),
                ]))
        }
        return Refusal(response: response, reason: "unsupported resource", isViolation: false)
    }

    private func notFound(_ message: String) -> Refusal {
        Refusal(response: errorResponse(status: 400, code: "invalid_request", message: message), reason: message, isViolation: false)
    }

    // MARK: Azure Arc

    /// The first leg gets a challenge and a new key file; the second must carry a key the emulator wrote.
    private func arcChallenge(_ request: EmulatorRequest) throws -> EmulatorResponse? {
        guard let authorization = request.header("Authorization") else {
            guard let directory = arcKeyDirectory else {
                throw violation(500, code: "internal_error", "No key directory is configured.")
            }
            let key = ArcKeyFiles.randomKey()
            let path = try ArcKeyFiles.write(key: key, in: directory)
            state.addArcKey(key, path: path, expires: now().addingTimeInterval(300))
            state.countChallenge()
            return EmulatorResponse(status: 401, headers: [("WWW-Authenticate", "Basic realm=\(path)")], body: "")
        }
        let prefix = "Basic "
        guard authorization.hasPrefix(prefix), state.isValidArcKey(String(authorization.dropFirst(prefix.count)), now: now()) else {
            throw violation(401, code: "unauthorized", "The Authorization header does not carry a key this agent issued.")
        }
        return nil
    }

    // MARK: Responses

    private func issue(for identity: EmulatedIdentity, resource: String, selector: String?) -> EmulatorResponse {
        let next = state.nextToken()
        let issuedAt = Int(now().timeIntervalSince1970)
        let expiresAt = issuedAt + next.lifetime
        let claims = TokenClaims(
            audience: resource, identity: identity.label, appID: identity.clientID, objectID: identity.objectID,
            source: configuration.source.rawValue, serial: next.serial, issuedAt: issuedAt, expiresAt: expiresAt)
        state.recordIssued(claims)
        var fields: [(String, Any)] = [("access_token", claims.token), ("resource", resource), ("token_type", "Bearer")]

        let defaultsToExpiresIn = [.imds, .azureArc, .cloudShell].contains(configuration.source)
        switch next.format {
        case .sourceDefault:
            fields.append(("expires_on", configuration.source == .serviceFabric ? expiresAt as Any : String(expiresAt)))
        case .epochString: fields.append(("expires_on", String(expiresAt)))
        case .epochNumber: fields.append(("expires_on", expiresAt))
        case .relativeSeconds: fields.append(("expires_on", String(next.lifetime)))
        case .iso8601: fields.append(("expires_on", DateText.iso8601(expiresAt)))
        case .usDate: fields.append(("expires_on", DateText.usDate(expiresAt, meridiem: false)))
        case .usDateWithMeridiem: fields.append(("expires_on", DateText.usDate(expiresAt, meridiem: true)))
        case .expiresInOnly: break
        }
        if defaultsToExpiresIn || next.format == .expiresInOnly {
            fields.append(("expires_in", String(next.lifetime)))
        }
        if [.imds, .azureArc, .cloudShell].contains(configuration.source) {
            fields.append(("ext_expires_in", String(next.lifetime)))
            fields.append(("not_before", String(issuedAt)))
        }
        if let refreshIn = next.refreshIn { fields.append(("refresh_in", refreshIn)) }
        if configuration.source != .serviceFabric && configuration.source != .cloudShell {
            fields.append(("client_id", identity.clientID))
        }
        if configuration.source == .azureArc, !identity.isSystemAssigned {
            // The 2026 agent confirms which user-assigned identity it used.
            fields.append(("object_id", identity.objectID))
            if selector == "msi_res_id" { fields.append(("msi_res_id", identity.resourceID)) }
        }
        return EmulatorResponse(status: 200, headers: [("Content-Type", "application/json")], body: JSONText.object(fields))
    }

    private func violation(_ status: Int, code: String, _ message: String) -> Refusal {
        Refusal(response: errorResponse(status: status, code: code, message: message), reason: message, isViolation: true)
    }

    /// An error body in the source's own shape (spec §6.1).
    func errorResponse(status: Int, code: String, message: String) -> EmulatorResponse {
        let correlationID = UUID().uuidString.lowercased()
        let body: String
        switch configuration.source {
        case .appService:
            body = JSONText.object([("statusCode", status), ("message", message), ("correlationId", correlationID)])
        case .cloudShell:
            body = #"{"error":"# + JSONText.object([("code", code), ("message", message)]) + "}"
        case .serviceFabric:
            body = #"{"error":"# + JSONText.object([("correlationId", correlationID), ("code", code), ("message", message)]) + "}"
        case .imds, .azureArc, .machineLearning:
            body = JSONText.object([("error", code), ("error_description", message), ("correlation_id", correlationID)])
        case .workloadIdentity:
            return entraError(status: status, error: code, code: nil, description: message, correlationID: correlationID)
        }
        return EmulatorResponse(status: status, headers: [("Content-Type", "application/json")], body: body)
    }
}
