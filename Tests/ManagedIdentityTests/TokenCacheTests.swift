import Foundation
import InMemoryLogging
import Logging
import ManagedIdentityCacheConformance
import ManagedIdentityTesting
import Synchronization
import Testing

@testable import ManagedIdentity

/// The cache core: hits, single-flight, proactive refresh, force refresh and claims, partition keys,
/// and backends that fail or misbehave.
struct TokenCacheTests {
    let environment = TestEnvironment.make()

    @Test func aSecondCallIsServedFromTheCacheWithoutARequest() async throws {
        let transport = FakeTransport(responses: [.token("T1")])
        let client = try makeClient(environment: environment, transport: transport)
        let first = try await client.token(for: "https://management.azure.com/.default")
        let second = try await client.token(for: "https://management.azure.com")
        #expect(first.tokenSource == .identityProvider)
        #expect(first.cacheRefreshReason == .noCachedAccessToken)
        #expect(second.tokenSource == .cache)
        #expect(second.token == "T1")
        #expect(second.expiresOn == first.expiresOn)
        #expect(transport.requestCount == 1)
        #expect(transport.requests[0].queryValue("resource") == "https://management.azure.com")
    }

    @Test(arguments: [
        ("https://management.azure.com/.default", "https://management.azure.com"),
        ("https://graph.microsoft.com//.default", "https://graph.microsoft.com/"),
        ("user.read", "user.read"),
        ("https://management.core.windows.net//user_impersonation", "https://management.core.windows.net//user_impersonation"),
        ("https://x/.default/.default", "https://x/.default"),
        ("https://x/.DEFAULT", "https://x/.DEFAULT"),
    ])
    func scopeToResource(scope: String, resource: String) throws {
        #expect(try ManagedIdentityClient.resource(fromScope: scope) == resource)
    }

    @Test(arguments: ["", "/.default", "  "])
    func emptyResourceIsRejectedBeforeAnyRequest(scope: String) async throws {
        let transport = FakeTransport(responses: [.token()])
        let client = try makeClient(environment: environment, transport: transport)
        await #expect(throws: ManagedIdentityError(code: .invalidResource, message: "")) {
            try await client.token(for: scope)
        }
        #expect(transport.requestCount == 0)
    }

    @Test func tokensAreServedOnlyWhileValidBeyondTheMargin() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)", expiresIn: 600) }
        let clock = ManualClock()
        let client = try makeClient(environment: environment, transport: transport, clock: clock)
        _ = try await client.token(for: "R")
        clock.advance(by: 299)
        #expect(try await client.token(for: "R").tokenSource == .cache)
        clock.advance(by: 1)
        let refreshed = try await client.token(for: "R")
        #expect(refreshed.tokenSource == .identityProvider)
        #expect(refreshed.cacheRefreshReason == .expired)
        #expect(refreshed.token == "T1")
    }

    @Test func theMarginIsConfigurable() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)", expiresIn: 600) }
        let clock = ManualClock()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, expiryMargin: .seconds(60), clock: clock),
            cache: TokenCache(), transport: transport)
        _ = try await client.token(for: "R")
        clock.advance(by: 539)
        #expect(try await client.token(for: "R").tokenSource == .cache)
        clock.advance(by: 1)
        #expect(try await client.token(for: "R").tokenSource == .identityProvider)
    }

    @Test func forceRefreshSkipsTheCache() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let client = try makeClient(environment: environment, transport: transport)
        _ = try await client.token(for: "R")
        let forced = try await client.token(for: "R", options: TokenRequestOptions(forceRefresh: true))
        #expect(forced.token == "T1")
        #expect(forced.cacheRefreshReason == .forceRefreshOrClaims)
        #expect(try await client.token(for: "R").token == "T1")
        #expect(transport.requestCount == 2)
    }

    // §8.4: claims read the cache, never return the cached token, and tell Service Fabric which to replace.
    @Test func claimsSendTheCachedTokensHashToServiceFabricOnly() async throws {
        let transport = FakeTransport { _, index in index == 0 ? .token("some-access-token") : .token("T\(index)") }
        var variables = TestEnvironment.serviceFabric
        variables["IDENTITY_ENDPOINT"] = "https://127.0.0.1:2377/metadata/identity/oauth2/token"
        let client = try makeClient(
            environment: TestEnvironment.make(variables), transport: transport, capabilities: ["cp1", "cp2"])
        _ = try await client.token(for: Vectors.resource)
        let withClaims = try await client.token(for: Vectors.resource, options: TokenRequestOptions(claims: #"{"access_token":{}}"#))
        #expect(withClaims.tokenSource == .identityProvider)
        #expect(withClaims.token == "T1")
        let requests = transport.requests
        #expect(requests[0].queryValue("token_sha256_to_refresh") == nil)
        #expect(requests[0].queryValue("xms_cc") == "cp1,cp2")
        #expect(requests[1].queryValue("token_sha256_to_refresh") == "0912ef3b6dc2ea579c68fac784f8c2dd942edc5892808c9d6af6e6b47115d126")
        #expect(requests[1].queryValue("xms_cc") == "cp1,cp2")
        #expect(!requests[1].query.contains { $0.value.contains("access_token") })
    }

    // TV-08 through this client: Python's api-version chosen, capabilities foo,bar, cached token "AT".
    @Test func serviceFabricClaimsAsInPythonsVector() async throws {
        let transport = FakeTransport { _, index in index == 0 ? .token("AT") : .token("T\(index)") }
        var variables = TestEnvironment.serviceFabric
        variables["IDENTITY_ENDPOINT"] = "https://localhost"
        let client = try ManagedIdentityClient(
            configuration: .init(
                environment: TestEnvironment.make(variables), clientCapabilities: ["foo", "bar"],
                serviceFabricAPIVersion: .v2019_07_01_preview, clock: ManualClock(), hostDiscriminator: "h"),
            cache: TokenCache(), transport: transport)
        _ = try await client.token(for: "R")
        _ = try await client.token(for: "R", options: TokenRequestOptions(claims: "{}"))
        let request = transport.requests[1]
        #expect(request.origin == "https://localhost")
        #expect(Dictionary(request.query.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }) == [
            "api-version": "2019-07-01-preview", "resource": "R",
            "token_sha256_to_refresh": "eb5442705969dc8da5dfac8f9658dc68acdab5bb7635ba7cc551e389416ac34e",
            "xms_cc": "foo,bar",
        ])
        #expect(request.header("secret") == "secret")
        #expect(TokenCacheAccessor.sha256Hex("test_token") == "cc0af97287543b65da2c7e1476426021826cab166f1e063ed012b855ff819656")
    }

    @Test func claimsAreNotSentToOtherSources() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let client = try makeClient(environment: environment, transport: transport, capabilities: ["cp1"])
        _ = try await client.token(for: "R")
        _ = try await client.token(for: "R", options: TokenRequestOptions(claims: "{}"))
        #expect(transport.requests.allSatisfy { $0.queryValue("token_sha256_to_refresh") == nil && $0.queryValue("xms_cc") == nil })
    }

    @Test func aThousandConcurrentCallersMakeOneRequest() async throws {
        let clock = ManualClock()
        let transport = FakeTokenEndpoint(hostName: "h", clock: clock)
        transport.closeGate()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: clock, hostDiscriminator: "h"),
            cache: TokenCache(), transport: transport)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<1000 {
                group.addTask { try await client.token(for: "https://cold.example").token }
            }
            // Let every caller reach the cache or the in-flight request before the endpoint answers.
            while transport.waitingCount == 0 { await Task.yield() }
            for _ in 0..<100 { await Task.yield() }
            transport.openGate()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(tokens.count == 1000)
        #expect(Set(tokens).count == 1)
        #expect(transport.requestCount == 1)
    }

    @Test func concurrentCallersShareAFailureAndTheNextCallTriesAgain() async throws {
        let failing = Mutex(true)
        let transport = FakeTransport { _, _ in
            failing.withLock { $0 } ? .json(400, #"{"error":"invalid_request"}"#) : .token("ok")
        }
        let client = try makeClient(environment: environment, transport: transport)
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 { group.addTask { (try? await client.token(for: "R")) != nil } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { !$0 })
        #expect(transport.requestCount < 50)
        failing.withLock { $0 = false }
        #expect(try await client.token(for: "R").token == "ok")
    }

    @Test func pastRefreshOnTheCachedTokenIsReturnedAndOneBackgroundRefreshReplacesIt() async throws {
        let transport = FakeTransport { _, index in
            .json(200, #"{"access_token":"T\#(index)","expires_in":86400,"refresh_in":43200}"#)
        }
        let clock = ManualClock()
        let client = try makeClient(environment: environment, transport: transport, clock: clock)
        let first = try await client.token(for: "R")
        #expect(first.refreshOn == clock.now.addingTimeInterval(43200))
        clock.advance(by: 43201)
        let stale = try await withThrowingTaskGroup(of: AccessToken.self) { group in
            for _ in 0..<20 { group.addTask { try await client.token(for: "R") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(stale.allSatisfy { $0.token == "T0" && $0.tokenSource == .cache && $0.cacheRefreshReason == .proactivelyRefreshed })
        await client.waitForBackgroundRefreshes()
        #expect(transport.requestCount == 2)
        let fresh = try await client.token(for: "R")
        #expect(fresh.token == "T1")
        #expect(fresh.cacheRefreshReason == .notApplicable)
    }

    @Test func aFailedBackgroundRefreshIsLoggedAndTheTokenStaysUsableUntilItExpires() async throws {
        let logs = InMemoryLogHandler()
        let transport = FakeTransport { _, index in
            index == 0 ? .json(200, #"{"access_token":"T0","expires_in":7201}"#) : .json(400, #"{"error":"x"}"#)
        }
        let clock = ManualClock()
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: clock, hostDiscriminator: "h"),
            cache: TokenCache(), transport: transport, logger: Logger(label: "test", factory: { _ in logs }))
        let first = try await client.token(for: "R")
        #expect(first.refreshOn == clock.now.addingTimeInterval(3600))
        clock.advance(by: 3601)
        #expect(try await client.token(for: "R").token == "T0")
        await client.waitForBackgroundRefreshes()
        #expect(logs.entries.contains { $0.level == .warning && "\($0.message)".contains("background token refresh failed") })
        #expect(try await client.token(for: "R").token == "T0")
        clock.advance(by: 3600 - 300)
        await #expect(throws: ManagedIdentityError.self) { try await client.token(for: "R") }
    }

    @Test func clientsOfOneIdentityShareTheProcessCache() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let cache = TokenCache()
        let first = try makeClient(environment: environment, transport: transport, cache: cache)
        let second = try makeClient(environment: environment, transport: transport, cache: cache)
        _ = try await first.token(for: "R")
        #expect(try await second.token(for: "R").tokenSource == .cache)
        let other = try makeClient(.clientID(Vectors.clientID), environment: environment, transport: transport, cache: cache)
        #expect(try await other.token(for: "R").tokenSource == .identityProvider)
        #expect(transport.requestCount == 2)
    }

    // MARK: Partition keys

    @Test func partitionKeysAreDistinctForEveryComponent() {
        func key(
            _ source: ManagedIdentitySource = .imds, _ endpoint: String = "http://e", _ identity: ManagedIdentityID = .systemAssigned,
            host: String = "h", capabilities: [String] = []
        ) -> String {
            TokenCachePartitionKey(
                source: source, endpoint: endpoint, identity: identity, hostDiscriminator: host,
                clientCapabilities: capabilities
            ).rawValue
        }
        let keys = [
            key(), key(.appService), key(.imds, "http://f"), key(host: "h2"), key(.imds, "http://e", .clientID("a")),
            key(.imds, "http://e", .objectID("a")), key(.imds, "http://e", .resourceID("a")),
            key(.imds, "http://e", .clientID("b")), key(capabilities: ["cp1"]),
            // Concatenation would make these two alike; length prefixes keep them apart.
            key(.imds, "http://e|", .clientID("x")), key(.imds, "http://e", .clientID("|x")),
        ]
        #expect(Set(keys).count == keys.count)
        #expect(key() == key())
        #expect(key(.imds, "http://e", .clientID("a"), host: "h1") == key(.imds, "http://e", .clientID("a"), host: "h2"))
        #expect(key(capabilities: ["a", "b"]) == key(capabilities: ["b", "a"]))
        #expect(keys.allSatisfy { $0.hasPrefix("mi1-") && $0.count == 68 && TokenCachePartitionKey(rawValue: $0) != nil })
        #expect(TokenCachePartitionKey(rawValue: "mi1-../../etc/passwd") == nil)
    }

    @Test func twoHostsSystemIdentitiesNeverShareATokenInOneCache() async throws {
        let cache = TokenCache()
        let transportA = FakeTransport(responses: [.token("from-A")])
        let transportB = FakeTransport(responses: [.token("from-B")])
        let a = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "vm-a"),
            cache: cache, transport: transportA)
        let b = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "vm-b"),
            cache: cache, transport: transportB)
        #expect(try await a.token(for: "R").token == "from-A")
        #expect(try await b.token(for: "R").token == "from-B")
        #expect(a.partitionKey != b.partitionKey)
    }

    // MARK: Backends

    struct FailingBackend: TokenCacheBackend {
        struct Broken: Error {}
        func beforeAccess(_ notification: TokenCacheNotification) async throws { throw Broken() }
        func beforeWrite(_ notification: TokenCacheNotification) async throws { throw Broken() }
        func afterAccess(_ notification: TokenCacheNotification) async throws { throw Broken() }
        func coordinateRefresh<Result: Sendable>(
            _ notification: TokenCacheNotification, _ body: () async throws -> Result
        ) async throws -> Result { throw Broken() }
    }

    @Test func aThrowingBackendCostsOneFetchPerTokenThenMemoryServesAndTheOutageIsLoggedOnce() async throws {
        let logs = InMemoryLogHandler()
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "h"),
            cache: TokenCache(backend: FailingBackend()), transport: transport,
            logger: Logger(label: "test", factory: { _ in logs }))
        #expect(try await client.token(for: "R").token == "T0")
        let again = try await client.token(for: "R")
        #expect(again.token == "T0", "memory serves what the failing store cannot")
        #expect(again.tokenSource == .cache)
        #expect(transport.requestCount == 1)
        #expect(logs.entries.filter { $0.level == .warning }.count == 1, "one warning per outage, not per hook")
    }

    /// A backend that tries to hand another partition's (or resource's) token to the client.
    struct PoisoningBackend: TokenCacheBackend {
        let victim: TokenCachePartitionKey
        func beforeAccess(_ notification: TokenCacheNotification) async throws {
            let now = Date()
            notification.partition.replaceEntries(
                [
                    TokenCacheEntry(
                        partitionKey: victim, resource: notification.resource, accessToken: "someone-elses",
                        expiresOn: now.addingTimeInterval(3600), cachedAt: now)
                ], version: nil)
        }
        func afterAccess(_ notification: TokenCacheNotification) async throws {}
    }

    @Test func entriesOfAnotherPartitionFromABackendAreNeverServed() async throws {
        let transport = FakeTransport(responses: [.token("mine")])
        let other = try makeClient(.clientID("victim"), environment: environment, transport: transport)
        let client = try ManagedIdentityClient(
            configuration: .init(environment: environment, clock: ManualClock(), hostDiscriminator: "h"),
            cache: TokenCache(backend: PoisoningBackend(victim: other.partitionKey)), transport: transport)
        #expect(try await client.token(for: "R").token == "mine")
        #expect(try await client.token(for: "R").token == "mine")
    }

    @Test func anImportedDocumentOfAnotherPartitionIsRefused() async throws {
        let transport = FakeTransport { _, index in .token("T\(index)") }
        let cache = TokenCache()
        let a = try makeClient(.clientID("a"), environment: environment, transport: transport, cache: cache)
        let b = try makeClient(.clientID("b"), environment: environment, transport: transport, cache: cache)
        _ = try await a.token(for: "R")
        _ = try await b.token(for: "R")
        let document = try #require(cache.partition(for: a.partitionKey)).exportDocument()
        #expect(throws: TokenCacheSerializationError.self) { try cache.partition(for: b.partitionKey)?.importDocument(document) }
        #expect(try await b.token(for: "R").token == "T1")
        #expect(throws: TokenCacheSerializationError.self) { try cache.importPartition(Array("{}".utf8)) }
        var future = String(decoding: document, as: UTF8.self)
        future = future.replacingOccurrences(of: #""version":1"#, with: #""version":2"#)
        #expect {
            try cache.importPartition(Array(future.utf8))
        } throws: { ($0 as? TokenCacheSerializationError)?.kind == .unsupportedVersion }
    }

    @Test func theInMemoryBackendPassesTheConformanceSuite() async throws {
        let backend = InMemoryTokenCacheBackend()
        try await TokenCacheConformance { backend }.run(interleavings: 3_000)
    }

    @Test func theSuiteCatchesABackendThatServesOneIdentitysTokenToAnother() async throws {
        /// Stores by resource only, ignoring the partition: the bug MSAL.NET had for system-assigned identities.
        final class LeakyBackend: TokenCacheBackend {
            let stored = Mutex<[String: TokenCacheEntry]>([:])
            func beforeAccess(_ notification: TokenCacheNotification) async throws {
                if let entry = stored.withLock({ $0[notification.resource] }) {
                    var rekeyed = entry
                    rekeyed.partitionKey = notification.partitionKey
                    notification.partition.replaceEntries([rekeyed], version: nil)
                }
            }
            func afterAccess(_ notification: TokenCacheNotification) async throws {
                if let written = notification.writtenEntry { stored.withLock { $0[written.resource] = written } }
            }
        }
        let leaky = LeakyBackend()
        await #expect(throws: ConformanceFailure.self) {
            try await TokenCacheConformance { leaky }.checkIsolation()
        }
    }

    // MARK: Logging

    @Test func logLinesNameSourceIdentityCorrelationAndOutcomeButNeverASecret() async throws {
        let logs = InMemoryLogHandler()
        var handler = logs
        handler.logLevel = .trace
        var variables = TestEnvironment.appService
        variables["IDENTITY_HEADER"] = "header-secret-value"
        let transport = FakeTransport { _, index in
            index == 0 ? .json(500, #"{"message":"echo header-secret-value"}"#) : .token("token-secret-value")
        }
        let client = try ManagedIdentityClient(
            identity: .clientID(Vectors.clientID),
            configuration: .init(environment: TestEnvironment.make(variables), clock: ManualClock(), hostDiscriminator: "h"),
            cache: TokenCache(backend: InMemoryTokenCacheBackend()), transport: transport,
            logger: Logger(label: "test", factory: { _ in handler }))
        _ = try await client.token(for: "R", options: TokenRequestOptions(correlationID: "corr-1"))
        _ = try await client.token(for: "R")
        let entries = logs.entries
        #expect(!entries.isEmpty)
        let text = entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!text.contains("header-secret-value"))
        #expect(!text.contains("token-secret-value"))
        let outcome = try #require(entries.first { $0.metadata["managed-identity.outcome"] != nil })
        #expect(outcome.metadata["managed-identity.source"] == "app-service")
        #expect(outcome.metadata["managed-identity.identity-kind"] == "client_id")
        #expect(outcome.metadata["managed-identity.correlation-id"] == "corr-1")
        #expect(outcome.metadata["managed-identity.outcome"] == "success")
    }

    @Test func theTokensDescriptionHidesTheToken() async throws {
        let client = try makeClient(environment: environment, transport: FakeTransport(responses: [.token("hidden-token")]))
        let token = try await client.token(for: "R")
        #expect(!"\(token)".contains("hidden-token"))
        #expect(!String(reflecting: Secret("x")).contains("x"))
    }
}

struct CorrelationIDTests {
    @Test func idsAreUUIDShapedAndUnique() {
        let ids = (0..<10_000).map { _ in CorrelationID.next().string }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(UUID(uuidString: id) != nil)
            #expect(id == id.lowercased())
            #expect(Array(id)[14] == "4")
        }
    }
}

struct PartitionDocumentTests {
    @Test func theHandWrittenJSONRoundTripsHostileText() throws {
        let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .clientID("a\"b\\c"), hostDiscriminator: "h")
        let descriptor = TokenCachePartitionDescriptor(
            key: key, source: .imds, identity: .clientID("a\"b\\c"), endpoint: "http://e/\u{1}\n")
        let now = Date(timeIntervalSince1970: 1_767_225_600)
        let entries = [
            TokenCacheEntry(
                partitionKey: key, resource: "https://r/\"quoted\"\n\t\u{7}é😀", accessToken: "tok\\en\u{0}",
                expiresOn: now.addingTimeInterval(3600), refreshOn: now.addingTimeInterval(1800), cachedAt: now),
            TokenCacheEntry(partitionKey: key, resource: "https://plain", accessToken: "t2", expiresOn: now, cachedAt: now),
        ]
        let bytes = PartitionDocument.encode(descriptor: descriptor, entries: entries)
        #expect(try JSONSerialization.jsonObject(with: Data(bytes)) is [String: Any])
        let decoded = try PartitionDocument.decode(bytes)
        #expect(decoded.descriptor == descriptor)
        #expect(Set(decoded.entries) == Set(entries))
    }

    /// Found by FuzzPartitionDocument (Fuzz/Regressions/FuzzPartitionDocument/duplicate-target): a
    /// document whose two records (under different JSON keys) name one resource decoded to two
    /// entries for it, and which one a partition then kept depended on the order the object was
    /// read in. The newer is kept, whatever the order, and the document round-trips.
    @Test func twoRecordsForOneResourceKeepTheNewerInEitherOrder() throws {
        let key = "mi1-4e5afc0e53caefd5e15d14f46c48d8a8ebd3e6204c8329fc27ecca748ac16703"
        func record(_ jsonKey: String, secret: String, cachedAt: Int) -> String {
            #""\#(jsonKey)":{"cached_at":"\#(cachedAt)","client_id":"system_assigned_managed_identity","credential_type":"AccessToken","environment":"managed_identity","expires_on":"1796125911","extended_expires_on":"1796125911","realm":"managed_identity","secret":"\#(secret)","target":"https://storage.azure.com","token_type":"Bearer"}"#
        }
        let older = record("-managed_identity-accesstoken-system_assigned_managed_identity-managed_identity-https://vault.azure.net-bearer", secret: "older", cachedAt: 1_796_122_311)
        let newer = record("-managed_identity-accesstoken-system_assigned_managed_identity-managed_identity-https://storage.azure.com-bearer", secret: "newer", cachedAt: 1_796_122_312)
        let header = #""ManagedIdentityPartition":{"endpoint":"http://127.0.0.1:47580/metadata/identity/oauth2/token","identity_kind":"system_assigned","partition_key":"\#(key)","source":"imds","version":1}"#
        for records in [[older, newer], [newer, older]] {
            let document = Array(("{\"AccessToken\":{" + records.joined(separator: ",") + "}," + header + "}").utf8)
            let decoded = try PartitionDocument.decode(document)
            #expect(decoded.entries.map(\.accessToken) == ["newer"])
            let again = try PartitionDocument.decode(PartitionDocument.encode(descriptor: decoded.descriptor, entries: decoded.entries))
            #expect(again.entries == decoded.entries)
        }
    }

    /// Found by FuzzPartitionDocument (Fuzz/Regressions/FuzzPartitionDocument/case-only-difference):
    /// two resources that differ only in case got one lower-cased JSON key, and one token was lost
    /// on the next read. Every entry survives a round trip, three of one key included.
    @Test func resourcesThatDifferOnlyInCaseAllSurviveARoundTrip() throws {
        let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")
        let descriptor = TokenCachePartitionDescriptor(key: key, source: .imds, identity: .systemAssigned, endpoint: "http://e")
        let now = Date(timeIntervalSince1970: 1_767_225_600)
        let entries = ["https://stoer", "https://stoEr", "https://STOER", "https://stoer-2"].map { resource in
            TokenCacheEntry(partitionKey: key, resource: resource, accessToken: "t-" + resource, expiresOn: now.addingTimeInterval(3600), cachedAt: now)
        }
        let bytes = PartitionDocument.encode(descriptor: descriptor, entries: entries)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect((object["AccessToken"] as? [String: Any])?.count == 4)
        #expect(Set(try PartitionDocument.decode(bytes).entries) == Set(entries))
    }
}
