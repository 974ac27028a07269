import Synchronization

/// Locks by name for one process, with a bounded wait: what lets caches that share an in-memory
/// store take turns on a token. Waiters are woken in arrival order when the holder releases.
final class RefreshLocks: Sendable {
    private struct Lock {
        var waiters: [(id: UInt64, waiter: CheckedContinuation<Bool, Never>)] = []
    }

    private struct State {
        var held: [String: Lock] = [:]
        var nextID: UInt64 = 0
        /// Waiters whose time ran out (or who were cancelled) before they were queued.
        var abandoned: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Takes the lock, waiting at most `timeout` for its holder.
    /// - Returns: whether the lock was taken (`false`: the wait ran out, or the task was cancelled).
    func acquire(_ name: String, timeout: Duration) async -> Bool {
        let id = state.withLock { state -> UInt64? in
            guard state.held[name] != nil else {
                state.held[name] = Lock()
                return nil
            }
            state.nextID &+= 1
            return state.nextID
        }
        guard let id else { return true }
        let expiry = Task { [self] in
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            give(up: id, on: name)
        }
        defer {
            expiry.cancel()
            state.withLock { _ = $0.abandoned.remove(id) }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
                let answer = state.withLock { state -> Bool? in
                    if state.abandoned.remove(id) != nil { return false }
                    // Released between the first look and now: take it.
                    guard state.held[name] != nil else {
                        state.held[name] = Lock()
                        return true
                    }
                    state.held[name]?.waiters.append((id, waiter))
                    return nil
                }
                if let answer { waiter.resume(returning: answer) }
            }
        } onCancel: {
            give(up: id, on: name)
        }
    }

    /// Hands the lock to the first waiter, or frees it.
    func release(_ name: String) {
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard var lock = state.held[name] else { return nil }
            guard !lock.waiters.isEmpty else {
                state.held[name] = nil
                return nil
            }
            let next = lock.waiters.removeFirst().waiter
            state.held[name] = lock
            return next
        }
        next?.resume(returning: true)
    }

    private func give(up id: UInt64, on name: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard let index = state.held[name]?.waiters.firstIndex(where: { $0.id == id }) else {
                state.abandoned.insert(id)
                return nil
            }
            return state.held[name]?.waiters.remove(at: index).waiter
        }
        waiter?.resume(returning: false)
    }
}
