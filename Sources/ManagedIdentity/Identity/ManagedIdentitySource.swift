/// A managed identity source: the kind of local endpoint a host offers for getting tokens.
public enum ManagedIdentitySource: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The Azure Instance Metadata Service of VMs and scale sets (also AKS pod identity).
    case imds
    /// App Service, Azure Functions, Container Apps and Azure Automation.
    case appService = "app-service"
    /// Azure Machine Learning compute.
    case machineLearning = "machine-learning"
    /// Azure Cloud Shell.
    case cloudShell = "cloud-shell"
    /// Azure Arc-enabled servers (the hybrid instance metadata service of the Connected Machine agent).
    case azureArc = "azure-arc"
    /// Service Fabric clusters.
    case serviceFabric = "service-fabric"
    /// Workload identity on Kubernetes (AKS): a projected service-account token exchanged with
    /// Microsoft Entra ID. Not a managed identity endpoint, but Python, .NET, JavaScript and Java fall
    /// back to it inside their managed identity credential, and so does this library.
    case workloadIdentity = "workload-identity"

    /// The name MSAL uses for the source in errors and logs (`Imds`, `AppService`, ...).
    public var msalName: String {
        switch self {
        case .imds: "Imds"
        case .appService: "AppService"
        case .machineLearning: "MachineLearning"
        case .cloudShell: "CloudShell"
        case .azureArc: "AzureArc"
        case .serviceFabric: "ServiceFabric"
        case .workloadIdentity: "WorkloadIdentity"
        }
    }

    public var description: String { rawValue }

    /// Whether the source accepts a user-assigned identity of this kind.
    ///
    /// Cloud Shell takes none; Machine Learning and workload identity only a client id (workload
    /// identity's "system-assigned" means the client id in `AZURE_CLIENT_ID`); Service Fabric only an
    /// object id (sent as `principalId`); the others take every kind.
    public func supports(_ kind: ManagedIdentityID.Kind) -> Bool {
        switch (self, kind) {
        case (_, .systemAssigned): true
        case (.imds, _), (.appService, _), (.azureArc, _): true
        case (.machineLearning, .clientID), (.workloadIdentity, .clientID): true
        case (.serviceFabric, .objectID): true
        default: false
        }
    }
}
