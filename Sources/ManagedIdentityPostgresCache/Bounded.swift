import ManagedIdentity
import Synchronization

/// How the error of an operation that took longer than its bound begins.
let boundedTimeoutMessage = "the database did not answer within"

/// Whether `error` is ``bounded(_:_:disposeOfLate:)``'s timeout.
func isBoundedTimeout(_ error: any Error) -> Bool {
    (error as? TokenCacheBackendError)?.message.hasPrefix(boundedTimeoutMessage) ?? false
}

/// Runs `operation`, or throws when it takes longer than `limit`, so a database that does not answer
/// turns a request into a miss instead of a hang. The caller stops waiting at the limit even when the
/// operation ignores cancellation (a query to a frozen server does): the operation is cancelled and
/// left to end on its own. A value it produces after the caller stopped waiting goes to
/// `disposeOfLate` (a connection must be closed, not dropped).
func bounded<T: Sendable>(
    _ limit: Duration, _ operation: @escaping @Sendable () async throws -> T,
    disposeOfLate: @escaping @Sendable (T) -> Void = { _ in }
) async throws -> T {
    let outcome = BoundedOutcome<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<T, any Error>) in
            outcome.install(waiter)
            let work = Task {
                do {
                    let value = try await operation()
                    if !outcome.finish(.success(value)) { disposeOfLate(value) }
                } catch {
                    outcome.finish(.failure(error))
                }
            }
            outcome.onFinish { work.cancel() }
            Task {
                try? await Task.sleep(for: limit)
                outcome.finish(.failure(TokenCacheBackendError(kind: .io, message: "\(boundedTimeoutMessage) \(limit)")))
            }
        }
    } onCancel: {
        outcome.finish(.failure(CancellationError()))
    }
}

/// The first of an operation's result, its timeout and its caller's cancellation, delivered once.
private final class BoundedOutcome<T: Sendable>: Sendable {
    private struct State {
        var waiter: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var done = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func install(_ waiter: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let early = state.early { return early }
            state.waiter = waiter
            return nil
        }
        if let early { waiter.resume(with: early) }
    }

    func onFinish(_ cleanup: @escaping @Sendable () -> Void) {
        let already = state.withLock { state -> Bool in
            if state.done { return true }
            state.cleanup = cleanup
            return false
        }
        if already { cleanup() }
    }

    /// Delivers `result` unless another outcome came first; says whether it was delivered.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (delivered, waiter, cleanup) = state.withLock {
            state -> (Bool, CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard !state.done else { return (false, nil, nil) }
            state.done = true
            if state.waiter == nil { state.early = result }
            defer { state.waiter = nil; state.cleanup = nil }
            return (true, state.waiter, state.cleanup)
        }
        waiter?.resume(with: result)
        cleanup?()
        return delivered
    }
}
