import Logging
import Testing

@testable import ManagedIdentity

/// When a backend's failures are reported: once per outage, and once for a store that flaps.
struct BackendHealthTests {
    @Test func anOutageIsReportedOnceAndAFlapSoonAfterIsNotReportedAgain() {
        let health = BackendHealth()
        let logger = Logger(label: "test")
        let before = health.mark()
        #expect(health.failed(), "the first failure starts an outage")
        #expect(!health.failed(), "later failures of the same outage are not reported")
        // A hook in flight since before the failure does not end the outage.
        health.succeeded(since: before, logger: logger)
        #expect(health.isFailing)
        health.succeeded(since: health.mark(), logger: logger)
        #expect(!health.isFailing, "a hook started after the failure ended it")
        // Failing again at once: a flap, within the report interval of the last report.
        #expect(!health.failed())
        #expect(health.isFailing)
    }

    @Test func anOutagePastTheReportIntervalIsReportedAgain() {
        let health = BackendHealth(reportInterval: .zero)
        #expect(health.failed())
        health.succeeded(since: health.mark(), logger: Logger(label: "test"))
        #expect(health.failed(), "a new outage after the interval is reported")
    }
}
