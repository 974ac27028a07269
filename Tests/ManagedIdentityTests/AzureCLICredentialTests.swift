import Foundation
import ManagedIdentityTesting
import TestSupport
import Testing
import TokenCredentials

@testable import ManagedIdentity

@Suite struct AzureCLICredentialTests {
    let vault = TokenRequestContext(scopes: ["https://vault.azure.net/.default"])

    func credential(_ cli: FakeAzureCLI, tenantID: String? = nil, timeout: Duration = .seconds(30)) -> AzureCLICredential {
        AzureCLICredential(configuration: .init(tenantID: tenantID, processTimeout: timeout, environment: cli.environment))
    }

    @Test func theSignedInCLIGivesATokenAndItIsKeptInMemory() async throws {
        let cli = try FakeAzureCLI.signedIn(token: "cli-token-1")
        defer { cli.remove() }
        let credential = credential(cli)
        let token = try await credential.token(for: vault)
        #expect(token.token == "cli-token-1")
        #expect(abs(token.expiresOn.timeIntervalSinceNow - 3600) < 60)
        #expect(try await credential.token(for: vault) == token)
        #expect(cli.runs == 1)
        #expect(cli.lastArguments == ["account", "get-access-token", "--output", "json", "--resource", "https://vault.azure.net"])
    }

    @Test func aTokenWithinTheMarginIsAskedForAgain() async throws {
        let cli = try FakeAzureCLI.signedIn(lifetime: 200)
        defer { cli.remove() }
        let credential = credential(cli)
        _ = try await credential.token(for: vault)
        _ = try await credential.token(for: vault)
        #expect(cli.runs == 2)
    }

    @Test func theTenantIsItsOwnArgumentAndTheRequestsTenantWins() async throws {
        let cli = try FakeAzureCLI.signedIn()
        defer { cli.remove() }
        let credential = credential(cli, tenantID: "contoso.onmicrosoft.com")
        _ = try await credential.token(for: vault)
        #expect(cli.lastArguments.suffix(2) == ["--tenant", "contoso.onmicrosoft.com"])
        _ = try await credential.token(for: TokenRequestContext(scopes: vault.scopes, tenantID: "7e7a7e7a-0000-4000-8000-00000000e17a"))
        #expect(cli.lastArguments.suffix(2) == ["--tenant", "7e7a7e7a-0000-4000-8000-00000000e17a"])
        #expect(cli.runs == 2)
    }

    @Test func concurrentCallersShareOneRun() async throws {
        // The fake waits for a gate file, so every caller arrives while the first run is going.
        let cli = try FakeAzureCLI(
            script: #"""
                while [ ! -e "$DIR/gate" ]; do sleep 0.02; done
                printf '{"accessToken":"shared","expires_on":%d,"tokenType":"Bearer"}\n' $(( $(date +%s) + 3600 ))
                """#)
        defer { cli.remove() }
        let credential = credential(cli)
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { try await credential.token(for: vault).token } }
            while cli.runs == 0 { try await Task.sleep(for: .milliseconds(10)) }
            FileManager.default.createFile(atPath: cli.directory + "/gate", contents: nil)
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(tokens == Array(repeating: "shared", count: 20))
        #expect(cli.runs == 1)
    }

    @Test func aCLINobodySignedInToSaysRunAzLogin() async throws {
        let cli = try FakeAzureCLI(script: #"echo "ERROR: Please run 'az login' to setup account." >&2; exit 1"#)
        defer { cli.remove() }
        let error = await #expect(throws: AzureCLICredentialError.self) { try await credential(cli).token(for: vault) }
        #expect(error?.code == .notSignedIn)
        #expect(error?.credentialIsUnavailable == true)
        #expect(error?.message.contains("az login") == true)
    }

    @Test func noCLIOnThePathIsUnavailableAndNothingRuns() async throws {
        let empty = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let credential = AzureCLICredential(configuration: .init(environment: ["PATH": empty]))
        let error = await #expect(throws: AzureCLICredentialError.self) { try await credential.token(for: vault) }
        #expect(error?.code == .notInstalled)
        #expect(error?.credentialIsUnavailable == true)
        #expect(error?.message.contains("https://aka.ms/azure-cli") == true)
    }

    @Test func aCLIThatHangsIsKilledAtTheBound() async throws {
        let cli = try FakeAzureCLI(script: #"echo $$ > "$DIR/pid"; exec sleep 600"#)
        defer { cli.remove() }
        let started = ContinuousClock.now
        let error = await #expect(throws: AzureCLICredentialError.self) {
            try await credential(cli, timeout: .seconds(1)).token(for: vault)
        }
        #expect(error?.code == .timedOut)
        #expect(error?.credentialIsUnavailable == false)
        // A generous bound on a real wait: the bound is 1 s.
        #expect(ContinuousClock.now - started < .seconds(10))
        try await Self.expectStopped(cli)
    }

    @Test(arguments: [
        ("Traceback (most recent call last):\nValueError: not JSON", 0),
        (#"{"expires_on": 1}"#, 0),
        (#"{"accessToken": "secret-looking-token"}"#, 0),
        (#"{"accessToken": "secret-looking-token", "expiresOn": "tomorrow"}"#, 0),
    ])
    func aCLIThatPrintsGarbageGivesATypedErrorWithoutWhatItPrinted(output: String, status: Int) async throws {
        let cli = try FakeAzureCLI(script: "cat <<'OUT'\n\(output)\nOUT\nexit \(status)")
        defer { cli.remove() }
        let error = await #expect(throws: AzureCLICredentialError.self) { try await credential(cli).token(for: vault) }
        #expect(error?.code == .unparseableOutput)
        #expect(error?.message.contains("secret-looking-token") == false)
        #expect(error?.message.contains("Traceback") == false)
    }

    @Test func anotherFailureKeepsTheCLIsErrorWithoutTokens() async throws {
        let cli = try FakeAzureCLI(
            script: #"echo "ERROR: AADSTS70043: The refresh token has expired. eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln" >&2; exit 2"#)
        defer { cli.remove() }
        let error = await #expect(throws: AzureCLICredentialError.self) { try await credential(cli).token(for: vault) }
        #expect(error?.code == .failed)
        #expect(error?.message.contains("AADSTS70043") == true)
        #expect(error?.message.contains("exit status 2") == true)
        #expect(error?.message.contains("eyJ") == false)
    }

    @Test(arguments: [
        ["https://vault.azure.net/.default; rm -rf /"], ["--help"], ["https://vault.azure.net $(id)"], [],
        ["https://vault.azure.net/.default", "https://storage.azure.com/.default"],
    ])
    func aScopeThatCouldBeReadAsAnythingElseNeverReachesTheCLI(scopes: [String]) async throws {
        let cli = try FakeAzureCLI.signedIn()
        defer { cli.remove() }
        let error = await #expect(throws: AzureCLICredentialError.self) {
            try await credential(cli).token(for: TokenRequestContext(scopes: scopes))
        }
        #expect(error?.code == .invalidScope)
        #expect(cli.runs == 0)
    }

    @Test func aTenantThatIsNotATenantIdNeverReachesTheCLI() async throws {
        let cli = try FakeAzureCLI.signedIn()
        defer { cli.remove() }
        for tenant in ["a b", "--debug", "x;y", ""] {
            await #expect(throws: AzureCLICredentialError(code: .invalidTenant, message: "")) {
                try await credential(cli, tenantID: tenant).token(for: vault)
            }
        }
        #expect(cli.runs == 0)
    }

    @Test func aClaimsChallengeNamesTheLoginThatAnswersIt() async throws {
        let cli = try FakeAzureCLI.signedIn()
        defer { cli.remove() }
        let claims = #"{"access_token":{"nbf":{"essential":true,"value":"1"}}}"#
        let error = await #expect(throws: AzureCLICredentialError.self) {
            try await credential(cli).token(for: TokenRequestContext(scopes: vault.scopes, claims: claims))
        }
        #expect(error?.code == .claimsChallenge)
        #expect(error?.message.contains("az login --claims-challenge \"\(Data(claims.utf8).base64EncodedString())\"") == true)
        #expect(cli.runs == 0)
    }

    /// The run goes on for other callers (as a token request does), and ends at its bound.
    @Test func aCallerWhoCancelsStopsWaitingAtOnceAndTheRunEndsAtItsBound() async throws {
        let cli = try FakeAzureCLI(script: #"echo $$ > "$DIR/pid"; exec sleep 600"#)
        defer { cli.remove() }
        let credential = credential(cli, timeout: .seconds(2))
        let task = Task { try await credential.token(for: vault) }
        while !FileManager.default.fileExists(atPath: cli.directory + "/pid") { try await Task.sleep(for: .milliseconds(10)) }
        let started = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(ContinuousClock.now - started < .seconds(5))
        try await Self.expectStopped(cli)
    }

    /// Waits (5 s at most) for the fake CLI whose pid it wrote to be gone.
    static func expectStopped(_ cli: FakeAzureCLI) async throws {
        let text = try String(contentsOfFile: cli.directory + "/pid", encoding: .utf8)
        let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        var alive = true
        for _ in 0..<250 where alive {
            alive = kill(pid, 0) == 0 && !isZombie(pid)
            if alive { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(!alive, "the CLI (pid \(pid)) is still running")
    }

    // MARK: In a chain

    @Test func onADevelopersMachineTheChainFallsThroughToTheCLI() async throws {
        let cli = try FakeAzureCLI.signedIn(token: "developer-token")
        defer { cli.remove() }
        // No managed identity here: IMDS's probe is refused on loopback.
        let noIMDS = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "connection refused")
        }
        let chain = ChainedTokenCredential(
            ManagedIdentityCredential(configuration: .init(environment: TestEnvironment.make(), clock: ManualClock()), transport: noIMDS),
            credential(cli))
        #expect(try await chain.token(for: vault).token == "developer-token")
        #expect(try await chain.token(for: vault).token == "developer-token")
        #expect(noIMDS.requestCount == 1)
        #expect(cli.runs == 1)
    }

    @Test func whenNeitherAppliesTheChainSaysWhyForEach() async throws {
        let cli = try FakeAzureCLI(script: #"echo "ERROR: Please run 'az login' to setup account." >&2; exit 1"#)
        defer { cli.remove() }
        let noIMDS = FakeTransport { _, _ throws(HTTPTransportError) in
            throw HTTPTransportError(kind: .connectionFailed, message: "connection refused")
        }
        let chain = ChainedTokenCredential(
            ManagedIdentityCredential(configuration: .init(environment: TestEnvironment.make(), clock: ManualClock()), transport: noIMDS),
            credential(cli))
        let error = await #expect(throws: ChainedTokenCredentialError.self) { try await chain.token(for: vault) }
        #expect(error?.attempts.map(\.credential) == ["ManagedIdentityCredential", "AzureCLICredential"])
        #expect(error?.attempts.allSatisfy(\.wasUnavailable) == true)
        #expect(error?.description.contains("No managed identity on this host") == true)
        #expect(error?.description.contains("Run az login") == true)
    }

    // MARK: The answer, without running anything

    @Test func theOlderLocalTimeExpiryIsReadInTheMachinesZone() throws {
        let output = Array(#"{"accessToken":"t","expiresOn":"2026-12-03 08:00:00.000000","tokenType":"Bearer"}"#.utf8)
        let utc = try #require(TimeZone(identifier: "UTC"))
        let token = try AzureCLIInvocation.token(fromOutput: output, timeZone: utc)
        #expect(token.expiresOn == Date(timeIntervalSince1970: 1_796_284_800))
        let later = try AzureCLIInvocation.token(fromOutput: output, timeZone: try #require(TimeZone(identifier: "Europe/Berlin")))
        #expect(later.expiresOn == Date(timeIntervalSince1970: 1_796_284_800 - 3600))
        let epoch = try AzureCLIInvocation.token(fromOutput: Array(#"{"accessToken":"t","expires_on":"1796284800","expiresOn":"garbage"}"#.utf8))
        #expect(epoch.expiresOn == Date(timeIntervalSince1970: 1_796_284_800))
    }

    @Test func theCLIInheritsNoDescriptorButItsStandardOnes() async throws {
        // A descriptor the service opened without close-on-exec, placed high so it is not the one
        // `ls` opens itself to read the directory.
        let opened = open("/dev/null", O_RDONLY)
        #expect(opened >= 0)
        let leaked = dup2(opened, 217)
        close(opened)
        defer { close(leaked) }
        #expect(leaked == 217)
        let outcome = try await BoundedProcess.run(
            executable: "/bin/ls", arguments: ["/proc/self/fd"], environment: [:], timeout: .seconds(30))
        let descriptors = Set(String(decoding: outcome.standardOutput, as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(outcome.exitStatus == 0)
        #expect(descriptors.isSuperset(of: ["0", "1", "2"]))
        #expect(!descriptors.contains("217"), "the child inherited \(descriptors.sorted())")
        // At most one more: the directory `ls` itself reads.
        #expect(descriptors.count <= 4, "the child inherited \(descriptors.sorted())")
    }

    @Test func failuresAreSortedByWhatTheyMean() {
        #expect(AzureCLIInvocation.failure(exitStatus: 127, standardError: "sh: az: not found").code == .notInstalled)
        #expect(AzureCLIInvocation.failure(exitStatus: 1, standardError: "ERROR: Please run 'az account set' to select a subscription").code == .notSignedIn)
        #expect(AzureCLIInvocation.failure(exitStatus: 1, standardError: "ERROR: something else").code == .failed)
        #expect(AzureCLIInvocation.excerpt(of: String(repeating: "x", count: 1000)).count == 403)
        #expect(AzureCLIInvocation.excerpt(of: "a\u{7}b eyJa.eyJb.c and eyJc.eyJd.e") == "a b <redacted> and <redacted>")
    }

    static func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }
}
