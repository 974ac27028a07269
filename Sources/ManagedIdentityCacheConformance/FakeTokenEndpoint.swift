import Foundation
import ManagedIdentity
import Synchronization

/// An in-process IMDS for one simulated host: it answers every token request with a fresh token
/// whose text names the host, the identity, the resource and a serial number, so a check can tell
/// which request a token was issued for. It counts requests, and refuses any host but loopback.
public final class FakeTokenEndpoint: HTTPTransport {
    /// The simulated host's name, written into every token.
    public let hostName: String
    private let clock: any ManagedIdentityClock
    private let state = Mutex<State>(State())

    private struct State {
        var serial = 0
        var requests: [TokenClaims] = []
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
        let now = Int(clock.now.timeIntervalSince1970)
        let answer = state.withLock { state -> (TokenClaims, Int, Int?)? in
            if state.failuresLeft > 0 {
                state.failuresLeft -= 1
                return nil
            }
            state.serial += 1
            let claims = TokenClaims(host: hostName, identity: identity, resource: resource, serial: state.serial)
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

/// What a fake token says about the request it answered.
public struct TokenClaims: Sendable, Hashable, Codable {
    /// The simulated host that issued the token.
    public var host: String
    /// `system`, or `client_id:<id>`, `resource_id:<id>`, `object_id:<id>`.
    public var identity: String
    /// The resource requested.
    public var resource: String
    /// A number that grows with each token the endpoint issues.
    public var serial: Int

    /// Creates claims.
    public init(host: String, identity: String, resource: String, serial: Int) {
        self.host = host
        self.identity = identity
        self.resource = resource
        self.serial = serial
    }

    /// The token text: `fake.<hex of the claims' JSON>`.
    public var token: String {
        let json = (try? JSONEncoder().encode(self)) ?? Data()
        let digits = Array("0123456789abcdef".utf8)
        var text = Array("fake.".utf8)
        text.reserveCapacity(5 + json.count * 2)
        for byte in json {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Reads the claims back from a token made by ``token``.
    public init?(token: String) {
        guard token.hasPrefix("fake."), token.count % 2 == 1 else { return nil }
        var bytes: [UInt8] = []
        var index = token.index(token.startIndex, offsetBy: 5)
        while index < token.endIndex {
            let next = token.index(index, offsetBy: 2)
            guard let byte = UInt8(token[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        guard let claims = try? JSONDecoder().decode(TokenClaims.self, from: Data(bytes)) else { return nil }
        self = claims
    }

    /// The identity string the endpoint writes for an identity.
    public static func identityString(_ identity: ManagedIdentityID) -> String {
        switch identity {
        case .systemAssigned: "system"
        case .clientID(let id): "client_id:" + id
        case .resourceID(let id): "resource_id:" + id
        case .objectID(let id): "object_id:" + id
        }
    }
}

/// A clock the suite moves by hand; sleeping moves it forward at once.
public final class ConformanceClock: ManagedIdentityClock {
    private let current: Mutex<Date>

    /// Creates a clock at `now`, rounded down to a whole second.
    public init(now: Date = Date()) {
        current = Mutex(Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down)))
    }

    /// The clock's time.
    public var now: Date { current.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    /// Moves the clock forward by `duration` at once.
    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        let (seconds, attoseconds) = duration.components
        advance(by: TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18)
    }
}
