import Foundation
import ManagedIdentity
import ManagedIdentityCacheConformance
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import Synchronization

/// The two persistent backends, for tests that hold for both.
enum BackendKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case file, sqlite

    var description: String { rawValue }

    /// A fresh location inside a private temporary directory.
    func makeLocation() throws -> String {
        let directory = try TemporaryDirectory.make()
        return self == .file ? directory + "/cache" : directory + "/tokens.sqlite"
    }

    func open(_ location: String, key: SymmetricKeyBytes? = nil) throws -> any InspectableTokenCacheBackend {
        switch self {
        case .file:
            try FileTokenCacheBackend(directory: location, configuration: .init(encryptionKey: key?.key))
        case .sqlite:
            try SQLiteTokenCacheBackend(path: location, configuration: .init(encryptionKey: key?.key))
        }
    }

    /// The files that hold a location's data.
    func dataFiles(_ location: String) -> [String] {
        switch self {
        case .file:
            ((try? FileManager.default.contentsOfDirectory(atPath: location)) ?? [])
                .filter { $0.hasSuffix(".json") }.map { location + "/" + $0 }
        case .sqlite:
            [location, location + "-wal"].filter { FileManager.default.fileExists(atPath: $0) }
        }
    }
}

import Crypto

struct SymmetricKeyBytes: Sendable {
    let key: SymmetricKey
    init() { key = SymmetricKey(size: .bits256) }
}

enum TemporaryDirectory {
    /// A new 0700 directory under the system's temporary directory.
    static func make() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mi-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }
}

/// A client of one identity against an in-process token issuer; nothing leaves the process.
func makeClient(
    _ backend: any TokenCacheBackend, identity: ManagedIdentityID = .clientID("persistent-test"),
    endpoint: FakeTokenEndpoint, clock: ConformanceClock
) throws -> ManagedIdentityClient {
    try ManagedIdentityClient(
        identity: identity,
        configuration: .init(
            source: .imds,
            environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
            clock: clock, hostDiscriminator: "test-host"),
        cache: TokenCache(backend: backend),
        transport: endpoint)
}

/// The directory holding the built executables, next to the test bundle.
enum BuiltProducts {
    static var directory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("CacheStressTool").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    static func path(_ name: String) -> String { directory + "/" + name }
}

/// Runs a built executable and collects its output.
struct ChildProcess {
    let process = Process()
    let output = Pipe()
    let errors = Pipe()

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) {
        process.executableURL = URL(fileURLWithPath: BuiltProducts.path(executable))
        process.arguments = arguments
        var base = ProcessInfo.processInfo.environment
        // Never let a child reach the real IMDS address.
        base["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
        if let environment { base.merge(environment) { $1 } }
        process.environment = base
        process.standardOutput = output
        process.standardError = errors
    }

    func start() throws { try process.run() }

    /// Waits for the process and returns its exit status, standard output and standard error.
    func finish() -> (status: Int32, output: String, errors: String) {
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws
        -> (status: Int32, output: String, errors: String)
    {
        let child = ChildProcess(executable, arguments, environment: environment)
        try child.start()
        return child.finish()
    }
}
