import Foundation
import Synchronization
import TokenCredentials

/// The tokens a middleware or client last got, per scope, with their `Authorization` headers, reused
/// until they near their end, as the Azure SDKs' bearer-token policies keep theirs: most requests
/// then ask nothing of the credential. A scope's token is asked for again once it expires within
/// ``refreshMargin`` or its refresh time has passed, and a token got for a challenge's claims
/// replaces it.
final class CachedAuthorization<Header: Sendable>: Sendable {
    /// How long before its expiry a kept token is no longer used: 5 minutes, as the clients' caches.
    static var refreshMargin: TimeInterval { 300 }
    /// The most scopes kept; a policy that picks the scope by host meets a few services at most.
    static var maximumScopes: Int { 64 }

    private struct Kept: Sendable {
        var token: AccessTokenInfo
        var header: Header
    }

    private let kept = Mutex<[String: Kept]>([:])
    private let make: @Sendable (String) -> Header

    /// - Parameter make: the header for `Bearer <token>`.
    init(_ make: @escaping @Sendable (String) -> Header) {
        self.make = make
    }

    /// The header of the token kept for `scope`, while it is usable at `now`.
    func header(scope: String, now: Date = Date()) -> Header? {
        guard let kept = kept.withLock({ $0[scope] }) else { return nil }
        guard kept.token.expiresOn.timeIntervalSince(now) > Self.refreshMargin else { return nil }
        if let refreshOn = kept.token.refreshOn, refreshOn <= now { return nil }
        return kept.header
    }

    /// Keeps `token` for `scope`; returns its header, reused when it is the token already kept.
    func store(_ token: AccessTokenInfo, scope: String) -> Header {
        kept.withLock { kept in
            let header = kept[scope].flatMap { $0.token.token == token.token ? $0.header : nil } ?? make("Bearer " + token.token)
            if kept[scope] == nil, kept.count >= Self.maximumScopes { kept.removeAll() }
            kept[scope] = Kept(token: token, header: header)
            return header
        }
    }
}
