import ManagedIdentity

/// How an emulator plays its source.
public struct EmulatorConfiguration: Sendable {
    /// The source to play; one per emulator.
    public var source: ManagedIdentitySource
    /// The port to bind on 127.0.0.1; 0 picks a free one.
    public var port: Int
    /// The identities the emulated host has.
    public var identities: [EmulatedIdentity]
    /// Where Azure Arc challenges write key files; `nil` is the platform's directory
    /// (`/var/opt/azcmagent/tokens` on Linux), as a real agent uses, so unmodified clients work.
    public var arcKeyDirectory: String?
    /// The secret clients must send (`IDENTITY_HEADER`, `MSI_SECRET`); a random one when `nil`.
    public var secret: String?
    /// The lifetime of issued tokens, in seconds.
    public var tokenLifetime: Int
    /// How `expires_on` is written; each source's real format by default.
    public var expiresOnFormat: ExpiresOnFormat
    /// A `refresh_in` to add to responses, in seconds.
    public var refreshIn: Int?
    /// Workload identity: the tenant the emulated Microsoft Entra ID is; requests naming another are refused.
    public var tenantID: String
    /// Workload identity: where the CA certificate (`ca.pem`) and the federated token file
    /// (`azure-identity-token`) are written. `nil` makes a private temporary directory, removed at stop.
    public var workloadIdentityDirectory: String?
    /// Workload identity: the lifetime of the federated (service-account) tokens it writes, in seconds.
    public var federatedTokenLifetime: Int
    /// Limits to enforce as IMDS does (429 beyond them), or `nil` for none. ``EmulatorThrottle/imds``
    /// plays IMDS's: 5 concurrent requests and 20 per second.
    public var throttle: EmulatorThrottle?
    /// A protected resource to serve over HTTPS beside the token endpoint, or `nil` for none.
    public var protectedResource: ProtectedResource?

    /// The tenant of the emulated Microsoft Entra ID, fixed so a cache survives emulator restarts.
    public static let defaultTenantID = "7e7a7e7a-0000-4000-8000-00000000e17a"

    /// Creates a configuration; only the source is required.
    public init(
        source: ManagedIdentitySource,
        port: Int = 0,
        identities: [EmulatedIdentity] = EmulatedIdentity.defaults,
        arcKeyDirectory: String? = nil,
        secret: String? = nil,
        tokenLifetime: Int = 3600,
        expiresOnFormat: ExpiresOnFormat = .sourceDefault,
        refreshIn: Int? = nil,
        tenantID: String = EmulatorConfiguration.defaultTenantID,
        workloadIdentityDirectory: String? = nil,
        federatedTokenLifetime: Int = 3600,
        throttle: EmulatorThrottle? = nil,
        protectedResource: ProtectedResource? = nil
    ) {
        self.throttle = throttle
        self.protectedResource = protectedResource
        self.source = source
        self.port = port
        self.identities = identities
        self.arcKeyDirectory = arcKeyDirectory
        self.secret = secret
        self.tokenLifetime = tokenLifetime
        self.expiresOnFormat = expiresOnFormat
        self.refreshIn = refreshIn
        self.tenantID = tenantID
        self.workloadIdentityDirectory = workloadIdentityDirectory
        self.federatedTokenLifetime = federatedTokenLifetime
    }

    /// The path each source serves tokens on.
    var tokenPath: String {
        switch source {
        case .imds, .azureArc, .serviceFabric: "/metadata/identity/oauth2/token"
        case .appService, .machineLearning: "/msi/token"
        case .cloudShell: "/oauth2/token"
        case .workloadIdentity: "/\(tenantID)/oauth2/v2.0/token"
        }
    }
}

/// An identity of the emulated host.
public struct EmulatedIdentity: Sendable, Hashable, Codable {
    /// Whether this is the host's system-assigned identity.
    public var isSystemAssigned: Bool
    /// The client (application) id.
    public var clientID: String
    /// The object (principal) id.
    public var objectID: String
    /// The ARM resource id.
    public var resourceID: String

    /// Creates an identity.
    public init(isSystemAssigned: Bool, clientID: String, objectID: String, resourceID: String) {
        self.isSystemAssigned = isSystemAssigned
        self.clientID = clientID
        self.objectID = objectID
        self.resourceID = resourceID
    }

    /// A user-assigned identity with the given client id and derived object and resource ids.
    public static func userAssigned(clientID: String, objectID: String? = nil, resourceID: String? = nil) -> EmulatedIdentity {
        EmulatedIdentity(
            isSystemAssigned: false, clientID: clientID, objectID: objectID ?? "oid-" + clientID,
            resourceID: resourceID
                ?? "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/\(clientID)"
        )
    }

    /// One system-assigned identity and two user-assigned ones, with fixed ids so a cache survives
    /// emulator restarts.
    public static let defaults: [EmulatedIdentity] = [
        EmulatedIdentity(
            isSystemAssigned: true, clientID: "5a5a5a5a-0000-4000-8000-000000000001",
            objectID: "5a5a5a5a-0000-4000-8000-0000000000a1",
            resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.Compute/virtualMachines/emulated-host"),
        EmulatedIdentity(
            isSystemAssigned: false, clientID: "d3adb33f-c0de-ed0c-c0de-deadb33fc0d3",
            objectID: "593b2662-5af7-4a90-a9cb-5a9de615b82f",
            resourceID: "/subscriptions/ffa4aaa2-4444-4444-5555-e3ccedd3d046/resourcegroups/UAMI_group/providers/Microsoft.ManagedIdentityClient/userAssignedIdentities/UAMI"),
        EmulatedIdentity(
            isSystemAssigned: false, clientID: "b0b0b0b0-0000-4000-8000-000000000002",
            objectID: "b0b0b0b0-0000-4000-8000-0000000000b2",
            resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/emulator/providers/Microsoft.ManagedIdentity/userAssignedIdentities/second"),
    ]

    /// A label for counts and token claims: `system` or `client_id:<id>`.
    public var label: String { isSystemAssigned ? "system" : "client_id:" + clientID }
}

/// The ways an emulator writes `expires_on` (spec TV-12).
public enum ExpiresOnFormat: String, Sendable, CaseIterable, Codable {
    /// What the real source sends: epoch strings, and a JSON number on Service Fabric.
    case sourceDefault = "source-default"
    /// `"1795714456"`.
    case epochString = "epoch-string"
    /// `1795714456`.
    case epochNumber = "epoch-number"
    /// `"3600"`: a lifetime written where an instant is expected (read as relative below 2001).
    case relativeSeconds = "relative-seconds"
    /// `"2026-11-26T17:34:16.0000000+00:00"`.
    case iso8601 = "iso8601"
    /// `"11/26/2026 17:34:16 +00:00"`.
    case usDate = "us-date"
    /// `"11/26/2026 5:34:16 PM +00:00"`.
    case usDateWithMeridiem = "us-date-ampm"
    /// No `expires_on`; only `expires_in`.
    case expiresInOnly = "expires-in-only"
}
