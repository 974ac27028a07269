import Foundation
import ManagedIdentity
import ManagedIdentityTesting

/// A property over random runs, for any cache: whatever the sequence of identities, hosts,
/// resources, clock moves, lifetime changes, forced refreshes and restarts, no request is answered
/// with another identity's, host's or resource's token, and no expired token is served. The run is
/// a function of its seed, which every violation names, so a failing run can be replayed.
public struct IsolationProperty {
    /// SplitMix64: small, fast, and the same sequence on every machine for a seed.
    public struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        public init(seed: UInt64) { state = seed }
        public mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// What a run did and what it found.
    public struct Outcome: Sendable {
        public var served = 0
        public var fromCache = 0
        public var restarts = 0
        public var violations: [String] = []
    }

    public static let hosts = ["host-a", "host-b"]
    public static let identities: [ManagedIdentityID] = [
        .systemAssigned, .clientID("c-1"), .clientID("c-2"), .objectID("o-1"), .resourceID("/r/1"),
    ]
    public static let resources = ["https://r1.example", "https://r2.example", "https://r3.example"]

    public let seed: UInt64
    public let operations: Int
    /// Whether a host may restart (a new cache over the same store); pointless for memory.
    public let restarts: Bool

    public init(seed: UInt64, operations: Int = 10_000, restarts: Bool) {
        self.seed = seed
        self.operations = operations
        self.restarts = restarts
    }

    /// What the fake endpoint writes into a token for an identity.
    static func label(_ identity: ManagedIdentityID) -> String {
        switch identity {
        case .systemAssigned: "system"
        case .clientID(let id): "client_id:" + id
        case .objectID(let id): "object_id:" + id
        case .resourceID(let id): "resource_id:" + id
        }
    }

    /// One simulated host: its endpoint, and its clients over its current cache.
    final class Host {
        let name: String
        let endpoint: FakeTokenEndpoint
        var clients: [ManagedIdentityClient] = []

        init(name: String, clock: ManualClock) {
            self.name = name
            self.endpoint = FakeTokenEndpoint(hostName: name, clock: clock)
        }
    }

    /// Runs the property; `makeCache` gives a host's cache, over the store under test, each time the
    /// host (re)starts.
    public func run(makeCache: (String) async throws -> TokenCache) async throws -> Outcome {
        var random = SeededGenerator(seed: seed)
        var outcome = Outcome()
        let clock = ManualClock()
        func start(_ host: Host) async throws {
            let cache = try await makeCache(host.name)
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
        func settle(_ hosts: [Host]) async {
            for host in hosts { for client in host.clients { await client.waitForBackgroundRefreshes() } }
        }
        let hosts = Self.hosts.map { Host(name: $0, clock: clock) }
        for host in hosts { try await start(host) }

        for operation in 0..<operations {
            let context = "seed \(String(seed, radix: 16)), operation \(operation)"
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<8:
                // Time passes between requests, from nothing to past a token's life; now and then a
                // little while a background refresh is in flight (less than any token's life: a jump
                // past it mid-request makes the endpoint's fresh token expired on arrival, an error).
                if Int.random(in: 0..<4, using: &random) != 0 {
                    await settle(hosts)
                    clock.advance(by: TimeInterval(Int.random(in: 0...5_000, using: &random)))
                } else {
                    clock.advance(by: TimeInterval(Int.random(in: 0...300, using: &random)))
                }
            case 8..<11:
                // The endpoint changes the lifetime of the tokens it issues, sometimes with refresh_in.
                let lifetime = [400, 900, 3_600, 7_200, 86_400].randomElement(using: &random) ?? 3_600
                let refreshIn = Bool.random(using: &random) ? Int.random(in: 60..<lifetime, using: &random) : nil
                for host in hosts { host.endpoint.setLifetime(lifetime, refreshIn: refreshIn) }
            case 11..<13 where restarts:
                // A process restarts and finds only what its backend stored.
                let host = hosts[Int.random(in: 0..<hosts.count, using: &random)]
                await settle([host])
                try await start(host)
                outcome.restarts += 1
            default:
                let host = hosts[Int.random(in: 0..<hosts.count, using: &random)]
                let identityIndex = Int.random(in: 0..<Self.identities.count, using: &random)
                let identity = Self.identities[identityIndex]
                let resource = Self.resources.randomElement(using: &random) ?? Self.resources[0]
                let force = Int.random(in: 0..<20, using: &random) == 0
                let token = try await host.clients[identityIndex].token(
                    for: resource + (Bool.random(using: &random) ? "/.default" : ""),
                    options: TokenRequestOptions(forceRefresh: force))
                outcome.served += 1
                if token.tokenSource == .cache { outcome.fromCache += 1 }
                guard let claims = TokenClaims(token: token.token) else {
                    outcome.violations.append("a token the endpoint did not issue (\(context))")
                    continue
                }
                if claims.identity != Self.label(identity) { outcome.violations.append("another identity's token (\(context))") }
                if claims.audience != resource { outcome.violations.append("another resource's token (\(context))") }
                if identity == .systemAssigned, claims.host != host.name {
                    outcome.violations.append("another host's system identity token (\(context))")
                }
                if claims.expiresAt <= Int(clock.now.timeIntervalSince1970) {
                    outcome.violations.append("an expired token (\(context), \(token.tokenSource), \(token.cacheRefreshReason))")
                }
                if Int(token.expiresOn.timeIntervalSince1970) != claims.expiresAt {
                    outcome.violations.append("a wrong expiry (\(context))")
                }
                if Int.random(in: 0..<10, using: &random) == 0 { await host.clients[identityIndex].waitForBackgroundRefreshes() }
            }
        }
        await settle(hosts)
        return outcome
    }
}
