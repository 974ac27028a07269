/// Microsoft Entra ID's error body, as its token endpoint answers a refused workload identity
/// exchange: `{"error","error_description","error_codes":[700213],"trace_id","correlation_id"}`.
/// The error built from it carries the AADSTS codes, both ids and a hint for the common codes.
struct EntraErrorResponse: Equatable, Sendable {
    var error: String?
    var description: String?
    var codes: [Int]
    var traceID: String?
    var correlationID: String?

    /// Reads the fields; `nil` when the body is not a JSON object with any of them.
    init?(body: [UInt8]) {
        guard let object = JSONValue.parse(body)?.objectValue else { return nil }
        error = object["error"]?.stringValue
        description = object["error_description"]?.stringValue
        if case .array(let values)? = object["error_codes"] {
            codes = values.compactMap { value in
                guard case .number(let number) = value, number.isFinite, number >= 0, number < 1e9,
                    number == number.rounded()
                else { return nil }
                return Int(number)
            }
        } else {
            codes = []
        }
        traceID = object["trace_id"]?.stringValue
        correlationID = object["correlation_id"]?.stringValue
        if error == nil, description == nil, codes.isEmpty { return nil }
    }

    /// What to do about the common codes, in a sentence (from the field guide in the workload
    /// identity spec, §4).
    static func hint(for code: Int) -> String? {
        typealias V = ManagedIdentityVariable
        switch code {
        case 70021:
            return "No federated identity credential of the identity matches the token's issuer, subject and "
                + "audience; compare them with the credential (a trailing '/' in the issuer is the usual cause)."
        case 700211:
            return "The federated credential's issuer must be the cluster's OIDC issuer URL exactly, trailing '/' included."
        case 700212:
            return "The federated credential's audience must be api://AzureADTokenExchange, the audience of the projected token."
        case 700213:
            return "The federated credential's subject must be system:serviceaccount:<namespace>:<service account> "
                + "of this pod's service account."
        case 700024:
            return "The service-account token in \(V.federatedTokenFile) is outside its validity window: the file is "
                + "stale (is the kubelet rotating it?) or this host's clock is wrong."
        case 90061:
            return "Microsoft Entra ID could not fetch the cluster's OIDC discovery document; check that the "
                + "cluster's OIDC issuer is enabled and reachable from the internet."
        case 700016:
            return "No application with this client id exists in the tenant; check \(V.clientID) (or the client id "
                + "given in code) and \(V.tenantID)."
        case 50020, 90002:
            return "The tenant is wrong for this identity; check \(V.tenantID)."
        case 500011:
            return resourceHint
        case 1002012, 70011:
            return "Ask for one resource, such as https://management.azure.com, or one scope ending in /.default."
        default:
            return nil
        }
    }

    /// What to do when a service cannot issue for the resource: MSAL.NET's troubleshooting names
    /// an unsupported or malformed resource as a common failure.
    static let resourceHint =
        "The resource may be unsupported or in the wrong form: pass an application ID URI such as "
        + "https://management.azure.com or https://graph.microsoft.com, or a scope such as https://management.azure.com/.default."

    /// Whether an endpoint's error body says the resource is the problem: Entra's AADSTS500011 (passed
    /// through by IMDS, Arc and Service Fabric), Cloud Shell's `AudienceNotSupported`, or App Service's
    /// 500 "An unexpected error occured while fetching the AAD Token" (its answer to a bad resource).
    static func blamesResource(_ body: [UInt8], status: Int, source: ManagedIdentitySource) -> Bool {
        let text = String(decoding: body.prefix(ErrorResponseParser.maximumQuotedBody * 4), as: UTF8.self)
        if text.contains("AADSTS500011") || text.contains("\"invalid_resource\"") || text.contains("AudienceNotSupported") {
            return true
        }
        return source == .appService && status == 500 && text.contains("while fetching the AAD Token")
    }

    /// The error for a refused exchange, with Entra's own words, codes, ids and a hint. Control
    /// characters in Entra's text are replaced: it came over the network.
    func failure(status: Int) -> ManagedIdentityError {
        var message = "[Managed Identity] Microsoft Entra ID refused the workload identity token request (HTTP \(status))"
        if let error { message += ": " + Self.clean(error) }
        if let description { message += ": " + Self.clean(description) }
        if !message.hasSuffix(".") { message += "." }
        if !codes.isEmpty, !(description ?? "").contains("AADSTS") {
            message += " Codes: " + codes.map { "AADSTS\($0)" }.joined(separator: ", ") + "."
        }
        // Entra's description usually ends with both ids already; they are added only when it does not.
        let described = description ?? ""
        if let traceID, !described.contains(traceID) { message += " Trace ID: \(Self.clean(traceID))." }
        if let correlationID, !described.contains(correlationID) { message += " Correlation ID: \(Self.clean(correlationID))." }
        if let hint = codes.lazy.compactMap(Self.hint).first { message += " " + hint }
        var failure = ManagedIdentityError(
            code: .requestFailed, message: message, source: .workloadIdentity, statusCode: status,
            correlationID: correlationID)
        failure.entraErrorCodes = codes
        failure.traceID = traceID
        return failure
    }

    static func clean(_ text: String) -> String {
        let limit = ErrorResponseParser.maximumQuotedBody
        let limited = text.count > limit ? String(text.prefix(limit)) + "..." : text
        return String(String.UnicodeScalarView(limited.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
    }
}
