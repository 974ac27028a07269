/// When to send a request again, per source (MSAL.NET's `ImdsRetryPolicy` and `DefaultRetryPolicy`).
struct RetryPolicy: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// IMDS: 404, 408, 410, 429 and 5xx; 1, 2, 4 s apart, or up to 7 retries 10 s apart when the
        /// first failure is a 410 (IMDS is being upgraded); `Retry-After` is ignored.
        case imds
        /// Every other source: 404, 408, 429, 500, 503, 504, up to 3 retries at least 1 s apart,
        /// honouring `Retry-After` (seconds or an HTTP date).
        case standard
        /// Microsoft Entra ID (workload identity): 408, 429 and 5xx but 501 and 505, as Azure's
        /// SDKs retry it, with the standard policy's count, spacing and `Retry-After`. A 404 from Entra
        /// means a wrong authority or tenant, which no retry mends.
        case entra
        case disabled
    }

    var kind: Kind

    static let imds = RetryPolicy(kind: .imds)
    static let standard = RetryPolicy(kind: .standard)
    static let entra = RetryPolicy(kind: .entra)
    static let disabled = RetryPolicy(kind: .disabled)

    /// Tracks one request's retries.
    struct State: Sendable {
        var retries = 0
        var firstFailureStatus: Int?
    }

    /// The delay before the next attempt, or `nil` to stop and report the failure.
    /// - Parameters:
    ///   - status: the failed response's status, or `nil` for a timeout.
    ///   - retryAfter: the response's `Retry-After` header.
    ///   - now: seconds since 1970, to read an HTTP-date `Retry-After`.
    func nextDelay(after status: Int?, retryAfter: String?, now: Double, state: inout State) -> Duration? {
        switch kind {
        case .disabled:
            return nil
        case .imds:
            if let status, !Self.isIMDSRetryable(status) { return nil }
            if state.firstFailureStatus == nil { state.firstFailureStatus = status ?? 0 }
            let maximum = state.firstFailureStatus == 410 ? 7 : 3
            guard state.retries < maximum else { return nil }
            let delay: Duration
            if status == 410 {
                delay = .seconds(10)
            } else {
                delay = .seconds(min(1 << state.retries, 4))
            }
            state.retries += 1
            return delay
        case .standard, .entra:
            if let status, !(kind == .entra ? Self.isEntraRetryable(status) : [404, 408, 429, 500, 503, 504].contains(status)) {
                return nil
            }
            guard state.retries < 3 else { return nil }
            state.retries += 1
            let requested = retryAfter.flatMap { Self.retryAfterSeconds($0, now: now) } ?? 0
            // Long waits are the endpoint asking us to go away; give up rather than stall the caller.
            guard requested <= 60 else { return nil }
            return .milliseconds(Int64((max(requested, 1) * 1000).rounded(.up)))
        }
    }

    /// A retry's delay with jitter: between the policy's delay and half as much again, `random`
    /// being in [0, 1). Never shorter than MSAL's delays (IMDS's 410 rule keeps its 70 s), but callers
    /// that failed together no longer come back together: 200 throttled callers retrying at the same
    /// instant meet the same throttling again.
    static func jittered(_ delay: Duration, random: Double) -> Duration {
        let fraction = min(max(random, 0), 1) * 0.5
        return delay + delay * fraction
    }

    static func isEntraRetryable(_ status: Int) -> Bool {
        status == 408 || status == 429 || ((500...599).contains(status) && status != 501 && status != 505)
    }

    static func isIMDSRetryable(_ status: Int) -> Bool {
        status == 404 || status == 408 || status == 410 || status == 429 || (500...599).contains(status)
    }

    /// `Retry-After` as seconds (fractions allowed) or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
    static func retryAfterSeconds(_ value: String, now: Double) -> Double? {
        let text = value.trimmingASCIIWhitespace()
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 { return seconds }
        guard let date = parseHTTPDate(text) else { return nil }
        return max(0, date - now)
    }

    /// IMF-fixdate, the only HTTP date form servers may send (RFC 9110 §5.6.7).
    static func parseHTTPDate(_ text: Substring) -> Double? {
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[5] == "GMT", parts[0].hasSuffix(",") else { return nil }
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard let day = Int(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])),
            let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":")
        guard time.count == 3, let hour = Int(time[0]), let minute = Int(time[1]), let second = Int(time[2]) else {
            return nil
        }
        return ExpiryParser.epochSeconds(
            year: year, month: monthIndex + 1, day: day, hour: hour, minute: minute, second: second)
    }
}
