import Foundation

/// A snapshot of what source detection reads: the process environment and whether the Azure Arc
/// agent is installed.
///
/// Detection is a pure function of this value, so it is cheap, can be re-run, and tests can build
/// any environment without touching the process's own.
public struct ManagedIdentityEnvironment: Sendable {
    /// The environment variables.
    public var variables: [String: String]
    /// Whether the Azure Arc agent binary (`/opt/azcmagent/bin/himds` on Linux) exists.
    public var arcAgentInstalled: Bool

    /// Creates an environment from explicit values.
    public init(variables: [String: String], arcAgentInstalled: Bool = false) {
        self.variables = variables
        self.arcAgentInstalled = arcAgentInstalled
    }

    /// The process's environment, and the Arc agent's presence on this machine.
    public static var current: ManagedIdentityEnvironment {
        ManagedIdentityEnvironment(
            variables: ProcessInfo.processInfo.environment,
            arcAgentInstalled: FileManager.default.fileExists(atPath: Self.arcAgentBinaryPath)
        )
    }

    /// Where the Azure Arc Connected Machine agent installs its metadata service binary.
    public static var arcAgentBinaryPath: String {
        #if os(Windows)
        let programFiles = ProcessInfo.processInfo.environment["ProgramFiles"] ?? "C:\\Program Files"
        return programFiles + "\\AzureConnectedMachineAgent\\himds.exe"
        #else
        return "/opt/azcmagent/bin/himds"
        #endif
    }

    /// A variable's value when it is set and not empty; MSAL.NET treats an empty value as unset.
    func value(_ name: String) -> String? {
        guard let value = variables[name], !value.isEmpty else { return nil }
        return value
    }
}

/// The names of the environment variables managed identity sources set.
public enum ManagedIdentityVariable {
    /// App Service, Service Fabric and Azure Arc endpoint.
    public static let identityEndpoint = "IDENTITY_ENDPOINT"
    /// App Service and Service Fabric secret.
    public static let identityHeader = "IDENTITY_HEADER"
    /// Service Fabric certificate thumbprint.
    public static let identityServerThumbprint = "IDENTITY_SERVER_THUMBPRINT"
    /// Set by Azure Arc beside `IDENTITY_ENDPOINT`.
    public static let imdsEndpoint = "IMDS_ENDPOINT"
    /// Cloud Shell endpoint, or Machine Learning endpoint with `MSI_SECRET`.
    public static let msiEndpoint = "MSI_ENDPOINT"
    /// Machine Learning secret.
    public static let msiSecret = "MSI_SECRET"
    /// Machine Learning: the client id of the system-assigned identity.
    public static let defaultIdentityClientID = "DEFAULT_IDENTITY_CLIENT_ID"
    /// Replaces the scheme, host and port of IMDS.
    public static let podIdentityAuthorityHost = "AZURE_POD_IDENTITY_AUTHORITY_HOST"
    /// Workload identity: the file the Kubernetes webhook projects the service-account token into.
    public static let federatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
    /// Workload identity: the Microsoft Entra tenant.
    public static let tenantID = "AZURE_TENANT_ID"
    /// Workload identity: the Microsoft Entra authority (`https://login.microsoftonline.com/`).
    public static let authorityHost = "AZURE_AUTHORITY_HOST"
    /// Workload identity: the client id of the identity, when code does not name one.
    public static let clientID = "AZURE_CLIENT_ID"

    /// Every variable detection looks at, in the order it looks.
    public static let all = [
        identityEndpoint, identityHeader, identityServerThumbprint, msiEndpoint, msiSecret,
        imdsEndpoint, federatedTokenFile, tenantID, authorityHost, defaultIdentityClientID, podIdentityAuthorityHost,
    ]
}

extension ManagedIdentitySource {
    /// Detects the source a host offers from its environment, with MSAL.NET's precedence:
    /// Service Fabric, App Service, Machine Learning, Cloud Shell, Azure Arc (by its variables), then
    /// workload identity (Python's rule: all of `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_TENANT_ID` and
    /// `AZURE_AUTHORITY_HOST`, and no endpoint variable), then Azure Arc by its installed agent, then IMDS.
    ///
    /// Workload identity's variables come before the agent's binary: they are set for this process by
    /// the Kubernetes webhook, while the binary only says what is installed on the machine.
    ///
    /// Only presence is checked here; the values are validated when a client is created.
    public static func detect(in environment: ManagedIdentityEnvironment = .current) -> ManagedIdentitySource {
        typealias V = ManagedIdentityVariable
        if environment.value(V.identityEndpoint) != nil, environment.value(V.identityHeader) != nil {
            return environment.value(V.identityServerThumbprint) != nil ? .serviceFabric : .appService
        }
        if environment.value(V.msiEndpoint) != nil {
            return environment.value(V.msiSecret) != nil ? .machineLearning : .cloudShell
        }
        if environment.value(V.identityEndpoint) != nil, environment.value(V.imdsEndpoint) != nil {
            return .azureArc
        }
        if environment.offersWorkloadIdentity {
            return .workloadIdentity
        }
        if environment.arcAgentInstalled {
            return .azureArc
        }
        return .imds
    }

    /// Why ``detect(in:)`` picks the source it picks, in a sentence naming the variables (never their
    /// values) that decided it, for people reading a diagnosis.
    public static func detectionReason(in environment: ManagedIdentityEnvironment = .current) -> String {
        typealias V = ManagedIdentityVariable
        let source = detect(in: environment)
        switch source {
        case .serviceFabric:
            return "\(V.identityEndpoint), \(V.identityHeader) and \(V.identityServerThumbprint) are set"
        case .appService:
            return "\(V.identityEndpoint) and \(V.identityHeader) are set, \(V.identityServerThumbprint) is not"
        case .machineLearning:
            return "\(V.msiEndpoint) and \(V.msiSecret) are set"
        case .cloudShell:
            return "\(V.msiEndpoint) is set, \(V.msiSecret) is not"
        case .azureArc:
            return environment.value(V.imdsEndpoint) != nil && environment.value(V.identityEndpoint) != nil
                ? "\(V.identityEndpoint) and \(V.imdsEndpoint) are set"
                : "the Azure Arc agent is installed (\(ManagedIdentityEnvironment.arcAgentBinaryPath))"
        case .workloadIdentity:
            return "\(V.federatedTokenFile), \(V.tenantID) and \(V.authorityHost) are set and no managed identity "
                + "endpoint variable is"
        case .imds:
            let overridden = environment.value(V.podIdentityAuthorityHost) != nil
            return "no other source's variables are set, so the Instance Metadata Service is used"
                + (overridden ? ", at the address in \(V.podIdentityAuthorityHost)" : "")
        }
    }

    /// The variables this source reads, for error messages that tell the user what to set.
    public var variables: [String] {
        typealias V = ManagedIdentityVariable
        switch self {
        case .imds: return [V.podIdentityAuthorityHost]
        case .appService: return [V.identityEndpoint, V.identityHeader]
        case .machineLearning: return [V.msiEndpoint, V.msiSecret, V.defaultIdentityClientID]
        case .cloudShell: return [V.msiEndpoint]
        case .azureArc: return [V.identityEndpoint, V.imdsEndpoint]
        case .serviceFabric: return [V.identityEndpoint, V.identityHeader, V.identityServerThumbprint]
        case .workloadIdentity: return [V.federatedTokenFile, V.tenantID, V.authorityHost, V.clientID]
        }
    }
}

extension ManagedIdentityEnvironment {
    /// Whether the Kubernetes workload identity webhook's variables are all set.
    var offersWorkloadIdentity: Bool {
        typealias V = ManagedIdentityVariable
        return value(V.federatedTokenFile) != nil && value(V.tenantID) != nil && value(V.authorityHost) != nil
    }
}
