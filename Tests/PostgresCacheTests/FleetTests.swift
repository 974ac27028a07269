import Foundation
import ManagedIdentity
import ManagedIdentityEmulator
import ManagedIdentityPostgresCache
import ManagedIdentityTesting
import Synchronization
import Testing
import TestSupport

/// Real processes sharing one database, as replicas of a service do.
struct FleetTests {
    static let user = EmulatedIdentity.defaults[1]
    static let system = EmulatedIdentity.defaults[0]

    func keyFile() throws -> String {
        let path = try TemporaryDirectory.make() + "/key"
        _ = FileManager.default.createFile(atPath: path, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }))
        return path
    }

    func tokenProcess(
        _ database: TestDatabase, key: String, host: String, identity: [String], resource: String, emulator: ManagedIdentityEmulator
    ) -> ChildProcess {
        ChildProcess(
            "managed-identity",
            ["token", "--resource", resource, "--cache", database.server.url(database.name), "--encryption-key-file", key,
             "--host-id", host, "--share-user-assigned"] + identity,
            environment: emulator.environment)
    }

    /// 8 processes posing as 4 hosts start at once on an empty database: a shared user-assigned
    /// identity costs 1 request in all, the system-assigned identity 1 per host.
    @Test func eightProcessesOnFourHostsSendOneRequestPerSharedTokenAndOnePerHostForTheSystemIdentity() async throws {
        let database = try await TestDatabase.make()
        let key = try keyFile()
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds)) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 400))
            for (identity, arguments) in [(Self.user, ["--client-id", Self.user.clientID]), (Self.system, [])] {
                let processes = (0..<8).map {
                    tokenProcess(database, key: key, host: "host-\($0 % 4)", identity: arguments, resource: "https://vault.azure.net",
                                 emulator: emulator)
                }
                for process in processes { try process.start() }
                for process in processes {
                    let result = await process.finished()
                    #expect(result.status == 0, "\(result.errors)")
                    let claims = try #require(TokenClaims(token: (try JSONSerialization.jsonObject(with: Data(result.output.utf8))
                        as? [String: Any])?["access_token"] as? String ?? ""))
                    #expect(claims.identity == (identity.isSystemAssigned ? "system" : "client_id:\(identity.clientID)"))
                }
                #expect(emulator.requestCount(identity: identity, resource: "https://vault.azure.net") == (identity.isSystemAssigned ? 4 : 1))
            }

            // The tool lists and purges what the fleet stored, without printing a token.
            let list = await ChildProcess(
                "managed-identity",
                ["cache", "list", "--cache", database.server.url(database.name), "--encryption-key-file", key, "--host-id", "host-0",
                 "--share-user-assigned", "--output", "json"]).started().finished()
            #expect(list.status == 0, "\(list.errors)")
            #expect(list.output.contains(Self.user.clientID))
            #expect(!list.output.contains("eyJ"))
            let purge = await ChildProcess(
                "managed-identity",
                ["cache", "purge", "--cache", database.server.url(database.name), "--encryption-key-file", key, "--host-id", "host-0",
                 "--share-user-assigned"]).started().finished()
            #expect(purge.status == 0, "\(purge.errors)")
            #expect(purge.output.contains("Removed 2 tokens"), "\(purge.output)")
        }
    }

    /// The host fetching a shared token is killed with SIGKILL mid-request: its advisory lock dies
    /// with its connection, and one of the waiting hosts fetches instead, long before the lock timeout.
    @Test func aHolderKilledMidRequestDoesNotHoldTheOthersUp() async throws {
        let database = try await TestDatabase.make()
        let key = try keyFile()
        try await ManagedIdentityEmulator.withRunning(EmulatorConfiguration(source: .imds)) { emulator in
            emulator.inject(EmulatorFaults(delayMilliseconds: 1_500))
            let arguments = ["--client-id", Self.user.clientID]
            let holder = tokenProcess(database, key: key, host: "host-0", identity: arguments, resource: "https://kill", emulator: emulator)
            try holder.start()
            while emulator.statistics.requests == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let waiters = (1...3).map {
                tokenProcess(database, key: key, host: "host-\($0)", identity: arguments, resource: "https://kill", emulator: emulator)
            }
            for waiter in waiters { try waiter.start() }
            // Let the waiters reach the lock, then kill the holder.
            try await Task.sleep(for: .milliseconds(300))
            kill(holder.process.processIdentifier, SIGKILL)
            _ = await holder.finished()
            var sources: [String] = []
            for waiter in waiters {
                let result = await waiter.finished()
                #expect(result.status == 0, "\(result.errors)")
                sources.append((try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])?["token_source"] as? String ?? "?")
            }
            #expect(sources.filter { $0 == "identity_provider" }.count == 1, "\(sources)")
            #expect(emulator.requestCount(identity: Self.user, resource: "https://kill") == 2)
        }
    }

    /// The database freezes (every server process stopped, connections open, nothing answers): token
    /// requests still complete, misses fetch directly, and the failures are reported.
    @Test(.timeLimit(.minutes(2)))
    func aFrozenDatabaseHoldsNoRequest() async throws {
        let server = try await PostgresServer.started()
        defer {
            try? server.thaw()
            try? server.stopBlocking()
            try? FileManager.default.removeItem(atPath: server.directory)
        }
        let database = try await TestDatabase.make(server: server)
        let backends = RunningBackends()
        defer { backends.stopAll() }
        var configuration = database.configuration()
        configuration.operationTimeout = .milliseconds(300)
        let failures = Counter()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try makeClient(
            TokenCache(backend: try await backends.start(configuration), onBackendFailure: { _ in failures.increment() }),
            endpoint: endpoint, clock: clock)
        _ = try await client.token(for: "https://warm")
        try server.freeze()
        for index in 0..<20 {
            let token = try await client.token(for: "https://frozen-\(index)")
            #expect(TokenClaims(token: token.token)?.audience == "https://frozen-\(index)")
        }
        #expect(failures.value > 0)
        #expect(endpoint.requestCount == 21)
    }
}
