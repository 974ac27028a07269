import Foundation
import GRDB
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityTesting
import TestSupport
import Testing

@testable import ManagedIdentityFileCache
@testable import ManagedIdentitySQLiteCache

/// Unreadable data is moved aside and the cache goes on empty: never a crash, never a wrong token,
/// never every later call failing.
struct CorruptionTests {
    enum FileDamage: String, CaseIterable {
        case truncated, garbage, empty, futureVersion, wrongTypes, otherPartition, symlink, directory
    }

    @Test(arguments: FileDamage.allCases)
    func aDamagedPartitionFileIsMovedAside(damage: FileDamage) async throws {
        let location = try BackendKind.file.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let writer = try makeClient(try await opened(FileTokenCacheBackend(directory: location)), endpoint: endpoint, clock: clock)
        let original = try await writer.token(for: "https://damaged")
        let other = try makeClient(try await opened(FileTokenCacheBackend(directory: location)), identity: .clientID("other"), endpoint: endpoint, clock: clock)
        _ = try await other.token(for: "https://damaged")

        let path = location + "/" + writer.partitionKey.rawValue + ".json"
        let bytes = try #require(FileManager.default.contents(atPath: path))
        let text = String(decoding: bytes, as: UTF8.self)
        try FileManager.default.removeItem(atPath: path)
        switch damage {
        case .truncated: try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: path))
        case .garbage: try Data((0..<500).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: path))
        case .empty: try Data().write(to: URL(fileURLWithPath: path))
        case .futureVersion: try Data(text.replacingOccurrences(of: #""version":1"#, with: #""version":9"#).utf8).write(to: URL(fileURLWithPath: path))
        case .wrongTypes: try Data(text.replacingOccurrences(of: #""expires_on":""#, with: #""expires_on":["#).utf8).write(to: URL(fileURLWithPath: path))
        case .otherPartition:
            try FileManager.default.copyItem(atPath: location + "/" + other.partitionKey.rawValue + ".json", toPath: path)
        case .symlink: try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/etc/hostname")
        case .directory: try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }

        let restarted = try makeClient(try await opened(FileTokenCacheBackend(directory: location)), endpoint: endpoint, clock: clock)
        let token = try await restarted.token(for: "https://damaged")
        #expect(token.tokenSource == .identityProvider)
        #expect(token.token != original.token)
        let claims = try #require(TokenClaims(token: token.token))
        #expect(claims.identity == "client_id:persistent-test")
        #expect(try await restarted.token(for: "https://damaged").tokenSource == .cache)
        let names = try FileManager.default.contentsOfDirectory(atPath: location)
        #expect(names.contains { $0.hasPrefix(writer.partitionKey.rawValue + ".json.corrupt-") })
        // A fresh process reads what the recovery wrote.
        let again = try makeClient(try await opened(FileTokenCacheBackend(directory: location)), endpoint: endpoint, clock: clock)
        #expect(try await again.token(for: "https://damaged").token == token.token)
    }

    enum DatabaseDamage: String, CaseIterable {
        case garbage, truncated, futureMigration, foreignSchema, textFile
    }

    @Test(arguments: DatabaseDamage.allCases)
    func aDamagedDatabaseIsMovedAside(damage: DatabaseDamage) async throws {
        let path = try BackendKind.sqlite.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        do {
            let writer = try makeClient(try await opened(SQLiteTokenCacheBackend(path: path)), endpoint: endpoint, clock: clock)
            for index in 0..<50 { _ = try await writer.token(for: "https://filler/\(index)") }
        }
        switch damage {
        case .garbage:
            try Data((0..<8192).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: path))
        case .truncated:
            let bytes = try #require(FileManager.default.contents(atPath: path))
            try? FileManager.default.removeItem(atPath: path + "-wal")
            try Data(bytes.prefix(bytes.count / 3)).write(to: URL(fileURLWithPath: path))
        case .futureMigration:
            let queue = try DatabaseQueue(path: path)
            try await queue.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('0099_from_the_future')") }
            try queue.close()
        case .foreignSchema:
            try FileManager.default.removeItem(atPath: path)
            let queue = try DatabaseQueue(path: path)
            try await queue.write { try $0.execute(sql: "CREATE TABLE tokens (id INTEGER PRIMARY KEY, token BLOB)") }
            try queue.close()
        case .textFile:
            try Data("this is not a database\n".utf8).write(to: URL(fileURLWithPath: path))
        }
        chmod(path, 0o600)

        let restarted = try makeClient(try await opened(SQLiteTokenCacheBackend(path: path)), endpoint: endpoint, clock: clock)
        let token = try await restarted.token(for: "https://damaged")
        #expect(token.tokenSource == .identityProvider)
        #expect(try await restarted.token(for: "https://damaged").tokenSource == .cache)
        let names = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        #expect(names.contains { $0.hasPrefix("tokens.sqlite.corrupt-") })
        let again = try makeClient(try await opened(SQLiteTokenCacheBackend(path: path)), endpoint: endpoint, clock: clock)
        #expect(try await again.token(for: "https://damaged").token == token.token)
    }

    @Test func aSwappedEncryptedRowIsIgnoredNotServed() async throws {
        let path = try BackendKind.sqlite.makeLocation()
        let key = SymmetricKeyBytes()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(try await opened(SQLiteTokenCacheBackend(path: path, configuration: .init(encryptionKey: key.key))), endpoint: endpoint, clock: clock)
        _ = try await client.token(for: "https://a")
        _ = try await client.token(for: "https://b")
        let queue = try DatabaseQueue(path: path)
        try await queue.write { db in
            let sealedB = try String.fetchOne(db, sql: "SELECT access_token FROM tokens WHERE resource = 'https://b'")
            try db.execute(sql: "UPDATE tokens SET access_token = ? WHERE resource = 'https://a'", arguments: [sealedB])
        }
        try queue.close()
        let restarted = try makeClient(try await opened(SQLiteTokenCacheBackend(path: path, configuration: .init(encryptionKey: key.key))), endpoint: endpoint, clock: clock)
        let token = try await restarted.token(for: "https://a")
        #expect(token.tokenSource == .identityProvider)
        #expect(TokenClaims(token: token.token)?.audience == "https://a")
    }
}

/// A SQLite row whose values have other types than the schema says (a table written without STRICT
/// or NOT NULL by another program passes the schema check) is ignored, never a trap in GRDB.
struct SQLiteRowDecodingTests {
    @Test func aRowWithAValueOfTheWrongTypeDoesNotDecode() {
        let good: [String: DatabaseValue] = [
            "resource": "https://r".databaseValue, "token_type": "Bearer".databaseValue, "access_token": "t".databaseValue,
            "expires_on": Int64(2_000_000_000).databaseValue, "refresh_on": DatabaseValue.null, "cached_at": Int64(1).databaseValue,
        ]
        #expect(TokenRow(Row(good)) == TokenRow(resource: "https://r", tokenType: "Bearer", storedToken: "t", expiresOn: 2_000_000_000, refreshOn: nil, cachedAt: 1))
        let damaged: [(String, DatabaseValue)] = [
            ("resource", .null), ("token_type", Data([0x00]).databaseValue), ("access_token", .null),
            ("expires_on", 2.5.databaseValue), ("expires_on", "soon".databaseValue), ("refresh_on", "later".databaseValue),
            ("cached_at", .null),
        ]
        for (column, value) in damaged {
            var row = good
            row[column] = value
            #expect(TokenRow(Row(row)) == nil, "\(column) = \(value) decoded")
        }
        var missing = good
        missing["resource"] = nil
        #expect(TokenRow(Row(missing)) == nil)
    }

    @Test func aPartitionRowWithAValueOfTheWrongTypeDoesNotDecode() {
        let key = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")
        let good: [String: DatabaseValue] = [
            "partition_key": key.rawValue.databaseValue, "source": "imds".databaseValue, "identity_kind": "system_assigned".databaseValue,
            "identity_id": DatabaseValue.null, "endpoint": "http://e".databaseValue,
        ]
        #expect(PartitionRow(Row(good))?.descriptor.key == key)
        for column in good.keys {
            var row = good
            row[column] = Int64(7).databaseValue
            #expect(PartitionRow(Row(row)) == nil, "\(column) as an integer decoded")
        }
    }
}
