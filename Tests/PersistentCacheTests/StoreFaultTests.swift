import CacheBackendSupport
import Foundation
import InMemoryLogging
import Logging
import ManagedIdentity
import ManagedIdentityFileCache
import ManagedIdentitySQLiteCache
import ManagedIdentityTesting
import Testing
import TestSupport

/// Real faults of the file and SQLite stores: each is a miss while it lasts, reported once, and the
/// tokens fetched meanwhile are stored once it is over.
@Suite(.timeLimit(.minutes(3)))
struct StoreFaultTests {
    /// Makes a directory refuse new files and back: `chattr +i` as root (whom modes do not stop),
    /// modes otherwise.
    static func setWritable(_ directory: String, _ writable: Bool) throws {
        if geteuid() == 0 {
            let chattr = Process()
            chattr.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
            chattr.arguments = [writable ? "-i" : "+i", directory]
            try chattr.run()
            chattr.waitUntilExit()
            guard chattr.terminationStatus == 0 else {
                throw TokenCacheBackendError(kind: .io, message: "chattr failed on \(directory): this test needs a file system with immutable files")
            }
        } else {
            guard chmod(directory, writable ? 0o700 : 0o500) == 0 else {
                throw TokenCacheBackendError(kind: .io, message: "chmod failed on \(directory)")
            }
        }
    }

    @Test func aFileCacheDirectoryThatCannotBeWrittenForAMomentIsAMissAndGetsItsTokensAfterwards() async throws {
        let location = try BackendKind.file.makeLocation()
        let backend = FileTokenCacheBackend(directory: location)
        let running = Task { try await backend.run() }
        defer { running.cancel() }
        _ = try await opened(backend)
        let failures = Counter()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try ManagedIdentityClient(
            identity: .clientID("persistent-test"),
            configuration: .init(
                source: .imds,
                environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
                clock: clock, hostDiscriminator: "test-host"),
            cache: TokenCache(backend: backend, onBackendFailure: { _ in failures.increment() }), transport: endpoint)
        _ = try await client.token(for: "https://before")

        try Self.setWritable(location, false)
        defer { try? Self.setWritable(location, true) }
        let resources = (0..<20).map { "https://read-only-\($0)" }
        for resource in resources {
            let token = try await client.token(for: resource)
            #expect(TokenClaims(token: token.token)?.audience == resource)
        }
        #expect(endpoint.requestCount == 21)
        #expect(failures.value == 1, "the outage is reported once, not once per call")
        for resource in resources { #expect(try await client.token(for: resource).tokenSource == .cache) }

        try Self.setWritable(location, true)
        let expected = Set(resources + ["https://before"])
        let stored = await storedResources(backend, expecting: expected)
        #expect(expected.isSubset(of: stored), "\(expected.subtracting(stored).count) tokens were never written")
        #expect(backend.state == .open)
    }

    @Test func aSQLiteFileLockedByAnotherProcessPastTheBoundIsAMissAndGetsItsTokensAfterwards() async throws {
        let location = try BackendKind.sqlite.makeLocation()
        let backend = SQLiteTokenCacheBackend(path: location)
        let running = Task { try await backend.run() }
        defer { running.cancel() }
        _ = try await opened(backend)
        let failures = Counter()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let client = try ManagedIdentityClient(
            identity: .clientID("persistent-test"),
            configuration: .init(
                source: .imds,
                environment: ManagedIdentityEnvironment(variables: ["AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:1"]),
                clock: clock, hostDiscriminator: "test-host"),
            cache: TokenCache(backend: backend, onBackendFailure: { _ in failures.increment() }), transport: endpoint)

        let holder = ChildProcess("CacheStressTool", ["hold-write-lock", "sqlite", location])
        try holder.start()
        #expect(await holder.waitForLine("holding"), "the lock holder did not start")
        let resources = (0..<20).map { "https://locked-\($0)" }
        let startedAt = ContinuousClock.now
        let tokens = try await withThrowingTaskGroup(of: String.self) { group in
            for resource in resources { group.addTask { try await client.token(for: resource).token } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        // The first writes wait out the 1 s busy bound; none waits for the holder (which holds on
        // until the test ends). The bound is generous for a busy machine: 10.7 s was seen at a load of 15.
        let elapsed = ContinuousClock.now - startedAt
        #expect(elapsed < .seconds(30), "the callers waited \(elapsed) for a lock held by another process")
        #expect(tokens.count == 20)
        #expect(endpoint.requestCount == 20)
        #expect(failures.value == 1, "the outage is reported once, not once per call")

        let holderResult = await holder.finished()
        #expect(holderResult.status == 0, "\(holderResult.errors)")
        let stored = await storedResources(backend, expecting: Set(resources))
        #expect(Set(resources).isSubset(of: stored), "\(Set(resources).subtracting(stored).count) tokens were never written")
    }

    /// Processes whose SQLite databases are still opening (another process holds the open past the
    /// bound, as a slow open on a busy machine does) still take turns on a token: the refresh lock is
    /// a file beside the database and needs no open database. It once failed at once instead, and
    /// processes starting together each sent their own request.
    @Test func aSQLiteDatabaseStillOpeningStillTakesTurnsOnAToken() async throws {
        let location = try BackendKind.sqlite.makeLocation()
        try FileManager.default.createDirectory(
            atPath: location + ".locks", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let opening = try #require(try await FileLock.acquire(path: location + ".locks/open.lock", timeout: .seconds(10)))
        defer { opening.release() }

        // The second instance waits for the turn at most 200 ms, then fetches and says so: that
        // warning is how this test sees it found the first one's lock.
        let logs = InMemoryLogHandler()
        let holder = SQLiteTokenCacheBackend(path: location, configuration: .init(busyTimeout: .milliseconds(50)))
        let waiter = SQLiteTokenCacheBackend(
            path: location, configuration: .init(refreshLockTimeout: .milliseconds(200), busyTimeout: .milliseconds(50)),
            logger: Logger(label: "waiter", factory: { _ in logs }))
        let partition = TokenCachePartitionKey(source: .imds, endpoint: "http://e", identity: .systemAssigned, hostDiscriminator: "h")

        // The waiter asks for its turn while the holder holds the lock.
        let waiterRan = try await holder.withRefreshLock(partition: partition, resource: "https://r") {
            try await waiter.withRefreshLock(partition: partition, resource: "https://r") { true }
        }
        #expect(waiterRan)
        #expect(
            logs.entries.contains { "\($0.message)".contains("another process has been fetching this token") },
            "the waiter did not find the holder's lock while both databases were still opening")
        #expect(holder.state != .open && waiter.state != .open, "the databases opened: the test did not hold the open")
    }
}
