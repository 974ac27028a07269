import Foundation
import Testing

@testable import ManagedIdentity

/// Source discovery's decisions without a network: the environment first, the probe's answer, and
/// one probe per discovery whatever the number of callers.
struct DiscoveryTests {
    static let loopbackIMDS = ["AZURE_POD_IDENTITY_AUTHORITY_HOST": TestEnvironment.loopbackIMDS]

    @Test(arguments: [
        (TestEnvironment.appService, ManagedIdentitySource.appService),
        (TestEnvironment.serviceFabric, .serviceFabric),
        (TestEnvironment.machineLearning, .machineLearning),
        (TestEnvironment.cloudShell, .cloudShell),
        (["IDENTITY_ENDPOINT": "http://127.0.0.1:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "http://127.0.0.1:40342"], .azureArc),
        ([
            "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token", "AZURE_TENANT_ID": "t",
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
        ], .workloadIdentity),
    ] as [([String: String], ManagedIdentitySource)])
    func aSourceNamedByTheEnvironmentIsAnsweredWithoutAProbe(variables: [String: String], expected: ManagedIdentitySource) async {
        let transport = FakeTransport(responses: [.json(400, "{}")])
        let discovery = ManagedIdentityDiscovery(
            environment: ManagedIdentityEnvironment(variables: variables.merging(Self.loopbackIMDS) { a, _ in a }), transport: transport)
        let capabilities = await discovery.capabilities()
        #expect(capabilities.source == expected)
        #expect(capabilities.probe == nil)
        #expect(capabilities.reason == ManagedIdentitySource.detectionReason(in: ManagedIdentityEnvironment(variables: variables)))
        #expect(transport.requestCount == 0)
    }

    @Test func theArcAgentsBinaryNamesArcWithoutAProbe() async {
        let transport = FakeTransport(responses: [.json(400, "{}")])
        let discovery = ManagedIdentityDiscovery(
            environment: ManagedIdentityEnvironment(variables: Self.loopbackIMDS, arcAgentInstalled: true), transport: transport)
        #expect(await discovery.capabilities().source == .azureArc)
        #expect(transport.requestCount == 0)
    }

    @Test func theProbeIsAGetOfTheTokenPathWithoutTheMetadataHeader() async throws {
        let transport = FakeTransport(responses: [.json(400, #"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#)])
        let discovery = ManagedIdentityDiscovery(
            environment: ManagedIdentityEnvironment(variables: Self.loopbackIMDS), transport: transport, probeTimeout: .milliseconds(750))
        let capabilities = await discovery.capabilities()
        #expect(capabilities.source == .imds)
        #expect(capabilities.probe == .answered(status: 400))
        #expect(capabilities.reason.contains("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
        let probe = try #require(transport.requests.first)
        #expect(probe.method == "GET")
        #expect(probe.origin == TestEnvironment.loopbackIMDS)
        #expect(probe.path == "/metadata/identity/oauth2/token")
        #expect(probe.queryValue("api-version") == "2018-02-01")
        #expect(probe.header("Metadata") == nil)
        #expect(probe.timeout == .milliseconds(750))
    }

    @Test(arguments: [
        (ManagedIdentityCapabilities.ProbeResult.answered(status: 400), ManagedIdentitySource?.some(.imds)),
        (.answered(status: 200), nil), (.answered(status: 404), nil), (.answered(status: 500), nil),
        (.unreachable("Connection refused"), nil), (.timedOut, nil),
    ])
    func onlyA400IsIMDS(probe: ManagedIdentityCapabilities.ProbeResult, expected: ManagedIdentitySource?) {
        let capabilities = ManagedIdentityCapabilities.fromProbe(probe, origin: "http://127.0.0.1:1")
        #expect(capabilities.source == expected)
        #expect(capabilities.probe == probe)
        #expect(capabilities.reason.contains("http://127.0.0.1:1"))
    }

    @Test func concurrentCallersShareOneProbeAndNoneIsKept() async {
        let transport = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "Connection refused")
        }
        let discovery = ManagedIdentityDiscovery(environment: ManagedIdentityEnvironment(variables: Self.loopbackIMDS), transport: transport)
        let answers = await withTaskGroup(of: ManagedIdentityCapabilities.self) { group in
            for _ in 0..<20 { group.addTask { await discovery.capabilities() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 20)
        #expect(answers.allSatisfy { $0.source == nil && $0.probe == .unreachable("Connection refused") })
        #expect(await discovery.capabilities().source == nil)
        #expect(transport.requestCount == 1, "one probe, and 'none' is remembered")
    }

    @Test func aMalformedIMDSAddressIsNoneWithTheReasonAndNoProbe() async {
        let transport = FakeTransport(responses: [.json(400, "{}")])
        let discovery = ManagedIdentityDiscovery(
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "not a url"]), transport: transport)
        let capabilities = await discovery.capabilities()
        #expect(capabilities.source == nil)
        #expect(capabilities.reason.contains("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
        #expect(transport.requestCount == 0)
    }

    @Test func gettingATokenNeverProbes() async throws {
        // A client on a host without source variables goes straight to IMDS with the Metadata header.
        let transport = FakeTransport(responses: [.token()])
        let client = try ManagedIdentityClient(
            configuration: .init(environment: ManagedIdentityEnvironment(variables: Self.loopbackIMDS)), cache: TokenCache(),
            transport: transport)
        _ = try await client.token(for: "https://r")
        #expect(transport.requests.map { $0.header("Metadata") } == ["true"])
    }
}
