import Logging
import Synchronization

/// Whether a cache's backend is in an outage: from its first failing hook to the next one that
/// succeeds having started after the last failure (a hook already in flight when the store went away
/// and finishing well does not end the outage, so many concurrent callers do not make it flap). An
/// outage is reported once (``TokenCache``'s failure handler, a warning) however many requests meet
/// it, and its end is logged; a hit costs two atomic loads.
final class BackendHealth: Sendable {
    private let failing = Atomic<Bool>(false)
    /// How many hooks have failed, so a success can tell whether a failure came while it ran.
    private let failures = Atomic<UInt64>(0)

    /// Taken before a hook runs, and given to ``succeeded(since:logger:)`` when it succeeds.
    @inline(__always)
    func mark() -> UInt64 { failures.load(ordering: .acquiring) }

    /// A hook failed. Returns whether this failure starts an outage (and so is to be reported).
    func failed() -> Bool {
        failures.add(1, ordering: .acquiringAndReleasing)
        return !failing.exchange(true, ordering: .acquiringAndReleasing)
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
