import Foundation
import ManagedIdentityTesting
import Synchronization
import Testing
import TokenCredentials

@testable import ManagedIdentity

@Suite struct TokenCredentialTests {
    let vault = TokenRequestContext(scopes: ["https://vault.azure.net/.default"])

    func imdsClient(_ endpoint: FakeTokenEndpoint, clock: ManualClock) throws -> ManagedIdentityClient {
        try ManagedIdentityClient(
            configuration: .init(environment: TestEnvironment.make(), clock: clock, hostDiscriminator: "test-host"),
            cache: TokenCache(), transport: endpoint)
    }

    @Test func aClientIsACredentialWhoseHitsComeFromItsCache() async throws {
        let clock = ManualClock()
        let endpoint = FakeTokenEndpoint(hostName: "vm", clock: clock)
        let credential: any TokenCredential = try imdsClient(endpoint, clock: clock)
        let first = try await credential.token(for: vault)
        let second = try await credential.token(for: vault)
        #expect(first == second)
        #expect(endpoint.requestCount == 1)
        #expect(TokenClaims(token: first.token)?.audience == "https://vault.azure.net")
        #expect(first.tokenType == "Bearer")
        #expect(abs(first.expiresOn.timeIntervalSince(clock.now) - 3600) < 2)
        #expect(!first.description.contains(first.token))
    }

    @Test func claimsSkipTheCachedTokenAndTheFreshOneIsCached() async throws {
        let clock = ManualClock()
        let endpoint = FakeTokenEndpoint(hostName: "vm", clock: clock)
        let credential = try imdsClient(endpoint, clock: clock)
        let first = try await credential.token(for: vault)
        var challenged = vault
        challenged.claims = #"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#
        let fresh = try await credential.token(for: challenged)
        #expect(endpoint.requestCount == 2)
        #expect(TokenClaims(token: fresh.token)?.serial == (TokenClaims(token: first.token)?.serial ?? 0) + 1)
        #expect(try await credential.token(for: vault) == fresh)
        #expect(endpoint.requestCount == 2)
    }

    @Test func aManagedIdentityTokenIsForExactlyOneScope() async throws {
        let clock = ManualClock()
        let endpoint = FakeTokenEndpoint(hostName: "vm", clock: clock)
        let credential = try imdsClient(endpoint, clock: clock)
        for scopes in [[], ["https://vault.azure.net/.default", "https://storage.azure.com/.default"]] {
            await #expect(throws: ManagedIdentityError(code: .invalidResource, message: "")) {
                try await credential.token(for: TokenRequestContext(scopes: scopes))
            }
        }
        #expect(endpoint.requestCount == 0)
    }

    @Test func unreachableAndMissingVariablesMeanTheCredentialDoesNotApplyHere() {
        #expect(ManagedIdentityError(code: .unreachableNetwork, message: "").credentialIsUnavailable)
        #expect(ManagedIdentityError(code: .missingEnvironmentVariable, message: "").credentialIsUnavailable)
        #expect(!ManagedIdentityError(code: .requestFailed, message: "").credentialIsUnavailable)
        #expect(!ManagedIdentityError(code: .requestTimeout, message: "").credentialIsUnavailable)
    }

    // MARK: ManagedIdentityCredential

    @Test func onAMachineWithoutAManagedIdentityTheCredentialSaysSoAfterOneProbe() async throws {
        let transport = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "connection refused")
        }
        let credential = ManagedIdentityCredential(
            configuration: .init(environment: TestEnvironment.make(), clock: ManualClock()), transport: transport)
        for _ in 0..<3 {
            let error = await #expect(throws: CredentialUnavailableError.self) { try await credential.token(for: vault) }
            #expect(error?.message.contains("No managed identity on this host") == true)
        }
        #expect(transport.requestCount == 1)
        #expect(transport.requests.first?.headers.contains { $0.name.lowercased() == "metadata" } == false)
    }

    @Test func whereIMDSAnswersTheProbeTokensComeFromAClientWithItsCache() async throws {
        let transport = FakeTransport { request, _ throws(HTTPTransportError) in
            request.headers.contains { $0.name == "Metadata" } ? .token("imds-token") : .json(400, #"{"error":"invalid_request"}"#)
        }
        let credential = ManagedIdentityCredential(
            configuration: .init(environment: TestEnvironment.make(), clock: ManualClock()), cache: TokenCache(),
            transport: transport)
        #expect(try await credential.token(for: vault).token == "imds-token")
        #expect(try await credential.token(for: vault).token == "imds-token")
        #expect(transport.requestCount == 2)
    }

    @Test func aNamedSourceIsNotProbed() async throws {
        let transport = FakeTransport(responses: [.token("app-service-token")])
        let credential = ManagedIdentityCredential(
            configuration: .init(source: .appService, environment: TestEnvironment.make(TestEnvironment.appService), clock: ManualClock()),
            cache: TokenCache(), transport: transport)
        #expect(try await credential.token(for: vault).token == "app-service-token")
        #expect(transport.requestCount == 1)
    }

    // MARK: ChainedTokenCredential

    @Test func theFirstTokenWinsAndLaterCredentialsAreNotAsked() async throws {
        let later = StubCredential(.success("later"))
        let chain = ChainedTokenCredential(
            StubCredential(.failure(CredentialUnavailableError(credential: "A", message: "not here"))),
            StubCredential(.success("first")), later)
        #expect(try await chain.token(for: vault).token == "first")
        #expect(later.calls == 0)
    }

    @Test func whenAllFailEveryAttemptIsReportedInOrderWithItsReason() async throws {
        let chain = ChainedTokenCredential(
            StubCredential(.failure(CredentialUnavailableError(credential: "ManagedIdentityCredential", message: "No managed identity on this host"))),
            StubCredential(.failure(AzureCLICredentialError(code: .notSignedIn, message: "The Azure CLI is not signed in. Run az login."))),
            StubCredential(.failure(ManagedIdentityError(code: .requestFailed, message: "refused"))))
        let error = await #expect(throws: ChainedTokenCredentialError.self) { try await chain.token(for: vault) }
        #expect(error?.attempts.map(\.wasUnavailable) == [true, true, false])
        #expect(error?.attempts.map(\.credential) == ["StubCredential", "StubCredential", "StubCredential"])
        let text = error?.description ?? ""
        #expect(text.contains("No managed identity on this host"))
        #expect(text.contains("Run az login"))
        #expect(text.contains("refused"))
        let empty = await #expect(throws: ChainedTokenCredentialError.self) { try await ChainedTokenCredential().token(for: vault) }
        #expect(empty?.description.contains("empty") == true)
    }

    @Test func cancellationStopsTheChainAtOnce() async throws {
        let hanging = StubCredential(.hang)
        let later = StubCredential(.success("later"))
        let chain = ChainedTokenCredential(hanging, later)
        let task = Task { try await chain.token(for: vault) }
        while hanging.calls == 0 { await Task.yield() }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(later.calls == 0)
    }
}

/// A credential that answers from a script and counts its calls.
final class StubCredential: TokenCredential {
    enum Behaviour: Sendable {
        case success(String)
        case failure(any Error)
        case hang
    }

    private let behaviour: Behaviour
    private let count = Mutex(0)
    var calls: Int { count.withLock { $0 } }

    init(_ behaviour: Behaviour) { self.behaviour = behaviour }

    func token(for context: TokenRequestContext) async throws -> AccessTokenInfo {
        count.withLock { $0 += 1 }
        switch behaviour {
        case .success(let token): return AccessTokenInfo(token: token, expiresOn: Date().addingTimeInterval(3600))
        case .failure(let error): throw error
        case .hang:
            try await Task.sleep(for: .seconds(3600))
            throw CancellationError()
        }
    }
}
