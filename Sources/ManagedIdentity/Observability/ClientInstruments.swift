import CoreMetrics
import Foundation
import Tracing

/// A client's metrics, made once when the client is created so that serving a hit costs one
/// counter increment and one recording on handlers that already exist: no lookup by label, no
/// allocation. The source is fixed per client, so every dimension but the outcome is known here.
final class ClientInstruments: Sendable {
    let source: ManagedIdentitySource
    /// The tracer given in the configuration; `nil` asks `InstrumentationSystem` at each fetch, so a
    /// tracer bootstrapped after the client was made is still used.
    private let configuredTracer: (any Tracer)?
    private let factory: any MetricsFactory

    private let hits: Counter
    private let refreshesDue: Counter
    private let misses: Counter
    private let forced: Counter
    private let expiresIn: Recorder
    private let requestDuration: CoreMetrics.Timer
    private let backendName: String
    private let coordinationWait: CoreMetrics.Timer
    private let admissionWait: CoreMetrics.Timer
    private let admissionDepth: Meter
    private let refreshBackoff: Recorder

    init(source: ManagedIdentitySource, backend: (any TokenCacheBackend)?, factory: (any MetricsFactory)?, tracer: (any Tracer)?) {
        let factory = factory ?? MetricsSystem.factory
        self.source = source
        self.factory = factory
        self.configuredTracer = tracer
        let sourceDimension = (ManagedIdentityMetrics.Dimension.source, source.rawValue)
        func lookups(_ result: ManagedIdentityMetrics.LookupResult) -> Counter {
            Counter(
                label: ManagedIdentityMetrics.tokenLookups,
                dimensions: [sourceDimension, (ManagedIdentityMetrics.Dimension.result, result.rawValue)], factory: factory)
        }
        hits = lookups(.hit)
        refreshesDue = lookups(.refreshDue)
        misses = lookups(.miss)
        forced = lookups(.forced)
        expiresIn = Recorder(label: ManagedIdentityMetrics.tokenExpiresIn, dimensions: [sourceDimension], factory: factory)
        requestDuration = CoreMetrics.Timer(
            label: ManagedIdentityMetrics.endpointRequestDuration, dimensions: [sourceDimension], factory: factory)
        backendName = backend.map { String(describing: type(of: $0)) } ?? "none"
        admissionWait = CoreMetrics.Timer(
            label: ManagedIdentityMetrics.admissionWait, dimensions: [sourceDimension], factory: factory)
        admissionDepth = Meter(label: ManagedIdentityMetrics.admissionQueueDepth, dimensions: [sourceDimension], factory: factory)
        refreshBackoff = Recorder(
            label: ManagedIdentityMetrics.backgroundRefreshBackoff, dimensions: [sourceDimension], factory: factory)
        coordinationWait = CoreMetrics.Timer(
            label: ManagedIdentityMetrics.coordinationWait,
            dimensions: [(ManagedIdentityMetrics.Dimension.backend, backendName)], factory: factory)
    }

    var tracer: any Tracer { configuredTracer ?? InstrumentationSystem.tracer }

    // MARK: The hit path

    @inline(__always)
    func lookedUp(_ result: ManagedIdentityMetrics.LookupResult) {
        switch result {
        case .hit: hits.increment()
        case .refreshDue: refreshesDue.increment()
        case .miss: misses.increment()
        case .forced: forced.increment()
        }
    }

    @inline(__always)
    func served(expiresOn: Date, now: Date) {
        expiresIn.record(expiresOn.timeIntervalSince(now))
    }

    // MARK: Requests to the endpoint (rare: made as they happen)

    func requested(outcome: String, duration: Duration) {
        Counter(
            label: ManagedIdentityMetrics.endpointRequests,
            dimensions: [(ManagedIdentityMetrics.Dimension.source, source.rawValue), (ManagedIdentityMetrics.Dimension.outcome, outcome)],
            factory: factory
        ).increment()
        requestDuration.recordNanoseconds(Self.nanoseconds(duration))
    }

    func retried(reason: String) {
        Counter(
            label: ManagedIdentityMetrics.endpointRetries,
            dimensions: [(ManagedIdentityMetrics.Dimension.source, source.rawValue), (ManagedIdentityMetrics.Dimension.reason, reason)],
            factory: factory
        ).increment()
    }

    func backgroundRefreshFailed(_ error: any Error) {
        Counter(
            label: ManagedIdentityMetrics.backgroundRefreshFailures,
            dimensions: [
                (ManagedIdentityMetrics.Dimension.source, source.rawValue),
                (ManagedIdentityMetrics.Dimension.error, Self.errorCode(error)),
            ],
            factory: factory
        ).increment()
    }

    /// A request started (`true`) or stopped (`false`) waiting for its turn at the admission point.
    func admissionQueue(entered: Bool) {
        if entered { admissionDepth.increment() } else { admissionDepth.decrement() }
    }

    /// How long a request that had to wait for its turn waited.
    func admissionWaited(_ duration: Duration) {
        admissionWait.recordNanoseconds(Self.nanoseconds(duration))
    }

    /// The back-off chosen after a failed background refresh, in seconds until the next attempt.
    func backgroundRefreshBackedOff(seconds: TimeInterval) {
        refreshBackoff.record(seconds)
    }

    func backendFailed(_ hook: TokenCacheBackendFailure.Hook) {
        Counter(
            label: ManagedIdentityMetrics.backendFailures,
            dimensions: [(ManagedIdentityMetrics.Dimension.backend, backendName), (ManagedIdentityMetrics.Dimension.hook, hook.rawValue)],
            factory: factory
        ).increment()
    }

    func coordinated(found: Bool, waited: Duration) {
        Counter(
            label: ManagedIdentityMetrics.coordinatedFetches,
            dimensions: [(ManagedIdentityMetrics.Dimension.backend, backendName), (ManagedIdentityMetrics.Dimension.outcome, found ? "found" : "fetched")],
            factory: factory
        ).increment()
        coordinationWait.recordNanoseconds(Self.nanoseconds(waited))
    }

    // MARK: Values

    /// A bounded name for an error: its code for the library's errors, the type's name otherwise.
    static func errorCode(_ error: any Error) -> String {
        switch error {
        case let error as ManagedIdentityError: error.code.rawValue
        case is CancellationError: "cancelled"
        default: "other"
        }
    }

    /// The outcome dimension of a request: `success`, a final status, or an error code.
    static func outcome(of error: (any Error)?) -> String {
        guard let error else { return "success" }
        if let error = error as? ManagedIdentityError, let status = error.statusCode { return statusName(status) }
        return errorCode(error)
    }

    /// A status as a bounded dimension value: the statuses the sources give meaning to by number,
    /// the class for any other.
    static func statusName(_ status: Int) -> String {
        switch status {
        case 400, 401, 403, 404, 408, 410, 429, 500, 502, 503, 504: String(status)
        case 100..<600: "\(status / 100)xx"
        default: "other"
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
