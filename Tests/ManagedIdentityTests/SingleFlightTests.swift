import Synchronization
import Testing

@testable import ManagedIdentity

/// One operation for concurrent callers of a key, and each caller's own cancellation.
struct SingleFlightTests {
    /// An operation that waits until the test opens it, counting its runs.
    final class Gate: Sendable {
        private let state = Mutex<(runs: Int, waiters: [CheckedContinuation<Void, Never>], open: Bool)>((0, [], false))
        var runs: Int { state.withLock { $0.runs } }
        var waiting: Int { state.withLock { $0.waiters.count } }

        func pass() async {
            await withCheckedContinuation { waiter in
                let open = state.withLock { state -> Bool in
                    state.runs += 1
                    if state.open { return true }
                    state.waiters.append(waiter)
                    return false
                }
                if open { waiter.resume() }
            }
        }

        func open() {
            let waiters = state.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    @Test func concurrentCallersShareOneRunAndOnlyTheFirstStartedIt() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        let results = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for _ in 0..<50 {
                group.addTask { try await flight.run("k") { await gate.pass(); return 42 } }
            }
            while gate.waiting == 0 { await Task.yield() }
            for _ in 0..<100 { await Task.yield() }
            gate.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(gate.runs == 1)
        #expect(results.allSatisfy { $0.0 == 42 })
        #expect(results.filter(\.1).count == 1)
        #expect(!flight.isRunning("k"))
    }

    @Test func differentKeysRunApart() async throws {
        let flight = SingleFlight<String, String>()
        async let a = flight.run("a") { "A" }
        async let b = flight.run("b") { "B" }
        let (ra, rb) = try await (a, b)
        #expect(ra.value == "A" && rb.value == "B" && ra.started && rb.started)
    }

    @Test func aFailureReachesEveryWaiterAndIsNotRemembered() async throws {
        struct Failure: Error {}
        let flight = SingleFlight<String, Int>()
        await #expect(throws: Failure.self) { try await flight.run("k") { throw Failure() } }
        #expect(try await flight.run("k") { 7 }.value == 7)
    }

    @Test func aCancelledWaiterStopsWaitingWhileTheRunGoesOnForTheOthers() async throws {
        let flight = SingleFlight<String, Int>()
        let gate = Gate()
        let first = Task { try await flight.run("k") { await gate.pass(); return 1 } }
        while gate.waiting == 0 { await Task.yield() }
        let second = Task { try await flight.run("k") { 2 } }
        let third = Task { try await flight.run("k") { 3 } }
        // The second joins, then its task is cancelled: it ends at once, the run still in flight.
        for _ in 0..<100 { await Task.yield() }
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        #expect(flight.isRunning("k"))
        // The first caller cancels too: the run it started goes on for the third.
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        gate.open()
        let result = try await third.value
        #expect(result.value == 1 && !result.started)
        #expect(gate.runs == 1)
    }

    @Test func aTaskCancelledBeforeItJoinsNeverStartsTheRun() async throws {
        let flight = SingleFlight<String, Int>()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await flight.run("k") { 1 }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(!flight.isRunning("k"))
    }
}
