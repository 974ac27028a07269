import ArgumentParser
import Crypto
import Foundation
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache

/// Where the tool keeps tokens: `memory`, `file:DIRECTORY` or `sqlite:PATH`.
enum CacheSpecification: ExpressibleByArgument, CustomStringConvertible {
    case memory
    case file(String)
    case sqlite(String)

    init?(argument: String) {
        if argument == "memory" {
            self = .memory
        } else if argument.hasPrefix("file:"), argument.count > 5 {
            self = .file(Self.expand(String(argument.dropFirst(5))))
        } else if argument.hasPrefix("sqlite:"), argument.count > 7 {
            self = .sqlite(Self.expand(String(argument.dropFirst(7))))
        } else {
            return nil
        }
    }

    var description: String {
        switch self {
        case .memory: "memory"
        case .file(let path): "file:\(path)"
        case .sqlite(let path): "sqlite:\(path)"
        }
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

    /// Opens the backend, or `nil` for memory.
    func makeBackend(encryptionKey: SymmetricKey?) throws -> (any InspectableTokenCacheBackend)? {
        switch self {
        case .memory:
            return nil
        case .file(let directory):
            return try FileTokenCacheBackend(
                directory: directory, configuration: .init(encryptionKey: encryptionKey))
        case .sqlite(let path):
            return try SQLiteTokenCacheBackend(path: path, configuration: .init(encryptionKey: encryptionKey))
        }
    }
}

/// The options every command that touches a cache shares.
struct CacheOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where tokens are kept: memory, file:DIRECTORY or sqlite:PATH.",
            valueName: "cache"))
    var cache: CacheSpecification = .default

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A file holding the 32-byte key that encrypts the cache (raw, hex or base64).", valueName: "path"))
    var encryptionKeyFile: String?

    func encryptionKey() throws -> SymmetricKey? {
        guard let encryptionKeyFile else { return nil }
        guard let data = FileManager.default.contents(atPath: encryptionKeyFile) else {
            throw CommandFailure(code: "cache", message: "cannot read the encryption key file \(encryptionKeyFile)")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if data.count == 32 { return SymmetricKey(data: data) }
        if text.utf8.count == 64, let bytes = Hex.decode(text) { return SymmetricKey(data: bytes) }
        if let bytes = Data(base64Encoded: text), bytes.count == 32 { return SymmetricKey(data: bytes) }
        throw CommandFailure(
            code: "cache", message: "the encryption key file must hold 32 bytes: raw, as 64 hex digits, or base64")
    }

    func openBackend() throws -> (any InspectableTokenCacheBackend)? {
        do {
            return try cache.makeBackend(encryptionKey: try encryptionKey())
        } catch let error as CommandFailure {
            throw error
        } catch {
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
