import Foundation
import Synchronization

/// Helpers shared by the test targets that start real processes.

public enum TemporaryDirectory {
    /// A new 0700 directory under the system's temporary directory.
    public static func make() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mi-cache-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }
}

/// The directory holding the built executables, next to the test bundle.
public enum BuiltProducts {
    public static var directory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("CacheStressTool").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }

    public static func path(_ name: String) -> String { directory + "/" + name }
}

/// Runs a built executable and collects its output.
///
/// `@unchecked Sendable` because `Process` and `Pipe` are not marked Sendable: a child is started
/// by one task and then waited for by one thread at a time (``finished()`` hands the wait to a thread
/// of its own); the only other use, `kill` of its pid, is a system call that touches no shared state.
public struct ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let output = Pipe()
    public let errors = Pipe()
    /// The child's standard input; closing it tells a child that waits on it to go on.
    public let input = Pipe()

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) {
        // A bare name is one of this package's built executables; an absolute path is run as it is.
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : BuiltProducts.path(executable))
        process.arguments = arguments
        var base = ProcessInfo.processInfo.environment
        // Never let a child reach the real IMDS address.
        base["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = "http://127.0.0.1:9"
        if let environment { base.merge(environment) { $1 } }
        process.environment = base
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
    }

    /// Reads standard output until a line equal to `line` arrives; `false` when the output ends first.
    public func waitForLine(_ line: String) async -> Bool {
        let text = await readOutput { $0.split(separator: "\n").contains(Substring(line)) }
        return text.split(separator: "\n").contains(Substring(line))
    }

    public func start() throws { try process.run() }

    /// Waits for the process and returns its exit status, standard output and standard error.
    public func finish() -> (status: Int32, output: String, errors: String) {
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    /// ``finish()`` without blocking a thread of the cooperative pool (which an in-process emulator
    /// answering the child needs): the wait runs on a thread of its own.
    public func finished() async -> (status: Int32, output: String, errors: String) {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: self.finish()) }.start()
        }
    }

    /// Runs a process to its end without blocking a thread of the cooperative pool.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws
        -> (status: Int32, output: String, errors: String)
    {
        let child = ChildProcess(executable, arguments, environment: environment)
        try child.start()
        return await child.finished()
    }

    /// Reads standard output until `done` holds for what was read, on a thread of its own.
    /// - Returns: what was read (all of it, when the output ends first).
    public func readOutput(until done: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            Thread {
                var text = ""
                let handle = self.output.fileHandleForReading
                while !done(text) {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    text += String(decoding: data, as: UTF8.self)
                }
                continuation.resume(returning: text)
            }.start()
        }
    }
}

extension ChildProcess {
    /// Starts the process and returns it; a process that cannot start finishes with status 127.
    public func started() -> ChildProcess {
        do { try start() } catch { FileHandle.standardError.write(Data("cannot start: \(error)\n".utf8)) }
        return self
    }
}

/// Runs blocking work (a process to wait for, a file lock) on a thread of its own, so no thread of
/// the cooperative pool waits: with two of them on this machine kind, one blocked test stalls the
/// timers and continuations of every other.
public func onThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
