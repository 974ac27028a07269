import Testing

@testable import ManagedIdentity

/// The in-process lock the in-memory storage takes turns on a token with.
struct RefreshLocksTests {
    @Test func aWaiterGetsTheLockWhenTheHolderReleasesIt() async throws {
        let locks = RefreshLocks()
        #expect(await locks.acquire("t", timeout: .seconds(10)))
        let waiter = Task { await locks.acquire("t", timeout: .seconds(30)) }
        // Another name is not held by the first.
        #expect(await locks.acquire("other", timeout: .milliseconds(1)))
        locks.release("t")
        #expect(await waiter.value)
        locks.release("t")
        #expect(await locks.acquire("t", timeout: .milliseconds(1)), "released twice over, the lock is free")
    }

    @Test func aWaiterGivesUpAtItsBoundAndWhenCancelled() async throws {
        let locks = RefreshLocks()
        #expect(await locks.acquire("t", timeout: .seconds(10)))
        #expect(await locks.acquire("t", timeout: .milliseconds(20)) == false)
        let cancelled = Task { await locks.acquire("t", timeout: .seconds(600)) }
        cancelled.cancel()
        #expect(await cancelled.value == false)
        // Those who gave up do not get the lock later: the holder's release frees it.
        locks.release("t")
        #expect(await locks.acquire("t", timeout: .milliseconds(1)))
    }
}
