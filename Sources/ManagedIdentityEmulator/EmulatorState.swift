import Foundation
import ManagedIdentityTesting
import Synchronization

/// A request the emulator refused because the real service would refuse it.
public struct EmulatorViolation: Sendable, Hashable, Codable {
    /// Why the request is wrong.
    public var reason: String
    /// The request's method.
    public var method: String
    /// The request's path.
    public var path: String
}

/// What an emulator has seen.
public struct EmulatorStatistics: Sendable, Codable {
    /// Every request received on the token path, including refused ones and Arc challenges.
    public var requests: Int
    /// Tokens issued.
    public var tokensIssued: Int
    /// Azure Arc challenges answered.
    public var challenges: Int
    /// Requests that reached the token stage, per identity label and resource (`label resource`).
    public var requestsByIdentityAndResource: [String: Int]
    /// Requests the real service would have refused.
    public var violations: [EmulatorViolation]
    /// Token requests answered 429 because they were over the throttle's limits.
    public var throttled: Int = 0
    /// The most token requests that were in progress at once.
    public var peakConcurrentRequests: Int = 0
    /// What the protected resource has seen, when the emulator serves one.
    public var resource = ProtectedResourceStatistics()

    enum CodingKeys: String, CodingKey {
        case requests
        case tokensIssued = "tokens_issued"
        case challenges
        case requestsByIdentityAndResource = "requests_by_identity_and_resource"
        case violations
        case throttled
        case peakConcurrentRequests = "peak_concurrent_requests"
        case resource
    }
}

/// Faults to inject into the next responses.
public struct EmulatorFaults: Sendable, Codable, Equatable {
    /// Fail this many of the next token requests.
    public var failNext: Int
    /// The status of those failures (429, 404, 410, 500, 503, ...).
    public var status: Int
    /// The `Retry-After` header of those failures.
    public var retryAfter: String?
    /// Answer this many of the next token requests with a 200 whose body is not JSON.
    public var malformedJSONNext: Int
    /// Wait this long before answering every request.
    public var delayMilliseconds: Int
    /// Workload identity: refuse this many of the next token requests with Microsoft Entra's error for
    /// ``entraErrorCode``.
    public var entraErrorNext: Int
    /// The AADSTS code of those refusals (70021, 700211, 700212, 700213, 700024, 90061, 700016, 50020).
    public var entraErrorCode: Int

    /// Creates faults; none by default.
    public init(
        failNext: Int = 0, status: Int = 500, retryAfter: String? = nil, malformedJSONNext: Int = 0,
        delayMilliseconds: Int = 0, entraErrorNext: Int = 0, entraErrorCode: Int = 700213
    ) {
        self.failNext = failNext
        self.status = status
        self.retryAfter = retryAfter
        self.malformedJSONNext = malformedJSONNext
        self.delayMilliseconds = delayMilliseconds
        self.entraErrorNext = entraErrorNext
        self.entraErrorCode = entraErrorCode
    }

    enum CodingKeys: String, CodingKey {
        case failNext = "fail_next"
        case status
        case retryAfter = "retry_after"
        case malformedJSONNext = "malformed_json_next"
        case delayMilliseconds = "delay_ms"
        case entraErrorNext = "entra_error_next"
        case entraErrorCode = "entra_error_code"
    }

    /// Reads faults from JSON in which every field may be left out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            failNext: try container.decodeIfPresent(Int.self, forKey: .failNext) ?? 0,
            status: try container.decodeIfPresent(Int.self, forKey: .status) ?? 500,
            retryAfter: try container.decodeIfPresent(String.self, forKey: .retryAfter),
            malformedJSONNext: try container.decodeIfPresent(Int.self, forKey: .malformedJSONNext) ?? 0,
            delayMilliseconds: try container.decodeIfPresent(Int.self, forKey: .delayMilliseconds) ?? 0,
            entraErrorNext: try container.decodeIfPresent(Int.self, forKey: .entraErrorNext) ?? 0,
            entraErrorCode: try container.decodeIfPresent(Int.self, forKey: .entraErrorCode) ?? 700213)
    }
}

/// The mutable part of an emulator: counts, faults, token settings and Azure Arc keys.
final class EmulatorState: Sendable {
    struct State {
        var requests = 0
        var tokensIssued = 0
        var challenges = 0
        var byIdentityAndResource: [String: Int] = [:]
        var violations: [EmulatorViolation] = []
        var faults = EmulatorFaults()
        var serial = 0
        var lifetime: Int
        var expiresOnFormat: ExpiresOnFormat
        var refreshIn: Int?
        /// Issued Arc keys and when they stop being accepted.
        var arcKeys: [String: (path: String, expires: Date)] = [:]
        /// The federated token file's current content and its expiry: the only assertion accepted.
        var federatedToken: (content: String, expires: Date)?
        var window = EmulatorThrottle.Window()
        var throttled = 0
        /// The claims of every token issued, by serial: the protected resource accepts only these.
        var issued: [Int: TokenClaims] = [:]
        var resource = ProtectedResourceStatistics()
        /// Claims challenges the resource is to send to the next requests.
        var challengeNext = 0
        /// Tokens with a serial up to this one were revoked, at `revokedAt` (seconds since 1970).
        var revokedThroughSerial = 0
        var revokedAt = 0
    }

    let throttle: EmulatorThrottle?
    /// The monotonic start of the throttle's clock.
    private let started = ContinuousClock.now

    enum Fault {
        case fail(status: Int, retryAfter: String?)
        case malformedJSON
        case entraError(code: Int)
    }

    let state: Mutex<State>

    init(configuration: EmulatorConfiguration) {
        throttle = configuration.throttle
        state = Mutex(
            State(
                lifetime: configuration.tokenLifetime, expiresOnFormat: configuration.expiresOnFormat,
                refreshIn: configuration.refreshIn))
    }

    func countRequest() { state.withLock { $0.requests += 1 } }

    /// Whether a token request may go on under the throttle; one that may must ``leave()`` when answered.
    func arrive() -> Bool {
        let (seconds, attoseconds) = (ContinuousClock.now - started).components
        let now = Double(seconds) + Double(attoseconds) / 1e18
        return state.withLock { state in
            guard let throttle else {
                state.window.inProgress += 1
                state.window.peakInProgress = max(state.window.peakInProgress, state.window.inProgress)
                return true
            }
            if state.window.arrive(now: now, limits: throttle) { return true }
            state.throttled += 1
            return false
        }
    }

    func leave() { state.withLock { $0.window.leave() } }

    func recordViolation(_ violation: EmulatorViolation) { state.withLock { $0.violations.append(violation) } }

    func countChallenge() { state.withLock { $0.challenges += 1 } }

    /// Counts a request that reached the token stage and takes the next injected fault, if any.
    func admit(identity: String, resource: String) -> Fault? {
        state.withLock { state in
            state.byIdentityAndResource[identity + " " + resource, default: 0] += 1
            if state.faults.failNext > 0 {
                state.faults.failNext -= 1
                return .fail(status: state.faults.status, retryAfter: state.faults.retryAfter)
            }
            if state.faults.malformedJSONNext > 0 {
                state.faults.malformedJSONNext -= 1
                return .malformedJSON
            }
            if state.faults.entraErrorNext > 0 {
                state.faults.entraErrorNext -= 1
                return .entraError(code: state.faults.entraErrorCode)
            }
            return nil
        }
    }

    /// The settings of the next token, and its serial number.
    func nextToken() -> (serial: Int, lifetime: Int, format: ExpiresOnFormat, refreshIn: Int?) {
        state.withLock { state in
            state.serial += 1
            state.tokensIssued += 1
            return (state.serial, state.lifetime, state.expiresOnFormat, state.refreshIn)
        }
    }

    var delay: Int { state.withLock { $0.faults.delayMilliseconds } }

    var statistics: EmulatorStatistics {
        state.withLock {
            EmulatorStatistics(
                requests: $0.requests, tokensIssued: $0.tokensIssued, challenges: $0.challenges,
                requestsByIdentityAndResource: $0.byIdentityAndResource, violations: $0.violations,
                throttled: $0.throttled, peakConcurrentRequests: $0.window.peakInProgress, resource: $0.resource)
        }
    }

    func setFaults(_ faults: EmulatorFaults) { state.withLock { $0.faults = faults } }

    func setTokenSettings(lifetime: Int?, format: ExpiresOnFormat?, refreshIn: Int??) {
        state.withLock { state in
            if let lifetime { state.lifetime = lifetime }
            if let format { state.expiresOnFormat = format }
            if let refreshIn { state.refreshIn = refreshIn }
        }
    }

    func resetCounts() {
        state.withLock { state in
            state.requests = 0
            state.tokensIssued = 0
            state.challenges = 0
            state.byIdentityAndResource = [:]
            state.violations = []
            state.throttled = 0
            state.window.peakInProgress = state.window.inProgress
            state.resource = ProtectedResourceStatistics()
        }
    }

    func addArcKey(_ key: String, path: String, expires: Date) {
        state.withLock { $0.arcKeys[key] = (path, expires) }
    }

    func isValidArcKey(_ key: String, now: Date) -> Bool {
        state.withLock { state in
            guard let entry = state.arcKeys[key] else { return false }
            return entry.expires > now
        }
    }

    func setFederatedToken(_ content: String, expires: Date) {
        state.withLock { $0.federatedToken = (content, expires) }
    }

    var federatedToken: (content: String, expires: Date)? { state.withLock { $0.federatedToken } }

    func takeArcKeyFiles() -> [String] {
        state.withLock { state in
            defer { state.arcKeys.removeAll() }
            return state.arcKeys.values.map(\.path)
        }
    }
}
