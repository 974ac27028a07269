import Foundation
import NIOSSL

/// Workload identity: `POST {authority}/{tenant}/oauth2/v2.0/token`, a client-credentials form
/// whose client assertion is the projected service-account token (workload identity spec §3).
struct WorkloadIdentityEndpoint: SourceEndpoint {
    static let assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

    /// The token URL: the authority, the tenant, `/oauth2/v2.0/token`. With the client id it names
    /// the partition, so tokens of two tenants, authorities or identities never mix.
    let endpoint: EndpointURL
    let authority: String
    let tenantID: String
    let clientID: String
    let tokenFile: FederatedTokenFile
    /// PEM certificates that replace the system's trust roots for the authority, when configured.
    let trustedCertificatesPEM: [UInt8]?

    var source: ManagedIdentitySource { .workloadIdentity }
    var secrets: [String] { tokenFile.secrets }
    var retryPolicy: RetryPolicy { .entra }
    /// Entra's `expires_in` counts from when it was asked (workload identity spec §4).
    var lifetimeStartsAtRequest: Bool { true }
    /// The capabilities travel as the `claims` parameter (`xms_cc`).
    var sendsClientCapabilities: Bool { true }
    /// Microsoft Entra ID is a remote, shared service: more at once than a host's local endpoint.
    var defaultAdmissionLimits: AdmissionLimits { .remoteService }

    /// The partition is named by the resolved client id, `AZURE_CLIENT_ID` included.
    func partitionIdentity(for requested: ManagedIdentityID) -> ManagedIdentityID { identity }

    /// Entra's error shape: its AADSTS code, trace and correlation ids and a hint; the assertion
    /// redacted from everything, Entra's own text included.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError {
        var failure =
            EntraErrorResponse(body: response.body)?.failure(status: response.status)
            ?? .requestFailed(
                "Microsoft Entra ID answered the workload identity token request with HTTP \(response.status) "
                    + "and a body that is not its error shape: \(ErrorResponseParser.quote(response.body)).",
                source: .workloadIdentity, statusCode: response.status)
        failure.message = failure.message.redacting(secrets)
        return failure
    }

    func unreachable(_ error: HTTPTransportError, sourceWasDetected: Bool) -> ManagedIdentityError {
        ManagedIdentityError(
            code: .unreachableNetwork,
            message: "[Managed Identity] \(error.message) Microsoft Entra ID was tried at \(endpoint.scheme)://\(endpoint.host) (from "
                + "\(ManagedIdentityVariable.authorityHost)); check that the pod can reach it (egress rules, DNS, proxy).",
            source: .workloadIdentity)
    }

    /// Options that only code sets.
    struct Options: Sendable {
        var tokenFileRereadInterval: Duration
        var trustedCertificatesFile: String?
        var clock: any ManagedIdentityClock
    }

    init(
        environment: ManagedIdentityEnvironment, identity: ManagedIdentityID, options: Options
    ) throws(ManagedIdentityError) {
        typealias V = ManagedIdentityVariable
        switch identity {
        case .clientID(let id):
            clientID = id
        case .systemAssigned:
            guard let id = environment.value(V.clientID) else {
                throw ManagedIdentityError(
                    code: .missingEnvironmentVariable,
                    message: "[Managed Identity] Workload identity needs a client id: set \(V.clientID) (the webhook "
                        + "sets it from the service account's azure.workload.identity/client-id annotation) or pass "
                        + ".clientID(...) in code.",
                    source: .workloadIdentity)
            }
            clientID = id
        case .objectID, .resourceID:
            throw SourceResolver.unsupportedIdentity(
                source: .workloadIdentity, code: .invalidIDType,
                reason: "Workload identity names its identity by client id only; a \(identity.kind.displayName) "
                    + "cannot be used. Pass .clientID(...) or set \(V.clientID).")
        }
        let path = try SourceResolver.required(V.federatedTokenFile, in: environment, for: .workloadIdentity)
        tenantID = try SourceResolver.required(V.tenantID, in: environment, for: .workloadIdentity)
        let host = try SourceResolver.required(V.authorityHost, in: environment, for: .workloadIdentity)
        authority = try Self.authority(fromHost: host)
        guard Self.isPathSegment(tenantID) else {
            throw ManagedIdentityError(
                code: .invalidAuthority,
                message: "[Managed Identity] \(V.tenantID) \(SourceResolver.quotedForMessage(tenantID)) is not a tenant "
                    + "id or domain: it may hold only letters, digits, '.', '-' and '_'.",
                source: .workloadIdentity)
        }
        guard let url = EndpointURL(parsing: authority + "/" + tenantID + "/oauth2/v2.0/token") else {
            throw Self.invalidAuthority(host)
        }
        endpoint = url
        tokenFile = FederatedTokenFile(
            path: path, rereadInterval: options.tokenFileRereadInterval, clock: options.clock)
        trustedCertificatesPEM = try options.trustedCertificatesFile.map(Self.readTrustedCertificates)
    }

    /// `AZURE_AUTHORITY_HOST` as a base URL without a trailing `/`: a value without a scheme gets
    /// `https://`; any other scheme, user info, a query or a fragment is refused (Python's rule).
    static func authority(fromHost host: String) throws(ManagedIdentityError) -> String {
        var text = host.trimmingASCIIWhitespace()[...]
        while text.hasSuffix("/") { text = text.dropLast() }
        var authority = String(text)
        if !authority.contains("://") { authority = "https://" + authority }
        guard let url = EndpointURL(parsing: authority), url.scheme == "https", url.query.isEmpty,
            !authority.contains("?")
        else { throw invalidAuthority(host) }
        return authority
    }

    static func invalidAuthority(_ host: String) -> ManagedIdentityError {
        ManagedIdentityError(
            code: .invalidAuthority,
            message: "[Managed Identity] \(SourceResolver.quotedForMessage(host)) is an invalid authority "
                + "(\(ManagedIdentityVariable.authorityHost)). The value must be a TLS protected (https) URL such as "
                + "https://login.microsoftonline.com/.",
            source: .workloadIdentity)
    }

    static func isPathSegment(_ text: String) -> Bool {
        !text.isEmpty && text != "." && text != ".."
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            }
    }

    /// Reads the PEM file of certificates to trust, once, when the client is made.
    static func readTrustedCertificates(atPath path: String) throws(ManagedIdentityError) -> [UInt8] {
        let invalid = { (reason: String) in
            ManagedIdentityError(
                code: .invalidTrustedCertificates,
                message: "[Managed Identity] The certificates to trust for the authority, "
                    + "\(SourceResolver.quotedForMessage(path)), cannot be used: \(reason).",
                source: .workloadIdentity)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw invalid("the file cannot be read") }
        let pem = Array(data)
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(pem), !certificates.isEmpty else {
            throw invalid("it holds no PEM certificate")
        }
        return pem
    }

    /// The identity the partition is named by: always a client id.
    var identity: ManagedIdentityID { .clientID(clientID) }

    /// The `claims` parameter: the caller's claims challenge with the client capabilities merged into
    /// its `access_token` member (`{"access_token":{"xms_cc":{"values":["CP1"]}}}`), as MSAL merges
    /// them. A challenge that is not a JSON object is sent as given, for Entra to refuse in its words.
    static func claims(challenge: String?, capabilities: [String]) -> String? {
        let challenge = challenge.flatMap { $0.isEmpty ? nil : $0 }
        guard !capabilities.isEmpty else { return challenge }
        var object: [String: Any] = [:]
        if let challenge {
            guard let parsed = (try? JSONSerialization.jsonObject(with: Data(challenge.utf8))) as? [String: Any] else {
                return challenge
            }
            object = parsed
        }
        var accessToken = object["access_token"] as? [String: Any] ?? [:]
        accessToken["xms_cc"] = ["values": capabilities]
        object["access_token"] = accessToken
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            return challenge
        }
        return String(decoding: data, as: UTF8.self)
    }

    func makeRequest(_ parameters: TokenRequestParameters) async throws(ManagedIdentityError) -> HTTPTransportRequest {
        let assertion = try await tokenFile.assertion()
        var form = [
            QueryItem(name: "client_assertion", value: assertion.value),
            QueryItem(name: "client_assertion_type", value: Self.assertionType),
            QueryItem(name: "client_id", value: clientID),
            QueryItem(name: "grant_type", value: "client_credentials"),
            QueryItem(name: "scope", value: parameters.resource + "/.default"),
        ]
        if let claims = Self.claims(challenge: parameters.claims, capabilities: parameters.clientCapabilities) {
            form.append(QueryItem(name: "claims", value: claims))
        }
        let body = form.map { PercentEncoding.encode($0.name) + "=" + PercentEncoding.encode($0.value) }
            .joined(separator: "&")
        return HTTPTransportRequest(
            method: "POST", scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port, path: endpoint.path,
            query: [],
            headers: [
                HTTPHeader(name: "Content-Type", value: "application/x-www-form-urlencoded"),
                HTTPHeader(name: "Accept", value: "application/json"),
                // Entra logs it and answers with it, so a failure can be found in its telemetry.
                HTTPHeader(name: "client-request-id", value: parameters.correlationID),
                HTTPHeader(name: "return-client-request-id", value: "true"),
            ],
            body: Array(body.utf8),
            trustedCertificatesPEM: trustedCertificatesPEM,
            timeout: parameters.timeout)
    }
}
