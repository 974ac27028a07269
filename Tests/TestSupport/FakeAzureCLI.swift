import Foundation

/// A fake `az` executable in a private directory, for the Azure CLI credential's tests: a shell
/// script the test writes, which records each run's arguments (one per line) and counts its runs.
/// The credential finds it through ``environment``'s `PATH`; nothing real is ever run.
public struct FakeAzureCLI: Sendable {
    /// The directory holding `az` and what it records.
    public let directory: String

    /// Writes an `az` whose body is `script` (POSIX sh), after the lines that record the run.
    /// `$DIR` in the script is ``directory``.
    public init(script: String) throws {
        directory = try TemporaryDirectory.make()
        let path = directory + "/az"
        let text = """
            #!/bin/sh
            DIR='\(directory)'
            printf '%s\\n' "$@" > "$DIR/args"
            echo run >> "$DIR/runs"
            \(script)

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// An `az` that prints a token whose text is `token`, valid for `lifetime` seconds from the run.
    public static func signedIn(token: String = "cli-token", lifetime: Int = 3600) throws -> FakeAzureCLI {
        try FakeAzureCLI(
            script: #"""
                now=$(date +%s)
                printf '{"accessToken":"%s","expiresOn":"2099-01-01 00:00:00.000000","expires_on":%d,"subscription":"s","tenant":"t","tokenType":"Bearer"}\n' '\#(token)' $((now + \#(lifetime)))
                """#)
    }

    /// The environment to run it in: this directory first on `PATH`, then the system's (for `date`,
    /// `sleep` and `cat`, which the scripts use), so the fake is the `az` found.
    public var environment: [String: String] { ["PATH": directory + ":/usr/bin:/bin", "HOME": directory] }

    /// How many times it ran.
    public var runs: Int {
        ((try? String(contentsOfFile: directory + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// The arguments of its last run.
    public var lastArguments: [String] {
        ((try? String(contentsOfFile: directory + "/args", encoding: .utf8)) ?? "").split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
    }

    /// Removes the directory.
    public func remove() { try? FileManager.default.removeItem(atPath: directory) }
}
