import Foundation
import ManagedIdentityEmulator
import NIOCore
import TestSupport
import Testing

@testable import ManagedIdentity

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

    /// Service Fabric's pinned connection connects to an IP literal directly: no name lookup on
    /// another thread and hops back to the event loop inside the 2 s connect bound (on a busy host
    /// those hops timed out connects to a reachable emulator). A name still goes through the resolver.
    @Test func aPinnedConnectionToAnIPAddressNeedsNoResolver() throws {
        let v4 = try #require(PinnedTLSConnection.socketAddress(host: "127.0.0.1", port: 2377))
        #expect(v4.ipAddress == "127.0.0.1" && v4.port == 2377)
        let v6 = try #require(PinnedTLSConnection.socketAddress(host: "::1", port: 443))
        #expect(v6.protocol == .inet6 && v6.port == 443)
        #expect(PinnedTLSConnection.socketAddress(host: "10.0.0.4", port: 2377) != nil)
        for name in ["localhost", "sfcluster.example", "999.0.0.1", "", "[::1]"] {
            #expect(PinnedTLSConnection.socketAddress(host: name, port: 2377) == nil, "\(name)")
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
