import Foundation

/// The time source of a client: wall-clock time for expiry, and sleeping between retries and
/// refreshes. Inject your own to test without waiting.
public protocol ManagedIdentityClock: Sendable {
    /// The current time.
    var now: Date { get }
    /// Suspends for `duration`, or throws `CancellationError` when the task is cancelled.
    func sleep(for duration: Duration) async throws
}

/// The system's wall clock and a continuous clock for sleeping.
public struct SystemClock: ManagedIdentityClock {
    /// Creates the system clock.
    public init() {}

    /// The wall-clock time.
    public var now: Date { Date() }

    /// Sleeps on the continuous clock.
    public func sleep(for duration: Duration) async throws {
        try await ContinuousClock().sleep(for: duration)
    }
}
