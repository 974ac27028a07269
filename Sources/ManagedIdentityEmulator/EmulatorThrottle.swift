/// The limits a throttling emulator enforces, as IMDS does: beyond them a request is answered 429
/// at once, before it reaches the token stage.
public struct EmulatorThrottle: Sendable, Hashable, Codable {
    /// The most token requests in progress at once.
    public var maximumConcurrentRequests: Int
    /// The most token requests accepted in any one second (a sliding window).
    public var maximumRequestsPerSecond: Int

    /// Creates limits.
    public init(maximumConcurrentRequests: Int, maximumRequestsPerSecond: Int) {
        self.maximumConcurrentRequests = maximumConcurrentRequests
        self.maximumRequestsPerSecond = maximumRequestsPerSecond
    }

    /// IMDS's documented managed identity limits: 5 concurrent requests, 20 per second.
    public static let imds = EmulatorThrottle(maximumConcurrentRequests: 5, maximumRequestsPerSecond: 20)

    /// The body of the 429: IMDS's error shape.
    static let body = #"{"error":"too_many_requests","error_description":"Too many requests: the managed identity limits of this VM are 5 concurrent requests and 20 per second."}"#

    /// The decision for one arrival: a plain value of the requests in progress, the recent accepted
    /// arrivals and the time (seconds on a monotonic clock).
    struct Window: Sendable {
        var inProgress = 0
        var accepted: [Double] = []
        var peakInProgress = 0

        /// Accepts (and counts) the arrival, or says it is over the limits.
        mutating func arrive(now: Double, limits: EmulatorThrottle) -> Bool {
            accepted.removeAll { now - $0 >= 1 }
            guard inProgress < limits.maximumConcurrentRequests, accepted.count < limits.maximumRequestsPerSecond else {
                return false
            }
            accepted.append(now)
            inProgress += 1
            peakInProgress = max(peakInProgress, inProgress)
            return true
        }

        mutating func leave() { inProgress = max(0, inProgress - 1) }
    }
}
