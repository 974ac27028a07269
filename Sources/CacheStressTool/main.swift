// Drives a persistent cache backend from a real process, for the cross-process, crash and
// thread-pool tests.
//
//   CacheStressTool write  <file|sqlite> <path> <writer> <count>   stores <count> tokens, printing
//                                                                   "committed <resource>" after each
//   CacheStressTool verify <file|sqlite> <path> <resource>...       exits 0 when every resource is
//                                                                   served from the cache, untouched
//   CacheStressTool hold-write-lock sqlite <path>                   takes the database's write lock,
//                                                                   prints "holding", and keeps it
//                                                                   until its standard input closes
import Foundation
import GRDB
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import ManagedIdentityTesting

struct Refused: HTTPTransport {
    /// A fake: no endpoint behind it to protect, so no admission limits unless a test sets them.
    var isBoundByEndpointLimits: Bool { false }

    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        throw HTTPTransportError(kind: .refused, message: "verification must not fetch")
    }
}

/// The backend, open. Its lock waits are long on purpose: "committed" is printed once a write
/// returned, and a write the default 1 s bound kept in memory for later would not be on disk yet.
func backend(_ kind: String, _ path: String) async throws -> any TokenCacheBackend {
    let backend: any TokenCacheBackendService =
        kind == "file"
        ? FileTokenCacheBackend(directory: path, configuration: .init(writeLockTimeout: .seconds(60)))
        : SQLiteTokenCacheBackend(path: path, configuration: .init(busyTimeout: .seconds(60)))
    try await backend.start(within: .seconds(60))
    guard backend.state == .open else { throw TokenCacheBackendError(kind: .io, message: "the cache did not open: \(backend.state)") }
    return backend
}

func client(_ backend: any TokenCacheBackend, transport: any HTTPTransport) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: .clientID("stress"),
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
            hostDiscriminator: "stress"),
        cache: TokenCache(backend: backend, maximumEntriesPerPartition: 100_000),
        transport: transport)
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    FileHandle.standardError.write(Data("usage: CacheStressTool write|verify|hold-write-lock file|sqlite PATH ...\n".utf8))
    exit(2)
}
do {
    switch arguments[1] {
    case "write":
        let writer = arguments[4]
        let count = Int(arguments[5]) ?? 0
        let client = try client(try await backend(arguments[2], arguments[3]), transport: FakeTokenEndpoint(hostName: "stress", clock: SystemClock()))
        for index in 0..<count {
            let resource = "https://\(writer).example/\(index)"
            _ = try await client.token(for: resource)
            // Written straight to the descriptor, unbuffered, so a kill never loses a printed line.
            FileHandle.standardOutput.write(Data("committed \(resource)\n".utf8))
        }
    case "verify":
        let client = try client(try await backend(arguments[2], arguments[3]), transport: Refused())
        var missing = 0
        for resource in arguments.dropFirst(4) {
            let token = try? await client.token(for: resource)
            if token.flatMap({ TokenClaims(token: $0.token) })?.audience != resource || token?.tokenSource != .cache {
                print("missing \(resource)")
                missing += 1
            }
        }
        print("verified \(arguments.count - 4 - missing) missing \(missing)")
        exit(missing == 0 ? 0 : 1)
    case "hold-write-lock":
        // A plain connection, so this process holds SQLite's lock exactly as another writer would.
        let queue = try DatabaseQueue(path: arguments[3])
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN IMMEDIATE")
            FileHandle.standardOutput.write(Data("holding\n".utf8))
            _ = FileHandle.standardInput.readDataToEndOfFile()
            try db.execute(sql: "ROLLBACK")
        }
    default:
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
