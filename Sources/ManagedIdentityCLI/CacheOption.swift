import ArgumentParser
import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentityPostgresCache
import ManagedIdentitySQLiteCache

/// Where the tool keeps tokens: `memory`, `file:DIRECTORY`, `sqlite:PATH` or a `postgres://` URL.
enum CacheSpecification: ExpressibleByArgument, CustomStringConvertible {
    case memory
    case file(String)
    case sqlite(String)
    case postgres(String)

    init?(argument: String) {
        if argument == "memory" {
            self = .memory
        } else if argument.hasPrefix("file:"), argument.count > 5 {
            self = .file(Self.expand(String(argument.dropFirst(5))))
        } else if argument.hasPrefix("sqlite:"), argument.count > 7 {
            self = .sqlite(Self.expand(String(argument.dropFirst(7))))
        } else if argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://") {
            self = .postgres(argument)
        } else {
            return nil
        }
    }

    var description: String {
        switch self {
        case .memory: "memory"
        case .file(let path): "file:\(path)"
        case .sqlite(let path): "sqlite:\(path)"
        case .postgres(let url): Self.withoutPassword(url)
        }
    }

    /// A URL as it may be printed: its password replaced.
    static func withoutPassword(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "redacted"
        return components.string ?? "postgres://"
    }

    static var defaultValueDescription: String { "sqlite:$XDG_CACHE_HOME/managed-identity/tokens.sqlite" }

    /// A SQLite file under the user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`).
    static var `default`: CacheSpecification {
        let environment = ProcessInfo.processInfo.environment
        let base: String
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            base = xdg
        } else {
            base = (environment["HOME"] ?? NSHomeDirectory()) + "/.cache"
        }
        return .sqlite(base + "/managed-identity/tokens.sqlite")
    }

    private static func expand(_ path: String) -> String {
        path.hasPrefix("~/") ? (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst() : path
    }

    /// Runs `body` with the backend running, or `nil` for memory. A store that cannot be reached is
    /// one warning line: the token comes from the endpoint (the backend's rule, faults are misses);
    /// a configuration error fails the command.
    func withBackend<Result: Sendable>(
        encryptionKey: SymmetricKey?, options: CacheOptions, _ body: ((any InspectableTokenCacheBackend)?) async throws -> Result
    ) async throws -> Result {
        switch self {
        case .memory:
            return try await body(nil)
        case .file(let directory):
            return try await running(FileTokenCacheBackend(directory: directory, configuration: .init(encryptionKey: encryptionKey)), body)
        case .sqlite(let path):
            return try await running(SQLiteTokenCacheBackend(path: path, configuration: .init(encryptionKey: encryptionKey)), body)
        case .postgres(let url):
            guard
                var configuration = PostgresTokenCacheBackend.Configuration(
                    url: url, encryptionKey: encryptionKey, allowsPlaintext: options.allowPlaintext)
            else {
                throw CommandFailure(code: "cache", message: "\(description) is not a postgres://user[:password]@host[:port]/database URL")
            }
            configuration.hostID = options.hostID
            configuration.sharesUserAssignedIdentities = options.shareUserAssigned
            return try await running(try PostgresTokenCacheBackend(configuration: configuration), body)
        }
    }

    private func running<Backend: TokenCacheBackendService & InspectableTokenCacheBackend, Result: Sendable>(
        _ backend: Backend, _ body: ((any InspectableTokenCacheBackend)?) async throws -> Result
    ) async throws -> Result {
        try await backend.withRunning(startWithin: .seconds(1)) { backend in
            if case .opening(let reason) = backend.state {
                let why = reason.map { " (\($0))" } ?? ""
                FileHandle.standardError.write(
                    Data("warning: cache: \(description) cannot be reached yet\(why); going on without it\n".utf8))
            }
            return try await body(backend)
        }
    }
}

/// The options every command that touches a cache shares.
struct CacheOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where tokens are kept: memory, file:DIRECTORY, sqlite:PATH or postgres://user@host:port/database.",
            valueName: "cache"))
    var cache: CacheSpecification = .default

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A file holding the 32-byte key that encrypts the cache (raw, hex or base64).", valueName: "path"))
    var encryptionKeyFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "This host's id, for the system-assigned identity's partition and the PostgreSQL cache's scope "
                + "(default: host name and machine id). Set a stable one where the host name changes on restart.",
            valueName: "id"))
    var hostID: String?

    @Flag(help: "PostgreSQL cache: share user-assigned identities' tokens with the other hosts that use the database.")
    var shareUserAssigned = false

    @Flag(help: "PostgreSQL cache: store tokens in clear when no --encryption-key-file is given.")
    var allowPlaintext = false

    func encryptionKey() throws -> SymmetricKey? {
        guard let encryptionKeyFile else { return nil }
        do {
            return try TokenCacheEncryptionKey.load(contentsOfFile: encryptionKeyFile)
        } catch {
            throw CommandFailure(code: "cache", message: error.message)
        }
    }

    /// Runs `body` with the chosen backend open, or `nil` for the memory cache.
    func withBackend<Result: Sendable>(_ body: ((any InspectableTokenCacheBackend)?) async throws -> Result) async throws -> Result {
        let key = try encryptionKey()
        do {
            return try await cache.withBackend(encryptionKey: key, options: self, body)
        } catch let error as TokenCacheBackendError {
            throw CommandFailure(code: "cache", message: "\(cache): \(error)")
        }
    }
}

/// A failure reported as `error: <code>: <message>` with a non-zero exit.
struct CommandFailure: Error, CustomStringConvertible {
    var code: String
    var message: String
    var description: String { "\(code): \(message)" }
}

extension ManagedIdentitySource: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(rawValue: argument)
    }

    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// Prints `error: <code>: <message>` on stderr and exits non-zero.
func reportAndExit(_ error: any Error) -> Never {
    let line: String
    switch error {
    case let error as ManagedIdentityError: line = "error: \(error.code): \(error.message)"
    case let error as CommandFailure: line = "error: \(error.code): \(error.message)"
    default: line = "error: \(error)"
    }
    FileHandle.standardError.write(Data((line + "\n").utf8))
    exit(1)
}

/// One line of JSON, keys sorted, slashes unescaped (URLs stay readable).
func jsonLine(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
