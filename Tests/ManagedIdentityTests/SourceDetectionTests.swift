import Testing

@testable import ManagedIdentity

/// TV-20: which source the environment selects, with MSAL.NET's precedence.
struct SourceDetectionTests {
    static let workloadIdentity = [
        "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
        "AZURE_TENANT_ID": "t", "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    ]

    @Test(arguments: [
        (["IDENTITY_ENDPOINT": "https://x", "IDENTITY_HEADER": "h", "IDENTITY_SERVER_THUMBPRINT": "t"], false, ManagedIdentitySource.serviceFabric),
        (["IDENTITY_ENDPOINT": "http://x", "IDENTITY_HEADER": "h"], false, .appService),
        (["IDENTITY_ENDPOINT": "http://x", "IDENTITY_HEADER": "h", "MSI_ENDPOINT": "http://m", "MSI_SECRET": "s"], false, .appService),
        (["MSI_ENDPOINT": "http://m", "MSI_SECRET": "s"], false, .machineLearning),
        (["MSI_ENDPOINT": "http://m"], false, .cloudShell),
        (["IDENTITY_ENDPOINT": "http://x", "IMDS_ENDPOINT": "http://i"], false, .azureArc),
        ([:], true, .azureArc),
        (["AZUREPS_HOST_ENVIRONMENT": "cloud-shell-foo"], false, .imds),
        ([:], false, .imds),
        // MSAL.NET treats an empty value as unset.
        (["IDENTITY_ENDPOINT": "", "IDENTITY_HEADER": "h"], false, .imds),
        (["MSI_ENDPOINT": "http://m", "MSI_SECRET": ""], false, .cloudShell),
        // Cloud Shell comes before Arc in MSAL.NET.
        (["MSI_ENDPOINT": "http://m", "IDENTITY_ENDPOINT": "http://x", "IMDS_ENDPOINT": "http://i"], false, .cloudShell),
        // Workload identity: all three variables, after the endpoint sources and before IMDS.
        (Self.workloadIdentity, false, .workloadIdentity),
        (Self.workloadIdentity.merging(["AZURE_CLIENT_ID": "c"]) { a, _ in a }, false, .workloadIdentity),
        (Self.workloadIdentity.merging(["IDENTITY_ENDPOINT": "http://x", "IDENTITY_HEADER": "h"]) { a, _ in a }, false, .appService),
        (Self.workloadIdentity.merging(["MSI_ENDPOINT": "http://m"]) { a, _ in a }, false, .cloudShell),
        (Self.workloadIdentity.merging(["IDENTITY_ENDPOINT": "http://x", "IMDS_ENDPOINT": "http://i"]) { a, _ in a }, false, .azureArc),
        // The webhook's variables speak for this process; the Arc agent's binary only for the machine.
        (Self.workloadIdentity, true, .workloadIdentity),
        (Self.workloadIdentity.filter { $0.key != "AZURE_TENANT_ID" }, false, .imds),
        (Self.workloadIdentity.filter { $0.key != "AZURE_AUTHORITY_HOST" }, false, .imds),
        (Self.workloadIdentity.merging(["AZURE_FEDERATED_TOKEN_FILE": ""]) { _, b in b }, false, .imds),
    ] as [([String: String], Bool, ManagedIdentitySource)])
    func detection(variables: [String: String], arcAgent: Bool, expected: ManagedIdentitySource) {
        let environment = ManagedIdentityEnvironment(variables: variables, arcAgentInstalled: arcAgent)
        #expect(ManagedIdentitySource.detect(in: environment) == expected)
    }

    @Test func detectionCanBeRerunOnAChangedEnvironment() {
        var environment = ManagedIdentityEnvironment(variables: [:])
        #expect(ManagedIdentitySource.detect(in: environment) == .imds)
        environment.variables["MSI_ENDPOINT"] = "http://m"
        #expect(ManagedIdentitySource.detect(in: environment) == .cloudShell)
    }

    @Test func arcDetectedByAgentBinaryUsesTheAgentsDefaultEndpoint() throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try makeClient(environment: TestEnvironment.make(arc: true), transport: transport)
        #expect(client.source == .azureArc)
        #expect(client.partitionDescriptor.endpoint == "http://127.0.0.1:40342/metadata/identity/oauth2/token")
    }

    @Test func anExplicitSourceWithoutItsVariablesNamesThem() {
        #expect {
            try makeClient(environment: TestEnvironment.make(), source: .appService, transport: FakeTransport(responses: []))
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .missingEnvironmentVariable && error.message.contains("IDENTITY_ENDPOINT")
        }
    }

    @Test func anExplicitSourceOverridesDetection() throws {
        var variables = TestEnvironment.appService
        variables["MSI_ENDPOINT"] = "http://127.0.0.1:9/token"
        let client = try makeClient(
            environment: TestEnvironment.make(variables), source: .cloudShell, transport: FakeTransport(responses: []))
        #expect(client.source == .cloudShell)
    }

    /// The reason names the variables that decided, never their values.
    @Test(arguments: [
        (TestEnvironment.serviceFabric, false, ManagedIdentitySource.serviceFabric, "IDENTITY_SERVER_THUMBPRINT are set"),
        (TestEnvironment.appService, false, .appService, "IDENTITY_ENDPOINT and IDENTITY_HEADER are set"),
        (TestEnvironment.machineLearning, false, .machineLearning, "MSI_ENDPOINT and MSI_SECRET are set"),
        (TestEnvironment.cloudShell, false, .cloudShell, "MSI_ENDPOINT is set, MSI_SECRET is not"),
        (TestEnvironment.azureArc, false, .azureArc, "IDENTITY_ENDPOINT and IMDS_ENDPOINT are set"),
        ([:], true, .azureArc, "the Azure Arc agent is installed"),
        ([:], false, .imds, "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
    ])
    func theDetectionReasonNamesTheDecidingVariables(
        variables: [String: String], arc: Bool, source: ManagedIdentitySource, reason: String
    ) {
        let environment = TestEnvironment.make(variables, arc: arc)
        #expect(ManagedIdentitySource.detect(in: environment) == source)
        let said = ManagedIdentitySource.detectionReason(in: environment)
        #expect(said.contains(reason), "\(said)")
        for value in environment.variables.values { #expect(!said.contains(value)) }
    }
}
