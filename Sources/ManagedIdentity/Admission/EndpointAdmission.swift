import Synchronization

/// One endpoint's admission point, shared by every client of the process that sends to that
/// endpoint with the same limits: requests wait here, in order, until ``AdmissionLimits`` let them
/// start, so IMDS's 5-at-once and 20-per-second hold for the process however many tokens and
/// identities it asks for at once.
///
/// A wait ends when the request's turn comes, when its task is cancelled (`CancellationError`), or
/// after ``AdmissionLimits/maximumWait`` (`request_timeout`). Time here is the monotonic clock's:
/// these are real request rates, not token lifetimes, so the client's injected clock does not move them.
final class EndpointAdmission: Sendable {
    typealias Waiter = CheckedContinuation<Void, any Error>

    private struct State {
        var queue: AdmissionQueue
        var waiters: [UInt64: Waiter] = [:]
        /// Tickets admitted before their waiter was stored (between queueing and suspending): the
        /// waiter, once stored, is resumed at once.
        var admittedEarly: Set<UInt64> = []
        /// Tickets whose wait expired before their waiter was stored, with the requests that were ahead.
        var expiredEarly: [UInt64: Int] = [:]
        var nextTicket: UInt64 = 0
        /// Whether a task is already sleeping until the rate lets the next ticket start.
        var rateTimerScheduled = false
    }

    let limits: AdmissionLimits
    /// The endpoint, for messages: scheme, host and port only.
    let origin: String
    private let state: Mutex<State>

    init(origin: String, limits: AdmissionLimits) {
        self.origin = origin
        self.limits = limits
        self.state = Mutex(State(queue: AdmissionQueue(limits: limits)))
    }

    private struct Key: Hashable {
        var origin: String
        var limits: AdmissionLimits
    }

    private static let registry = Mutex<[Key: EndpointAdmission]>([:])

    /// The process's admission point for `origin` with `limits`.
    static func shared(origin: String, limits: AdmissionLimits) -> EndpointAdmission {
        registry.withLock { registry in
            let key = Key(origin: origin, limits: limits)
            if let existing = registry[key] { return existing }
            let admission = EndpointAdmission(origin: origin, limits: limits)
            registry[key] = admission
            return admission
        }
    }

    /// Seconds on the monotonic clock since the process's first admission.
    private static let epoch = ContinuousClock.now
    static func seconds(_ instant: ContinuousClock.Instant = .now) -> Double {
        let (seconds, attoseconds) = (instant - epoch).components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Waits for a turn. Every successful call must be paired with one ``release()``.
    /// - Parameter waiting: told when the request has to wait (`true`) and when that wait ends (`false`),
    ///   for the queue-depth metric.
    /// - Returns: whether the request had to wait.
    @discardableResult
    func acquire(waiting: @Sendable (Bool) -> Void = { _ in }) async throws -> Bool {
        if limits.isUnlimited { return false }
        let (ticket, started) = state.withLock { state -> (UInt64, Bool) in
            state.nextTicket &+= 1
            let ticket = state.nextTicket
            // The common case, nothing ahead and room: no continuation, no task.
            if state.queue.waiting.isEmpty {
                state.queue.enqueue(ticket)
                let admitted = state.queue.admit(now: Self.seconds())
                if admitted.tickets == [ticket] { return (ticket, true) }
                return (ticket, false)
            }
            state.queue.enqueue(ticket)
            return (ticket, false)
        }
        if started { return false }
        waiting(true)
        defer { waiting(false) }
        let expiry = Task { [self, limits] in
            try await Task.sleep(for: limits.maximumWait)
            let expired = state.withLock { state -> (Waiter, Int)? in
                let ahead = state.queue.position(of: ticket) ?? 0
                guard state.queue.remove(ticket) else { return nil }
                guard let waiter = state.waiters.removeValue(forKey: ticket) else {
                    state.expiredEarly[ticket] = ahead
                    return nil
                }
                return (waiter, ahead)
            }
            if let (waiter, ahead) = expired { waiter.resume(throwing: timeout(ahead: ahead)) }
        }
        defer { expiry.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (waiter: Waiter) in
                enum Next { case wait, start, cancel, cancelAndGiveBack, expired(Int) }
                let next = state.withLock { state -> Next in
                    if let ahead = state.expiredEarly.removeValue(forKey: ticket) { return .expired(ahead) }
                    let admitted = state.admittedEarly.remove(ticket) != nil
                    if Task.isCancelled {
                        if admitted {
                            state.queue.finish()
                            return .cancelAndGiveBack
                        }
                        state.queue.remove(ticket)
                        return .cancel
                    }
                    if admitted { return .start }
                    state.waiters[ticket] = waiter
                    return .wait
                }
                switch next {
                case .wait: pump()
                case .start: waiter.resume()
                case .cancel: waiter.resume(throwing: CancellationError())
                case .expired(let ahead): waiter.resume(throwing: timeout(ahead: ahead))
                case .cancelAndGiveBack:
                    waiter.resume(throwing: CancellationError())
                    pump()
                }
            }
            return true
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard state.queue.remove(ticket) else { return nil }
                return state.waiters.removeValue(forKey: ticket)
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Gives a turn back: the next waiting request may start.
    func release() {
        if limits.isUnlimited { return }
        state.withLock { $0.queue.finish() }
        pump()
    }

    /// Starts whoever may start now, and sets a timer for when the rate lets the next one.
    private func pump() {
        let (resumed, sleep) = state.withLock { state -> ([Waiter], Double?) in
            let now = Self.seconds()
            let admitted = state.queue.admit(now: now)
            var waiters: [Waiter] = []
            for ticket in admitted.tickets {
                if let waiter = state.waiters.removeValue(forKey: ticket) {
                    waiters.append(waiter)
                } else {
                    state.admittedEarly.insert(ticket)
                }
            }
            guard let next = admitted.nextStart, !state.rateTimerScheduled else { return (waiters, nil) }
            state.rateTimerScheduled = true
            return (waiters, max(0, next - now))
        }
        for waiter in resumed { waiter.resume() }
        if let sleep {
            Task { [self] in
                try? await Task.sleep(for: .nanoseconds(Int64(sleep * 1e9)))
                state.withLock { $0.rateTimerScheduled = false }
                pump()
            }
        }
    }

    private func timeout(ahead: Int) -> ManagedIdentityError {
        ManagedIdentityError(
            code: .requestTimeout,
            message: "[Managed Identity] The request to \(origin) waited \(limits.maximumWait) for its turn with "
                + "\(ahead) requests ahead of it; this process allows \(Self.describe(limits)) to that endpoint "
                + "(AdmissionLimits). Ask for fewer tokens at once, or raise the limits if the endpoint allows it.")
    }

    static func describe(_ limits: AdmissionLimits) -> String {
        var text = "\(limits.maximumConcurrentRequests) at once"
        if let rate = limits.maximumRequestsPerSecond { text += " and \(rate) per second" }
        return text
    }
}
