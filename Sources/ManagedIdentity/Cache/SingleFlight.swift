import Synchronization

/// Collapses concurrent calls for one key into one operation: the first caller starts it, later
/// callers wait for its result (or its error). Nothing is remembered once it completes, so a failure
/// is retried by the next call.
///
/// Every caller, the first included, waits on its own: a caller whose task is cancelled stops
/// waiting at once with `CancellationError`, and the operation goes on for the others (its result
/// still reaches the cache). MSAL.NET once left callers blocked for hours behind a stuck request
/// (its issue 6053); here a caller's wait ends when its task does.
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private typealias Waiter = CheckedContinuation<Value, any Error>

    private struct State {
        var flights: [Key: [UInt64: Waiter]] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Runs `operation`, or joins the run already in flight for `key`.
    /// - Returns: the value, and whether this call started the operation.
    /// - Throws: the operation's error, or `CancellationError` when this caller's task is cancelled.
    func run(
        _ key: Key, operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, started: Bool) {
        let id = state.withLock { state in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        var started = false
        let value = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                let starts = state.withLock { state -> Bool? in
                    // Checked under the lock: a cancellation handler that ran before this found nothing to resume.
                    if Task.isCancelled { return nil }
                    if state.flights[key] != nil {
                        state.flights[key]?[id] = waiter
                        return false
                    }
                    state.flights[key] = [id: waiter]
                    return true
                }
                switch starts {
                case nil:
                    waiter.resume(throwing: CancellationError())
                case true?:
                    started = true
                    // Unstructured on purpose: the operation outlives any one waiter.
                    Task {
                        let result: Result<Value, any Error>
                        do { result = .success(try await operation()) } catch { result = .failure(error) }
                        let waiters = state.withLock { $0.flights.removeValue(forKey: key) } ?? [:]
                        for waiter in waiters.values { waiter.resume(with: result) }
                    }
                case false?:
                    break
                }
            }
        } onCancel: {
            let waiter = state.withLock { $0.flights[key]?.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
        return (value, started)
    }

    /// Whether an operation is in flight for `key`.
    func isRunning(_ key: Key) -> Bool {
        state.withLock { $0.flights[key] != nil }
    }
}
