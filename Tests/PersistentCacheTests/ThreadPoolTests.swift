import Foundation
import ManagedIdentity
import ManagedIdentitySQLiteCache
import ManagedIdentityTesting
import Synchronization
import Testing
import TestSupport

/// Blocking work of the backends runs on NIO's thread pool, never on Swift's cooperative pool.
struct ThreadPoolTests {
    /// Another process holds SQLite's write lock; 200 callers miss and wait to write. If their writes
    /// waited on the cooperative pool's two threads, nothing else in the process could run until the
    /// busy timeout (60 s) failed them: the in-memory hits below would finish only after some misses
    /// did. They finish while every miss is still waiting and the lock is still held.
    @Test(.timeLimit(.minutes(2)))
    func inMemoryHitsGoOnWhileAnotherProcessHoldsTheWriteLockAndMissesWait() async throws {
        let location = try BackendKind.sqlite.makeLocation()
        let clock = ManualClock(now: Date())
        let endpoint = FakeTokenEndpoint(hostName: "h", clock: clock)
        let backend = try await opened(SQLiteTokenCacheBackend(path: location, configuration: .init(busyTimeout: .seconds(60))))
        let persistent = try makeClient(backend, endpoint: endpoint, clock: clock)
        let memory = try makeClient(nil, identity: .clientID("in-memory"), endpoint: endpoint, clock: clock)
        _ = try await memory.token(for: "https://hit")

        let holder = ChildProcess("CacheStressTool", ["hold-write-lock", "sqlite", location])
        try holder.start()
        #expect(await holder.waitForLine("holding"), "the lock holder did not start")

        let finishedMisses = Counter()
        let misses = Task {
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let token = try await persistent.token(for: "https://miss-\(index)")
                        finishedMisses.increment()
                        return token.token
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
        }
        // Enough misses have their token and wait to store it (at least the pool's threads' worth).
        while endpoint.requestCount < 20 { await Task.yield() }

        for _ in 0..<1_000 {
            #expect(try await memory.token(for: "https://hit").tokenSource == .cache)
        }
        #expect(finishedMisses.value == 0, "a miss finished while the write lock was held")

        let holderResult = await holder.finished()
        #expect(holderResult.status == 0, "\(holderResult.errors)")
        let tokens = try await misses.value
        #expect(tokens.count == 200)
        #expect(Set(tokens).count == 200)
    }
}
