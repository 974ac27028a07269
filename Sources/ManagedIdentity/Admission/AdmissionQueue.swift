import NIOCore

/// The decisions of one endpoint's admission point as a value: who may start now, and when the next
/// may start, given the limits, what is in flight, the recent starts and the time. No clock, lock or
/// task: the driver (``EndpointAdmission``) feeds it times and carries out its answers, so every rule
/// is tested as plain values.
struct AdmissionQueue: Sendable {
    let limits: AdmissionLimits
    /// Requests admitted and not yet finished.
    private(set) var inFlight = 0
    /// Tickets waiting for their turn, oldest first.
    private(set) var waiting = CircularBuffer<UInt64>()
    /// When the most recent starts happened (seconds on the driver's monotonic clock), oldest first;
    /// at most `maximumRequestsPerSecond` are kept.
    private var starts = CircularBuffer<Double>()

    /// The window a rate is counted over. A little over a second: a request's arrival at the endpoint
    /// trails its start here by a varying delay, and two that start exactly a second apart must not
    /// arrive within one.
    static let rateWindow = 1.02

    init(limits: AdmissionLimits) {
        self.limits = limits
    }

    /// What ``admit(now:)`` decided.
    struct Admitted: Equatable, Sendable {
        /// The tickets that start now, in arrival order.
        var tickets: [UInt64] = []
        /// When the rate lets the next waiting ticket start, if one is waiting for that alone.
        var nextStart: Double?
    }

    /// A ticket arrives; it waits behind every earlier one (first come, first served).
    mutating func enqueue(_ ticket: UInt64) {
        waiting.append(ticket)
    }

    /// A waiting ticket leaves without starting (its caller was cancelled or waited too long).
    /// - Returns: whether it was still waiting.
    @discardableResult
    mutating func remove(_ ticket: UInt64) -> Bool {
        guard let index = waiting.firstIndex(of: ticket) else { return false }
        waiting.remove(at: index)
        return true
    }

    /// An admitted request finished.
    mutating func finish() {
        inFlight = max(0, inFlight - 1)
    }

    /// Starts as many waiting tickets as the limits allow at `now`.
    mutating func admit(now: Double) -> Admitted {
        var admitted = Admitted()
        while let ticket = waiting.first, inFlight < limits.maximumConcurrentRequests {
            if let rate = limits.maximumRequestsPerSecond {
                while let oldest = starts.first, oldest + Self.rateWindow <= now { starts.removeFirst() }
                if starts.count >= rate, let oldest = starts.first {
                    admitted.nextStart = oldest + Self.rateWindow
                    break
                }
                starts.append(now)
            }
            waiting.removeFirst()
            inFlight += 1
            admitted.tickets.append(ticket)
        }
        return admitted
    }

    /// How many tickets are ahead of `ticket`.
    func position(of ticket: UInt64) -> Int? {
        waiting.firstIndex(of: ticket).map { waiting.distance(from: waiting.startIndex, to: $0) }
    }
}
