// Drives a persistent cache backend from a real process, for the cross-process and crash tests.
//
//   CacheStressTool write  <file|sqlite> <path> <writer> <count>   stores <count> tokens, printing
//                                                                   "committed <resource>" after each
//   CacheStressTool verify <file|sqlite> <path> <resource>...       exits 0 when every resource is
//                                                                   served from the cache, untouched
import Foundation
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache

/// Issues a token naming the resource, without any network.
struct LocalIssuer: HTTPTransport {
    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        let resource = request.queryValue("resource") ?? ""
        let body = #"{"access_token":"token-for-\#(resource)","expires_in":"86400","token_type":"Bearer"}"#
        return HTTPTransportResponse(status: 200, body: Array(body.utf8))
    }
}

struct Refused: HTTPTransport {
    func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        throw HTTPTransportError(kind: .refused, message: "verification must not fetch")
    }
}

func backend(_ kind: String, _ path: String) throws -> any TokenCacheBackend {
    kind == "file" ? try FileTokenCacheBackend(directory: path) : try SQLiteTokenCacheBackend(path: path)
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
    FileHandle.standardError.write(Data("usage: CacheStressTool write|verify file|sqlite PATH ...\n".utf8))
    exit(2)
}
do {
    let store = try backend(arguments[2], arguments[3])
    switch arguments[1] {
    case "write":
        let writer = arguments[4]
        let count = Int(arguments[5]) ?? 0
        let client = try client(store, transport: LocalIssuer())
        for index in 0..<count {
            let resource = "https://\(writer).example/\(index)"
            _ = try await client.token(for: resource)
            // Written straight to the descriptor, unbuffered, so a kill never loses a printed line.
            FileHandle.standardOutput.write(Data("committed \(resource)\n".utf8))
        }
    case "verify":
        let client = try client(store, transport: Refused())
        var missing = 0
        for resource in arguments.dropFirst(4) {
            let token = try? await client.token(for: resource)
            if token?.token != "token-for-\(resource)" || token?.tokenSource != .cache {
                print("missing \(resource)")
                missing += 1
            }
        }
        print("verified \(arguments.count - 4 - missing) missing \(missing)")
        exit(missing == 0 ? 0 : 1)
    default:
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
