import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import TestSupport
import Testing

/// What the transport's connect timeout means: the network, and nothing else. A TLS handshake a busy
/// peer does late is not an unreachable endpoint; an address that never accepts still is, quickly.
struct TransportTimeoutTests {
    @Test func aHandshakeThatStartsLateIsNotAnUnreachableNetwork() async throws {
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .workloadIdentity)) { emulator in
            // The TCP connect completes at once; the first TLS byte moves 3 s later, past the 2 s
            // that bound a TCP connect and before the 10 s that bound a new HTTPS connection.
            let relay = try await PythonServer.slowRelay(to: emulator.port, delay: 3)
            defer { relay.stop() }
            var variables = emulator.environment
            variables["AZURE_AUTHORITY_HOST"] = "https://127.0.0.1:\(relay.port)/"
            let client = try ManagedIdentityClient(
                configuration: .init(
                    environment: ManagedIdentityEnvironment(variables: variables), requestTimeout: .seconds(30),
                    retriesEnabled: false,
                    workloadIdentity: WorkloadIdentityOptions(trustedCertificatesFile: emulator.caFile)),
                cache: TokenCache())
            let token = try await client.token(for: "https://vault.azure.net")
            #expect(token.tokenSource == .identityProvider)
            #expect(emulator.statistics.tokensIssued == 1)
        }
    }

    @Test func anAddressThatNeverAcceptsIsUnreachableAtTheTCPConnectBound() async throws {
        let server = try await PythonServer.fullBacklog()
        defer { server.stop() }
        let client = try ManagedIdentityClient(
            configuration: .init(
                source: .imds,
                environment: ManagedIdentityEnvironment(variables: [
                    "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:\(server.port)"
                ]),
                requestTimeout: .seconds(60), retriesEnabled: false),
            cache: TokenCache())
        await #expect {
            try await client.token(for: "https://vault.azure.net")
        } throws: { error in
            // Not the request's 60 s timeout: the connect bound, which names the TCP connection.
            let error = error as? ManagedIdentityError
            return error?.code == .unreachableNetwork && error?.message.contains("TCP connection was not accepted within 2") == true
        }
    }
}
