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

    /// One scope's token, immutable: a request copies a reference, not the token's strings.
    private final class Kept: Sendable {
        let scope: String
        let token: AccessTokenInfo
        let header: Header
        /// When the token stops being used: its refresh time, or `refreshMargin` before its expiry.
        let usableUntil: Date

        init(scope: String, token: AccessTokenInfo, header: Header) {
            self.scope = scope
            self.token = token
            self.header = header
            let margin = token.expiresOn - CachedAuthorization.refreshMargin
            self.usableUntil = token.refreshOn.map { min($0, margin) } ?? margin
        }
    }

    private struct State {
        /// The scope asked for last: a middleware with one scope finds it without hashing.
        var last: Kept?
        var byScope: [String: Kept] = [:]
    }

    private let state = Mutex(State())
    private let make: @Sendable (String) -> Header

    /// - Parameter make: the header for `Bearer <token>`.
    init(_ make: @escaping @Sendable (String) -> Header) {
        self.make = make
    }

    /// The header of the token kept for `scope`, while it is usable at `now`.
    func header(scope: String, now: Date = Date()) -> Header? {
        state.withLock { state -> Header? in
            let kept: Kept
            if let last = state.last, last.scope == scope {
                kept = last
            } else if let found = state.byScope[scope] {
                kept = found
                state.last = found
            } else {
                return nil
            }
            return now < kept.usableUntil ? kept.header : nil
        }
    }

    /// Keeps `token` for `scope`; returns its header, reused when it is the token already kept.
    func store(_ token: AccessTokenInfo, scope: String) -> Header {
        state.withLock { state in
            let previous = state.byScope[scope]
            let header = previous.flatMap { $0.token.token == token.token ? $0.header : nil } ?? make("Bearer " + token.token)
            if previous == nil, state.byScope.count >= Self.maximumScopes { state.byScope.removeAll() }
            let kept = Kept(scope: scope, token: token, header: header)
            state.byScope[scope] = kept
            state.last = kept
            return header
        }
    }
}
