import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityTesting
import Testing
import TestSupport

/// The `managed-identity` tool, run as a user runs it.
@Suite(.serialized)
struct CommandLineTests {
    /// Runs the tool with a private cache home, and IMDS pointed at a closed loopback port.
    func run(_ arguments: [String], environment: [String: String] = [:], home: String? = nil) async throws
        -> (status: Int32, output: String, errors: String)
    {
        var environment = environment
        environment["XDG_CACHE_HOME"] = try home ?? TemporaryDirectory.make()
        return try await ChildProcess.run("managed-identity", arguments, environment: environment)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func theReadmeCommandGetsATokenThenServesItFromTheCacheAfterARestart() async throws {
        let home = try TemporaryDirectory.make()
        let first = try await run(["token", "--emulator", "--resource", "https://vault.azure.net/.default"], home: home)
        #expect(first.status == 0, "\(first.errors)")
        let token = try json(first.output)
        #expect(token["token_source"] as? String == "identity_provider")
        #expect(token["resource"] as? String == "https://vault.azure.net")
        #expect(token["source"] as? String == "imds")
        #expect(token["token_type"] as? String == "Bearer")
        #expect((token["expires_on"] as? Int ?? 0) > Int(Date().timeIntervalSince1970))
        #expect(token.keys.contains("refresh_on"))
        #expect((token["cache"] as? String)?.hasPrefix("sqlite:\(home)/managed-identity/tokens.sqlite") == true)

        let second = try await run(["token", "--emulator", "--resource", "https://vault.azure.net/.default"], home: home)
        let cached = try json(second.output)
        #expect(cached["token_source"] as? String == "cache")
        #expect(cached["access_token"] as? String == token["access_token"] as? String)

        let list = try await run(["cache", "list"], home: home)
        #expect(list.status == 0)
        #expect(list.output.contains("https://vault.azure.net"))
        #expect(list.output.contains("imds"))
        #expect(!list.output.contains(token["access_token"] as? String ?? "?"))
    }

    /// `--verbose` tells the story in words on stderr (the source and why, the cache's answer, each
    /// attempt with its status and time) and holds no token or secret.
    @Test func verboseTellsTheSourceTheCacheOutcomeAndTheAttemptsWithoutSecrets() async throws {
        let home = try TemporaryDirectory.make()
        let keys = try TemporaryDirectory.make() + "/tokens"
        let arguments = [
            "token", "--emulator", "--source", "azure-arc", "--arc-key-dir", keys, "--resource", "https://vault.azure.net",
            "--output", "token", "--verbose",
        ]
        let first = try await run(arguments, home: home)
        #expect(first.status == 0, "\(first.errors)")
        let token = first.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let story = first.errors
        #expect(story.contains("source: azure-arc (chosen with --source)"))
        #expect(story.contains("cache: sqlite:\(home)/managed-identity/tokens.sqlite"))
        #expect(story.contains("(GET http://127.0.0.1:"))
        #expect(story.contains("status 401"), "the Arc challenge leg is told")
        #expect(story.contains("status 200"))
        #expect(story.contains("2 attempts"))
        #expect(story.contains("token from the identity endpoint (nothing was cached)"))
        #expect(story.range(of: #"in \d+ ms"#, options: .regularExpression) != nil)
        #expect(!story.contains("Starting service"), "the emulator's lifecycle is not the story")
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        #expect(!story.contains(token) && !story.contains(parts[1]), "the token reached stderr")
        // The emulator's key files are gone when it stops; no 64-hex-digit key appears either.
        #expect(story.range(of: "[0-9a-f]{64}", options: .regularExpression) == nil)

        let second = try await run(arguments, home: home)
        #expect(second.errors.contains("token from the cache (a cache hit)"))
        #expect(!second.errors.contains("sending managed identity request"))

        let detected = try await run(["token", "--emulator", "--resource", "https://vault.azure.net", "--cache", "memory", "--verbose"])
        #expect(detected.errors.contains("source: imds (no other source's variables are set"))
    }

    @Test(arguments: ManagedIdentitySource.allCases)
    func everySourceThroughItsEmulator(source: ManagedIdentitySource) async throws {
        var arguments = ["token", "--emulator", "--source", source.rawValue, "--resource", "https://storage.azure.com", "--cache", "memory", "--output", "token"]
        if source == .azureArc { arguments += ["--arc-key-dir", try TemporaryDirectory.make() + "/tokens"] }
        if source.supports(.clientID) { arguments += ["--client-id", EmulatedIdentity.defaults[1].clientID] }
        let result = try await run(arguments)
        #expect(result.status == 0, "\(result.errors)")
        let claims = try #require(EmulatedTokenClaims(token: result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(claims.source == source.rawValue)
        #expect(claims.audience == "https://storage.azure.com")
        #expect(claims.identity == (source.supports(.clientID) ? EmulatedIdentity.defaults[1].label : "system"))
    }

    @Test func anEmulatorProcessServesATokenProcessThroughItsEnvironmentFile() async throws {
        let directory = try TemporaryDirectory.make()
        let envFile = directory + "/emulator.env"
        let (emulator, ready) = try await startEmulator(["--source", "app-service", "--env-file", envFile])
        defer { if emulator.process.isRunning { kill(emulator.process.processIdentifier, SIGKILL) } }
        #expect(ready["event"] as? String == "ready")
        let environment = try #require(ready["environment"] as? [String: String])
        #expect(environment["IDENTITY_ENDPOINT"]?.hasPrefix("http://127.0.0.1:") == true)

        // Read the variables back as a shell would from the env file.
        let exports = try String(contentsOfFile: envFile, encoding: .utf8)
        var fromFile: [String: String] = [:]
        for row in exports.split(separator: "\n") where row.hasPrefix("export ") {
            let assignment = row.dropFirst(7)
            guard let equals = assignment.firstIndex(of: "=") else { continue }
            fromFile[String(assignment[..<equals])] = String(assignment[assignment.index(after: equals)...].dropFirst().dropLast())
        }
        #expect(fromFile == environment)

        let token = try await run(["token", "--resource", "https://vault.azure.net", "--cache", "memory"], environment: fromFile)
        #expect(token.status == 0, "\(token.errors)")
        #expect(try json(token.output)["source"] as? String == "app-service")

        kill(emulator.process.processIdentifier, SIGTERM)
        let stopped = await emulator.finished()
        #expect(stopped.status == 0)
    }

    @Test func theEmulatorProcessServesAProtectedResourceThatTakesItsTokens() async throws {
        let (emulator, ready) = try await startEmulator(["--source", "imds", "--protected-resource", "https://vault.azure.net"])
        defer { if emulator.process.isRunning { kill(emulator.process.processIdentifier, SIGKILL) } }
        let environment = try #require(ready["environment"] as? [String: String])
        let resourceURL = try #require(ready["resource_url"] as? String)
        let caFile = try #require(ready["resource_ca_file"] as? String)
        #expect(resourceURL.hasPrefix("https://127.0.0.1:"))
        let token = try await run(
            ["token", "--resource", "https://vault.azure.net", "--cache", "memory", "--output", "token"], environment: environment)
        #expect(token.status == 0, "\(token.errors)")
        // Another process, trusting only the emulator's CA file, calls the resource with and without the token.
        let script = """
            import ssl, sys, urllib.request, urllib.error
            context = ssl.create_default_context(cafile=sys.argv[2])
            for authorization in (sys.argv[3], None):
                request = urllib.request.Request(sys.argv[1] + "/secrets/db-password")
                if authorization: request.add_header("Authorization", "Bearer " + authorization)
                try:
                    print(urllib.request.urlopen(request, context=context).status)
                except urllib.error.HTTPError as error:
                    print(error.code, error.headers.get("WWW-Authenticate", "").split(" ")[0])
            """
        let calls = try await ChildProcess.run(
            "/usr/bin/env", ["python3", "-c", script, resourceURL, caFile, token.output.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(calls.output.split(separator: "\n") == ["200", "401 Bearer"], "\(calls.errors)")
        kill(emulator.process.processIdentifier, SIGTERM)
        _ = await emulator.finished()
        #expect(!FileManager.default.fileExists(atPath: caFile))
    }

    /// Starts `managed-identity emulator` and reads its ready line.
    func startEmulator(_ arguments: [String]) async throws -> (ChildProcess, [String: Any]) {
        let emulator = ChildProcess("managed-identity", ["emulator"] + arguments)
        try emulator.start()
        let line = await emulator.readOutput { $0.contains("\n") }
        return (emulator, try json(String(line.prefix { $0 != "\n" })))
    }

    @Test func theEmulatorsIdentitiesAreConfigurable() async throws {
        let (emulator, ready) = try await startEmulator(["--source", "imds", "--user-assigned", "my-client,my-object", "--no-system-assigned"])
        defer { kill(emulator.process.processIdentifier, SIGKILL) }
        let environment = try #require(ready["environment"] as? [String: String])
        let byObject = try await run(
            ["token", "--resource", "https://r", "--object-id", "my-object", "--cache", "memory", "--output", "token"],
            environment: environment)
        #expect(EmulatedTokenClaims(token: byObject.output.trimmingCharacters(in: .whitespacesAndNewlines))?.identity == "client_id:my-client")
        let system = try await run(["token", "--resource", "https://r", "--cache", "memory"], environment: environment)
        #expect(system.errors.hasPrefix("error: managed_identity_request_failed: "))
        #expect(system.errors.contains("No system-assigned managed identity"))
    }

    @Test func anUnreachableIMDSNamesTheVariablesAndSuggestsTheEmulator() async throws {
        let result = try await run(["token", "--resource", "https://vault.azure.net"])
        #expect(result.status != 0)
        #expect(result.output.isEmpty)
        #expect(result.errors.hasPrefix("error: managed_identity_unreachable_network: "))
        #expect(result.errors.contains("IDENTITY_ENDPOINT"))
        #expect(result.errors.contains("--emulator"))
    }

    @Test func configurationErrorsAreReportedWithTheirCode() async throws {
        let missing = try await run(
            ["token", "--resource", "R", "--source", "app-service", "--cache", "memory"], environment: ["IDENTITY_ENDPOINT": ""])
        #expect(missing.errors.hasPrefix("error: missing_managed_identity_env_var: "))
        let invalid = try await run(
            ["token", "--resource", "R", "--cache", "memory"],
            environment: ["IDENTITY_ENDPOINT": "127.0.0.1:41564/msi/token", "IDENTITY_HEADER": "super-secret"])
        #expect(invalid.errors.hasPrefix("error: invalid_managed_identity_endpoint: "))
        #expect(!invalid.errors.contains("super-secret"))
        let cloudShellUser = try await run(
            ["token", "--resource", "R", "--client-id", "x", "--cache", "memory"], environment: ["MSI_ENDPOINT": "http://127.0.0.1:9/token"])
        #expect(cloudShellUser.errors.hasPrefix("error: user_assigned_managed_identity_not_supported: "))
        let twoIdentities = try await run(["token", "--resource", "R", "--client-id", "a", "--object-id", "b"])
        #expect(twoIdentities.status != 0)
        #expect(twoIdentities.errors.contains("at most one"))
    }

    @Test func fileCacheEncryptionAndPurge() async throws {
        let directory = try TemporaryDirectory.make()
        let keyFile = directory + "/key"
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: keyFile))
        let cache = "file:\(directory)/cache"
        let common = ["--cache", cache, "--encryption-key-file", keyFile]
        let first = try await run(["token", "--emulator", "--resource", "https://a"] + common)
        #expect(first.status == 0, "\(first.errors)")
        let second = try await run(["token", "--emulator", "--resource", "https://a"] + common)
        #expect(try json(second.output)["token_source"] as? String == "cache")

        let noKey = try await run(["cache", "list", "--cache", cache])
        #expect(noKey.errors.hasPrefix("error: cache: "))
        #expect(noKey.errors.contains("encrypted"))

        let list = try await run(["cache", "list", "--output", "json"] + common)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.output.utf8)) as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows.first?["resource"] as? String == "https://a")
        #expect(rows.first?.keys.contains("access_token") == false)

        let purge = try await run(["cache", "purge"] + common)
        #expect(purge.output.contains("Removed 1 token"))
        let third = try await run(["token", "--emulator", "--resource", "https://a"] + common)
        #expect(try json(third.output)["token_source"] as? String == "identity_provider")
    }

    @Test(arguments: [[], ["token"], ["emulator"], ["cache"], ["cache", "list"], ["cache", "purge"]])
    func everyCommandHasHelp(command: [String]) async throws {
        let result = try await run(command + ["--help"])
        #expect(result.status == 0)
        #expect(result.output.contains("USAGE:"))
    }

    @Test func forceRefreshAsksTheEndpointAgain() async throws {
        let home = try TemporaryDirectory.make()
        _ = try await run(["token", "--emulator", "--resource", "https://f"], home: home)
        let forced = try await run(["token", "--emulator", "--resource", "https://f", "--force-refresh"], home: home)
        #expect(try json(forced.output)["token_source"] as? String == "identity_provider")
    }

    /// A PostgreSQL cache that is down when the tool starts is one warning line: the token comes
    /// from the endpoint, the command succeeds, and it takes at most 3 s more than with no cache.
    /// Once the database is back the same command stores the token and the next one is a hit.
    @Test func aPostgresCacheThatIsDownCostsOneWarningNotTheToken() async throws {
        let server = try await PostgresServer.started()
        defer { try? server.stopBlocking() }
        let url = server.url(try await server.makeDatabase())
        try await server.stop()
        let arguments = ["token", "--emulator", "--resource", "https://down.example", "--allow-plaintext"]

        let memoryStarted = ContinuousClock.now
        let baseline = try await run(arguments + ["--cache", "memory"])
        let memoryTook = ContinuousClock.now - memoryStarted
        #expect(baseline.status == 0, "\(baseline.errors)")

        let downStarted = ContinuousClock.now
        let down = try await run(arguments + ["--cache", url])
        let downTook = ContinuousClock.now - downStarted
        #expect(down.status == 0, "\(down.errors)")
        #expect(try json(down.output)["token_source"] as? String == "identity_provider")
        let lines = down.errors.split(separator: "\n")
        #expect(lines.count == 1, "one warning line, no more: \(down.errors)")
        #expect(lines.first?.hasPrefix("warning: cache: postgres://") == true)
        #expect(lines.first?.contains("going on without it") == true)
        #expect(downTook - memoryTook < .seconds(3), "a down database cost \(downTook) against \(memoryTook) with no cache")

        try await server.start()
        let stored = try await run(arguments + ["--cache", url])
        #expect(stored.status == 0, "\(stored.errors)")
        #expect(stored.errors.isEmpty, "\(stored.errors)")
        let hit = try await run(arguments + ["--cache", url])
        #expect(try json(hit.output)["token_source"] as? String == "cache")
        #expect(try json(hit.output)["access_token"] as? String == json(stored.output)["access_token"] as? String)
    }
}
