import Foundation
import Testing

@testable import ManagedIdentity

/// When a failed background refresh is tried again, as a table; and what reaches a span or a log.
struct RefreshBackoffTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let transient = ManagedIdentityError(code: .requestFailed, message: "m", statusCode: 500)

    @Test(arguments: [(0.0, 300.0), (0.5, 450.0), (0.999, 599.7)])
    func aTransientFailureWaitsFiveToTenMinutes(random: Double, delay: Double) throws {
        let next = try #require(
            RefreshBackoff.nextAttempt(after: transient, now: now, usableUntil: now.addingTimeInterval(43_200), random: random))
        #expect(abs(next.timeIntervalSince(now) - delay) < 0.001)
    }

    @Test func aShortUsableWindowHalvesTheWaitSoTwoMoreAttemptsFit() throws {
        let next = try #require(
            RefreshBackoff.nextAttempt(after: transient, now: now, usableUntil: now.addingTimeInterval(400), random: 0.9))
        #expect(next.timeIntervalSince(now) == 200)
    }

    @Test func tooLittleTimeLeftMeansNoMoreBackgroundAttempts() {
        #expect(RefreshBackoff.nextAttempt(after: transient, now: now, usableUntil: now.addingTimeInterval(50), random: 0) == nil)
    }

    @Test(arguments: [400, 401, 403])
    func anErrorNoRetryMendsStopsBackgroundAttempts(status: Int) {
        let error = ManagedIdentityError(code: .requestFailed, message: "m", statusCode: status)
        #expect(RefreshBackoff.isPermanent(error))
        #expect(RefreshBackoff.nextAttempt(after: error, now: now, usableUntil: now.addingTimeInterval(43_200), random: 0) == nil)
    }

    @Test func anExpiredFederatedAssertionIsMendedByTheNextRotation() {
        var error = ManagedIdentityError(code: .requestFailed, message: "m", source: .workloadIdentity, statusCode: 400)
        error.entraErrorCodes = [700024]
        #expect(!RefreshBackoff.isPermanent(error))
    }

    @Test(arguments: [408, 410, 429, 500, 502, 503, 504])
    func transientStatusesBackOff(status: Int) {
        #expect(!RefreshBackoff.isPermanent(ManagedIdentityError(code: .requestFailed, message: "m", statusCode: status)))
    }

    @Test func telemetryTextHasNoIdentityIDsSelectorsResourceIDsOrQueries() {
        let clientID = "d3adb33f-c0de-ed0c-c0de-deadb33fc0d3"
        let text = "AADSTS700016: Application with identifier 'D3ADB33F-C0DE-ED0C-C0DE-DEADB33FC0D3' was not found. "
            + "GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=\(clientID) "
            + "client_id=abc&mi_res_id=/subscriptions/s/resourcegroups/g/providers/p/userAssignedIdentities/u, object_id=o. "
            + "Is the endpoint right?"
        let redacted = TelemetryRedaction.redact(text, identity: .clientID(clientID))
        #expect(!redacted.lowercased().contains(clientID))
        #expect(!redacted.contains("abc"))
        #expect(!redacted.contains("/subscriptions/s"))
        #expect(!redacted.contains("userAssignedIdentities"))
        #expect(!redacted.contains("object_id=o"))
        #expect(!redacted.contains("api-version"))
        #expect(redacted.contains("AADSTS700016"))
        #expect(redacted.hasSuffix("Is the endpoint right?"), "a question mark ending a sentence is not a query")
    }

    @Test func anIDThatIsPartOfThePlaceholderIsStillRedactedOnce() {
        #expect(TelemetryRedaction.redact("client c failed", identity: .clientID("c")) == "<redacted>lient <redacted> failed")
    }
}
