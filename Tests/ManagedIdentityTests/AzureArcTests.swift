import Foundation
import ManagedIdentityTesting
import TestSupport
import Testing

@testable import ManagedIdentity

/// TV-09 and TV-10: the Azure Arc challenge, and every way a hostile challenge is refused.
struct AzureArcTests {
    /// A private key directory for one test.
    final class KeyDirectory {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("arc-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        @discardableResult
        func write(_ name: String, _ contents: String) throws -> String {
            let file = path + "/" + name
            try contents.write(toFile: file, atomically: false, encoding: .utf8)
            return file
        }
    }

    func challenge(_ realm: String?) -> HTTPTransportResponse {
        HTTPTransportResponse(
            status: 401, headers: realm.map { [HTTPHeader(name: "WWW-Authenticate", value: $0)] } ?? [], body: [])
    }

    func client(
        _ transport: FakeTransport, keys: KeyDirectory, identity: ManagedIdentityID = .systemAssigned
    ) throws -> ManagedIdentityClient {
        try makeClient(
            identity, environment: TestEnvironment.make(TestEnvironment.azureArc), transport: transport,
            arcKeyDirectory: keys.path)
    }

    @Test func happyPath() async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("foo.key", "secret")
        let transport = FakeTransport(responses: [
            challenge("Basic realm=\(keyFile)"), .json(200, #"{"access_token":"AT","expires_in":"1234","resource":"R"}"#),
        ])
        let token = try await client(transport, keys: keys).token(for: "R")
        #expect(token.token == "AT")
        #expect(token.refreshOn == nil)
        let requests = transport.requests
        #expect(requests.count == 2)
        #expect(requests[0].header("Authorization") == nil)
        #expect(requests[1].header("Authorization") == "Basic secret")
        #expect(requests[1].header("Metadata") == "true")
        #expect(requests[1].query == requests[0].query)
        #expect(requests[1].queryValue("api-version") == "2020-06-01")
    }

    @Test func keyContentIsSentRawNotTrimmed() async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("k.key", "a b\n")
        let transport = FakeTransport(responses: [challenge("Basic realm=\(keyFile)"), .token()])
        _ = try await client(transport, keys: keys).token(for: "R")
        #expect(transport.requests[1].header("Authorization") == "Basic a b\n")
    }

    @Test func aDirectSuccessIsAccepted() async throws {
        let keys = try KeyDirectory()
        let transport = FakeTransport(responses: [.token("AT")])
        #expect(try await client(transport, keys: keys).token(for: "R").token == "AT")
        #expect(transport.requestCount == 1)
    }

    enum Hostile: String, CaseIterable {
        case noHeader, noRealm, equalsInPath, textFile, traversal, otherDirectory, relativePath, tooLarge, symlink,
            hardLink, directory, missing, empty, fifo, controlCharacters, bareKeyName, quotedTraversal
    }

    @Test(arguments: Hostile.allCases)
    func hostileChallengesAreRefusedWithoutASecondRequest(_ hostile: Hostile) async throws {
        let keys = try KeyDirectory()
        let outside = try KeyDirectory()
        let secretOutside = try outside.write("stolen.key", "do-not-send")
        let realm: String?
        switch hostile {
        case .noHeader: realm = nil
        case .noRealm: realm = "Basic "
        case .equalsInPath: realm = "Basic realm=\(keys.path)/somefile=filename.key"
        case .textFile: realm = "Basic realm=\(try keys.write("secret.txt", "do-not-send"))"
        case .traversal: realm = "Basic realm=\(keys.path)/../\(URL(fileURLWithPath: outside.path).lastPathComponent)/stolen.key"
        case .otherDirectory: realm = "Basic realm=\(secretOutside)"
        case .relativePath: realm = "Basic realm=path/to/secret.key"
        case .tooLarge: realm = "Basic realm=\(try keys.write("big.key", String(repeating: "x", count: 5000)))"
        case .symlink:
            try FileManager.default.createSymbolicLink(atPath: keys.path + "/link.key", withDestinationPath: secretOutside)
            realm = "Basic realm=\(keys.path)/link.key"
        case .hardLink:
            try FileManager.default.linkItem(atPath: try keys.write("original.key", "do-not-send"), toPath: keys.path + "/hard.key")
            realm = "Basic realm=\(keys.path)/hard.key"
        case .directory:
            try FileManager.default.createDirectory(atPath: keys.path + "/dir.key", withIntermediateDirectories: false)
            realm = "Basic realm=\(keys.path)/dir.key"
        case .missing: realm = "Basic realm=\(keys.path)/absent.key"
        case .empty: realm = "Basic realm=\(try keys.write("empty.key", ""))"
        case .fifo:
            mkfifo(keys.path + "/pipe.key", 0o600)
            realm = "Basic realm=\(keys.path)/pipe.key"
        case .controlCharacters: realm = "Basic realm=\(keys.path)/a\u{7}.key"
        case .bareKeyName: realm = "Basic realm=\(keys.path)/.key"
        case .quotedTraversal: realm = "Basic realm=\"\(keys.path)/./x.key\""
        }
        let transport = FakeTransport(responses: [challenge(realm), .token()])
        await #expect {
            try await client(transport, keys: keys).token(for: "R")
        } throws: { error in
            let error = try #require(error as? ManagedIdentityError)
            return error.code == .requestFailed && error.source == .azureArc && !error.message.contains("do-not-send")
        }
        #expect(transport.requestCount == 1)
    }

    @Test func theKeyIsExactly4096BytesAtMost() async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("max.key", String(repeating: "k", count: 4096))
        let transport = FakeTransport(responses: [challenge("Basic realm=\(keyFile)"), .token()])
        _ = try await client(transport, keys: keys).token(for: "R")
        #expect(transport.requests[1].header("Authorization")?.count == 4096 + 6)
    }

    @Test func theSchemeAndRealmAreCaseInsensitive() async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("c.key", "k")
        let transport = FakeTransport(responses: [challenge("basic REALM=\(keyFile)"), .token()])
        _ = try await client(transport, keys: keys).token(for: "R")
        #expect(transport.requestCount == 2)
    }

    // The 2026 user-assigned behaviour: forward the selector, fail closed unless the answer names the identity.
    @Test(arguments: [
        (ManagedIdentityID.clientID("ABC"), #""client_id":"abc""#, true),
        (.objectID("oid"), #""object_id":"OID""#, true),
        (.resourceID("/sub/x"), #""msi_res_id":"/sub/x""#, true),
        (.resourceID("/sub/x"), #""mi_res_id":"/SUB/X""#, true),
        (.clientID("abc"), "", false),
        (.clientID("abc"), #""client_id":"other""#, false),
        (.objectID("oid"), #""client_id":"oid""#, false),
    ])
    func userAssignedIdentityMustBeEchoed(identity: ManagedIdentityID, echo: String, accepted: Bool) async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("u.key", "k")
        let body = #"{"access_token":"AT","expires_in":3600"# + (echo.isEmpty ? "" : "," + echo) + "}"
        let transport = FakeTransport(responses: [challenge("Basic realm=\(keyFile)"), .json(200, body)])
        let client = try client(transport, keys: keys, identity: identity)
        if accepted {
            #expect(try await client.token(for: "R").token == "AT")
        } else {
            await #expect(throws: ManagedIdentityError(code: .userAssignedNotSupported, message: "")) {
                try await client.token(for: "R")
            }
            #expect(client.cache.partition(for: client.partitionKey)?.entries.isEmpty ?? true)
        }
        #expect(transport.requests.allSatisfy { $0.queryValue(identity.kind == .resourceID ? "msi_res_id" : identity.kind.rawValue) == identity.id })
    }

    @Test func theSecondLegIsRetriedLikeOtherSources() async throws {
        let keys = try KeyDirectory()
        let keyFile = try keys.write("r.key", "k")
        let transport = FakeTransport(responses: [challenge("Basic realm=\(keyFile)"), .json(503, ""), .token()])
        let clock = ManualClock()
        let client = try makeClient(
            environment: TestEnvironment.make(TestEnvironment.azureArc), transport: transport, clock: clock,
            arcKeyDirectory: keys.path)
        _ = try await client.token(for: "R")
        #expect(transport.requestCount == 3)
        #expect(RetryDelays.areJittered(clock.sleeps, around: [.seconds(1)]), "\(clock.sleeps)")
    }
}
