import Foundation

/// Python packages a test needs and a fresh machine does not have (Microsoft's azure-identity),
/// provisioned by the test itself: a private virtual environment under the build directory, created
/// once from the package registry this machine reaches and reused afterwards. Nothing is installed
/// into the system's Python, and a missing registry fails the test with one line that says what is
/// missing and the command that installs it.
public enum PythonPackages {
    /// The requirement the workload identity interoperability test runs against.
    public static let azureIdentity = "azure-identity>=1.19"

    /// The interpreter of a virtual environment that has `requirement` (imported as `module`).
    /// - Throws: ``PythonPackagesError`` with the one line to show when it cannot be had.
    public static func interpreter(with requirement: String, importing module: String) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            // Process waits and the file lock block: a thread of its own, never the cooperative pool.
            Thread {
                continuation.resume(with: Result { try provision(requirement, module: module) })
            }.start()
        }
    }

    /// The build directory (`.build`, or the `--scratch-path` one): two levels above the products.
    static var buildDirectory: URL {
        URL(fileURLWithPath: BuiltProducts.directory).deletingLastPathComponent().deletingLastPathComponent()
    }

    private static let lock = NSLock()

    private static func provision(_ requirement: String, module: String) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let name = "python-" + requirement.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        let environment = buildDirectory.appendingPathComponent(name)
        let python = environment.appendingPathComponent("bin/python").path
        if imports(python, module) { return python }
        // One process at a time creates it (several test processes may start together).
        let lockPath = buildDirectory.appendingPathComponent(name + ".lock").path
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw PythonPackagesError.missing(requirement, environment: environment.path, reason: "cannot open \(lockPath)") }
        defer { close(descriptor) }
        flock(descriptor, LOCK_EX)
        defer { flock(descriptor, LOCK_UN) }
        if imports(python, module) { return python }

        let staging = buildDirectory.appendingPathComponent(name + ".staging-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        defer { try? FileManager.default.removeItem(at: staging) }
        let made = run("/usr/bin/env", ["python3", "-m", "venv", staging.path], seconds: 120)
        guard made.status == 0 else {
            throw PythonPackagesError.missing(requirement, environment: environment.path, reason: "python3 -m venv failed: \(lastLine(made.errors))")
        }
        let pip = run(
            staging.appendingPathComponent("bin/python").path,
            ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement], seconds: 600)
        guard pip.status == 0 else {
            throw PythonPackagesError.missing(requirement, environment: environment.path, reason: "pip could not install it: \(lastLine(pip.errors))")
        }
        // Moved into place only once complete: an interrupted install leaves nothing that looks ready.
        // (`bin/python` finds its environment from where it is, so the move keeps it working.)
        try? FileManager.default.removeItem(at: environment)
        try FileManager.default.moveItem(at: staging, to: environment)
        guard imports(python, module) else {
            throw PythonPackagesError.missing(requirement, environment: environment.path, reason: "the environment at \(environment.path) does not import \(module)")
        }
        return python
    }

    private static func imports(_ python: String, _ module: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: python) && run(python, ["-c", "import \(module)"], seconds: 60).status == 0
    }

    private static func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? "no output"
    }

    /// Runs a command to its end, killed after `seconds` (a registry that hangs must not hang the test).
    private static func run(_ executable: String, _ arguments: [String], seconds: Double) -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_NO_INPUT"] = "1"
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return (127, "\(executable): \(error)") }
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: killer)
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        return (process.terminationStatus, text)
    }
}

/// Why a Python package a test needs could not be had, in one line with the command that installs it.
public enum PythonPackagesError: Error, CustomStringConvertible {
    case missing(String, environment: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let requirement, let environment, let reason):
            "\(requirement) for Python is missing and could not be installed (\(reason)); install it with: "
                + "python3 -m venv \(environment) && \(environment)/bin/python -m pip install '\(requirement)'"
        }
    }
}
