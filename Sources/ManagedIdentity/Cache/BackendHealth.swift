import Logging
import Synchronization

/// Whether a cache's backend is in an outage: from its first failing hook to the next one that
/// succeeds having started after the last failure (a hook already in flight when the store went away
/// and finishing well does not end the outage, so many concurrent callers do not make it flap). An
/// outage is reported once (``TokenCache``'s failure handler, a warning) however many requests meet
/// it, and its end is logged; a hit costs two atomic loads.
///
/// A store that flaps (under load, operations past their bound between ones that succeed) would
/// start an outage at every flap: an outage that starts within ``reportInterval`` of the last
/// reported one is not reported again, so a flapping store is reported once for the lot.
final class BackendHealth: Sendable {
    /// The least time between two reported outages, by default.
    static let defaultReportInterval: Duration = .seconds(30)
    /// The least time between two reported outages.
    let reportInterval: Duration

    init(reportInterval: Duration = BackendHealth.defaultReportInterval) {
        self.reportInterval = reportInterval
    }

    private let failing = Atomic<Bool>(false)
    private let lastReport = Mutex<ContinuousClock.Instant?>(nil)
    /// How many hooks have failed, so a success can tell whether a failure came while it ran.
    private let failures = Atomic<UInt64>(0)

    /// Taken before a hook runs, and given to ``succeeded(since:logger:)`` when it succeeds.
    @inline(__always)
    func mark() -> UInt64 { failures.load(ordering: .acquiring) }

    /// A hook failed. Returns whether this failure starts an outage to report: one that starts more
    /// than ``reportInterval`` after the last reported one (or the first).
    func failed() -> Bool {
        failures.add(1, ordering: .acquiringAndReleasing)
        guard !failing.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let now = ContinuousClock.now
        return lastReport.withLock { last in
            if let last, now - last < reportInterval { return false }
            last = now
            return true
        }
    }

    /// A hook that started at `mark` succeeded: the outage, if there was one, is over unless a hook
    /// failed meanwhile.
    @inline(__always)
    func succeeded(since mark: UInt64, logger: @autoclosure () -> Logger) {
        guard failing.load(ordering: .relaxed), failures.load(ordering: .acquiring) == mark else { return }
        if failing.exchange(false, ordering: .acquiringAndReleasing) {
            logger().notice("the cache backend answers again")
        }
    }

    var isFailing: Bool { failing.load(ordering: .relaxed) }
}
