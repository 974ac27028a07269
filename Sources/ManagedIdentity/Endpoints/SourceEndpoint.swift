/// What one token request asks for, as the request builders see it.
struct TokenRequestParameters: Sendable {
    var resource: String
    var identity: ManagedIdentityID
    /// Sent as `x-ms-client-request-id` where the source takes it (IMDS).
    var correlationID: String
    /// Sent as `xms_cc` to Service Fabric only.
    var clientCapabilities: [String]
    /// SHA-256 of the cached token being replaced because of claims; sent to Service Fabric only.
    var revokedTokenHash: String?
    /// A claims challenge; sent by workload identity only (managed identity endpoints take none).
    var claims: String? = nil
    var timeout: Duration
}

/// One managed identity source, resolved from the environment: it knows its endpoint and its
/// secrets and builds the exact request the service expects.
///
/// What differs between sources beyond the request is a requirement with a default (in
/// `SourceEndpoint+Defaults.swift`), as Hummingbird's `PersistDriver.getWithTTL` is: a source opts in
/// by implementing it, and the generic acquirer never asks which source it has. Adding a source
/// edits that source's files only.
protocol SourceEndpoint: Sendable {
    var source: ManagedIdentitySource { get }
    /// The endpoint URL, part of the cache partition key.
    var endpoint: EndpointURL { get }
    /// Values that must never appear in a message, even when an endpoint echoes them back.
    var secrets: [String] { get }
    var retryPolicy: RetryPolicy { get }
    /// Builds the request; the identity was checked against the source when the endpoint was resolved.
    /// Only workload identity suspends or throws here (it reads its token file).
    func makeRequest(_ parameters: TokenRequestParameters) async throws(ManagedIdentityError) -> HTTPTransportRequest
    /// The identity that names the partition: the one asked for, except where the source resolves it
    /// (workload identity's client id from `AZURE_CLIENT_ID`).
    func partitionIdentity(for requested: ManagedIdentityID) -> ManagedIdentityID

    /// The request that must follow `response` when the source's protocol has a second leg (Azure
    /// Arc's challenge), or `nil` when `response` is the answer.
    func followUp(after response: HTTPTransportResponse, parameters: TokenRequestParameters) async throws(ManagedIdentityError)
        -> HTTPTransportRequest?
    /// Checks a successful answer before it becomes a token (Azure Arc must name the identity asked for).
    func verify(_ fields: TokenResponseFields, for identity: ManagedIdentityID) throws(ManagedIdentityError)
    /// The error of a final response that is not 200, its message built from the body.
    func failure(from response: HTTPTransportResponse) -> ManagedIdentityError
    /// The error when no response came; `sourceWasDetected` tells whether the environment chose the source.
    func unreachable(_ error: HTTPTransportError, sourceWasDetected: Bool) -> ManagedIdentityError
    /// Whether `expires_in` counts from when the request was sent (Microsoft Entra ID) rather than from the answer.
    var lifetimeStartsAtRequest: Bool { get }
    /// Whether the client capabilities are sent, and so name the partition too.
    var sendsClientCapabilities: Bool { get }
    /// How many requests may be in flight to this endpoint, and how many may start per second, when
    /// the configuration does not say.
    var defaultAdmissionLimits: AdmissionLimits { get }
}

/// A secret read from the environment. Its description is redacted, so interpolating it by
/// mistake cannot leak it.
struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String
    init(_ value: String) { self.value = value }
    var description: String { "<redacted>" }
    var debugDescription: String { "<redacted>" }
}

/// How to resolve sources; options that do not come from the environment.
struct SourceResolutionOptions: Sendable {
    var serviceFabricAPIVersion: ServiceFabricAPIVersion = .v2020_05_01
    var arcKeyDirectory: String?
    var workloadIdentity = WorkloadIdentityOptions()
    var clock: any ManagedIdentityClock = SystemClock()
}

enum SourceResolver {
    /// Turns a source and the environment into a request builder, validating every variable the
    /// source reads and the identity kind it accepts, so configuration errors surface before any request.
    static func resolve(
        _ source: ManagedIdentitySource,
        identity: ManagedIdentityID,
        environment: ManagedIdentityEnvironment,
        options: SourceResolutionOptions
    ) throws(ManagedIdentityError) -> any SourceEndpoint {
        try identity.validate()
        switch source {
        case .imds:
            return try IMDSEndpoint(environment: environment)
        case .appService:
            return try AppServiceEndpoint(environment: environment)
        case .machineLearning:
            return try MachineLearningEndpoint(environment: environment, identity: identity)
        case .cloudShell:
            return try CloudShellEndpoint(environment: environment, identity: identity)
        case .azureArc:
            return try AzureArcEndpoint(environment: environment, keyDirectory: options.arcKeyDirectory)
        case .serviceFabric:
            return try ServiceFabricEndpoint(
                environment: environment, identity: identity, apiVersion: options.serviceFabricAPIVersion)
        case .workloadIdentity:
            return try WorkloadIdentityEndpoint(
                environment: environment, identity: identity,
                options: WorkloadIdentityEndpoint.Options(
                    tokenFileRereadInterval: options.workloadIdentity.tokenFileRereadInterval,
                    trustedCertificatesFile: options.workloadIdentity.trustedCertificatesFile, clock: options.clock))
        }
    }

    /// Reads a required variable, or explains which one is missing.
    static func required(
        _ name: String, in environment: ManagedIdentityEnvironment, for source: ManagedIdentitySource
    ) throws(ManagedIdentityError) -> String {
        guard let value = environment.value(name) else {
            throw ManagedIdentityError(
                code: .missingEnvironmentVariable,
                message: "[Managed Identity] The \(source.msalName) managed identity source needs the environment "
                    + "variable \(name), which is not set. It needs: \(source.variables.joined(separator: ", ")).",
                source: source
            )
        }
        return value
    }

    /// Parses an endpoint variable, with MSAL.NET's error when it is not an absolute URL.
    static func endpointURL(
        _ name: String, in environment: ManagedIdentityEnvironment, for source: ManagedIdentitySource,
        sourceDisplayName: String
    ) throws(ManagedIdentityError) -> EndpointURL {
        let value = try required(name, in: environment, for: source)
        guard let url = EndpointURL(parsing: value) else {
            throw ManagedIdentityError(
                code: .invalidEndpoint,
                message: "[Managed Identity] The environment variable \(name) contains an invalid Uri "
                    + "\(quotedForMessage(value)) in \(sourceDisplayName) managed identity source. "
                    + "It must be an absolute http or https URL such as http://127.0.0.1:41564/msi/token.",
                source: source
            )
        }
        return url
    }

    /// A variable's value shown in an error: shortened and stripped of control characters, since it
    /// came from outside.
    static func quotedForMessage(_ value: String) -> String {
        let cleaned = String(String.UnicodeScalarView(value.unicodeScalars.map { $0.value < 0x20 ? "?" : $0 }))
        return "'" + (cleaned.count > 200 ? cleaned.prefix(200) + "..." : cleaned) + "'"
    }

    static func unsupportedIdentity(
        source: ManagedIdentitySource, code: ManagedIdentityError.Code, reason: String
    ) -> ManagedIdentityError {
        ManagedIdentityError(code: code, message: "[Managed Identity] " + reason, source: source)
    }
}

/// The Service Fabric api-versions this library speaks.
public enum ServiceFabricAPIVersion: String, Sendable, CaseIterable {
    /// The version MSAL.NET sends (the default).
    case v2020_05_01 = "2020-05-01"
    /// The version MSAL Python and Go send, for clusters that only know it.
    case v2019_07_01_preview = "2019-07-01-preview"
}

extension ManagedIdentityID {
    /// The user-assigned selector as most sources spell it; `resourceIDName` is the one that differs.
    func selector(resourceIDName: String) -> QueryItem? {
        switch self {
        case .systemAssigned: nil
        case .clientID(let id): QueryItem(name: "client_id", value: id)
        case .resourceID(let id): QueryItem(name: resourceIDName, value: id)
        case .objectID(let id): QueryItem(name: "object_id", value: id)
        }
    }
}
