import Synchronization

/// Collapses concurrent calls for one key into one operation: the first caller starts it, later
/// callers await its result (or its error). Nothing is remembered once it completes, so a failure
/// is retried by the next call.
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let tasks = Mutex<[Key: Task<Value, any Error>]>([:])

    /// Runs `operation`, or joins the run already in flight for `key`.
    /// - Returns: the value, and whether this call started the operation.
    func run(
        _ key: Key, operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, started: Bool) {
        let (task, started) = tasks.withLock { tasks -> (Task<Value, any Error>, Bool) in
            if let running = tasks[key] { return (running, false) }
            // The task removes itself when done; it cannot get the lock before this closure returns,
            // so the entry it removes is always its own.
            let task = Task<Value, any Error> {
                defer { _ = self.tasks.withLock { $0.removeValue(forKey: key) } }
                return try await operation()
            }
            tasks[key] = task
            return (task, true)
        }
        return (try await task.value, started)
    }

    /// Whether an operation is in flight for `key`.
    func isRunning(_ key: Key) -> Bool {
        tasks.withLock { $0[key] != nil }
    }
}
