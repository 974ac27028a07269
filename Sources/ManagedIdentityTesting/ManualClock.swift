import Foundation
import ManagedIdentity
import Synchronization

/// A clock tests move by hand: ``sleep(for:)`` returns at once, moves time forward and records the
/// delay, so retry and refresh logic is tested without waiting.
public final class ManualClock: ManagedIdentityClock {
    private let state: Mutex<(now: Date, sleeps: [Duration])>

    /// A fixed instant (2026-01-01T00:00:00Z) that tests can state expectations against.
    public static let defaultStart = Date(timeIntervalSince1970: 1_767_225_600)

    /// Creates a clock at `now`, rounded down to a whole second (cache times are whole seconds).
    public init(now: Date = ManualClock.defaultStart) {
        state = Mutex((Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)), []))
    }

    /// The clock's time.
    public var now: Date { state.withLock { $0.now } }

    /// Every delay slept so far, in order.
    public var sleeps: [Duration] { state.withLock { $0.sleeps } }

    /// Moves the clock forward.
    public func advance(by seconds: TimeInterval) {
        state.withLock { $0.now = $0.now.addingTimeInterval(seconds) }
    }

    /// Moves the clock forward by `duration` at once, or throws `CancellationError` when cancelled.
    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        let (seconds, attoseconds) = duration.components
        state.withLock { state in
            state.sleeps.append(duration)
            state.now = state.now.addingTimeInterval(TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18)
        }
    }
}
