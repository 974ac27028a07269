import Testing

@testable import ManagedIdentity

/// The two failures MSAL.NET's managed identity page documents, with the exact errors this library
/// gives for them; the Troubleshooting article quotes these texts.
struct TroubleshootingTests {
    static let resourceHint =
        "The resource may be unsupported or in the wrong form: pass an application ID URI such as "
        + "https://management.azure.com or https://graph.microsoft.com, or a scope such as https://management.azure.com/.default."

    /// App Service answers a resource it cannot issue for with a 500 (MSAL.NET reports it as
    /// `managed_identity_failed_response`, "An unexpected error occurred while fetching the AAD token").
    @Test func appServiceRefusesAResourceInTheWrongForm() async throws {
        let body = #"{"statusCode":500,"message":"An unexpected error occured while fetching the AAD Token.","correlationId":"4ce26535-1769-4001-96e3-9019ce00922d"}"#
        let transport = FakeTransport(responses: [.json(500, body)])
        let client = try makeClient(environment: TestEnvironment.make(TestEnvironment.appService), transport: transport, retries: false)
        await #expect {
            try await client.token(for: "management.azure.com")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .requestFailed && error.statusCode == 500
                && error.message
                    == "[Managed Identity] Error Message: An unexpected error occured while fetching the AAD Token. "
                    + "Managed Identity Correlation ID: 4ce26535-1769-4001-96e3-9019ce00922d (issued by the 'AppService' "
                    + "managed identity source; search that source's telemetry with this correlation ID). Use this "
                    + "Correlation ID for further investigation. " + Self.resourceHint
        }
    }

    /// IMDS, Arc and Service Fabric pass Entra's AADSTS500011 through with a 400.
    @Test func imdsPassesEntrasUnknownResourceThrough() async throws {
        let body = #"{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named management.azure.com was not found in the tenant named contoso.","error_codes":[500011]}"#
        let transport = FakeTransport(responses: [.json(400, body)])
        let client = try makeClient(environment: TestEnvironment.make(), transport: transport)
        await #expect {
            try await client.token(for: "management.azure.com")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .requestFailed && error.message.hasSuffix(Self.resourceHint)
                && error.message.contains("Error Code: invalid_resource Error Description: AADSTS500011")
        }
        #expect(transport.requestCount == 1, "a 400 is not retried")
    }

    /// A development machine with no source variable: IMDS is tried and cannot be reached. The fake
    /// transport refuses the link-local address without sending anything; the real one says why the
    /// connection failed in the same place.
    @Test func aDevelopmentMachineWithoutAnEndpointSaysWhatWasTried() async throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try makeClient(environment: ManagedIdentityEnvironment(variables: [:]), transport: transport)
        await #expect {
            try await client.token(for: "https://management.azure.com")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .unreachableNetwork
                && error.message.hasSuffix(
                    " No managed identity source variable is set (looked for IDENTITY_ENDPOINT, IDENTITY_HEADER, "
                        + "IDENTITY_SERVER_THUMBPRINT, MSI_ENDPOINT, MSI_SECRET, IMDS_ENDPOINT, AZURE_FEDERATED_TOKEN_FILE, "
                        + "AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, DEFAULT_IDENTITY_CLIENT_ID), so the Azure Instance Metadata "
                        + "Service was tried; this host may not be an Azure VM, or its identity endpoint may be blocked.")
        }
        #expect(transport.requestCount == 0, "nothing reached 169.254.169.254")
    }
}
