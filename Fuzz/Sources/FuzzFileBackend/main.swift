import Foundation
import FuzzSupport
import ManagedIdentity
import ManagedIdentityFileCache

// The file backend's loader: a partition file with any bytes (a damaged disk, another process's
// bug), read as a client reads it, then through a client that must either serve one of its own
// tokens or fetch. Invariants: no crash or hang, no entry of another partition, and a client is
// never served a token for another resource or one past its expiry.

let directory = fuzzDirectory + "/file-cache"
let descriptor = TokenCachePartitionDescriptor(
    key: TokenCachePartitionKey(
        source: .imds, endpoint: "http://127.0.0.1:47580/metadata/identity/oauth2/token", identity: .systemAssigned,
        hostDiscriminator: "fuzz"),
    source: .imds, identity: .systemAssigned, endpoint: "http://127.0.0.1:47580/metadata/identity/oauth2/token")
let now = Date(timeIntervalSince1970: 1_767_225_600)
let issued = HTTPTransportResponse(
    status: 200, body: Array(#"{"access_token":"fetched","expires_on":"1767229200","token_type":"Bearer"}"#.utf8))

final class FixedClock: ManagedIdentityClock {
    var now: Date { Date(timeIntervalSince1970: 1_767_225_600) }
    func sleep(for duration: Duration) async throws {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFileBackend(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let bytes = input.rest()
    let backend = FileTokenCacheBackend(directory: directory)
    runBlocking { try? await backend.start(within: .seconds(10)) }
    guard backend.state == .open else { finding("the backend did not open") }
    let path = backend.path(for: descriptor.key)
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
        finding("cannot write the partition file")
    }
    let entries = runBlocking { () -> [TokenCacheEntry]? in
        var version: FileTokenCacheBackend.Version?
        return try? await backend.read(descriptor.key, version: &version)
    }
    for entry in entries ?? [] where entry.partitionKey != descriptor.key {
        finding("an entry of another partition was loaded")
    }
    // The same file, as a client sees it.
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
    let token = runBlocking { () -> AccessToken? in
        let fresh = FileTokenCacheBackend(directory: directory)
        try? await fresh.start(within: .seconds(10))
        guard let client = try? ManagedIdentityClient(
                configuration: .init(
                    source: .imds,
                    environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:47580"]),
                    retriesEnabled: false, clock: FixedClock(), hostDiscriminator: "fuzz"),
                cache: TokenCache(backend: fresh), transport: ScriptedTransport([issued]))
        else { return nil }
        return try? await client.token(for: "https://vault.azure.net")
    }
    if let token {
        if token.resource != "https://vault.azure.net" { finding("a token for another resource") }
        if token.expiresOn <= now.addingTimeInterval(300) { finding("a token within its expiry margin was served") }
    } else {
        finding("no token although the endpoint answers")
    }
    return 0
}
