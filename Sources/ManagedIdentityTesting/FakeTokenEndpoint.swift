import Foundation
import ManagedIdentity
import Synchronization

/// An in-process IMDS for one simulated host, the package's one fake issuer for tests: it answers
/// every token request with a fresh token whose ``TokenClaims`` name the host, the identity, the
/// resource and a serial number, so a check can tell which request a token was issued for. It
/// counts requests, can fail or stall them, and refuses any host but loopback.
public final class FakeTokenEndpoint: HTTPTransport {
    /// A fake: no endpoint behind it to protect, so no admission limits unless a test sets them.
    public var isBoundByEndpointLimits: Bool { false }

    /// The simulated host's name, written into every token.
    public let hostName: String
    private let clock: any ManagedIdentityClock
    private let state = Mutex<State>(State())

    private struct State {
        var serial = 0
        var requests: [TokenClaims] = []
        var gate: [CheckedContinuation<Void, Never>]?
        var failuresLeft = 0
        var lifetime = 3600
        var refreshIn: Int?
    }

    /// Creates an endpoint.
    /// - Parameters:
    ///   - hostName: the simulated host, written into tokens.
    ///   - clock: the clock whose time expiry is computed from.
    public init(hostName: String, clock: any ManagedIdentityClock) {
        self.hostName = hostName
        self.clock = clock
    }

    /// The claims of every token issued, in order.
    public var issued: [TokenClaims] { state.withLock { $0.requests } }

    /// The number of requests answered with a token.
    public var requestCount: Int { state.withLock { $0.requests.count } }

    /// Holds every request from now on until ``openGate()``; ``waitingCount`` says how many wait.
    public func closeGate() {
        state.withLock { if $0.gate == nil { $0.gate = [] } }
    }

    /// Lets held requests, and every later one, through.
    public func openGate() {
        let waiting = state.withLock { state in
            defer { state.gate = nil }
            return state.gate ?? []
        }
        for waiter in waiting { waiter.resume() }
    }

    /// How many requests wait at the closed gate.
    public var waitingCount: Int { state.withLock { $0.gate?.count ?? 0 } }

    /// Makes the next `count` requests fail with a 500.
    public func failNext(_ count: Int) {
        state.withLock { $0.failuresLeft = count }
    }

    /// Sets the lifetime (and optional refresh_in) of the next tokens.
    public func setLifetime(_ seconds: Int, refreshIn: Int? = nil) {
        state.withLock {
            $0.lifetime = seconds
            $0.refreshIn = refreshIn
        }
    }

    /// Answers a token request with a token naming it, or an injected failure.
    public func send(_ request: HTTPTransportRequest) async throws(HTTPTransportError) -> HTTPTransportResponse {
        guard request.host == "localhost" || request.host.hasPrefix("127.") || request.host == "::1" else {
            throw HTTPTransportError(kind: .refused, message: "FakeTokenEndpoint only serves loopback hosts")
        }
        let identity: String
        if let id = request.queryValue("client_id") {
            identity = "client_id:" + id
        } else if let id = request.queryValue("msi_res_id") {
            identity = "resource_id:" + id
        } else if let id = request.queryValue("object_id") {
            identity = "object_id:" + id
        } else {
            identity = "system"
        }
        let resource = request.queryValue("resource") ?? ""
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let held = state.withLock { state -> Bool in
                guard state.gate != nil else { return false }
                state.gate?.append(waiter)
                return true
            }
            if !held { waiter.resume() }
        }
        let now = Int(clock.now.timeIntervalSince1970)
        let answer = state.withLock { state -> (TokenClaims, Int, Int?)? in
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                return nil
            }
            state.serial += 1
            let claims = TokenClaims(
                audience: resource, identity: identity, appID: "", objectID: "", source: "imds", serial: state.serial,
                issuedAt: now, expiresAt: now + state.lifetime, host: hostName)
            state.requests.append(claims)
            return (claims, state.lifetime, state.refreshIn)
        }
        guard let (claims, lifetime, refreshIn) = answer else {
            return HTTPTransportResponse(status: 500, body: Array(#"{"error":"injected"}"#.utf8))
        }
        var body = #"{"access_token":"\#(claims.token)","expires_on":"\#(now + lifetime)","token_type":"Bearer","resource":"\#(resource)""#
        if let refreshIn { body += #","refresh_in":\#(refreshIn)"# }
        body += "}"
        return HTTPTransportResponse(status: 200, body: Array(body.utf8))
    }
}
