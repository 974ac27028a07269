import Foundation
import Logging
import ManagedIdentity
import Synchronization

/// The one lifecycle of every backend: created without I/O; opened in the background when its
/// service runs or at its first use; retried with backoff while the store cannot be reached; failed
/// for good on a configuration error (``TokenCacheBackendError/isConfigurationError``); and writes
/// that could not be stored meanwhile kept and stored once the store answers again.
///
/// While the store is not open, every operation throws at once (a miss for the cache, which goes on
/// from memory and the endpoint); nothing waits on a store that is down.
package final class StoreLifecycle: Sendable {
    package typealias Opener = @Sendable () async throws -> Void
    package typealias Write = @Sendable () async throws -> Void

    package enum Phase: Sendable {
        case closed
        case opening
        case open
        case failed(TokenCacheBackendError)
        case stopped
    }

    private struct State {
        var open: Opener?
        var phase: Phase = .closed
        var lastError: (any Error)?
        var opener: Task<Void, Never>?
        /// Callers of ``started(within:)`` waiting for the first attempt's outcome.
        var attemptWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        var attempted = false
        /// Callers of ``waitUntilSettled(within:)`` waiting for the store to open, fail or stop.
        var settleWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Writes made while the store was not open, the newest per key, in arrival order.
        var pending: [String: Write] = [:]
        var pendingOrder: [String] = []
    }

    /// What the backend is, for messages ("the SQLite token cache at PATH").
    package let name: String
    private let logger: Logger
    private let state = Mutex(State())
    /// Whether the store is open, read without the lock: the hit path's check.
    private let isOpen = Atomic<Bool>(false)
    /// The most writes kept while the store is down; past it the oldest go (their tokens stay in memory).
    package static let maximumPendingWrites = 10_000

    package init(name: String, logger: Logger) {
        self.name = name
        self.logger = logger
    }

    /// Names what opens the store: `open` is called with `owner` (held weakly, so the backend that
    /// owns this lifecycle is not kept alive by it) on each attempt.
    package func bind<Owner: AnyObject & Sendable>(_ owner: Owner, open: @escaping @Sendable (Owner) async throws -> Void) {
        state.withLock { state in
            state.open = { [weak owner] in
                guard let owner else { throw TokenCacheBackendError(kind: .io, message: "the backend is gone") }
                try await open(owner)
            }
        }
    }

    package var phase: Phase { state.withLock { $0.phase } }

    /// The phase as the public ``TokenCacheBackendState``.
    package var publicState: TokenCacheBackendState {
        state.withLock { state in
            switch state.phase {
            case .open: .open
            case .closed, .opening: .opening(reason: state.lastError.map(Self.describe))
            case .failed(let error): .failed(reason: error.message)
            case .stopped: .stopped
            }
        }
    }

    /// Throws unless the store is open; starts opening it when nobody is.
    @inline(__always)
    package func ensureOpen() throws(TokenCacheBackendError) {
        if isOpen.load(ordering: .acquiring) { return }
        try ensureOpenSlowly()
    }

    private func ensureOpenSlowly() throws(TokenCacheBackendError) {
        let (phase, lastError) = state.withLock { ($0.phase, $0.lastError) }
        switch phase {
        case .open:
            return
        case .failed(let error):
            throw error
        case .stopped:
            throw TokenCacheBackendError(kind: .io, message: "\(name) has stopped")
        case .closed, .opening:
            startOpening()
            let reason = lastError.map { ": \(Self.describe($0))" } ?? ""
            throw TokenCacheBackendError(kind: .io, message: "\(name) is not open yet\(reason)")
        }
    }

    /// An operation found the store gone (unreachable, locked past its bound, not writable): the
    /// next operations fail at once, and the store is opened again in the background.
    package func lost(_ error: any Error) {
        let (reopen, first) = state.withLock { state -> (Bool, Bool) in
            guard case .open = state.phase else { return (false, false) }
            state.phase = .closed
            isOpen.store(false, ordering: .releasing)
            defer { state.lastError = error }
            return (true, state.lastError == nil)
        }
        guard reopen else { return }
        // Once per outage: the error stays until the store is open and its kept writes are stored.
        if first {
            logger.warning("\(name) cannot be reached; serving from memory and retrying in the background",
                           metadata: ["error": "\(Self.describe(error))"])
        }
        startOpening()
    }

    /// Keeps a write that could not be stored, to store once the store answers; a later write of
    /// the same key replaces it.
    package func keep(_ key: String, _ write: @escaping Write) {
        state.withLock { state in
            if state.pending[key] == nil {
                state.pendingOrder.append(key)
                if state.pendingOrder.count > Self.maximumPendingWrites {
                    let dropped = state.pendingOrder.removeFirst()
                    state.pending[dropped] = nil
                }
            }
            state.pending[key] = write
            // A write that failed while the store stayed open (a slow answer, a lock held past its
            // bound) has no reopening to wait for: store it after a pause, as an opener would.
            if case .open = state.phase, state.opener == nil {
                state.opener = Task { [self] in await openUntilDone(pausingFirst: true) }
            }
        }
    }

    /// The number of writes waiting for the store.
    package var pendingWrites: Int { state.withLock { $0.pending.count } }

    /// Opens in the background if nobody is opening, retrying with backoff until open or failed
    /// for good.
    package func startOpening() {
        state.withLock { state in
            switch state.phase {
            case .closed: break
            case .opening, .open, .failed, .stopped: return
            }
            state.phase = .opening
            // An opener still storing the kept writes goes on, after its pause.
            guard state.opener == nil else { return }
            state.opener = Task { [self] in await openUntilDone() }
        }
    }

    /// Waits for the first open attempt's outcome, at most `within`.
    /// - Throws: the configuration error the attempt met; a store that is only unreachable is not an
    ///   error here (the backend serves misses and keeps trying).
    package func started(within: Duration) async throws(TokenCacheBackendError) {
        startOpening()
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        let timeout = Task { [self] in
            try? await Task.sleep(for: within)
            let waiter = state.withLock { $0.attemptWaiters.removeValue(forKey: id) }
            waiter?.resume()
        }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.attempted { return true }
                state.attemptWaiters[id] = waiter
                return false
            }
            if done { waiter.resume() }
        }
        timeout.cancel()
        if case .failed(let error) = phase { throw error }
    }

    /// Waits until the store is open, failed for good or stopped, at most `within`, and says which;
    /// woken by the change itself, not by polling (a cold start waits for the open, not for a tick).
    package func waitUntilSettled(within: Duration) async -> Phase {
        startOpening()
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter &+= 1
            return state.nextWaiter
        }
        let timeout = Task { [self] in
            try? await Task.sleep(for: within)
            let waiter = state.withLock { $0.settleWaiters.removeValue(forKey: id) }
            waiter?.resume()
        }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let settled = state.withLock { state -> Bool in
                if Self.isSettled(state.phase) { return true }
                state.settleWaiters[id] = waiter
                return false
            }
            if settled { waiter.resume() }
        }
        timeout.cancel()
        return phase
    }

    private static func isSettled(_ phase: Phase) -> Bool {
        switch phase {
        case .open, .failed, .stopped: true
        case .closed, .opening: false
        }
    }

    /// Runs until cancelled: keeps the store open, then marks it stopped.
    package func run() async {
        startOpening()
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(86_400))
        }
        stop()
    }

    /// Stops: operations fail from now on, and opening stops.
    package func stop() {
        let opener = state.withLock { state -> Task<Void, Never>? in
            state.phase = .stopped
            isOpen.store(false, ordering: .releasing)
            defer { state.opener = nil }
            return state.opener
        }
        opener?.cancel()
        finishAttempt()
    }

    // MARK: Opening

    /// Opens the store unless it is open, then stores the kept writes; retries both with backoff
    /// until the store is open with nothing kept, or failed for good, or stopped.
    private func openUntilDone(pausingFirst: Bool = false) async {
        var pause = Duration.milliseconds(100)
        if pausingFirst { await self.pause(&pause) }
        while !Task.isCancelled {
            do {
                if !isOpen.load(ordering: .acquiring) {
                    guard let open = state.withLock({ $0.open }) else {
                        throw TokenCacheBackendError(kind: .misconfigured, message: "\(name) has nothing to open it")
                    }
                    try await open()
                    let opened = state.withLock { state -> Bool in
                        if case .stopped = state.phase { return false }
                        state.phase = .open
                        isOpen.store(true, ordering: .releasing)
                        return true
                    }
                    finishAttempt()
                    guard opened else { return }
                }
                let writes = state.withLock { state -> [(String, Write)] in
                    defer { state.pending = [:]; state.pendingOrder = [] }
                    return state.pendingOrder.compactMap { key in state.pending[key].map { (key, $0) } }
                }
                try await replay(writes)
                let done = state.withLock { state -> Bool in
                    switch state.phase {
                    case .stopped:
                        state.opener = nil
                        return true
                    case .open where state.pending.isEmpty:
                        state.opener = nil
                        state.lastError = nil
                        return true
                    default:
                        return false
                    }
                }
                if done { return }
            } catch let error as TokenCacheBackendError where error.isConfigurationError {
                state.withLock { state in
                    if case .stopped = state.phase { return }
                    state.phase = .failed(error)
                    isOpen.store(false, ordering: .releasing)
                    state.opener = nil
                }
                logger.error("\(name) cannot be used: \(error.message)")
                finishAttempt()
                return
            } catch {
                // A replay that failed while the store stayed open (it answered, but not this write
                // in time) leaves it open: reads go on, and the writes are tried again after the pause.
                let (stillOpen, first) = state.withLock { state -> (Bool, Bool) in
                    if case .open = state.phase { return (true, false) }
                    defer { state.lastError = error }
                    return (false, state.lastError == nil)
                }
                if first {
                    logger.warning("\(name) cannot be opened yet; serving from memory and retrying in the background",
                                   metadata: ["error": "\(Self.describe(error))"])
                } else {
                    logger.debug(
                        stillOpen ? "\(name) could not store the kept tokens yet; retrying" : "\(name) cannot be opened yet; retrying",
                        metadata: ["error": "\(Self.describe(error))", "pause": "\(pause)"])
                }
                finishAttempt()
            }
            await self.pause(&pause)
        }
    }

    /// Sleeps `pause`, jittered so processes that lost one store together do not all come back at
    /// once, and doubles it up to 5 s.
    private func pause(_ pause: inout Duration) async {
        try? await Task.sleep(for: pause + pause * Double.random(in: 0..<0.25))
        pause = min(pause * 2, .seconds(5))
    }

    /// Stores the writes kept while the store was down; the first that fails puts it and the rest
    /// back, oldest first, and throws.
    private func replay(_ writes: [(String, Write)]) async throws {
        guard !writes.isEmpty else { return }
        for index in writes.indices {
            do {
                try await writes[index].1()
            } catch {
                for (key, write) in writes[index...] where !hasNewerWrite(key) { keep(key, write) }
                throw error
            }
        }
        logger.notice("\(name) answers again; stored the \(writes.count) tokens fetched while it could not be reached")
    }

    /// Whether a write of `key` was kept after the replay took the kept writes (a newer token).
    private func hasNewerWrite(_ key: String) -> Bool {
        state.withLock { $0.pending[key] != nil }
    }

    /// The end of an open attempt: wakes those waiting for the first attempt, and, when the store
    /// settled (open, failed, stopped), those waiting for that.
    private func finishAttempt() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.attempted = true
            var waiters = Array(state.attemptWaiters.values)
            state.attemptWaiters = [:]
            if Self.isSettled(state.phase) {
                waiters += state.settleWaiters.values
                state.settleWaiters = [:]
            }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Error text without anything but what the error says of itself.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 300 ? String(text.prefix(300)) + "..." : text
    }
}
