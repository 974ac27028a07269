import Foundation
import ManagedIdentity
import ManagedIdentityTesting
import Testing
import TestSupport

/// A property over random runs: whatever the sequence of identities, hosts, resources, clock moves,
/// forced refreshes and restarts, no request is answered with another identity's, host's or
/// resource's token, and no expired token is served. 10,000 operations per backend, from a fixed
/// seed (printed on failure, so a failing run can be replayed exactly).
struct IsolationPropertyTests {
    /// SplitMix64: small, fast, and the same sequence on every machine for a seed.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    enum Store: String, CaseIterable, CustomStringConvertible {
        case memory, file, sqlite
        var description: String { rawValue }
    }

    static let hosts = ["host-a", "host-b"]
    static let identities: [ManagedIdentityID] = [.systemAssigned, .clientID("c-1"), .clientID("c-2"), .objectID("o-1"), .resourceID("/r/1")]
    static let resources = ["https://r1.example", "https://r2.example", "https://r3.example"]

    /// What the fake endpoint writes into a token for an identity.
    static func label(_ identity: ManagedIdentityID) -> String {
        switch identity {
        case .systemAssigned: "system"
        case .clientID(let id): "client_id:" + id
        case .objectID(let id): "object_id:" + id
        case .resourceID(let id): "resource_id:" + id
        }
    }

    /// One simulated host: its endpoint, and its clients over its own cache (over the shared store).
    final class Host {
        let name: String
        let endpoint: FakeTokenEndpoint
        var clients: [ManagedIdentityClient] = []

        init(name: String, clock: ManualClock) {
            self.name = name
            self.endpoint = FakeTokenEndpoint(hostName: name, clock: clock)
        }
    }

    @Test(arguments: Store.allCases)
    func noRequestIsAnsweredWithAnotherIdentitysHostsOrResourcesTokenNorAnExpiredOne(store: Store) async throws {
        let seed: UInt64 = 0x5EED_0000_0000_0000 | UInt64(Store.allCases.firstIndex(of: store) ?? 0)
        var random = SeededGenerator(state: seed)
        let clock = ManualClock()
        let location = try TemporaryDirectory.make() + (store == .file ? "/cache" : "/tokens.sqlite")
        let sharedMemory = TokenCache()

        func cache() throws -> TokenCache {
            switch store {
            case .memory: sharedMemory
            case .file: TokenCache(backend: try BackendKind.file.open(location))
            case .sqlite: TokenCache(backend: try BackendKind.sqlite.open(location))
            }
        }
        /// A host (re)started: new clients over a new cache, as a restarted process has.
        func start(_ host: Host) throws {
            let cache = try cache()
            host.clients = try Self.identities.map { identity in
                try ManagedIdentityClient(
                    identity: identity,
                    configuration: .init(
                        source: .imds,
                        environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
                        clock: clock, hostDiscriminator: host.name),
                    cache: cache, transport: host.endpoint)
            }
        }
        let hosts = Self.hosts.map { Host(name: $0, clock: clock) }
        for host in hosts { try start(host) }

        var served = 0
        var fromCache = 0
        for operation in 0..<10_000 {
            let context = "seed \(String(seed, radix: 16)), operation \(operation), \(store)"
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<8:
                // Time passes between requests, from nothing to past a token's life; now and then a
                // little while a background refresh is in flight. (Less than any token's life: a
                // jump past it mid-request makes the endpoint's fresh token expired on arrival, which
                // is an error, rightly; TokenCacheAccessorTests covers a token that expires while
                // its request stalls.)
                if Int.random(in: 0..<4, using: &random) != 0 {
                    for host in hosts { for client in host.clients { await client.waitForBackgroundRefreshes() } }
                    clock.advance(by: TimeInterval(Int.random(in: 0...5_000, using: &random)))
                } else {
                    clock.advance(by: TimeInterval(Int.random(in: 0...300, using: &random)))
                }
            case 8..<11:
                // The endpoint changes the lifetime of the tokens it issues, sometimes with refresh_in.
                let lifetime = [400, 900, 3_600, 7_200, 86_400].randomElement(using: &random) ?? 3_600
                let refreshIn = Bool.random(using: &random) ? Int.random(in: 60..<lifetime, using: &random) : nil
                for host in hosts { host.endpoint.setLifetime(lifetime, refreshIn: refreshIn) }
            case 11..<13 where store != .memory:
                // A process restarts and finds only what its backend stored.
                try start(hosts[Int.random(in: 0..<hosts.count, using: &random)])
            default:
                let hostIndex = Int.random(in: 0..<hosts.count, using: &random)
                let host = hosts[hostIndex]
                let identityIndex = Int.random(in: 0..<Self.identities.count, using: &random)
                let identity = Self.identities[identityIndex]
                let resource = Self.resources.randomElement(using: &random) ?? Self.resources[0]
                let force = Int.random(in: 0..<20, using: &random) == 0
                let token = try await host.clients[identityIndex].token(
                    for: resource + (Bool.random(using: &random) ? "/.default" : ""), options: TokenRequestOptions(forceRefresh: force))
                served += 1
                if token.tokenSource == .cache { fromCache += 1 }
                let claims = try #require(TokenClaims(token: token.token), "a token the endpoint did not issue (\(context))")
                #expect(claims.identity == Self.label(identity), "another identity's token (\(context))")
                #expect(claims.audience == resource, "another resource's token (\(context))")
                if identity == .systemAssigned {
                    #expect(claims.host == host.name, "another host's system identity token (\(context))")
                }
                let now = Int(clock.now.timeIntervalSince1970)
                #expect(claims.expiresAt > now, "an expired token (\(context), \(token.tokenSource), \(token.cacheRefreshReason), issued at \(claims.issuedAt))")
                #expect(Int(token.expiresOn.timeIntervalSince1970) == claims.expiresAt, "a wrong expiry (\(context))")
                if Int.random(in: 0..<10, using: &random) == 0 { await host.clients[identityIndex].waitForBackgroundRefreshes() }
            }
        }
        for host in hosts { for client in host.clients { await client.waitForBackgroundRefreshes() } }
        // The run exercised both paths: it is not a property of an empty cache.
        #expect(served > 8_000)
        #expect(fromCache > served / 4, "\(fromCache) of \(served) served from the cache")
        #expect(fromCache < served)
    }
}
